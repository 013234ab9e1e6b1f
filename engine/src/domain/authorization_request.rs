//! The requests about a course as submitted (an authorisation, an
//! assessment, a cancel) and their validation into domain types. Raw on
//! purpose, as claims are: every problem is a field-level error.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::authorization::{Assessment, CourseRequest, Response};
use super::claim::{Biomarker, DateProblem, biomarkers_field, check_hospital_id, parse_iso_date};
use super::codes::{AtcCode, Icd10Code};
use super::money::{Fen, parse_amount};
use super::request_schemas;
use super::validation::ValidationErrors;

/// Bounds of a request. A cycle is at most a year's supply and a course at
/// most 366 cycles: far beyond any product's bounds, and small enough that
/// no course's dates approach the end of the calendar.
pub const MAX_CYCLE_DAYS: u32 = 366;
pub const MAX_CYCLES: u32 = 366;
pub const MAX_QUANTITY_PER_CYCLE: u32 = 100_000;
pub const MAX_REASON_CHARS: usize = 500;

/// `POST /v1/authorizations`, as submitted. Missing fields default to
/// empty values and are then reported field by field; unknown fields are
/// refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationSubmission {
    #[serde(default)]
    #[schema(required = true, minimum = 1)]
    pub member_id: i64,
    #[serde(default)]
    #[schema(required = true, schema_with = super::codes::atc_input_schema)]
    pub drug: String,
    #[serde(default)]
    #[schema(required = true, schema_with = super::codes::icd10_input_schema)]
    pub diagnosis: String,
    #[serde(default)]
    #[schema(schema_with = request_schemas::biomarkers)]
    pub biomarkers: Option<Value>,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::prescriber)]
    pub prescriber: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::cycle_days)]
    pub cycle_days: Option<Value>,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::quantity_per_cycle)]
    pub quantity_per_cycle: Option<Value>,
    /// List price per unit.
    #[serde(default)]
    #[schema(required = true, schema_with = super::money::amount_input_schema)]
    pub unit_price: Option<Value>,
    #[serde(default)]
    #[schema(schema_with = request_schemas::expected_basic_paid)]
    pub expected_basic_paid_per_cycle: Option<Value>,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::cycles)]
    pub cycles: Option<Value>,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::start_date)]
    pub start_date: String,
}

/// Validates a request completely. `today_china` is the day of the request
/// in China: a course may not start before it. Every error is reported.
pub fn validate_authorization(
    submission: &AuthorizationSubmission,
    today_china: NaiveDate,
) -> Result<CourseRequest, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let fields = RequestFields::parse(submission, &mut errors);
    fields.check_together(&mut errors);
    if let Some(start) = fields.start_date {
        check_start_on(start, today_china, &mut errors);
    }
    match fields.into_request(submission) {
        Some(request) if errors.is_empty() => Ok(request),
        _ => Err(errors),
    }
}

/// Validates a request's fields and the rules that join them, all but the
/// one that depends on the day it is made (see [`check_start_date`]): the
/// store checks that one only for a request not yet recorded under its
/// Idempotency-Key, so that a retry after the start has passed replays.
pub fn parse_authorization(
    submission: &AuthorizationSubmission,
) -> Result<CourseRequest, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let fields = RequestFields::parse(submission, &mut errors);
    fields.check_together(&mut errors);
    match fields.into_request(submission) {
        Some(request) if errors.is_empty() => Ok(request),
        _ => Err(errors),
    }
}

/// Each field of a request as parsed on its own (`None` where it failed).
struct RequestFields {
    drug: Option<AtcCode>,
    diagnosis: Option<Icd10Code>,
    biomarkers: Option<Vec<Biomarker>>,
    cycle_days: Option<u32>,
    quantity_per_cycle: Option<u32>,
    cycles: Option<u32>,
    unit_price: Option<Fen>,
    expected_basic_paid_per_cycle: Option<Fen>,
    start_date: Option<NaiveDate>,
}

impl RequestFields {
    fn parse(submission: &AuthorizationSubmission, errors: &mut ValidationErrors) -> Self {
        if submission.member_id <= 0 {
            errors.push(
                "member_id",
                "invalid_member_id",
                "member_id must be a positive member number",
            );
        }
        let drug = submission
            .drug
            .parse::<AtcCode>()
            .map_err(|error| errors.push("drug", error.code(), error.to_string()))
            .ok();
        let diagnosis = submission
            .diagnosis
            .parse::<Icd10Code>()
            .map_err(|error| errors.push("diagnosis", error.code(), error.to_string()))
            .ok();
        let biomarkers = biomarkers_field(submission.biomarkers.as_ref(), "biomarkers", errors);
        check_hospital_id("prescriber", &submission.prescriber, errors);
        let cycle_days = count_field(&submission.cycle_days, "cycle_days", MAX_CYCLE_DAYS, errors);
        let quantity_per_cycle = count_field(
            &submission.quantity_per_cycle,
            "quantity_per_cycle",
            MAX_QUANTITY_PER_CYCLE,
            errors,
        );
        let cycles = count_field(&submission.cycles, "cycles", MAX_CYCLES, errors);
        let unit_price = amount(&submission.unit_price, "unit_price", true, errors);
        let expected_basic_paid_per_cycle = amount(
            &submission.expected_basic_paid_per_cycle,
            "expected_basic_paid_per_cycle",
            false,
            errors,
        );
        let start_date = day_field(&submission.start_date, "start_date", errors);
        RequestFields {
            drug,
            diagnosis,
            biomarkers,
            cycle_days,
            quantity_per_cycle,
            cycles,
            unit_price,
            expected_basic_paid_per_cycle,
            start_date,
        }
    }

    /// The rule that joins fields: the expected basic payment is no more
    /// than the cycle's gross cost.
    fn check_together(&self, errors: &mut ValidationErrors) {
        if let (Some(price), Some(quantity), Some(expected)) = (
            self.unit_price,
            self.quantity_per_cycle,
            self.expected_basic_paid_per_cycle,
        ) {
            let gross = price.checked_mul(i64::from(quantity));
            if gross.is_none_or(|gross| expected > gross) {
                errors.push(
                    "expected_basic_paid_per_cycle",
                    "exceeds_total",
                    "expected_basic_paid_per_cycle exceeds quantity_per_cycle x unit_price",
                );
            }
        }
    }

    fn into_request(self, submission: &AuthorizationSubmission) -> Option<CourseRequest> {
        Some(CourseRequest {
            member_id: submission.member_id,
            drug: self.drug?,
            diagnosis: self.diagnosis?,
            biomarkers: self.biomarkers?,
            prescriber: submission.prescriber.clone(),
            cycle_days: self.cycle_days?,
            quantity_per_cycle: self.quantity_per_cycle?,
            unit_price: self.unit_price?,
            expected_basic_paid_per_cycle: self.expected_basic_paid_per_cycle?,
            cycles: self.cycles?,
            start_date: self.start_date?,
        })
    }
}

/// A course may not start before the day it is requested (China time).
pub fn check_start_date(
    request: &CourseRequest,
    today_china: NaiveDate,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    check_start_on(request.start_date, today_china, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_start_on(start: NaiveDate, today_china: NaiveDate, errors: &mut ValidationErrors) {
    if start < today_china {
        errors.push(
            "start_date",
            "start_in_the_past",
            format!("start_date is before today ({today_china})"),
        );
    }
}

/// A whole number from 1 to `most`.
fn count_field(
    value: &Option<Value>,
    field: &str,
    most: u32,
    errors: &mut ValidationErrors,
) -> Option<u32> {
    let Some(value) = value else {
        errors.push(field, "missing_field", format!("`{field}` is required"));
        return None;
    };
    let whole = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    });
    match whole.and_then(|n| u32::try_from(n).ok()) {
        Some(n) if (1..=most).contains(&n) => Some(n),
        _ => {
            errors.push(
                field,
                "out_of_range",
                format!("{field} must be a whole number from 1 to {most}"),
            );
            None
        }
    }
}

/// An amount in CNY; absent is 0 unless `required`.
fn amount(
    value: &Option<Value>,
    field: &str,
    required: bool,
    errors: &mut ValidationErrors,
) -> Option<super::money::Fen> {
    match value {
        None if required => {
            errors.push(field, "missing_field", format!("`{field}` is required"));
            None
        }
        None => Some(super::money::Fen::ZERO),
        Some(value) => match parse_amount(value) {
            Ok(fen) => Some(fen),
            Err(error) => {
                errors.push(field, error.code(), error.to_string());
                None
            }
        },
    }
}

fn day_field(text: &str, field: &str, errors: &mut ValidationErrors) -> Option<NaiveDate> {
    match parse_iso_date(text) {
        Ok(date) => Some(date),
        Err(DateProblem::Malformed) => {
            errors.push(
                field,
                "invalid_date",
                format!("{field} must be a calendar date in the form YYYY-MM-DD"),
            );
            None
        }
        Err(DateProblem::NoSuchDay) => {
            errors.push(
                field,
                "invalid_date",
                format!("{field} is not a day of the calendar"),
            );
            None
        }
    }
}

/// `POST /v1/authorizations/{id}/followups`, as submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentSubmission {
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::assessed_on)]
    pub assessed_on: String,
    /// RECIST 1.1 overall response.
    #[serde(default)]
    #[schema(required = true, value_type = Response)]
    pub response: String,
}

/// Validates an assessment of a course starting on `course_start`: dated
/// neither before the start nor after today in China.
pub fn validate_assessment(
    submission: &AssessmentSubmission,
    course_start: NaiveDate,
    today_china: NaiveDate,
) -> Result<Assessment, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let assessed_on = day_field(&submission.assessed_on, "assessed_on", &mut errors);
    if let Some(day) = assessed_on {
        if day < course_start {
            errors.push(
                "assessed_on",
                "before_course_start",
                format!("assessed_on is before the course starts ({course_start})"),
            );
        } else if day > today_china {
            errors.push(
                "assessed_on",
                "future_date",
                format!("assessed_on is after today ({today_china})"),
            );
        }
    }
    let response = Response::parse(&submission.response);
    if response.is_none() {
        errors.push(
            "response",
            "invalid_response",
            "response is one of complete_response, partial_response, stable_disease, \
             progressive_disease (RECIST 1.1)",
        );
    }
    match (assessed_on, response) {
        (Some(assessed_on), Some(response)) if errors.is_empty() => Ok(Assessment {
            assessed_on,
            response,
        }),
        _ => Err(errors),
    }
}

/// `POST /v1/authorizations/{id}/cancel`, as submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubmission {
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::cancel_reason)]
    pub reason: String,
}

/// A cancel gives a reason of 1 to [`MAX_REASON_CHARS`] characters once
/// trimmed; returns it trimmed.
pub fn validate_cancel(submission: &CancelSubmission) -> Result<String, ValidationErrors> {
    let reason = submission.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ValidationErrors::single(
            "reason",
            "invalid_reason",
            format!("reason is a text of 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(reason.to_owned())
}
