//! The batch's read and write on PostgreSQL, one statement each: there every
//! statement is a round trip to another process, made while every other
//! claim waits. What they read and write is the same as the portable
//! queries of `sqlite` (a test compares the two snapshots).
//!
//! The read returns JSON, one aggregate per part. Its shape is defined here
//! once, next to the types each part decodes into: parts of our own shape
//! are positional arrays decoded as tuples (no field names to keep in step),
//! and whole rows (`json_agg(e)`) carry the table's column names, which are
//! the field names of the diesel row types (diesel checks those against the
//! schema).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, Text, Timestamp};
use serde::de::DeserializeOwned;

use crate::audit::ChainHead;
use crate::error::StoreError;
use crate::store::authorizations::rows::CourseRows;
use crate::store::authorizations::{AuthorizationRow, CancelRow, FollowupRow};
use crate::store::enrollment::EnrollmentRow;
use crate::store::idempotency::StoredKey;
use crate::store::products::{ProductVersionRow, StoredProduct};

use super::{ReservedIds, Rows, Snapshot, Wanted};

/// Everything a batch reads, and its row ids, in one statement. Idempotency
/// keys and paid items are probed one pair at a time on their indexes (a
/// lateral join, so that the planner cannot turn the probes into a scan of
/// the whole table when its row estimates are stale); the ledger comes back
/// summed per balance. Sequence values are never handed out twice, so other
/// inserts (reversals' ledger entries, appeals) cannot collide with the
/// reserved ids; ids reserved and not used are gaps, as after a rollback.
const SNAPSHOT: &str = "\
WITH enrolled AS (SELECT * FROM enrollments WHERE member_id = ANY($3))
SELECT
 (SELECT coalesce(json_agg(json_build_array(k.principal, k.idempotency_key, k.request_hash,
                                            k.response_body)), '[]')
    FROM unnest($1::text[], $2::text[]) AS w(principal, idempotency_key)
    JOIN LATERAL (SELECT * FROM idempotency_keys i
                  WHERE i.principal = w.principal
                    AND i.idempotency_key = w.idempotency_key) k ON true)::text AS keys,
 (SELECT coalesce(json_agg(e ORDER BY e.id), '[]') FROM enrolled e)::text AS enrollments,
 (SELECT coalesce(json_agg(v), '[]') FROM (
    SELECT DISTINCT ON (product_id) * FROM product_versions
    WHERE product_id IN (SELECT product_id FROM enrolled)
    ORDER BY product_id, version DESC) v)::text AS products,
 (SELECT coalesce(json_agg(id), '[]') FROM members WHERE id = ANY($3))::text AS members,
 (SELECT coalesce(json_agg(json_build_array(member_id, product_id, benefit, deductible, paid)),
                  '[]')
    FROM (SELECT member_id, product_id, benefit, sum(deductible_fen)::bigint AS deductible,
                 sum(paid_fen)::bigint AS paid
          FROM ledger_entries WHERE member_id = ANY($3)
          GROUP BY member_id, product_id, benefit) s)::text AS balances,
 (SELECT coalesce(json_agg(json_build_array(f.member_id, f.fingerprint)), '[]')
    FROM unnest($5::bigint[], $6::text[]) AS f(member_id, fingerprint)
    JOIN LATERAL (SELECT 1 FROM paid_items p
                  WHERE p.member_id = f.member_id AND p.fingerprint = f.fingerprint
                    AND p.claim_id NOT IN (SELECT claim_id FROM reversals)
                  LIMIT 1) hit ON true)::text AS paid,
 (SELECT json_build_array(seq, hash) FROM audit_events ORDER BY seq DESC LIMIT 1)::text
   AS audit_head,
 (SELECT coalesce(json_agg(a ORDER BY a.id), '[]') FROM authorizations a
    WHERE a.id = ANY($7))::text AS authorizations,
 (SELECT coalesce(json_agg(f ORDER BY f.id), '[]') FROM authorization_followups f
    WHERE f.authorization_id = ANY($7))::text AS followups,
 (SELECT coalesce(json_agg(c), '[]') FROM authorization_cancels c
    WHERE c.authorization_id = ANY($7))::text AS cancels,
 (SELECT coalesce(json_agg(json_build_array(p.authorization_id, p.cycle)), '[]')
    FROM paid_items p
    WHERE p.authorization_id = ANY($7) AND p.cycle IS NOT NULL
      AND p.claim_id NOT IN (SELECT claim_id FROM reversals))::text AS dispensed,
 (SELECT coalesce(json_agg(json_build_array(nextval(pg_get_serial_sequence('claims', 'id')),
                                            nextval(pg_get_serial_sequence('decisions', 'id')))),
                  '[]')
    FROM generate_series(1, $4))::text AS ids";

/// The one row of [`SNAPSHOT`]: each part as JSON text.
#[derive(QueryableByName)]
struct SnapshotJson {
    /// `[KeyJson]`
    #[diesel(sql_type = Text)]
    keys: String,
    /// `[EnrollmentRow]`, oldest first.
    #[diesel(sql_type = Text)]
    enrollments: String,
    /// `[ProductVersionRow]`, the current version of each.
    #[diesel(sql_type = Text)]
    products: String,
    /// `[member id]`
    #[diesel(sql_type = Text)]
    members: String,
    /// `[BalanceJson]`
    #[diesel(sql_type = Text)]
    balances: String,
    /// `[PaidJson]`
    #[diesel(sql_type = Text)]
    paid: String,
    /// `HeadJson`, or NULL before the first event.
    #[diesel(sql_type = Nullable<Text>)]
    audit_head: Option<String>,
    /// `[AuthorizationRow]`, by id.
    #[diesel(sql_type = Text)]
    authorizations: String,
    /// `[FollowupRow]`, in the order recorded.
    #[diesel(sql_type = Text)]
    followups: String,
    /// `[CancelRow]`
    #[diesel(sql_type = Text)]
    cancels: String,
    /// `[DispensedJson]`
    #[diesel(sql_type = Text)]
    dispensed: String,
    /// `[IdsJson]`
    #[diesel(sql_type = Text)]
    ids: String,
}

/// `[principal, idempotency_key, request_hash, response_body]`
type KeyJson = (String, String, String, String);
/// `[member_id, product_id, benefit, deductible sum, paid sum]`
type BalanceJson = (i64, String, String, i64, i64);
/// `[member_id, fingerprint]`
type PaidJson = (i64, String);
/// `[authorization_id, cycle]`
type DispensedJson = (i64, i32);
/// `[seq, hash]`
type HeadJson = (i64, String);
/// `[claim id, decision id]`
type IdsJson = (i64, i64);

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

pub(super) fn read_snapshot(
    pg: &mut PgConnection,
    wanted: &Wanted<'_>,
) -> Result<(Snapshot, ReservedIds), StoreError> {
    let count =
        i64::try_from(wanted.claim_count).map_err(|_| StoreError::integrity("batch too large"))?;
    // Not a prepared statement (diesel does not cache raw SQL), so each
    // batch is planned for its own member ids: a generic plan for
    // `= ANY($3)` chosen while the tables were small would scan them.
    let row: SnapshotJson = diesel::sql_query(SNAPSHOT)
        .bind::<Array<Text>, _>(wanted.keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(wanted.keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(&wanted.members)
        .bind::<BigInt, _>(count)
        .bind::<Array<BigInt>, _>(wanted.items.iter().map(|i| i.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            wanted
                .items
                .iter()
                .map(|i| i.1.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(&wanted.authorizations)
        .get_result(pg)?;
    let snapshot = decode_snapshot(&row)?;
    let ids = ReservedIds::from_pairs(decode::<Vec<IdsJson>>(&row.ids)?, wanted.claim_count)?;
    Ok((snapshot, ids))
}

fn decode_snapshot(row: &SnapshotJson) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot {
        keys: decode::<Vec<KeyJson>>(&row.keys)?
            .into_iter()
            .map(|(principal, key, request_hash, response_body)| {
                let stored = StoredKey {
                    request_hash,
                    response_body,
                };
                ((principal, key), stored)
            })
            .collect(),
        members: decode::<Vec<i64>>(&row.members)?.into_iter().collect(),
        audit_head: row
            .audit_head
            .as_deref()
            .map(decode::<HeadJson>)
            .transpose()?
            .map(|(seq, hash)| ChainHead { seq, hash }),
        ..Snapshot::default()
    };
    for version in decode::<Vec<ProductVersionRow>>(&row.products)? {
        let product = StoredProduct::try_from(version)?;
        snapshot
            .products
            .insert(product.product.id.clone(), product);
    }
    snapshot.add_enrollments(decode::<Vec<EnrollmentRow>>(&row.enrollments)?);
    for (member_id, product_id, benefit, deductible, paid) in
        decode::<Vec<BalanceJson>>(&row.balances)?
    {
        snapshot.add_balance(member_id, product_id, &benefit, deductible, paid)?;
    }
    for (member_id, key) in decode::<Vec<PaidJson>>(&row.paid)? {
        snapshot.add_paid(member_id, &key)?;
    }
    snapshot.courses = CourseRows {
        authorizations: decode::<Vec<AuthorizationRow>>(&row.authorizations)?,
        followups: decode::<Vec<FollowupRow>>(&row.followups)?,
        cancels: decode::<Vec<CancelRow>>(&row.cancels)?,
        dispensed: decode::<Vec<DispensedJson>>(&row.dispensed)?,
    }
    .states()?;
    Ok(snapshot)
}

/// The whole batch in one statement: each table's rows go as one array per
/// column, unnested, so the statement is the same small text whatever the
/// batch holds (nothing to parse and plan per row, no bound on rows per
/// statement) and costs one round trip instead of six. The foreign keys
/// between the tables are checked at the end of the statement, when all of
/// its rows are there.
const INSERT_BATCH: &str = "\
WITH new_claims AS (
  INSERT INTO claims (id, member_id, enrollment_id, product_version_id, kind, service_date,
                      provider_id, submission, submitted_by, created_at)
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                       $6::date[], $7::text[], $8::text[], $9::text[], $10::timestamp[])
), new_decisions AS (
  INSERT INTO decisions (id, claim_id, sequence, parent_decision_id, product_version_id, status,
                         payable_fen, body, decided_by, created_at)
  SELECT * FROM unnest($11::bigint[], $12::bigint[], $13::integer[], $14::bigint[],
                       $15::bigint[], $16::text[], $17::bigint[], $18::text[], $19::text[],
                       $20::timestamp[])
), new_paid_items AS (
  INSERT INTO paid_items (member_id, claim_id, decision_id, item_index, fingerprint,
                          authorization_id, cycle)
  SELECT * FROM unnest($21::bigint[], $22::bigint[], $23::bigint[], $24::integer[], $25::text[],
                       $50::bigint[], $51::integer[])
), new_ledger_entries AS (
  INSERT INTO ledger_entries (member_id, product_id, benefit, claim_id, decision_id, reversal_id,
                              item_index, deductible_fen, paid_fen, created_at)
  SELECT * FROM unnest($26::bigint[], $27::text[], $28::text[], $29::bigint[], $30::bigint[],
                       $31::bigint[], $32::integer[], $33::bigint[], $34::bigint[],
                       $35::timestamp[])
), new_audit_events AS (
  INSERT INTO audit_events (seq, at, actor, action, entity, payload, prev_hash, hash)
  SELECT * FROM unnest($36::bigint[], $37::timestamp[], $38::text[], $39::text[], $40::text[],
                       $41::text[], $42::text[], $43::text[])
)
INSERT INTO idempotency_keys (principal, idempotency_key, operation, request_hash, response_body,
                              created_at)
SELECT * FROM unnest($44::text[], $45::text[], $46::text[], $47::text[], $48::text[],
                     $49::timestamp[])";

/// One column of a batch's rows, as the array bound for it.
fn column<'a, R, T>(rows: &'a [R], field: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

pub(super) fn insert_rows(pg: &mut PgConnection, rows: &Rows) -> Result<(), StoreError> {
    type Texts = Array<Text>;
    type Ids = Array<BigInt>;
    type Times = Array<Timestamp>;
    let (c, d, p, l, a, k) = (
        &rows.claims,
        &rows.decisions,
        &rows.paid_items,
        &rows.ledger,
        &rows.audit,
        &rows.keys,
    );
    diesel::sql_query(INSERT_BATCH)
        .into_boxed::<Pg>()
        .bind::<Ids, _>(column(c, |r| r.id))
        .bind::<Ids, _>(column(c, |r| r.member_id))
        .bind::<Ids, _>(column(c, |r| r.enrollment_id))
        .bind::<Ids, _>(column(c, |r| r.product_version_id))
        .bind::<Texts, _>(column(c, |r| r.kind.as_str()))
        .bind::<Array<Date>, _>(column(c, |r| r.service_date))
        .bind::<Texts, _>(column(c, |r| r.provider_id.as_str()))
        .bind::<Texts, _>(column(c, |r| r.submission.as_str()))
        .bind::<Texts, _>(column(c, |r| r.submitted_by.as_str()))
        .bind::<Times, _>(column(c, |r| r.created_at))
        .bind::<Ids, _>(column(d, |r| r.id))
        .bind::<Ids, _>(column(d, |r| r.claim_id))
        .bind::<Array<Integer>, _>(column(d, |r| r.sequence))
        .bind::<Array<Nullable<BigInt>>, _>(column(d, |r| r.parent_decision_id))
        .bind::<Ids, _>(column(d, |r| r.product_version_id))
        .bind::<Texts, _>(column(d, |r| r.status.as_str()))
        .bind::<Ids, _>(column(d, |r| r.payable_fen))
        .bind::<Texts, _>(column(d, |r| r.body.as_str()))
        .bind::<Texts, _>(column(d, |r| r.decided_by.as_str()))
        .bind::<Times, _>(column(d, |r| r.created_at))
        .bind::<Ids, _>(column(p, |r| r.member_id))
        .bind::<Ids, _>(column(p, |r| r.claim_id))
        .bind::<Ids, _>(column(p, |r| r.decision_id))
        .bind::<Array<Integer>, _>(column(p, |r| r.item_index))
        .bind::<Texts, _>(column(p, |r| r.fingerprint.as_str()))
        .bind::<Ids, _>(column(l, |r| r.member_id))
        .bind::<Texts, _>(column(l, |r| r.product_id.as_str()))
        .bind::<Texts, _>(column(l, |r| r.benefit.as_str()))
        .bind::<Ids, _>(column(l, |r| r.claim_id))
        .bind::<Array<Nullable<BigInt>>, _>(column(l, |r| r.decision_id))
        .bind::<Array<Nullable<BigInt>>, _>(column(l, |r| r.reversal_id))
        .bind::<Array<Integer>, _>(column(l, |r| r.item_index))
        .bind::<Ids, _>(column(l, |r| r.deductible_fen))
        .bind::<Ids, _>(column(l, |r| r.paid_fen))
        .bind::<Times, _>(column(l, |r| r.created_at))
        .bind::<Ids, _>(column(a, |r| r.seq))
        .bind::<Times, _>(column(a, |r| r.at))
        .bind::<Texts, _>(column(a, |r| r.actor.as_str()))
        .bind::<Texts, _>(column(a, |r| r.action.as_str()))
        .bind::<Texts, _>(column(a, |r| r.entity.as_str()))
        .bind::<Texts, _>(column(a, |r| r.payload.as_str()))
        .bind::<Texts, _>(column(a, |r| r.prev_hash.as_str()))
        .bind::<Texts, _>(column(a, |r| r.hash.as_str()))
        .bind::<Texts, _>(column(k, |r| r.principal.as_str()))
        .bind::<Texts, _>(column(k, |r| r.idempotency_key.as_str()))
        .bind::<Texts, _>(column(k, |r| r.operation.as_str()))
        .bind::<Texts, _>(column(k, |r| r.request_hash.as_str()))
        .bind::<Texts, _>(column(k, |r| r.response_body.as_str()))
        .bind::<Times, _>(column(k, |r| r.created_at))
        .bind::<Array<Nullable<BigInt>>, _>(column(p, |r| r.authorization_id))
        .bind::<Array<Nullable<Integer>>, _>(column(p, |r| r.cycle))
        .execute(pg)?;
    Ok(())
}
