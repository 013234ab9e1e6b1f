//! Claims: submission, decision, reversal and appeal, with the benefit ledger
//! and the duplicate index written in the same transaction as the decision.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::{
    AdjudicationError, AppealEvidence, Balance, Balances, ClaimDecision, ItemFingerprint,
    ItemOutcome, MemberCover, adjudicate_appeal,
};
use crate::domain::canonical::canonical_json;
use crate::domain::claim::{BenefitKind, ClaimSubmission, ValidClaim};
use crate::domain::money::Fen;
use crate::error::StoreError;
use crate::schema::{claims, decisions, ledger_entries, paid_items, reversals};
use crate::store::enrollment::{enrollment_rows, member_row};
use crate::store::products::{self, StoredProduct};
use crate::store::{Recorded, WriteContext, idempotency};

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

/// One decision with its explanation of benefits.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub id: i64,
    /// 1 for the first decision, 2.. for appeals.
    pub sequence: i32,
    pub parent_decision_id: Option<i64>,
    pub product_version_id: i64,
    pub decided_by: String,
    #[serde(with = "crate::store::utc")]
    pub decided_at: NaiveDateTime,
    #[serde(flatten)]
    pub decision: ClaimDecision,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReversalView {
    pub reason: String,
    pub reversed_by: String,
    #[serde(with = "crate::store::utc")]
    pub reversed_at: NaiveDateTime,
}

/// A claim as the app and the auditor see it: what was submitted, every
/// decision in order (the last one is in force) and any reversal.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimView {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub kind: String,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub submitted_by: String,
    #[serde(with = "crate::store::utc")]
    pub submitted_at: NaiveDateTime,
    /// `paid`, `partial`, `denied` (of the decision in force), or `reversed`.
    pub status: String,
    pub submission: serde_json::Value,
    pub decision: DecisionView,
    pub decisions: Vec<DecisionView>,
    pub reversal: Option<ReversalView>,
}

/// A line in a member's claim history.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimSummary {
    pub id: i64,
    pub kind: String,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub status: String,
    pub payable: Fen,
    #[serde(with = "crate::store::utc")]
    pub submitted_at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimPage {
    pub claims: Vec<ClaimSummary>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = decisions)]
struct NewDecision<'a> {
    claim_id: i64,
    sequence: i32,
    parent_decision_id: Option<i64>,
    product_version_id: i64,
    status: &'a str,
    payable_fen: i64,
    body: &'a str,
    decided_by: &'a str,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = paid_items)]
struct NewPaidItem {
    member_id: i64,
    claim_id: i64,
    decision_id: i64,
    item_index: i32,
    fingerprint: String,
}

#[derive(Insertable)]
#[diesel(table_name = ledger_entries, treat_none_as_null = true)]
struct NewLedgerEntry {
    member_id: i64,
    product_id: String,
    benefit: String,
    claim_id: i64,
    decision_id: Option<i64>,
    reversal_id: Option<i64>,
    item_index: i32,
    deductible_fen: i64,
    paid_fen: i64,
    created_at: NaiveDateTime,
}

/// Rows per INSERT statement. At eleven columns at most this keeps every
/// statement far below the bound-parameter limits (32,766 on SQLite, 65,535
/// on PostgreSQL), however many items a claim or a batch carries.
const ROWS_PER_INSERT: usize = 1_000;

/// Inserts rows with one multi-row INSERT per chunk, on the concrete
/// connection: both backends take multi-row VALUES.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            match $conn {
                DbConn::Postgres(c) => diesel::insert_into($table).values(chunk).execute(c)?,
                DbConn::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c)?,
            };
        }
    };
}

// After the macro, which the batch module uses.
mod batch;
pub use batch::{BatchClaim, submit_batch};

/// The rows a decision adds beside itself: the fingerprint of each item it
/// pays (not carried over from an earlier decision), for the duplicate rule,
/// and a ledger entry for each delta that moves a balance.
struct DecisionEffects {
    paid_items: Vec<NewPaidItem>,
    newly_paid: Vec<ItemFingerprint>,
    ledger: Vec<NewLedgerEntry>,
}

fn decision_effects(
    member_id: i64,
    product_id: &str,
    claim_id: i64,
    decision_id: i64,
    decision: &ClaimDecision,
    now: NaiveDateTime,
) -> Result<DecisionEffects, StoreError> {
    let mut rows = DecisionEffects {
        paid_items: Vec::new(),
        newly_paid: Vec::new(),
        ledger: Vec::new(),
    };
    for item in &decision.items {
        if item.outcome == ItemOutcome::Paid && !item.carried_over {
            rows.paid_items.push(NewPaidItem {
                member_id,
                claim_id,
                decision_id,
                item_index: item_index(item.index)?,
                fingerprint: item.fingerprint.key(),
            });
            rows.newly_paid.push(item.fingerprint.clone());
        }
    }
    for delta in &decision.ledger {
        if delta.deductible_met.0 == 0 && delta.paid.0 == 0 {
            continue;
        }
        rows.ledger.push(NewLedgerEntry {
            member_id,
            product_id: product_id.to_owned(),
            benefit: delta.benefit.as_str().to_owned(),
            claim_id,
            decision_id: Some(decision_id),
            reversal_id: None,
            item_index: item_index(delta.item_index)?,
            deductible_fen: delta.deductible_met.0,
            paid_fen: delta.paid.0,
            created_at: now,
        });
    }
    Ok(rows)
}

/// Validates, decides and stores a claim. Validation errors store nothing and
/// leave the idempotency key unused. A batch of one.
pub fn submit(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    submission: &ClaimSubmission,
) -> Result<Recorded, StoreError> {
    let claim = BatchClaim {
        ctx: ctx.clone(),
        idempotency_key,
        submission,
    };
    submit_batch(conn, std::slice::from_ref(&claim))
        .pop()
        .unwrap_or_else(|| Err(StoreError::integrity("a batch of one gave no result")))
}

/// Both benefit balances of a member under a product: the sums of their
/// ledger entries, in one query. Sums in Rust with checked arithmetic: SQL
/// SUM over money would come back as a float on SQLite.
pub(crate) fn member_balances(
    conn: &mut DbConn,
    member_id: i64,
    product_id: &str,
) -> Result<Balances, StoreError> {
    let entries: Vec<(String, i64, i64)> = ledger_entries::table
        .filter(ledger_entries::member_id.eq(member_id))
        .filter(ledger_entries::product_id.eq(product_id))
        .select((
            ledger_entries::benefit,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(conn)?;
    let mut balances = Balances {
        inpatient: Balance::default(),
        specialty_drug: Balance::default(),
    };
    for (benefit, deductible, paid) in entries {
        add_entry(&mut balances, &benefit, deductible, paid)?;
    }
    Ok(balances)
}

/// Adds one ledger entry to the sums of its benefit, with checked arithmetic.
fn add_entry(
    balances: &mut Balances,
    benefit: &str,
    deductible: i64,
    paid: i64,
) -> Result<(), StoreError> {
    let b = if benefit == BenefitKind::Inpatient.as_str() {
        &mut balances.inpatient
    } else if benefit == BenefitKind::SpecialtyDrug.as_str() {
        &mut balances.specialty_drug
    } else {
        return Err(StoreError::integrity(format!(
            "ledger entry of unknown benefit {benefit:?}"
        )));
    };
    b.deductible_met = Fen(b
        .deductible_met
        .0
        .checked_add(deductible)
        .ok_or_else(|| StoreError::integrity("deductible balance overflows"))?);
    b.paid = Fen(b
        .paid
        .0
        .checked_add(paid)
        .ok_or_else(|| StoreError::integrity("paid balance overflows"))?);
    Ok(())
}

/// Fingerprints of items paid on the member's other, non-reversed claims.
fn paid_elsewhere(
    conn: &mut DbConn,
    member_id: i64,
    except_claim: Option<i64>,
) -> Result<HashSet<ItemFingerprint>, StoreError> {
    let reversed = reversals::table.select(reversals::claim_id);
    let mut query = paid_items::table
        .filter(paid_items::member_id.eq(member_id))
        .filter(paid_items::claim_id.ne_all(reversed))
        .select(paid_items::fingerprint)
        .into_boxed();
    if let Some(claim_id) = except_claim {
        query = query.filter(paid_items::claim_id.ne(claim_id));
    }
    let keys: Vec<String> = query.load(conn)?;
    keys.iter()
        .map(|k| ItemFingerprint::from_key(k).map_err(StoreError::integrity))
        .collect()
}

/// What the pure adjudicator refuses, in the storage layer's terms: the
/// caller's mistakes become field errors or conflicts; the rest are bugs.
fn adjudication_error(error: AdjudicationError) -> StoreError {
    let detail = error.to_string();
    match error {
        AdjudicationError::BenefitNotOffered { .. } => {
            StoreError::Validation(ValidationErrors::single("kind", error.code(), detail))
        }
        AdjudicationError::Money { index, .. } => StoreError::Validation(ValidationErrors::single(
            format!("items[{index}]"),
            error.code(),
            detail,
        )),
        AdjudicationError::EvidenceForUndeniedItem { .. } => {
            StoreError::Validation(ValidationErrors::single("items", error.code(), detail))
        }
        AdjudicationError::NotAppealable => StoreError::conflict("not_appealable", detail),
        AdjudicationError::ItemKindMismatch { .. } | AdjudicationError::PriorDoesNotMatchClaim => {
            StoreError::integrity(detail)
        }
    }
}

/// Writes a decision, its paid-item fingerprints and its ledger entries, then
/// checks that the balances stay within the product's terms.
#[allow(clippy::too_many_arguments)]
fn store_decision(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    member_id: i64,
    claim_id: i64,
    product: &StoredProduct,
    sequence: i32,
    parent: Option<i64>,
    decision: &ClaimDecision,
) -> Result<i64, StoreError> {
    let now = audit::truncate_to_micros(ctx.now.naive_utc());
    let body = serde_json::to_string(decision)?;
    let decision_id: i64 = diesel::insert_into(decisions::table)
        .values(NewDecision {
            claim_id,
            sequence,
            parent_decision_id: parent,
            product_version_id: product.version_id,
            status: decision.status.as_str(),
            payable_fen: decision.totals.payable.0,
            body: &body,
            decided_by: ctx.actor,
            created_at: now,
        })
        .returning(decisions::id)
        .get_result(conn)?;
    let rows = decision_effects(
        member_id,
        &product.product.id,
        claim_id,
        decision_id,
        decision,
        now,
    )?;
    insert_rows!(conn, paid_items::table, rows.paid_items);
    insert_rows!(conn, ledger_entries::table, rows.ledger);
    check_balances_within_terms(conn, member_id, product)?;
    Ok(decision_id)
}

fn item_index(index: usize) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::integrity("item index out of range"))
}

/// The ledger's conservation rule, checked after every write: no balance is
/// negative, and none exceeds its benefit's deductible or limit. A violation
/// is a bug; the transaction is rolled back rather than committed.
fn check_balances_within_terms(
    conn: &mut DbConn,
    member_id: i64,
    product: &StoredProduct,
) -> Result<(), StoreError> {
    let balances = member_balances(conn, member_id, &product.product.id)?;
    balances_within_terms(member_id, &balances, product)
}

/// The conservation rule on balances already computed.
fn balances_within_terms(
    member_id: i64,
    balances: &Balances,
    product: &StoredProduct,
) -> Result<(), StoreError> {
    let checks = [
        (
            BenefitKind::Inpatient,
            balances.inpatient,
            product.product.inpatient.as_ref(),
        ),
        (
            BenefitKind::SpecialtyDrug,
            balances.specialty_drug,
            product.product.specialty_drug.as_ref().map(|d| &d.terms),
        ),
    ];
    for (kind, balance, terms) in checks {
        let (max_deductible, max_paid) =
            terms.map_or((0, 0), |t| (t.deductible.0, t.annual_limit.0));
        if balance.deductible_met.0 < 0
            || balance.paid.0 < 0
            || balance.deductible_met.0 > max_deductible
            || balance.paid.0 > max_paid
        {
            return Err(StoreError::integrity(format!(
                "ledger for member {member_id} {} would leave balances outside the terms",
                kind.as_str()
            )));
        }
    }
    Ok(())
}

fn claim_row(conn: &mut DbConn, claim_id: i64) -> Result<ClaimRow, StoreError> {
    claims::table
        .find(claim_id)
        .select(ClaimRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("claim", claim_id))
}

fn decision_rows(conn: &mut DbConn, claim_id: i64) -> Result<Vec<DecisionRow>, StoreError> {
    Ok(decisions::table
        .filter(decisions::claim_id.eq(claim_id))
        .order(decisions::sequence.asc())
        .select(DecisionRow::as_select())
        .load(conn)?)
}

fn reversal_row(conn: &mut DbConn, claim_id: i64) -> Result<Option<ReversalRow>, StoreError> {
    Ok(reversals::table
        .filter(reversals::claim_id.eq(claim_id))
        .select(ReversalRow::as_select())
        .first(conn)
        .optional()?)
}

fn decision_view(row: DecisionRow) -> Result<DecisionView, StoreError> {
    Ok(DecisionView {
        id: row.id,
        sequence: row.sequence,
        parent_decision_id: row.parent_decision_id,
        product_version_id: row.product_version_id,
        decided_by: row.decided_by,
        decided_at: row.created_at,
        decision: serde_json::from_str(&row.body)?,
    })
}

/// Who submitted a claim and for whom, for authorisation at the edge.
pub fn ownership(conn: &mut DbConn, claim_id: i64) -> Result<(i64, String), StoreError> {
    let row = claim_row(conn, claim_id)?;
    Ok((row.member_id, row.submitted_by))
}

pub fn view(conn: &mut DbConn, claim_id: i64) -> Result<ClaimView, StoreError> {
    let row = claim_row(conn, claim_id)?;
    let decisions = decision_rows(conn, claim_id)?
        .into_iter()
        .map(decision_view)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(current) = decisions.last().cloned() else {
        return Err(StoreError::integrity(format!(
            "claim {claim_id} has no decision"
        )));
    };
    let reversal = reversal_row(conn, claim_id)?.map(|r| ReversalView {
        reason: r.reason,
        reversed_by: r.reversed_by,
        reversed_at: r.created_at,
    });
    let product = products::version(conn, row.product_version_id)?;
    let status = if reversal.is_some() {
        "reversed".to_owned()
    } else {
        current.decision.status.as_str().to_owned()
    };
    Ok(ClaimView {
        id: row.id,
        member_id: row.member_id,
        product_id: product.product.id,
        kind: row.kind,
        service_date: row.service_date,
        provider_id: row.provider_id,
        submitted_by: row.submitted_by,
        submitted_at: row.created_at,
        status,
        submission: serde_json::from_str(&row.submission)?,
        decision: current,
        decisions,
        reversal,
    })
}

/// A member's claims, newest first, `limit` at a time; `cursor` is the
/// `next_cursor` of the previous page.
pub fn list_for_member(
    conn: &mut DbConn,
    member_id: i64,
    cursor: Option<i64>,
    limit: i64,
) -> Result<ClaimPage, StoreError> {
    member_row(conn, member_id)?;
    list_page(conn, ClaimFilter::Member(member_id), cursor, limit)
}

pub enum ClaimFilter<'a> {
    Member(i64),
    SubmittedBy(&'a str),
}

pub fn list_page(
    conn: &mut DbConn,
    filter: ClaimFilter<'_>,
    cursor: Option<i64>,
    limit: i64,
) -> Result<ClaimPage, StoreError> {
    let limit = limit.clamp(1, 100);
    let mut query = claims::table
        .select(ClaimRow::as_select())
        .order(claims::id.desc())
        .limit(limit + 1)
        .into_boxed();
    query = match filter {
        ClaimFilter::Member(member_id) => query.filter(claims::member_id.eq(member_id)),
        ClaimFilter::SubmittedBy(actor) => query.filter(claims::submitted_by.eq(actor.to_owned())),
    };
    if let Some(cursor) = cursor {
        query = query.filter(claims::id.lt(cursor));
    }
    let mut rows: Vec<ClaimRow> = query.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    // The decision in force and any reversal of the whole page, in two
    // queries rather than two per claim.
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut current: std::collections::HashMap<i64, (String, i64)> = decisions::table
        .filter(decisions::claim_id.eq_any(&ids))
        .order((decisions::claim_id.asc(), decisions::sequence.asc()))
        .select((
            decisions::claim_id,
            decisions::status,
            decisions::payable_fen,
        ))
        .load::<(i64, String, i64)>(conn)?
        .into_iter()
        .map(|(id, status, payable)| (id, (status, payable)))
        .collect();
    let reversed: HashSet<i64> = reversals::table
        .filter(reversals::claim_id.eq_any(&ids))
        .select(reversals::claim_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut claims_out = Vec::with_capacity(rows.len());
    for row in &rows {
        let (status, payable) = current
            .remove(&row.id)
            .ok_or_else(|| StoreError::integrity(format!("claim {} has no decision", row.id)))?;
        claims_out.push(ClaimSummary {
            id: row.id,
            kind: row.kind.clone(),
            service_date: row.service_date,
            provider_id: row.provider_id.clone(),
            status: if reversed.contains(&row.id) {
                "reversed".to_owned()
            } else {
                status
            },
            payable: Fen(payable),
            submitted_at: row.created_at,
        });
    }
    let next_cursor = if has_more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(ClaimPage {
        claims: claims_out,
        next_cursor,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    pub reason: String,
}

/// Reverses a claim that paid at least one item: posts the exact negatives of
/// all its ledger entries. Later claims are not re-decided.
pub fn reverse(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    claim_id: i64,
    request: &ReversalRequest,
) -> Result<Recorded, StoreError> {
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1_000 {
        return Err(StoreError::Validation(ValidationErrors::single(
            "reason",
            "invalid_reason",
            "a reversal needs a reason of 1 to 1000 characters".to_owned(),
        )));
    }
    let canonical = canonical_json(&serde_json::json!({ "claim_id": claim_id, "reason": reason }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "reversal", &canonical, |conn| {
            let claim = claim_row(conn, claim_id)?;
            if reversal_row(conn, claim_id)?.is_some() {
                return Err(StoreError::conflict(
                    "already_reversed",
                    format!("claim {claim_id} is already reversed"),
                ));
            }
            let current = decision_rows(conn, claim_id)?.pop().ok_or_else(|| {
                StoreError::integrity(format!("claim {claim_id} has no decision"))
            })?;
            let decision: ClaimDecision = serde_json::from_str(&current.body)?;
            if !decision
                .items
                .iter()
                .any(|i| i.outcome == ItemOutcome::Paid)
            {
                return Err(StoreError::conflict(
                    "not_reversible",
                    format!("claim {claim_id} has no paid item to reverse"),
                ));
            }
            let now = audit::truncate_to_micros(ctx.now.naive_utc());
            let reversal_id: i64 = diesel::insert_into(reversals::table)
                .values((
                    reversals::claim_id.eq(claim_id),
                    reversals::reason.eq(reason),
                    reversals::reversed_by.eq(ctx.actor),
                    reversals::created_at.eq(now),
                ))
                .returning(reversals::id)
                .get_result(conn)?;
            let entries: Vec<(String, String, i32, i64, i64)> = ledger_entries::table
                .filter(ledger_entries::claim_id.eq(claim_id))
                .order(ledger_entries::id.asc())
                .select((
                    ledger_entries::product_id,
                    ledger_entries::benefit,
                    ledger_entries::item_index,
                    ledger_entries::deductible_fen,
                    ledger_entries::paid_fen,
                ))
                .load(conn)?;
            let mut reversed_paid = 0_i64;
            for (product_id, benefit, index, deductible, paid) in &entries {
                let negate = |v: i64| {
                    v.checked_neg()
                        .ok_or_else(|| StoreError::integrity("ledger amount cannot be negated"))
                };
                diesel::insert_into(ledger_entries::table)
                    .values(NewLedgerEntry {
                        member_id: claim.member_id,
                        product_id: product_id.clone(),
                        benefit: benefit.clone(),
                        claim_id,
                        decision_id: None,
                        reversal_id: Some(reversal_id),
                        item_index: *index,
                        deductible_fen: negate(*deductible)?,
                        paid_fen: negate(*paid)?,
                        created_at: now,
                    })
                    .execute(conn)?;
                reversed_paid = reversed_paid
                    .checked_add(*paid)
                    .ok_or_else(|| StoreError::integrity("reversed amount overflows"))?;
            }
            let product = products::version(conn, claim.product_version_id)?;
            check_balances_within_terms(conn, claim.member_id, &product)?;
            audit::append(
                conn,
                &ctx.keys.audit,
                ctx.now,
                ctx.actor,
                "claim.reversed",
                &format!("claim:{claim_id}"),
                &serde_json::json!({
                    "claim_id": claim_id,
                    "member_id": claim.member_id,
                    "reversal_id": reversal_id,
                    "reason": reason,
                    "entries_reversed": entries.len(),
                    "paid_reversed": Fen(reversed_paid),
                }),
            )?;
            Ok(serde_json::to_value(view(conn, claim_id)?)?)
        })
    })
}

/// Decides a claim's denied items again with new evidence. Only a
/// non-reversed claim with a denied item can be appealed; the product version
/// of the first decision applies, and balances and duplicates are those at
/// the time of the appeal.
pub fn appeal(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    claim_id: i64,
    evidence: &AppealEvidence,
) -> Result<Recorded, StoreError> {
    evidence.validate().map_err(StoreError::Validation)?;
    let canonical = canonical_json(&serde_json::json!({
        "claim_id": claim_id,
        "evidence": evidence,
    }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "appeal", &canonical, |conn| {
            let claim = claim_row(conn, claim_id)?;
            if reversal_row(conn, claim_id)?.is_some() {
                return Err(StoreError::conflict(
                    "not_appealable",
                    format!("claim {claim_id} is reversed"),
                ));
            }
            let rows = decision_rows(conn, claim_id)?;
            let (Some(first), Some(current)) = (rows.first(), rows.last()) else {
                return Err(StoreError::integrity(format!(
                    "claim {claim_id} has no decision"
                )));
            };
            let prior: ClaimDecision = serde_json::from_str(&current.body)?;
            if !prior.items.iter().any(|i| i.outcome == ItemOutcome::Denied) {
                return Err(StoreError::conflict(
                    "not_appealable",
                    format!("claim {claim_id} has no denied item"),
                ));
            }
            let product = products::version(conn, first.product_version_id)?;
            let valid: ValidClaim = serde_json::from_str(&claim.submission)?;
            let enrollment = enrollment_rows(conn, claim.member_id)?
                .into_iter()
                .find(|e| e.id == claim.enrollment_id)
                .ok_or_else(|| StoreError::integrity("claim's enrollment is missing"))?;
            let cover = MemberCover {
                coverage_start: enrollment.coverage_start,
                waiting_waived: enrollment.waiting_waived,
                declared_conditions: enrollment.declared()?,
            };
            let balances = member_balances(conn, claim.member_id, &product.product.id)?;
            let elsewhere = paid_elsewhere(conn, claim.member_id, Some(claim_id))?;
            let decision = adjudicate_appeal(
                &product.product,
                &cover,
                &balances,
                &elsewhere,
                &valid,
                &prior,
                evidence,
            )
            .map_err(adjudication_error)?;
            let sequence = current.sequence + 1;
            let decision_id = store_decision(
                conn,
                ctx,
                claim.member_id,
                claim_id,
                &product,
                sequence,
                Some(current.id),
                &decision,
            )?;
            audit::append(
                conn,
                &ctx.keys.audit,
                ctx.now,
                ctx.actor,
                "claim.appeal_decided",
                &format!("claim:{claim_id}"),
                &serde_json::json!({
                    "claim_id": claim_id,
                    "member_id": claim.member_id,
                    "decision_id": decision_id,
                    "parent_decision_id": current.id,
                    "sequence": sequence,
                    "product_version_id": product.version_id,
                    "status": decision.status,
                    "payable": decision.totals.payable,
                    "ledger": decision.ledger,
                }),
            )?;
            Ok(serde_json::to_value(view(conn, claim_id)?)?)
        })
    })
}
