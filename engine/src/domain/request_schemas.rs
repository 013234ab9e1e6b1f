//! The JSON Schemas of the request fields that validation reads by hand
//! (a claim's items, names, phone numbers, ID numbers), built from the same
//! bounds the validation uses. The tests below run the validation on inputs
//! near each pattern's edges and check that the two agree.

use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema};
use utoipa::openapi::{RefOr, Type};
use utoipa::{PartialSchema, ToSchema};

use super::authorization_request::{
    MAX_CYCLE_DAYS, MAX_CYCLES, MAX_QUANTITY_PER_CYCLE, MAX_REASON_CHARS,
};
use super::claim::{
    Biomarker, DRUG_FIELDS, INPATIENT_FIELDS, MAX_BIOMARKERS, MAX_ITEMS, MAX_MARKER_CHARS,
    MAX_PROVIDER_ID_CHARS, MAX_QUANTITY, MIN_QUANTITY,
};
use super::codes::{atc_input_schema, icd10_input_schema};
use super::enrollment::{MAX_DECLARED_CONDITIONS, MAX_NAME_CHARS};
use super::money::amount_input_schema;
use super::wire::{self, CONTROL, WHITE_SPACE};

/// A drug item's quantity written as a string: digits only, in range.
pub const QUANTITY_INPUT_PATTERN: &str = r"^0*([1-9][0-9]{0,4}|100000)$";

/// A resident ID number's shape: 17 digits and a check character (the
/// check digit itself and the birth date are checked by the server).
pub const RESIDENT_ID_PATTERN: &str = r"[0-9]{17}[0-9Xx]";

/// A mainland mobile number, with spaces or hyphens anywhere and an
/// optional `+86` or `0086`.
pub const PHONE_PATTERN: &str =
    r"^[ -]*(\+[ -]*8[ -]*6|0[ -]*0[ -]*8[ -]*6)?[ -]*1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$";

pub fn service_date() -> Schema {
    wire::date("YYYY-MM-DD, not after today in China; for a hospital stay, the admission date")
}

/// A hospital's or pharmacy's id, as `check_hospital_id` takes it.
fn hospital_id(description: &str) -> Schema {
    wire::text(
        format!("^[^{WHITE_SPACE}{CONTROL}]{{1,{MAX_PROVIDER_ID_CHARS}}}$"),
        description,
    )
}

pub fn provider_id() -> Schema {
    hospital_id("The hospital or pharmacy, 1 to 64 characters without white space")
}

pub fn prescriber() -> Schema {
    hospital_id("The prescribing hospital, 1 to 64 characters without white space")
}

pub fn marker() -> Schema {
    wire::trimmed_text(MAX_MARKER_CHARS, false, "Biomarker name, e.g. `EGFR`")
}

fn quantity() -> Schema {
    wire::one_of(
        [
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(MIN_QUANTITY))
                .maximum(Some(MAX_QUANTITY))
                .into(),
            wire::text(QUANTITY_INPUT_PATTERN, "The same as a string of digits"),
        ],
        "Units dispensed, 1 to 100000",
    )
}

/// An object with exactly `fields` (the `required` ones required).
fn closed_object(
    description: &str,
    fields: &[&str],
    required: &[&str],
    schema_of: impl Fn(&str) -> RefOr<Schema>,
) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for field in fields {
        object = object.property(*field, schema_of(field));
    }
    for field in required {
        object = object.required(*field);
    }
    object.into()
}

fn inpatient_item() -> Schema {
    closed_object(
        "A hospital stay: eligible = total - basic_paid - out_of_catalogue",
        INPATIENT_FIELDS,
        INPATIENT_FIELDS,
        |_| amount_input_schema().into(),
    )
}

/// A list of biomarker results, or null for none (`biomarkers_field`).
pub fn biomarkers() -> Schema {
    wire::one_of(
        [
            wire::array_of(
                utoipa::openapi::Ref::from_schema_name(Biomarker::name()),
                None,
                Some(MAX_BIOMARKERS),
            )
            .into(),
            null(),
        ],
        &format!("Biomarker results, at most {MAX_BIOMARKERS} (null is none)"),
    )
}

fn null() -> Schema {
    ObjectBuilder::new().schema_type(Type::Null).into()
}

fn drug_item() -> Schema {
    let biomarkers = biomarkers();
    closed_object(
        "A dispensed specialty drug: eligible = quantity x unit_price - basic_paid",
        DRUG_FIELDS,
        &["drug", "quantity", "unit_price", "basic_paid"],
        |field| match field {
            "drug" => atc_input_schema().into(),
            "quantity" => quantity().into(),
            "biomarkers" => biomarkers.clone().into(),
            _ => amount_input_schema().into(),
        },
    )
}

pub fn claim_items() -> Schema {
    wire::array_of(
        wire::one_of(
            [inpatient_item(), drug_item()],
            "One item: a stay in an inpatient claim, a drug in a specialty drug claim",
        ),
        Some(1),
        Some(MAX_ITEMS),
    )
    .into()
}

pub fn resident_id() -> Schema {
    wire::text(
        wire::trimmed(RESIDENT_ID_PATTERN),
        "18-character PRC resident ID number: 17 digits and a check character (digit or X), \
         GB 11643",
    )
}

pub fn person_name() -> Schema {
    wire::trimmed_text(
        MAX_NAME_CHARS,
        true,
        "1 to 100 characters once trimmed, without control characters",
    )
}

pub fn phone() -> Schema {
    wire::text(
        PHONE_PATTERN,
        "Mainland mobile number: 11 digits starting 13-19, optionally +86; spaces and hyphens \
         are ignored",
    )
}

pub fn declared_conditions() -> Schema {
    wire::array_of(icd10_input_schema(), None, Some(MAX_DECLARED_CONDITIONS))
        .description(Some(
            "ICD-10 codes of declared pre-existing conditions, at most 50",
        ))
        .into()
}

/// A text of 1 to `max` characters once trimmed, such as a reversal's reason.
pub fn reason(max: usize) -> Schema {
    wire::trimmed_text(
        max,
        false,
        &format!("Why, in 1 to {max} characters once trimmed"),
    )
}

/// Why a course is cancelled.
pub fn cancel_reason() -> Schema {
    reason(MAX_REASON_CHARS)
}

/// A whole number from 1 to `most`, as `count_field` takes it.
fn count(most: u32, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(most))
        .description(Some(description))
        .into()
}

pub fn cycle_days() -> Schema {
    count(
        MAX_CYCLE_DAYS,
        &format!("Days one dispensing covers, 1 to {MAX_CYCLE_DAYS}"),
    )
}

pub fn quantity_per_cycle() -> Schema {
    count(
        MAX_QUANTITY_PER_CYCLE,
        &format!("Units dispensed per cycle, 1 to {MAX_QUANTITY_PER_CYCLE}"),
    )
}

pub fn cycles() -> Schema {
    count(
        MAX_CYCLES,
        &format!("Cycles of the course, 1 to {MAX_CYCLES}"),
    )
}

/// A course's expected basic-insurance payment per cycle: absent or null is 0.
pub fn expected_basic_paid() -> Schema {
    wire::one_of(
        [amount_input_schema(), null()],
        "Expected basic medical insurance payment per cycle, at most quantity_per_cycle x \
         unit_price (absent or null is 0)",
    )
}

pub fn start_date() -> Schema {
    wire::date("YYYY-MM-DD, not before today in China")
}

pub fn assessed_on() -> Schema {
    wire::date("YYYY-MM-DD, not before the course starts and not after today in China")
}

/// The name and schema of every type these schemas refer to.
pub fn referenced() -> Vec<(String, RefOr<Schema>)> {
    vec![(Biomarker::name().into_owned(), Biomarker::schema())]
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::json;

    use super::*;
    use crate::domain::claim::{ClaimSubmission, validate_claim};
    use crate::domain::enrollment::{EnrollmentRequest, validate_enrollment_details};
    use crate::domain::product::tests::sample;
    use crate::domain::wire::testing::{agree, near, pattern_of};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    /// The codes the validation of a drug claim gives for `item`'s fields.
    fn item_problems(item: serde_json::Value) -> Vec<String> {
        let submission = ClaimSubmission {
            member_id: 7,
            kind: "specialty_drug".into(),
            service_date: "2026-08-01".into(),
            provider_id: "PH-001".into(),
            diagnosis: "C34.1".into(),
            items: vec![item],
            authorization_id: None,
        };
        match validate_claim(&submission, today()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn the_quantity_pattern_takes_the_strings_validation_takes() {
        let pattern = regex::Regex::new(QUANTITY_INPUT_PATTERN).unwrap();
        let mut inputs: Vec<String> = (0..=100_010).step_by(7).map(|n| n.to_string()).collect();
        inputs.extend(
            [
                "", "1", "100000", "100001", "00100000", "0", "000", "+1", "1.0", " 1", "99999",
            ]
            .map(String::from),
        );
        agree(&pattern, &inputs, |text| {
            let item =
                json!({"drug": "L01EB04", "quantity": text, "unit_price": 0, "basic_paid": 0});
            !item_problems(item).contains(&"items[0].quantity".to_owned())
        });
    }

    #[test]
    fn the_provider_and_marker_patterns_take_what_validation_takes() {
        let provider = pattern_of(&provider_id());
        let inputs = near(
            &["PH-001", &"P".repeat(64), &"P".repeat(65)],
            &['P', ' '],
            3,
        );
        agree(&provider, &inputs, |text| {
            let mut submission = ClaimSubmission {
                member_id: 7,
                kind: "inpatient".into(),
                service_date: "2026-08-01".into(),
                provider_id: text.into(),
                diagnosis: "C34.1".into(),
                items: vec![json!({"total": 1, "basic_paid": 0, "out_of_catalogue": 0})],
                authorization_id: None,
            };
            submission.provider_id = text.into();
            validate_claim(&submission, today()).is_ok()
        });
        let marker_pattern = pattern_of(&marker());
        let inputs = near(
            &["EGFR", &"M".repeat(64), &"M".repeat(65)],
            &['M', ' ', '\n'],
            3,
        );
        agree(&marker_pattern, &inputs, |text| {
            let item = json!({"drug": "L01EB04", "quantity": 1, "unit_price": 0, "basic_paid": 0,
                              "biomarkers": [{"marker": text, "positive": true}]});
            item_problems(item).is_empty()
        });
    }

    /// Whether validation finds nothing wrong with `field` of an enrollment.
    fn enrollment_field_ok(field: &str, value: &str) -> bool {
        let mut request = EnrollmentRequest {
            product_id: sample().id,
            resident_id: "11010519491231002X".into(),
            name: "林晓".into(),
            phone: "13950001234".into(),
            insurance_type: "urban_employee".into(),
            declared_conditions: vec![],
        };
        match field {
            "resident_id" => request.resident_id = value.into(),
            "name" => request.name = value.into(),
            "phone" => request.phone = value.into(),
            _ => unreachable!(),
        }
        match validate_enrollment_details(&request, &sample(), today()) {
            Ok(_) => true,
            Err(errors) => !errors.0.iter().any(|e| e.field == field),
        }
    }

    #[test]
    fn the_enrollment_patterns_take_what_validation_takes() {
        let name = pattern_of(&person_name());
        let inputs = near(
            &["林晓", &"名".repeat(100), &"名".repeat(101)],
            &['a', ' ', '\t'],
            3,
        );
        agree(&name, &inputs, |text| enrollment_field_ok("name", text));
        let phone_pattern = pattern_of(&phone());
        let inputs = near(
            &[
                "13950001234",
                "+86 139-5000-1234",
                "008613950001234",
                "12950001234",
            ],
            &['1', '-', '+'],
            3,
        );
        agree(&phone_pattern, &inputs, |text| {
            enrollment_field_ok("phone", text)
        });
        // The pattern is the shape; a valid check digit and birth date are
        // more than a pattern says, so only a refusal must agree.
        let id = pattern_of(&resident_id());
        let inputs = near(
            &["11010519491231002X", "110105194912310021"],
            &['1', 'x'],
            2,
        );
        for input in &inputs {
            if enrollment_field_ok("resident_id", input) {
                assert!(id.is_match(input), "{input:?}");
            }
            if !id.is_match(input) {
                assert!(!enrollment_field_ok("resident_id", input), "{input:?}");
            }
        }
        assert!(id.is_match(" 11010519491231002x "));
    }

    #[test]
    fn the_reason_pattern_takes_what_a_reversal_takes() {
        let pattern = pattern_of(&reason(1000));
        assert!(pattern.is_match(" a "));
        assert!(pattern.is_match(&"r".repeat(1000)));
        assert!(!pattern.is_match(&"r".repeat(1001)));
        assert!(pattern.is_match(&format!("  {}\n", "r".repeat(1000))));
        assert!(!pattern.is_match(" \u{3000}\t"));
        assert!(pattern.is_match("a\nb"));
    }
}
