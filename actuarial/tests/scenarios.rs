//! Scenario validation, the shipped scenario files, and the JSON contract.

mod common;

use std::path::PathBuf;

use actuarial::{BuiltinTables, NoTables, Scenario, ScenarioError};
use common::*;
use proptest::prelude::*;

const BASE: &str = r#"
name = "validation base"
seed = 1
simulations = 1000

[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1000000

[[groups]]
id = "young"
members = 1000
preexisting = false
inpatient.frequency = { distribution = "poisson", mean = 0.1 }
inpatient.severity = { distribution = "lognormal", mean = 5000, cv = 1.5 }

[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

fn error_of(text: &str) -> ScenarioError {
    match Scenario::from_toml_str(text, "test.toml", &NoTables) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn expect_error(text: &str, key: &str, words: &str) {
    let e = error_of(text);
    let msg = e.to_string();
    assert!(msg.starts_with("test.toml"), "no file name: {msg}");
    assert!(msg.contains(key), "key `{key}` not named: {msg}");
    assert!(msg.contains(words), "`{words}` not said: {msg}");
}

#[test]
fn base_scenario_is_valid() {
    let s = scenario(BASE);
    assert_eq!(s.groups().len(), 1);
    assert_eq!(s.currency(), "CNY");
    assert_eq!(s.benefits().inpatient.unwrap().coinsurance_preexisting, 0.5);
    assert!(s.benefits().specialty_drug.is_none());
    assert!(s.work_units() > 1000.0);
}

#[test]
fn bad_values_name_the_file_the_key_and_the_problem() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "mean = 5000, cv = 1.5",
            "mean = -5000, cv = 1.5",
            "groups[0] (young).inpatient.severity",
            "mean must be > 0",
        ),
        (
            "mean = 5000, cv = 1.5",
            "mean = 5000, cv = 0",
            "groups[0] (young).inpatient.severity",
            "cv must be > 0",
        ),
        (
            "coinsurance = 0.8",
            "coinsurance = 1.2",
            "benefits.inpatient.coinsurance",
            "between 0 and 1",
        ),
        (
            "coinsurance_preexisting = 0.5",
            "coinsurance_preexisting = -0.1",
            "benefits.inpatient.coinsurance_preexisting",
            "between 0 and 1",
        ),
        (
            "distribution = \"lognormal\"",
            "distribution = \"weibull\"",
            "inpatient.severity.distribution",
            "unknown severity distribution `weibull`",
        ),
        (
            "distribution = \"poisson\"",
            "distribution = \"binomial\"",
            "inpatient.frequency.distribution",
            "unknown frequency distribution",
        ),
        (
            "{ distribution = \"poisson\", mean = 0.1 }",
            "{ distribution = \"poisson\", mean = -0.1 }",
            "inpatient.frequency",
            "mean must be >= 0",
        ),
        (
            "{ distribution = \"poisson\", mean = 0.1 }",
            "{ distribution = \"negative_binomial\", mean = 0.1, variance = 0.05 }",
            "inpatient.frequency",
            "must exceed the mean",
        ),
        (
            "{ distribution = \"poisson\", mean = 0.1 }",
            "{ distribution = \"poisson\", mean = 0.1, sd = 1 }",
            "inpatient.frequency.sd",
            "unknown key",
        ),
        (
            "annual_limit = 1000000",
            "annual_limit = 0",
            "benefits.inpatient.annual_limit",
            "> 0",
        ),
        (
            "deductible = 20000",
            "deductible = -1",
            "benefits.inpatient.deductible",
            ">= 0",
        ),
        (
            "annual_limit = 1000000",
            "annual_limit = \"a million\"",
            "benefits.inpatient.annual_limit",
            "expected a number",
        ),
        (
            "members = 1000",
            "members = -3",
            "members",
            "non-negative whole number",
        ),
        ("members = 1000", "members = 0", "groups", "no members"),
        (
            "simulations = 1000",
            "simulations = 10",
            "simulations",
            "at least 1000",
        ),
        (
            "level = 0.99",
            "level = 1.5",
            "pricing.level",
            "in (0.5, 1)",
        ),
        (
            "risk_measure = \"tvar\"",
            "risk_measure = \"es\"",
            "pricing.risk_measure",
            "unknown risk measure",
        ),
        (
            "expense_ratio = 0.1",
            "expense_ratio = 1.0",
            "pricing.expense_ratio",
            "[0, 0.95)",
        ),
        (
            "seed = 1",
            "seed = 1\nsimulatons = 5",
            "simulatons",
            "unknown key",
        ),
        (
            "[pricing]",
            "[pricing]\ntarget_loss_ratio = 1.5",
            "pricing.target_loss_ratio",
            "(0, 1]",
        ),
        (
            "[pricing]",
            "[pricing]\npremium = 0",
            "pricing.premium",
            "must be > 0",
        ),
        (
            "[pricing]",
            "[pricing]\npremium = -129",
            "pricing.premium",
            "must be > 0",
        ),
        (
            "[pricing]",
            "[pricing]\npremium = nan",
            "pricing.premium",
            "expected a number",
        ),
        (
            "[pricing]",
            "[pricing]\npremium = inf",
            "pricing.premium",
            "expected a number",
        ),
        (
            "[pricing]",
            "[pricing]\npremium = \"129\"",
            "pricing.premium",
            "expected a number",
        ),
        (
            "preexisting = false",
            "preexisting = \"no\"",
            "preexisting",
            "true or false",
        ),
    ];
    for (from, to, key, words) in cases {
        assert!(BASE.contains(from), "{from}");
        expect_error(&BASE.replacen(from, to, 1), key, words);
    }
    // Level too high for the simulation count.
    expect_error(
        &BASE.replace("level = 0.99", "level = 0.999"),
        "pricing.level",
        "tail",
    );
    // Missing sections and tables.
    expect_error(
        &BASE.replace("[pricing]", "[pricingx]"),
        "pricingx",
        "unknown key",
    );
    let no_groups = &BASE[..BASE.find("[[groups]]").unwrap()].to_string();
    expect_error(
        &format!(
            "{no_groups}[pricing]\nexpense_ratio = 0.1\ncost_of_capital = 0\nrisk_measure = \"var\"\nlevel = 0.99\n"
        ),
        "groups",
        "missing",
    );
    expect_error(
        &format!(
            "{BASE}\n[benefits.specialty_drug]\ndeductible = 0\ncoinsurance = 0.7\nannual_limit = 100\n"
        ),
        "specialty_drug",
        "missing: the scenario prices the specialty_drug benefit",
    );
    // Duplicate ids.
    let dup =
        BASE.to_string() + &BASE[BASE.find("[[groups]]").unwrap()..BASE.find("[pricing]").unwrap()];
    expect_error(&dup, "groups[1].id", "duplicate group id");
    // Syntax errors carry the file name and the position.
    let e = error_of("name = \"x\"\nseed = ").to_string();
    assert!(
        e.starts_with("test.toml: TOML syntax") && e.contains("line 2"),
        "{e}"
    );
    let e = Scenario::from_json_str("{\"name\": ", "body.json", &NoTables)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("body.json: JSON syntax"), "{e}");
}

const POPULATION: &str = r#"
name = "population"
seed = 1
simulations = 1000
[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1000000
[population]
table = "morbidity_default.csv"
size = 100000
take_up = { default = 0.3, "*/*/preexisting" = 0.6, "85+/F/preexisting" = 0.9 }
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

#[test]
fn population_tables_and_take_up_selectors() {
    let s = Scenario::from_toml_str(POPULATION, "pop.toml", &BuiltinTables).unwrap();
    assert_eq!(s.groups().len(), 28);
    let g = |id: &str| s.groups().iter().find(|g| g.id == id).unwrap();
    assert_eq!(g("0-17/M/standard").base_take_up, 0.3);
    assert_eq!(g("0-17/M/preexisting").base_take_up, 0.6);
    assert_eq!(g("85+/F/preexisting").base_take_up, 0.9);
    // members = size x share x take-up, rounded.
    assert_eq!(
        g("0-17/M/standard").members,
        (100_000.0_f64 * 0.114450 * 0.3).round() as u64
    );
    assert!(g("85+/F/preexisting").preexisting);

    // The table must be allowed by the resolver.
    let e = Scenario::from_toml_str(POPULATION, "pop.toml", &NoTables)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("population.table") && e.contains("not available"),
        "{e}"
    );
    let missing = POPULATION.replace("morbidity_default.csv", "nowhere.csv");
    let dir = actuarial::DirResolver::new(std::env::temp_dir());
    let e = Scenario::from_toml_str(&missing, "pop.toml", &dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("population.table") && e.contains("nowhere.csv"),
        "{e}"
    );
    // Selectors that match nothing, are malformed, or tie with different values.
    for (sel, words) in [
        ("\"99-100/*/*\" = 0.5", "matches no group"),
        ("\"65-74/M\" = 0.5", "a selector must be"),
        (
            "\"65-74/*/*\" = 0.5, \"*/M/standard\" = 0.4, \"*/*/standard\" = 0.2, \"*/F/*\" = 0.1",
            "both match group",
        ),
    ] {
        let text = POPULATION.replace("\"85+/F/preexisting\" = 0.9", sel);
        let e = Scenario::from_toml_str(&text, "pop.toml", &BuiltinTables)
            .unwrap_err()
            .to_string();
        assert!(e.contains("population.take_up") && e.contains(words), "{e}");
    }
    let e = Scenario::from_toml_str(
        &POPULATION.replace("take_up = { default = 0.3,", "take_up = {"),
        "pop.toml",
        &BuiltinTables,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no value for group"), "{e}");
    // Both forms at once.
    let both = POPULATION.to_string()
        + &BASE[BASE.find("[[groups]]").unwrap()..BASE.find("[pricing]").unwrap()];
    let e = Scenario::from_toml_str(&both, "pop.toml", &BuiltinTables)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both"), "{e}");
}

#[test]
fn json_and_toml_give_the_same_scenario() {
    let toml_form = scenario(BASE);
    let value: toml::Value = toml::from_str(BASE).unwrap();
    let json = serde_json::to_string(&value).unwrap();
    let json_form = Scenario::from_json_str(&json, "test.json", &NoTables).unwrap();
    assert_eq!(toml_form, json_form);
    assert_eq!(toml_form.hash(), json_form.hash());
    // Any change to the terms changes the hash.
    let other = scenario(&BASE.replace("deductible = 20000", "deductible = 20001"));
    assert_ne!(other.hash(), toml_form.hash());
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn shipped_scenarios_parse() {
    let mut count = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let s = Scenario::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.total_members() > 0 && s.work_units().is_finite());
        // The API resolver accepts the same files when they use the shipped table.
        let text = std::fs::read_to_string(&path).unwrap();
        let api = Scenario::from_toml_str(&text, "body", &BuiltinTables).unwrap();
        assert_eq!(api.hash(), s.hash(), "{}", path.display());
        count += 1;
    }
    assert!(count >= 4);
    let city = Scenario::from_path(&scenarios_dir().join("city-default.toml")).unwrap();
    assert_eq!(city.groups().len(), 28);
    assert!(city.benefits().inpatient.is_some() && city.benefits().specialty_drug.is_some());
    let bench = Scenario::from_path(&scenarios_dir().join("benchmark.toml")).unwrap();
    assert_eq!(
        (bench.total_members(), bench.simulations()),
        (100_000, 100_000)
    );
    let sweep = Scenario::from_path(&scenarios_dir().join("sweep-terms.toml")).unwrap();
    assert_eq!(sweep.sweep().as_ref().unwrap().rows(), 18);
    let adverse = Scenario::from_path(&scenarios_dir().join("adverse-selection.toml")).unwrap();
    assert!(adverse.adverse_selection().is_some());
}

#[test]
fn json_results_have_the_contract_names() {
    let s = scenario(&format!(
        "{BASE}\n[benefits.specialty_drug]\ndeductible = 0\ncoinsurance = 0.7\nannual_limit = 500000\n"
    ).replace(
        "inpatient.severity = { distribution = \"lognormal\", mean = 5000, cv = 1.5 }",
        "inpatient.severity = { distribution = \"lognormal\", mean = 5000, cv = 1.5 }\nspecialty_drug.need_rate = 0.01\nspecialty_drug.cost = { distribution = \"gamma\", mean = 100000, cv = 0.5 }",
    ));
    let v = serde_json::to_value(run(&s)).unwrap();
    for key in [
        "seed",
        "simulations",
        "scenario_hash",
        "version",
        "git_commit",
        "groups",
        "portfolio",
        "premium",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let g = &v["groups"][0];
    for key in ["id", "members"] {
        assert!(g.get(key).is_some(), "{key}");
    }
    for stat in [
        "mean_payout_per_member",
        "std_payout_per_member",
        "prob_any_payout",
    ] {
        for node in [
            g,
            &g["by_benefit"]["inpatient"],
            &g["by_benefit"]["specialty_drug"],
        ] {
            assert!(node[stat].is_number(), "{stat}");
            assert!(node[format!("{stat}_se")].is_number(), "{stat}_se");
        }
    }
    let p = &v["portfolio"];
    for key in ["mean", "mean_se", "std", "std_se"] {
        assert!(p[key].is_number(), "{key}");
    }
    for key in ["var", "var_se", "tvar", "tvar_se"] {
        for level in ["0.95", "0.99", "0.995"] {
            assert!(p[key][level].is_number(), "{key} {level}");
        }
    }
    // New figures beside the stable names: percentiles, the benefit split, the loss ratio.
    for level in ["0.5", "0.75", "0.9", "0.95", "0.99", "0.995", "0.999"] {
        assert!(p["percentiles"][level].is_number(), "percentile {level}");
        assert!(v["premium"]["loss_ratio"]["loss_ratio_percentiles"][level].is_number());
    }
    for benefit in ["inpatient", "specialty_drug"] {
        assert!(p["by_benefit"][benefit]["mean"].is_number(), "{benefit}");
    }
    assert!(
        v["premium"].get("at_premium").is_none(),
        "no premium stated"
    );
    // The benefits are independent and add up to the total, within the reported error.
    let f = |x: &serde_json::Value| x.as_f64().unwrap();
    let (bi, bd) = (
        &p["by_benefit"]["inpatient"],
        &p["by_benefit"]["specialty_drug"],
    );
    let split_mean = f(&bi["mean"]) + f(&bd["mean"]);
    assert!(
        (split_mean - f(&p["mean"])).abs() <= f(&p["mean_se"]) + 1e-9 * f(&p["mean"]),
        "{split_mean} vs {}",
        p["mean"]
    );
    let split_std = f(&bi["std"]).hypot(f(&bd["std"]));
    assert!(
        (split_std - f(&p["std"])).abs() <= f(&p["std_se"]) + 1e-9 * f(&p["std"]),
        "{split_std} vs {}",
        p["std"]
    );
    // The loss ratio's percentiles are the total's over the premium; the median is below the 99.9%.
    let lr = &v["premium"]["loss_ratio"];
    for level in ["0.5", "0.99"] {
        let expected = f(&p["percentiles"][level]) / f(&v["premium"]["gross_premium"]);
        let got = f(&lr["loss_ratio_percentiles"][level]);
        assert!((got - expected).abs() <= 1e-12 * expected, "{level}");
    }
    assert!(f(&p["percentiles"]["0.5"]) < f(&p["percentiles"]["0.999"]));
    assert_eq!(p["percentiles"]["0.99"], p["var"]["0.99"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    // A 40-digit commit in a checkout, "unknown" outside one.
    let commit = v["git_commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    assert_eq!(v["scenario_hash"], s.hash());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = Scenario::from_toml_str(&text, "fuzz.toml", &BuiltinTables);
        let _ = Scenario::from_json_str(&text, "fuzz.json", &BuiltinTables);
    }

    #[test]
    fn arbitrary_numbers_are_accepted_or_rejected_cleanly(
        which in 0usize..9,
        value in prop_oneof![
            any::<f64>().prop_map(|x| format!("{x:?}")),
            any::<i64>().prop_map(|x| x.to_string()),
            Just("nan".to_string()),
            Just("-inf".to_string()),
            Just("1e308".to_string()),
        ],
    ) {
        let targets = ["seed = 1", "simulations = 1000", "deductible = 20000", "coinsurance = 0.8",
            "annual_limit = 1000000", "members = 1000", "mean = 0.1", "cv = 1.5", "level = 0.99"];
        let from = targets[which];
        let key = &from[..from.find(" =").unwrap()];
        let text = BASE.replacen(from, &format!("{key} = {value}"), 1);
        if let Ok(s) = Scenario::from_toml_str(&text, "fuzz.toml", &NoTables) {
            prop_assert!(s.work_units().is_finite());
            prop_assert!(!s.hash().is_empty());
        }
    }
}
