//! Claims: submission, decision, reversal and appeal, with the benefit ledger
//! and the duplicate index written in the same transaction as the decision.
//!
//! `rows` holds the tables' rows, `view` the claim as shown and its builder,
//! `reads` the queries, `reversal` and `appeal` their write paths, and
//! `batch` the write path of new claims (one claim is a batch of one).

mod appeal;
mod batch;
mod reads;
mod reversal;
pub(crate) mod rows;
mod view;

pub use appeal::appeal;
pub use batch::{BatchClaim, submit_batch};
pub use reads::{ClaimFilter, Ownership, list_for_member, list_page, ownership, view};
pub use reversal::{ReversalRequest, reverse};
pub use rows::{ClaimRow, DecisionRow, ReversalRow};
pub use view::{
    ClaimPage, ClaimSummary, ClaimView, ClaimViewStatus, DecisionView, ReversalView,
    ReversedAmounts,
};

use crate::db::DbConn;
use crate::domain::ValidationErrors;
use crate::domain::adjudication::AdjudicationError;
use crate::domain::claim::{ClaimSubmission, validate_claim};
use crate::error::StoreError;
use crate::store::{Recorded, WriteContext};

/// Validates, decides and stores one claim: a batch of one. Validation errors
/// store nothing and leave the idempotency key unused.
pub fn submit(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    submission: &ClaimSubmission,
) -> Result<Recorded<ClaimView>, StoreError> {
    let claim = validate_claim(submission, ctx.today_china()).map_err(StoreError::Validation)?;
    let batch = BatchClaim {
        ctx: ctx.clone(),
        idempotency_key,
        claim: &claim,
    };
    submit_batch(conn, std::slice::from_ref(&batch))
        .pop()
        .unwrap_or_else(|| Err(StoreError::integrity("a batch of one gave no result")))
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
        AdjudicationError::ItemKindMismatch { .. }
        | AdjudicationError::PriorDoesNotMatchClaim
        | AdjudicationError::CourseNotLoaded { .. } => StoreError::integrity(detail),
    }
}
