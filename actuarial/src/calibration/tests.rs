//! The calibration figures against an independent Monte Carlo: member-years drawn straight from
//! the scenario's laws (Poisson admissions with lognormal costs, Bernoulli drug need with a
//! lognormal cost) with `rand_distr`, not through the engine. Tolerance: 5 standard errors of
//! that simulation (the project's policy; the exact figures' discretisation error is orders of
//! magnitude below the SE).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

use super::*;
use crate::member::PayoutTerms;
use crate::{NoTables, RunOptions, Scenario, price};

const SCENARIO: &str = r#"
name = "calibration check"
seed = 7
simulations = 1000
method = "exact"

[benefits.inpatient]
deductible = 5000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 200000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 1000000

[[groups]]
id = "65-74/M/preexisting"
members = 3000
preexisting = true
inpatient.frequency = { distribution = "poisson", mean = 0.4 }
inpatient.severity = { distribution = "lognormal", mean = 8000, cv = 1.8 }
specialty_drug.need_rate = 0.01
specialty_drug.cost = { distribution = "lognormal", mean = 100000, cv = 0.8 }

[[groups]]
id = "18-39/F/standard"
members = 7000
preexisting = false
inpatient.frequency = { distribution = "poisson", mean = 0.1 }
inpatient.severity = { distribution = "lognormal", mean = 3000, cv = 1.5 }
specialty_drug.need_rate = 0.001
specialty_drug.cost = { distribution = "lognormal", mean = 150000, cv = 0.8 }

[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

/// One group's laws, as the scenario states them.
struct Law {
    members: f64,
    preexisting: bool,
    aged_65_plus: bool,
    admissions: f64,
    admission_cost: (f64, f64),
    need: f64,
    drug_cost: (f64, f64),
    inpatient: PayoutTerms,
    drug: PayoutTerms,
}

fn lognormal(mean: f64, cv: f64) -> LogNormal<f64> {
    let s2 = (1.0 + cv * cv).ln();
    LogNormal::new(mean.ln() - s2 / 2.0, s2.sqrt()).unwrap()
}

fn laws() -> [Law; 2] {
    let terms = |deductible, coinsurance, annual_limit| PayoutTerms {
        deductible,
        coinsurance,
        annual_limit,
    };
    [
        Law {
            members: 3000.0,
            preexisting: true,
            aged_65_plus: true,
            admissions: 0.4,
            admission_cost: (8000.0, 1.8),
            need: 0.01,
            drug_cost: (100_000.0, 0.8),
            inpatient: terms(5000.0, 0.5, 200_000.0),
            drug: terms(0.0, 0.3, 1_000_000.0),
        },
        Law {
            members: 7000.0,
            preexisting: false,
            aged_65_plus: false,
            admissions: 0.1,
            admission_cost: (3000.0, 1.5),
            need: 0.001,
            drug_cost: (150_000.0, 0.8),
            inpatient: terms(5000.0, 0.8, 200_000.0),
            drug: terms(0.0, 0.7, 1_000_000.0),
        },
    ]
}

/// Member-year payouts of one group, drawn directly.
fn draw(law: &Law, years: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let admissions = Poisson::new(law.admissions).unwrap();
    let cost = lognormal(law.admission_cost.0, law.admission_cost.1);
    let drug_cost = lognormal(law.drug_cost.0, law.drug_cost.1);
    (0..years)
        .map(|_| {
            let n = admissions.sample(rng) as usize;
            let annual: f64 = (0..n).map(|_| cost.sample(rng)).sum();
            let drug = if rng.random::<f64>() < law.need {
                law.drug.payout(drug_cost.sample(rng))
            } else {
                0.0
            };
            law.inpatient.payout(annual) + drug
        })
        .collect()
}

/// A ratio of member-weighted means, sum_g w_g E[a_g] / sum_g w_g E[b_g], with its standard
/// error by the delta method (each group's draws are independent of the others').
fn ratio(samples: &[(f64, Vec<(f64, f64)>)]) -> (f64, f64) {
    let mean =
        |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let num: f64 = samples.iter().map(|(w, v)| w * mean(v, |x| x.0)).sum();
    let den: f64 = samples.iter().map(|(w, v)| w * mean(v, |x| x.1)).sum();
    let r = num / den;
    let var: f64 = samples
        .iter()
        .map(|(w, v)| {
            let z: Vec<f64> = v.iter().map(|(a, b)| a - r * b).collect();
            let m = z.iter().sum::<f64>() / z.len() as f64;
            let s2 = z.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (z.len() - 1) as f64;
            w * w * s2 / z.len() as f64
        })
        .sum();
    (r, var.sqrt() / den)
}

fn within(what: &str, model: f64, (estimate, se): (f64, f64)) {
    assert!(
        (model - estimate).abs() <= 5.0 * se,
        "{what}: model {model}, independent Monte Carlo {estimate} +- {se}"
    );
}

#[test]
fn calibration_figures_match_an_independent_monte_carlo() {
    let s = Scenario::from_toml_str(SCENARIO, "calibration.toml", &NoTables).unwrap();
    let r = price(&s, &RunOptions::default()).unwrap();
    let m = model_aggregates(&r);

    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let years = 400_000;
    let laws = laws();
    let total: f64 = laws.iter().map(|l| l.members).sum();
    let draws: Vec<(&Law, Vec<f64>)> = laws.iter().map(|l| (l, draw(l, years, &mut rng))).collect();
    let pairs = |f: &dyn Fn(&Law, f64) -> (f64, f64)| -> Vec<(f64, Vec<(f64, f64)>)> {
        draws
            .iter()
            .map(|(l, ys)| (l.members / total, ys.iter().map(|&y| f(l, y)).collect()))
            .collect()
    };
    let claimant = |y: f64| f64::from(u8::from(y > 0.0));
    within(
        "claimants per member",
        m.claimants_per_member,
        ratio(&pairs(&|_, y| (claimant(y), 1.0))),
    );
    within(
        "paid per member",
        m.paid_per_member,
        ratio(&pairs(&|_, y| (y, 1.0))),
    );
    within(
        "paid per claimant",
        m.paid_per_claimant,
        ratio(&pairs(&|_, y| (y, claimant(y)))),
    );
    within(
        "pre-existing share of claimants",
        m.preexisting_share_of_claimants,
        ratio(&pairs(&|l, y| {
            (
                claimant(y) * f64::from(u8::from(l.preexisting)),
                claimant(y),
            )
        })),
    );
    within(
        "65+ share of claimants",
        m.aged_65_plus_share_of_claimants.unwrap(),
        ratio(&pairs(&|l, y| {
            (
                claimant(y) * f64::from(u8::from(l.aged_65_plus)),
                claimant(y),
            )
        })),
    );
    assert_eq!(m.members, 10_000);
    assert_eq!(m.expected_loss_ratio, r.premium.expected_loss_ratio);
}

#[test]
fn published_figures_are_derived_from_the_counts() {
    let s = Scenario::from_toml_str(SCENARIO, "calibration.toml", &NoTables).unwrap();
    let r = price(&s, &RunOptions::default()).unwrap();
    let c = compare(&r, &published::shipped().unwrap());
    let row = |q: &str| c.rows.iter().find(|row| row.quantity == q).unwrap();
    let value = |q: &str, product: &str| {
        row(q)
            .published
            .iter()
            .find(|v| v.product == product)
            .map(|v| v.value)
    };
    // Xiamen: 20,000 / 1.04 M claimants, 50 M / 20,000 per claimant, 50 M / (1.04 M x 129).
    assert_eq!(
        value("claimants_per_member", "xiamen-2022"),
        Some(20_000.0 / 1_040_000.0)
    );
    assert_eq!(value("paid_per_claimant", "xiamen-2022"), Some(2_500.0));
    assert_eq!(
        value("loss_ratio", "xiamen-2022"),
        Some(50e6 / (1_040_000.0 * 129.0))
    );
    assert_eq!(
        value("preexisting_share_of_claimants", "xiamen-2022"),
        Some(0.5812)
    );
    assert_eq!(
        value("aged_65_plus_share_of_claimants", "xiamen-2022"),
        None
    );
    // Shanghai publishes claims, not claimants: the basis says which bound it is.
    let shanghai = "shanghai-huhuibao-2021";
    assert_eq!(
        value("claimants_per_member", shanghai),
        Some(216_800.0 / 7_390_000.0)
    );
    assert_eq!(
        value("paid_per_claimant", shanghai),
        Some(750e6 / 212_600.0)
    );
    assert_eq!(value("loss_ratio", shanghai), Some(750.0 / 850.0));
    assert!(
        row("claimants_per_member").published[1]
            .basis
            .contains("from above")
    );
    assert_eq!(
        row("claimants_per_member").model,
        Some(c.model.claimants_per_member)
    );
    assert_eq!(c.rows.len(), QUANTITIES.len());
}

#[test]
fn age_bands_are_read_from_table_group_ids() {
    assert_eq!(age_band_start("65-74/M/standard"), Some(65));
    assert_eq!(age_band_start("85+/F/preexisting"), Some(85));
    assert_eq!(age_band_start("0-17/F/standard"), Some(0));
    assert_eq!(age_band_start("young"), None);
    assert_eq!(age_band_start("old-timers"), None);
}

#[test]
fn the_report_and_the_page_carry_the_comparison() {
    let s = Scenario::from_toml_str(SCENARIO, "calibration.toml", &NoTables).unwrap();
    let mut r = price(&s, &RunOptions::default()).unwrap();
    let products = published::shipped().unwrap();
    let c = compare(&r, &products);
    let claimants = format!("{:.2}%", 100.0 * c.model.claimants_per_member);
    assert!(!crate::render_report(&r).contains("Calibration"));
    r.calibration = Some(c);
    let text = crate::render_report(&r);
    assert!(text.contains("Calibration: the model beside published aggregates"));
    assert!(text.contains(&claimants) && text.contains("1.92%") && text.contains("2,500"));
    let page = crate::html::pricing_report(&r);
    let start = page.find("<section id=\"calibration\">").unwrap();
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(section.contains(&format!("<td>{claimants}</td>")));
    assert!(section.contains("Xiamen 惠厦保 2022") && section.contains("58.12%"));
    for p in &products {
        for source in &p.sources {
            assert!(section.contains(&crate::html::escape(source)), "{source}");
        }
    }
    // The JSON round-trips with the section, and results stored before it still read.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["calibration"]["rows"].as_array().unwrap().len(),
        QUANTITIES.len()
    );
    let back: PricingResults = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, r);
    let mut old = json;
    old.as_object_mut().unwrap().remove("calibration");
    let back: PricingResults = serde_json::from_value(old).unwrap();
    assert!(back.calibration.is_none());
}
