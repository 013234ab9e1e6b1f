//! The batch's reads and writes as portable diesel queries: what runs on
//! SQLite, in this process, where a few statements cost little; and the
//! reference that the PostgreSQL single statement is tested against (it runs
//! on PostgreSQL too).

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::audit;
use crate::db::DbConn;
use crate::error::StoreError;
use crate::schema::{
    audit_events, claims, decisions, enrollments, idempotency_keys, ledger_entries, members,
    paid_items,
};
use crate::store::authorizations::course_states;
use crate::store::claims::rows::insert_rows as insert_chunked;
use crate::store::enrollment::EnrollmentRow;
use crate::store::idempotency::StoredKey;
use crate::store::ledger::{self, ITEMS_PER_QUERY, PaidItemsQuery};
use crate::store::products;

use super::{ReservedIds, Rows, Snapshot, Wanted};

pub(super) fn read_snapshot(
    conn: &mut DbConn,
    wanted: &Wanted<'_>,
) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot {
        keys: used_keys(conn, &wanted.keys)?,
        members: members::table
            .filter(members::id.eq_any(&wanted.members))
            .select(members::id)
            .load::<i64>(conn)?
            .into_iter()
            .collect(),
        audit_head: audit::head(conn)?,
        ..Snapshot::default()
    };
    let enrolled: Vec<EnrollmentRow> = enrollments::table
        .filter(enrollments::member_id.eq_any(&wanted.members))
        .order(enrollments::id.asc())
        .select(EnrollmentRow::as_select())
        .load(conn)?;
    for row in &enrolled {
        if !snapshot.products.contains_key(&row.product_id) {
            let product = products::current(conn, &row.product_id)?;
            snapshot.products.insert(row.product_id.clone(), product);
        }
    }
    snapshot.add_enrollments(enrolled);
    let entries: Vec<(i64, String, String, i64, i64)> = ledger_entries::table
        .filter(ledger_entries::member_id.eq_any(&wanted.members))
        .select((
            ledger_entries::member_id,
            ledger_entries::product_id,
            ledger_entries::benefit,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(conn)?;
    for (member_id, product_id, benefit, deductible, paid) in entries {
        snapshot.add_balance(member_id, product_id, &benefit, deductible, paid)?;
    }
    for (member_id, key) in paid_wanted_items(conn, &wanted.items)? {
        snapshot.add_paid(member_id, &key)?;
    }
    snapshot.courses = course_states(conn, &wanted.authorizations, None)?;
    Ok(snapshot)
}

/// The batch's (principal, key) pairs already used. One probe of the primary
/// key per pair: filtering on the principals and the keys separately would
/// make the index scan try every combination of the two lists.
fn used_keys(
    conn: &mut DbConn,
    wanted: &[(&str, &str)],
) -> Result<std::collections::BTreeMap<(String, String), StoredKey>, StoreError> {
    // With no pairs the filter would be empty and match every row.
    if wanted.is_empty() {
        return Ok(Default::default());
    }
    let mut query = idempotency_keys::table
        .select((
            idempotency_keys::principal,
            idempotency_keys::idempotency_key,
            idempotency_keys::request_hash,
            idempotency_keys::response_body,
        ))
        .into_boxed();
    for (principal, key) in wanted {
        query = query.or_filter(
            idempotency_keys::principal
                .eq(*principal)
                .and(idempotency_keys::idempotency_key.eq(*key)),
        );
    }
    let rows: Vec<(String, String, String, String)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(principal, key, request_hash, response_body)| {
            let stored = StoredKey {
                request_hash,
                response_body,
            };
            ((principal, key), stored)
        })
        .collect())
}

/// Of the batch's (member, fingerprint) items, those already paid on a
/// non-reversed claim, asked a chunk at a time.
fn paid_wanted_items(
    conn: &mut DbConn,
    items: &[(i64, String)],
) -> Result<Vec<(i64, String)>, StoreError> {
    let wanted: HashSet<&(i64, String)> = items.iter().collect();
    let mut paid = Vec::new();
    for chunk in items.chunks(ITEMS_PER_QUERY) {
        let members: Vec<i64> = chunk.iter().map(|i| i.0).collect();
        let fingerprints: Vec<&str> = chunk.iter().map(|i| i.1.as_str()).collect();
        let query = PaidItemsQuery {
            members: &members,
            fingerprints: Some(&fingerprints),
            except_claim: None,
        };
        let found = ledger::paid_items(conn, &query)?;
        paid.extend(found.into_iter().filter(|f| wanted.contains(f)));
    }
    Ok(paid)
}

#[derive(QueryableByName)]
struct NextIds {
    #[diesel(sql_type = BigInt)]
    claim_id: i64,
    #[diesel(sql_type = BigInt)]
    decision_id: i64,
}

/// Writers hold the database's write lock (BEGIN IMMEDIATE), so the next ids
/// after the highest ever given are free. AUTOINCREMENT remembers that
/// highest in sqlite_sequence.
pub(super) fn reserve_ids(conn: &mut DbConn, count: usize) -> Result<ReservedIds, StoreError> {
    let count_param = i64::try_from(count).map_err(|_| StoreError::integrity("batch too large"))?;
    let next: NextIds = diesel::sql_query(
        "SELECT \
         MAX(COALESCE((SELECT MAX(id) FROM claims), 0), \
             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'claims'), 0)) \
           + 1 AS claim_id, \
         MAX(COALESCE((SELECT MAX(id) FROM decisions), 0), \
             COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'decisions'), 0)) \
           + 1 AS decision_id",
    )
    .get_result(conn)?;
    let pairs = (0..count_param)
        .map(|i| (next.claim_id + i, next.decision_id + i))
        .collect();
    ReservedIds::from_pairs(pairs, count)
}

/// One multi-row INSERT per table (per chunk of rows).
pub(super) fn insert_rows(conn: &mut DbConn, rows: &Rows) -> Result<(), StoreError> {
    insert_chunked!(conn, claims::table, rows.claims);
    insert_chunked!(conn, decisions::table, rows.decisions);
    insert_chunked!(conn, paid_items::table, rows.paid_items);
    insert_chunked!(conn, ledger_entries::table, rows.ledger);
    insert_chunked!(conn, audit_events::table, rows.audit);
    insert_chunked!(conn, idempotency_keys::table, rows.keys);
    Ok(())
}
