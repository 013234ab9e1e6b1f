//! The auditor's view of the hash-chained audit log.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use engine::audit::{self, AuditEvent, ChainHead, EventQuery, VerifyReport};
use serde::Deserialize;

use crate::auth;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::query::{AUDIT_PAGE, EXPORT_PAGE, PageSize};
use crate::state::AppState;

use super::{note_read, ok};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// Only events with a sequence number above this (the cursor).
    pub after_seq: Option<i64>,
    /// Only events up to and including this sequence number.
    pub until_seq: Option<i64>,
    /// Only events at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

impl RangeQuery {
    fn to_query(&self, page: PageSize) -> Result<EventQuery, ApiError> {
        Ok(EventQuery {
            after_seq: crate::query::cursor(self.after_seq, "after_seq")?,
            until_seq: crate::query::cursor(self.until_seq, "until_seq")?,
            from: self.from.map(|t| t.naive_utc()),
            to: self.to.map(|t| t.naive_utc()),
            limit: page.limit(self.limit)?,
        })
    }
}

/// The caller may read the audit log; an auditor's read is itself logged.
async fn auditor(
    state: &Arc<AppState>,
    req: &HttpRequest,
    caller: &auth::Caller,
) -> Result<(), ApiError> {
    authorize(&caller.0, Action::ReadAuditLog)?;
    note_read(state, &caller.0, req).await
}

/// A page of audit events, oldest first.
#[utoipa::path(get, path = "/v1/audit/events", tag = "audit",
    params(("after_seq" = Option<i64>, Query, minimum = 0, description = "Cursor: events after this sequence"),
        ("until_seq" = Option<i64>, Query, minimum = 0, description = "Last sequence to include"),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339 start time"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339 end time (exclusive)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100")),
    responses((status = 200, description = "Events and the next cursor", body = EventPage)),
    security(("bearer" = [])))]
#[get("/v1/audit/events")]
pub async fn events(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<RangeQuery>,
    caller: auth::Caller,
) -> Result<HttpResponse, ApiError> {
    auditor(&state, &req, &caller).await?;
    let q = query.to_query(AUDIT_PAGE)?;
    let limit = q.limit;
    let page = state.run(move |conn, _| audit::list(conn, &q)).await?;
    let next_cursor = if page.len() as i64 == limit {
        page.last().map(|e| e.seq)
    } else {
        None
    };
    // Keys sorted, as the page has always been sent.
    Ok(ok(&super::sorted_json(&EventPage {
        events: page,
        next_cursor,
    })?))
}

/// A page of audit events, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `after_seq` for the next page; null on the last one.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Sequence of a head exported earlier.
    pub head_seq: Option<i64>,
    /// Hash of that head.
    pub head_hash: Option<String>,
}

/// Walks the chain and names the first broken event; with an exported head,
/// also detects deletion of the newest events.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    params(("head_seq" = Option<i64>, Query, description = "Sequence of an exported head"),
        ("head_hash" = Option<String>, Query, description = "Hash of that head")),
    responses((status = 200, description = "Verification report (valid or not)", body = VerifyReport),
        (status = 400, description = "Only one of head_seq and head_hash")),
    security(("bearer" = [])))]
#[get("/v1/audit/verify")]
pub async fn verify(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<VerifyQuery>,
    caller: auth::Caller,
) -> Result<HttpResponse, ApiError> {
    auditor(&state, &req, &caller).await?;
    let head = match (query.head_seq, query.head_hash.clone()) {
        (Some(seq), Some(hash)) => Some(ChainHead { seq, hash }),
        (None, None) => None,
        _ => {
            return Err(ApiError::Malformed(
                "give both head_seq and head_hash, or neither".into(),
            ));
        }
    };
    let report = state
        .run(move |conn, state| audit::verify(conn, &state.keys.audit, head.as_ref()))
        .await?;
    Ok(ok(&report))
}

/// A range of events as JSON Lines, for off-box keeping.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit",
    params(("after_seq" = Option<i64>, Query, minimum = 0, description = "Events after this sequence"),
        ("until_seq" = Option<i64>, Query, minimum = 0, description = "Last sequence to include"),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339 start time"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339 end time (exclusive)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100000, description = "1 to 100000, default 100000")),
    responses((status = 200, description = "One JSON event per line (each an AuditEvent)", body = String, content_type = "application/x-ndjson")),
    security(("bearer" = [])))]
#[get("/v1/audit/export")]
pub async fn export(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<RangeQuery>,
    caller: auth::Caller,
) -> Result<HttpResponse, ApiError> {
    auditor(&state, &req, &caller).await?;
    let q = query.to_query(EXPORT_PAGE)?;
    let max = q.limit;
    let body = state
        .run(move |conn, _| {
            let mut out = String::new();
            let mut count = 0_i64;
            let mut query = q;
            query.limit = max;
            audit::for_each_event(conn, query, |event| {
                if count < max {
                    out.push_str(&serde_json::to_string(event)?);
                    out.push('\n');
                    count += 1;
                }
                Ok(())
            })?;
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(body))
}
