//! Group commit, written set-wise.
//!
//! A batch of claims is decided in one write transaction with a fixed number
//! of statements, whatever its size: one read each of the idempotency keys,
//! enrollments, balances and paid items of the batch's members, and of the
//! audit head; one reservation of row ids; then the claims are decided in
//! memory, in order, each against the state the ones before it left; and
//! finally one multi-row insert per table. On PostgreSQL, where each
//! statement is a round trip to another process, this is what makes a batch
//! cost about as much as one claim.
//!
//! A claim that fails (an unknown member, a reused key, a product that does
//! not offer the benefit, a ledger that would break the terms) leaves no
//! trace: its rows are only added to the batch, and the in-memory state only
//! moved on, once everything about it has been computed. This is the undo
//! that a savepoint per claim used to give.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{
    ClaimView, DecisionEffects, DecisionView, NewLedgerEntry, NewPaidItem, ROWS_PER_INSERT,
    adjudication_error, balances_within_terms, decision_effects,
};
use crate::audit::{self, AuditEvent, ChainHead};
use crate::db::{DbConn, write_transaction};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::{Balances, ItemFingerprint, MemberCover, adjudicate};
use crate::domain::canonical::{canonical_json, sha256_hex};
use crate::domain::claim::{ClaimSubmission, ValidClaim, validate_claim};
use crate::error::StoreError;
use crate::schema::{
    audit_events, claims, decisions, enrollments, idempotency_keys, ledger_entries, members,
    paid_items, reversals,
};
use crate::store::enrollment::EnrollmentRow;
use crate::store::products::{self, StoredProduct};
use crate::store::{Recorded, WriteContext, idempotency};

/// The idempotency operation of a claim submission.
const OPERATION: &str = "claim";

/// One claim of a batch: who submits it, when, under which key.
#[derive(Debug, Clone)]
pub struct BatchClaim<'a> {
    pub ctx: WriteContext<'a>,
    pub idempotency_key: &'a str,
    pub submission: &'a ClaimSubmission,
}

/// Decides several claims in one write transaction (group commit), with the
/// same outcome, claim by claim and in the given order, as calling
/// [`super::submit`] for each in turn: each claim sees the balances,
/// duplicates and idempotency keys left by the claims before it, and a claim
/// that fails leaves nothing behind (its key stays unused). The transaction
/// commits once, so one durable commit serves the whole batch; if it fails,
/// every claim of the batch gets the error and none is stored. Results come
/// back in the order of `claims`.
pub fn submit_batch(
    conn: &mut DbConn,
    claims: &[BatchClaim<'_>],
) -> Vec<Result<Recorded, StoreError>> {
    let mut out: Vec<Option<Result<Recorded, StoreError>>> = claims.iter().map(|_| None).collect();
    let mut valid = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        match validate_claim(c.submission, c.ctx.today_china()) {
            Ok(claim) => valid.push((i, claim)),
            Err(e) => out[i] = Some(Err(StoreError::Validation(e))),
        }
    }
    if !valid.is_empty() {
        match write_transaction(conn, |conn| decide_and_write(conn, claims, &valid)) {
            Ok(decided) => {
                for (i, result) in decided {
                    out[i] = Some(result);
                }
            }
            Err(e) if valid.len() == 1 => out[valid[0].0] = Some(Err(e)),
            Err(e) => {
                // Nothing of the batch was stored: each caller gets the cause.
                for (i, _) in &valid {
                    out[*i] = Some(Err(uncommitted(&e)));
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::integrity("a claim of a batch was skipped"))))
        .collect()
}

/// The error each claim of a batch gets when the batch's commit failed.
fn uncommitted(cause: &StoreError) -> StoreError {
    let detail = cause.to_string();
    match cause {
        StoreError::Busy(_) => StoreError::Busy(detail),
        StoreError::Unavailable(_) => StoreError::Unavailable(detail),
        _ => StoreError::Integrity(format!("batch not committed: {detail}")),
    }
}

type Outcomes = Vec<(usize, Result<Recorded, StoreError>)>;

fn decide_and_write(
    conn: &mut DbConn,
    claims: &[BatchClaim<'_>],
    valid: &[(usize, ValidClaim)],
) -> Result<Outcomes, StoreError> {
    let (snapshot, mut ids) = Snapshot::read(conn, claims, valid)?;
    let mut known = Known::new(snapshot)?;
    let mut rows = Rows::default();
    let mut outcomes = Vec::with_capacity(valid.len());
    for (i, claim) in valid {
        let result = match decide(&known, &ids, &claims[*i], claim) {
            Ok(Outcome::Replay(recorded)) => Ok(recorded),
            Ok(Outcome::New(decided)) => {
                ids.advance();
                Ok(known.record(*decided, &mut rows))
            }
            Err(e) => Err(e),
        };
        outcomes.push((*i, result));
    }
    rows.insert(conn)?;
    Ok(outcomes)
}

/// The rows a batch is decided from, as read at its start.
struct Snapshot {
    /// (principal, key, request hash, stored response) of the batch's keys
    /// already used.
    keys: Vec<(String, String, String, String)>,
    /// The batch members' enrollments, oldest first.
    enrollments: Vec<EnrollmentRow>,
    /// The current version of each product they are enrolled in.
    products: Vec<StoredProduct>,
    /// The batch's member ids that exist.
    members: Vec<i64>,
    /// (member, product, benefit, deductible, paid): ledger entries of the
    /// batch's members, or their sums.
    ledger: Vec<(i64, String, String, i64, i64)>,
    /// (member, fingerprint) of the batch's items that were already paid on
    /// one of that member's non-reversed claims. Only these matter: the
    /// duplicate rule looks up a claim's own items, and those paid within
    /// the batch are added as it is decided.
    paid: Vec<(i64, String)>,
    audit_head: Option<ChainHead>,
}

impl Snapshot {
    /// Reads the snapshot and reserves the batch's row ids: in one
    /// statement on PostgreSQL, where each statement is a round trip to
    /// another process made while every other claim waits; with a few
    /// queries on SQLite, which runs in this process.
    fn read(
        conn: &mut DbConn,
        claims: &[BatchClaim<'_>],
        valid: &[(usize, ValidClaim)],
    ) -> Result<(Snapshot, ReservedIds), StoreError> {
        let keys: Vec<(&str, &str)> = sorted_unique(
            valid
                .iter()
                .map(|(i, _)| (claims[*i].ctx.actor, claims[*i].idempotency_key)),
        );
        let member_ids: Vec<i64> = sorted_unique(valid.iter().map(|(_, c)| c.member_id));
        let items: Vec<(i64, String)> = sorted_unique(valid.iter().flat_map(|(_, claim)| {
            (0..claim.items.len()).filter_map(|i| {
                ItemFingerprint::of_claim_item(claim, i).map(|f| (claim.member_id, f.key()))
            })
        }));
        match conn {
            DbConn::Postgres(pg) => {
                Snapshot::read_postgres(pg, &keys, &member_ids, &items, valid.len())
            }
            DbConn::Sqlite(_) => {
                let snapshot = Snapshot::read_each(conn, &keys, &member_ids, &items)?;
                let ids = ReservedIds::reserve_sqlite(conn, valid.len())?;
                Ok((snapshot, ids))
            }
        }
    }

    fn read_each(
        conn: &mut DbConn,
        wanted_keys: &[(&str, &str)],
        member_ids: &[i64],
        items: &[(i64, String)],
    ) -> Result<Snapshot, StoreError> {
        // One probe of the primary key per (principal, key) pair: filtering
        // on the principals and the keys separately would make the index
        // scan try every combination of the two lists.
        let mut query = idempotency_keys::table
            .select((
                idempotency_keys::principal,
                idempotency_keys::idempotency_key,
                idempotency_keys::request_hash,
                idempotency_keys::response_body,
            ))
            .into_boxed();
        for (principal, key) in wanted_keys {
            query = query.or_filter(
                idempotency_keys::principal
                    .eq(*principal)
                    .and(idempotency_keys::idempotency_key.eq(*key)),
            );
        }
        // With no pairs the filter would be empty and match every row.
        let keys: Vec<(String, String, String, String)> = if wanted_keys.is_empty() {
            Vec::new()
        } else {
            query.load(conn)?
        };

        let enrollments: Vec<EnrollmentRow> = enrollments::table
            .filter(enrollments::member_id.eq_any(member_ids))
            .order(enrollments::id.asc())
            .select(EnrollmentRow::as_select())
            .load(conn)?;
        let mut products: Vec<StoredProduct> = Vec::new();
        for row in &enrollments {
            if !products.iter().any(|p| p.product.id == row.product_id) {
                products.push(products::current(conn, &row.product_id)?);
            }
        }
        let members: Vec<i64> = members::table
            .filter(members::id.eq_any(member_ids))
            .select(members::id)
            .load(conn)?;
        let ledger: Vec<(i64, String, String, i64, i64)> = ledger_entries::table
            .filter(ledger_entries::member_id.eq_any(member_ids))
            .select((
                ledger_entries::member_id,
                ledger_entries::product_id,
                ledger_entries::benefit,
                ledger_entries::deductible_fen,
                ledger_entries::paid_fen,
            ))
            .load(conn)?;
        let wanted_items: HashSet<&(i64, String)> = items.iter().collect();
        let mut paid: Vec<(i64, String)> = Vec::new();
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let reversed = reversals::table.select(reversals::claim_id);
            let found: Vec<(i64, String)> = paid_items::table
                .filter(paid_items::member_id.eq_any(chunk.iter().map(|i| i.0)))
                .filter(paid_items::fingerprint.eq_any(chunk.iter().map(|i| i.1.as_str())))
                .filter(paid_items::claim_id.ne_all(reversed))
                .select((paid_items::member_id, paid_items::fingerprint))
                .distinct()
                .load(conn)?;
            paid.extend(found.into_iter().filter(|f| wanted_items.contains(f)));
        }
        Ok(Snapshot {
            keys,
            enrollments,
            products,
            members,
            ledger,
            paid,
            audit_head: audit::head(conn)?,
        })
    }

    fn read_postgres(
        pg: &mut diesel::PgConnection,
        keys: &[(&str, &str)],
        member_ids: &[i64],
        items: &[(i64, String)],
        claim_count: usize,
    ) -> Result<(Snapshot, ReservedIds), StoreError> {
        use diesel::sql_types::{Array, Text};
        let count =
            i64::try_from(claim_count).map_err(|_| StoreError::integrity("batch too large"))?;
        // Not a prepared statement (diesel does not cache raw SQL), so each
        // batch is planned for its own member ids: a generic plan for
        // `= ANY($3)` chosen while the tables were small would scan them.
        let row: SnapshotJson = diesel::sql_query(SNAPSHOT_POSTGRES)
            .bind::<Array<Text>, _>(keys.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(keys.iter().map(|k| k.1).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(member_ids)
            .bind::<BigInt, _>(count)
            .bind::<Array<BigInt>, _>(items.iter().map(|i| i.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(items.iter().map(|i| i.1.as_str()).collect::<Vec<_>>())
            .get_result(pg)?;
        let products: Vec<products::ProductVersionRow> = serde_json::from_str(&row.products)?;
        let ids: Vec<(i64, i64)> = serde_json::from_str(&row.ids)?;
        let snapshot = Snapshot {
            keys: serde_json::from_str(&row.keys)?,
            enrollments: serde_json::from_str(&row.enrollments)?,
            products: products
                .into_iter()
                .map(StoredProduct::try_from)
                .collect::<Result<_, _>>()?,
            members: serde_json::from_str(&row.members)?,
            ledger: serde_json::from_str(&row.balances)?,
            paid: serde_json::from_str(&row.paid)?,
            audit_head: row
                .audit_head
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
        };
        Ok((snapshot, ReservedIds::from_pairs(ids, claim_count)?))
    }
}

/// Everything a batch reads, and its row ids, in one statement on
/// PostgreSQL. Each part is aggregated to JSON so that parts of different
/// shapes come back as one row. Idempotency keys and paid items are probed
/// one pair at a time on their indexes (a lateral join, so that the planner
/// cannot turn the probes into a scan of the whole table when its row
/// estimates are stale); the ledger comes back summed per balance. Sequence
/// values are never handed out twice, so other inserts (appeals, which take
/// the default) cannot collide with the reserved ids; ids reserved and not
/// used are gaps, as after a rollback.
const SNAPSHOT_POSTGRES: &str = "\
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
 (SELECT json_build_object('seq', seq, 'hash', hash) FROM audit_events
    ORDER BY seq DESC LIMIT 1)::text AS audit_head,
 (SELECT coalesce(json_agg(json_build_array(nextval(pg_get_serial_sequence('claims', 'id')),
                                            nextval(pg_get_serial_sequence('decisions', 'id')))),
                  '[]')
    FROM generate_series(1, $4))::text AS ids";

#[derive(QueryableByName)]
struct SnapshotJson {
    #[diesel(sql_type = diesel::sql_types::Text)]
    keys: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    enrollments: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    products: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    members: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    balances: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    paid: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    audit_head: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    ids: String,
}

/// What the batch needs to know before deciding, read once, and moved on in
/// memory as each claim is decided.
struct Known {
    /// (principal, key) of the batch's keys already used, and the ones used
    /// by earlier claims of this batch.
    keys: HashMap<(String, String), UsedKey>,
    enrollments: HashMap<i64, Vec<EnrollmentRow>>,
    /// Members of the batch that exist (whether or not enrolled).
    members: HashSet<i64>,
    products: HashMap<String, StoredProduct>,
    /// Balances by (member, product).
    balances: HashMap<(i64, String), Balances>,
    /// Fingerprints of items paid on each member's non-reversed claims.
    paid: HashMap<i64, HashSet<ItemFingerprint>>,
    audit_head: Option<ChainHead>,
}

struct UsedKey {
    request_hash: String,
    response: Response,
}

enum Response {
    /// As stored by an earlier transaction.
    Stored(String),
    /// Given to an earlier claim of this batch.
    Given(serde_json::Value),
}

impl Known {
    fn new(snapshot: Snapshot) -> Result<Known, StoreError> {
        let keys = snapshot
            .keys
            .into_iter()
            .map(|(p, k, request_hash, body)| {
                let used = UsedKey {
                    request_hash,
                    response: Response::Stored(body),
                };
                ((p, k), used)
            })
            .collect();
        let mut enrollments: HashMap<i64, Vec<EnrollmentRow>> = HashMap::new();
        for row in snapshot.enrollments {
            enrollments.entry(row.member_id).or_default().push(row);
        }
        let products = snapshot
            .products
            .into_iter()
            .map(|p| (p.product.id.clone(), p))
            .collect();
        let mut balances: HashMap<(i64, String), Balances> = HashMap::new();
        for (member_id, product_id, benefit, deductible, paid) in snapshot.ledger {
            let sums = balances.entry((member_id, product_id)).or_default();
            super::add_entry(sums, &benefit, deductible, paid)?;
        }
        let mut paid: HashMap<i64, HashSet<ItemFingerprint>> = HashMap::new();
        for (member_id, key) in snapshot.paid {
            let fingerprint = ItemFingerprint::from_key(&key).map_err(StoreError::integrity)?;
            paid.entry(member_id).or_default().insert(fingerprint);
        }
        Ok(Known {
            keys,
            enrollments,
            members: snapshot.members.into_iter().collect(),
            products,
            balances,
            paid,
            audit_head: snapshot.audit_head,
        })
    }

    /// The enrollment whose product period contains the service date; if
    /// none does, the member's latest enrollment starting on or before it
    /// (or their first), so that the claim is decided and denied
    /// `not_covered_period` with an explanation rather than refused without
    /// one.
    fn deciding_enrollment(
        &self,
        member_id: i64,
        service_date: NaiveDate,
    ) -> Result<(&EnrollmentRow, &StoredProduct), StoreError> {
        let rows = self
            .enrollments
            .get(&member_id)
            .map_or(&[][..], Vec::as_slice);
        if rows.is_empty() && !self.members.contains(&member_id) {
            return Err(StoreError::Validation(ValidationErrors::single(
                "member_id",
                "unknown_member",
                format!("no member {member_id}"),
            )));
        }
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            let product = self.products.get(&row.product_id).ok_or_else(|| {
                StoreError::integrity(format!("product {} was not loaded", row.product_id))
            })?;
            candidates.push((row, product));
        }
        let covering = candidates.iter().position(|(_, p)| {
            p.product.period_start <= service_date && service_date <= p.product.period_end
        });
        let fallback = || {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| p.product.period_start <= service_date)
                .max_by_key(|(_, (_, p))| p.product.period_start)
                .map(|(i, _)| i)
                .or(if candidates.is_empty() { None } else { Some(0) })
        };
        match covering.or_else(fallback) {
            Some(i) => Ok(candidates[i]),
            None => Err(StoreError::Validation(ValidationErrors::single(
                "member_id",
                "not_enrolled",
                "the member is not enrolled in any product".to_owned(),
            ))),
        }
    }

    /// Adds a decided claim to the batch's rows and moves the state on.
    fn record(&mut self, decided: Decided, rows: &mut Rows) -> Recorded {
        self.balances
            .insert(decided.balance_key, decided.balances_after);
        self.paid
            .entry(decided.claim.member_id)
            .or_default()
            .extend(decided.newly_paid);
        self.audit_head = Some(decided.audit.as_head());
        self.keys.insert(
            (
                decided.idempotency.principal.clone(),
                decided.idempotency.idempotency_key.clone(),
            ),
            UsedKey {
                request_hash: decided.idempotency.request_hash.clone(),
                response: Response::Given(decided.body.clone()),
            },
        );
        rows.claims.push(decided.claim);
        rows.decisions.push(decided.decision);
        rows.paid_items.extend(decided.paid_items);
        rows.ledger.extend(decided.ledger);
        rows.audit.push(decided.audit);
        rows.keys.push(decided.idempotency);
        Recorded {
            body: decided.body,
            replayed: false,
        }
    }
}

fn sorted_unique<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort();
    items.dedup();
    items
}

/// Row ids for the claims and decisions of a batch, taken before deciding
/// because the responses, the audit events and the child rows name them.
struct ReservedIds {
    claims: Vec<i64>,
    decisions: Vec<i64>,
    used: usize,
}

#[derive(QueryableByName)]
struct IdPair {
    #[diesel(sql_type = BigInt)]
    claim_id: i64,
    #[diesel(sql_type = BigInt)]
    decision_id: i64,
}

impl ReservedIds {
    fn from_pairs(pairs: Vec<(i64, i64)>, count: usize) -> Result<ReservedIds, StoreError> {
        let mut claims: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let mut decisions: Vec<i64> = pairs.iter().map(|p| p.1).collect();
        claims.sort_unstable();
        decisions.sort_unstable();
        if claims.len() != count {
            return Err(StoreError::integrity("fewer row ids reserved than asked"));
        }
        Ok(ReservedIds {
            claims,
            decisions,
            used: 0,
        })
    }

    /// Writers hold the database's write lock (BEGIN IMMEDIATE), so the
    /// next ids after the highest ever given are free. AUTOINCREMENT
    /// remembers that highest in sqlite_sequence.
    fn reserve_sqlite(conn: &mut DbConn, count: usize) -> Result<ReservedIds, StoreError> {
        let count_param =
            i64::try_from(count).map_err(|_| StoreError::integrity("batch too large"))?;
        let next: IdPair = diesel::sql_query(
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

    /// The ids the next decided claim gets.
    fn peek(&self) -> Result<(i64, i64), StoreError> {
        match (self.claims.get(self.used), self.decisions.get(self.used)) {
            (Some(claim), Some(decision)) => Ok((*claim, *decision)),
            _ => Err(StoreError::integrity("the batch ran out of reserved ids")),
        }
    }

    fn advance(&mut self) {
        self.used += 1;
    }
}

enum Outcome {
    /// The key was used before with the same request: its response again.
    Replay(Recorded),
    New(Box<Decided>),
}

/// Everything a newly decided claim writes, computed before any of it is
/// added to the batch.
struct Decided {
    body: serde_json::Value,
    balance_key: (i64, String),
    balances_after: Balances,
    newly_paid: Vec<ItemFingerprint>,
    claim: NewClaim,
    decision: NewDecision,
    paid_items: Vec<NewPaidItem>,
    ledger: Vec<NewLedgerEntry>,
    audit: AuditEvent,
    idempotency: NewKey,
}

fn decide(
    known: &Known,
    ids: &ReservedIds,
    item: &BatchClaim<'_>,
    claim: &ValidClaim,
) -> Result<Outcome, StoreError> {
    let ctx = &item.ctx;
    let canonical = canonical_json(&claim.canonical_json());
    let request_hash = idempotency::request_hash(OPERATION, &canonical);
    let key = (ctx.actor.to_owned(), item.idempotency_key.to_owned());
    if let Some(used) = known.keys.get(&key) {
        if used.request_hash != request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let body = match &used.response {
            Response::Stored(text) => serde_json::from_str(text)?,
            Response::Given(body) => body.clone(),
        };
        return Ok(Outcome::Replay(Recorded {
            body,
            replayed: true,
        }));
    }

    let (enrollment, product) = known.deciding_enrollment(claim.member_id, claim.service_date)?;
    let cover = MemberCover {
        coverage_start: enrollment.coverage_start,
        waiting_waived: enrollment.waiting_waived,
        declared_conditions: enrollment.declared()?,
    };
    let balance_key = (claim.member_id, product.product.id.clone());
    let balances = known
        .balances
        .get(&balance_key)
        .copied()
        .unwrap_or_default();
    let no_items = HashSet::new();
    let elsewhere = known.paid.get(&claim.member_id).unwrap_or(&no_items);
    let decision = adjudicate(&product.product, &cover, &balances, elsewhere, claim)
        .map_err(adjudication_error)?;
    // The ledger's conservation rule, on the balances this claim leaves.
    let mut balances_after = balances;
    balances_after
        .apply(&decision.ledger)
        .map_err(|e| StoreError::integrity(format!("balance overflows: {e}")))?;
    balances_within_terms(claim.member_id, &balances_after, product)?;

    let (claim_id, decision_id) = ids.peek()?;
    let now = audit::truncate_to_micros(ctx.now.naive_utc());
    // The validated claim is stored as it was decided, so that an appeal
    // decides the same items; its canonical hash goes into the audit event.
    let submission = serde_json::to_string(claim)?;
    let submission_hash = sha256_hex(canonical.as_bytes());
    let DecisionEffects {
        paid_items,
        newly_paid,
        ledger,
    } = decision_effects(
        claim.member_id,
        &product.product.id,
        claim_id,
        decision_id,
        &decision,
        now,
    )?;
    let audit = audit::next_event(
        &ctx.keys.audit,
        known.audit_head.as_ref(),
        ctx.now,
        ctx.actor,
        "claim.decided",
        &format!("claim:{claim_id}"),
        &serde_json::json!({
            "claim_id": claim_id,
            "member_id": claim.member_id,
            "decision_id": decision_id,
            "sequence": 1,
            "product_id": product.product.id,
            "product_version_id": product.version_id,
            "submission_sha256": submission_hash,
            "status": decision.status,
            "payable": decision.totals.payable,
            "ledger": decision.ledger,
        }),
    );
    let status = decision.status.as_str().to_owned();
    let new_decision = NewDecision {
        id: decision_id,
        claim_id,
        sequence: 1,
        parent_decision_id: None,
        product_version_id: product.version_id,
        status: status.clone(),
        payable_fen: decision.totals.payable.0,
        body: serde_json::to_string(&decision)?,
        decided_by: ctx.actor.to_owned(),
        created_at: now,
    };
    let decision_view = DecisionView {
        id: decision_id,
        sequence: 1,
        parent_decision_id: None,
        product_version_id: product.version_id,
        decided_by: ctx.actor.to_owned(),
        decided_at: now,
        decision,
    };
    let view = ClaimView {
        id: claim_id,
        member_id: claim.member_id,
        product_id: product.product.id.clone(),
        kind: claim.kind.as_str().to_owned(),
        service_date: claim.service_date,
        provider_id: claim.provider_id.clone(),
        submitted_by: ctx.actor.to_owned(),
        submitted_at: now,
        status,
        submission: serde_json::from_str(&submission)?,
        decision: decision_view.clone(),
        decisions: vec![decision_view],
        reversal: None,
    };
    let body = serde_json::to_value(view)?;
    let idempotency = NewKey {
        principal: key.0,
        idempotency_key: key.1,
        operation: OPERATION.to_owned(),
        request_hash,
        response_body: serde_json::to_string(&body)?,
        created_at: now,
    };
    let new_claim = NewClaim {
        id: claim_id,
        member_id: claim.member_id,
        enrollment_id: enrollment.id,
        product_version_id: product.version_id,
        kind: claim.kind.as_str().to_owned(),
        service_date: claim.service_date,
        provider_id: claim.provider_id.clone(),
        submission,
        submitted_by: ctx.actor.to_owned(),
        created_at: now,
    };
    Ok(Outcome::New(Box::new(Decided {
        body,
        balance_key,
        balances_after,
        newly_paid,
        claim: new_claim,
        decision: new_decision,
        paid_items,
        ledger,
        audit,
        idempotency,
    })))
}

#[derive(Insertable)]
#[diesel(table_name = claims)]
struct NewClaim {
    id: i64,
    member_id: i64,
    enrollment_id: i64,
    product_version_id: i64,
    kind: String,
    service_date: NaiveDate,
    provider_id: String,
    submission: String,
    submitted_by: String,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = decisions, treat_none_as_null = true)]
struct NewDecision {
    id: i64,
    claim_id: i64,
    sequence: i32,
    parent_decision_id: Option<i64>,
    product_version_id: i64,
    status: String,
    payable_fen: i64,
    body: String,
    decided_by: String,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = idempotency_keys)]
struct NewKey {
    principal: String,
    idempotency_key: String,
    operation: String,
    request_hash: String,
    response_body: String,
    created_at: NaiveDateTime,
}

/// The rows of a batch, written table by table, parents first.
#[derive(Default)]
struct Rows {
    claims: Vec<NewClaim>,
    decisions: Vec<NewDecision>,
    paid_items: Vec<NewPaidItem>,
    ledger: Vec<NewLedgerEntry>,
    audit: Vec<AuditEvent>,
    keys: Vec<NewKey>,
}

/// The whole batch in one statement on PostgreSQL: each table's rows go as
/// one array per column, unnested, so the statement is the same small text
/// whatever the batch holds (nothing to parse and plan per row, no bound on
/// rows per statement) and costs one round trip instead of six. The foreign
/// keys between the tables are checked at the end of the statement, when
/// all of its rows are there.
const INSERT_BATCH_POSTGRES: &str = "\
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
  INSERT INTO paid_items (member_id, claim_id, decision_id, item_index, fingerprint)
  SELECT * FROM unnest($21::bigint[], $22::bigint[], $23::bigint[], $24::integer[], $25::text[])
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

impl Rows {
    fn insert(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        if let DbConn::Postgres(pg) = conn {
            return self.insert_postgres(pg);
        }
        insert_rows!(conn, claims::table, self.claims);
        insert_rows!(conn, decisions::table, self.decisions);
        insert_rows!(conn, paid_items::table, self.paid_items);
        insert_rows!(conn, ledger_entries::table, self.ledger);
        insert_rows!(conn, audit_events::table, self.audit);
        insert_rows!(conn, idempotency_keys::table, self.keys);
        Ok(())
    }
}

impl Rows {
    fn insert_postgres(&self, pg: &mut diesel::PgConnection) -> Result<(), StoreError> {
        use diesel::pg::Pg;
        use diesel::sql_types::{Array, Date, Integer, Nullable, Text, Timestamp};
        type Texts = Array<Text>;
        type Ids = Array<BigInt>;
        type Times = Array<Timestamp>;
        let (c, d, p, l, a, k) = (
            &self.claims,
            &self.decisions,
            &self.paid_items,
            &self.ledger,
            &self.audit,
            &self.keys,
        );
        diesel::sql_query(INSERT_BATCH_POSTGRES)
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
            .execute(pg)?;
        Ok(())
    }
}
