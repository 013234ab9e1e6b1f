//! The experience study over HTTP and on the command line, on every backend: who may read it,
//! the errors for a bad query, and the same figures from both.

use serde_json::Value;

use crate::support::*;

fn china_today() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn experience_for_insurers_and_auditors_matches_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let (member, own) = server.enrol(11, &["C34.1"]);
        server.enrol(12, &[]);
        let (status, claim) = server.post(
            "/v1/claims",
            Some(&own),
            Some("exp-1"),
            &drug_claim(member, 2, true),
        );
        assert_eq!(status, 201, "{claim}");
        let today = china_today();
        let path = format!("/v1/products/e2e-city/experience?as_of={today}");

        let (status, study) = server.get(&path, Some(&server.insurer));
        assert_eq!(status, 200, "{}: {study}", server.backend);
        assert_eq!(study["members"], 2);
        assert_eq!(study["as_of"], today.as_str());
        let paid = study["paid"].as_f64().unwrap();
        assert!(paid > 0.0, "{study}");
        let claims: Vec<Value> = study["claims"].as_array().unwrap().clone();
        assert_eq!(claims.len(), 1, "{study}");
        assert_eq!(claims[0]["benefit"], "specialty_drug");
        assert!(
            claims[0]["group"]
                .as_str()
                .unwrap()
                .ends_with("/preexisting")
        );
        assert_eq!(claims[0]["paid"].as_f64(), Some(paid));
        for key in [
            "triangle",
            "actual_vs_expected",
            "groups",
            "paid_loss_ratio",
        ] {
            assert!(study.get(key).is_some(), "missing {key}");
        }

        let (status, _) = server.get(&path, Some(&server.auditor));
        assert_eq!(status, 200);
        let (status, _) = server.get(&path, Some(&own));
        assert_eq!(status, 403);
        let (status, _) = server.get(&path, None);
        assert_eq!(status, 401);
        // The document says YYYY-MM-DD, and so does the server: chrono alone
        // would also read `2026-1-5` and `+2026-01-05`.
        // A date ahead is refused: the study sees only what has happened, and
        // the year 9426 took the server over ten seconds and a million cells.
        for bad in [
            "yesterday",
            "2026-1-5",
            "%2B2026-01-05",
            "2026-02-30",
            "9426-07-12",
        ] {
            let (status, body) = server.get(
                &format!("/v1/products/e2e-city/experience?as_of={bad}"),
                Some(&server.insurer),
            );
            assert_eq!(status, 422, "{bad}: {body}");
            assert_eq!(body["errors"][0]["field"], "as_of", "{body}");
        }
        let (status, _) = server.get(
            &format!("/v1/products/no-such/experience?as_of={today}"),
            Some(&server.insurer),
        );
        assert_eq!(status, 404);

        let out = puhui(
            &server.database_url,
            &server.key_file,
            &[
                "experience",
                "--product",
                "e2e-city",
                "--as-of",
                &today,
                "--json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(cli["paid"], study["paid"]);
        assert_eq!(cli["member_years"], study["member_years"]);
    }
}
