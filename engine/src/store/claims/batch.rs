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
    let mut known = Known::load(conn, claims, valid)?;
    let mut ids = ReservedIds::reserve(conn, valid.len())?;
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
    fn load(
        conn: &mut DbConn,
        claims: &[BatchClaim<'_>],
        valid: &[(usize, ValidClaim)],
    ) -> Result<Known, StoreError> {
        let wanted_keys: HashSet<(&str, &str)> = valid
            .iter()
            .map(|(i, _)| (claims[*i].ctx.actor, claims[*i].idempotency_key))
            .collect();
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
        for (principal, key) in &wanted_keys {
            query = query.or_filter(
                idempotency_keys::principal
                    .eq(*principal)
                    .and(idempotency_keys::idempotency_key.eq(*key)),
            );
        }
        // With no pairs the filter would be empty and match every row.
        let used: Vec<(String, String, String, String)> = if wanted_keys.is_empty() {
            Vec::new()
        } else {
            query.load(conn)?
        };
        let keys = used
            .into_iter()
            .filter(|(p, k, _, _)| wanted_keys.contains(&(p.as_str(), k.as_str())))
            .map(|(p, k, request_hash, body)| {
                let used = UsedKey {
                    request_hash,
                    response: Response::Stored(body),
                };
                ((p, k), used)
            })
            .collect();

        let member_ids: Vec<i64> = sorted_unique(valid.iter().map(|(_, c)| c.member_id));
        let rows: Vec<EnrollmentRow> = enrollments::table
            .filter(enrollments::member_id.eq_any(&member_ids))
            .order(enrollments::id.asc())
            .select(EnrollmentRow::as_select())
            .load(conn)?;
        let mut enrollments: HashMap<i64, Vec<EnrollmentRow>> = HashMap::new();
        let mut products = HashMap::new();
        for row in rows {
            if !products.contains_key(&row.product_id) {
                let product = products::current(conn, &row.product_id)?;
                products.insert(row.product_id.clone(), product);
            }
            enrollments.entry(row.member_id).or_default().push(row);
        }
        // Whether a member without enrollments exists decides which refusal
        // the claim gets.
        let unenrolled: Vec<i64> = member_ids
            .iter()
            .copied()
            .filter(|id| !enrollments.contains_key(id))
            .collect();
        let mut members: HashSet<i64> = enrollments.keys().copied().collect();
        if !unenrolled.is_empty() {
            let found: Vec<i64> = members::table
                .filter(members::id.eq_any(&unenrolled))
                .select(members::id)
                .load(conn)?;
            members.extend(found);
        }

        let entries: Vec<(i64, String, String, i64, i64)> = ledger_entries::table
            .filter(ledger_entries::member_id.eq_any(&member_ids))
            .select((
                ledger_entries::member_id,
                ledger_entries::product_id,
                ledger_entries::benefit,
                ledger_entries::deductible_fen,
                ledger_entries::paid_fen,
            ))
            .load(conn)?;
        let mut balances: HashMap<(i64, String), Balances> = HashMap::new();
        for (member_id, product_id, benefit, deductible, paid) in entries {
            let sums = balances.entry((member_id, product_id)).or_default();
            super::add_entry(sums, &benefit, deductible, paid)?;
        }

        let reversed = reversals::table.select(reversals::claim_id);
        let fingerprints: Vec<(i64, String)> = paid_items::table
            .filter(paid_items::member_id.eq_any(&member_ids))
            .filter(paid_items::claim_id.ne_all(reversed))
            .select((paid_items::member_id, paid_items::fingerprint))
            .load(conn)?;
        let mut paid: HashMap<i64, HashSet<ItemFingerprint>> = HashMap::new();
        for (member_id, key) in fingerprints {
            let fingerprint = ItemFingerprint::from_key(&key).map_err(StoreError::integrity)?;
            paid.entry(member_id).or_default().insert(fingerprint);
        }

        Ok(Known {
            keys,
            enrollments,
            members,
            products,
            balances,
            paid,
            audit_head: audit::head(conn)?,
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
    fn reserve(conn: &mut DbConn, count: usize) -> Result<ReservedIds, StoreError> {
        let count_param =
            i64::try_from(count).map_err(|_| StoreError::integrity("batch too large"))?;
        let (claims, decisions) = match conn {
            DbConn::Postgres(pg) => {
                // Sequence values are never handed out twice, so other
                // inserts (appeals, which take the default) cannot collide;
                // ids reserved and not used are gaps, as after a rollback.
                let pairs: Vec<IdPair> = diesel::sql_query(
                    "SELECT nextval(pg_get_serial_sequence('claims', 'id')) AS claim_id, \
                     nextval(pg_get_serial_sequence('decisions', 'id')) AS decision_id \
                     FROM generate_series(1, $1)",
                )
                .bind::<BigInt, _>(count_param)
                .load(pg)?;
                let mut claims: Vec<i64> = pairs.iter().map(|p| p.claim_id).collect();
                let mut decisions: Vec<i64> = pairs.iter().map(|p| p.decision_id).collect();
                claims.sort_unstable();
                decisions.sort_unstable();
                (claims, decisions)
            }
            DbConn::Sqlite(lite) => {
                // Writers hold the database's write lock (BEGIN IMMEDIATE),
                // so the next ids after the highest ever given are free.
                // AUTOINCREMENT remembers that highest in sqlite_sequence.
                let next: IdPair = diesel::sql_query(
                    "SELECT \
                     MAX(COALESCE((SELECT MAX(id) FROM claims), 0), \
                         COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'claims'), 0)) \
                       + 1 AS claim_id, \
                     MAX(COALESCE((SELECT MAX(id) FROM decisions), 0), \
                         COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'decisions'), 0)) \
                       + 1 AS decision_id",
                )
                .get_result(lite)?;
                (
                    (next.claim_id..next.claim_id + count_param).collect(),
                    (next.decision_id..next.decision_id + count_param).collect(),
                )
            }
        };
        if claims.len() != count || decisions.len() != count {
            return Err(StoreError::integrity("fewer row ids reserved than asked"));
        }
        Ok(ReservedIds {
            claims,
            decisions,
            used: 0,
        })
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

impl Rows {
    fn insert(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        insert_rows!(conn, claims::table, self.claims);
        insert_rows!(conn, decisions::table, self.decisions);
        insert_rows!(conn, paid_items::table, self.paid_items);
        insert_rows!(conn, ledger_entries::table, self.ledger);
        insert_rows!(conn, audit_events::table, self.audit);
        insert_rows!(conn, idempotency_keys::table, self.keys);
        Ok(())
    }
}
