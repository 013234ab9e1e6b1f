//! Claims: submit, read, list, reverse, appeal.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use engine::domain::adjudication::AppealEvidence;
use engine::domain::claim::{ClaimSubmission, validate_claim};
use engine::store::claims::{self, ClaimFilter, ClaimPage, ClaimView, Ownership, ReversalRequest};
use engine::store::{Recorded, china_date};
use serde::Deserialize;

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::{created, note_read, ok, path_id, readable_member};

/// Counts a claim's decision in force (a replay was counted the first time).
fn record_metrics(state: &AppState, recorded: &Recorded<ClaimView>) {
    if recorded.replayed {
        return;
    }
    let decision = &recorded.body.decision.decision;
    state
        .metrics
        .observe_claim(decision.status, decision.totals.payable);
}

/// Who a claim is for and who submitted it, for the policy (404 if none).
pub(crate) async fn ownership(state: &Arc<AppState>, claim_id: i64) -> Result<Ownership, ApiError> {
    state
        .run(move |conn, _| claims::ownership(conn, claim_id))
        .await
}

/// Submits a claim; responds with the decision and its explanation of
/// benefits.
#[utoipa::path(post, path = "/v1/claims", tag = "claims",
    request_body(content = ClaimSubmission, content_type = "application/json"),
    params(crate::body::IdempotencyKeyHeader),
    responses((status = 201, description = "Decided; body holds the decision and explanation of benefits", body = ClaimView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key and body"))),
        (status = 409, description = "Idempotency key reused with another body"), (status = 422, description = "Validation failed"),
        (status = 503, description = "The claim queue is full, or the database is busy; retry after Retry-After")),
    security(("bearer" = [])))]
#[post("/v1/claims")]
pub async fn submit(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::SubmitClaims)?;
    let key = body::idempotency_key(&req)?;
    let submission: ClaimSubmission =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    authorize(
        &principal,
        Action::SubmitClaim {
            member_id: submission.member_id,
            provider_id: &submission.provider_id,
        },
    )?;
    // Parsed here, so that the writer's queue carries only valid claims.
    let claim =
        validate_claim(&submission, china_date(state.now())).map_err(ApiError::Validation)?;
    let recorded = state.claims.submit(principal.actor(), key, claim).await?;
    record_metrics(&state, &recorded);
    created(&recorded)
}

/// A claim with every decision and its explanation of benefits.
#[utoipa::path(get, path = "/v1/claims/{id}", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Claim id")),
    responses((status = 200, description = "The claim", body = ClaimView), (status = 404, description = "No such claim")),
    security(("bearer" = [])))]
#[get("/v1/claims/{id}")]
pub async fn get_one(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req, "id")?;
    authorize(&principal, Action::ReadClaim(&ownership(&state, id).await?))?;
    note_read(&state, &principal, &req).await?;
    let view = state.run(move |conn, _| claims::view(conn, id)).await?;
    Ok(ok(&view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
}

/// A member's claims, newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/members/{id}/claims", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Member id"),
        ("cursor" = Option<i64>, Query, minimum = 0, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20")),
    responses((status = 200, description = "A page of claims", body = ClaimPage)),
    security(("bearer" = [])))]
#[get("/v1/members/{id}/claims")]
pub async fn for_member(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req, &principal).await?;
    let PageQuery { cursor, limit } = query.into_inner();
    let limit = crate::query::CLAIM_PAGE.limit(limit)?;
    let cursor = crate::query::cursor(cursor, "cursor")?;
    let page = state
        .run(move |conn, _| claims::list_for_member(conn, id, cursor, limit))
        .await?;
    Ok(ok(&page))
}

/// The claims a provider submitted, newest first.
#[utoipa::path(get, path = "/v1/claims", tag = "claims",
    params(("cursor" = Option<i64>, Query, minimum = 0, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20")),
    responses((status = 200, description = "A page of the caller's submitted claims", body = ClaimPage)),
    security(("bearer" = [])))]
#[get("/v1/claims")]
pub async fn submitted_by_me(
    state: web::Data<Arc<AppState>>,
    query: web::Query<PageQuery>,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::ListSubmittedClaims)?;
    let actor = principal.actor();
    let PageQuery { cursor, limit } = query.into_inner();
    let limit = crate::query::CLAIM_PAGE.limit(limit)?;
    let cursor = crate::query::cursor(cursor, "cursor")?;
    let page = state
        .run(move |conn, _| {
            claims::list_page(conn, ClaimFilter::SubmittedBy(&actor), cursor, limit)
        })
        .await?;
    Ok(ok(&page))
}

/// Reverses a paid claim (insurer only): the exact negatives of its ledger
/// entries are posted.
#[utoipa::path(post, path = "/v1/claims/{id}/reversal", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Claim id"),
        crate::body::IdempotencyKeyHeader),
    request_body(content = ReversalRequest, content_type = "application/json"),
    responses((status = 201, description = "Reversed: the claim with its reversal and the amounts reversed per benefit", body = ClaimView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key and body"))),
        (status = 409, description = "not_reversible, already_reversed, or the key reused with another body")),
    security(("bearer" = [])))]
#[post("/v1/claims/{id}/reversal")]
pub async fn reverse(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::ReverseClaim)?;
    let id = path_id(&req, "id")?;
    let key = body::idempotency_key(&req)?;
    let request: ReversalRequest = body::read_json(&req, payload, state.limits.body_bytes).await?;
    let actor = principal.actor();
    let recorded = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            claims::reverse(conn, &ctx, &key, id, &request)
        })
        .await?;
    created(&recorded)
}

/// Appeals a claim's denied items with new evidence (biomarker results per
/// item); they are decided again as a new decision linked to the first.
#[utoipa::path(post, path = "/v1/claims/{id}/appeal", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Claim id"),
        crate::body::IdempotencyKeyHeader),
    request_body(content = AppealEvidence, content_type = "application/json"),
    responses((status = 201, description = "Decided again: the claim with the new decision in force", body = ClaimView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key and body"))),
        (status = 409, description = "not_appealable, or the key reused with another body")),
    security(("bearer" = [])))]
#[post("/v1/claims/{id}/appeal")]
pub async fn appeal(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::AppealClaims)?;
    let id = path_id(&req, "id")?;
    authorize(
        &principal,
        Action::AppealClaim(&ownership(&state, id).await?),
    )?;
    let key = body::idempotency_key(&req)?;
    let evidence: AppealEvidence = body::read_json(&req, payload, state.limits.body_bytes).await?;
    let actor = principal.actor();
    let recorded = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            claims::appeal(conn, &ctx, &key, id, &evidence)
        })
        .await?;
    record_metrics(&state, &recorded);
    created(&recorded)
}
