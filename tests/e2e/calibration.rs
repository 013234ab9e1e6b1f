//! `puhui price --calibration`: the comparison with published aggregates in the report and the
//! JSON, and a bad file of published aggregates refused with the file and the key named.

use std::process::Command;

use crate::support::*;

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/shanghai-calibration.toml"
);

#[test]
fn calibration_sets_the_model_beside_the_published_products() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let out = Command::new(BIN)
        .args(["price", SCENARIO, "--calibration", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("Calibration: the model beside published aggregates"));
    assert!(report.contains("xiamen-2022") && report.contains("source: "));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let c = &v["calibration"];
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let row = |q: &str| rows.iter().find(|r| r["quantity"] == q).unwrap();
    // Xiamen: 20,000 claimants of 1.04 M, 50 M paid.
    let xiamen = row("paid_per_claimant")["published"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product"] == "xiamen-2022")
        .unwrap();
    assert_eq!(xiamen["value"], 2500.0);
    assert_eq!(
        row("claimants_per_member")["model"],
        c["model"]["claimants_per_member"]
    );
    assert!(
        c["products"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| { p["sources"].as_array().is_some_and(|s| !s.is_empty()) })
    );
    // Without the flag, no section.
    let plain = Command::new(BIN)
        .args(["price", SCENARIO, "--quiet"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Calibration"));
}

#[test]
fn a_bad_file_of_published_aggregates_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("published.toml");
    std::fs::write(
        &bad,
        "[[product]]\nid = \"x\"\nname = \"X\"\nperiod = \"2022\"\ninsured = 100\nclaimants = 200\n\
         paid_cny = 1000\nsources = [\"somewhere\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["price", SCENARIO, "--quiet", "--published"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("published.toml")
            && stderr.contains("claimants")
            && stderr.contains("product[0] (x)"),
        "{stderr}"
    );
}
