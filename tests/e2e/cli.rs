//! The command line: help, tokens, product loading, audit verification
//! (including a row edited directly in the database).

use std::process::Command;

use crate::support::*;

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["price", "--help"],
        vec!["migrate", "--help"],
        vec!["token", "create", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["audit", "export", "--help"],
        vec!["products", "load", "--help"],
        vec!["reserve", "--help"],
        vec!["experience", "--help"],
        vec!["morbidity", "build", "--help"],
        vec!["morbidity", "merge", "--help"],
        vec!["morbidity", "synth", "--help"],
        vec!["credibility", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn a_bad_product_file_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        product_toml("bad").replace("coinsurance = \"0.80\"", "coinsurance = \"1.80\""),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let out = puhui(
        &db,
        &dir.path().join("key"),
        &["products", "load", path.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("coinsurance"), "{stderr}");
}

#[test]
fn audit_verify_catches_a_row_edited_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db_path.display());
    let key = dir.path().join("audit.key");
    let product = dir.path().join("p.toml");
    std::fs::write(&product, product_toml("audit-city")).unwrap();
    assert!(
        puhui(&url, &key, &["products", "load", product.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        puhui(&url, &key, &["token", "create", "--role", "auditor"])
            .status
            .success()
    );
    let out = puhui(&url, &key, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let head = puhui(&url, &key, &["audit", "head"]);
    let head_file = dir.path().join("head.json");
    std::fs::write(&head_file, &head.stdout).unwrap();
    let export = puhui(&url, &key, &["audit", "export"]);
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 2);

    // Edit the first event's actor directly in the database.
    {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::SqliteConnection::establish(db_path.to_str().unwrap()).unwrap();
        diesel::sql_query("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1")
            .execute(&mut conn)
            .unwrap();
    }
    let out = puhui(
        &url,
        &key,
        &["audit", "verify", "--head", head_file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["first_broken"]["seq"], 1);
}
