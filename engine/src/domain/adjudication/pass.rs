//! One adjudication pass over a claim's items: rules 1-5 item by item, each
//! against the balance the items before it left.

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{
    AdjudicationError, Balance, Balances, BenefitBalance, ClaimDecision, ClaimStatus, ClaimTotals,
    ItemDecision, ItemFingerprint, ItemOutcome, LedgerDelta, MemberCover, Reason,
};
use crate::domain::authorization::CourseState;
use crate::domain::claim::{Biomarker, ClaimItem, ValidClaim};
use crate::domain::course_rules;
use crate::domain::enrollment::first_covered_day;
use crate::domain::money::{Fen, MoneyError, try_round_to_fen};
use crate::domain::product::{BenefitTerms, Product};

/// An item's amounts, before any rule is applied.
struct ItemAmounts {
    index: usize,
    fingerprint: ItemFingerprint,
    submitted: Fen,
    basic_paid: Fen,
    eligible: Fen,
    authorization_id: Option<i64>,
    cycle: Option<u32>,
}

/// A denied item consumes nothing: `eligible` still shows E, so that
/// `member_responsibility = eligible - payable` holds for it too.
fn deny(
    amounts: ItemAmounts,
    reasons: Vec<Reason>,
    balance: Balance,
) -> Result<ItemDecision, AdjudicationError> {
    let out_of_pocket = amounts
        .submitted
        .try_sub(amounts.basic_paid)
        .map_err(|source| AdjudicationError::Money {
            index: amounts.index,
            source,
        })?;
    Ok(ItemDecision {
        index: amounts.index,
        outcome: ItemOutcome::Denied,
        reasons,
        submitted: amounts.submitted,
        basic_paid: amounts.basic_paid,
        eligible: amounts.eligible,
        deductible_applied: Fen::ZERO,
        coinsurance_rate: None,
        payable: Fen::ZERO,
        member_responsibility: amounts.eligible,
        out_of_pocket,
        balance_before: balance,
        balance_after: balance,
        carried_over: false,
        fingerprint: amounts.fingerprint,
        authorization_id: amounts.authorization_id,
        cycle: amounts.cycle,
    })
}

/// The state of one adjudication pass over a claim's items.
pub(super) struct Adjudication<'a> {
    product: &'a Product,
    claim: &'a ValidClaim,
    terms: &'a BenefitTerms,
    paid_elsewhere: &'a HashSet<ItemFingerprint>,
    /// Fingerprints of the items of this claim paid so far.
    pub(super) paid_in_claim: HashSet<ItemFingerprint>,
    /// Rules 1 and 2 depend only on the claim, so they are decided once.
    claim_denial: Option<Reason>,
    /// The course the claim names, as now recorded.
    course: Option<&'a CourseState>,
    coinsurance_rate: Decimal,
    balance: Balance,
    ledger: Vec<LedgerDelta>,
}

impl<'a> Adjudication<'a> {
    pub(super) fn start(
        product: &'a Product,
        cover: &MemberCover,
        balances: &Balances,
        paid_elsewhere: &'a HashSet<ItemFingerprint>,
        claim: &'a ValidClaim,
        course: Option<&'a CourseState>,
    ) -> Result<Self, AdjudicationError> {
        let not_loaded = claim
            .authorization_id
            .filter(|id| course.is_none_or(|state| state.course.id != *id));
        if let Some(authorization_id) = not_loaded {
            return Err(AdjudicationError::CourseNotLoaded { authorization_id });
        }
        let terms =
            product
                .terms(claim.kind)
                .ok_or_else(|| AdjudicationError::BenefitNotOffered {
                    product_id: product.id.clone(),
                    benefit: claim.kind,
                })?;
        let coinsurance_rate =
            if product.preexisting_applies(&claim.diagnosis, &cover.declared_conditions) {
                terms.coinsurance_preexisting
            } else {
                terms.coinsurance
            };
        Ok(Adjudication {
            product,
            claim,
            terms,
            paid_elsewhere,
            paid_in_claim: HashSet::new(),
            claim_denial: claim_level_denial(product, cover, claim.service_date),
            course,
            coinsurance_rate,
            balance: balances.of(claim.kind),
            ledger: Vec::new(),
        })
    }

    /// Decides one item against the balance the items before it left.
    pub(super) fn decide_item(
        &mut self,
        index: usize,
        item: &ClaimItem,
        extra_biomarkers: &[Biomarker],
    ) -> Result<ItemDecision, AdjudicationError> {
        if item.kind() != self.claim.kind {
            return Err(AdjudicationError::ItemKindMismatch {
                index,
                claim_kind: self.claim.kind,
            });
        }
        let money = |source| AdjudicationError::Money { index, source };
        let amounts = ItemAmounts {
            index,
            fingerprint: ItemFingerprint::new(
                &self.claim.provider_id,
                self.claim.service_date,
                item,
            ),
            submitted: item.submitted().map_err(money)?,
            basic_paid: item.basic_paid(),
            eligible: item.eligible().map_err(money)?,
            authorization_id: self.claim.authorization_id,
            cycle: None,
        };
        let (denial, cycle) = self.denial_reasons(item, extra_biomarkers, &amounts.fingerprint);
        let amounts = ItemAmounts { cycle, ..amounts };
        if denial.is_empty() {
            self.pay(amounts)
        } else {
            deny(amounts, denial, self.balance)
        }
    }

    /// Why an item is denied: the claim's own denial, else rule 3 and the
    /// course rules 6-8 for drugs, else rule 4 (a duplicate of an item paid
    /// before); with the course cycle the item falls in.
    fn denial_reasons(
        &self,
        item: &ClaimItem,
        extra_biomarkers: &[Biomarker],
        fingerprint: &ItemFingerprint,
    ) -> (Vec<Reason>, Option<u32>) {
        if let Some(reason) = self.claim_denial {
            return (vec![reason], None);
        }
        let (mut reasons, cycle) = self.drug_reasons(item, extra_biomarkers);
        if reasons.is_empty()
            && (self.paid_elsewhere.contains(fingerprint)
                || self.paid_in_claim.contains(fingerprint))
        {
            reasons.push(Reason::Duplicate);
        }
        (reasons, cycle)
    }

    /// Rule 1 for an item that is not denied: deductible, coinsurance and
    /// limit, moving the balance on.
    fn pay(&mut self, amounts: ItemAmounts) -> Result<ItemDecision, AdjudicationError> {
        let ItemAmounts {
            index,
            fingerprint,
            submitted,
            basic_paid,
            eligible,
            authorization_id,
            cycle,
        } = amounts;
        let money = |source| AdjudicationError::Money { index, source };
        let balance_before = self.balance;
        let deductible_left = self
            .terms
            .deductible
            .remaining_after(balance_before.deductible_met)
            .map_err(money)?;
        let limit_left = self
            .terms
            .annual_limit
            .remaining_after(balance_before.paid)
            .map_err(money)?;
        let deductible_applied = eligible.min(deductible_left);
        let after_deductible = eligible.try_sub(deductible_applied).map_err(money)?;
        let share = self
            .coinsurance_rate
            .checked_mul(after_deductible.to_decimal())
            .ok_or(money(MoneyError::Overflow))?;
        let benefit = try_round_to_fen(share).map_err(money)?;
        let payable = benefit.min(limit_left);

        let mut reasons = Vec::new();
        if eligible.is_zero() {
            reasons.push(Reason::NothingEligible);
        } else if deductible_applied == eligible {
            reasons.push(Reason::Deductible);
        }
        if payable < benefit || limit_left.is_zero() {
            reasons.push(Reason::LimitReached);
        }

        let delta = LedgerDelta {
            item_index: index,
            benefit: self.claim.kind,
            deductible_met: deductible_applied,
            paid: payable,
        };
        let balance_after = balance_before.after(&delta).map_err(money)?;
        if !(delta.deductible_met.is_zero() && delta.paid.is_zero()) {
            self.ledger.push(delta);
        }
        self.balance = balance_after;
        self.paid_in_claim.insert(fingerprint.clone());

        Ok(ItemDecision {
            index,
            outcome: ItemOutcome::Paid,
            reasons,
            submitted,
            basic_paid,
            eligible,
            deductible_applied,
            coinsurance_rate: Some(self.coinsurance_rate),
            payable,
            member_responsibility: eligible.try_sub(payable).map_err(money)?,
            out_of_pocket: submitted
                .try_sub(basic_paid)
                .and_then(|rest| rest.try_sub(payable))
                .map_err(money)?,
            balance_before,
            balance_after,
            carried_over: false,
            fingerprint,
            authorization_id,
            cycle,
        })
    }

    /// Rule 3 for drug items (inpatient items have no item-level checks),
    /// then the course rules 6-8, all listed together; with the cycle.
    fn drug_reasons(
        &self,
        item: &ClaimItem,
        extra_biomarkers: &[Biomarker],
    ) -> (Vec<Reason>, Option<u32>) {
        let ClaimItem::Drug {
            drug, biomarkers, ..
        } = item
        else {
            return (Vec::new(), None);
        };
        let Some(listed) = self.product.formulary_drug(drug) else {
            return (vec![Reason::NotOnFormulary], None);
        };
        let course = course_rules::check(listed, self.claim, item, self.course);
        let mut reasons = Vec::new();
        if !listed.indicated_for(&self.claim.diagnosis) {
            reasons.push(Reason::IndicationMismatch);
        }
        if let Some(required) = &listed.required_biomarker {
            let shown = course.meets_biomarker
                || biomarkers
                    .iter()
                    .chain(extra_biomarkers)
                    .any(|biomarker| biomarker.is_positive_for(required));
            if !shown {
                reasons.push(Reason::BiomarkerRequired);
            }
        }
        if !listed.dispensed_by(&self.claim.provider_id) {
            reasons.push(Reason::NotDesignatedProvider);
        }
        reasons.extend(course.reasons);
        (reasons, course.cycle)
    }

    pub(super) fn finish(
        self,
        items: Vec<ItemDecision>,
    ) -> Result<ClaimDecision, AdjudicationError> {
        let total = |field: fn(&ItemDecision) -> Fen| {
            Fen::try_sum(items.iter().map(field)).map_err(|source| AdjudicationError::Money {
                index: items.len(),
                source,
            })
        };
        let totals = ClaimTotals {
            submitted: total(|item| item.submitted)?,
            basic_paid: total(|item| item.basic_paid)?,
            eligible: total(|item| item.eligible)?,
            deductible_applied: total(|item| item.deductible_applied)?,
            payable: total(|item| item.payable)?,
            member_responsibility: total(|item| item.member_responsibility)?,
            out_of_pocket: total(|item| item.out_of_pocket)?,
        };
        let paid = items
            .iter()
            .filter(|item| item.outcome == ItemOutcome::Paid)
            .count();
        let status = if paid == items.len() {
            ClaimStatus::Paid
        } else if paid == 0 {
            ClaimStatus::Denied
        } else {
            ClaimStatus::Partial
        };
        let benefit_balance = BenefitBalance::of(self.terms, self.balance).map_err(|source| {
            AdjudicationError::Money {
                index: items.len(),
                source,
            }
        })?;
        Ok(ClaimDecision {
            status,
            benefit: self.claim.kind,
            items,
            totals,
            benefit_balance: Some(benefit_balance),
            ledger: self.ledger,
        })
    }
}

/// Rules 1 and 2: reasons that deny every item of a claim.
pub(crate) fn claim_level_denial(
    product: &Product,
    cover: &MemberCover,
    service_date: NaiveDate,
) -> Option<Reason> {
    let coverage_start = cover.coverage_start.max(product.period_start);
    if service_date < coverage_start || service_date > product.period_end {
        return Some(Reason::NotCoveredPeriod);
    }
    if service_date
        < first_covered_day(
            cover.coverage_start,
            product.waiting_days,
            cover.waiting_waived,
        )
    {
        return Some(Reason::WaitingPeriod);
    }
    None
}
