//! Health, readiness, metrics and API documentation.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};

use crate::error::ApiError;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
}

/// The database answers: which backend it is.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    #[schema(value_type = String, pattern = "^(sqlite|postgres)$")]
    pub database: &'static str,
    #[schema(value_type = String, pattern = "^ready$")]
    pub status: &'static str,
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Database unreachable")))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<Arc<AppState>>) -> Result<HttpResponse, ApiError> {
    let backend = state.db.backend().name();
    state.run(|conn, _| engine::db::ping(conn)).await?;
    Ok(HttpResponse::Ok().json(Readiness {
        database: backend,
        status: "ready",
    }))
}

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<Arc<AppState>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
