use super::*;
use std::str::FromStr;

/// A small consistent product used across the domain tests.
pub(crate) const SAMPLE: &str = r#"
    id = "sample-2026"
    name = "Sample plan 2026"
    premium = "129.00"
    period_start = 2026-07-01
    period_end = 2027-06-30
    enrollment_open = 2026-07-01
    enrollment_close = 2026-12-31
    waiting_days = 30
    renews = "sample-2025"

    [[preexisting_groups]]
    name = "malignant tumours"
    codes = ["C00-C97"]

    [[preexisting_groups]]
    name = "end-stage renal disease"
    codes = ["N18.5", "N18.6"]

    [inpatient]
    deductible = "20000.00"
    coinsurance = "0.70"
    coinsurance_preexisting = 0.5
    annual_limit = 1500000

    [specialty_drug]
    deductible = 0
    coinsurance = "0.70"
    coinsurance_preexisting = "0.30"
    annual_limit = "3000000.00"

    [[specialty_drug.formulary]]
    atc = "L01EB04"
    name = "osimertinib"
    indications = ["C34"]
    required_biomarker = "EGFR"
    designated_providers = ["XM-PH-001", "XM-PH-002"]

    [[specialty_drug.formulary]]
    atc = "L01FD01"
    name = "trastuzumab"
    indications = ["C50", "C16"]
    required_biomarker = "HER2"
    designated_providers = ["XM-PH-001"]
"#;

pub(crate) fn sample() -> Product {
    Product::from_toml_str(SAMPLE).unwrap()
}

fn refused(text: &str) -> ProductError {
    Product::from_toml_str(text).unwrap_err()
}

fn replaced(from: &str, to: &str) -> String {
    assert!(SAMPLE.contains(from), "fixture does not contain {from:?}");
    SAMPLE.replacen(from, to, 1)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

#[test]
fn loads_a_consistent_file() {
    let product = sample();
    assert_eq!(product.id, "sample-2026");
    assert_eq!(product.premium, Fen(12_900));
    assert_eq!(product.period_start, date("2026-07-01"));
    assert_eq!(product.waiting_days, 30);
    assert_eq!(product.renews.as_deref(), Some("sample-2025"));
    let inpatient = product.inpatient.as_ref().unwrap();
    assert_eq!(inpatient.deductible, Fen(2_000_000));
    assert_eq!(inpatient.coinsurance, Decimal::from_str("0.70").unwrap());
    assert_eq!(
        inpatient.coinsurance_preexisting,
        Decimal::from_str("0.5").unwrap()
    );
    assert_eq!(inpatient.annual_limit, Fen(150_000_000));
    let drugs = product.specialty_drug.as_ref().unwrap();
    assert_eq!(drugs.terms.deductible, Fen::ZERO);
    assert_eq!(drugs.formulary.len(), 2);
    let osimertinib = product.formulary_drug(&"L01EB04".parse().unwrap()).unwrap();
    assert_eq!(osimertinib.required_biomarker.as_deref(), Some("EGFR"));
    assert!(osimertinib.indicated_for(&"C34.1".parse().unwrap()));
    assert!(osimertinib.dispensed_by("XM-PH-002"));
    assert!(!osimertinib.dispensed_by("xm-ph-002"));
    assert!(
        product
            .formulary_drug(&"L01FF02".parse().unwrap())
            .is_none()
    );
}

#[test]
fn round_trips_through_json_with_the_same_hash() {
    let product = sample();
    let json = product.canonical_json();
    let reloaded = Product::from_json_value(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(reloaded, product);
    assert_eq!(reloaded.content_hash(), product.content_hash());
    assert_eq!(product.content_hash().len(), 64);
    assert!(json.contains(r#""premium":"129.00""#), "{json}");
    assert!(json.contains(r#""coinsurance":"0.70""#), "{json}");
}

#[test]
fn any_change_of_terms_changes_the_hash() {
    let product = sample();
    let mut changed = product.clone();
    changed.inpatient.as_mut().unwrap().coinsurance = Decimal::from_str("0.71").unwrap();
    assert_ne!(changed.content_hash(), product.content_hash());
    let mut changed = product.clone();
    changed.specialty_drug.as_mut().unwrap().formulary[0]
        .designated_providers
        .push("XM-PH-009".into());
    assert_ne!(changed.content_hash(), product.content_hash());
}

#[test]
fn preexisting_rate_needs_a_declared_code_in_the_diagnosis_group() {
    let product = sample();
    let code = |s: &str| Icd10Code::from_str(s).unwrap();
    let lung = code("C34.1");
    assert!(product.preexisting_applies(&lung, &[code("C50.9")]));
    assert!(!product.preexisting_applies(&lung, &[code("N18.5")]));
    assert!(!product.preexisting_applies(&lung, &[]));
    assert!(!product.preexisting_applies(&code("J18.9"), &[code("C34")]));
    assert!(product.preexisting_applies(&code("N18.6"), &[code("n18.5")]));
}

#[test]
fn dates_and_windows_are_inclusive() {
    let product = sample();
    assert!(product.period_contains(date("2026-07-01")));
    assert!(product.period_contains(date("2027-06-30")));
    assert!(!product.period_contains(date("2026-06-30")));
    assert!(!product.period_contains(date("2027-07-01")));
    assert!(product.enrollment_open_on(date("2026-12-31")));
    assert!(!product.enrollment_open_on(date("2027-01-01")));
}

#[test]
fn refusals_name_the_key() {
    let cases: Vec<(String, &str)> = vec![
        (
            replaced("period_end = 2027-06-30", "period_end = 2026-06-30"),
            "period_end",
        ),
        (
            replaced(
                "enrollment_open = 2026-07-01",
                "enrollment_open = 2026-06-30",
            ),
            "enrollment_open",
        ),
        (
            replaced(
                "enrollment_close = 2026-12-31",
                "enrollment_close = 2027-07-01",
            ),
            "enrollment_close",
        ),
        (
            replaced(
                "enrollment_close = 2026-12-31",
                "enrollment_close = 2026-06-30",
            ),
            "enrollment_close",
        ),
        (
            replaced("premium = \"129.00\"", "premium = \"-1\""),
            "premium",
        ),
        (
            replaced("deductible = \"20000.00\"", "deductible = \"-20000.00\""),
            "inpatient.deductible",
        ),
        (
            replaced("annual_limit = \"3000000.00\"", "annual_limit = -5"),
            "specialty_drug.annual_limit",
        ),
        (
            replaced("coinsurance = \"0.70\"", "coinsurance = 1.2"),
            "inpatient.coinsurance",
        ),
        (
            replaced(
                "coinsurance_preexisting = \"0.30\"",
                "coinsurance_preexisting = \"-0.1\"",
            ),
            "specialty_drug.coinsurance_preexisting",
        ),
        (
            replaced("\"C00-C97\"", "\"C97-C00\""),
            "preexisting_groups[0].codes[0]",
        ),
        (
            replaced("\"N18.6\"", "\"N18-6x\""),
            "preexisting_groups[1].codes[1]",
        ),
        (
            replaced("atc = \"L01FD01\"", "atc = \"L01FD1\""),
            "specialty_drug.formulary[1].atc",
        ),
        (
            replaced("atc = \"L01FD01\"", "atc = \"l01eb04\""),
            "specialty_drug.formulary[1].atc",
        ),
        (
            replaced(
                "indications = [\"C50\", \"C16\"]",
                "indications = [\"C50\", \"breast\"]",
            ),
            "specialty_drug.formulary[1].indications[1]",
        ),
        (
            replaced("indications = [\"C34\"]", "indications = []"),
            "specialty_drug.formulary[0].indications",
        ),
        (
            replaced(
                "designated_providers = [\"XM-PH-001\"]",
                "designated_providers = []",
            ),
            "specialty_drug.formulary[1].designated_providers",
        ),
        (
            replaced(
                "designated_providers = [\"XM-PH-001\"]",
                "designated_providers = [\"XM-PH-001\", \"XM-PH-001\"]",
            ),
            "specialty_drug.formulary[1].designated_providers[1]",
        ),
        (
            replaced(
                "designated_providers = [\"XM-PH-001\"]",
                "designated_providers = [\"XM PH\"]",
            ),
            "specialty_drug.formulary[1].designated_providers[0]",
        ),
        (
            replaced("waiting_days = 30", "waiting_days = 365"),
            "waiting_days",
        ),
        (
            replaced("renews = \"sample-2025\"", "renews = \"sample-2026\""),
            "renews",
        ),
        (replaced("id = \"sample-2026\"", "id = \"\""), "id"),
        (
            replaced("name = \"Sample plan 2026\"", "name = \" \""),
            "name",
        ),
        (
            replaced(
                "name = \"end-stage renal disease\"",
                "name = \"malignant tumours\"",
            ),
            "preexisting_groups[1].name",
        ),
        (
            replaced("codes = [\"N18.5\", \"N18.6\"]", "codes = []"),
            "preexisting_groups[1].codes",
        ),
        (
            replaced(
                "period_start = 2026-07-01",
                "period_start = 2026-07-01T08:00:00",
            ),
            "period_start",
        ),
        (
            replaced("required_biomarker = \"HER2\"", "required_biomarker = \"\""),
            "specialty_drug.formulary[1].required_biomarker",
        ),
    ];
    for (text, key) in cases {
        let error = refused(&text);
        assert_eq!(error.key(), Some(key), "{error}");
        assert!(error.to_string().contains(key), "{error}");
    }
}

#[test]
fn a_product_without_benefits_or_drugs_is_refused() {
    let no_drugs = SAMPLE
        .split("[[specialty_drug.formulary]]")
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(refused(&no_drugs).key(), Some("specialty_drug.formulary"));
    let no_benefits = SAMPLE.split("[inpatient]").next().unwrap().to_owned();
    assert_eq!(refused(&no_benefits).key(), Some("inpatient"));
}

#[test]
fn parse_errors_name_the_key_too() {
    for (text, key) in [
        (
            replaced("waiting_days = 30", "waiting_days = 30\nwaiting_months = 1"),
            "waiting_months",
        ),
        (
            replaced("coinsurance = \"0.70\"", "coinsurance = \"seventy\""),
            "coinsurance",
        ),
        (
            replaced("premium = \"129.00\"", "premium = \"129.001\""),
            "premium",
        ),
        (
            replaced("premium = \"129.00\"", "premium = \"a lot\""),
            "premium",
        ),
        (
            replaced("waiting_days = 30", "waiting_days = -1"),
            "waiting_days",
        ),
        (
            replaced(
                "name = \"osimertinib\"",
                "name = \"osimertinib\"\ndose = 80",
            ),
            "dose",
        ),
        (replaced("id = \"sample-2026\"\n", ""), "id"),
    ] {
        let error = refused(&text);
        assert!(matches!(error, ProductError::Parse(_)), "{error}");
        assert!(error.to_string().contains(key), "{key}: {error}");
    }
}

pub(crate) const DEMO_2025: &str = include_str!("../../../../products/xiamen-2025.toml");
pub(crate) const DEMO_2026: &str = include_str!("../../../../products/xiamen-2026.toml");

#[test]
fn shipped_demo_products_load_and_chain() {
    let previous = Product::from_toml_str(DEMO_2025).unwrap();
    let current = Product::from_toml_str(DEMO_2026).unwrap();
    assert_eq!(current.id, "xiamen-2026");
    assert_eq!(current.renews.as_deref(), Some(previous.id.as_str()));
    assert_eq!(previous.renews, None);
    assert_eq!(previous.period_end.succ_opt(), Some(current.period_start));
    // Usable on 2026-11-28: enrolment open, and that day inside the period.
    let today = date("2026-11-28");
    assert!(current.enrollment_open_on(today));
    assert!(current.period_contains(today));
    assert!(!previous.enrollment_open_on(today));
    assert_eq!(current.premium, Fen(12_900));
    let drugs = current.specialty_drug.as_ref().unwrap();
    assert_eq!(drugs.terms.deductible, Fen::ZERO);
    assert_eq!(drugs.formulary.len(), 20);
    assert_eq!(
        current.inpatient.as_ref().unwrap().deductible,
        Fen(2_000_000)
    );
    // Same terms in both years: only identity, dates and `renews` differ.
    let mut aligned = previous.clone();
    aligned.id = current.id.clone();
    aligned.name = current.name.clone();
    aligned.period_start = current.period_start;
    aligned.period_end = current.period_end;
    aligned.enrollment_open = current.enrollment_open;
    aligned.enrollment_close = current.enrollment_close;
    aligned.renews = current.renews.clone();
    aligned.pricing_scenario = current.pricing_scenario.clone();
    assert_eq!(aligned, current);
    assert_ne!(previous.content_hash(), current.content_hash());
}

#[test]
fn course_terms_default_to_none_and_keep_the_hash() {
    let product = sample();
    let osimertinib = &product.specialty_drug.as_ref().unwrap().formulary[0];
    assert!(!osimertinib.requires_authorization);
    assert_eq!(osimertinib.max_cycle_days, None);
    assert_eq!(osimertinib.max_course_cycles, None);
    assert_eq!(osimertinib.followup_every_cycles, 0);
    assert_eq!(product.qualified_prescribers, None);
    assert!(product.prescriber_qualified("ANY-HOSPITAL"));
    let json = product.canonical_json();
    for key in [
        "requires_authorization",
        "max_cycle_days",
        "max_course_cycles",
        "followup_every_cycles",
        "qualified_prescribers",
    ] {
        assert!(!json.contains(key), "{key} in {json}");
    }
}

#[test]
fn course_terms_are_read_and_hashed() {
    let text = replaced(
        "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]",
        "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]\n\
         requires_authorization = true\nmax_cycle_days = 30\n\
         max_course_cycles = 12\nfollowup_every_cycles = 3",
    )
    .replacen(
        "renews = \"sample-2025\"",
        "renews = \"sample-2025\"\nqualified_prescribers = [\"XM-H-001\"]",
        1,
    );
    let product = Product::from_toml_str(&text).unwrap();
    let drug = &product.specialty_drug.as_ref().unwrap().formulary[0];
    assert!(drug.requires_authorization);
    assert_eq!(drug.max_cycle_days, Some(30));
    assert_eq!(drug.max_course_cycles, Some(12));
    assert_eq!(drug.followup_every_cycles, 3);
    assert!(product.prescriber_qualified("XM-H-001"));
    assert!(!product.prescriber_qualified("XM-H-002"));
    assert_ne!(product.content_hash(), sample().content_hash());
    let reloaded =
        Product::from_json_value(serde_json::from_str(&product.canonical_json()).unwrap()).unwrap();
    assert_eq!(reloaded, product);
    let mut none = product.clone();
    none.qualified_prescribers = Some(Vec::new());
    assert!(!none.prescriber_qualified("XM-H-001"));
}

#[test]
fn course_terms_refusals_name_the_key() {
    let osimertinib = "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]";
    let with = |extra: &str| replaced(osimertinib, &format!("{osimertinib}\n{extra}"));
    let cases = [
        (
            with("max_cycle_days = 0"),
            "specialty_drug.formulary[0].max_cycle_days",
        ),
        (
            with("max_cycle_days = 30\nmax_course_cycles = 0"),
            "specialty_drug.formulary[0].max_course_cycles",
        ),
        (
            with("requires_authorization = true\nmax_course_cycles = 12"),
            "specialty_drug.formulary[0].max_cycle_days",
        ),
        (
            with("requires_authorization = true\nmax_cycle_days = 30"),
            "specialty_drug.formulary[0].max_course_cycles",
        ),
        (
            replaced(
                "renews = \"sample-2025\"",
                "renews = \"sample-2025\"\nqualified_prescribers = [\"H1\", \"H1\"]",
            ),
            "qualified_prescribers[1]",
        ),
        (
            replaced(
                "renews = \"sample-2025\"",
                "renews = \"sample-2025\"\nqualified_prescribers = [\"H 1\"]",
            ),
            "qualified_prescribers[0]",
        ),
    ];
    for (text, key) in cases {
        let error = refused(&text);
        assert_eq!(error.key(), Some(key), "{error}");
    }
    let negative = with("followup_every_cycles = -1");
    assert!(matches!(refused(&negative), ProductError::Parse(_)));
}

#[test]
fn waiting_period_may_be_zero_and_renews_optional() {
    let text = replaced("waiting_days = 30", "waiting_days = 0").replacen(
        "renews = \"sample-2025\"\n",
        "",
        1,
    );
    let product = Product::from_toml_str(&text).unwrap();
    assert_eq!(product.waiting_days, 0);
    assert_eq!(product.renews, None);
}

#[test]
fn the_pricing_scenario_is_optional_hashed_and_a_relative_path() {
    assert_eq!(sample().pricing_scenario, None);
    assert!(!sample().canonical_json().contains("pricing_scenario"));
    let named = Product::from_toml_str(&replaced(
        "renews = \"sample-2025\"",
        "renews = \"sample-2025\"\n    pricing_scenario = \"scenarios/sample.toml\"",
    ))
    .unwrap();
    assert_eq!(
        named.pricing_scenario.as_deref(),
        Some("scenarios/sample.toml")
    );
    assert_ne!(named.content_hash(), sample().content_hash());
    for bad in [
        "/etc/x.toml",
        "scenarios/x.csv",
        "",
        "C:\\x.toml",
        "a b.toml",
    ] {
        let error = refused(&replaced(
            "renews = \"sample-2025\"",
            &format!("renews = \"sample-2025\"\n    pricing_scenario = {bad:?}"),
        ));
        assert_eq!(error.key(), Some("pricing_scenario"), "{bad}: {error}");
    }
    let demo = Product::from_toml_str(DEMO_2026).unwrap();
    assert_eq!(
        demo.pricing_scenario.as_deref(),
        Some("scenarios/xiamen-2026.toml")
    );
}
