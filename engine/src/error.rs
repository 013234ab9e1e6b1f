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
                let busy = matches!(kind, DatabaseErrorKind::SerializationFailure)
                    || message.contains("database is locked")
                    || message.contains("database is busy")
                    || message.contains("database table is locked");
                if busy {
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

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Integrity(format!("stored JSON does not decode: {error}"))
    }
}
