//! The FHIR R4 resources of claims and cover: the role rules of the native
//! endpoints, no personal data, and every resource valid for a FHIR
//! validator (the `fhir.resources` R4B models, run by `tests/fhir/validate.py`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

/// The Python with `fhir.resources` installed: `PUHUI_FHIR_PYTHON`, or the
/// virtual environment `.ci/run` makes.
fn validator_python() -> Option<PathBuf> {
    let candidates = std::env::var_os("PUHUI_FHIR_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/ci-venv/bin/python"
        ))]);
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import fhir.resources.R4B"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn get_fhir(server: &Server, path: &str, token: &str) -> (u16, String, Value) {
    let (status, content_type, body) = server.get_text(path, Some(token));
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, content_type, value)
}

#[test]
fn claims_and_cover_as_fhir_resources_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let backend = server.backend;
        let (member, own) = server.enrol(21, &["C34.1"]);
        let (_, other) = server.enrol(22, &[]);
        // A drug claim with a paid and a denied item, appealed; an inpatient
        // claim, reversed.
        let mut drug = drug_claim(member, 30, true);
        drug["items"].as_array_mut().unwrap().push(
            json!({"drug": "L01EB04", "quantity": 10, "unit_price": "510.00", "basic_paid": "0",
                         "biomarkers": [{"marker": "EGFR", "positive": false}]}),
        );
        let (status, decided) = server.post("/v1/claims", Some(&own), Some("f-1"), &drug);
        assert_eq!(status, 201, "{backend}: {decided}");
        let drug_id = decided["id"].as_i64().unwrap();
        let (status, appealed) = server.post(
            &format!("/v1/claims/{drug_id}/appeal"),
            Some(&own),
            Some("f-2"),
            &json!({"items": [{"index": 1, "biomarkers": [{"marker": "EGFR", "positive": true}]}]}),
        );
        assert_eq!(status, 201, "{backend}: {appealed}");
        let (status, stay) = server.post(
            "/v1/claims",
            Some(&server.insurer),
            Some("f-3"),
            &inpatient_claim(member, "60000.00"),
        );
        assert_eq!(status, 201, "{backend}: {stay}");
        let stay_id = stay["id"].as_i64().unwrap();
        let (status, reversed) = server.post(
            &format!("/v1/claims/{stay_id}/reversal"),
            Some(&server.insurer),
            Some("f-4"),
            &json!({"reason": "billed twice"}),
        );
        assert_eq!(status, 201, "{backend}: {reversed}");

        let paths = [
            format!("/fhir/Claim/{drug_id}"),
            format!("/fhir/ClaimResponse/{drug_id}"),
            format!("/fhir/ExplanationOfBenefit/{drug_id}"),
            format!("/fhir/Claim/{stay_id}"),
            format!("/fhir/ClaimResponse/{stay_id}"),
            format!("/fhir/ExplanationOfBenefit/{stay_id}"),
            format!("/fhir/Coverage/{member}"),
            format!("/fhir/ExplanationOfBenefit?patient={member}"),
            format!("/fhir/ExplanationOfBenefit?patient=Patient/{member}"),
        ];
        let mut resources = Vec::new();
        for path in &paths {
            for token in [&own, &server.insurer, &server.auditor] {
                let (status, content_type, body) = get_fhir(&server, path, token);
                assert_eq!(status, 200, "{backend} {path}: {body}");
                assert!(
                    content_type.starts_with("application/fhir+json"),
                    "{content_type}"
                );
                let text = body.to_string();
                assert!(!text.contains(&resident_id(21)), "{path}: the resident ID");
                assert!(!text.contains("王小明"), "{path}: the name");
                if token == &own {
                    resources.push((path.clone(), body));
                }
            }
            // Another enrollee may not read it; nobody without a token.
            let (status, _, _) = get_fhir(&server, path, &other);
            assert_eq!(status, 403, "{backend} {path}");
            assert_eq!(server.get(path, None).0, 401, "{backend} {path}");
        }

        let eob = &resources[2].1;
        assert_eq!(eob["resourceType"], "ExplanationOfBenefit");
        assert_eq!(
            eob["related"][0]["relationship"]["coding"][0]["code"],
            "prior"
        );
        let stay_eob = &resources[5].1;
        assert_eq!(stay_eob["status"], "cancelled", "{stay_eob}");
        assert_eq!(
            stay_eob["item"][0]["productOrService"]["coding"][0]["code"],
            "inpatient-stay"
        );
        let bundle = &resources[7].1;
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 2, "{bundle}");
        assert_eq!(resources[6].1["resourceType"], "Coverage");

        let Some(python) = validator_python() else {
            eprintln!(
                "notice: no Python with fhir.resources (set PUHUI_FHIR_PYTHON, or run .ci/run); \
                 the FHIR validation is skipped"
            );
            continue;
        };
        let mut files = Vec::new();
        for (index, (_, resource)) in resources.iter().enumerate() {
            let file = dir.path().join(format!("{backend}-{index}.json"));
            std::fs::write(&file, resource.to_string()).unwrap();
            files.push(file);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fhir/validate.py");
        let out = Command::new(&python)
            .arg(script)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: FHIR validation failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
