//! Sign-up and members.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use engine::domain::enrollment::EnrollmentRequest;
use engine::store::enrollment;
use engine::store::tokens;

use crate::auth::{self, Caller, MaybeCaller};
use crate::body;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::{ok, readable_member};

/// Enrols a person. Open to the app without a token (rate-limited per client
/// address); an insurer token may enrol on someone's behalf. Returns the
/// member and a token for the enrollee's own use. A retry with the same
/// Idempotency-Key returns the same member and a fresh token that replaces
/// the one sent before, which stops working: tokens are stored only as
/// hashes, so the first one cannot be shown again, and one sign-up never
/// leaves two live credentials.
#[utoipa::path(post, path = "/v1/enrollments", tag = "enrollment",
    request_body(content = crate::openapi::EnrollmentRequestDoc, content_type = "application/json"),
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "Client-chosen key (printable ASCII, no spaces, at most 255); retries reuse it")),
    responses((status = 201, description = "Enrolled"),
        (status = 401, description = "A token was sent and is not valid", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token other than an insurer's was sent", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already enrolled or key reused"),
        (status = 422, description = "Validation failed"), (status = 429, description = "Too many sign-ups from this address")))]
#[post("/v1/enrollments")]
pub async fn enroll(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    MaybeCaller(principal): MaybeCaller,
) -> Result<HttpResponse, ApiError> {
    let actor = match &principal {
        Some(p) => {
            authorize(p, Action::EnrolOnBehalf)?;
            p.actor()
        }
        None => {
            let address = req
                .peer_addr()
                .map(|a| a.ip())
                .ok_or_else(|| ApiError::Malformed("no client address".into()))?;
            state
                .enrollment_limiter
                .check(address, Instant::now())
                .map_err(ApiError::RateLimited)?;
            format!("anonymous:{address}")
        }
    };
    let key = body::idempotency_key(&req)?;
    let signup = tokens::signup_hash(&actor, &key);
    let request: EnrollmentRequest =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    let (recorded, token, issued) = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            let recorded = enrollment::enroll(conn, &ctx, &key, &request)?;
            let member_id = recorded.body.member.id;
            let secret = auth::new_token_secret();
            let issued = engine::db::write_transaction(conn, |conn| {
                tokens::issue_for_signup(conn, &ctx, &secret, member_id, &signup)
            })?;
            Ok((recorded, secret, issued))
        })
        .await?;
    for replaced in &issued.replaced {
        state.token_cache.forget(*replaced);
    }
    let mut body = super::sorted_json(&recorded.body)?;
    body["token"] = serde_json::Value::String(token);
    body["token_id"] = issued.principal.token_id.into();
    Ok(super::created_json(&recorded, body))
}

/// A member, with their enrollments. The resident ID is shown masked.
#[utoipa::path(get, path = "/v1/members/{id}", tag = "enrollment",
    params(("id" = i64, Path, minimum = 1, description = "Member id")),
    responses((status = 200, description = "The member"), (status = 404, description = "No such member")),
    security(("bearer" = [])))]
#[get("/v1/members/{id}")]
pub async fn member(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req, &principal).await?;
    let view = state
        .run(move |conn, _| enrollment::member(conn, id))
        .await?;
    Ok(ok(&view))
}

/// What is left of the member's cover: deductible met and left, limit used
/// and left, per benefit; each active treatment course (cycles dispensed and
/// left, the next assessment due, its case reserve) and the case reserve as
/// of today (China time).
#[utoipa::path(get, path = "/v1/members/{id}/coverage", tag = "enrollment",
    params(("id" = i64, Path, minimum = 1, description = "Member id")),
    responses((status = 200, description = "Cover left per product and benefit")),
    security(("bearer" = [])))]
#[get("/v1/members/{id}/coverage")]
pub async fn coverage(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req, &principal).await?;
    let today = engine::store::china_date(state.now());
    let view = state
        .run(move |conn, _| engine::store::authorizations::coverage_on(conn, id, today))
        .await?;
    Ok(ok(&view))
}
