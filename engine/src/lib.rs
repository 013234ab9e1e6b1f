//! The claims domain of Puhui: products, enrollment, adjudication, benefit
//! ledger and the tamper-evident audit log, stored through diesel on SQLite or
//! PostgreSQL.
//!
//! `domain` is pure (no I/O, no clock); `store` wraps it in persistence. Its
//! functions take a `&mut DbConn` (the caller owns the connection), and each
//! write runs in a write transaction of its own: writes do not nest, so two
//! writes are two transactions.

pub mod audit;
pub mod db;
pub mod domain;
pub mod error;
pub mod schema;
pub mod store;

pub use db::{Backend, Database, DbConn};
pub use error::StoreError;
