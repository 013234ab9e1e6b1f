//! Group commit, written set-wise.
//!
//! A batch of claims is decided in one write transaction with a fixed number
//! of statements, whatever its size: the [`Snapshot`] of what the batch
//! needs to know (the idempotency keys, enrollments, balances and paid items
//! of its members, and the audit head) and a reservation of row ids; then
//! the claims are decided in memory, in order, each against the state the
//! ones before it left ([`decide::decide_claim`]); and finally the [`Rows`] are written.
//! How the snapshot is read and the rows written is the one place the
//! backends differ: `postgres` does each in one statement, because there
//! each statement is a round trip to another process made while every other
//! claim waits; `sqlite` uses a few portable queries, which run in this
//! process.
//!
//! A claim that fails (an unknown member, a reused key, a product that does
//! not offer the benefit, a ledger that would break the terms) leaves no
//! trace: its rows are only added to the batch, and the in-memory state only
//! moved on, once everything about it has been computed. This is the undo
//! that a savepoint per claim used to give.

mod decide;
#[cfg(test)]
mod parity_tests;
mod postgres;
mod sqlite;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::audit::{AuditEvent, ChainHead};
use crate::db::{DbConn, write_transaction};
use crate::domain::adjudication::{Balances, ItemFingerprint};
use crate::domain::authorization::CourseState;
use crate::domain::claim::ValidClaim;
use crate::error::StoreError;
use crate::store::claims::rows::{NewClaim, NewDecision, NewPaidItem};
use crate::store::claims::view::ClaimView;
use crate::store::enrollment::EnrollmentRow;
use crate::store::idempotency::{NewKey, StoredKey};
use crate::store::ledger::{self, NewLedgerEntry};
use crate::store::products::StoredProduct;
use crate::store::{Recorded, WriteContext};

use decide::{Outcome, decide_claim};

/// One validated claim of a batch: who submits it, when, under which key.
#[derive(Debug, Clone)]
pub struct BatchClaim<'a> {
    pub ctx: WriteContext<'a>,
    pub idempotency_key: &'a str,
    pub claim: &'a ValidClaim,
}

/// Decides several claims in one write transaction (group commit), with the
/// same outcome, claim by claim and in the given order, as calling
/// [`super::submit`] for each in turn: each claim sees the balances,
/// duplicates and idempotency keys left by the claims before it, and a claim
/// that fails leaves nothing behind (its key stays unused). The transaction
/// commits once, so one durable commit serves the whole batch; if that
/// commit fails, every claim of the batch gets the error and none is stored.
/// Results come back in the order of `claims`.
pub fn submit_batch(
    conn: &mut DbConn,
    claims: &[BatchClaim<'_>],
) -> Vec<Result<Recorded<ClaimView>, StoreError>> {
    if claims.is_empty() {
        return Vec::new();
    }
    match write_transaction(conn, |conn| decide_and_write(conn, claims)) {
        Ok(outcomes) => outcomes,
        Err(e) if claims.len() == 1 => vec![Err(e)],
        // Nothing of the batch was stored: each caller gets the cause.
        Err(e) => claims.iter().map(|_| Err(uncommitted(&e))).collect(),
    }
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

type Outcomes = Vec<Result<Recorded<ClaimView>, StoreError>>;

fn decide_and_write(conn: &mut DbConn, claims: &[BatchClaim<'_>]) -> Result<Outcomes, StoreError> {
    let wanted = Wanted::of(claims);
    let (mut snapshot, mut ids) = read_snapshot(conn, &wanted)?;
    let mut rows = Rows::default();
    let mut outcomes = Vec::with_capacity(claims.len());
    for claim in claims {
        let result = match decide_claim(&snapshot, &ids, claim) {
            Ok(Outcome::Replay(recorded)) => Ok(*recorded),
            Ok(Outcome::New(decided)) => {
                ids.advance();
                Ok(snapshot.record(*decided, &mut rows))
            }
            Err(e) => Err(e),
        };
        outcomes.push(result);
    }
    rows.insert(conn)?;
    Ok(outcomes)
}

/// What a batch asks the database about.
pub(crate) struct Wanted<'a> {
    /// (principal, key) of its claims, sorted, without repeats.
    pub keys: Vec<(&'a str, &'a str)>,
    pub members: Vec<i64>,
    /// (member, fingerprint key) of its claims' items.
    pub items: Vec<(i64, String)>,
    /// The authorised courses its claims name, sorted, without repeats.
    pub authorizations: Vec<i64>,
    /// Row ids to reserve: one claim and one decision per claim.
    pub claim_count: usize,
}

impl<'a> Wanted<'a> {
    pub fn of(claims: &'a [BatchClaim<'a>]) -> Wanted<'a> {
        Wanted {
            keys: sorted_unique(claims.iter().map(|c| (c.ctx.actor, c.idempotency_key))),
            members: sorted_unique(claims.iter().map(|c| c.claim.member_id)),
            items: sorted_unique(claims.iter().flat_map(|c| {
                (0..c.claim.items.len()).filter_map(|i| {
                    ItemFingerprint::of_claim_item(c.claim, i).map(|f| (c.claim.member_id, f.key()))
                })
            })),
            authorizations: sorted_unique(claims.iter().filter_map(|c| c.claim.authorization_id)),
            claim_count: claims.len(),
        }
    }
}

fn sorted_unique<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort();
    items.dedup();
    items
}

/// Reads the snapshot and reserves the batch's row ids.
fn read_snapshot(
    conn: &mut DbConn,
    wanted: &Wanted<'_>,
) -> Result<(Snapshot, ReservedIds), StoreError> {
    match conn {
        DbConn::Postgres(pg) => postgres::read_snapshot(pg, wanted),
        DbConn::Sqlite(_) => {
            let snapshot = sqlite::read_snapshot(conn, wanted)?;
            let ids = sqlite::reserve_ids(conn, wanted.claim_count)?;
            Ok((snapshot, ids))
        }
    }
}

/// What the batch needs to know before deciding, read once at its start, and
/// moved on in memory as each claim is decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Snapshot {
    /// The batch's keys already used, and those used by its earlier claims.
    pub keys: BTreeMap<(String, String), StoredKey>,
    /// The batch members' enrollments, by member, oldest first.
    pub enrollments: BTreeMap<i64, Vec<EnrollmentRow>>,
    /// The batch's members that exist (whether or not enrolled).
    pub members: BTreeSet<i64>,
    /// The current version of each product they are enrolled in.
    pub products: BTreeMap<String, StoredProduct>,
    /// Balances by (member, product).
    pub balances: BTreeMap<(i64, String), Balances>,
    /// Fingerprints of the batch's items already paid on one of that
    /// member's non-reversed claims. Only these matter: the duplicate rule
    /// looks up a claim's own items, and those paid within the batch are
    /// added as it is decided.
    pub paid: HashMap<i64, HashSet<ItemFingerprint>>,
    /// The courses the batch's claims name, by id, with the cycles already
    /// dispensed; cycles paid within the batch are added as it is decided,
    /// so two pharmacies dispensing the same cycle in one batch pay once.
    pub courses: BTreeMap<i64, CourseState>,
    pub audit_head: Option<ChainHead>,
}

impl Snapshot {
    /// Adds ledger sums of (member, product, benefit) to the balances.
    fn add_balance(
        &mut self,
        member_id: i64,
        product_id: String,
        benefit: &str,
        deductible: i64,
        paid: i64,
    ) -> Result<(), StoreError> {
        let sums = self.balances.entry((member_id, product_id)).or_default();
        ledger::add_entry(sums, benefit, deductible, paid)
    }

    fn add_paid(&mut self, member_id: i64, key: &str) -> Result<(), StoreError> {
        let fingerprint = ledger::fingerprint(key)?;
        self.paid.entry(member_id).or_default().insert(fingerprint);
        Ok(())
    }

    fn add_enrollments(&mut self, rows: Vec<EnrollmentRow>) {
        for row in rows {
            self.enrollments.entry(row.member_id).or_default().push(row);
        }
    }

    /// Adds a decided claim to the batch's rows and moves the state on.
    fn record(&mut self, decided: decide::Decided, rows: &mut Rows) -> Recorded<ClaimView> {
        self.balances
            .insert(decided.balance_key, decided.balances_after);
        self.paid
            .entry(decided.claim.member_id)
            .or_default()
            .extend(decided.newly_paid);
        for (authorization_id, cycle) in decided.dispensed {
            if let Some(course) = self.courses.get_mut(&authorization_id) {
                course.dispensed.insert(cycle);
            }
        }
        self.audit_head = Some(decided.audit.as_head());
        self.keys.insert(
            (
                decided.idempotency.principal.clone(),
                decided.idempotency.idempotency_key.clone(),
            ),
            StoredKey {
                request_hash: decided.idempotency.request_hash.clone(),
                response_body: decided.idempotency.response_body.clone(),
            },
        );
        rows.claims.push(decided.claim);
        rows.decisions.push(decided.decision);
        rows.paid_items.extend(decided.paid_items);
        rows.ledger.extend(decided.ledger);
        rows.audit.push(decided.audit);
        rows.keys.push(decided.idempotency);
        Recorded {
            body: decided.view,
            replayed: false,
        }
    }
}

/// Row ids for the claims and decisions of a batch, taken before deciding
/// because the responses, the audit events and the child rows name them.
/// Ids reserved and not used are gaps, as after a rollback.
pub(crate) struct ReservedIds {
    claims: Vec<i64>,
    decisions: Vec<i64>,
    used: usize,
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

/// The rows of a batch, written table by table, parents first.
#[derive(Default)]
pub(crate) struct Rows {
    claims: Vec<NewClaim>,
    decisions: Vec<NewDecision>,
    paid_items: Vec<NewPaidItem>,
    ledger: Vec<NewLedgerEntry>,
    audit: Vec<AuditEvent>,
    keys: Vec<NewKey>,
}

impl Rows {
    fn insert(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        match conn {
            DbConn::Postgres(pg) => postgres::insert_rows(pg, self),
            DbConn::Sqlite(_) => sqlite::insert_rows(conn, self),
        }
    }
}
