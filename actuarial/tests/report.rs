//! The pricing report page and the distribution of the total that the results carry for it.

mod common;

use actuarial::PricingResults;
use actuarial::html::{SECTIONS, pricing_report};
use common::{run, scenario};

const GROUPS: &str = r#"
[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1000000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 500000

[[groups]]
id = "young"
members = 20000
take_up = 0.3
take_up_elasticity = 1.0
inpatient.frequency = { distribution = "poisson", mean = 0.06 }
inpatient.severity = { distribution = "lognormal", mean = 25000, cv = 1.5 }
specialty_drug.need_rate = 0.0005
specialty_drug.cost = { distribution = "gamma", mean = 150000, cv = 0.8 }

[[groups]]
id = "old"
members = 8000
take_up = 0.4
take_up_elasticity = 0.5
inpatient.frequency = { distribution = "poisson", mean = 0.3 }
inpatient.severity = { distribution = "lognormal", mean = 30000, cv = 1.5 }
specialty_drug.need_rate = 0.003
specialty_drug.cost = { distribution = "gamma", mean = 150000, cv = 0.8 }

[[groups]]
id = "old-cancer"
members = 1000
preexisting = true
take_up = 0.6
take_up_elasticity = 0.1
inpatient.frequency = { distribution = "negative_binomial", mean = 0.6, variance = 1.2 }
inpatient.severity = { distribution = "pareto", alpha = 2.5, theta = 30000 }
specialty_drug.need_rate = 0.01
specialty_drug.cost = { distribution = "lognormal", mean = 140000, cv = 0.8 }

[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
"#;

const EXTRAS: &str = r#"
[[risk_factors]]
id = "morbidity_trend"
applies_to = ["inpatient.frequency"]
distribution = { distribution = "gamma", mean = 1.0, cv = 0.10 }

[sweep]
simulations = 1000
inpatient.deductible = [10000, 20000]
inpatient.coinsurance = [0.7, 0.8]

[adverse_selection]
max_premium = 2000
renewal_years = 4
"#;

fn full() -> PricingResults {
    run(&scenario(&format!(
        "name = \"full\"\nseed = 3\nsimulations = 2000\n{GROUPS}{EXTRAS}"
    )))
}

fn plain(method: &str) -> PricingResults {
    run(&scenario(&format!(
        "name = \"plain\"\nseed = 3\nsimulations = 20000\nmethod = \"{method}\"\n{GROUPS}"
    )))
}

/// The text of the section with this id.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = page[start..].find("</section>").expect("section closed") + start;
    &page[start..end]
}

/// No URL but the SVG namespace, no script, every `<svg>` closed.
fn assert_self_contained(page: &str) {
    let stripped = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !stripped.contains("http://") && !stripped.contains("https://"),
        "a URL in the page"
    );
    assert!(!page.to_lowercase().contains("<script"), "a script");
    assert!(!page.contains("<link"), "a linked resource");
    assert_eq!(
        page.matches("<svg").count(),
        page.matches("</svg>").count(),
        "an <svg> left open"
    );
    assert!(page.trim_end().ends_with("</html>"));
}

#[test]
fn the_page_of_a_scenario_with_factors_a_sweep_and_adverse_selection_has_every_chart() {
    let r = full();
    assert!(r.risk_factors.is_some() && r.sweep.is_some() && r.adverse_selection.is_some());
    let page = pricing_report(&r);
    assert_self_contained(&page);
    for (id, title) in SECTIONS {
        let s = section(&page, id);
        assert!(s.contains(&format!("<h2>{title}</h2>")), "{id}: no title");
        assert!(s.contains("<svg") && s.contains("</svg>"), "{id}: no chart");
        assert!(!s.contains("class=\"na\""), "{id}: said not to apply");
        // Labels are SVG text, laid out without a font library.
        assert!(s.contains("<text"), "{id}: no text in the chart");
    }
    // Chart titles, as drawn.
    for caption in [
        "Density of the annual portfolio total",
        "Exceedance curve",
        "P(loss ratio &gt; 100%)",
        "Cross-subsidy by group under the flat premium",
        "morbidity_trend",
        "Sweep: flat premium per member",
        "Adverse selection over renewal years",
    ] {
        assert!(page.contains(caption), "no {caption}");
    }
    // The sweep's table has one row per sweep row, and every group has its bar's label.
    let sweep = section(&page, "sweep");
    assert_eq!(
        sweep.matches("<tr>").count(),
        1 + r.sweep.as_ref().unwrap().rows.len()
    );
    for g in ["young", "old", "old-cancer"] {
        assert!(section(&page, "cross-subsidy").contains(&format!("\n{g}\n</text>")));
    }
    // The headline figures and the run's levels.
    assert!(page.contains(&format!("{:.2}", r.premium.flat_premium_per_member)));
    for level in ["95%", "99%", "99.5%"] {
        assert!(section(&page, "density").contains(&format!("VaR {level}")));
    }
    for years in ["1 in 10 years", "1 in 100 years", "1 in 200 years"] {
        assert!(section(&page, "exceedance").contains(years), "{years}");
    }
}

#[test]
fn the_page_of_a_plain_scenario_says_which_sections_do_not_apply() {
    let r = plain("exact");
    let page = pricing_report(&r);
    assert_self_contained(&page);
    for id in ["density", "exceedance", "loss-ratio", "cross-subsidy"] {
        assert!(section(&page, id).contains("<svg"), "{id}");
    }
    for (id, why) in [
        ("risk-factors", "the scenario has no risk factors"),
        ("sweep", "the scenario has no sweep"),
        (
            "adverse-selection",
            "the scenario does not analyse adverse selection",
        ),
    ] {
        let s = section(&page, id);
        assert!(!s.contains("<svg"), "{id}: an empty chart");
        assert!(s.contains(why), "{id}: {s}");
    }
    // Results stored before the distribution was carried still make a page.
    let mut old = r.clone();
    old.distribution = None;
    let page = pricing_report(&old);
    assert_self_contained(&page);
    assert!(section(&page, "density").contains("stored without the distribution"));
}

/// The stored distribution agrees with the figures reported beside it, for both methods.
fn check_distribution(r: &PricingResults) {
    let d = r.distribution.as_ref().expect("a distribution");
    assert_eq!(d.probabilities.len(), d.quantiles.len());
    assert!(d.probabilities.len() <= 400 && d.density.len() <= 120);
    assert!(d.probabilities.windows(2).all(|w| w[0] < w[1]));
    assert!(d.quantiles.windows(2).all(|w| w[0] <= w[1]));
    for (level, var) in &r.portfolio.var {
        let p: f64 = level.parse().unwrap();
        let k = d
            .probabilities
            .iter()
            .position(|x| (x - p).abs() < 1e-12)
            .unwrap_or_else(|| panic!("level {level} not on the grid"));
        assert_eq!(
            d.quantiles[k], *var,
            "{}: quantile at {level}",
            r.method.name
        );
    }
    for t in [10.0, 100.0, 200.0] {
        let p = 1.0 - 1.0 / t;
        assert!(
            d.probabilities.iter().any(|x| (x - p).abs() < 1e-9),
            "1 in {t}"
        );
    }
    let inside: f64 = d.density.iter().map(|y| y * d.density_width).sum();
    assert!(
        (inside + d.density_mass_outside - 1.0).abs() < 1e-6,
        "{}: mass {inside} + {}",
        r.method.name,
        d.density_mass_outside
    );
    // Only the far tails lie outside the bins.
    assert!(d.density_mass_outside < 0.01, "{}", d.density_mass_outside);
    // The bins' mean is the total's mean: one bin out of place would move it by ~0.05 std.
    let binned_mean: f64 = d
        .density
        .iter()
        .enumerate()
        .map(|(k, y)| y * d.density_width * (d.density_start + (k as f64 + 0.5) * d.density_width))
        .sum::<f64>()
        / inside;
    assert!(
        (binned_mean - r.portfolio.mean).abs() < 0.02 * r.portfolio.std,
        "{}: binned mean {binned_mean}, mean {} (std {})",
        r.method.name,
        r.portfolio.mean,
        r.portfolio.std
    );
    // Stored as JSON and read back, the results (and so the page) are the same.
    let back: PricingResults = serde_json::from_str(&r.to_json_pretty().unwrap()).unwrap();
    assert_eq!(&back, r);
    assert_eq!(pricing_report(&back), pricing_report(r));
}

#[test]
fn the_stored_distribution_matches_the_reported_figures() {
    let exact = plain("exact");
    let mc = plain("monte_carlo");
    assert_eq!(exact.method.name, "exact");
    assert_eq!(mc.method.name, "monte_carlo");
    check_distribution(&exact);
    check_distribution(&mc);
    check_distribution(&full());
    // The two methods' medians agree within the Monte Carlo error of a median:
    // sqrt(p (1 - p) / n) / density at the median, taken here as 3 std / sqrt(n).
    let median = |r: &PricingResults| {
        let d = r.distribution.as_ref().unwrap();
        let k = d.probabilities.iter().position(|p| *p == 0.5).unwrap();
        d.quantiles[k]
    };
    let tolerance = 5.0 * 3.0 * exact.portfolio.std / (mc.simulations as f64).sqrt();
    assert!(
        (median(&exact) - median(&mc)).abs() < tolerance,
        "medians {} and {} differ by more than {tolerance}",
        median(&exact),
        median(&mc)
    );
}

/// The page carries the text report's tables too: the loss ratio at the stated premium, the
/// total by benefit and the percentiles, with the figures of the results.
#[test]
fn the_page_has_the_percentiles_the_benefit_split_and_the_stated_premium() {
    let r = run(&scenario(&format!(
        "name = \"stated\"\nseed = 3\nsimulations = 20000\nmethod = \"exact\"\n{}",
        GROUPS.replace("level = 0.995", "level = 0.995\npremium = 300")
    )));
    let page = pricing_report(&r);
    assert_self_contained(&page);
    let stated = r.premium.at_premium.as_ref().expect("a stated premium");
    assert!(page.contains("<h2 id=\"stated-premium\">At the stated premium</h2>"));
    assert!(page.contains(&format!(
        "<tr><td>expected loss ratio</td><td>{:.1}%</td>",
        100.0 * stated.expected_loss_ratio
    )));
    let split = r.portfolio.by_benefit.as_ref().unwrap();
    for (name, part) in [
        ("inpatient", split.inpatient.unwrap()),
        ("specialty drug", split.specialty_drug.unwrap()),
    ] {
        assert!(
            page.contains(&format!("<tr><td>{name}</td><td>{:.0}</td>", part.mean)),
            "{name}"
        );
    }
    assert!(page.contains("<th>LR at 300.00 (stated)</th>"));
    let table = &page[page.find("<h2 id=\"percentiles\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr><td>").count(), 7, "{table}");
    let median = r.portfolio.percentiles["0.5"];
    let lr = stated.loss_ratio_percentiles["0.5"];
    assert!(
        table.contains(&format!(
            "<tr><td>50.0%</td><td>{median:.0}</td><td>{:.1}%</td><td>{:.1}%</td></tr>",
            100.0
                * r.premium
                    .loss_ratio
                    .as_ref()
                    .unwrap()
                    .loss_ratio_percentiles["0.5"],
            100.0 * lr
        )),
        "{table}"
    );
}
