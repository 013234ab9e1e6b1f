//! The decide step of a batch: one claim against the snapshot as the claims
//! before it left it, pure apart from reading the snapshot.

use chrono::NaiveDate;

use crate::audit::{self, AuditEvent};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::{Balances, ClaimDecision, ItemFingerprint, adjudicate_in_course};
use crate::domain::authorization::CourseState;
use crate::domain::canonical::{canonical_json, sha256_hex};
use crate::error::StoreError;
use crate::store::claims::adjudication_error;
use crate::store::claims::rows::{
    DecisionOf, NewClaim, NewDecision, NewPaidItem, decision_effects,
};
use crate::store::claims::view::{ClaimFacts, ClaimView, DecisionView};
use crate::store::enrollment::EnrollmentRow;
use crate::store::idempotency::{self, KeyUse, NewKey};
use crate::store::ledger::{NewLedgerEntry, balances_within_terms};
use crate::store::products::StoredProduct;
use crate::store::{Recorded, WriteContext};

use super::{BatchClaim, ReservedIds, Snapshot};

/// The idempotency operation of a claim submission.
const OPERATION: &str = "claim";

pub(super) enum Outcome {
    /// The key was used before with the same request: its response again.
    Replay(Box<Recorded<ClaimView>>),
    New(Box<Decided>),
}

/// Everything a newly decided claim writes, computed before any of it is
/// added to the batch.
pub(super) struct Decided {
    pub view: ClaimView,
    pub balance_key: (i64, String),
    pub balances_after: Balances,
    pub newly_paid: Vec<ItemFingerprint>,
    /// (authorisation, cycle) of the dispensings it pays in a course.
    pub dispensed: Vec<(i64, u32)>,
    pub claim: NewClaim,
    pub decision: NewDecision,
    pub paid_items: Vec<NewPaidItem>,
    pub ledger: Vec<NewLedgerEntry>,
    pub audit: AuditEvent,
    pub idempotency: NewKey,
}

/// Decides one claim of a batch: its stored response if its key was used
/// for the same claim, or a new decision and every row it writes.
pub(super) fn decide_claim(
    snapshot: &Snapshot,
    ids: &ReservedIds,
    item: &BatchClaim<'_>,
) -> Result<Outcome, StoreError> {
    let claim = item.claim;
    let canonical = canonical_json(&claim.canonical_json());
    let request_hash = idempotency::request_hash(OPERATION, &canonical);
    let key = (item.ctx.actor.to_owned(), item.idempotency_key.to_owned());
    if let KeyUse::Replay(body) = idempotency::check(snapshot.keys.get(&key), &request_hash)? {
        return Ok(Outcome::Replay(Box::new(idempotency::replay(body)?)));
    }

    let (enrollment, product) =
        snapshot.deciding_enrollment(claim.member_id, claim.service_date)?;
    let balances = snapshot
        .balances
        .get(&(claim.member_id, product.product.id.clone()))
        .copied()
        .unwrap_or_default();
    let course = snapshot.named_course(claim.authorization_id)?;
    let no_items = Default::default();
    let elsewhere = snapshot.paid.get(&claim.member_id).unwrap_or(&no_items);
    let decision = adjudicate_in_course(
        &product.product,
        &enrollment.cover()?,
        &balances,
        elsewhere,
        claim,
        course,
    )
    .map_err(adjudication_error)?;
    // The ledger's conservation rule, on the balances this claim leaves.
    let mut balances_after = balances;
    balances_after
        .apply(&decision.ledger)
        .map_err(|e| StoreError::integrity(format!("balance overflows: {e}")))?;
    balances_within_terms(claim.member_id, &balances_after, product)?;

    let (claim_id, decision_id) = ids.peek()?;
    let decided = DecidedClaim {
        item,
        snapshot,
        enrollment,
        product,
        claim_id,
        decision_id,
        canonical,
        request_hash,
        balances_after,
    };
    Ok(Outcome::New(Box::new(decided.rows(decision)?)))
}

/// A claim the adjudicator decided, with the ids reserved for it.
struct DecidedClaim<'a> {
    item: &'a BatchClaim<'a>,
    snapshot: &'a Snapshot,
    enrollment: &'a EnrollmentRow,
    product: &'a StoredProduct,
    claim_id: i64,
    decision_id: i64,
    /// The claim in canonical form, as hashed for its key and its audit event.
    canonical: String,
    request_hash: String,
    balances_after: Balances,
}

impl DecidedClaim<'_> {
    /// Every row the decision writes, and the response it gives.
    fn rows(self, decision: ClaimDecision) -> Result<Decided, StoreError> {
        let ctx: &WriteContext<'_> = &self.item.ctx;
        let claim = self.item.claim;
        let now = audit::truncate_to_micros(ctx.now.naive_utc());
        // The validated claim is stored as it was decided, so that an appeal
        // decides the same items; its canonical hash goes into the audit event.
        let submission = serde_json::to_string(claim)?;
        let of = DecisionOf {
            member_id: claim.member_id,
            product_id: &self.product.product.id,
            claim_id: self.claim_id,
            decision_id: self.decision_id,
            now,
        };
        let effects = decision_effects(&of, &decision)?;
        let audit = self.audit_event(&decision);
        let new_decision = NewDecision {
            id: self.decision_id,
            claim_id: self.claim_id,
            sequence: 1,
            parent_decision_id: None,
            product_version_id: self.product.version_id,
            status: decision.status.as_str().to_owned(),
            payable_fen: decision.totals.payable.0,
            body: serde_json::to_string(&decision)?,
            decided_by: ctx.actor.to_owned(),
            created_at: now,
        };
        let new_claim = NewClaim {
            id: self.claim_id,
            member_id: claim.member_id,
            enrollment_id: self.enrollment.id,
            product_version_id: self.product.version_id,
            kind: claim.kind.as_str().to_owned(),
            service_date: claim.service_date,
            provider_id: claim.provider_id.clone(),
            submission,
            submitted_by: ctx.actor.to_owned(),
            created_at: now,
        };
        let view = self.view(&new_claim, decision)?;
        let idempotency = NewKey::new(
            ctx,
            self.item.idempotency_key,
            OPERATION,
            self.request_hash.clone(),
            idempotency::response_text(&view)?,
        );
        Ok(Decided {
            view,
            balance_key: (claim.member_id, self.product.product.id.clone()),
            balances_after: self.balances_after,
            newly_paid: effects.newly_paid,
            dispensed: effects.dispensed,
            claim: new_claim,
            decision: new_decision,
            paid_items: effects.paid_items,
            ledger: effects.ledger,
            audit,
            idempotency,
        })
    }

    fn audit_event(&self, decision: &ClaimDecision) -> AuditEvent {
        let ctx = &self.item.ctx;
        audit::next_event(
            &ctx.keys.audit,
            self.snapshot.audit_head.as_ref(),
            ctx.now,
            ctx.actor,
            "claim.decided",
            &format!("claim:{}", self.claim_id),
            &serde_json::json!({
                "claim_id": self.claim_id,
                "member_id": self.item.claim.member_id,
                "decision_id": self.decision_id,
                "sequence": 1,
                "product_id": self.product.product.id,
                "product_version_id": self.product.version_id,
                "submission_sha256": sha256_hex(self.canonical.as_bytes()),
                "status": decision.status,
                "payable": decision.totals.payable,
                "ledger": decision.ledger,
            }),
        )
    }

    /// The view of the claim as it will be stored: what a read of it returns.
    fn view(&self, claim: &NewClaim, decision: ClaimDecision) -> Result<ClaimView, StoreError> {
        let first = DecisionView {
            id: self.decision_id,
            sequence: 1,
            parent_decision_id: None,
            product_version_id: self.product.version_id,
            decided_by: claim.submitted_by.clone(),
            decided_at: claim.created_at,
            decision,
        };
        let facts = ClaimFacts {
            id: claim.id,
            member_id: claim.member_id,
            product_id: self.product.product.id.clone(),
            kind: self.item.claim.kind,
            service_date: claim.service_date,
            provider_id: claim.provider_id.clone(),
            submitted_by: claim.submitted_by.clone(),
            submitted_at: claim.created_at,
            submission: claim.submission.clone(),
        };
        ClaimView::build(facts, vec![first], None)
    }
}

impl Snapshot {
    /// The course a claim names, as the claims before it left it; naming
    /// one that does not exist is a field error (nothing is stored).
    fn named_course(
        &self,
        authorization_id: Option<i64>,
    ) -> Result<Option<&CourseState>, StoreError> {
        let Some(id) = authorization_id else {
            return Ok(None);
        };
        match self.courses.get(&id) {
            Some(course) => Ok(Some(course)),
            None => Err(StoreError::Validation(ValidationErrors::single(
                "authorization_id",
                "unknown_authorization",
                format!("no authorisation with id {id}"),
            ))),
        }
    }

    /// The enrollment whose product period contains the service date; if
    /// none does, the member's latest enrollment starting on or before it
    /// (or their first), so that the claim is decided and denied
    /// `not_covered_period` with an explanation rather than refused without
    /// one.
    fn deciding_enrollment(
        &self,
        member_id: i64,
        service_date: NaiveDate,
    ) -> Result<(&EnrollmentRow, &StoredProduct), StoreError> {
        let rows = self
            .enrollments
            .get(&member_id)
            .map_or(&[][..], Vec::as_slice);
        if rows.is_empty() && !self.members.contains(&member_id) {
            return Err(StoreError::Validation(ValidationErrors::single(
                "member_id",
                "unknown_member",
                format!("no member {member_id}"),
            )));
        }
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            let product = self.products.get(&row.product_id).ok_or_else(|| {
                StoreError::integrity(format!("product {} was not loaded", row.product_id))
            })?;
            candidates.push((row, product));
        }
        let covering = candidates.iter().position(|(_, p)| {
            p.product.period_start <= service_date && service_date <= p.product.period_end
        });
        let fallback = || {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| p.product.period_start <= service_date)
                .max_by_key(|(_, (_, p))| p.product.period_start)
                .map(|(i, _)| i)
                .or(if candidates.is_empty() { None } else { Some(0) })
        };
        match covering.or_else(fallback) {
            Some(i) => Ok(candidates[i]),
            None => Err(StoreError::Validation(ValidationErrors::single(
                "member_id",
                "not_enrolled",
                "the member is not enrolled in any product".to_owned(),
            ))),
        }
    }
}
