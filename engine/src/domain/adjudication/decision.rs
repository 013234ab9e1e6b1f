//! The decision of a claim: reasons, item outcomes and amounts, totals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Balance, BenefitBalance, ItemFingerprint, LedgerDelta};
use crate::domain::claim::BenefitKind;
use crate::domain::money::Fen;

/// Why an item was denied, or what limited its payment.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotCoveredPeriod,
    WaitingPeriod,
    NotOnFormulary,
    IndicationMismatch,
    BiomarkerRequired,
    NotDesignatedProvider,
    Duplicate,
    /// Paid: the item had nothing eligible (E = 0).
    NothingEligible,
    /// Paid: the whole eligible amount went to the deductible.
    Deductible,
    /// Paid: the limit cut the payment, or was already used up.
    LimitReached,
    // Dispensing against an authorised course (rules 6-8).
    AuthorizationRequired,
    AuthorizationMismatch,
    CourseEnded,
    OutsideCourse,
    CycleAlreadyDispensed,
    QuantityExceedsAuthorization,
    PriceExceedsAuthorization,
    FollowupRequired,
    // Why an authorisation request is denied (beside the claim reasons
    // `not_covered_period` to `biomarker_required`).
    PrescriberNotQualified,
    CycleTooLong,
    CourseTooLong,
    OverlappingCourse,
    BeyondPeriod,
}

impl Reason {
    /// The snake_case code, as serialised.
    pub fn as_str(self) -> &'static str {
        self.code()
    }

    pub fn code(self) -> &'static str {
        match self {
            Reason::NotCoveredPeriod => "not_covered_period",
            Reason::WaitingPeriod => "waiting_period",
            Reason::NotOnFormulary => "not_on_formulary",
            Reason::IndicationMismatch => "indication_mismatch",
            Reason::BiomarkerRequired => "biomarker_required",
            Reason::NotDesignatedProvider => "not_designated_provider",
            Reason::Duplicate => "duplicate",
            Reason::NothingEligible => "nothing_eligible",
            Reason::Deductible => "deductible",
            Reason::LimitReached => "limit_reached",
            Reason::AuthorizationRequired => "authorization_required",
            Reason::AuthorizationMismatch => "authorization_mismatch",
            Reason::CourseEnded => "course_ended",
            Reason::OutsideCourse => "outside_course",
            Reason::CycleAlreadyDispensed => "cycle_already_dispensed",
            Reason::QuantityExceedsAuthorization => "quantity_exceeds_authorization",
            Reason::PriceExceedsAuthorization => "price_exceeds_authorization",
            Reason::FollowupRequired => "followup_required",
            Reason::PrescriberNotQualified => "prescriber_not_qualified",
            Reason::CycleTooLong => "cycle_too_long",
            Reason::CourseTooLong => "course_too_long",
            Reason::OverlappingCourse => "overlapping_course",
            Reason::BeyondPeriod => "beyond_period",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    Paid,
    Denied,
}

impl ItemOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Paid => "paid",
            ItemOutcome::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Every item paid (possibly 0 under the deductible or limit).
    Paid,
    /// Every item denied.
    Denied,
    Partial,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Paid => "paid",
            ClaimStatus::Denied => "denied",
            ClaimStatus::Partial => "partial",
        }
    }
}

/// The explanation of one item (amounts in CNY, kept as fen).
///
/// For a denied item nothing is consumed: `deductible_applied` and
/// `payable` are zero and `coinsurance_rate` is absent (no rate was
/// applied; a paid item at a product rate of 0 shows `0`), while `eligible`
/// still shows E, so that
/// `member_responsibility = eligible - payable` and
/// `out_of_pocket = submitted - basic_paid - payable` hold for every item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemDecision {
    pub index: usize,
    pub outcome: ItemOutcome,
    pub reasons: Vec<Reason>,
    pub submitted: Fen,
    pub basic_paid: Fen,
    pub eligible: Fen,
    pub deductible_applied: Fen,
    /// The product's rate for this item, a decimal string in [0, 1].
    #[schema(value_type = Option<String>, pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    pub coinsurance_rate: Option<Decimal>,
    pub payable: Fen,
    pub member_responsibility: Fen,
    pub out_of_pocket: Fen,
    pub balance_before: Balance,
    pub balance_after: Balance,
    /// Paid by an earlier decision and carried into an appeal decision.
    pub carried_over: bool,
    pub fingerprint: ItemFingerprint,
    /// The authorised course the item was dispensed against, if any.
    #[serde(default)]
    pub authorization_id: Option<i64>,
    /// The cycle of that course the service date falls in (null outside a
    /// course, and when the authorisation does not match the claim).
    #[serde(default)]
    pub cycle: Option<u32>,
}

/// Sums over the items of a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimTotals {
    pub submitted: Fen,
    pub basic_paid: Fen,
    pub eligible: Fen,
    pub deductible_applied: Fen,
    pub payable: Fen,
    pub member_responsibility: Fen,
    pub out_of_pocket: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimDecision {
    pub status: ClaimStatus,
    pub benefit: BenefitKind,
    pub items: Vec<ItemDecision>,
    pub totals: ClaimTotals,
    /// The benefit's deductible and limit, used and left, after this
    /// decision. Absent only on decisions stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit_balance: Option<BenefitBalance>,
    /// Entries to post; for an appeal, only those of newly paid items.
    pub ledger: Vec<LedgerDelta>,
}

impl ClaimDecision {
    pub fn has_paid_item(&self) -> bool {
        self.items
            .iter()
            .any(|item| item.outcome == ItemOutcome::Paid)
    }

    pub fn has_denied_item(&self) -> bool {
        self.items
            .iter()
            .any(|item| item.outcome == ItemOutcome::Denied)
    }

    /// Fingerprints of the paid items: what storage records so that later
    /// claims can detect duplicates of them.
    pub fn paid_fingerprints(&self) -> impl Iterator<Item = &ItemFingerprint> {
        self.items
            .iter()
            .filter(|item| item.outcome == ItemOutcome::Paid)
            .map(|item| &item.fingerprint)
    }
}
