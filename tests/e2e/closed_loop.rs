//! The closed loop, end to end on every backend: a product priced on a known morbidity model,
//! a policy year drawn from a "true" model in which the elderly are admitted to hospital 20%
//! more often than the price assumed, its members enrolled and its claims submitted through the
//! real server month by month (`puhui simulate`), then the experience study and the renewal
//! at a date nine months in, and the study again once every claim is in.
//!
//! Checked, with bounds from the reported or derived standard errors:
//! - the admissions per member-year of each group recover the true model (a chi-square over
//!   the groups below its 99.9% point), and the elderly's recover the true 1.2 x the basis;
//! - the chain ladder ultimate of the partial year covers the year-end total of the same
//!   service months within 2 Mack standard errors;
//! - the renewal moves each group's admission rate toward the truth by its credibility factor:
//!   sum over groups of w (blended A/E - 1) against sum of w Z (true A/E - 1), w the blend's
//!   weight (expected admissions reported by the date), within 3 standard errors of the
//!   observed A/Es (Buhlmann-Straub: variance sigma^2 / w), over every group and over the elderly alone, each group's estimate being the
//!   blend 1 + Z (A/E - 1); the elderly's completed A/E, pooled, within 3 standard errors of the
//!   true 1.2; and the move earned is real: the between-group variance is estimated positive,
//!   the elderly's expected move is more than 3 of its standard errors, and the premium's
//!   experience part is an increase.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

const PRODUCT: &str = "e2e-loop";
const MEMBERS: &str = "40000";
/// The truth: hospital admissions of members 65 and over, relative to the priced table.
const ELDERLY_MORBIDITY: f64 = 1.2;
const ELDERLY: [&str; 3] = ["65-74", "75-84", "85+"];
/// The product's annual limits (inpatient, specialty drugs): low, so that a year of 40,000
/// members measures the elderly's difference in many standard errors (the drugs' costs,
/// which the truth does not change, would otherwise drown it).
const LIMITS: (&str, &str) = ("100000.00", "1000.00");

/// The pricing basis, on the shipped table; the truth is the same with another table.
const BASIS: &str = r#"
name = "e2e loop basis"
seed = 11
simulations = 2000
[product]
file = "loop-product.toml"
[population]
table = "TABLE"
size = 100_000
drug_cost_cv = 0.8
take_up = 0.25
[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
target_loss_ratio = 0.85
"#;

fn puhui_in(work: &Path, db: &Database, key: &Path, args: &[&str]) -> String {
    let out: Output = Command::new(BIN)
        .args(args)
        .current_dir(work)
        .env("DATABASE_URL", &db.url)
        .env("PUHUI_KEY_FILE", key)
        .env("RUST_LOG", "warn")
        .env_remove("PUHUI_MASTER_KEY")
        .output()
        .expect("run puhui");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        db.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The shipped table with the elderly's admission rates scaled; returns it and the true
/// admission rate of every group.
fn truth_table() -> (String, BTreeMap<String, f64>) {
    let mut rates = BTreeMap::new();
    let mut lines = actuarial::table::DEFAULT_TABLE_CSV.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let (band, sex, condition, rate) = (
        at("age_band"),
        at("sex"),
        at("condition_group"),
        at("annual_hospitalization_rate"),
    );
    let mut out = vec![header.to_string()];
    for line in lines.filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        let mut r: f64 = cells[rate].parse().unwrap();
        if ELDERLY.contains(&cells[band].as_str()) {
            r *= ELDERLY_MORBIDITY;
            cells[rate] = format!("{r:.6}");
        }
        rates.insert(
            format!("{}/{}/{}", cells[band], cells[sex], cells[condition]),
            r,
        );
        out.push(cells.join(","));
    }
    (out.join("\n") + "\n", rates)
}

fn last_of_month(date: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike;
    let first = date.with_day(1).unwrap();
    first.checked_add_months(chrono::Months::new(1)).unwrap() - chrono::Duration::days(1)
}

#[test]
fn a_year_through_the_server_is_recovered_by_the_study_and_moves_the_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let product = crate::loadkit::product_toml(PRODUCT, LIMITS.0, LIMITS.1).replacen(
        "waiting_days = 0",
        "waiting_days = 0\npricing_scenario = \"basis.toml\"",
        1,
    );
    std::fs::write(work.join("loop-product.toml"), &product).unwrap();
    std::fs::write(
        work.join("morbidity_default.csv"),
        actuarial::table::DEFAULT_TABLE_CSV,
    )
    .unwrap();
    let (table, true_rates) = truth_table();
    std::fs::write(work.join("truth-morbidity.csv"), table).unwrap();
    std::fs::write(
        work.join("basis.toml"),
        BASIS.replace("TABLE", "morbidity_default.csv"),
    )
    .unwrap();
    std::fs::write(
        work.join("truth.toml"),
        BASIS.replace("TABLE", "truth-morbidity.csv"),
    )
    .unwrap();
    let period_start = crate::loadkit::today() - chrono::Duration::days(30);
    let as_of = last_of_month(
        period_start
            .checked_add_months(chrono::Months::new(8))
            .unwrap(),
    );

    for db in databases(work) {
        let key = work.join(format!("{}.key", db.name));
        puhui_in(work, &db, &key, &["products", "load", "loop-product.toml"]);
        let simulated = work.join(format!("simulated-{}.json", db.name));
        puhui_in(
            work,
            &db,
            &key,
            &[
                "simulate",
                "--product",
                PRODUCT,
                "--no-demo",
                "--members",
                MEMBERS,
                "--seed",
                "7",
                "--truth",
                "truth.toml",
                "--json",
                simulated.to_str().unwrap(),
            ],
        );
        let simulated = json_file(&simulated);
        assert_eq!(
            simulated["claims_submitted"], simulated["claims_drawn"],
            "{}",
            db.name
        );
        let year_end = simulated["months"].as_array().unwrap().last().unwrap()["server_date"]
            .as_str()
            .unwrap()
            .to_string();

        let study = |date: &str| -> Value {
            let out = puhui_in(
                work,
                &db,
                &key,
                &[
                    "experience",
                    "--product",
                    PRODUCT,
                    "--as-of",
                    date,
                    "--json",
                ],
            );
            serde_json::from_str(&out).unwrap()
        };
        let mid = study(&as_of.to_string());
        let end = study(&year_end);

        // 1. Admissions per member-year against the true model, from the year-end study.
        let member_years: BTreeMap<&str, f64> = end["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["group"].as_str().unwrap(),
                    g["member_years"].as_f64().unwrap(),
                )
            })
            .collect();
        let admissions: BTreeMap<&str, f64> = end["claims"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["benefit"] == "inpatient")
            .map(|c| (c["group"].as_str().unwrap(), c["claims"].as_f64().unwrap()))
            .collect();
        let (mut chi_square, mut groups) = (0.0, 0);
        let (mut elderly_seen, mut elderly_true, mut elderly_priced) = (0.0, 0.0, 0.0);
        for (group, years) in &member_years {
            let expected = years * true_rates[*group];
            let seen = admissions.get(group).copied().unwrap_or(0.0);
            chi_square += (seen - expected).powi(2) / expected;
            groups += 1;
            if ELDERLY
                .iter()
                .any(|band| group.starts_with(&format!("{band}/")))
            {
                elderly_seen += seen;
                elderly_true += expected;
                elderly_priced += expected / ELDERLY_MORBIDITY;
            }
        }
        // The chi-square distribution's 99.9% point for 28 degrees of freedom is 56.89.
        assert_eq!(groups, 28, "{}", db.name);
        assert!(chi_square < 56.89, "{}: chi-square {chi_square}", db.name);
        let se = elderly_true.sqrt();
        assert!(
            (elderly_seen - elderly_true).abs() < 3.0 * se,
            "{}: elderly admissions {elderly_seen}, true {elderly_true}",
            db.name
        );
        // ... and the data tell the truth from the price: 20% is many standard errors.
        assert!(elderly_seen - elderly_priced > 3.0 * elderly_priced.sqrt());

        // 2. The chain ladder of the partial year covers its year-end total.
        let ladder = &mid["chain_ladder"];
        let origins: Vec<&str> = ladder["origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["origin"].as_str().unwrap())
            .collect();
        let mut latest: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for cell in end["triangle"].as_array().unwrap() {
            let entry = latest
                .entry(cell["service_month"].as_str().unwrap())
                .or_default();
            let development = cell["development"].as_u64().unwrap();
            if development >= entry.0 {
                *entry = (development, cell["cumulative"].as_f64().unwrap());
            }
        }
        let year_end_total: f64 = origins.iter().map(|o| latest[o].1).sum();
        let ultimate = ladder["ultimate_total"].as_f64().unwrap();
        let mack_se = ladder["mack_se_total"].as_f64().unwrap();
        assert!(mack_se > 0.0 && ladder["ibnr_total"].as_f64().unwrap() > 0.0);
        assert!(
            (year_end_total - ultimate).abs() <= 2.0 * mack_se,
            "{}: year-end {year_end_total}, chain ladder {ultimate} (Mack SE {mack_se})",
            db.name
        );

        // 3. The renewal at the same date moves toward the truth by the credibility earned.
        let renewal = work.join(format!("renewal-{}.json", db.name));
        let out = work.join(format!("renewal-{}.toml", db.name));
        let printed = puhui_in(
            work,
            &db,
            &key,
            &[
                "renew",
                "--product",
                PRODUCT,
                "--as-of",
                &as_of.to_string(),
                "--out",
                out.to_str().unwrap(),
                "--json",
                renewal.to_str().unwrap(),
                "--trend",
                "0",
                "--renewal-rate",
                "1",
            ],
        );
        assert!(printed.contains("recommended flat premium"), "{printed}");
        let renewal = json_file(&renewal);
        let credibility = &renewal["credibility"];
        let structure = &credibility["admissions"];
        let sigma2 = structure["within_variance"].as_f64().unwrap();
        let tau2 = structure["between_variance"].as_f64().unwrap();
        // Admission counts tell the groups apart: the between-group variance is estimated
        // positive, so the data earn credibility.
        assert!(sigma2 > 0.0 && tau2 > 0.0, "{}: {credibility}", db.name);
        let is_elderly = |id: &str| {
            ELDERLY
                .iter()
                .any(|band| id.starts_with(&format!("{band}/")))
        };
        // (moved, toward, variance) over every group, and over the elderly alone: the groups
        // whose truth differs (elsewhere the truth is the basis, and only noise moves). The
        // weights w are the blend's (the expected admissions reported by the date); the true
        // A/E is 1.2 for the elderly, else 1.
        let mut all = (0.0, 0.0, 0.0);
        let mut elderly = (0.0, 0.0, 0.0);
        let (mut weighted, mut weight) = (0.0, 0.0);
        for g in credibility["groups"].as_array().unwrap() {
            let id = g["group"].as_str().unwrap();
            let a = &g["admissions"];
            let e = a["weight"].as_f64().unwrap();
            let z = a["z"].as_f64().unwrap();
            let blended = a["blended_ae"].as_f64().unwrap();
            let true_ae = if is_elderly(id) {
                ELDERLY_MORBIDITY
            } else {
                1.0
            };
            // Each group's estimate is the credibility blend towards the basis (A/E 1).
            if let Some(observed) = a["observed_ae"].as_f64() {
                assert!((blended - (1.0 + z * (observed - 1.0))).abs() < 1e-9, "{g}");
            }
            let part = (
                e * (blended - 1.0),
                e * z * (true_ae - 1.0),
                z * z * e * sigma2,
            );
            let add = |sum: &mut (f64, f64, f64)| {
                sum.0 += part.0;
                sum.1 += part.1;
                sum.2 += part.2;
            };
            add(&mut all);
            if is_elderly(id) {
                add(&mut elderly);
                if let Some(observed) = a["observed_ae"].as_f64() {
                    weighted += e * observed;
                    weight += e;
                }
            }
        }
        // The renewal's input recovers the truth: the elderly's A/E of admissions, pooled with
        // the blend's weights, against the true 1.2 within 3 standard errors (sigma^2 / w).
        let (observed, se) = (weighted / weight, (sigma2 / weight).sqrt());
        assert!(
            (observed - ELDERLY_MORBIDITY).abs() <= 3.0 * se,
            "{}: elderly A/E {observed}, true {ELDERLY_MORBIDITY}, SE {se}",
            db.name
        );
        for (what, (moved, toward, variance)) in [("every group", all), ("the elderly", elderly)] {
            let se = variance.sqrt();
            assert!(
                (moved - toward).abs() <= 3.0 * se,
                "{}, {what}: moved {moved}, the truth by credibility {toward}, SE {se}",
                db.name
            );
        }
        // The credibility earned moves the elderly's rates by many of the move's standard
        // errors, and the premium with them: its experience part is an increase.
        let (_, toward, variance) = elderly;
        assert!(
            toward > 3.0 * variance.sqrt(),
            "{}: the truth by credibility {toward}, SE {}",
            db.name,
            variance.sqrt()
        );
        let experience = renewal["decomposition"]["experience"].as_f64().unwrap();
        assert!(
            experience > 0.0,
            "{}: {}",
            db.name,
            renewal["decomposition"]
        );
    }
}
