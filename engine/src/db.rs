//! Connections, pooling, migrations and write transactions for both backends.
//!
//! `DATABASE_URL` picks the backend by its scheme: `sqlite://path` (or a bare
//! file path) for the embedded default, `postgres://` / `postgresql://` for
//! production. Anything else is refused at start-up rather than guessed at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::StoreError;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// The default database: a SQLite file under `data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/puhui.db";

/// How long a SQLite connection waits for the write lock before giving up
/// with `SQLITE_BUSY` (mapped to 503 at the edge).
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises
/// writers; every write transaction takes it first (see [`write_transaction`]).
const PG_WRITE_LOCK_KEY: i64 = 0x5055_4855_4901;
/// Advisory lock held while migrations run, so two servers starting at once
/// do not both migrate.
const PG_MIGRATION_LOCK_KEY: i64 = 0x5055_4855_4902;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path == ":memory:" {
                // Each pooled connection would get its own empty in-memory
                // database, so an in-memory URL cannot work with a pool.
                return Err(StoreError::Config(format!(
                    "DATABASE_URL {url:?}: a SQLite database needs a file path"
                )));
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(StoreError::Config(format!(
                "DATABASE_URL {url:?}: unknown scheme (use sqlite:// or postgres://)"
            )));
        }
        if url.is_empty() {
            return Err(StoreError::Config("DATABASE_URL is empty".into()));
        }
        Ok(DatabaseTarget::Sqlite(PathBuf::from(url)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseTarget::Sqlite(_) => Backend::Sqlite,
            DatabaseTarget::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens one connection with the per-connection settings applied.
    pub fn connect(&self) -> Result<DbConn, StoreError> {
        match self {
            DatabaseTarget::Sqlite(path) => {
                let path_text = path.to_str().ok_or_else(|| {
                    StoreError::Config(format!("SQLite path {path:?} is not valid UTF-8"))
                })?;
                let mut conn = diesel::SqliteConnection::establish(path_text)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                // busy_timeout first: the other pragmas may themselves need the lock.
                // synchronous = FULL: a committed payment must survive power loss.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA foreign_keys = ON; \
                     PRAGMA synchronous = FULL;"
                ))?;
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseTarget::Postgres(url) => {
                let conn = diesel::PgConnection::establish(url)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Ok(DbConn::Postgres(conn))
            }
        }
    }
}

/// r2d2 manager that opens exactly the configured backend (the derived
/// MultiConnection `establish` would try each backend in turn, and SQLite
/// accepts any string as a file name).
#[derive(Debug, Clone)]
pub struct Manager {
    target: DatabaseTarget,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConn, StoreError> {
        self.target.connect()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.is_broken()
    }
}

pub type PooledConn = PooledConnection<Manager>;

/// A connection pool bound to one backend, with migrations applied.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    backend: Backend,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the database named by `url`, creating and migrating it if needed.
    pub fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let target = DatabaseTarget::parse(url)?;
        if let DatabaseTarget::Sqlite(path) = &target {
            create_parent_dir(path)?;
        }
        let mut conn = target.connect()?;
        migrate(&mut conn)?;
        drop(conn);
        // Two connections at least: a request may hold one while the pool
        // health check or a background job needs another.
        let pool = Pool::builder()
            .max_size(pool_size.max(2))
            .connection_timeout(Duration::from_secs(10))
            // No `SELECT 1` before every use: that is a round trip per
            // request. A connection that fails is marked broken by diesel and
            // dropped when it comes back to the pool; the request that met
            // it gets 503 and the client's retry gets a fresh one.
            .test_on_check_out(false)
            .build(Manager {
                target: target.clone(),
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Database {
            pool,
            backend: target.backend(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks out a connection; a pool timeout is "busy", not a bug.
    pub fn get(&self) -> Result<PooledConn, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!("cannot create database directory {dir:?}: {e}"))
        }),
        _ => Ok(()),
    }
}

/// Applies pending migrations of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        DbConn::Sqlite(c) => {
            // WAL is a property of the file, set once; it lets readers work
            // while a writer commits.
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| StoreError::Migration(e.to_string()))?
                .iter()
                .map(|v| v.to_string())
                .collect()
        }
        DbConn::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK_KEY})"))?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                .map_err(|e| StoreError::Migration(e.to_string()));
            c.batch_execute(&format!(
                "SELECT pg_advisory_unlock({PG_MIGRATION_LOCK_KEY})"
            ))?;
            result?
        }
    };
    Ok(applied)
}

/// Reverts every migration (used by the schema round-trip test).
pub fn revert_all(conn: &mut DbConn) -> Result<(), StoreError> {
    let result = match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Runs `f` in a write transaction that is serialised against every other
/// writer: `BEGIN IMMEDIATE` on SQLite (takes the write lock up front, so the
/// busy timeout applies instead of a late read-to-write upgrade failure), and a
/// transaction-scoped advisory lock on PostgreSQL. Writers are serialised as a
/// whole because each one appends to the single audit hash chain, and because
/// benefit balances must be read and debited without a gap.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(inner) => {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                inner,
                "BEGIN IMMEDIATE",
            )?;
        }
        DbConn::Postgres(inner) => {
            // BEGIN and the lock in one round trip: a batch of claims costs
            // a fixed number of statements, and this is two of them.
            let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})");
            if let Err(e) =
                diesel::connection::AnsiTransactionManager::begin_transaction_sql(inner, &begin)
            {
                // If BEGIN ran and the lock failed, the session is left in
                // an aborted transaction that diesel does not know about.
                let _ = inner.batch_execute("ROLLBACK");
                return Err(e.into());
            }
        }
    }
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Read-only work in one consistent snapshot.
pub fn read_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(f)
}

pub use r2d2::Error as PoolError;

/// A round trip to the database, for readiness checks.
pub fn ping(conn: &mut DbConn) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1").map_err(StoreError::from)
}
