//! The course rules of a dispensing (6-8), judged as of its service date
//! against the state of the course it names. Pure: the adjudicator calls
//! [`check`] for each drug item and lists the reasons after rule 3's.
//!
//! 6. A drug with `requires_authorization` and no `authorization_id`:
//!    `authorization_required` (even if a course exists: the pharmacy names
//!    it).
//! 7. With an `authorization_id`: `authorization_mismatch` when the course
//!    is denied, another member's or another drug's, or its diagnosis does
//!    not match the claim's; it then says nothing else, since the course is
//!    not this claim's. Otherwise every failing one of `course_ended` (a
//!    cancel or a progression dated strictly before the service date),
//!    `outside_course`, `cycle_already_dispensed`,
//!    `quantity_exceeds_authorization`, `price_exceeds_authorization`.
//! 8. `followup_required`: in cycle k > f (f = `followup_every_cycles` >
//!    0), an assessment dated from the first day of cycle
//!    m = f x floor((k - 1) / f) to the service date is needed.
//!
//! A matching course meets rule 3's biomarker requirement with its own
//! evidence.

use super::adjudication::Reason;
use super::authorization::{CourseState, CourseStatus, diagnoses_match};
use super::claim::{ClaimItem, ValidClaim};
use super::product::FormularyDrug;

/// What the course rules say about one drug item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourseCheck {
    pub reasons: Vec<Reason>,
    /// The cycle of the matching course the service date falls in.
    pub cycle: Option<u32>,
    /// The matching course shows the drug's required biomarker.
    pub meets_biomarker: bool,
}

/// Rules 6-8 for `item` of `claim`, a drug listed as `listed`. `course` is
/// the state of the course the claim names (the adjudicator makes sure it is
/// given whenever the claim names one).
pub fn check(
    listed: &FormularyDrug,
    claim: &ValidClaim,
    item: &ClaimItem,
    course: Option<&CourseState>,
) -> CourseCheck {
    let ClaimItem::Drug {
        drug,
        quantity,
        unit_price,
        ..
    } = item
    else {
        return CourseCheck::default();
    };
    let state = match (claim.authorization_id, course) {
        (Some(_), Some(state)) => state,
        _ if listed.requires_authorization => {
            return CourseCheck {
                reasons: vec![Reason::AuthorizationRequired],
                ..CourseCheck::default()
            };
        }
        _ => return CourseCheck::default(),
    };
    let granted = &state.course;
    let matches = granted.decision.status != CourseStatus::Denied
        && granted.member_id == claim.member_id
        && &granted.request.drug == drug
        && diagnoses_match(&granted.request.diagnosis, &claim.diagnosis);
    if !matches {
        return CourseCheck {
            reasons: vec![Reason::AuthorizationMismatch],
            ..CourseCheck::default()
        };
    }
    let service_date = claim.service_date;
    let mut reasons = Vec::new();
    if matches!(
        state.status_as_of(service_date),
        CourseStatus::Cancelled | CourseStatus::EndedProgression
    ) {
        reasons.push(Reason::CourseEnded);
    }
    let cycle = state.cycle_of(service_date);
    match cycle {
        None => reasons.push(Reason::OutsideCourse),
        Some(k) if state.dispensed.contains(&k) => reasons.push(Reason::CycleAlreadyDispensed),
        Some(_) => {}
    }
    if *quantity > granted.request.quantity_per_cycle {
        reasons.push(Reason::QuantityExceedsAuthorization);
    }
    if *unit_price > granted.request.unit_price {
        reasons.push(Reason::PriceExceedsAuthorization);
    }
    if cycle.is_some_and(|k| !state.followup_met(listed.followup_every_cycles, k, service_date)) {
        reasons.push(Reason::FollowupRequired);
    }
    let meets_biomarker = listed.required_biomarker.as_ref().is_none_or(|required| {
        granted
            .request
            .biomarkers
            .iter()
            .any(|biomarker| biomarker.is_positive_for(required))
    });
    CourseCheck {
        reasons,
        cycle,
        meets_biomarker,
    }
}
