//! Who may do what (401 without a token, 403 for the wrong role), and the
//! documented error for bad input, with nothing stored.

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn every_endpoint_refuses_a_missing_token_and_the_wrong_role() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let (member, own) = server.enrol(3, &[]);
        let (_, other) = server.enrol(4, &[]);
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
        let provider = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let (status, claim) = server.post(
            "/v1/claims",
            Some(&own),
            Some("c"),
            &drug_claim(member, 1, true),
        );
        assert_eq!(status, 201, "{claim}");
        let claim_id = claim["id"].as_i64().unwrap();
        let insurer = server.insurer.clone();
        let auditor = server.auditor.clone();
        let course_request = json!({
            "member_id": member, "drug": "L01EB03", "diagnosis": "C34.1",
            "biomarkers": [{"marker": "EGFR", "positive": true}], "prescriber": "H-001",
            "cycle_days": 30, "quantity_per_cycle": 30, "unit_price": "300.00", "cycles": 3,
            "start_date": today().to_string(),
        });
        let (status, course) = server.post(
            "/v1/authorizations",
            Some(&insurer),
            Some("course"),
            &course_request,
        );
        assert_eq!(status, 201, "{course}");
        let course_id = course["id"].as_i64().unwrap();
        let assessment = json!({"assessed_on": today().to_string(), "response": "stable_disease"});

        let scenario = json!({"name": "tiny"});
        // (method, path, body, roles refused with 403)
        let cases: Vec<(&str, String, Value, Vec<&str>)> = vec![
            (
                "GET",
                format!("/v1/members/{member}"),
                Value::Null,
                vec![&provider, &other],
            ),
            (
                "GET",
                format!("/v1/members/{member}/coverage"),
                Value::Null,
                vec![&provider, &other],
            ),
            (
                "GET",
                format!("/v1/members/{member}/claims"),
                Value::Null,
                vec![&provider, &other],
            ),
            (
                "GET",
                "/v1/claims".into(),
                Value::Null,
                vec![&own, &auditor],
            ),
            (
                "GET",
                format!("/v1/claims/{claim_id}"),
                Value::Null,
                vec![&provider, &other],
            ),
            (
                "POST",
                "/v1/claims".into(),
                drug_claim(member, 1, true),
                vec![&auditor],
            ),
            (
                "POST",
                format!("/v1/claims/{claim_id}/reversal"),
                json!({"reason": "x"}),
                vec![&own, &provider, &auditor],
            ),
            (
                "POST",
                format!("/v1/claims/{claim_id}/appeal"),
                json!({"items": []}),
                vec![&auditor, &other, &provider],
            ),
            (
                "POST",
                "/v1/pricing/runs".into(),
                scenario.clone(),
                vec![&own, &provider, &auditor],
            ),
            (
                "GET",
                "/v1/pricing/runs/1".into(),
                Value::Null,
                vec![&own, &provider],
            ),
            (
                "POST",
                "/v1/pricing/runs/1/cancel".into(),
                Value::Null,
                vec![&own, &provider, &auditor],
            ),
            (
                "GET",
                "/v1/audit/events".into(),
                Value::Null,
                vec![&own, &provider],
            ),
            (
                "GET",
                "/v1/audit/verify".into(),
                Value::Null,
                vec![&own, &provider],
            ),
            (
                "GET",
                "/v1/audit/export".into(),
                Value::Null,
                vec![&own, &provider],
            ),
            (
                "POST",
                "/v1/authorizations".into(),
                course_request.clone(),
                vec![&auditor, &other],
            ),
            (
                "GET",
                format!("/v1/authorizations/{course_id}"),
                Value::Null,
                vec![&other],
            ),
            (
                "GET",
                format!("/v1/members/{member}/authorizations"),
                Value::Null,
                vec![&provider, &other],
            ),
            (
                "POST",
                format!("/v1/authorizations/{course_id}/followups"),
                assessment.clone(),
                vec![&own, &other, &auditor],
            ),
            (
                "POST",
                format!("/v1/authorizations/{course_id}/cancel"),
                json!({"reason": "x"}),
                vec![&provider, &auditor, &other],
            ),
        ];
        for (method, path, body, refused) in &cases {
            let call = |token: Option<&str>| match *method {
                "GET" => server.get(path, token),
                _ => server.post(path, token, Some("role-check"), body),
            };
            let (status, problem) = call(None);
            assert_eq!(status, 401, "{method} {path} without a token: {problem}");
            assert_eq!(problem["code"], "unauthenticated");
            let (status, _) = call(Some("phu_not-a-real-token"));
            assert_eq!(status, 401, "{method} {path} with an unknown token");
            for token in refused {
                let (status, problem) = call(Some(token));
                assert_eq!(status, 403, "{method} {path}: {problem}");
                assert_eq!(problem["code"], "forbidden");
            }
        }
        // Sign-up is open, but a token on it must be an insurer's.
        for token in [&own, &provider, &auditor] {
            let (status, _) = server.post(
                "/v1/enrollments",
                Some(token),
                Some("e"),
                &json!({"product_id": "e2e-city", "resident_id": resident_id(9), "name": "a", "phone": "13900000000",
                        "insurance_type": "urban_employee", "declared_conditions": []}),
            );
            assert_eq!(status, 403);
        }
        let _ = insurer;
    }
}

#[test]
fn bad_input_gets_the_documented_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(
            &db,
            dir.path(),
            &["--body-limit", "4096", "--enrollments-per-minute", "3"],
        );
        let (member, token) = server.enrol(5, &[]);
        let events_before = server
            .get("/v1/audit/events?limit=1000", Some(&server.insurer))
            .1["events"]
            .as_array()
            .unwrap()
            .len();

        let post = |body: &[u8], content_type: &str, key: Option<&str>| {
            server.post_raw("/v1/claims", Some(&token), key, content_type, body)
        };
        let (status, problem) = post(b"{\"member_id\": 1,", "application/json", Some("k1"));
        assert_eq!(status, 400, "truncated JSON");
        assert_eq!(problem["status"], 400);
        assert_eq!(problem["code"], "malformed_request");
        assert_eq!(
            post(b"[]", "application/json", Some("k1")).0,
            400,
            "wrong shape"
        );
        // A field of the wrong type is about that field: a 422 naming it.
        let (status, problem) = post(b"{\"member_id\": \"x\"}", "application/json", Some("k1"));
        assert_eq!(status, 422, "wrong type: {problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/member_id", "{problem}");
        let mut unknown = drug_claim(member, 1, true);
        unknown["surprise"] = json!(true);
        assert_eq!(
            post(
                unknown.to_string().as_bytes(),
                "application/json",
                Some("k1")
            )
            .0,
            400,
            "unknown field"
        );
        assert_eq!(
            post(
                b"member_id=1",
                "application/x-www-form-urlencoded",
                Some("k1")
            )
            .0,
            415
        );
        let big = vec![b' '; 10 * 1024 * 1024];
        assert_eq!(
            post(&big, "application/json", Some("k1")).0,
            413,
            "10 MB body"
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            post(deep.as_bytes(), "application/json", Some("k1")).0,
            413,
            "deep nesting past the limit"
        );
        let deep_small = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(
            post(deep_small.as_bytes(), "application/json", Some("k1")).0,
            400,
            "deep nesting"
        );
        let good = drug_claim(member, 1, true);
        assert_eq!(
            post(good.to_string().as_bytes(), "application/json", None).0,
            400,
            "no Idempotency-Key"
        );

        // Validation: field-level errors, 422.
        let mut bad = drug_claim(member, 0, true);
        bad["items"][0]["unit_price"] = json!("-1.005");
        bad["service_date"] = json!("2023-02-30");
        bad["diagnosis"] = json!("C3");
        let (status, problem) = server.post("/v1/claims", Some(&token), Some("k2"), &bad);
        assert_eq!(status, 422, "{problem}");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for field in [
            "service_date",
            "diagnosis",
            "items[0].quantity",
            "items[0].unit_price",
        ] {
            assert!(fields.contains(&field), "{field} not in {fields:?}");
        }
        let mut future = drug_claim(member, 1, true);
        future["service_date"] = json!((today() + chrono::Duration::days(3)).to_string());
        assert_eq!(
            server
                .post("/v1/claims", Some(&token), Some("k3"), &future)
                .0,
            422
        );
        let mut huge = drug_claim(member, 1, true);
        huge["items"][0]["unit_price"] = json!(99_999_999_999_999_999_999.0_f64);
        assert_eq!(
            server.post("/v1/claims", Some(&token), Some("k4"), &huge).0,
            422
        );
        let mut injection = drug_claim(member, 1, true);
        injection["provider_id"] = json!("PH-001'; DROP TABLE claims; --<script>");
        let (status, problem) = server.post("/v1/claims", Some(&token), Some("k5"), &injection);
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "provider_id");
        // Without spaces it is a well-formed id of no designated pharmacy:
        // stored as text, decided, denied.
        injection["provider_id"] = json!("PH-001';DROP/**/TABLE/**/claims;--<script>");
        let (status, decided) = server.post("/v1/claims", Some(&token), Some("k5"), &injection);
        assert_eq!(status, 201, "{decided}");
        assert_eq!(decided["status"], "denied");
        assert_eq!(
            decided["provider_id"],
            "PH-001';DROP/**/TABLE/**/claims;--<script>"
        );

        // Unknown ids and routes.
        assert_eq!(
            server.get("/v1/claims/999999", Some(&server.insurer)).0,
            404
        );
        assert_eq!(server.get("/v1/claims/abc", Some(&server.insurer)).0, 404);
        assert_eq!(
            server.get("/v1/members/999999", Some(&server.insurer)).0,
            404
        );
        assert_eq!(server.get("/v1/products/nope", None).0, 404);
        let (status, problem) = server.get("/v1/nothing-here", None);
        assert_eq!((status, problem["code"].clone()), (404, json!("not_found")));
        let (status, content_type, _) = server.get_text("/v1/claims/999999", Some(&server.insurer));
        assert_eq!(
            (status, content_type.as_str()),
            (404, "application/problem+json")
        );

        // A bad ID number on sign-up: 422, nothing stored.
        let mut id = resident_id(6);
        let last = if id.ends_with('1') { "2" } else { "1" };
        id.replace_range(17..18, last);
        let (status, problem) = server.post(
            "/v1/enrollments",
            None,
            Some("bad-id"),
            &json!({"product_id": "e2e-city", "resident_id": id, "name": "a", "phone": "13900000000",
                    "insurance_type": "urban_employee", "declared_conditions": []}),
        );
        assert_eq!(status, 422, "{problem}");

        // Only the one good (denied) claim and no other change was stored.
        let (_, page) = server.get(&format!("/v1/members/{member}/claims"), Some(&token));
        assert_eq!(page["claims"].as_array().unwrap().len(), 1);
        let events_after: Vec<Value> = server
            .get("/v1/audit/events?limit=1000", Some(&server.insurer))
            .1["events"]
            .as_array()
            .unwrap()
            .clone();
        let new_actions: Vec<&str> = events_after[events_before..]
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(new_actions, vec!["claim.decided"], "{}", server.backend);

        // Sign-ups are rate-limited per address (3 per minute here; one used above, one refused as invalid).
        let mut limited = None;
        for serial in 10..14 {
            let (status, _) = server.post(
                "/v1/enrollments",
                None,
                Some(&format!("rl-{serial}")),
                &json!({"product_id": "e2e-city", "resident_id": resident_id(serial), "name": "a", "phone": "13900000000",
                        "insurance_type": "urban_employee", "declared_conditions": []}),
            );
            if status == 429 {
                limited = Some(serial);
                break;
            }
            assert_eq!(status, 201);
        }
        assert!(limited.is_some(), "no 429 from the sign-up limiter");
        // The server is still up and answering.
        assert_eq!(server.get("/healthz", None).0, 200);
    }
}
