//! The HTTP server: routes, middleware and error handlers.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, ResponseError, web};
use tracing::Instrument;
use utoipa::OpenApi;

use crate::body::DeadlinePayload;
use crate::error::ApiError;
use crate::head_check::CheckedStream;
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
    // A method outside the fixed set is refused before it reaches a log line
    // or a metrics label, so invented methods cannot grow either.
    let Some(method) = known_method(req.method()) else {
        let allowed = allowed_methods(req.path()).unwrap_or_default();
        let response = ApiError::MethodNotAllowed(allowed).error_response();
        if let Some(state) = req.app_data::<web::Data<Arc<AppState>>>() {
            state
                .metrics
                .observe_request(OTHER_METHOD, "unmatched", 405, Duration::ZERO);
        }
        return Ok(req.into_response(response).map_into_right_body());
    };
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<Arc<AppState>>>().cloned();
    let span = tracing::info_span!("http", request.id = %request_id, http.method = method, http.route = %route);
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(state) = state {
        state
            .metrics
            .observe_request(method, &route, status, elapsed);
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
    Ok(response.map_into_left_body())
}

/// The label of a request whose method is not one of HTTP's own.
pub const OTHER_METHOD: &str = "OTHER";

/// The methods of RFC 9110 (and PATCH): the only ones logged or counted by name.
const KNOWN_METHODS: [(Method, &str); 9] = [
    (Method::GET, "GET"),
    (Method::HEAD, "HEAD"),
    (Method::POST, "POST"),
    (Method::PUT, "PUT"),
    (Method::DELETE, "DELETE"),
    (Method::PATCH, "PATCH"),
    (Method::OPTIONS, "OPTIONS"),
    (Method::TRACE, "TRACE"),
    (Method::CONNECT, "CONNECT"),
];

pub fn known_method(method: &Method) -> Option<&'static str> {
    KNOWN_METHODS
        .iter()
        .find(|(known, _)| known == method)
        .map(|(_, name)| *name)
}

/// Gives every request's body a deadline: a handler that reads it gets a
/// 408 once the deadline passes, whichever route it is; a body a handler
/// did not read is not waited for (the connection closes after the
/// response).
async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(within) = req
        .app_data::<web::Data<Arc<AppState>>>()
        .map(|state| state.limits.body_deadline)
    else {
        return next.call(req).await;
    };
    let deadline = Instant::now() + within;
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let (payload, unread) = DeadlinePayload::new(req.take_payload(), within);
    req.set_payload(actix_web::dev::Payload::Stream {
        payload: Box::pin(payload),
    });
    let mut response = next.call(req).await?;
    if has_body
        && !unread.finished()
        && let Some(socket) = response
            .request()
            .conn_data::<ConnectionSocket>()
            .and_then(|s| s.0.try_clone().ok())
    {
        // The HTTP layer would go on reading (and discarding) a chunked
        // body for as long as the client sends it; past the deadline the
        // connection stops reading, which ends it.
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep_until(deadline.into()).await;
            let _ = socket.shutdown(std::net::Shutdown::Read);
        });
    }
    response.response_mut().extensions_mut().insert(unread);
    Ok(response)
}

/// A second handle on a connection's socket, kept with the connection, so
/// that a request can stop the connection reading a body past its deadline.
struct ConnectionSocket(std::net::TcpStream);

fn keep_socket(connection: &CheckedStream, data: &mut actix_web::dev::Extensions) {
    use std::os::fd::AsFd as _;
    if let Ok(fd) = connection.tcp().as_fd().try_clone_to_owned() {
        data.insert(ConnectionSocket(std::net::TcpStream::from(fd)));
    }
}

fn new_request_id() -> String {
    hex::encode(crate::config::random_bytes::<8>())
}

/// No route took the request: a known path asked with another method is a
/// 405 naming the methods it has, anything else a 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    match allowed_methods(req.path()) {
        Some(methods) => Err(ApiError::MethodNotAllowed(methods)),
        None => Err(ApiError::NotFound("no such endpoint".into())),
    }
}

/// One path template of the API: its segments, and each method it answers
/// with the query parameters that method takes.
struct Route {
    template: String,
    segments: Vec<String>,
    methods: Vec<(&'static str, Vec<String>)>,
}

/// Every route of the API, read from the OpenAPI document so that the two
/// cannot disagree.
fn route_table() -> &'static [Route] {
    static TABLE: OnceLock<Vec<Route>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Route> = ApiDoc::openapi()
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("DELETE", &item.delete),
                    ("PATCH", &item.patch),
                ]
                .into_iter()
                .filter_map(|(name, operation)| {
                    operation.as_ref().map(|op| (name, query_parameters(op)))
                })
                .collect();
                Route {
                    template: path.clone(),
                    segments: segments(path),
                    methods,
                }
            })
            .collect();
        for path in ["/openapi.json", "/docs", "/docs/scalar-api-reference.js"] {
            table.push(Route {
                template: path.to_owned(),
                segments: segments(path),
                methods: vec![("GET", Vec::new())],
            });
        }
        table
    })
}

fn query_parameters(operation: &utoipa::openapi::path::Operation) -> Vec<String> {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::ParameterIn;
    operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query) => Some(p.name.clone()),
            _ => None,
        })
        .collect()
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

/// Answers the stand-in of a request head the connection refused (see
/// `head_check`) with its problem, before any route sees it.
async fn refused_heads(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(refusal) = crate::head_check::refusal_of(req.head()) {
        let error = refusal.into_error();
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Refuses a query parameter the route does not take (400), before the
/// handler runs: an unknown parameter means nothing here, and must not be
/// stored (an auditor's read is audited with its parameters).
async fn known_query_parameters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(unknown) = unknown_query_parameter(&req) {
        let error = ApiError::Malformed(format!("unknown query parameter `{unknown}`"));
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn unknown_query_parameter(req: &ServiceRequest) -> Option<String> {
    if req.query_string().is_empty() {
        return None;
    }
    let pattern = req.match_pattern()?;
    let method = known_method(req.method())?;
    let route = route_table().iter().find(|r| r.template == pattern)?;
    let (_, allowed) = route.methods.iter().find(|(m, _)| *m == method)?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string()).ok()?;
    pairs
        .0
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| !allowed.contains(name))
        .map(|name| name.chars().take(64).collect())
}

/// The methods of the route template that `path` matches, if any.
fn allowed_methods(path: &str) -> Option<Vec<&'static str>> {
    let asked = segments(path);
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in route_table() {
        let matches = route.segments.len() == asked.len()
            && route
                .segments
                .iter()
                .zip(&asked)
                .all(|(t, a)| (t.starts_with('{') && !a.is_empty()) || t == a);
        if matches {
            for (method, _) in &route.methods {
                if !allowed.contains(method) {
                    allowed.push(method);
                }
            }
        }
    }
    (!allowed.is_empty()).then_some(allowed)
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
    .service(routes::authorizations::request)
    .service(routes::authorizations::get_one)
    .service(routes::authorizations::for_member)
    .service(routes::authorizations::followup)
    .service(routes::authorizations::cancel)
    .service(routes::pricing::start)
    .service(routes::pricing::status)
    .service(routes::pricing::report)
    .service(routes::pricing::cancel)
    .service(routes::tokens::revoke)
    .service(routes::fhir::get_claim)
    .service(routes::fhir::get_claim_response)
    .service(routes::fhir::get_explanation_of_benefit)
    .service(routes::fhir::search_explanation_of_benefit)
    .service(routes::fhir::get_coverage)
    .service(routes::audit::events)
    .service(routes::audit::verify)
    .service(routes::audit::export)
    .service(routes::ops::healthz)
    .service(routes::ops::readyz)
    .service(routes::ops::metrics)
    .route("/openapi.json", web::get().to(openapi_json))
    .service(routes::docs::page)
    .service(routes::docs::script);
}

/// Binds and runs the server until it is stopped.
///
/// The server is actix-web's `HttpServer` put together by hand, for one difference: each
/// connection's stream is a [`CheckedStream`], so that a request head the HTTP layer would
/// refuse with an empty body gets a problem instead. The settings are `HttpServer`'s defaults.
pub async fn run(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<()> {
    use actix_service::{ServiceFactoryExt as _, fn_service, map_config};
    use actix_web::dev::AppConfig;

    let data = web::Data::new(state);
    let local_addr = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    builder
        .workers(workers)
        .listen("puhui", listener, move || {
            let data = data.clone();
            let app = App::new()
                .app_data(data)
                .wrap(from_fn(known_query_parameters))
                .wrap(from_fn(body_deadline))
                .wrap(from_fn(refused_heads))
                .wrap(from_fn(observe))
                .configure(configure)
                .default_service(web::to(not_found));
            let shutdown = shutdown.clone();
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .keep_alive(actix_http::KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(local_addr)
                .on_connect_ext(keep_socket)
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(|stream: actix_web::rt::net::TcpStream| {
                let peer = stream.peer_addr().ok();
                std::future::ready(Ok::<_, actix_http::error::DispatchError>((
                    CheckedStream::new(stream),
                    peer,
                )))
            })
            .and_then(http)
        })?
        .run()
        .await
}
