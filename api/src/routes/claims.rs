//! Claims: submit, read, list, reverse, appeal.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use engine::domain::adjudication::AppealEvidence;
use engine::domain::claim::ClaimSubmission;
use engine::store::Recorded;
use engine::store::claims::{self, ClaimFilter, ReversalRequest};
use engine::store::tokens::{Principal, Role};
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::auth::{self, Allow};
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;

use super::{created, note_read, ok, path_id, readable_member};

fn record_metrics(state: &AppState, recorded: &Recorded) {
    if recorded.replayed {
        return;
    }
    let decision = &recorded.body["decision"];
    let status = decision["status"].as_str().unwrap_or("unknown");
    // Amounts are decimal strings in CNY; the metric adds whole fen.
    let payable_fen = decision["totals"]["payable"]
        .as_str()
        .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
        .and_then(|d| (d * rust_decimal::Decimal::ONE_HUNDRED).to_i64())
        .unwrap_or(0);
    state.metrics.observe_claim(status, payable_fen);
}

/// May this caller read (or appeal) this claim?
pub(crate) async fn authorize_claim(
    state: &Arc<AppState>,
    principal: &Principal,
    claim_id: i64,
) -> Result<(), ApiError> {
    let (member_id, submitted_by) = state
        .run(move |conn, _| claims::ownership(conn, claim_id))
        .await?;
    match &principal.role {
        Role::Enrollee { member_id: own } if *own != member_id => Err(ApiError::Forbidden(
            "an enrollee token can only access its own claims",
        )),
        Role::Provider { .. } if submitted_by != principal.actor() => Err(ApiError::Forbidden(
            "a provider can only access the claims it submitted",
        )),
        _ => Ok(()),
    }
}

/// Submits a claim; responds with the decision and its explanation of
/// benefits.
#[utoipa::path(post, path = "/v1/claims", tag = "claims",
    request_body(content = crate::openapi::ClaimRequestDoc, content_type = "application/json"),
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "Client-chosen key (printable ASCII, no spaces, at most 255); retries reuse it")),
    responses((status = 201, description = "Decided; body holds the decision and explanation of benefits"),
        (status = 409, description = "Idempotency key reused with another body"), (status = 422, description = "Validation failed")),
    security(("bearer" = [])))]
#[post("/v1/claims")]
pub async fn submit(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::required(&req, &state).await?;
    auth::allow(
        &principal,
        &[Allow::Enrollee, Allow::Provider, Allow::Insurer],
    )?;
    let key = body::idempotency_key(&req)?;
    let submission: ClaimSubmission =
        body::read_json(&req, payload, state.limits.body_bytes).await?;
    auth::own_member(&principal, submission.member_id)?;
    if let Role::Provider { provider_id } = &principal.role
        && submission.provider_id.trim() != provider_id
    {
        return Err(ApiError::Forbidden(
            "a provider token can only submit its own claims",
        ));
    }
    let recorded = state
        .claims
        .submit(principal.actor(), key, submission)
        .await?;
    record_metrics(&state, &recorded);
    Ok(created(&recorded))
}

/// A claim with every decision and its explanation of benefits.
#[utoipa::path(get, path = "/v1/claims/{id}", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Claim id")),
    responses((status = 200, description = "The claim"), (status = 404, description = "No such claim")),
    security(("bearer" = [])))]
#[get("/v1/claims/{id}")]
pub async fn get_one(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::required(&req, &state).await?;
    let id = path_id(&req, "id")?;
    authorize_claim(&state, &principal, id).await?;
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
    responses((status = 200, description = "A page of claims")),
    security(("bearer" = [])))]
#[get("/v1/members/{id}/claims")]
pub async fn for_member(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req).await?;
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
    responses((status = 200, description = "A page of the caller's submitted claims")),
    security(("bearer" = [])))]
#[get("/v1/claims")]
pub async fn submitted_by_me(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::required(&req, &state).await?;
    auth::allow(&principal, &[Allow::Provider, Allow::Insurer])?;
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
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "Client-chosen key (printable ASCII, no spaces, at most 255); retries reuse it")),
    request_body(content = crate::openapi::ReversalRequestDoc, content_type = "application/json"),
    responses((status = 201, description = "Reversed"), (status = 409, description = "not_reversible or already_reversed")),
    security(("bearer" = [])))]
#[post("/v1/claims/{id}/reversal")]
pub async fn reverse(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::required(&req, &state).await?;
    auth::allow(&principal, &[Allow::Insurer])?;
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
    Ok(created(&recorded))
}

/// Appeals a claim's denied items with new evidence (biomarker results per
/// item); they are decided again as a new decision linked to the first.
#[utoipa::path(post, path = "/v1/claims/{id}/appeal", tag = "claims",
    params(("id" = i64, Path, minimum = 1, description = "Claim id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$", description = "Client-chosen key (printable ASCII, no spaces, at most 255); retries reuse it")),
    request_body(content = crate::openapi::AppealRequestDoc, content_type = "application/json"),
    responses((status = 201, description = "Decided again"), (status = 409, description = "not_appealable")),
    security(("bearer" = [])))]
#[post("/v1/claims/{id}/appeal")]
pub async fn appeal(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::required(&req, &state).await?;
    auth::allow(
        &principal,
        &[Allow::Enrollee, Allow::Provider, Allow::Insurer],
    )?;
    let id = path_id(&req, "id")?;
    authorize_claim(&state, &principal, id).await?;
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
    Ok(created(&recorded))
}
