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
/// An insurer cancelled the run (`POST /v1/pricing/runs/{id}/cancel`).
pub const CANCELLED: &str = "cancelled";
/// The run took longer than the server's budget per run and was stopped.
pub const TIMED_OUT: &str = "timed_out";
/// Every status a run can have; all but `running` are final.
pub const STATUSES: [&str; 6] = [
    RUNNING,
    SUCCEEDED,
    FAILED,
    INTERRUPTED,
    CANCELLED,
    TIMED_OUT,
];

/// How a run ended, as the run itself reports it.
#[derive(Debug, Clone, Copy)]
pub enum RunEnd<'a> {
    Succeeded(&'a serde_json::Value),
    Failed(&'a str),
    /// Stopped at its budget; the text says which.
    TimedOut(&'a str),
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = pricing_runs)]
pub struct PricingRunRow {
    pub id: i64,
    pub requested_by: String,
    pub scenario_name: String,
    pub scenario_hash: String,
    #[schema(schema_with = status_schema)]
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

/// The schema of a run's `status`: one of [`STATUSES`].
fn status_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(STATUSES))
        .description(Some(
            "`running` until the run ends; then `succeeded`, `failed`, `interrupted` (the server \
             stopped), `cancelled` (an insurer cancelled it) or `timed_out` (it exceeded the \
             server's time budget per run)",
        ))
        .into()
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

/// Records the end of a run, as the run reports it: its results, or why it failed or stopped.
/// A run no longer `running` (cancelled meanwhile) is left as it is; returns whether the row
/// was updated.
pub fn finish(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    id: i64,
    end: RunEnd<'_>,
) -> Result<bool, StoreError> {
    let (status, error, result) = match end {
        RunEnd::Succeeded(value) => (SUCCEEDED, None, Some(serde_json::to_string(value)?)),
        RunEnd::Failed(message) => (FAILED, Some(message), None),
        RunEnd::TimedOut(message) => (TIMED_OUT, Some(message), None),
    };
    write_transaction(conn, |conn| {
        let updated = diesel::update(
            pricing_runs::table
                .find(id)
                .filter(pricing_runs::status.eq(RUNNING)),
        )
        .set((
            pricing_runs::status.eq(status),
            pricing_runs::error.eq(error),
            pricing_runs::result.eq(&result),
            pricing_runs::finished_at.eq(Some(audit::truncate_to_micros(ctx.now.naive_utc()))),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Ok(false);
        }
        audit::append(
            conn,
            &ctx.keys.audit,
            ctx.now,
            ctx.actor,
            "pricing_run.finished",
            &format!("pricing_run:{id}"),
            &serde_json::json!({ "run_id": id, "status": status }),
        )?;
        Ok(true)
    })
}

/// Cancels a running run on behalf of `ctx.actor`: it is `cancelled` from now on, whatever the
/// computation still does before it reaches its next check. 404 for no such run, 409 when the
/// run has already ended.
pub fn cancel(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    id: i64,
) -> Result<PricingRunRow, StoreError> {
    write_transaction(conn, |conn| {
        let updated = diesel::update(
            pricing_runs::table
                .find(id)
                .filter(pricing_runs::status.eq(RUNNING)),
        )
        .set((
            pricing_runs::status.eq(CANCELLED),
            pricing_runs::error.eq(Some(format!("cancelled by {}", ctx.actor))),
            pricing_runs::finished_at.eq(Some(audit::truncate_to_micros(ctx.now.naive_utc()))),
        ))
        .execute(conn)?;
        let row = get(conn, id)?;
        if updated == 0 {
            return Err(StoreError::conflict(
                "run_not_running",
                format!("pricing run {id} has already ended: it is {}", row.status),
            ));
        }
        audit::append(
            conn,
            &ctx.keys.audit,
            ctx.now,
            ctx.actor,
            "pricing_run.cancelled",
            &format!("pricing_run:{id}"),
            &serde_json::json!({ "run_id": id, "status": CANCELLED }),
        )?;
        Ok(row)
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
