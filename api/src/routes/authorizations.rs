//! Authorised treatment courses: request, read, list, follow-up, cancel.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use engine::domain::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission,
};
use engine::store::{authorizations, china_date};

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::{created, note_read, ok, path_id, readable_member};

/// The member a course is for (404 if there is no such course).
async fn member_of(state: &Arc<AppState>, authorization_id: i64) -> Result<i64, ApiError> {
    state
        .run(move |conn, _| authorizations::member_of(conn, authorization_id))
        .await
}

/// Requests a treatment course of a specialty drug; it is decided at once
/// (status `active` with the cycles authorised, or `denied` with reasons).
#[utoipa::path(post, path = "/v1/authorizations", tag = "authorizations",
    request_body(content = AuthorizationSubmission, content_type = "application/json"),
    params(crate::body::IdempotencyKeyHeader),
    responses((status = 201, description = "Decided: active or denied, with the cycles requested and authorised", body = engine::store::authorizations::AuthorizationView),
        (status = 409, description = "Idempotency key reused with another body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed (e.g. start_date before today, China time)", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[post("/v1/authorizations")]
pub async fn request(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::RequestAuthorizations)?;
    let key = body::idempotency_key(&req)?;
    let submission: AuthorizationSubmission =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    authorize(
        &principal,
        Action::RequestAuthorization {
            member_id: submission.member_id,
        },
    )?;
    let actor = principal.actor();
    let recorded = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            authorizations::request(conn, &ctx, &key, &submission)
        })
        .await?;
    if !recorded.replayed {
        state
            .metrics
            .observe_authorization(recorded.body.status.as_str());
    }
    created(&recorded)
}

/// A course with its cycles, assessments and cancel; `status` as of today
/// (China time).
#[utoipa::path(get, path = "/v1/authorizations/{id}", tag = "authorizations",
    params(("id" = i64, Path, minimum = 1, description = "Authorisation id")),
    responses((status = 200, description = "The authorisation", body = engine::store::authorizations::AuthorizationView), (status = 404, description = "No such authorisation")),
    security(("bearer" = [])))]
#[get("/v1/authorizations/{id}")]
pub async fn get_one(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    let member_id = member_of(&state, id).await?;
    authorize(&principal, Action::ReadAuthorization { member_id })?;
    note_read(&state, &principal, &req).await?;
    let today = china_date(state.now());
    let view = state
        .run(move |conn, _| authorizations::view_on(conn, id, today))
        .await?;
    Ok(ok(&view))
}

/// A member's courses, oldest first.
#[utoipa::path(get, path = "/v1/members/{id}/authorizations", tag = "authorizations",
    params(("id" = i64, Path, minimum = 1, description = "Member id")),
    responses((status = 200, description = "The member's authorisations", body = Vec<engine::store::authorizations::AuthorizationView>), (status = 404, description = "No such member")),
    security(("bearer" = [])))]
#[get("/v1/members/{id}/authorizations")]
pub async fn for_member(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req, &principal).await?;
    let today = china_date(state.now());
    let views = state
        .run(move |conn, _| authorizations::list_for_member(conn, id, today))
        .await?;
    Ok(ok(&views))
}

/// Records an efficacy assessment (RECIST 1.1) on a course that is not
/// denied. It does not decide again claims already decided.
#[utoipa::path(post, path = "/v1/authorizations/{id}/followups", tag = "authorizations",
    params(("id" = i64, Path, minimum = 1, description = "Authorisation id"), crate::body::IdempotencyKeyHeader),
    request_body(content = AssessmentSubmission, content_type = "application/json"),
    responses((status = 201, description = "Recorded; the authorisation with it", body = engine::store::authorizations::AuthorizationView),
        (status = 409, description = "authorization_denied, or the key reused", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "assessed_on before the start or in the future, or an unknown response", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[post("/v1/authorizations/{id}/followups")]
pub async fn followup(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::RecordFollowup)?;
    let id = path_id(&req, "id")?;
    let key = body::idempotency_key(&req)?;
    let submission: AssessmentSubmission =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    let actor = principal.actor();
    let recorded = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            authorizations::record_followup(conn, &ctx, &key, id, &submission)
        })
        .await?;
    created(&recorded)
}

/// Cancels an active course, dated today (China time): a dispensing today
/// is still covered.
#[utoipa::path(post, path = "/v1/authorizations/{id}/cancel", tag = "authorizations",
    params(("id" = i64, Path, minimum = 1, description = "Authorisation id"), crate::body::IdempotencyKeyHeader),
    request_body(content = CancelSubmission, content_type = "application/json"),
    responses((status = 201, description = "Cancelled; the authorisation with its cancel", body = engine::store::authorizations::AuthorizationView),
        (status = 409, description = "not_active, or the key reused", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[post("/v1/authorizations/{id}/cancel")]
pub async fn cancel(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::CancelAuthorizations)?;
    let id = path_id(&req, "id")?;
    let member_id = member_of(&state, id).await?;
    authorize(&principal, Action::CancelAuthorization { member_id })?;
    let key = body::idempotency_key(&req)?;
    let submission: CancelSubmission =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    let actor = principal.actor();
    let recorded = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            authorizations::cancel(conn, &ctx, &key, id, &submission)
        })
        .await?;
    created(&recorded)
}
