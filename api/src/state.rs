//! Shared server state, and the boundary between async handlers and blocking
//! database work of the request path ([`AppState::run`]). Claim submissions
//! cross it through the claim writer's thread instead, and pricing runs on
//! their own pool.

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, Utc};
use engine::db::DbConn;
use engine::store::{Keys, WriteContext};
use engine::{Database, StoreError};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pricing_runs::PricingRuns;
use crate::ratelimit::RateLimiter;
use crate::writer::ClaimWriter;

/// Limits the server enforces on callers.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub body_bytes: usize,
    /// How long a request body may take to arrive, from the end of its head.
    pub body_deadline: std::time::Duration,
    /// Sign-ups allowed per client address per minute.
    pub enrollments_per_minute: u32,
}

pub struct AppState {
    pub db: Database,
    pub keys: Keys,
    pub limits: Limits,
    pub metrics: Metrics,
    pub pricing: Arc<PricingRuns>,
    pub enrollment_limiter: RateLimiter,
    /// Claim submissions go through the group-commit writer.
    pub claims: ClaimWriter,
    pub token_cache: crate::token_cache::TokenCache,
    pub clock: crate::clock::Clock,
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The context of a write made now on behalf of `actor`.
    pub fn context<'a>(&'a self, actor: &'a str) -> WriteContext<'a> {
        WriteContext {
            keys: &self.keys,
            actor,
            now: self.now(),
        }
    }

    /// Runs blocking database work on actix's blocking pool. The connection
    /// is checked out inside the closure, so an HTTP worker never waits on
    /// the pool; a pool timeout or a locked database becomes a 503.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn, &AppState) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let state = Arc::clone(self);
        let span = tracing::Span::current();
        let result = web::block(move || {
            let _entered = span.enter();
            let mut conn = state.db.get()?;
            f(&mut conn, &state)
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("blocking pool: {e}")))?;
        result.map_err(ApiError::from)
    }
}

pub type State = web::Data<Arc<AppState>>;
