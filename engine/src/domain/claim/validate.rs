//! A claim submission checked whole: its member, kind, dates, provider,
//! course and items, every problem with its field.

use crate::domain::codes::Icd10Code;
use crate::domain::validation::ValidationErrors;
use chrono::NaiveDate;
use serde_json::Value;

use super::items::validate_item;
use super::{
    BenefitKind, ClaimItem, ClaimSubmission, MAX_ITEMS, MAX_PROVIDER_ID_CHARS, ValidClaim,
};

/// Validates a submission completely and returns every problem found.
/// `today_china` is the current date in China (service dates after it are in
/// the future).
pub fn validate_claim(
    submission: &ClaimSubmission,
    today_china: NaiveDate,
) -> Result<ValidClaim, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    if submission.member_id <= 0 {
        errors.push(
            "member_id",
            "invalid_member_id",
            "member_id must be a positive member number",
        );
    }

    let kind = BenefitKind::parse(&submission.kind);
    if kind.is_none() {
        errors.push(
            "kind",
            "invalid_kind",
            "kind must be `inpatient` or `specialty_drug`",
        );
    }

    let service_date = valid_service_date(&submission.service_date, today_china, &mut errors);

    let provider_id = submission.provider_id.as_str();
    check_provider_id(provider_id, &mut errors);

    let diagnosis = match submission.diagnosis.parse::<Icd10Code>() {
        Ok(code) => Some(code),
        Err(error) => {
            errors.push("diagnosis", error.code(), error.to_string());
            None
        }
    };

    let items = valid_items(&submission.items, kind, &mut errors);
    check_authorization_id(submission, kind, &mut errors);

    match (kind, service_date, diagnosis) {
        (Some(kind), Some(service_date), Some(diagnosis)) if errors.is_empty() => Ok(ValidClaim {
            member_id: submission.member_id,
            kind,
            service_date,
            provider_id: provider_id.to_owned(),
            diagnosis,
            items,
            authorization_id: submission.authorization_id,
        }),
        _ => Err(errors),
    }
}

/// A course is named only on a drug claim of one item (one dispensing).
fn check_authorization_id(
    submission: &ClaimSubmission,
    kind: Option<BenefitKind>,
    errors: &mut ValidationErrors,
) {
    let Some(id) = submission.authorization_id else {
        return;
    };
    let problem = if id <= 0 {
        Some((
            "invalid_authorization_id",
            "authorization_id must be a positive number",
        ))
    } else if kind == Some(BenefitKind::Inpatient) {
        Some((
            "authorization_not_allowed",
            "authorization_id is for specialty_drug claims, not inpatient ones",
        ))
    } else if submission.items.len() > 1 {
        Some((
            "authorization_not_allowed",
            "a claim against an authorisation is one dispensing: exactly one item",
        ))
    } else {
        None
    };
    if let Some((code, detail)) = problem {
        errors.push("authorization_id", code, detail);
    }
}

/// The service date, if it is a real day not after today in China.
fn valid_service_date(
    text: &str,
    today_china: NaiveDate,
    errors: &mut ValidationErrors,
) -> Option<NaiveDate> {
    match parse_iso_date(text) {
        Err(DateProblem::Malformed) => {
            errors.push(
                "service_date",
                "invalid_date",
                "service_date must be a calendar date in the form YYYY-MM-DD",
            );
            None
        }
        Err(DateProblem::NoSuchDay) => {
            errors.push(
                "service_date",
                "invalid_date",
                "service_date is not a day of the calendar",
            );
            None
        }
        Ok(date) if date > today_china => {
            errors.push(
                "service_date",
                "future_date",
                format!("service_date is after today ({today_china})"),
            );
            None
        }
        Ok(date) => Some(date),
    }
}

fn check_provider_id(provider_id: &str, errors: &mut ValidationErrors) {
    check_hospital_id("provider_id", provider_id, errors);
}

/// A provider or hospital id: 1 to 64 characters without whitespace.
pub(crate) fn check_hospital_id(field: &str, provider_id: &str, errors: &mut ValidationErrors) {
    if provider_id.is_empty()
        || provider_id.chars().count() > MAX_PROVIDER_ID_CHARS
        || provider_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push(
            field,
            if field == "provider_id" {
                "invalid_provider_id"
            } else {
                "invalid_hospital_id"
            },
            format!("{field} must be 1 to {MAX_PROVIDER_ID_CHARS} characters without whitespace"),
        );
    }
}

/// The items that validate, each read as `kind` (or, when the kind is
/// unknown, by its own shape); every item's problems go into `errors`.
fn valid_items(
    raw_items: &[Value],
    kind: Option<BenefitKind>,
    errors: &mut ValidationErrors,
) -> Vec<ClaimItem> {
    let mut items = Vec::with_capacity(raw_items.len());
    if raw_items.is_empty() {
        errors.push("items", "empty_items", "a claim has at least one item");
    } else if raw_items.len() > MAX_ITEMS {
        errors.push(
            "items",
            "too_many_items",
            format!("a claim has at most {MAX_ITEMS} items"),
        );
    } else {
        for (index, raw) in raw_items.iter().enumerate() {
            // With an unknown kind, read each item by its shape so that its
            // own mistakes are still reported.
            let item_kind = kind.unwrap_or(if raw.get("drug").is_some() {
                BenefitKind::SpecialtyDrug
            } else {
                BenefitKind::Inpatient
            });
            if let Some(item) = validate_item(raw, item_kind, index, errors) {
                items.push(item);
            }
        }
    }
    items
}

pub(crate) enum DateProblem {
    Malformed,
    NoSuchDay,
}

/// A calendar date written strictly as `YYYY-MM-DD`, as the API documents
/// dates (chrono alone also accepts `2023-2-3`).
pub fn iso_date(text: &str) -> Option<NaiveDate> {
    parse_iso_date(text).ok()
}

/// Strict `YYYY-MM-DD` (chrono alone also accepts `2023-2-3`).
pub(crate) fn parse_iso_date(text: &str) -> Result<NaiveDate, DateProblem> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(position, b)| position == 4 || position == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(DateProblem::Malformed);
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) = (field(0..4), field(5..7), field(8..10)) else {
        return Err(DateProblem::Malformed);
    };
    let year = i32::try_from(year).map_err(|_| DateProblem::Malformed)?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or(DateProblem::NoSuchDay)
}
