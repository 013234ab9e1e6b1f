//! `puhui renew` against the real binary on every backend: a product that names its pricing
//! scenario, members and claims through the API, the renewal written, priced by `puhui price`,
//! its parts summing to the change; and a basis edited after the product was loaded refused.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

const PRODUCT: &str = "e2e-renew";

/// A scenario taking its terms from the product file, on the shipped table.
const BASIS: &str = r#"
name = "e2e renewal basis"
seed = 5
simulations = 2000
[product]
file = "renew-product.toml"
[population]
table = "morbidity_default.csv"
size = 100_000
drug_cost_cv = 0.8
take_up = 0.25
[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
target_loss_ratio = 0.85
[[risk_factors]]
id = "morbidity"
applies_to = ["inpatient.frequency", "specialty_drug.need_rate"]
distribution = { distribution = "gamma", mean = 1.0, cv = 0.10 }
"#;

/// The product naming `basis.toml` as its pricing scenario, the basis and its table, in `work`.
fn write_priced_product(work: &Path) {
    let product = crate::loadkit::product_toml(PRODUCT, "50000.00", "100000.00").replacen(
        "waiting_days = 0",
        "waiting_days = 0\npricing_scenario = \"basis.toml\"",
        1,
    );
    std::fs::write(work.join("renew-product.toml"), product).unwrap();
    std::fs::write(work.join("basis.toml"), BASIS).unwrap();
    std::fs::write(
        work.join("morbidity_default.csv"),
        actuarial::table::DEFAULT_TABLE_CSV,
    )
    .unwrap();
}

/// `puhui` run in `dir`, where the product's relative `pricing_scenario` resolves.
fn puhui_in(dir: &Path, server: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", &server.database_url)
        .env("PUHUI_KEY_FILE", &server.key_file)
        .env_remove("PUHUI_MASTER_KEY")
        .output()
        .expect("run puhui")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn enrol(server: &Server, serial: u32, declared: &[&str]) -> i64 {
    let (status, body) = server.post(
        "/v1/enrollments",
        None,
        Some(&format!("renew-enrol-{serial}")),
        &serde_json::json!({
            "product_id": PRODUCT,
            "resident_id": resident_id(serial),
            "name": "王小明",
            "phone": "13912345678",
            "insurance_type": "urban_rural_resident",
            "declared_conditions": declared,
        }),
    );
    assert_eq!(status, 201, "{}: enrol: {body}", server.backend);
    body["member"]["id"].as_i64().unwrap()
}

#[test]
fn renew_writes_a_scenario_that_prices_and_whose_parts_sum_to_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    write_priced_product(work);
    for db in databases(work) {
        let server = Server::start(&db, work, &[]);
        ok(
            &puhui_in(work, &server, &["products", "load", "renew-product.toml"]),
            "products load",
        );
        let mut members = Vec::new();
        for serial in 0..12 {
            let declared: &[&str] = if serial % 3 == 0 { &["C34.1"] } else { &[] };
            members.push(enrol(&server, 4000 + serial, declared));
        }
        for (i, member) in members.iter().enumerate().take(5) {
            let (status, claim) = server.post(
                "/v1/claims",
                Some(&server.insurer),
                Some(&format!("renew-claim-{i}")),
                &inpatient_claim(*member, "9000.00"),
            );
            assert_eq!(status, 201, "{}: {claim}", server.backend);
        }
        let today = today().to_string();
        let out = work.join(format!("renewal-{}.toml", server.backend));
        let json = work.join(format!("renewal-{}.json", server.backend));
        let html = work.join(format!("renewal-{}.html", server.backend));
        let printed = ok(
            &puhui_in(
                work,
                &server,
                &[
                    "renew",
                    "--product",
                    PRODUCT,
                    "--as-of",
                    &today,
                    "--out",
                    out.to_str().unwrap(),
                    "--json",
                    json.to_str().unwrap(),
                    "--renewal-rate",
                    "0.5",
                    "--margin",
                    "0.02",
                    "--html",
                    html.to_str().unwrap(),
                ],
            ),
            "renew",
        );
        assert!(printed.contains("recommended flat premium"), "{printed}");
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("Recommended flat premium") && page.ends_with("</html>"));
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let d = &report["decomposition"];
        let part = |k: &str| d[k].as_f64().unwrap();
        let sum = part("experience") + part("mix_and_selection") + part("trend") + part("margin");
        assert!(
            (sum - part("total_change")).abs() < 1e-6,
            "{}: {d}",
            server.backend
        );
        assert!((part("premium_now") - 99.0).abs() < 1e-9, "{d}");
        assert!((part("recommended") - part("premium_now") - part("total_change")).abs() < 1e-6);
        // Next year's pool: half of this year's 12 members, rounded per group.
        let groups = report["credibility"]["groups"].as_array().unwrap();
        let now: u64 = groups.iter().map(|g| g["members"].as_u64().unwrap()).sum();
        assert_eq!(now, 12, "{report}");
        let paid: f64 = groups.iter().map(|g| g["ultimate"].as_f64().unwrap()).sum();
        assert!(paid > 0.0, "{report}");

        // The written scenario and its table load and price with `puhui price`.
        let table = work.join(format!("renewal-{}-morbidity.csv", server.backend));
        assert!(table.exists());
        let results = work.join(format!("renewal-{}-priced.json", server.backend));
        ok(
            &puhui_in(
                work,
                &server,
                &[
                    "price",
                    out.to_str().unwrap(),
                    "--json",
                    results.to_str().unwrap(),
                ],
            ),
            "price",
        );
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
        // The same file, the same seed: the premium renew reported for it.
        let flat = results["premium"]["flat_premium_per_member"]
            .as_f64()
            .unwrap();
        let reported = report["steps"]["with_uncertainty"].as_f64().unwrap();
        assert!(
            (flat - reported).abs() < 1e-9 * reported.abs().max(1.0),
            "{flat} {reported}"
        );
        assert_eq!(results["members"].as_u64(), Some(next_members(groups)));
    }
}

#[test]
fn renew_refuses_a_basis_that_changed_after_the_product_was_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    write_priced_product(work);
    let db = databases(work).remove(0);
    let server = Server::start(&db, work, &[]);
    ok(
        &puhui_in(work, &server, &["products", "load", "renew-product.toml"]),
        "products load",
    );
    std::fs::write(
        work.join("basis.toml"),
        BASIS.replace("seed = 5", "seed = 6"),
    )
    .unwrap();
    let today = today().to_string();
    for args in [
        vec!["experience", "--product", PRODUCT, "--as-of", &today],
        vec![
            "renew",
            "--product",
            PRODUCT,
            "--as-of",
            &today,
            "--out",
            "r.toml",
        ],
    ] {
        let out = puhui_in(work, &server, &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("basis.toml") && stderr.contains("has changed"),
            "{args:?}: {stderr}"
        );
    }
    let (status, body) = server.get(
        &format!("/v1/products/{PRODUCT}/experience?as_of={today}"),
        Some(&server.insurer),
    );
    assert_eq!(status, 409, "{body}");
    assert!(!work.join("r.toml").exists());
}

fn next_members(groups: &[Value]) -> u64 {
    groups
        .iter()
        .map(|g| g["next_members"].as_u64().unwrap())
        .sum()
}
