//! The HTTP server: routes, middleware and error handlers.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_scalar::{Scalar, Servable};

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Assigns a request id (or keeps a well-formed one from the client), logs
/// one line per request without personal data, and records metrics.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let method = req.method().as_str().to_owned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<Arc<AppState>>>().cloned();
    let span = tracing::info_span!("http", request.id = %request_id, http.method = %method, http.route = %route);
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(state) = state {
        state
            .metrics
            .observe_request(&method, &route, status, elapsed);
    }
    span.in_scope(|| {
        tracing::info!(
            http.status = status,
            duration_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

fn new_request_id() -> String {
    hex::encode(crate::config::random_bytes::<8>())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Registers every route on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::Malformed(format!("invalid query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default().error_handler(|e, _| ApiError::NotFound(e.to_string()).into()),
    )
    .service(routes::products::list)
    .service(routes::products::get_one)
    .service(routes::products::experience)
    .service(routes::enrollments::enroll)
    .service(routes::enrollments::member)
    .service(routes::enrollments::coverage)
    .service(routes::claims::submit)
    .service(routes::claims::submitted_by_me)
    .service(routes::claims::get_one)
    .service(routes::claims::for_member)
    .service(routes::claims::reverse)
    .service(routes::claims::appeal)
    .service(routes::pricing::start)
    .service(routes::pricing::status)
    .service(routes::audit::events)
    .service(routes::audit::verify)
    .service(routes::audit::export)
    .service(routes::ops::healthz)
    .service(routes::ops::readyz)
    .service(routes::ops::metrics)
    .route("/openapi.json", web::get().to(openapi_json))
    .service(Scalar::with_url("/docs", ApiDoc::openapi()));
}

/// Binds and runs the server until it is stopped.
pub async fn run(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<()> {
    let data = web::Data::new(state);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(observe))
            .configure(configure)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .listen(listener)?
    .run()
    .await
}
