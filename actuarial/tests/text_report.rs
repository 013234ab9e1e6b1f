//! The text report reads as an actuary expects: every column defined, counts in the singular
//! where they are one, groups with no members left out, the percentile table, the benefit split
//! and the loss ratio at a stated premium.

mod common;

use actuarial::render_report;
use common::*;

const ONE_GROUP: &str = r#"
name = "one group"
seed = 5
simulations = 1000
[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
annual_limit = 1000000
[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
annual_limit = 1000000
[[groups]]
id = "only"
members = 50000
inpatient.frequency = { distribution = "poisson", mean = 0.1 }
inpatient.severity = { distribution = "lognormal", mean = 20000, cv = 1.5 }
specialty_drug.need_rate = 0.002
specialty_drug.cost = { distribution = "gamma", mean = 100000, cv = 0.6 }
[[groups]]
id = "nobody"
members = 0
inpatient.frequency = { distribution = "poisson", mean = 0.1 }
inpatient.severity = { distribution = "lognormal", mean = 20000, cv = 1.5 }
specialty_drug.need_rate = 0.002
specialty_drug.cost = { distribution = "gamma", mean = 100000, cv = 0.6 }
[[risk_factors]]
id = "trend"
applies_to = ["inpatient.severity"]
groups = ["only"]
distribution = { distribution = "gamma", cv = 0.1 }
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
premium = 129
"#;

#[test]
fn the_report_defines_its_columns_and_judges_the_stated_premium() {
    let r = run(&scenario(ONE_GROUP));
    let text = render_report(&r);
    // Two groups, one of them empty: named once, left out of the tables.
    assert!(text.contains("in 2 groups (1 with no members left out of the tables: nobody)"));
    assert!(!text.lines().any(|l| l.starts_with("nobody")), "{text}");
    assert!(
        text.contains("(1 group)"),
        "the factor applies to 1 group: {text}"
    );
    assert!(!text.contains("1 groups"));
    for definition in [
        "risk-rated: the premium the group would pay if priced on its own",
        "pure prem.: the group's expected payout per member",
        "P(any pay): share of members paid anything in a year",
        "variance: the share of the variance of the portfolio total",
        "TVaR: the mean total in the years beyond the VaR",
    ] {
        assert!(text.contains(definition), "`{definition}` missing:\n{text}");
    }
    // The percentile table: one row per level, the stated premium's loss ratio in its column.
    let at = r.premium.at_premium.as_ref().unwrap();
    assert!(text.contains("LR at 129.00 (stated)"), "{text}");
    let median_row = text
        .lines()
        .find(|l| l.trim_start().starts_with("50.0%"))
        .expect("a 50% row");
    let stated_median = format!("{:.1}%", 100.0 * at.loss_ratio_percentiles["0.5"]);
    assert!(median_row.ends_with(&stated_median), "{median_row}");
    for level in ["75.0%", "90.0%", "95.0%", "99.0%", "99.5%", "99.9%"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(level)),
            "{level}"
        );
    }
    // At 129 the expected loss ratio is the mean over the premium income, and the chance of a
    // loss is the chance the total exceeds it.
    close(
        "loss ratio at 129",
        at.expected_loss_ratio,
        r.portfolio.mean / (129.0 * 50_000.0),
        1e-12,
    );
    assert!(text.contains(&format!("{:.1}%", 100.0 * at.expected_loss_ratio)));
    // VaR_L is the smallest total with P(total <= x) >= L, so P(total > income) <= 1 - L exactly
    // when the income is at least VaR_L.
    let income = 129.0 * 50_000.0;
    let p = at.prob_loss_ratio_above_100;
    for (level, var) in &r.portfolio.percentiles {
        let l: f64 = level.parse().unwrap();
        if income >= *var {
            assert!(p <= 1.0 - l + 1e-12, "P {p} at level {l}");
        } else {
            assert!(p > 1.0 - l - 1e-12, "P {p} at level {l}");
        }
    }
    // The benefit split: both benefits, adding up to the mean.
    let b = r.portfolio.by_benefit.as_ref().unwrap();
    let (i, d) = (b.inpatient.unwrap(), b.specialty_drug.unwrap());
    close("split", i.mean + d.mean, r.portfolio.mean, 1e-6);
    assert!(text.contains("inpatient       mean") && text.contains("specialty drug  mean"));
    // Plain words for the method.
    assert!(text.contains("Exact, no simulation."), "{text}");
}
