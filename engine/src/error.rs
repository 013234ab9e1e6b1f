//! Errors of the storage layer. The HTTP edge maps each variant to a status in
//! one table (`api::error`); nothing here knows about HTTP.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::domain::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Input that breaks a rule of the domain; nothing was stored.
    #[error("the request is invalid")]
    Validation(ValidationErrors),
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// The same idempotency key came back with a different request.
    #[error("idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// A business conflict with stored state (already enrolled, already
    /// reversed, not appealable...). `code` is stable snake_case.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The database is locked or overloaded; retrying later may succeed.
    #[error("database busy: {0}")]
    Busy(String),
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// Stored data that does not decode or breaks an invariant: a bug or
    /// tampering, never the caller's fault.
    #[error("stored data is inconsistent: {0}")]
    Integrity(String),
    #[error("database error: {0}")]
    Database(DieselError),
}

impl StoreError {
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        StoreError::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn integrity(detail: impl std::fmt::Display) -> Self {
        StoreError::Integrity(detail.to_string())
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(kind, info) => {
                let message = info.message();
                if is_busy(kind, message) {
                    StoreError::Busy(message.to_owned())
                } else if matches!(kind, DatabaseErrorKind::ClosedConnection) {
                    StoreError::Unavailable(message.to_owned())
                } else {
                    StoreError::Database(error)
                }
            }
            DieselError::DeserializationError(e) => StoreError::Integrity(e.to_string()),
            _ => StoreError::Database(error),
        }
    }
}

/// Whether the database refused because others hold what it needs, so that
/// a retry may succeed. On PostgreSQL that is SQLSTATE 40001 (a
/// serialization failure), which diesel reports as its own error kind. On
/// SQLite it is SQLITE_BUSY or SQLITE_LOCKED (and their extended codes),
/// which diesel reports only through the message: these are recognised by
/// SQLite's own text for those codes, asked from the library, not by words
/// written here.
fn is_busy(kind: &DatabaseErrorKind, message: &str) -> bool {
    matches!(kind, DatabaseErrorKind::SerializationFailure)
        || (matches!(kind, DatabaseErrorKind::Unknown)
            && [libsqlite3_sys::SQLITE_BUSY, libsqlite3_sys::SQLITE_LOCKED]
                .into_iter()
                .any(|code| message.starts_with(sqlite_text_of(code))))
}

/// SQLite's message for a primary result code (`sqlite3_errstr`), which is
/// what `sqlite3_errmsg` reports for an error of that code.
fn sqlite_text_of(code: std::os::raw::c_int) -> &'static str {
    // SAFETY: sqlite3_errstr returns a pointer to a static, NUL-terminated
    // string for any code, valid for the life of the program.
    let text = unsafe { std::ffi::CStr::from_ptr(libsqlite3_sys::sqlite3_errstr(code)) };
    // An empty prefix would match every message: never busy on bad text.
    text.to_str().ok().filter(|t| !t.is_empty()).unwrap_or("\0")
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Integrity(format!("stored JSON does not decode: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::from(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn busy_is_told_by_the_code_the_database_reports() {
        let busy = sqlite_text_of(libsqlite3_sys::SQLITE_BUSY);
        let locked = sqlite_text_of(libsqlite3_sys::SQLITE_LOCKED);
        assert_eq!(busy, "database is locked");
        assert_eq!(locked, "database table is locked");
        for message in [busy.to_owned(), format!("{locked}: claims")] {
            let error = database_error(DatabaseErrorKind::Unknown, &message);
            assert!(matches!(error, StoreError::Busy(_)), "{message}: {error:?}");
        }
        let serialization = database_error(DatabaseErrorKind::SerializationFailure, "40001");
        assert!(matches!(serialization, StoreError::Busy(_)));
        let closed = database_error(DatabaseErrorKind::ClosedConnection, "server closed");
        assert!(matches!(closed, StoreError::Unavailable(_)));
        // A constraint that happens to mention a lock is not busy.
        let unique = database_error(DatabaseErrorKind::UniqueViolation, "database is locked");
        assert!(matches!(unique, StoreError::Database(_)));
        let io = database_error(DatabaseErrorKind::Unknown, "disk I/O error");
        assert!(matches!(io, StoreError::Database(_)));
    }
}
