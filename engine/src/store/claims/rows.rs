//! The rows of the claim tables: as read, as written, and the rows a
//! decision adds beside itself.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::DbConn;
use crate::domain::adjudication::{ClaimDecision, ItemFingerprint, ItemOutcome};
use crate::error::StoreError;
use crate::schema::{claims, decisions, paid_items, reversals};
use crate::store::ledger::NewLedgerEntry;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = claims)]
pub struct ClaimRow {
    pub id: i64,
    pub member_id: i64,
    pub enrollment_id: i64,
    pub product_version_id: i64,
    pub kind: String,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub submission: String,
    pub submitted_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = decisions)]
pub struct DecisionRow {
    pub id: i64,
    pub claim_id: i64,
    pub sequence: i32,
    pub parent_decision_id: Option<i64>,
    pub product_version_id: i64,
    pub status: String,
    pub payable_fen: i64,
    pub body: String,
    pub decided_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reversals)]
pub struct ReversalRow {
    pub id: i64,
    pub claim_id: i64,
    pub reason: String,
    pub reversed_by: String,
    pub created_at: NaiveDateTime,
}

/// A claim to insert, with the id reserved for it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = claims)]
pub(crate) struct NewClaim {
    pub id: i64,
    pub member_id: i64,
    pub enrollment_id: i64,
    pub product_version_id: i64,
    pub kind: String,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub submission: String,
    pub submitted_by: String,
    pub created_at: NaiveDateTime,
}

/// A decision to insert, with the id reserved for it (the response, the
/// audit event and the child rows name it before it is written).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = decisions, treat_none_as_null = true)]
pub(crate) struct NewDecision {
    pub id: i64,
    pub claim_id: i64,
    pub sequence: i32,
    pub parent_decision_id: Option<i64>,
    pub product_version_id: i64,
    pub status: String,
    pub payable_fen: i64,
    pub body: String,
    pub decided_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = paid_items, treat_none_as_null = true)]
pub(crate) struct NewPaidItem {
    pub member_id: i64,
    pub claim_id: i64,
    pub decision_id: i64,
    pub item_index: i32,
    pub fingerprint: String,
    /// The course and cycle a paid dispensing uses.
    pub authorization_id: Option<i64>,
    pub cycle: Option<i32>,
}

/// Rows per INSERT statement. At eleven columns at most this keeps every
/// statement far below the bound-parameter limits (32,766 on SQLite, 65,535
/// on PostgreSQL), however many items a claim or a batch carries.
pub(crate) const ROWS_PER_INSERT: usize = 1_000;

/// Inserts rows with one multi-row INSERT per chunk, on the concrete
/// connection: both backends take multi-row VALUES, the `DbConn` enum does
/// not.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks($crate::store::claims::rows::ROWS_PER_INSERT) {
            match &mut *$conn {
                $crate::db::DbConn::Postgres(c) => {
                    diesel::insert_into($table).values(chunk).execute(c)?
                }
                $crate::db::DbConn::Sqlite(c) => {
                    diesel::insert_into($table).values(chunk).execute(c)?
                }
            };
        }
    };
}
pub(crate) use insert_rows;

/// The rows a decision adds beside itself: the fingerprint of each item it
/// pays (not carried over from an earlier decision), for the duplicate rule,
/// and a ledger entry for each delta that moves a balance.
pub(crate) struct DecisionEffects {
    pub paid_items: Vec<NewPaidItem>,
    pub newly_paid: Vec<ItemFingerprint>,
    /// (authorisation, cycle) of the newly paid dispensings in a course.
    pub dispensed: Vec<(i64, u32)>,
    pub ledger: Vec<NewLedgerEntry>,
}

/// Who a decision is about and when it was made.
pub(crate) struct DecisionOf<'a> {
    pub member_id: i64,
    pub product_id: &'a str,
    pub claim_id: i64,
    pub decision_id: i64,
    pub now: NaiveDateTime,
}

pub(crate) fn decision_effects(
    of: &DecisionOf<'_>,
    decision: &ClaimDecision,
) -> Result<DecisionEffects, StoreError> {
    let mut rows = DecisionEffects {
        paid_items: Vec::new(),
        newly_paid: Vec::new(),
        dispensed: Vec::new(),
        ledger: Vec::new(),
    };
    for item in &decision.items {
        if item.outcome == ItemOutcome::Paid && !item.carried_over {
            rows.paid_items.push(NewPaidItem {
                member_id: of.member_id,
                claim_id: of.claim_id,
                decision_id: of.decision_id,
                item_index: item_index(item.index)?,
                fingerprint: item.fingerprint.key(),
                authorization_id: item.cycle.and(item.authorization_id),
                cycle: item
                    .cycle
                    .map(|cycle| {
                        i32::try_from(cycle)
                            .map_err(|_| StoreError::integrity("cycle out of range"))
                    })
                    .transpose()?,
            });
            rows.newly_paid.push(item.fingerprint.clone());
            if let (Some(authorization_id), Some(cycle)) = (item.authorization_id, item.cycle) {
                rows.dispensed.push((authorization_id, cycle));
            }
        }
    }
    for delta in &decision.ledger {
        if delta.deductible_met.0 == 0 && delta.paid.0 == 0 {
            continue;
        }
        rows.ledger.push(NewLedgerEntry {
            member_id: of.member_id,
            product_id: of.product_id.to_owned(),
            benefit: delta.benefit.as_str().to_owned(),
            claim_id: of.claim_id,
            decision_id: Some(of.decision_id),
            reversal_id: None,
            item_index: item_index(delta.item_index)?,
            deductible_fen: delta.deductible_met.0,
            paid_fen: delta.paid.0,
            created_at: of.now,
        });
    }
    Ok(rows)
}

pub(crate) fn item_index(index: usize) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::integrity("item index out of range"))
}

#[derive(QueryableByName)]
struct NextId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The id the next decision gets, taken before it is written. Inside a write
/// transaction: on SQLite the writer holds the write lock (BEGIN IMMEDIATE),
/// so the next id after the highest ever given (AUTOINCREMENT remembers it
/// in sqlite_sequence) is free; on PostgreSQL the sequence never hands a
/// value out twice.
pub(crate) fn next_decision_id(conn: &mut DbConn) -> Result<i64, StoreError> {
    let sql = match conn {
        DbConn::Postgres(_) => "SELECT nextval(pg_get_serial_sequence('decisions', 'id')) AS id",
        DbConn::Sqlite(_) => {
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM decisions), 0), \
                        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'decisions'), 0)) \
                    + 1 AS id"
        }
    };
    let next: NextId = diesel::sql_query(sql).get_result(conn)?;
    Ok(next.id)
}
