//! The one error type of the HTTP edge, and the one table that maps every
//! error to a status. Bodies are RFC 9457 problem details.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use engine::StoreError;
use engine::domain::ValidationErrors;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("the request body must be {0}")]
    UnsupportedMediaType(&'static str),
    #[error("the request is invalid")]
    Validation(ValidationErrors),
    #[error("authentication required: send a bearer token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// The path exists, the method does not (listed: the methods it has).
    #[error("this method is not allowed here")]
    MethodNotAllowed(Vec<&'static str>),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within the server's deadline")]
    BodyTimeout,
    /// The request line and headers together are over the limit (a header is named when
    /// one stands out).
    #[error("the request head is larger than {limit} bytes{}", largest_header_named(.largest_header))]
    HeadTooLarge {
        limit: usize,
        largest_header: Option<String>,
    },
    #[error("too many requests; retry after {0} seconds")]
    RateLimited(u64),
    #[error("{0}")]
    Unavailable(String),
    /// A bug. The body says nothing about the cause; it is logged once.
    #[error("internal error")]
    Internal(String),
}

/// One field-level problem in a validation error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field, as `items[0].total`.
    pub field: String,
    /// The same field as an RFC 6901 JSON pointer into the request body, as
    /// `/items/0/total`.
    pub pointer: String,
    pub code: String,
    pub detail: String,
}

/// `application/problem+json` body used by every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code for programs.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

impl ApiError {
    /// The status table: the only place that decides HTTP codes for errors.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::HeadTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_head_too_large",
            ),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let detail = match self {
            // Never leak the cause of a bug to the client.
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            ApiError::Unavailable(_) => {
                "the database is busy or unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Validation(errors) => errors
                .0
                .iter()
                .map(|e| FieldProblem {
                    pointer: json_pointer(&e.field),
                    field: e.field.clone(),
                    code: e.code.to_string(),
                    detail: e.detail.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
        }
    }
}

fn largest_header_named(header: &Option<String>) -> String {
    header
        .as_ref()
        .map(|h| format!(" (its largest header is `{h}`)"))
        .unwrap_or_default()
}

/// `items[0].total` as the JSON pointer `/items/0/total`.
pub fn json_pointer(field: &str) -> String {
    let mut pointer = String::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        let (name, indices) = rest.split_at(name_end);
        if !name.is_empty() {
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        rest = indices;
        while let Some(open) = rest.find('[') {
            let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
            pointer.push('/');
            pointer.push_str(&rest[open + 1..close]);
            rest = rest.get(close + 1..).unwrap_or("");
        }
    }
    pointer
}

impl From<crate::policy::Forbidden> for ApiError {
    fn from(refused: crate::policy::Forbidden) -> Self {
        ApiError::Forbidden(refused.0)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(error.cause = %cause, "internal error"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "database unavailable")
            }
            _ => {}
        }
        let problem = self.problem();
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            ApiError::RateLimited(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            // The rest of a late body is not worth waiting for.
            ApiError::BodyTimeout => {
                response.insert_header((header::CONNECTION, "close"));
            }
            ApiError::MethodNotAllowed(methods) => {
                response.insert_header((header::ALLOW, methods.join(", ")));
            }
            _ => {}
        }
        response.json(problem)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Validation(errors) => ApiError::Validation(errors),
            StoreError::NotFound { entity, id } => {
                ApiError::NotFound(format!("{entity} {id} not found"))
            }
            StoreError::IdempotencyKeyReused => ApiError::Conflict {
                code: "idempotency_key_reused",
                detail: "this Idempotency-Key was already used with a different request".into(),
            },
            StoreError::Conflict { code, detail } => ApiError::Conflict { code, detail },
            StoreError::Busy(cause) | StoreError::Unavailable(cause) => {
                ApiError::Unavailable(cause)
            }
            other @ (StoreError::Config(_)
            | StoreError::Migration(_)
            | StoreError::Integrity(_)
            | StoreError::Database(_)) => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::Malformed("x".into()), 400, "malformed_request"),
            (
                ApiError::UnsupportedMediaType("JSON"),
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::Validation(ValidationErrors::single("f", "c", "d")),
                422,
                "validation_failed",
            ),
            (ApiError::Unauthenticated, 401, "unauthenticated"),
            (ApiError::Forbidden("no"), 403, "forbidden"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::MethodNotAllowed(vec!["GET"]),
                405,
                "method_not_allowed",
            ),
            (
                StoreError::IdempotencyKeyReused.into(),
                409,
                "idempotency_key_reused",
            ),
            (
                StoreError::conflict("already_enrolled", "x").into(),
                409,
                "already_enrolled",
            ),
            (ApiError::PayloadTooLarge(10), 413, "payload_too_large"),
            (ApiError::BodyTimeout, 408, "request_timeout"),
            (
                ApiError::HeadTooLarge {
                    limit: 10,
                    largest_header: None,
                },
                431,
                "request_head_too_large",
            ),
            (ApiError::RateLimited(3), 429, "rate_limited"),
            (
                StoreError::Busy("database is locked".into()).into(),
                503,
                "service_unavailable",
            ),
            (
                StoreError::Unavailable("down".into()).into(),
                503,
                "service_unavailable",
            ),
            (
                StoreError::Integrity("bad".into()).into(),
                500,
                "internal_error",
            ),
        ];
        for (error, status, code) in cases {
            let problem = error.problem();
            assert_eq!(problem.status, status, "{error:?}");
            assert_eq!(problem.code, code, "{error:?}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let problem = ApiError::Internal("secret table name".into()).problem();
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn validation_errors_list_fields() {
        let problem = ApiError::Validation(ValidationErrors::single(
            "items[0].total",
            "negative_amount",
            "must not be negative",
        ))
        .problem();
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].field, "items[0].total");
        assert_eq!(problem.errors[0].pointer, "/items/0/total");
    }

    #[test]
    fn fields_become_json_pointers() {
        for (field, pointer) in [
            ("member_id", "/member_id"),
            (
                "items[0].biomarkers[2].marker",
                "/items/0/biomarkers/2/marker",
            ),
            ("items[12]", "/items/12"),
            ("a/b~c", "/a~1b~0c"),
            ("", ""),
        ] {
            assert_eq!(json_pointer(field), pointer, "{field}");
        }
    }
}
