//! A claim as the app and the auditor see it, and the one builder of it, used
//! by the reads and by the writer (whose response is the view it stored).

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::domain::adjudication::{ClaimDecision, ClaimStatus};
use crate::domain::claim::BenefitKind;
use crate::domain::money::Fen;
use crate::error::StoreError;

use super::rows::{DecisionRow, ReversalRow};

/// A claim's status as shown: that of the decision in force, or `reversed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimViewStatus {
    Paid,
    Partial,
    Denied,
    Reversed,
}

impl ClaimViewStatus {
    pub fn of(decision: ClaimStatus, reversed: bool) -> ClaimViewStatus {
        match (reversed, decision) {
            (true, _) => ClaimViewStatus::Reversed,
            (false, ClaimStatus::Paid) => ClaimViewStatus::Paid,
            (false, ClaimStatus::Partial) => ClaimViewStatus::Partial,
            (false, ClaimStatus::Denied) => ClaimViewStatus::Denied,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClaimViewStatus::Paid => "paid",
            ClaimViewStatus::Partial => "partial",
            ClaimViewStatus::Denied => "denied",
            ClaimViewStatus::Reversed => "reversed",
        }
    }

    /// A stored decision's status column.
    pub(crate) fn parse_stored(status: &str, reversed: bool) -> Result<Self, StoreError> {
        let decision = match status {
            "paid" => ClaimStatus::Paid,
            "partial" => ClaimStatus::Partial,
            "denied" => ClaimStatus::Denied,
            other => {
                return Err(StoreError::integrity(format!(
                    "decision of unknown status {other:?}"
                )));
            }
        };
        Ok(ClaimViewStatus::of(decision, reversed))
    }
}

/// A stored claim's kind column.
pub(crate) fn parse_kind(kind: &str) -> Result<BenefitKind, StoreError> {
    BenefitKind::parse(kind)
        .ok_or_else(|| StoreError::integrity(format!("claim of unknown kind {kind:?}")))
}

/// One decision with its explanation of benefits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub id: i64,
    /// 1 for the first decision, 2.. for appeals.
    pub sequence: i32,
    pub parent_decision_id: Option<i64>,
    pub product_version_id: i64,
    pub decided_by: String,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: NaiveDateTime,
    #[serde(flatten)]
    pub decision: ClaimDecision,
}

impl DecisionView {
    pub(crate) fn from_row(row: DecisionRow) -> Result<DecisionView, StoreError> {
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
}

/// What a reversal gave back to one benefit's balance: the deductible met
/// and the amount paid that its compensating entries took off (as positive
/// amounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReversedAmounts {
    pub benefit: BenefitKind,
    pub deductible_met: Fen,
    pub paid: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReversalView {
    pub reason: String,
    pub reversed_by: String,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub reversed_at: NaiveDateTime,
    /// Per benefit, in the order of the claim's ledger entries.
    pub reversed: Vec<ReversedAmounts>,
}

impl ReversalView {
    /// The view of a reversal row and its compensating ledger entries
    /// `(benefit, deductible_fen, paid_fen)`, which are negative.
    pub(crate) fn build(
        row: ReversalRow,
        entries: &[(String, i64, i64)],
    ) -> Result<ReversalView, StoreError> {
        let overflow = || StoreError::integrity("reversed amount overflows");
        let mut reversed: Vec<ReversedAmounts> = Vec::new();
        for (benefit, deductible, paid) in entries {
            let benefit = parse_kind(benefit)?;
            let deductible = Fen(deductible.checked_neg().ok_or_else(overflow)?);
            let paid = Fen(paid.checked_neg().ok_or_else(overflow)?);
            match reversed.iter_mut().find(|sum| sum.benefit == benefit) {
                Some(sum) => {
                    sum.deductible_met = sum
                        .deductible_met
                        .try_add(deductible)
                        .map_err(|_| overflow())?;
                    sum.paid = sum.paid.try_add(paid).map_err(|_| overflow())?;
                }
                None => reversed.push(ReversedAmounts {
                    benefit,
                    deductible_met: deductible,
                    paid,
                }),
            }
        }
        Ok(ReversalView {
            reason: row.reason,
            reversed_by: row.reversed_by,
            reversed_at: row.created_at,
            reversed,
        })
    }
}

/// A claim as the app and the auditor see it: what was submitted, every
/// decision in order (the last one is in force) and any reversal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimView {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub kind: BenefitKind,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub submitted_by: String,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: NaiveDateTime,
    /// Of the decision in force, or `reversed`.
    pub status: ClaimViewStatus,
    /// The claim as validated and stored: amounts in fen, codes normalised.
    #[schema(value_type = Object)]
    pub submission: serde_json::Value,
    pub decision: DecisionView,
    pub decisions: Vec<DecisionView>,
    pub reversal: Option<ReversalView>,
}

/// What a claim is, apart from its decisions.
pub(crate) struct ClaimFacts {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub kind: BenefitKind,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub submitted_by: String,
    pub submitted_at: NaiveDateTime,
    /// The validated claim as stored.
    pub submission: String,
}

impl ClaimView {
    /// The view of a claim with its decisions in order; the last is in force.
    pub(crate) fn build(
        facts: ClaimFacts,
        decisions: Vec<DecisionView>,
        reversal: Option<ReversalView>,
    ) -> Result<ClaimView, StoreError> {
        let Some(current) = decisions.last().cloned() else {
            return Err(StoreError::integrity(format!(
                "claim {} has no decision",
                facts.id
            )));
        };
        Ok(ClaimView {
            id: facts.id,
            member_id: facts.member_id,
            product_id: facts.product_id,
            kind: facts.kind,
            service_date: facts.service_date,
            provider_id: facts.provider_id,
            submitted_by: facts.submitted_by,
            submitted_at: facts.submitted_at,
            status: ClaimViewStatus::of(current.decision.status, reversal.is_some()),
            submission: serde_json::from_str(&facts.submission)?,
            decision: current,
            decisions,
            reversal,
        })
    }
}

/// A line in a member's claim history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimSummary {
    pub id: i64,
    pub kind: BenefitKind,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub status: ClaimViewStatus,
    pub payable: Fen,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimPage {
    pub claims: Vec<ClaimSummary>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<i64>,
}
