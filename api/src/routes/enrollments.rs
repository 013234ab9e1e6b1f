//! Sign-up and members.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use engine::domain::enrollment::EnrollmentRequest;
use engine::store::enrollment::{self, CoverageView, Enrolled, MemberView};
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
    request_body(content = EnrollmentRequest, content_type = "application/json"),
    params(crate::body::IdempotencyKeyHeader),
    responses((status = 201, description = "Enrolled: the member, the enrollment's id and the enrollee's token", body = SignUp,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key and body"))),
        (status = 401, description = "A token was sent and is not valid"),
        (status = 403, description = "A token other than an insurer's was sent"),
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
    let body = super::sorted_json(&SignUp {
        enrolled: recorded.body.clone(),
        token,
        token_id: issued.principal.token_id,
    })?;
    Ok(super::created_json(&recorded, body))
}

/// The answer to a sign-up: the stored enrollment (the same on a replay)
/// with the token issued for this answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SignUp {
    #[serde(flatten)]
    enrolled: Enrolled,
    /// The enrollee's bearer token, shown once; a replay issues a new one
    /// and the one before stops working.
    token: String,
    /// The token's id, for `DELETE /v1/tokens/{id}`.
    token_id: i64,
}

/// A member, with their enrollments. The resident ID is shown masked.
#[utoipa::path(get, path = "/v1/members/{id}", tag = "enrollment",
    params(("id" = i64, Path, minimum = 1, description = "Member id")),
    responses((status = 200, description = "The member", body = MemberView), (status = 404, description = "No such member")),
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
    responses((status = 200, description = "Cover left per product and benefit", body = CoverageView)),
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
