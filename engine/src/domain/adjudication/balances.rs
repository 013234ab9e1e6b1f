//! A member's cover and balances, the ledger entries a decision posts, and
//! the used and left of a benefit after it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::claim::BenefitKind;
use crate::domain::codes::Icd10Code;
use crate::domain::money::{Fen, MoneyError};
use crate::domain::product::BenefitTerms;

/// What adjudication needs to know about the member's enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCover {
    pub coverage_start: NaiveDate,
    /// The member renewed from the product named by `renews`.
    pub waiting_waived: bool,
    pub declared_conditions: Vec<Icd10Code>,
}

/// Use of one benefit by one member in one product, before a claim or item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    pub deductible_met: Fen,
    pub paid: Fen,
}

impl Balance {
    /// The balance after a ledger delta is posted.
    pub fn after(self, delta: &LedgerDelta) -> Result<Balance, MoneyError> {
        Ok(Balance {
            deductible_met: self.deductible_met.try_add(delta.deductible_met)?,
            paid: self.paid.try_add(delta.paid)?,
        })
    }
}

/// The member's balances in one product; the benefits never share one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub inpatient: Balance,
    pub specialty_drug: Balance,
}

impl Balances {
    pub fn of(&self, kind: BenefitKind) -> Balance {
        match kind {
            BenefitKind::Inpatient => self.inpatient,
            BenefitKind::SpecialtyDrug => self.specialty_drug,
        }
    }

    pub fn of_mut(&mut self, kind: BenefitKind) -> &mut Balance {
        match kind {
            BenefitKind::Inpatient => &mut self.inpatient,
            BenefitKind::SpecialtyDrug => &mut self.specialty_drug,
        }
    }

    /// Posts ledger deltas, e.g. to carry balances from one claim to the next.
    pub fn apply(&mut self, ledger: &[LedgerDelta]) -> Result<(), MoneyError> {
        for delta in ledger {
            let balance = self.of_mut(delta.benefit);
            *balance = balance.after(delta)?;
        }
        Ok(())
    }
}

/// A ledger entry to post with the decision: what one newly paid item adds
/// to the member's balance of one benefit. Items that add nothing (E = 0, or
/// limit used up with the deductible met) have no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerDelta {
    pub item_index: usize,
    pub benefit: BenefitKind,
    pub deductible_met: Fen,
    pub paid: Fen,
}

impl LedgerDelta {
    /// The exact compensating entry, for a reversal.
    pub fn negated(&self) -> Result<LedgerDelta, MoneyError> {
        Ok(LedgerDelta {
            item_index: self.item_index,
            benefit: self.benefit,
            deductible_met: self
                .deductible_met
                .checked_neg()
                .ok_or(MoneyError::Overflow)?,
            paid: self.paid.checked_neg().ok_or(MoneyError::Overflow)?,
        })
    }
}

/// The member's cover in the claim's benefit once the decision is posted:
/// used and left of the deductible and of the annual limit, in the same
/// terms as the coverage screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenefitBalance {
    pub deductible: Fen,
    pub deductible_met: Fen,
    pub deductible_left: Fen,
    pub annual_limit: Fen,
    pub limit_used: Fen,
    pub limit_left: Fen,
}

impl BenefitBalance {
    /// A balance against its benefit's terms; what is left is floored at 0.
    pub fn of(terms: &BenefitTerms, balance: Balance) -> Result<BenefitBalance, MoneyError> {
        Ok(BenefitBalance {
            deductible: terms.deductible,
            deductible_met: balance.deductible_met,
            deductible_left: terms.deductible.remaining_after(balance.deductible_met)?,
            annual_limit: terms.annual_limit,
            limit_used: balance.paid,
            limit_left: terms.annual_limit.remaining_after(balance.paid)?,
        })
    }
}
