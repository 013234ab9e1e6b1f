//! Measures what the HTTP API's admission estimate ([`Scenario::work_estimate`]) weighs: the time
//! of one simulated member-year, and the time of building one group's member-level models
//! (and combining them, under the exact method) for one sweep row, so that the weight of a
//! model build in member-years can be read off. Prints both and their ratio.
//!
//!     cargo run --release -p actuarial --example admission_weights

use std::time::Instant;

use actuarial::{NoTables, RunOptions, Scenario, price};

const TERMS: &str = r#"
[benefits.inpatient]
deductible = 20_000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1_000_000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 500_000

[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
"#;

/// `groups` groups alike but for their size, as a scenario file writes them.
fn groups(groups: usize, members: u64) -> String {
    (0..groups)
        .map(|g| {
            format!(
                r#"
[[groups]]
id = "g{g}"
members = {}
preexisting = {}
inpatient.frequency = {{ distribution = "negative_binomial", mean = 0.3, variance = 0.6 }}
inpatient.severity = {{ distribution = "lognormal", mean = 25_000, cv = 1.5 }}
specialty_drug.need_rate = 0.002
specialty_drug.cost = {{ distribution = "gamma", mean = 150_000, cv = 0.8 }}
"#,
                members + g as u64,
                g % 2 == 0
            )
        })
        .collect()
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml_str(text, "admission_weights", &NoTables).unwrap_or_else(|e| panic!("{e}"))
}

fn seconds(s: &Scenario) -> f64 {
    let start = Instant::now();
    price(s, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    start.elapsed().as_secs_f64()
}

fn main() {
    // Simulation: Monte Carlo over a portfolio large enough that model building is negligible.
    let simulated = scenario(&format!(
        "name = \"simulated\"\nseed = 1\nsimulations = 20_000\nmethod = \"monte_carlo\"\n{TERMS}{}",
        groups(4, 25_000)
    ));
    // Its simulated member-years alone, without the (negligible) build of its 4 groups.
    let years = simulated.work_estimate().main - 4.0 * actuarial::MODEL_BUILD_MEMBER_YEARS;
    let per_unit = seconds(&simulated) / years;
    println!("simulation: {per_unit:.3e} s per member-year of work");

    // Model building: a sweep of distinct deductibles (each row rebuilds every group's models)
    // at the fewest simulations a row may have, on small groups; the same scenario without
    // the sweep is subtracted.
    let (group_count, rows) = (50, 40);
    let deductibles: Vec<String> = (0..rows).map(|i| (10_000 + 100 * i).to_string()).collect();
    for method in ["auto", "monte_carlo"] {
        let base = format!(
            "name = \"built\"\nseed = 1\nsimulations = 1_000\nmethod = \"{method}\"\n{TERMS}{}",
            groups(group_count, 10)
        );
        let swept = format!(
            "{base}\n[sweep]\nsimulations = 1_000\ninpatient.deductible = [{}]\n",
            deductibles.join(", ")
        );
        let alone = seconds(&scenario(&base));
        let with_sweep = seconds(&scenario(&swept));
        let per_build = (with_sweep - alone) / (group_count * rows) as f64;
        println!(
            "{method}: {per_build:.3e} s per group and sweep row = {:.0} member-years",
            per_build / per_unit
        );
    }
}
