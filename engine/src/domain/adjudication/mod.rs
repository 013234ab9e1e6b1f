//! Adjudication: the pure decision of a claim against a product, a member's
//! cover, the balances left and the items already paid. No I/O and no clock:
//! the same inputs always give the same decision, so an auditor can replay it.
//!
//! The rules (numbered as in the product specification):
//! 1. Service date before the coverage start or after the period end: every
//!    item denied `not_covered_period`.
//! 2. Service date before the first covered day (see
//!    [`first_covered_day`](super::enrollment::first_covered_day)): every item denied `waiting_period`.
//! 3. Drug items: `not_on_formulary` alone, otherwise every failing one of
//!    `indication_mismatch`, `biomarker_required`, `not_designated_provider`.
//!    The course rules 6-8 ([`super::course_rules`]) are listed with them,
//!    after them: `authorization_required` for a drug paid only in a course
//!    when no course is named; against the named course
//!    `authorization_mismatch`, else every failing one of `course_ended`,
//!    `outside_course`, `cycle_already_dispensed`,
//!    `quantity_exceeds_authorization`, `price_exceeds_authorization`,
//!    `followup_required`.
//! 4. When 1-3 and 6-8 pass: `duplicate` if an item with the same
//!    fingerprint was paid on another live claim of the member or earlier in
//!    this claim.
//! 5. Otherwise paid: deductible first, then the coinsurance share rounded
//!    per item (half away from zero), capped by the limit left.
//!
//! Denied items consume nothing. Items are decided in order, each against
//! the balance left by the items before it.

use std::collections::HashSet;

use super::authorization::CourseState;
use super::claim::{BenefitKind, Biomarker, ValidClaim};
use super::money::MoneyError;
use super::product::Product;

mod appeal;
mod balances;
mod decision;
mod fingerprint;
mod pass;

pub use appeal::{AppealEvidence, AppealItemEvidence, NotAppealable, check_appealable};
pub use balances::{Balance, Balances, BenefitBalance, LedgerDelta, MemberCover};
pub use decision::{ClaimDecision, ClaimStatus, ClaimTotals, ItemDecision, ItemOutcome, Reason};
pub use fingerprint::{FingerprintKeyError, ItemFingerprint};
use pass::Adjudication;
pub(crate) use pass::claim_level_denial;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdjudicationError {
    #[error("product `{product_id}` has no {} benefit", benefit.as_str())]
    BenefitNotOffered {
        product_id: String,
        benefit: BenefitKind,
    },
    #[error("item {index} is not a {} item", claim_kind.as_str())]
    ItemKindMismatch {
        index: usize,
        claim_kind: BenefitKind,
    },
    #[error("item {index}: {source}")]
    Money { index: usize, source: MoneyError },
    #[error("the claim has no denied item to appeal")]
    NotAppealable,
    #[error("the prior decision does not belong to this claim")]
    PriorDoesNotMatchClaim,
    #[error("appeal evidence names item {index}, which is not a denied item of the claim")]
    EvidenceForUndeniedItem { index: usize },
    #[error("the claim names authorisation {authorization_id}, whose state was not given")]
    CourseNotLoaded { authorization_id: i64 },
}

impl AdjudicationError {
    pub fn code(&self) -> &'static str {
        match self {
            AdjudicationError::BenefitNotOffered { .. } => "benefit_not_offered",
            AdjudicationError::ItemKindMismatch { .. } => "item_kind_mismatch",
            AdjudicationError::Money {
                source: MoneyError::Negative,
                ..
            } => "inconsistent_amounts",
            AdjudicationError::Money { .. } => "amount_overflow",
            AdjudicationError::NotAppealable => "not_appealable",
            AdjudicationError::PriorDoesNotMatchClaim => "prior_does_not_match_claim",
            AdjudicationError::EvidenceForUndeniedItem { .. } => "item_not_denied",
            AdjudicationError::CourseNotLoaded { .. } => "course_not_loaded",
        }
    }
}

/// Decides a new claim.
///
/// `product` is the product whose period contains the service date and in
/// which the member is enrolled; `balances` are the member's balances in it
/// before this claim; `paid_elsewhere` holds the fingerprints of the paid
/// items of the member's other non-reversed claims.
pub fn adjudicate(
    product: &Product,
    cover: &MemberCover,
    balances: &Balances,
    paid_elsewhere: &HashSet<ItemFingerprint>,
    claim: &ValidClaim,
) -> Result<ClaimDecision, AdjudicationError> {
    adjudicate_in_course(product, cover, balances, paid_elsewhere, claim, None)
}

/// Decides a new claim that may name an authorised course: `course` is
/// the state of the course `claim.authorization_id` names (its assessments,
/// cancel and the cycles dispensed on other claims), which the course rules
/// judge as of the service date.
pub fn adjudicate_in_course(
    product: &Product,
    cover: &MemberCover,
    balances: &Balances,
    paid_elsewhere: &HashSet<ItemFingerprint>,
    claim: &ValidClaim,
    course: Option<&CourseState>,
) -> Result<ClaimDecision, AdjudicationError> {
    let mut run = Adjudication::start(product, cover, balances, paid_elsewhere, claim, course)?;
    let mut items = Vec::with_capacity(claim.items.len());
    for (index, item) in claim.items.iter().enumerate() {
        items.push(run.decide_item(index, item, &[])?);
    }
    run.finish(items)
}

/// Decides an appeal of `prior`, the latest decision of `claim`: its denied
/// items are decided again by the same rules, with the evidence's extra
/// biomarkers, against the balances and duplicate state of now; its paid
/// items carry over unchanged and are not posted again. The returned ledger
/// holds only the newly paid items' entries.
pub fn adjudicate_appeal(
    product: &Product,
    cover: &MemberCover,
    balances: &Balances,
    paid_elsewhere: &HashSet<ItemFingerprint>,
    claim: &ValidClaim,
    prior: &ClaimDecision,
    evidence: &AppealEvidence,
) -> Result<ClaimDecision, AdjudicationError> {
    let now = Appealed { prior, evidence };
    adjudicate_appeal_in_course(product, cover, balances, paid_elsewhere, claim, now, None)
}

/// The decision being appealed and the evidence brought to it.
#[derive(Debug, Clone, Copy)]
pub struct Appealed<'a> {
    pub prior: &'a ClaimDecision,
    pub evidence: &'a AppealEvidence,
}

/// [`adjudicate_appeal`] for a claim that may name a course: `course` is
/// its state at the time of the appeal (so an assessment recorded since
/// counts), judged as of the service date.
pub fn adjudicate_appeal_in_course(
    product: &Product,
    cover: &MemberCover,
    balances: &Balances,
    paid_elsewhere: &HashSet<ItemFingerprint>,
    claim: &ValidClaim,
    appealed: Appealed<'_>,
    course: Option<&CourseState>,
) -> Result<ClaimDecision, AdjudicationError> {
    let Appealed { prior, evidence } = appealed;
    let matches_claim = prior.benefit == claim.kind
        && prior.items.len() == claim.items.len()
        && prior.items.iter().enumerate().all(|(index, decision)| {
            decision.index == index
                && ItemFingerprint::of_claim_item(claim, index).as_ref()
                    == Some(&decision.fingerprint)
        });
    if !matches_claim {
        return Err(AdjudicationError::PriorDoesNotMatchClaim);
    }
    if check_appealable(prior, false).is_err() {
        return Err(AdjudicationError::NotAppealable);
    }
    for entry in &evidence.items {
        let denied = prior
            .items
            .get(entry.index)
            .is_some_and(|item| item.outcome == ItemOutcome::Denied);
        if !denied {
            return Err(AdjudicationError::EvidenceForUndeniedItem { index: entry.index });
        }
    }

    let mut run = Adjudication::start(product, cover, balances, paid_elsewhere, claim, course)?;
    // Paid items of this claim count for duplicates whatever their position.
    run.paid_in_claim.extend(prior.paid_fingerprints().cloned());
    let mut items = Vec::with_capacity(claim.items.len());
    for (index, item) in claim.items.iter().enumerate() {
        let previous = &prior.items[index];
        if previous.outcome == ItemOutcome::Paid {
            items.push(ItemDecision {
                carried_over: true,
                ..previous.clone()
            });
        } else {
            let extra: Vec<Biomarker> = evidence.biomarkers_for(index).cloned().collect();
            items.push(run.decide_item(index, item, &extra)?);
        }
    }
    run.finish(items)
}
