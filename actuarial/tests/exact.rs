//! The exact method against the Monte Carlo and against closed forms, with and without risk
//! factors; validation of the new keys.

mod common;

use std::path::PathBuf;

use actuarial::{NoTables, PricingResults, Scenario};
use common::*;

const PRICING: &str = r#"
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

const TWO_GROUPS: &str = r#"
name = "two groups"
seed = 7
simulations = 20000

[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 300000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
annual_limit = 300000

[[groups]]
id = "standard"
members = 20000
inpatient.frequency = { distribution = "poisson", mean = 0.12 }
inpatient.severity = { distribution = "lognormal", mean = 6000, cv = 1.6 }
specialty_drug.need_rate = 0.001
specialty_drug.cost = { distribution = "lognormal", mean = 150000, cv = 0.8 }

[[groups]]
id = "preexisting"
members = 3000
preexisting = true
inpatient.frequency = { distribution = "negative_binomial", mean = 0.5, variance = 0.9 }
inpatient.severity = { distribution = "gamma", mean = 9000, cv = 1.2 }
specialty_drug.need_rate = 0.008
specialty_drug.cost = { distribution = "pareto", alpha = 3.0, theta = 200000 }
"#;

fn with(method: &str, extra: &str) -> Scenario {
    scenario(&format!(
        "method = \"{method}\"\n{TWO_GROUPS}{extra}{PRICING}"
    ))
}

/// Every portfolio figure of the exact run lies within Z Monte Carlo standard errors (plus the
/// exact run's own bound) of the simulated one.
fn agree(exact: &PricingResults, mc: &PricingResults) {
    assert_eq!(exact.method.name, "exact");
    assert_eq!(mc.method.name, "monte_carlo");
    let (e, m) = (&exact.portfolio, &mc.portfolio);
    let near = |what: &str, x: f64, bound: f64, y: f64, se: f64| {
        assert!(
            (x - y).abs() <= Z * se + bound,
            "{what}: exact {x} (+- {bound}) vs Monte Carlo {y} +- {se}"
        );
    };
    near("mean", e.mean, e.mean_se, m.mean, m.mean_se);
    near("std", e.std, e.std_se, m.std, m.std_se);
    for level in ["0.95", "0.99", "0.995"] {
        near(
            &format!("VaR {level}"),
            e.var[level],
            e.var_se[level],
            m.var[level],
            m.var_se[level],
        );
        near(
            &format!("TVaR {level}"),
            e.tvar[level],
            e.tvar_se[level],
            m.tvar[level],
            m.tvar_se[level],
        );
    }
    let (pe, pm) = (&exact.premium, &mc.premium);
    // P(loss ratio > 100%) at the exact premium, compared at the same threshold would need the
    // sample; at each run's own premium both are small probabilities with binomial errors.
    near(
        "P(loss ratio > 100%)",
        pe.prob_loss_ratio_above_100,
        pe.prob_loss_ratio_above_100_se,
        pm.prob_loss_ratio_above_100,
        pm.prob_loss_ratio_above_100_se
            .max(1.0 / mc.simulations as f64),
    );
}

#[test]
fn exact_agrees_with_monte_carlo_without_factors() {
    let exact = run(&with("exact", ""));
    let mc = run(&with("monte_carlo", ""));
    agree(&exact, &mc);
    // The exact mean is the sum of the member-level means.
    let sum: f64 = exact
        .groups
        .iter()
        .map(|g| g.exact.mean_payout_per_member * g.members as f64)
        .sum();
    close("exact mean", exact.portfolio.mean, sum, 1e-12);
    let bound = exact.method.exact_error.expect("exact error bound");
    assert!(
        bound.aliasing_mass < 1e-9 && bound.rounding_variance < 2e-3,
        "{bound:?}"
    );
}

const FACTORS: &str = r#"
[[risk_factors]]
id = "morbidity_trend"
applies_to = ["inpatient.frequency", "specialty_drug.need_rate"]
distribution = { distribution = "gamma", mean = 1.0, cv = 0.10 }

[[risk_factors]]
id = "medical_cost"
applies_to = ["inpatient.severity", "specialty_drug.cost"]
groups = ["standard"]
distribution = { distribution = "lognormal", cv = 0.08 }
"#;

#[test]
fn exact_agrees_with_monte_carlo_with_two_factors() {
    let exact = run(&with("exact", FACTORS));
    let mc = run(&with("monte_carlo", FACTORS));
    agree(&exact, &mc);
    let f = exact.risk_factors.as_ref().expect("factor summary");
    assert_eq!(f.factors.len(), 2);
    // Factors widen the distribution: the total variance exceeds the process variance, and
    // the figures without factors are the process-risk ones.
    assert!(f.total_variance > f.process_variance);
    close(
        "total variance",
        f.total_variance,
        exact.portfolio.std.powi(2),
        1e-9,
    );
    assert!(f.process_risk.std < exact.portfolio.std);
    let explained: f64 = f.factors.iter().map(|x| x.variance_explained).sum();
    // Independent factors explain separate parts; with interactions the sum stays below 1.
    assert!(explained > 0.0 && explained < 1.0, "{explained}");
    // The Monte Carlo with factors draws a combination per year: same decomposition.
    assert_eq!(mc.risk_factors.as_ref().unwrap().factors, f.factors);
}

#[test]
fn a_gamma_frequency_factor_gives_a_negative_binomial_count() {
    // One member, D = 0, c = 1, a limit no cost reaches: N | V ~ Poisson(V lambda) with
    // V ~ gamma(1, cv), so N is negative binomial: P(N = 0) = (1 + lambda cv^2)^(-1 / cv^2),
    // E[N] = lambda, Var[N] = lambda + lambda^2 cv^2 (cv^2 as kept by the nodes).
    let (lambda, cv, mean, sev_cv): (f64, f64, f64, f64) = (0.3, 0.4, 1000.0, 0.5);
    let s = scenario(&format!(
        r#"
name = "nb"
seed = 3
simulations = 1000
[benefits.inpatient]
deductible = 0
coinsurance = 1.0
annual_limit = 1e8
[[groups]]
id = "one"
members = 1
inpatient.frequency = {{ distribution = "poisson", mean = {lambda} }}
inpatient.severity = {{ distribution = "gamma", mean = {mean}, cv = {sev_cv} }}
[[risk_factors]]
id = "v"
applies_to = ["inpatient.frequency"]
distribution = {{ distribution = "gamma", cv = {cv} }}
{PRICING}"#
    ));
    let r = run(&s);
    let g = &r.groups[0];
    let k = 1.0 / (cv * cv);
    let p0 = (1.0 + lambda * cv * cv).powf(-k);
    // The nodes integrate exp(-lambda v) with the error of replacing v by its stratum mean,
    // at most lambda^2 / 2 x the within-stratum variance: (1 - kept) cv^2 lambda^2 / 2.
    let f = &r.risk_factors.as_ref().unwrap().factors[0];
    let node_err = (1.0 - f.node_variance_kept) * cv * cv * lambda * lambda / 2.0;
    assert!(
        (g.exact.prob_any_payout - (1.0 - p0)).abs() <= node_err + 1e-9,
        "P(N > 0) {} vs {}",
        g.exact.prob_any_payout,
        1.0 - p0
    );
    // Compound moments: E[T] = lambda E[X]; Var[T] = lambda E[X^2] + lambda^2 E[X]^2 cv^2.
    let ex2 = mean * mean * (1.0 + sev_cv * sev_cv);
    let kept = cv * cv * f.node_variance_kept;
    within("mean", r.portfolio.mean, r.portfolio.mean_se, lambda * mean);
    within(
        "std",
        r.portfolio.std,
        r.portfolio.std_se,
        (lambda * ex2 + lambda * lambda * mean * mean * kept).sqrt(),
    );
}

#[test]
fn shipped_scenarios_agree_between_the_methods() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for name in [
        "city-default.toml",
        "benchmark.toml",
        "adverse-selection.toml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        // Fewer portfolio-years keep the test short; the comparison uses the Monte Carlo's
        // own standard errors, so it stays as strict.
        let text = regex_free_simulations(&text, 2000);
        // The methods are compared on the priced pool; the adverse-selection analysis after it
        // (its last table) re-prices other pools and is tested in tests/runs.rs.
        let text = text
            .split("\n[adverse_selection]")
            .next()
            .unwrap_or_default()
            .to_string();
        let resolver = actuarial::DirResolver::new(&dir);
        let parse = |method: &str| {
            Scenario::from_toml_str(&format!("method = \"{method}\"\n{text}"), name, &resolver)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let exact = run(&parse("exact"));
        let mc = run(&parse("monte_carlo"));
        agree(&exact, &mc);
    }
}

/// The scenario text with its `simulations = ...` line replaced.
fn regex_free_simulations(text: &str, n: u64) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("simulations") {
                format!("simulations = {n}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bad_factor_and_method_keys_name_the_key() {
    let bad = |extra: &str, key: &str, words: &str| {
        let text = format!("{TWO_GROUPS}{extra}{PRICING}");
        match Scenario::from_toml_str(&text, "bad.toml", &NoTables) {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("bad.toml"), "{msg}");
                assert_eq!(e.key(), Some(key), "{msg}");
                assert!(msg.contains(words), "{msg}");
            }
        }
    };
    let factor = |applies: &str, dist: &str| {
        format!(
            "[[risk_factors]]\nid = \"f\"\napplies_to = [{applies}]\ndistribution = {{ {dist} }}\n"
        )
    };
    let gamma = "distribution = \"gamma\", cv = 0.1";
    bad(
        &factor("\"inpatient.freq\"", gamma),
        "risk_factors[0] (f).applies_to[0]",
        "unknown target",
    );
    bad(
        &factor(
            "\"inpatient.frequency\"",
            "distribution = \"gamma\", cv = 0",
        ),
        "risk_factors[0] (f).distribution.cv",
        "got 0",
    );
    bad(
        &factor(
            "\"inpatient.frequency\"",
            "distribution = \"gamma\", cv = -1",
        ),
        "risk_factors[0] (f).distribution.cv",
        "got -1",
    );
    bad(
        &factor(
            "\"inpatient.frequency\"",
            "distribution = \"gamma\", mean = 0, cv = 0.1",
        ),
        "risk_factors[0] (f).distribution.mean",
        "> 0",
    );
    bad(
        &factor(
            "\"inpatient.frequency\"",
            "distribution = \"beta\", cv = 0.1",
        ),
        "risk_factors[0] (f).distribution.distribution",
        "gamma or lognormal",
    );
    bad(
        &format!(
            "{}groups = [\"65-74/*/standard\"]\n",
            factor("\"inpatient.frequency\"", gamma)
        ),
        "risk_factors[0] (f).groups[0]",
        "matches no group",
    );
    let three: String = (0..3)
        .map(|i| {
            format!(
                "[[risk_factors]]\nid = \"f{i}\"\napplies_to = [\"inpatient.frequency\"]\ndistribution = {{ {gamma} }}\n"
            )
        })
        .collect();
    let text = format!("method = \"exact\"\n{TWO_GROUPS}{three}{PRICING}");
    let e = Scenario::from_toml_str(&text, "bad.toml", &NoTables).unwrap_err();
    assert_eq!(e.key(), Some("method"), "{e}");
    assert!(e.to_string().contains("at most 2 risk factors"), "{e}");
    // auto takes the Monte Carlo for three factors.
    let auto = Scenario::from_toml_str(
        &format!("{TWO_GROUPS}{three}{PRICING}"),
        "ok.toml",
        &NoTables,
    )
    .unwrap();
    assert!(!auto.runs_exact());
    let e = Scenario::from_toml_str(
        &format!("method = \"fft\"\n{TWO_GROUPS}{PRICING}"),
        "bad.toml",
        &NoTables,
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("method"));
    assert!(e.to_string().contains("unknown method `fft`"), "{e}");
}
