//! A course as the app, the pharmacy and the reviewer see it, and a course
//! on the coverage screen.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::adjudication::Reason;
use crate::domain::authorization::{CourseState, CourseStatus, Response};
use crate::domain::claim::Biomarker;
use crate::domain::codes::{AtcCode, Icd10Code};
use crate::domain::money::Fen;
use crate::domain::product::Product;
use crate::error::StoreError;

use super::rows::{AuthorizationRow, CancelRow, FollowupRow};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleView {
    pub cycle: u32,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Paid on a claim that is not reversed.
    pub dispensed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowupView {
    pub id: i64,
    pub assessed_on: NaiveDate,
    pub response: Response,
    pub recorded_by: String,
    #[serde(with = "crate::store::utc")]
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelView {
    pub cancelled_on: NaiveDate,
    pub reason: String,
    pub cancelled_by: String,
}

/// One authorisation: the request, the decision, its cycles and what was
/// recorded against it. `status` is the one shown on `as_of` (the China
/// date of the read): a cancel or progression dated that day already shows,
/// though a dispensing that day is still covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationView {
    pub id: i64,
    pub member_id: i64,
    /// The product whose period contains the start date; null when none.
    pub product_id: Option<String>,
    pub status: CourseStatus,
    pub as_of: NaiveDate,
    pub reasons: Vec<Reason>,
    pub drug: AtcCode,
    pub diagnosis: Icd10Code,
    pub biomarkers: Vec<Biomarker>,
    pub prescriber: String,
    pub cycle_days: u32,
    pub quantity_per_cycle: u32,
    pub unit_price: Fen,
    pub expected_basic_paid_per_cycle: Fen,
    pub cycles_requested: u32,
    pub cycles_authorized: u32,
    pub start_date: NaiveDate,
    /// The last day of the last authorised cycle; null when denied.
    pub end_date: Option<NaiveDate>,
    pub cycles: Vec<CycleView>,
    pub followups: Vec<FollowupView>,
    pub cancel: Option<CancelView>,
    /// The first day of the next cycle that needs an assessment not yet
    /// recorded; null when none does (or the course is not active).
    pub next_assessment_due: Option<NaiveDate>,
    pub requested_by: String,
    #[serde(with = "crate::store::utc")]
    pub requested_at: NaiveDateTime,
}

/// Assessments are needed every this many cycles for the course's drug in
/// `product` (0 when the drug or product is gone, or needs none).
pub(crate) fn followup_every(product: Option<&Product>, state: &CourseState) -> u32 {
    product
        .and_then(|p| p.formulary_drug(&state.course.request.drug))
        .map_or(0, |drug| drug.followup_every_cycles)
}

/// The parts of a view that are not in the course's state.
pub(crate) struct Recorded<'a> {
    pub row: &'a AuthorizationRow,
    pub followups: Vec<&'a FollowupRow>,
    pub cancel: Option<&'a CancelRow>,
}

impl AuthorizationView {
    pub(crate) fn build(
        state: &CourseState,
        recorded: Recorded<'_>,
        product: Option<&Product>,
        as_of: NaiveDate,
    ) -> Result<AuthorizationView, StoreError> {
        let course = &state.course;
        let request = &course.request;
        let status = state.status_on(as_of);
        let cycles = (1..=state.cycles_authorized())
            .map(|cycle| {
                let (first_day, last_day) = state.cycle_bounds(cycle);
                CycleView {
                    cycle,
                    first_day,
                    last_day,
                    dispensed: state.dispensed.contains(&cycle),
                }
            })
            .collect();
        let followups = recorded
            .followups
            .iter()
            .map(|row| {
                Ok(FollowupView {
                    id: row.id,
                    assessed_on: row.assessed_on,
                    response: row.assessment()?.response,
                    recorded_by: row.recorded_by.clone(),
                    recorded_at: row.created_at,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let next_assessment_due = (status == CourseStatus::Active)
            .then(|| state.next_assessment_due(followup_every(product, state), as_of))
            .flatten();
        Ok(AuthorizationView {
            id: course.id,
            member_id: course.member_id,
            product_id: Some(course.product_id.clone()).filter(|id| !id.is_empty()),
            status,
            as_of,
            reasons: course.decision.reasons.clone(),
            drug: request.drug.clone(),
            diagnosis: request.diagnosis.clone(),
            biomarkers: request.biomarkers.clone(),
            prescriber: request.prescriber.clone(),
            cycle_days: request.cycle_days,
            quantity_per_cycle: request.quantity_per_cycle,
            unit_price: request.unit_price,
            expected_basic_paid_per_cycle: request.expected_basic_paid_per_cycle,
            cycles_requested: course.decision.cycles_requested,
            cycles_authorized: course.decision.cycles_authorized,
            start_date: request.start_date,
            end_date: (course.decision.status == CourseStatus::Active).then(|| state.last_day()),
            cycles,
            followups,
            cancel: recorded.cancel.map(|row| CancelView {
                cancelled_on: row.cancelled_on,
                reason: row.reason.clone(),
                cancelled_by: row.cancelled_by.clone(),
            }),
            next_assessment_due,
            requested_by: recorded.row.requested_by.clone(),
            requested_at: recorded.row.created_at,
        })
    }
}

/// An active course on the coverage screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseCover {
    pub authorization_id: i64,
    pub drug: AtcCode,
    pub diagnosis: Icd10Code,
    pub cycles_authorized: u32,
    pub cycles_dispensed: u32,
    /// Authorised and not dispensed.
    pub cycles_left: u32,
    pub next_assessment_due: Option<NaiveDate>,
    /// This course's own case reserve as of the day of the screen (before
    /// the product-level cap at the drug limit left).
    pub case_reserve: Fen,
}

impl CourseCover {
    pub(crate) fn of(
        state: &CourseState,
        product: &Product,
        rate: Decimal,
        today: NaiveDate,
    ) -> Result<CourseCover, StoreError> {
        let authorized = state.cycles_authorized();
        let dispensed = state
            .dispensed
            .iter()
            .filter(|cycle| **cycle <= authorized)
            .count() as u32;
        Ok(CourseCover {
            authorization_id: state.course.id,
            drug: state.course.request.drug.clone(),
            diagnosis: state.course.request.diagnosis.clone(),
            cycles_authorized: authorized,
            cycles_dispensed: dispensed,
            cycles_left: authorized - dispensed,
            next_assessment_due: state
                .next_assessment_due(followup_every(Some(product), state), today),
            case_reserve: state
                .reserve(rate, today)
                .map_err(|e| StoreError::integrity(format!("case reserve: {e}")))?,
        })
    }
}
