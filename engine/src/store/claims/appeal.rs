//! Appeals: a claim's denied items decided again with new evidence, as a new
//! decision linked to the one it replaces.

use diesel::prelude::*;

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::domain::adjudication::{
    AdjudicationError, AppealEvidence, Appealed, ClaimDecision, NotAppealable,
    adjudicate_appeal_in_course, check_appealable,
};
use crate::domain::canonical::canonical_json;
use crate::domain::claim::ValidClaim;
use crate::error::StoreError;
use crate::schema::{decisions, ledger_entries, paid_items};
use crate::store::authorizations::course_states;
use crate::store::enrollment::enrollment_rows;
use crate::store::ledger::{
    self, PaidItemsQuery, check_balances_within_terms, fingerprint, member_balances,
};
use crate::store::products::{self, StoredProduct};
use crate::store::{Recorded, WriteContext, idempotency};

use super::adjudication_error;
use super::reads::{claim_row, decision_rows, reversal_row, view};
use super::rows::{
    ClaimRow, DecisionOf, DecisionRow, NewDecision, decision_effects, insert_rows, next_decision_id,
};
use super::view::ClaimView;

/// Decides a claim's denied items again with new evidence. Only a
/// non-reversed claim with a denied item can be appealed; the product version
/// of the first decision applies, and balances and duplicates are those at
/// the time of the appeal, and so is the state of the course a dispensing
/// names (judged as of its service date).
pub fn appeal(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    claim_id: i64,
    evidence: &AppealEvidence,
) -> Result<Recorded<ClaimView>, StoreError> {
    evidence.validate().map_err(StoreError::Validation)?;
    let canonical = canonical_json(&serde_json::json!({
        "claim_id": claim_id,
        "evidence": evidence,
    }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "appeal", &canonical, |conn| {
            let claim = claim_row(conn, claim_id)?;
            let reversed = reversal_row(conn, claim_id)?.is_some();
            let rows = decision_rows(conn, claim_id)?;
            let (Some(first), Some(current)) = (rows.first(), rows.last()) else {
                return Err(StoreError::integrity(format!(
                    "claim {claim_id} has no decision"
                )));
            };
            let prior: ClaimDecision = serde_json::from_str(&current.body)?;
            check_appealable(&prior, reversed).map_err(|why| not_appealable(claim_id, why))?;
            let product = products::version(conn, first.product_version_id)?;
            let decision = decide_appeal(conn, &claim, &product, &prior, evidence)?;
            let decision_id = store_decision(conn, ctx, &claim, &product, current, &decision)?;
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
                    "sequence": current.sequence + 1,
                    "product_version_id": product.version_id,
                    "status": decision.status,
                    "payable": decision.totals.payable,
                    "ledger": decision.ledger,
                }),
            )?;
            view(conn, claim_id)
        })
    })
}

/// The domain's refusal, naming the claim.
fn not_appealable(claim_id: i64, why: NotAppealable) -> StoreError {
    let detail = match why {
        NotAppealable::Reversed => format!("claim {claim_id} is reversed"),
        NotAppealable::NoDeniedItem => format!("claim {claim_id} has no denied item"),
    };
    StoreError::conflict("not_appealable", detail)
}

/// Runs the pure appeal adjudication against the member's cover, balances
/// and other paid items as they are now.
fn decide_appeal(
    conn: &mut DbConn,
    claim: &ClaimRow,
    product: &StoredProduct,
    prior: &ClaimDecision,
    evidence: &AppealEvidence,
) -> Result<ClaimDecision, StoreError> {
    let valid: ValidClaim = serde_json::from_str(&claim.submission)?;
    let enrollment = enrollment_rows(conn, claim.member_id)?
        .into_iter()
        .find(|e| e.id == claim.enrollment_id)
        .ok_or_else(|| StoreError::integrity("claim's enrollment is missing"))?;
    let cover = enrollment.cover()?;
    let balances = member_balances(conn, claim.member_id, &product.product.id)?;
    let elsewhere = ledger::paid_items(
        conn,
        &PaidItemsQuery {
            members: &[claim.member_id],
            fingerprints: None,
            except_claim: Some(claim.id),
        },
    )?
    .iter()
    .map(|(_, key)| fingerprint(key))
    .collect::<Result<_, _>>()?;
    // The course as recorded now (an assessment since counts), without the
    // cycle this claim itself may have used.
    let courses = match valid.authorization_id {
        Some(id) => course_states(conn, &[id], Some(claim.id))?,
        None => Default::default(),
    };
    let course = valid.authorization_id.and_then(|id| courses.get(&id));
    adjudicate_appeal_in_course(
        &product.product,
        &cover,
        &balances,
        &elsewhere,
        &valid,
        Appealed { prior, evidence },
        course,
    )
    .map_err(|e| match e {
        AdjudicationError::NotAppealable => not_appealable(claim.id, NotAppealable::NoDeniedItem),
        other => adjudication_error(other),
    })
}

/// Writes an appeal's decision after `parent`, its paid-item fingerprints
/// and its ledger entries, then checks that the balances stay within the
/// product's terms.
fn store_decision(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    claim: &ClaimRow,
    product: &StoredProduct,
    parent: &DecisionRow,
    decision: &ClaimDecision,
) -> Result<i64, StoreError> {
    let now = audit::truncate_to_micros(ctx.now.naive_utc());
    let decision_id = next_decision_id(conn)?;
    let row = NewDecision {
        id: decision_id,
        claim_id: claim.id,
        sequence: parent.sequence + 1,
        parent_decision_id: Some(parent.id),
        product_version_id: product.version_id,
        status: decision.status.as_str().to_owned(),
        payable_fen: decision.totals.payable.0,
        body: serde_json::to_string(decision)?,
        decided_by: ctx.actor.to_owned(),
        created_at: now,
    };
    diesel::insert_into(decisions::table)
        .values(&row)
        .execute(conn)?;
    let of = DecisionOf {
        member_id: claim.member_id,
        product_id: &product.product.id,
        claim_id: claim.id,
        decision_id,
        now,
    };
    let effects = decision_effects(&of, decision)?;
    insert_rows!(conn, paid_items::table, effects.paid_items);
    insert_rows!(conn, ledger_entries::table, effects.ledger);
    check_balances_within_terms(conn, claim.member_id, product)?;
    Ok(decision_id)
}
