//! Authorised treatment courses of a specialty drug: the request and its
//! validation, the decision (rules 1-2 of an authorisation), the cycles and
//! the status of a course as of a date, the follow-up window, the case
//! reserve and the next assessment due. The dispensing checks a claim
//! against its course runs (rules 6-8) are in [`super::course_rules`].
//!
//! Dates are China dates. Cycle k of a course starting on S with cycles of
//! L days covers S + (k-1)L to S + kL - 1, both ends inclusive.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::adjudication::{MemberCover, Reason, claim_level_denial};
use super::claim::Biomarker;
use super::codes::{AtcCode, Icd10Code};
use super::money::{Fen, MoneyError, try_round_to_fen};
use super::product::Product;

/// What was granted: the request, its decision and the cycles authorised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    pub id: i64,
    pub member_id: i64,
    /// The product whose period contains the start date (empty when none).
    pub product_id: String,
    pub request: CourseRequest,
    pub decision: CourseDecision,
}

/// A validated authorisation request (see
/// [`validate_authorization`](super::authorization_request::validate_authorization)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseRequest {
    pub member_id: i64,
    pub drug: AtcCode,
    pub diagnosis: Icd10Code,
    pub biomarkers: Vec<Biomarker>,
    pub prescriber: String,
    pub cycle_days: u32,
    pub quantity_per_cycle: u32,
    pub unit_price: Fen,
    pub expected_basic_paid_per_cycle: Fen,
    pub cycles: u32,
    pub start_date: NaiveDate,
}

/// The decision on a request: `active` with `cycles_authorized` >= 1, or
/// `denied` with its reasons (and no cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDecision {
    pub status: CourseStatus,
    pub reasons: Vec<Reason>,
    pub cycles_requested: u32,
    pub cycles_authorized: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CourseStatus {
    Denied,
    Active,
    Completed,
    EndedProgression,
    Cancelled,
}

impl CourseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CourseStatus::Denied => "denied",
            CourseStatus::Active => "active",
            CourseStatus::Completed => "completed",
            CourseStatus::EndedProgression => "ended_progression",
            CourseStatus::Cancelled => "cancelled",
        }
    }
}

/// RECIST 1.1 overall response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    CompleteResponse,
    PartialResponse,
    StableDisease,
    ProgressiveDisease,
}

impl Response {
    pub fn parse(text: &str) -> Option<Response> {
        match text {
            "complete_response" => Some(Response::CompleteResponse),
            "partial_response" => Some(Response::PartialResponse),
            "stable_disease" => Some(Response::StableDisease),
            "progressive_disease" => Some(Response::ProgressiveDisease),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Response::CompleteResponse => "complete_response",
            Response::PartialResponse => "partial_response",
            Response::StableDisease => "stable_disease",
            Response::ProgressiveDisease => "progressive_disease",
        }
    }
}

/// One recorded efficacy assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub assessed_on: NaiveDate,
    pub response: Response,
}

/// A course with everything recorded against it: its assessments, its
/// cancel (dated the day it was made) and the cycles already dispensed on
/// non-reversed claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseState {
    pub course: Course,
    pub assessments: Vec<Assessment>,
    pub cancelled_on: Option<NaiveDate>,
    pub dispensed: BTreeSet<u32>,
}

fn plus_days(date: NaiveDate, days: i64) -> NaiveDate {
    let moved = if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    // Requests bound cycles and their length, so no course reaches the end
    // of the calendar; should one, it ends on the last representable day.
    moved.unwrap_or(if days >= 0 {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    })
}

/// First and last day of cycle `k` (from 1) of a course starting on `start`.
pub fn cycle_bounds(start: NaiveDate, cycle_days: u32, k: u32) -> (NaiveDate, NaiveDate) {
    let length = i64::from(cycle_days);
    let first = plus_days(start, (i64::from(k) - 1) * length);
    (first, plus_days(first, length - 1))
}

/// The number of the first `requested` cycles that end on or before
/// `period_end`.
pub fn cycles_within(request: &CourseRequest, period_end: NaiveDate) -> u32 {
    (1..=request.cycles)
        .take_while(|&k| cycle_bounds(request.start_date, request.cycle_days, k).1 <= period_end)
        .count() as u32
}

/// Another course of the member, as the overlap rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherCourse {
    pub drug: AtcCode,
    /// Neither denied, nor cancelled, nor ended by a progression.
    pub live: bool,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

impl OtherCourse {
    pub fn of(state: &CourseState) -> OtherCourse {
        let course = &state.course;
        let live = course.decision.status == CourseStatus::Active
            && state.cancelled_on.is_none()
            && !state
                .assessments
                .iter()
                .any(|a| a.response == Response::ProgressiveDisease);
        OtherCourse {
            drug: course.request.drug.clone(),
            live,
            first_day: course.request.start_date,
            last_day: state.last_day(),
        }
    }
}

/// Decides a request (rules 1-2 of an authorisation). `enrolled` is the
/// product whose period contains the start date with the member's cover in
/// it, if the member is enrolled in one; `others` are the member's other
/// courses.
pub fn decide_authorization(
    enrolled: Option<(&Product, &MemberCover)>,
    others: &[OtherCourse],
    request: &CourseRequest,
) -> CourseDecision {
    let denied = |reasons: Vec<Reason>| CourseDecision {
        status: CourseStatus::Denied,
        reasons,
        cycles_requested: request.cycles,
        cycles_authorized: 0,
    };
    let Some((product, cover)) = enrolled else {
        return denied(vec![Reason::NotCoveredPeriod]);
    };
    if let Some(reason) = claim_level_denial(product, cover, request.start_date) {
        return denied(vec![reason]);
    }
    let Some(listed) = product.formulary_drug(&request.drug) else {
        return denied(vec![Reason::NotOnFormulary]);
    };
    let mut reasons = Vec::new();
    if !listed.indicated_for(&request.diagnosis) {
        reasons.push(Reason::IndicationMismatch);
    }
    let biomarker_shown = |required: &String| {
        request
            .biomarkers
            .iter()
            .any(|biomarker| biomarker.is_positive_for(required))
    };
    if listed
        .required_biomarker
        .as_ref()
        .is_some_and(|required| !biomarker_shown(required))
    {
        reasons.push(Reason::BiomarkerRequired);
    }
    if !product.prescriber_qualified(&request.prescriber) {
        reasons.push(Reason::PrescriberNotQualified);
    }
    if listed
        .max_cycle_days
        .is_some_and(|most| request.cycle_days > most)
    {
        reasons.push(Reason::CycleTooLong);
    }
    if listed
        .max_course_cycles
        .is_some_and(|most| request.cycles > most)
    {
        reasons.push(Reason::CourseTooLong);
    }
    let last_requested = cycle_bounds(request.start_date, request.cycle_days, request.cycles).1;
    if others.iter().any(|other| {
        other.live
            && other.drug == request.drug
            && other.first_day <= last_requested
            && request.start_date <= other.last_day
    }) {
        reasons.push(Reason::OverlappingCourse);
    }
    if !reasons.is_empty() {
        return denied(reasons);
    }
    let cycles_authorized = cycles_within(request, product.period_end);
    if cycles_authorized == 0 {
        return denied(vec![Reason::BeyondPeriod]);
    }
    CourseDecision {
        status: CourseStatus::Active,
        reasons: Vec::new(),
        cycles_requested: request.cycles,
        cycles_authorized,
    }
}

impl CourseState {
    fn request(&self) -> &CourseRequest {
        &self.course.request
    }

    pub fn cycles_authorized(&self) -> u32 {
        self.course.decision.cycles_authorized
    }

    /// The last day of the last authorised cycle (the start date for a
    /// denied course, which has none).
    pub fn last_day(&self) -> NaiveDate {
        let request = self.request();
        match self.cycles_authorized() {
            0 => request.start_date,
            n => cycle_bounds(request.start_date, request.cycle_days, n).1,
        }
    }

    /// First and last day of cycle `k`.
    pub fn cycle_bounds(&self, k: u32) -> (NaiveDate, NaiveDate) {
        cycle_bounds(self.request().start_date, self.request().cycle_days, k)
    }

    /// The authorised cycle that `date` falls in, if any.
    pub fn cycle_of(&self, date: NaiveDate) -> Option<u32> {
        let request = self.request();
        let offset = (date - request.start_date).num_days();
        if offset < 0 {
            return None;
        }
        let k = u32::try_from(offset / i64::from(request.cycle_days) + 1).ok()?;
        (k <= self.cycles_authorized()).then_some(k)
    }

    /// The status as of `date`: each end takes effect the day after its
    /// event (the last cycle's last day, the assessment of progression, the
    /// cancel), so a dispensing on the day of the event is still covered.
    /// The first end to take effect sticks; on the same day, progression
    /// goes before a cancel, and both before completion (they say why).
    pub fn status_as_of(&self, date: NaiveDate) -> CourseStatus {
        self.status_with(date, false)
    }

    /// The status shown on `date` (a read, the coverage screen, whether a
    /// cancel is allowed): as [`status_as_of`](Self::status_as_of), except
    /// that a progression or cancel dated that very day already shows, since
    /// it has happened; a dispensing that day is still covered. Completion
    /// shows from the day after the last cycle, as always.
    pub fn status_on(&self, date: NaiveDate) -> CourseStatus {
        self.status_with(date, true)
    }

    fn status_with(&self, date: NaiveDate, same_day_events: bool) -> CourseStatus {
        if self.course.decision.status == CourseStatus::Denied {
            return CourseStatus::Denied;
        }
        let progression = self
            .assessments
            .iter()
            .filter(|a| a.response == Response::ProgressiveDisease)
            .map(|a| a.assessed_on)
            .min();
        let ends = [
            (progression, CourseStatus::EndedProgression),
            (self.cancelled_on, CourseStatus::Cancelled),
            (Some(self.last_day()), CourseStatus::Completed),
        ];
        let in_force = |day: NaiveDate, status: CourseStatus| {
            day < date || (same_day_events && day == date && status != CourseStatus::Completed)
        };
        ends.into_iter()
            .filter_map(|(day, status)| day.map(|day| (day, status)))
            .filter(|(day, status)| in_force(*day, *status))
            .min_by_key(|(day, _)| *day)
            .map_or(CourseStatus::Active, |(_, status)| status)
    }

    /// The cycle whose first day opens the follow-up window for cycle `k`,
    /// when the drug asks for an assessment every `every` cycles: none for
    /// the first `every` cycles; then m = every x floor((k - 1) / every).
    pub fn followup_anchor(every: u32, k: u32) -> Option<u32> {
        (every > 0 && k > every).then(|| every * ((k - 1) / every))
    }

    /// Whether a dispensing on `service_date` in cycle `k` has the
    /// assessment it needs: one dated from the first day of cycle m to the
    /// service date, both inclusive.
    pub fn followup_met(&self, every: u32, k: u32, service_date: NaiveDate) -> bool {
        match Self::followup_anchor(every, k) {
            None => true,
            Some(m) => {
                let opens = self.cycle_bounds(m).0;
                self.assessments
                    .iter()
                    .any(|a| opens <= a.assessed_on && a.assessed_on <= service_date)
            }
        }
    }

    /// The first day of the next cycle, from the one `today` falls in, not
    /// yet dispensed and needing an assessment that is not recorded yet.
    pub fn next_assessment_due(&self, every: u32, today: NaiveDate) -> Option<NaiveDate> {
        let from = if today < self.request().start_date {
            1
        } else {
            self.cycle_of(today)?
        };
        (from..=self.cycles_authorized())
            .filter(|k| !self.dispensed.contains(k))
            .find(|&k| match Self::followup_anchor(every, k) {
                None => false,
                Some(m) => {
                    let opens = self.cycle_bounds(m).0;
                    !self.assessments.iter().any(|a| opens <= a.assessed_on)
                }
            })
            .map(|k| self.cycle_bounds(k).0)
    }

    /// What one cycle is expected to cost the plan at coinsurance `rate`:
    /// round(rate x (quantity_per_cycle x unit_price - expected_basic_paid)),
    /// the deductible ignored.
    pub fn cycle_cost(&self, rate: Decimal) -> Result<Fen, MoneyError> {
        let request = self.request();
        let gross = request
            .unit_price
            .checked_mul(i64::from(request.quantity_per_cycle))
            .ok_or(MoneyError::Overflow)?;
        let eligible = gross.try_sub(request.expected_basic_paid_per_cycle)?;
        let share = rate
            .checked_mul(eligible.to_decimal())
            .ok_or(MoneyError::Overflow)?;
        try_round_to_fen(share)
    }

    /// The course's own case reserve as of `as_of`: nothing for a denied
    /// course or one cancelled or ended by progression before that day;
    /// otherwise one [`cycle_cost`](Self::cycle_cost) for each cycle not
    /// dispensed whose last day is on or after `as_of` - 30 (a bill may come
    /// up to 30 days late).
    pub fn reserve(&self, rate: Decimal, as_of: NaiveDate) -> Result<Fen, MoneyError> {
        if matches!(
            self.status_as_of(as_of),
            CourseStatus::Denied | CourseStatus::Cancelled | CourseStatus::EndedProgression
        ) {
            return Ok(Fen::ZERO);
        }
        let late_bills_from = plus_days(as_of, -30);
        let open = (1..=self.cycles_authorized())
            .filter(|k| !self.dispensed.contains(k))
            .filter(|&k| self.cycle_bounds(k).1 >= late_bills_from)
            .count();
        let cost = self.cycle_cost(rate)?;
        cost.checked_mul(open as i64).ok_or(MoneyError::Overflow)
    }
}

/// The case reserve of a member's courses of one benefit as of `as_of`:
/// the sum of each course's reserve (with the coinsurance rate its
/// diagnosis gets), capped at the drug limit left.
pub fn case_reserve<'a>(
    courses: impl IntoIterator<Item = (&'a CourseState, Decimal)>,
    limit_left: Fen,
    as_of: NaiveDate,
) -> Result<Fen, MoneyError> {
    let mut total = Fen::ZERO;
    for (course, rate) in courses {
        total = total.try_add(course.reserve(rate, as_of)?)?;
    }
    Ok(total.min(limit_left.max(Fen::ZERO)))
}

/// Whether two diagnoses match for a dispensing against a course: after
/// ignoring case and the dot, one is a prefix of the other (`C34.1`
/// matches `C34.100x001` and `C34`, not `C34.2`).
pub fn diagnoses_match(a: &Icd10Code, b: &Icd10Code) -> bool {
    let (a, b) = (a.as_normalised(), b.as_normalised());
    a.starts_with(b) || b.starts_with(a)
}
