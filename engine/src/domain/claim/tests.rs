use super::*;
use serde_json::json;

use super::items::parse_biomarker_list;
use crate::domain::validation::ValidationErrors;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn drug_submission(items: Vec<Value>) -> ClaimSubmission {
    ClaimSubmission {
        member_id: 7,
        kind: "specialty_drug".into(),
        service_date: "2026-08-01".into(),
        provider_id: "XM-PH-001".into(),
        diagnosis: "C34.1".into(),
        items,
        authorization_id: None,
    }
}

fn inpatient_submission(items: Vec<Value>) -> ClaimSubmission {
    ClaimSubmission {
        member_id: 7,
        kind: "inpatient".into(),
        service_date: "2026-08-01".into(),
        provider_id: "XM-HOSP-001".into(),
        diagnosis: "I21.0".into(),
        items,
        authorization_id: None,
    }
}

fn osimertinib() -> Value {
    json!({"drug": "L01EB04", "quantity": 30, "unit_price": "510.00", "basic_paid": 0,
           "biomarkers": [{"marker": "EGFR", "positive": true}]})
}

fn stay() -> Value {
    json!({"total": "80000.00", "basic_paid": 35000, "out_of_catalogue": "5000.50"})
}

/// The (field, code) pairs of a refused submission.
fn refusal(submission: &ClaimSubmission) -> Vec<(String, &'static str)> {
    validate_claim(submission, today())
        .unwrap_err()
        .0
        .into_iter()
        .map(|error| (error.field, error.code))
        .collect()
}

fn pairs(expected: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), *c))
        .collect()
}

#[test]
fn a_valid_drug_claim_is_parsed() {
    let claim = validate_claim(&drug_submission(vec![osimertinib()]), today()).unwrap();
    assert_eq!(claim.kind, BenefitKind::SpecialtyDrug);
    assert_eq!(claim.diagnosis.as_normalised(), "C341");
    let item = &claim.items[0];
    assert_eq!(item.submitted(), Ok(Fen(1_530_000)));
    assert_eq!(item.eligible(), Ok(Fen(1_530_000)));
    match item {
        ClaimItem::Drug {
            drug, biomarkers, ..
        } => {
            assert_eq!(drug.as_str(), "L01EB04");
            assert!(biomarkers[0].is_positive_for("egfr"));
        }
        ClaimItem::Inpatient { .. } => panic!("expected a drug item"),
    }
}

#[test]
fn a_valid_inpatient_claim_computes_eligible() {
    let claim = validate_claim(&inpatient_submission(vec![stay()]), today()).unwrap();
    assert_eq!(claim.items[0].submitted(), Ok(Fen(8_000_000)));
    assert_eq!(claim.items[0].eligible(), Ok(Fen(3_999_950)));
    assert_eq!(claim.items[0].basic_paid(), Fen(3_500_000));
}

#[test]
fn today_is_not_in_the_future() {
    let mut submission = inpatient_submission(vec![stay()]);
    submission.service_date = "2026-11-28".into();
    assert!(validate_claim(&submission, today()).is_ok());
    submission.service_date = "2026-11-29".into();
    assert_eq!(
        refusal(&submission),
        pairs(&[("service_date", "future_date")])
    );
}

#[test]
fn impossible_and_malformed_dates_are_refused() {
    for bad in [
        "2023-02-30",
        "2026-13-01",
        "2026-00-10",
        "2026-2-3",
        "01.08.2026",
        "",
        "2026-08-01T00:00",
    ] {
        let mut submission = inpatient_submission(vec![stay()]);
        submission.service_date = bad.into();
        assert_eq!(
            refusal(&submission),
            pairs(&[("service_date", "invalid_date")]),
            "{bad}"
        );
    }
    let mut leap = inpatient_submission(vec![stay()]);
    leap.service_date = "2024-02-29".into();
    assert!(validate_claim(&leap, today()).is_ok());
}

#[test]
fn amount_problems_are_reported_per_field() {
    let submission = inpatient_submission(vec![
        json!({"total": -1, "basic_paid": "1.234", "out_of_catalogue": "100000000.01"}),
        json!({"total": "NaN", "basic_paid": true, "out_of_catalogue": {"a": 1}}),
    ]);
    assert_eq!(
        refusal(&submission),
        pairs(&[
            ("items[0].total", "negative_amount"),
            ("items[0].basic_paid", "too_many_decimals"),
            ("items[0].out_of_catalogue", "amount_too_large"),
            ("items[1].total", "not_a_number"),
            ("items[1].basic_paid", "not_a_number"),
            ("items[1].out_of_catalogue", "not_a_number"),
        ])
    );
}

#[test]
fn basic_paid_and_out_of_catalogue_may_not_exceed_total() {
    let exact = inpatient_submission(vec![
        json!({"total": "100.00", "basic_paid": "60.00", "out_of_catalogue": "40.00"}),
    ]);
    let claim = validate_claim(&exact, today()).unwrap();
    assert_eq!(claim.items[0].eligible(), Ok(Fen::ZERO));
    let over = inpatient_submission(vec![
        json!({"total": "100.00", "basic_paid": "60.00", "out_of_catalogue": "40.01"}),
    ]);
    assert_eq!(refusal(&over), pairs(&[("items[0]", "exceeds_total")]));
    let drug_over = drug_submission(vec![
        json!({"drug": "L01EB04", "quantity": 2, "unit_price": "10.00", "basic_paid": "20.01"}),
    ]);
    assert_eq!(refusal(&drug_over), pairs(&[("items[0]", "exceeds_total")]));
}

#[test]
fn quantity_must_be_a_whole_number_in_range() {
    for (quantity, code) in [
        (json!(0), "quantity_out_of_range"),
        (json!(100_001), "quantity_out_of_range"),
        (json!(-3), "quantity_out_of_range"),
        (json!(1e20), "quantity_out_of_range"),
        (
            json!("99999999999999999999999999999999999999999"),
            "quantity_out_of_range",
        ),
        (json!(1.5), "not_a_whole_number"),
        (json!("1.5"), "not_a_whole_number"),
        (json!("two"), "not_a_whole_number"),
        (json!(null), "not_a_whole_number"),
        (json!(true), "not_a_whole_number"),
    ] {
        let submission = drug_submission(vec![
            json!({"drug": "L01EB04", "quantity": quantity, "unit_price": 1, "basic_paid": 0}),
        ]);
        assert_eq!(
            refusal(&submission),
            pairs(&[("items[0].quantity", code)]),
            "{quantity}"
        );
    }
    for (quantity, expected) in [
        (json!(1), 1),
        (json!(100_000), 100_000),
        (json!(3.0), 3),
        (json!("12"), 12),
    ] {
        let submission = drug_submission(vec![
            json!({"drug": "L01EB04", "quantity": quantity, "unit_price": 1, "basic_paid": 0}),
        ]);
        let claim = validate_claim(&submission, today()).unwrap();
        assert!(matches!(claim.items[0], ClaimItem::Drug { quantity: q, .. } if q == expected));
    }
}

#[test]
fn an_authorization_is_named_on_one_drug_dispensing_only() {
    let named = |mut submission: ClaimSubmission, id: i64| {
        submission.authorization_id = Some(id);
        submission
    };
    let claim = validate_claim(&named(drug_submission(vec![osimertinib()]), 3), today()).unwrap();
    assert_eq!(claim.authorization_id, Some(3));
    assert_eq!(claim.canonical_json()["authorization_id"], json!(3));
    let plain = validate_claim(&drug_submission(vec![osimertinib()]), today()).unwrap();
    assert!(plain.canonical_json().get("authorization_id").is_none());
    for submission in [
        named(drug_submission(vec![osimertinib(), osimertinib()]), 3),
        named(inpatient_submission(vec![stay()]), 3),
        named(drug_submission(vec![osimertinib()]), 0),
    ] {
        let errors = validate_claim(&submission, today()).unwrap_err();
        assert_eq!(errors.errors().len(), 1, "{errors}");
        assert!(errors.for_field("authorization_id").is_some(), "{errors}");
    }
}

#[test]
fn malformed_codes_and_header_fields_are_refused_together() {
    let submission = ClaimSubmission {
        member_id: 0,
        kind: "outpatient".into(),
        service_date: "2026-08-01".into(),
        provider_id: "XM PH".into(),
        diagnosis: "lung cancer".into(),
        items: vec![json!({"drug": "L01EB4", "quantity": 1, "unit_price": 1, "basic_paid": 0})],
        authorization_id: None,
    };
    assert_eq!(
        refusal(&submission),
        pairs(&[
            ("member_id", "invalid_member_id"),
            ("kind", "invalid_kind"),
            ("provider_id", "invalid_provider_id"),
            ("diagnosis", "malformed_icd10"),
            ("items[0].drug", "malformed_atc"),
        ])
    );
}

#[test]
fn items_must_be_present_objects_with_known_fields() {
    assert_eq!(
        refusal(&drug_submission(vec![])),
        pairs(&[("items", "empty_items")])
    );
    assert_eq!(
        refusal(&drug_submission(vec![json!([1, 2])])),
        pairs(&[("items[0]", "invalid_item")])
    );
    let mut extra = osimertinib();
    extra["dose_mg"] = json!(80);
    assert_eq!(
        refusal(&drug_submission(vec![extra])),
        pairs(&[("items[0].dose_mg", "unknown_field")])
    );
    // An inpatient-shaped item in a drug claim names what is missing and what is extra.
    let errors = refusal(&drug_submission(vec![stay()]));
    assert!(errors.contains(&("items[0].drug".into(), "missing_field")));
    assert!(errors.contains(&("items[0].total".into(), "unknown_field")));
    let missing = inpatient_submission(vec![json!({"total": 1})]);
    assert_eq!(
        refusal(&missing),
        pairs(&[
            ("items[0].basic_paid", "missing_field"),
            ("items[0].out_of_catalogue", "missing_field"),
        ])
    );
    let too_many = inpatient_submission(vec![stay(); MAX_ITEMS + 1]);
    assert_eq!(refusal(&too_many), pairs(&[("items", "too_many_items")]));
}

#[test]
fn an_item_carries_a_bounded_number_of_biomarkers() {
    let markers = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"marker": format!("M{i}"), "positive": true}))
            .collect()
    };
    let mut errors = ValidationErrors::default();
    let parsed = parse_biomarker_list(&markers(MAX_BIOMARKERS), "items[0].biomarkers", &mut errors);
    assert_eq!(parsed.map(|b| b.len()), Some(MAX_BIOMARKERS));
    assert!(errors.0.is_empty());
    let parsed = parse_biomarker_list(
        &markers(MAX_BIOMARKERS + 1),
        "items[0].biomarkers",
        &mut errors,
    );
    assert_eq!(parsed, None);
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].field, "items[0].biomarkers");
    assert_eq!(errors.0[0].code, "too_many_biomarkers");
}

#[test]
fn biomarkers_are_checked_entry_by_entry() {
    let item = json!({"drug": "L01EB04", "quantity": 1, "unit_price": 1, "basic_paid": 0,
                      "biomarkers": [{"marker": "", "positive": true}, {"marker": "EGFR", "positive": "yes"}, 3]});
    assert_eq!(
        refusal(&drug_submission(vec![item])),
        pairs(&[
            ("items[0].biomarkers[0].marker", "invalid_marker"),
            ("items[0].biomarkers[1].positive", "invalid_positive"),
            ("items[0].biomarkers[2]", "invalid_biomarker"),
        ])
    );
    let no_markers = json!({"drug": "L01EB04", "quantity": 1, "unit_price": 1, "basic_paid": 0});
    let claim = validate_claim(&drug_submission(vec![no_markers]), today()).unwrap();
    assert!(matches!(&claim.items[0], ClaimItem::Drug { biomarkers, .. } if biomarkers.is_empty()));
}

#[test]
fn unknown_top_level_fields_and_missing_fields() {
    let unknown = serde_json::from_value::<ClaimSubmission>(json!({
        "member_id": 1, "kind": "inpatient", "service_date": "2026-08-01",
        "provider_id": "X", "diagnosis": "C34", "items": [], "priority": "high"
    }));
    assert!(unknown.unwrap_err().to_string().contains("priority"));
    let sparse: ClaimSubmission = serde_json::from_value(json!({"member_id": 3})).unwrap();
    let fields: Vec<String> = refusal(&sparse).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["kind", "service_date", "provider_id", "diagnosis", "items"]
    );
}

#[test]
fn canonical_form_ignores_how_amounts_and_codes_were_written() {
    let one = drug_submission(vec![json!({
        "drug": "l01eb04", "quantity": 30, "unit_price": 510.5, "basic_paid": "0",
        "biomarkers": [{"marker": "EGFR", "positive": true}]
    })]);
    let mut two = drug_submission(vec![json!({
        "basic_paid": 0.00, "unit_price": "510.50", "quantity": "30", "drug": "L01EB04",
        "biomarkers": [{"positive": true, "marker": "EGFR"}]
    })]);
    two.diagnosis = "c341".into();
    let one = validate_claim(&one, today()).unwrap().canonical_json();
    let two = validate_claim(&two, today()).unwrap().canonical_json();
    assert_eq!(
        super::super::canonical::canonical_json(&one),
        super::super::canonical::canonical_json(&two)
    );
    assert_eq!(one["items"][0]["unit_price_fen"], json!(51_050));
    let mut three = drug_submission(vec![osimertinib()]);
    three.provider_id = "XM-PH-002".into();
    let three = validate_claim(&three, today()).unwrap().canonical_json();
    assert_ne!(one, three);
}
