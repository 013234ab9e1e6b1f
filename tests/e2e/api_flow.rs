//! The app's and the auditor's main journeys over HTTP.

use serde_json::json;

use crate::support::*;

#[test]
fn enrol_claim_explain_cover_appeal_reverse_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let backend = server.backend;
        // Products are public.
        let (status, products) = server.get("/v1/products", None);
        assert_eq!(status, 200);
        assert_eq!(products["products"][0]["id"], "e2e-city");

        let (member, token) = server.enrol(1, &["C34.1"]);
        let (status, me) = server.get(&format!("/v1/members/{member}"), Some(&token));
        assert_eq!(status, 200, "{backend}: {me}");
        assert!(
            me["resident_id_masked"]
                .as_str()
                .unwrap()
                .contains("**********")
        );
        assert!(
            !me.to_string().contains(&resident_id(1)),
            "the full ID is never shown"
        );

        // 10 x 510.00 = 5,100.00 eligible; no deductible; the member declared
        // lung cancer, so the pre-existing rate (30%) applies: 1,530.00.
        let claim = drug_claim(member, 10, true);
        let (status, first) = server.post("/v1/claims", Some(&token), Some("claim-1"), &claim);
        assert_eq!(status, 201, "{backend}: {first}");
        assert_eq!(first["status"], "paid");
        let item = &first["decision"]["items"][0];
        assert_eq!(item["eligible"], "5100.00");
        assert_eq!(item["payable"], "1530.00");
        assert_eq!(item["member_responsibility"], "3570.00");
        let claim_id = first["id"].as_i64().unwrap();

        // A retry with the same key returns the same decision; another body
        // under that key is refused.
        let (status, again) = server.post("/v1/claims", Some(&token), Some("claim-1"), &claim);
        assert_eq!((status, &again), (201, &first));
        let (status, reused) = server.post(
            "/v1/claims",
            Some(&token),
            Some("claim-1"),
            &drug_claim(member, 11, true),
        );
        assert_eq!(status, 409);
        assert_eq!(reused["code"], "idempotency_key_reused");

        let (status, read) = server.get(&format!("/v1/claims/{claim_id}"), Some(&token));
        assert_eq!(status, 200);
        assert_eq!(read["decision"], first["decision"]);

        let (status, cover) = server.get(&format!("/v1/members/{member}/coverage"), Some(&token));
        assert_eq!(status, 200);
        let drug = cover["products"][0]["benefits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["benefit"] == "specialty_drug")
            .unwrap()
            .clone();
        assert_eq!(drug["limit_used"], "1530.00");
        assert_eq!(drug["limit_left"], "98470.00");

        // Denied for a missing biomarker, then paid on appeal with the result.
        let (status, denied) = server.post(
            "/v1/claims",
            Some(&token),
            Some("claim-2"),
            &drug_claim(member, 5, false),
        );
        assert_eq!(status, 201);
        assert_eq!(denied["status"], "denied");
        let denied_id = denied["id"].as_i64().unwrap();
        let evidence = json!({ "items": [{ "index": 0, "biomarkers": [{ "marker": "EGFR", "positive": true }] }] });
        let (status, appealed) = server.post(
            &format!("/v1/claims/{denied_id}/appeal"),
            Some(&token),
            Some("appeal-1"),
            &evidence,
        );
        assert_eq!(status, 201, "{backend}: {appealed}");
        assert_eq!(appealed["status"], "paid");
        assert_eq!(appealed["decisions"].as_array().unwrap().len(), 2);

        let (status, page) = server.get(
            &format!("/v1/members/{member}/claims?limit=1"),
            Some(&token),
        );
        assert_eq!(status, 200);
        assert_eq!(page["claims"].as_array().unwrap().len(), 1);
        let cursor = page["next_cursor"].as_i64().unwrap();
        let (_, rest) = server.get(
            &format!("/v1/members/{member}/claims?limit=1&cursor={cursor}"),
            Some(&token),
        );
        assert_eq!(rest["claims"].as_array().unwrap().len(), 1);
        assert!(rest["next_cursor"].is_null());

        // Only the insurer reverses; the balance comes back exactly.
        let reason = json!({ "reason": "pharmacy billed the wrong member" });
        let path = format!("/v1/claims/{claim_id}/reversal");
        let (status, _) = server.post(&path, Some(&token), Some("rev-1"), &reason);
        assert_eq!(status, 403);
        let (status, reversed) = server.post(&path, Some(&server.insurer), Some("rev-1"), &reason);
        assert_eq!(status, 201, "{backend}: {reversed}");
        assert_eq!(reversed["status"], "reversed");
        let (_, cover) = server.get(&format!("/v1/members/{member}/coverage"), Some(&token));
        let drug_used = cover["products"][0]["benefits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["benefit"] == "specialty_drug")
            .unwrap()["limit_used"]
            .clone();
        assert_eq!(drug_used, appealed["decision"]["totals"]["payable"]);
        let (status, twice) = server.post(&path, Some(&server.insurer), Some("rev-2"), &reason);
        assert_eq!(status, 409);
        assert_eq!(twice["code"], "already_reversed");

        // The auditor verifies the chain, pages through it and exports it;
        // their reads are audited too.
        let (status, report) = server.get("/v1/audit/verify", Some(&server.auditor));
        assert_eq!(status, 200);
        assert_eq!(report["valid"], true, "{backend}: {report}");
        let head = report["head"].clone();
        let (status, report) = server.get(
            &format!(
                "/v1/audit/verify?head_seq={}&head_hash={}",
                head["seq"],
                head["hash"].as_str().unwrap()
            ),
            Some(&server.auditor),
        );
        assert_eq!((status, report["valid"].clone()), (200, json!(true)));
        let (status, events) = server.get("/v1/audit/events?limit=2", Some(&server.auditor));
        assert_eq!(status, 200);
        assert_eq!(events["events"].as_array().unwrap().len(), 2);
        assert_eq!(events["next_cursor"], 2);
        let (status, content_type, lines) =
            server.get_text("/v1/audit/export", Some(&server.auditor));
        assert_eq!(status, 200);
        assert!(content_type.starts_with("application/x-ndjson"));
        let actions: Vec<String> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        for expected in [
            "product.loaded",
            "enrollment.created",
            "claim.decided",
            "claim.appeal_decided",
            "claim.reversed",
            "audit.read",
        ] {
            assert!(
                actions.iter().any(|a| a == expected),
                "{backend}: no {expected} in {actions:?}"
            );
        }
        assert!(
            !lines.contains(&resident_id(1)) && !lines.contains("王小明"),
            "no personal data in the audit log"
        );

        // Operations endpoints.
        let (status, _, metrics) = server.get_text("/metrics", None);
        assert_eq!(status, 200);
        // Decisions: the first claim, the denial, and its appeal.
        assert!(
            metrics.contains("puhui_claims_decided_total{status=\"paid\"} 2"),
            "{metrics}"
        );
        assert!(
            metrics.contains("puhui_claims_decided_total{status=\"denied\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("puhui_http_requests_total"));
        let (status, openapi) = server.get("/openapi.json", None);
        assert_eq!(status, 200);
        assert!(openapi["paths"]["/v1/claims"].is_object());
        let (status, _, docs) = server.get_text("/docs", None);
        assert_eq!(status, 200);
        assert!(docs.contains("openapi") || docs.contains("scalar"));
        let (status, ready) = server.get("/readyz", None);
        assert_eq!((status, ready["database"].clone()), (200, json!(backend)));
    }
}

#[test]
fn a_provider_submits_for_any_member_and_reads_only_its_own_claims() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let (member, member_token) = server.enrol(2, &[]);
        let out = puhui(
            &server.database_url,
            &server.key_file,
            &[
                "token",
                "create",
                "--role",
                "provider",
                "--provider-id",
                "PH-001",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pharmacy = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let out = puhui(
            &server.database_url,
            &server.key_file,
            &[
                "token",
                "create",
                "--role",
                "provider",
                "--provider-id",
                "H-001",
            ],
        );
        let hospital = String::from_utf8(out.stdout).unwrap().trim().to_owned();

        let (status, claim) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("p-1"),
            &drug_claim(member, 4, true),
        );
        assert_eq!(status, 201, "{claim}");
        // Standard rate 70% of 2,040.00.
        assert_eq!(claim["decision"]["totals"]["payable"], "1428.00");
        let id = claim["id"].as_i64().unwrap();
        assert_eq!(
            server.get(&format!("/v1/claims/{id}"), Some(&pharmacy)).0,
            200
        );
        assert_eq!(
            server.get(&format!("/v1/claims/{id}"), Some(&hospital)).0,
            403
        );
        assert_eq!(
            server
                .get(&format!("/v1/claims/{id}"), Some(&member_token))
                .0,
            200
        );
        let (status, mine) = server.get("/v1/claims", Some(&pharmacy));
        assert_eq!(status, 200);
        assert_eq!(mine["claims"].as_array().unwrap().len(), 1);
        let (_, theirs) = server.get("/v1/claims", Some(&hospital));
        assert_eq!(theirs["claims"].as_array().unwrap().len(), 0);
        // Inpatient: E = 5,000 - 1,000 = 4,000; deductible 1,000; 80% of 3,000.
        let (status, stay) = server.post(
            "/v1/claims",
            Some(&hospital),
            Some("h-1"),
            &inpatient_claim(member, "5000.00"),
        );
        assert_eq!(status, 201, "{stay}");
        assert_eq!(stay["decision"]["totals"]["payable"], "2400.00");
    }
}
