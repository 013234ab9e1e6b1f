//! Pricing runs requested over the API: a row per run with its status and,
//! once finished, its results (the same JSON as `puhui price --json`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::error::StoreError;
use crate::schema::pricing_runs;
use crate::store::WriteContext;

pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
/// The server stopped while the run was going; it will not finish.
pub const INTERRUPTED: &str = "interrupted";

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = pricing_runs)]
pub struct PricingRunRow {
    pub id: i64,
    pub requested_by: String,
    pub scenario_name: String,
    pub scenario_hash: String,
    #[schema(pattern = "^(running|succeeded|failed|interrupted)$")]
    pub status: String,
    pub error: Option<String>,
    #[serde(skip)]
    pub result: Option<String>,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<NaiveDateTime>,
}

pub fn start(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    scenario_name: &str,
    scenario_hash: &str,
) -> Result<i64, StoreError> {
    write_transaction(conn, |conn| {
        let id: i64 = diesel::insert_into(pricing_runs::table)
            .values((
                pricing_runs::requested_by.eq(ctx.actor),
                pricing_runs::scenario_name.eq(scenario_name),
                pricing_runs::scenario_hash.eq(scenario_hash),
                pricing_runs::status.eq(RUNNING),
                pricing_runs::created_at.eq(audit::truncate_to_micros(ctx.now.naive_utc())),
            ))
            .returning(pricing_runs::id)
            .get_result(conn)?;
        audit::append(
            conn,
            &ctx.keys.audit,
            ctx.now,
            ctx.actor,
            "pricing_run.started",
            &format!("pricing_run:{id}"),
            &serde_json::json!({ "run_id": id, "scenario_name": scenario_name, "scenario_hash": scenario_hash }),
        )?;
        Ok(id)
    })
}

/// Records the end of a run: its results, or why it failed.
pub fn finish(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    id: i64,
    outcome: Result<&serde_json::Value, &str>,
) -> Result<(), StoreError> {
    write_transaction(conn, |conn| {
        let (status, error, result) = match outcome {
            Ok(value) => (SUCCEEDED, None, Some(serde_json::to_string(value)?)),
            Err(message) => (FAILED, Some(message.to_owned()), None),
        };
        diesel::update(pricing_runs::table.find(id))
            .set((
                pricing_runs::status.eq(status),
                pricing_runs::error.eq(error),
                pricing_runs::result.eq(result),
                pricing_runs::finished_at.eq(Some(audit::truncate_to_micros(ctx.now.naive_utc()))),
            ))
            .execute(conn)?;
        audit::append(
            conn,
            &ctx.keys.audit,
            ctx.now,
            ctx.actor,
            "pricing_run.finished",
            &format!("pricing_run:{id}"),
            &serde_json::json!({ "run_id": id, "status": status }),
        )?;
        Ok(())
    })
}

pub fn get(conn: &mut DbConn, id: i64) -> Result<PricingRunRow, StoreError> {
    pricing_runs::table
        .find(id)
        .select(PricingRunRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("pricing run", id))
}

/// At start-up: runs left `running` by a stopped server will never finish.
pub fn mark_interrupted(
    conn: &mut DbConn,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    Ok(
        diesel::update(pricing_runs::table.filter(pricing_runs::status.eq(RUNNING)))
            .set((
                pricing_runs::status.eq(INTERRUPTED),
                pricing_runs::finished_at.eq(Some(audit::truncate_to_micros(now.naive_utc()))),
            ))
            .execute(conn)?,
    )
}
