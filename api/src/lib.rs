//! The Puhui server and command line: an actix-web API over the claims
//! engine and the pricing core, and the `puhui` commands that operate them.

pub mod auth;
pub mod basis;
pub mod body;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod experience;
pub mod fhir;
pub mod head_check;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod pricing_runs;
pub mod query;
pub mod ratelimit;
pub mod renew;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod token_cache;
pub mod writer;
