//! HTTP handlers: extract, parse into domain types, one engine call, map to a
//! response. Each is about a screen long; the rules live in `engine`.

pub mod audit;
pub mod authorizations;
pub mod claims;
pub mod docs;
pub mod enrollments;
pub mod fhir;
pub mod ops;
pub mod pricing;
pub mod products;
pub mod tokens;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use engine::store::Recorded;
use engine::store::tokens::{Principal, Role};
use serde::Serialize;

use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

/// Parses a numeric path id; anything else names no resource (404).
pub fn path_id(req: &HttpRequest, name: &str) -> Result<i64, ApiError> {
    let raw = req.match_info().get(name).unwrap_or("");
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no resource at id {raw:?}")))
}

/// 201 with the stored body; a replay says so in a header and returns the
/// original body unchanged.
pub fn created<T: Serialize>(recorded: &Recorded<T>) -> Result<HttpResponse, ApiError> {
    Ok(created_json(recorded, sorted_json(&recorded.body)?))
}

/// 201 with `body`, the JSON of `recorded`'s body (with fields the edge
/// adds).
pub fn created_json<T>(recorded: &Recorded<T>, body: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::Created();
    if recorded.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(body)
}

/// A write's response as JSON with its object keys sorted: the form an
/// idempotency key stores, so that a first answer and its replays are the
/// same bytes.
pub fn sorted_json<T: Serialize>(body: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::Internal(format!("response to JSON: {e}")))
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// The member a read of `/v1/members/{id}/...` is about, once the caller
/// may read it: the enrollee themself, an insurer or an auditor (whose read
/// is audited).
pub async fn readable_member(
    state: &Arc<AppState>,
    req: &HttpRequest,
    principal: &Principal,
) -> Result<i64, ApiError> {
    authorize(principal, Action::ReadMembers)?;
    let member_id = path_id(req, "id")?;
    authorize(principal, Action::ReadMember { member_id })?;
    note_read(state, principal, req).await?;
    Ok(member_id)
}

/// Longest text of a read that the audit chain keeps (a path, or one
/// parameter's value); the chain is permanent, so what a reader sends must
/// not decide how much it grows.
const MAX_RECORDED_CHARS: usize = 128;

fn bounded(text: &str) -> String {
    text.chars().take(MAX_RECORDED_CHARS).collect()
}

/// The query parameters of a read, as name and value, each bounded. The
/// server has already refused any parameter the route does not take.
fn read_parameters(query: &str) -> serde_json::Value {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default();
    pairs
        .into_iter()
        .take(16)
        .map(
            |(name, value)| serde_json::json!({ "name": bounded(&name), "value": bounded(&value) }),
        )
        .collect()
}

/// Auditors' reads are themselves audited: who read what, and when.
pub async fn note_read(
    state: &Arc<AppState>,
    principal: &Principal,
    req: &HttpRequest,
) -> Result<(), ApiError> {
    if principal.role != Role::Auditor {
        return Ok(());
    }
    let actor = principal.actor();
    let what = serde_json::json!({
        "method": req.method().as_str(),
        "path": bounded(req.path()),
        "query": read_parameters(req.query_string()),
    });
    state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            engine::db::write_transaction(conn, |conn| {
                engine::audit::append(
                    conn,
                    &ctx.keys.audit,
                    ctx.now,
                    ctx.actor,
                    "audit.read",
                    "http",
                    &what,
                )
                .map(|_| ())
            })
        })
        .await
}
