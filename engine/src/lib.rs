//! The claims domain of Puhui: products, enrollment, adjudication, benefit
//! ledger and the tamper-evident audit log, stored through diesel on SQLite or
//! PostgreSQL.
//!
//! `domain` is pure (no I/O, no clock); `store` wraps it in transactions that
//! take a `&mut DbConn`, so several store calls compose into one transaction.

pub mod audit;
pub mod db;
pub mod domain;
pub mod error;
pub mod schema;
pub mod store;

pub use db::{Backend, Database, DbConn};
pub use error::StoreError;
