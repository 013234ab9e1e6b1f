//! Adjudication: the pure decision of a claim against a product, a member's
//! cover, the balances left and the items already paid. No I/O and no clock:
//! the same inputs always give the same decision, so an auditor can replay it.
//!
//! The rules (numbered as in the product specification):
//! 1. Service date before the coverage start or after the period end: every
//!    item denied `not_covered_period`.
//! 2. Service date before the first covered day (see
//!    [`first_covered_day`]): every item denied `waiting_period`.
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
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::authorization::CourseState;
use super::claim::{BenefitKind, Biomarker, ClaimItem, ValidClaim};
use super::codes::{AtcCode, Icd10Code};
use super::course_rules;
use super::enrollment::first_covered_day;
use super::money::{Fen, MoneyError, try_round_to_fen};
use super::product::{BenefitTerms, Product};
use super::validation::ValidationErrors;

/// What adjudication needs to know about the member's enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCover {
    pub coverage_start: NaiveDate,
    /// The member renewed from the product named by `renews`.
    pub waiting_waived: bool,
    pub declared_conditions: Vec<Icd10Code>,
}

/// Use of one benefit by one member in one product, before a claim or item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// What makes two paid items the same for duplicate detection (rule 4):
/// kind, provider, service date and amounts. Diagnosis and biomarkers are
/// deliberately left out, so a re-submission with another diagnosis is still
/// a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemFingerprint {
    provider_id: String,
    service_date: NaiveDate,
    amounts: FingerprintAmounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FingerprintAmounts {
    Inpatient {
        total: Fen,
        basic_paid: Fen,
        out_of_catalogue: Fen,
    },
    Drug {
        drug: AtcCode,
        quantity: u32,
        unit_price: Fen,
        basic_paid: Fen,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an item fingerprint key: {0}")]
pub struct FingerprintKeyError(String);

impl ItemFingerprint {
    /// The fingerprint of an item of a claim by `provider_id` on `service_date`.
    pub fn new(provider_id: &str, service_date: NaiveDate, item: &ClaimItem) -> Self {
        let amounts = match item {
            ClaimItem::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => FingerprintAmounts::Inpatient {
                total: *total,
                basic_paid: *basic_paid,
                out_of_catalogue: *out_of_catalogue,
            },
            ClaimItem::Drug {
                drug,
                quantity,
                unit_price,
                basic_paid,
                ..
            } => FingerprintAmounts::Drug {
                drug: drug.clone(),
                quantity: *quantity,
                unit_price: *unit_price,
                basic_paid: *basic_paid,
            },
        };
        ItemFingerprint {
            provider_id: provider_id.to_owned(),
            service_date,
            amounts,
        }
    }

    /// The fingerprint of `claim.items[index]`, if there is such an item.
    pub fn of_claim_item(claim: &ValidClaim, index: usize) -> Option<Self> {
        claim
            .items
            .get(index)
            .map(|item| Self::new(&claim.provider_id, claim.service_date, item))
    }

    pub fn kind(&self) -> BenefitKind {
        match self.amounts {
            FingerprintAmounts::Inpatient { .. } => BenefitKind::Inpatient,
            FingerprintAmounts::Drug { .. } => BenefitKind::SpecialtyDrug,
        }
    }

    /// Stable text form for storage and indexes: a compact JSON array with
    /// amounts in fen, e.g.
    /// `["specialty_drug","XM-PH-001","2026-08-01","L01EB04",30,51000,0]`.
    pub fn key(&self) -> String {
        let mut parts: Vec<Value> = vec![
            self.kind().as_str().into(),
            self.provider_id.clone().into(),
            self.service_date.to_string().into(),
        ];
        match &self.amounts {
            FingerprintAmounts::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => parts.extend([
                total.0.into(),
                basic_paid.0.into(),
                out_of_catalogue.0.into(),
            ]),
            FingerprintAmounts::Drug {
                drug,
                quantity,
                unit_price,
                basic_paid,
            } => parts.extend([
                drug.as_str().into(),
                (*quantity).into(),
                unit_price.0.into(),
                basic_paid.0.into(),
            ]),
        }
        Value::Array(parts).to_string()
    }

    /// Reads a [`key`](Self::key) back.
    pub fn from_key(key: &str) -> Result<Self, FingerprintKeyError> {
        let bad = || FingerprintKeyError(key.to_owned());
        let parts: Vec<Value> = serde_json::from_str(key).map_err(|_| bad())?;
        let text = |index: usize| parts.get(index).and_then(Value::as_str).ok_or_else(bad);
        let fen = |index: usize| {
            parts
                .get(index)
                .and_then(Value::as_i64)
                .map(Fen)
                .ok_or_else(bad)
        };
        let provider_id = text(1)?.to_owned();
        let service_date = text(2)?.parse::<NaiveDate>().map_err(|_| bad())?;
        let amounts = match (text(0)?, parts.len()) {
            ("inpatient", 6) => FingerprintAmounts::Inpatient {
                total: fen(3)?,
                basic_paid: fen(4)?,
                out_of_catalogue: fen(5)?,
            },
            ("specialty_drug", 7) => FingerprintAmounts::Drug {
                drug: text(3)?.parse().map_err(|_| bad())?,
                quantity: parts
                    .get(4)
                    .and_then(Value::as_u64)
                    .and_then(|q| u32::try_from(q).ok())
                    .ok_or_else(bad)?,
                unit_price: fen(5)?,
                basic_paid: fen(6)?,
            },
            _ => return Err(bad()),
        };
        Ok(ItemFingerprint {
            provider_id,
            service_date,
            amounts,
        })
    }
}

impl fmt::Display for ItemFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl Serialize for ItemFingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for ItemFingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        ItemFingerprint::from_key(&key).map_err(serde::de::Error::custom)
    }
}

/// Why an item was denied, or what limited its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// The explanation of one item; all amounts in fen.
///
/// For a denied item nothing is consumed: `deductible_applied` and
/// `payable` are zero and `coinsurance_rate` is absent (no rate was
/// applied; a paid item at a product rate of 0 shows `0`), while `eligible`
/// still shows E, so that
/// `member_responsibility = eligible - payable` and
/// `out_of_pocket = submitted - basic_paid - payable` hold for every item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDecision {
    pub index: usize,
    pub outcome: ItemOutcome,
    pub reasons: Vec<Reason>,
    pub submitted: Fen,
    pub basic_paid: Fen,
    pub eligible: Fen,
    pub deductible_applied: Fen,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTotals {
    pub submitted: Fen,
    pub basic_paid: Fen,
    pub eligible: Fen,
    pub deductible_applied: Fen,
    pub payable: Fen,
    pub member_responsibility: Fen,
    pub out_of_pocket: Fen,
}

/// A ledger entry to post with the decision: what one newly paid item adds
/// to the member's balance of one benefit. Items that add nothing (E = 0, or
/// limit used up with the deductible met) have no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Biomarker results brought to an appeal, per item of the claim (the body
/// of an appeal: `{"items": [{"index": 0, "biomarkers": [{"marker": "EGFR",
/// "positive": true}]}]}`). They are added to the item's own results;
/// nothing submitted is replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealEvidence {
    #[serde(default)]
    pub items: Vec<AppealItemEvidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealItemEvidence {
    /// Position of the item in the claim, from 0.
    pub index: usize,
    pub biomarkers: Vec<Biomarker>,
}

const MAX_MARKER_CHARS: usize = 64;

impl AppealEvidence {
    /// Checks the evidence on its own: each entry brings at least one
    /// biomarker with a name, and names an item at most once. Whether the
    /// items exist and were denied is checked against the decision by
    /// [`check_against`](Self::check_against).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut seen = HashSet::new();
        for (position, entry) in self.items.iter().enumerate() {
            let path = format!("items[{position}]");
            if !seen.insert(entry.index) {
                errors.push(
                    format!("{path}.index"),
                    "duplicate_index",
                    format!("item {} is named twice", entry.index),
                );
            }
            if entry.biomarkers.is_empty() {
                errors.push(
                    format!("{path}.biomarkers"),
                    "invalid_biomarkers",
                    "evidence brings at least one biomarker result",
                );
            }
            for (marker_position, biomarker) in entry.biomarkers.iter().enumerate() {
                let name = biomarker.marker.trim();
                if name.is_empty() || name.chars().count() > MAX_MARKER_CHARS {
                    errors.push(
                        format!("{path}.biomarkers[{marker_position}].marker"),
                        "invalid_marker",
                        format!("marker is a name of 1 to {MAX_MARKER_CHARS} characters"),
                    );
                }
            }
        }
        errors.into_result(())
    }

    /// Checks that every entry names a denied item of `prior`, the decision
    /// being appealed.
    pub fn check_against(&self, prior: &ClaimDecision) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (position, entry) in self.items.iter().enumerate() {
            let field = format!("items[{position}].index");
            match prior.items.get(entry.index) {
                None => errors.push(
                    field,
                    "unknown_item",
                    format!("the claim has {} items", prior.items.len()),
                ),
                Some(item) if item.outcome != ItemOutcome::Denied => errors.push(
                    field,
                    "item_not_denied",
                    "only denied items are decided again",
                ),
                Some(_) => {}
            }
        }
        errors.into_result(())
    }

    /// The extra biomarker results for item `index`.
    pub fn biomarkers_for(&self, index: usize) -> impl Iterator<Item = &Biomarker> {
        self.items
            .iter()
            .filter(move |entry| entry.index == index)
            .flat_map(|entry| entry.biomarkers.iter())
    }
}

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

/// Why a claim cannot be appealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAppealable {
    /// A reversed claim is closed.
    Reversed,
    /// Only denied items are decided again, and there are none.
    NoDeniedItem,
}

/// The appeal rule: only a claim that is not reversed and whose decision in
/// force (`prior`) denies an item can be appealed.
pub fn check_appealable(prior: &ClaimDecision, reversed: bool) -> Result<(), NotAppealable> {
    if reversed {
        Err(NotAppealable::Reversed)
    } else if !prior.has_denied_item() {
        Err(NotAppealable::NoDeniedItem)
    } else {
        Ok(())
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
struct Adjudication<'a> {
    product: &'a Product,
    claim: &'a ValidClaim,
    terms: &'a BenefitTerms,
    paid_elsewhere: &'a HashSet<ItemFingerprint>,
    /// Fingerprints of the items of this claim paid so far.
    paid_in_claim: HashSet<ItemFingerprint>,
    /// Rules 1 and 2 depend only on the claim, so they are decided once.
    claim_denial: Option<Reason>,
    /// The course the claim names, as now recorded.
    course: Option<&'a CourseState>,
    coinsurance_rate: Decimal,
    balance: Balance,
    ledger: Vec<LedgerDelta>,
}

impl<'a> Adjudication<'a> {
    fn start(
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
    fn decide_item(
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

    fn finish(self, items: Vec<ItemDecision>) -> Result<ClaimDecision, AdjudicationError> {
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
