//! The schemas of the course requests (an authorisation, an assessment, a
//! cancel) against the validation they describe: each pattern, range and
//! enum takes what validation takes, near the edges.

use chrono::NaiveDate;
use serde_json::{Value, json};
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::authorization::Response;
use super::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission, MAX_CYCLE_DAYS, MAX_CYCLES,
    MAX_QUANTITY_PER_CYCLE, MAX_REASON_CHARS, validate_assessment, validate_authorization,
    validate_cancel,
};
use super::request_schemas::{
    assessed_on, cancel_reason, cycle_days, cycles, prescriber, quantity_per_cycle, start_date,
};
use super::wire::testing::{agree, near, pattern_of};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()
}

fn submission() -> AuthorizationSubmission {
    serde_json::from_value(json!({
        "member_id": 1, "drug": "L01EB04", "diagnosis": "C34.1",
        "biomarkers": [{"marker": "EGFR", "positive": true}],
        "prescriber": "XM-H-001", "cycle_days": 30, "quantity_per_cycle": 30,
        "unit_price": "510.00", "cycles": 6, "start_date": "2026-09-01"
    }))
    .unwrap()
}

/// Whether validation finds nothing wrong with `field` of a request that
/// is otherwise valid.
fn field_ok(field: &str, submission: &AuthorizationSubmission) -> bool {
    match validate_authorization(submission, today()) {
        Ok(_) => true,
        Err(errors) => !errors.errors().iter().any(|e| e.field == field),
    }
}

/// `(minimum, maximum)` of an integer schema.
fn range_of(schema: &Schema) -> (f64, f64) {
    let value = serde_json::to_value(schema).unwrap();
    assert_eq!(value["type"], "integer", "{value}");
    (
        value["minimum"].as_f64().expect("a minimum"),
        value["maximum"].as_f64().expect("a maximum"),
    )
}

#[test]
fn the_count_ranges_are_the_ranges_validation_takes() {
    type Setter = fn(&mut AuthorizationSubmission, Value);
    let counts: [(&str, Schema, u32, Setter); 3] = [
        ("cycle_days", cycle_days(), MAX_CYCLE_DAYS, |s, v| {
            s.cycle_days = Some(v)
        }),
        (
            "quantity_per_cycle",
            quantity_per_cycle(),
            MAX_QUANTITY_PER_CYCLE,
            |s, v| s.quantity_per_cycle = Some(v),
        ),
        ("cycles", cycles(), MAX_CYCLES, |s, v| s.cycles = Some(v)),
    ];
    for (field, schema, most, set) in counts {
        let (low, high) = range_of(&schema);
        assert_eq!((low, high), (1.0, f64::from(most)), "{field}");
        let most = i64::from(most);
        for n in [-1, 0, 1, 2, most - 1, most, most + 1, 10 * most] {
            let mut request = submission();
            set(&mut request, json!(n));
            let in_schema = (low..=high).contains(&(n as f64));
            assert_eq!(in_schema, field_ok(field, &request), "{field} = {n}");
            // A whole number written with a fraction part is the same number.
            set(&mut request, json!(n as f64));
            assert_eq!(in_schema, field_ok(field, &request), "{field} = {n}.0");
        }
        let mut request = submission();
        set(&mut request, json!("3"));
        assert!(!field_ok(field, &request), "{field} as a string");
    }
}

#[test]
fn the_prescriber_pattern_takes_what_validation_takes() {
    let pattern = pattern_of(&prescriber());
    let inputs = near(
        &["XM-H-001", &"H".repeat(64), &"H".repeat(65)],
        &['H', ' '],
        3,
    );
    agree(&pattern, &inputs, |text| {
        let request = AuthorizationSubmission {
            prescriber: text.into(),
            ..submission()
        };
        field_ok("prescriber", &request)
    });
}

/// A date's pattern is its shape: validation takes no string the pattern
/// refuses, and every string it refuses that matches is no calendar day.
fn check_date_pattern(schema: &Schema, parses: impl Fn(&str) -> bool) {
    let pattern = pattern_of(schema);
    let inputs = near(
        &["2026-09-01", "2026-02-29", "2028-02-29", "2026-13-01"],
        &['1', '-'],
        3,
    );
    for input in &inputs {
        if parses(input) {
            assert!(pattern.is_match(input), "{input:?}");
        }
        if !pattern.is_match(input) {
            assert!(!parses(input), "{input:?}");
        }
    }
    assert!(pattern.is_match("2026-02-29") && !parses("2026-02-29"));
}

#[test]
fn the_date_patterns_are_the_shapes_validation_takes() {
    check_date_pattern(&start_date(), |text| {
        let request = AuthorizationSubmission {
            start_date: text.into(),
            ..submission()
        };
        // Only the shape and the calendar: a past day is another rule.
        match validate_authorization(&request, NaiveDate::MIN) {
            Ok(_) => true,
            Err(errors) => !errors.errors().iter().any(|e| e.field == "start_date"),
        }
    });
    check_date_pattern(&assessed_on(), |text| {
        let assessment = AssessmentSubmission {
            assessed_on: text.into(),
            response: "stable_disease".into(),
        };
        validate_assessment(&assessment, NaiveDate::MIN, NaiveDate::MAX).is_ok()
    });
}

#[test]
fn the_response_enum_is_the_responses_validation_takes() {
    let RefOr::T(schema) = Response::schema() else {
        panic!("an inline schema")
    };
    let value = serde_json::to_value(&schema).unwrap();
    let listed: Vec<&str> = value["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4);
    for text in listed.iter().copied().chain([
        "Stable_disease",
        "stable disease",
        " stable_disease",
        "",
        "not_evaluable",
    ]) {
        let assessment = AssessmentSubmission {
            assessed_on: "2026-09-01".into(),
            response: text.into(),
        };
        assert_eq!(
            listed.contains(&text),
            validate_assessment(&assessment, today(), today()).is_ok(),
            "{text:?}"
        );
    }
}

#[test]
fn the_cancel_reason_pattern_takes_what_validation_takes() {
    let pattern = pattern_of(&cancel_reason());
    let longest = "r".repeat(MAX_REASON_CHARS);
    let too_long = "r".repeat(MAX_REASON_CHARS + 1);
    let inputs = near(&["stopped", &longest, &too_long], &['r', ' ', '\n'], 3);
    agree(&pattern, &inputs, |text| {
        validate_cancel(&CancelSubmission {
            reason: text.into(),
        })
        .is_ok()
    });
}

#[test]
fn an_absent_or_null_expected_payment_is_zero() {
    let schema = serde_json::to_value(super::request_schemas::expected_basic_paid()).unwrap();
    assert_eq!(schema["oneOf"][1]["type"], "null", "{schema}");
    let null: AuthorizationSubmission = serde_json::from_value(json!({
        "member_id": 1, "drug": "L01EB04", "diagnosis": "C34.1", "biomarkers": null,
        "prescriber": "XM-H-001", "cycle_days": 30, "quantity_per_cycle": 30,
        "unit_price": "510.00", "expected_basic_paid_per_cycle": null, "cycles": 6,
        "start_date": "2026-09-01"
    }))
    .unwrap();
    assert!(validate_authorization(&null, today()).is_ok());
}
