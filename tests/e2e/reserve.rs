//! `puhui reserve` on the shipped RAA triangle: the printed table, the JSON contract and the
//! error for a bad triangle.

use std::process::Command;

use serde_json::Value;

use crate::support::BIN;

const RAA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/raa.csv");
const RAA_PREMIUM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/examples/raa-premium.csv"
);

#[test]
fn reserve_prints_the_table_and_writes_macks_totals_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("raa.json");
    let out = Command::new(BIN)
        .args(["reserve", RAA, "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Mack's published total standard error on RAA.
    assert!(stdout.contains("26,909"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!((v["mack_se_total"].as_f64().unwrap() - 26_909.01).abs() < 0.01);
    assert!((v["ibnr_total"].as_f64().unwrap() - 52_135.23).abs() < 0.01);
    assert!((v["ultimate_total"].as_f64().unwrap() - 213_122.23).abs() < 0.01);
    assert_eq!(v["ldf"].as_array().unwrap().len(), 9);
    let last = &v["origins"][9];
    assert_eq!(last["origin"], "1990");
    assert_eq!(last["latest"], 2063.0);
    assert!((last["mack_se"].as_f64().unwrap() - 24_566.29).abs() < 0.01);
}

#[test]
fn reserve_by_bornhuetter_ferguson() {
    let out = Command::new(BIN)
        .args([
            "reserve",
            RAA,
            "--method",
            "bf",
            "--expected-loss-ratio",
            "0.85",
            "--premium",
            RAA_PREMIUM,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 49,535.4: the BF total of the unit tests (python chainladder).
    assert!(stdout.contains("49,535"), "{stdout}");

    let out = Command::new(BIN)
        .args(["reserve", RAA, "--method", "bf", "--premium", RAA_PREMIUM])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expected-loss-ratio"));
}

#[test]
fn a_bad_triangle_is_refused_naming_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holes.csv");
    std::fs::write(
        &path,
        "origin,development,incremental\n2026-07,1,100\n2026-07,3,50\n2026-08,1,90\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["reserve", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("origin 2026-07 has no development 2"),
        "{stderr}"
    );
}
