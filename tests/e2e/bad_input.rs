//! The bad-input matrix: what a hostile or broken client sends, case by case,
//! each with the documented 4xx. After the whole matrix the server is still
//! up, no claim was stored, the audit log has no new event, and the chain
//! verifies. `errors_and_roles.rs` holds the first cases (truncated JSON,
//! 10 MB bodies, deep nesting, the role matrix); this extends them.

use std::cell::RefCell;

use serde_json::{Value, json};

use crate::support::*;

/// What a case must get: a status, and for 422 the field and code of (one of)
/// its field errors.
struct Want {
    status: u16,
    field: Option<(&'static str, &'static str)>,
}

fn status(status: u16) -> Want {
    Want {
        status,
        field: None,
    }
}

fn invalid(field: &'static str, code: &'static str) -> Want {
    Want {
        status: 422,
        field: Some((field, code)),
    }
}

/// Checks one case; a mismatch is noted in `failures`, so that one run
/// lists every case that fails.
fn check(
    failures: &RefCell<Vec<String>>,
    backend: &str,
    label: &str,
    got: (u16, Value),
    want: Want,
) {
    let (code, problem) = got;
    if code != want.status || problem["status"] != want.status {
        failures.borrow_mut().push(format!(
            "{backend}: {label}: want {}, got {code} {problem}",
            want.status
        ));
        return;
    }
    let expected_code = match want.status {
        400 => "malformed_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        other => panic!("{label}: no code listed for {other}"),
    };
    if problem["code"] != expected_code {
        failures.borrow_mut().push(format!(
            "{backend}: {label}: code is not {expected_code}: {problem}"
        ));
    }
    if let Some((field, field_code)) = want.field {
        let errors = problem["errors"].as_array().cloned().unwrap_or_default();
        if !errors
            .iter()
            .any(|e| e["field"] == field && e["code"] == field_code)
        {
            failures.borrow_mut().push(format!(
                "{backend}: {label}: no {field}/{field_code} in {problem}"
            ));
        }
    }
}

/// A drug claim with one field replaced (a JSON pointer into the claim).
fn drug_with(member: i64, pointer: &str, value: Value) -> Value {
    let mut claim = drug_claim(member, 1, true);
    *claim
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the drug claim")) = value;
    claim
}

fn inpatient_with(member: i64, pointer: &str, value: Value) -> Value {
    let mut claim = inpatient_claim(member, "5000.00");
    *claim
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the inpatient claim")) = value;
    claim
}

const SQL: &str = "x'); DROP TABLE claims; --";
const SQL_NO_SPACES: &str = "x');DROP/**/TABLE/**/claims;--";
const SCRIPT: &str = "<script>alert(1)</script>";

#[test]
fn the_bad_input_matrix_gets_4xx_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let backend = server.backend;
        let (member, token) = server.enrol(21, &[]);
        let (other_member, other_token) = server.enrol(22, &[]);
        let provider = String::from_utf8(
            puhui(
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
            )
            .stdout,
        )
        .unwrap()
        .trim()
        .to_owned();
        let events_before = audit_events(&server);
        let failures = RefCell::new(Vec::new());

        // Claims as JSON values: every case under the member's own token.
        let tomorrow = (today() + chrono::Duration::days(1)).to_string();
        let mut many_items = drug_claim(member, 1, true);
        many_items["items"] = Value::Array(vec![many_items["items"][0].clone(); 1_001]);
        let value_cases: Vec<(&str, Value, Want)> = vec![
            // Amounts: past i64, huge, negative, NaN-like, not numbers.
            (
                "unit price past i64",
                drug_with(
                    member,
                    "/items/0/unit_price",
                    json!(9_223_372_036_854_775_808_u64),
                ),
                invalid("items[0].unit_price", "amount_too_large"),
            ),
            (
                "unit price a 24-digit string",
                drug_with(
                    member,
                    "/items/0/unit_price",
                    json!("999999999999999999999999.00"),
                ),
                invalid("items[0].unit_price", "amount_too_large"),
            ),
            (
                "total just over the ceiling",
                inpatient_with(member, "/items/0/total", json!("100000000.01")),
                invalid("items[0].total", "amount_too_large"),
            ),
            (
                "negative basic_paid",
                inpatient_with(member, "/items/0/basic_paid", json!("-0.01")),
                invalid("items[0].basic_paid", "negative_amount"),
            ),
            (
                "negative number",
                drug_with(member, "/items/0/unit_price", json!(-510)),
                invalid("items[0].unit_price", "negative_amount"),
            ),
            (
                "three decimals",
                drug_with(member, "/items/0/unit_price", json!("510.001")),
                invalid("items[0].unit_price", "too_many_decimals"),
            ),
            (
                "NaN as a string",
                inpatient_with(member, "/items/0/total", json!("NaN")),
                invalid("items[0].total", "not_a_number"),
            ),
            (
                "Infinity as a string",
                inpatient_with(member, "/items/0/total", json!("Infinity")),
                invalid("items[0].total", "not_a_number"),
            ),
            (
                "-Infinity as a string",
                inpatient_with(member, "/items/0/total", json!("-Infinity")),
                invalid("items[0].total", "not_a_number"),
            ),
            (
                "exponent in a string",
                inpatient_with(member, "/items/0/total", json!("1e5")),
                invalid("items[0].total", "not_a_number"),
            ),
            (
                "amount null",
                inpatient_with(member, "/items/0/total", Value::Null),
                status(422),
            ),
            (
                "amount a boolean",
                inpatient_with(member, "/items/0/total", json!(true)),
                status(422),
            ),
            (
                "amount an object",
                inpatient_with(member, "/items/0/total", json!({"$gt": 0})),
                status(422),
            ),
            (
                "basic_paid over the total",
                inpatient_with(member, "/items/0/basic_paid", json!("5000.01")),
                invalid("items[0]", "exceeds_total"),
            ),
            (
                "quantity zero",
                drug_with(member, "/items/0/quantity", json!(0)),
                status(422),
            ),
            (
                "quantity past the maximum",
                drug_with(member, "/items/0/quantity", json!(100_001)),
                status(422),
            ),
            (
                "quantity past i64",
                drug_with(
                    member,
                    "/items/0/quantity",
                    json!(18_446_744_073_709_551_615_u64),
                ),
                status(422),
            ),
            (
                "fractional quantity",
                drug_with(member, "/items/0/quantity", json!(2.5)),
                invalid("items[0].quantity", "not_a_whole_number"),
            ),
            // Dates.
            (
                "2023-02-30",
                drug_with(member, "/service_date", json!("2023-02-30")),
                invalid("service_date", "invalid_date"),
            ),
            (
                "month 13",
                drug_with(member, "/service_date", json!("2023-13-01")),
                invalid("service_date", "invalid_date"),
            ),
            (
                "date without dashes",
                drug_with(member, "/service_date", json!("20230101")),
                invalid("service_date", "invalid_date"),
            ),
            (
                "date with SQL",
                drug_with(member, "/service_date", json!(SQL)),
                invalid("service_date", "invalid_date"),
            ),
            (
                "tomorrow",
                drug_with(member, "/service_date", json!(tomorrow)),
                invalid("service_date", "future_date"),
            ),
            (
                "year 9999",
                drug_with(member, "/service_date", json!("9999-12-31")),
                invalid("service_date", "future_date"),
            ),
            // Codes.
            (
                "ICD-10 too short",
                drug_with(member, "/diagnosis", json!("C3")),
                status(422),
            ),
            (
                "ICD-10 of digits",
                drug_with(member, "/diagnosis", json!("123")),
                status(422),
            ),
            (
                "ICD-10 with SQL",
                drug_with(member, "/diagnosis", json!(format!("C34.1{SQL}"))),
                status(422),
            ),
            (
                "ICD-10 with script",
                drug_with(member, "/diagnosis", json!(SCRIPT)),
                status(422),
            ),
            (
                "ATC too short",
                drug_with(member, "/items/0/drug", json!("L01EB0")),
                invalid("items[0].drug", "malformed_atc"),
            ),
            (
                "ATC too long",
                drug_with(member, "/items/0/drug", json!("L01EB044")),
                invalid("items[0].drug", "malformed_atc"),
            ),
            (
                "ATC of digits",
                drug_with(member, "/items/0/drug", json!("1234567")),
                invalid("items[0].drug", "malformed_atc"),
            ),
            (
                "ATC with SQL",
                drug_with(member, "/items/0/drug", json!(SQL)),
                invalid("items[0].drug", "malformed_atc"),
            ),
            // Other text fields.
            (
                "kind with SQL",
                drug_with(member, "/kind", json!(SQL)),
                invalid("kind", "invalid_kind"),
            ),
            (
                "kind unknown",
                drug_with(member, "/kind", json!("dental")),
                invalid("kind", "invalid_kind"),
            ),
            (
                "provider with SQL",
                drug_with(member, "/provider_id", json!(SQL)),
                invalid("provider_id", "invalid_provider_id"),
            ),
            (
                "provider with a NUL",
                drug_with(member, "/provider_id", json!("PH\u{0}001")),
                invalid("provider_id", "invalid_provider_id"),
            ),
            (
                "provider of 10,000 characters",
                drug_with(member, "/provider_id", json!("P".repeat(10_000))),
                invalid("provider_id", "invalid_provider_id"),
            ),
            (
                "empty provider",
                drug_with(member, "/provider_id", json!("")),
                invalid("provider_id", "invalid_provider_id"),
            ),
            // Shapes inside the claim.
            (
                "no items",
                drug_with(member, "/items", json!([])),
                invalid("items", "empty_items"),
            ),
            (
                "1,001 items",
                many_items,
                invalid("items", "too_many_items"),
            ),
            (
                "item a number",
                drug_with(member, "/items", json!([1])),
                status(422),
            ),
            (
                "unknown field in an item",
                {
                    let mut claim = drug_claim(member, 1, true);
                    claim["items"][0]["discount"] = json!("1.00");
                    claim
                },
                invalid("items[0].discount", "unknown_field"),
            ),
            (
                "biomarker a string",
                drug_with(member, "/items/0/biomarkers", json!(["EGFR"])),
                status(422),
            ),
            (
                "member id negative",
                drug_with(member, "/member_id", json!(-1)),
                status(403),
            ),
            // Top-level types serde refuses before validation: 400.
            (
                "member id past i64",
                drug_with(member, "/member_id", json!(9_223_372_036_854_775_808_u64)),
                invalid("member_id", "invalid_type"),
            ),
            (
                "member id a string",
                drug_with(member, "/member_id", json!("1 OR 1=1")),
                invalid("member_id", "invalid_type"),
            ),
            (
                "items an object",
                drug_with(member, "/items", json!({"0": {}})),
                invalid("items", "invalid_type"),
            ),
            (
                "diagnosis a number",
                drug_with(member, "/diagnosis", json!(34.1)),
                invalid("diagnosis", "invalid_type"),
            ),
        ];
        for (i, (label, body, want)) in value_cases.into_iter().enumerate() {
            let key = format!("matrix-{i}");
            check(
                &failures,
                backend,
                label,
                server.post("/v1/claims", Some(&token), Some(&key), &body),
                want,
            );
        }

        // Raw bodies: JSON that is not JSON, or not what serde_json takes.
        let good = drug_claim(member, 1, true).to_string();
        let raw_cases: Vec<(&str, Vec<u8>, &str, Want)> = vec![
            ("empty body", Vec::new(), "application/json", status(400)),
            ("null", b"null".to_vec(), "application/json", status(400)),
            (
                "a string",
                b"\"claim\"".to_vec(),
                "application/json",
                status(400),
            ),
            (
                "bare NaN",
                good.replace("\"510.00\"", "NaN").into_bytes(),
                "application/json",
                status(400),
            ),
            (
                "1e400",
                good.replace("\"510.00\"", "1e400").into_bytes(),
                "application/json",
                status(400),
            ),
            (
                "duplicate keys",
                good.replacen('{', &format!("{{\"member_id\": {other_member},"), 1)
                    .into_bytes(),
                "application/json",
                status(400),
            ),
            (
                "invalid UTF-8",
                [
                    b"{\"member_id\": 1, \"kind\": \"".as_slice(),
                    &[0xff, 0xfe],
                    b"\"}",
                ]
                .concat(),
                "application/json",
                status(400),
            ),
            (
                "trailing garbage",
                format!("{good} {{}}").into_bytes(),
                "application/json",
                status(400),
            ),
            (
                "text/plain",
                good.clone().into_bytes(),
                "text/plain",
                status(415),
            ),
            ("XML", b"<claim/>".to_vec(), "application/xml", status(415)),
            (
                "multipart",
                good.clone().into_bytes(),
                "multipart/form-data; boundary=x",
                status(415),
            ),
        ];
        for (i, (label, body, content_type, want)) in raw_cases.into_iter().enumerate() {
            let key = format!("raw-{i}");
            check(
                &failures,
                backend,
                label,
                server.post_raw("/v1/claims", Some(&token), Some(&key), content_type, &body),
                want,
            );
        }

        // Idempotency keys.
        let claim = drug_claim(member, 1, true);
        for (label, key) in [
            ("empty key", String::new()),
            ("key of 256 characters", "k".repeat(256)),
            ("key with a space", "a b".to_owned()),
            ("key with SQL", SQL.to_owned()),
        ] {
            check(
                &failures,
                backend,
                label,
                server.post("/v1/claims", Some(&token), Some(&key), &claim),
                status(400),
            );
        }

        // Tokens: another member's, another provider's, the wrong role,
        // malformed.
        let tokens: Vec<(&str, Option<String>, Value, Want)> = vec![
            (
                "another member's token",
                Some(other_token.clone()),
                drug_claim(member, 1, true),
                status(403),
            ),
            (
                "own token, another member's claim",
                Some(token.clone()),
                drug_claim(other_member, 1, true),
                status(403),
            ),
            (
                "a provider claiming for another provider",
                Some(provider.clone()),
                drug_with(member, "/provider_id", json!("PH-002")),
                status(403),
            ),
            (
                "the auditor",
                Some(server.auditor.clone()),
                drug_claim(member, 1, true),
                status(403),
            ),
            (
                "a token of 300 characters",
                Some("p".repeat(300)),
                drug_claim(member, 1, true),
                status(401),
            ),
            (
                "a token with SQL",
                Some(SQL.to_owned()),
                drug_claim(member, 1, true),
                status(401),
            ),
            ("no token", None, drug_claim(member, 1, true), status(401)),
        ];
        for (i, (label, token, body, want)) in tokens.into_iter().enumerate() {
            let key = format!("token-{i}");
            check(
                &failures,
                backend,
                label,
                server.post("/v1/claims", token.as_deref(), Some(&key), &body),
                want,
            );
        }
        for (label, header) in [
            ("Basic credentials", "Basic dXNlcjpwYXNz".to_owned()),
            ("Bearer without a token", "Bearer ".to_owned()),
            ("token without Bearer", token.clone()),
        ] {
            let code =
                get_with_authorization(&server, &format!("/v1/members/{member}/coverage"), &header);
            assert_eq!(code, 401, "{backend}: {label}");
        }
        for (label, path, token, want) in [
            (
                "another member's coverage",
                format!("/v1/members/{member}/coverage"),
                &other_token,
                403,
            ),
            (
                "another member's history",
                format!("/v1/members/{member}/claims"),
                &other_token,
                403,
            ),
            (
                "another member's record",
                format!("/v1/members/{member}"),
                &other_token,
                403,
            ),
        ] {
            check(
                &failures,
                backend,
                label,
                server.get(&path, Some(token)),
                status(want),
            );
        }

        // Path ids and queries that name nothing.
        let insurer = server.insurer.clone();
        for path in [
            "/v1/claims/0",
            "/v1/claims/-1",
            "/v1/claims/99999999999999999999",
            "/v1/claims/1%27%20OR%201=1",
            "/v1/claims/999999",
            "/v1/members/999999",
            "/v1/members/999999/coverage",
            "/v1/members/999999/claims",
            "/v1/members/1e3/coverage",
            "/v1/products/x%27%3B%20DROP%20TABLE%20products",
            "/v1/pricing/runs/999999",
        ] {
            check(
                &failures,
                backend,
                path,
                server.get(path, Some(&insurer)),
                status(404),
            );
        }
        for (label, path) in [
            (
                "limit not a number",
                format!("/v1/members/{member}/claims?limit=abc"),
            ),
            (
                "cursor past i64",
                format!("/v1/members/{member}/claims?cursor=99999999999999999999"),
            ),
            (
                "unknown query parameter",
                format!("/v1/members/{member}/claims?where=1%3D1"),
            ),
        ] {
            check(
                &failures,
                backend,
                label,
                server.get(&path, Some(&insurer)),
                status(400),
            );
        }
        check(
            &failures,
            backend,
            "reversal of no claim",
            server.post(
                "/v1/claims/999999/reversal",
                Some(&insurer),
                Some("rev-1"),
                &json!({"reason": "test"}),
            ),
            status(404),
        );
        check(
            &failures,
            backend,
            "appeal of no claim",
            server.post(
                "/v1/claims/999999/appeal",
                Some(&insurer),
                Some("app-1"),
                &json!({"items": []}),
            ),
            status(404),
        );
        check(
            &failures,
            backend,
            "unknown member under the insurer",
            server.post(
                "/v1/claims",
                Some(&insurer),
                Some("unknown-member"),
                &drug_claim(999_999, 1, true),
            ),
            invalid("member_id", "unknown_member"),
        );

        // Sign-up: every text field hostile.
        let enrolment = |field: &str, value: Value| {
            let mut body = json!({
                "product_id": "e2e-city",
                "resident_id": resident_id(23),
                "name": "王小明",
                "phone": "13912345678",
                "insurance_type": "urban_employee",
                "declared_conditions": [],
            });
            body[field] = value;
            body
        };
        let mut feb30 = "11010519900230123".to_owned();
        feb30.push(check_digit(&feb30));
        let mut future_birth = format!(
            "110105{}123",
            (today() + chrono::Duration::days(2)).format("%Y%m%d")
        );
        future_birth.push(check_digit(&future_birth));
        let sign_ups: Vec<(&str, Value, Want)> = vec![
            (
                "product with SQL",
                enrolment("product_id", json!(SQL)),
                invalid("product_id", "unknown_product"),
            ),
            (
                "ID with SQL",
                enrolment("resident_id", json!(SQL)),
                status(422),
            ),
            (
                "ID born on 30 February",
                enrolment("resident_id", json!(feb30)),
                status(422),
            ),
            (
                "ID born after today",
                enrolment("resident_id", json!(future_birth)),
                status(422),
            ),
            (
                "phone with SQL",
                enrolment("phone", json!(SQL)),
                invalid("phone", "invalid_phone"),
            ),
            (
                "phone with script",
                enrolment("phone", json!(SCRIPT)),
                invalid("phone", "invalid_phone"),
            ),
            (
                "name of 101 characters",
                enrolment("name", json!("名".repeat(101))),
                invalid("name", "invalid_name"),
            ),
            (
                "name with a control character",
                enrolment("name", json!("王\u{7}")),
                invalid("name", "invalid_name"),
            ),
            (
                "insurance type with SQL",
                enrolment("insurance_type", json!(SQL)),
                status(422),
            ),
            (
                "declared condition with SQL",
                enrolment("declared_conditions", json!([SQL])),
                status(422),
            ),
            (
                "declared condition a number",
                enrolment("declared_conditions", json!([1])),
                invalid("declared_conditions[0]", "invalid_type"),
            ),
        ];
        for (i, (label, body, want)) in sign_ups.into_iter().enumerate() {
            let key = format!("signup-{i}");
            check(
                &failures,
                backend,
                label,
                server.post("/v1/enrollments", Some(&insurer), Some(&key), &body),
                want,
            );
        }

        let failures = failures.into_inner();
        assert!(failures.is_empty(), "{}", failures.join("\n"));

        // Nothing was stored: no claim for either member, no new member, no
        // new audit event (the insurer's reads are not audited), and the
        // chain still verifies.
        for m in [member, other_member] {
            let (status, page) = server.get(&format!("/v1/members/{m}/claims"), Some(&insurer));
            assert_eq!(status, 200);
            assert_eq!(page["claims"], json!([]), "{backend}: member {m}");
        }
        assert_eq!(audit_events(&server), events_before, "{backend}");
        let (status, report) = server.get("/v1/audit/verify", Some(&server.auditor));
        assert_eq!((status, report["valid"].clone()), (200, json!(true)));
        assert_eq!(server.get("/healthz", None).0, 200);
        assert_eq!(server.get("/readyz", None).0, 200);

        // Hostile text in fields that are free text is stored as text, byte
        // for byte, and changes nothing else: a name may well hold an
        // apostrophe, and a provider id need not be one we know.
        for (i, name) in [SQL, SCRIPT, "O'Brien \"Bobby\" \\ ; --"]
            .iter()
            .enumerate()
        {
            let (status, body) = server.post(
                "/v1/enrollments",
                Some(&insurer),
                Some(&format!("verbatim-{i}")),
                &json!({
                    "product_id": "e2e-city",
                    "resident_id": resident_id(30 + i as u32),
                    "name": name,
                    "phone": "13912345678",
                    "insurance_type": "urban_employee",
                    "declared_conditions": [],
                }),
            );
            assert_eq!(status, 201, "{backend}: {body}");
            let id = body["member"]["id"].as_i64().unwrap();
            let (_, read) = server.get(&format!("/v1/members/{id}"), Some(&insurer));
            assert_eq!(read["name"], json!(name), "{backend}");
        }
        for (i, provider_id) in [SQL_NO_SPACES, SCRIPT].iter().enumerate() {
            let claim = drug_with(member, "/provider_id", json!(provider_id));
            let (status, decided) = server.post(
                "/v1/claims",
                Some(&token),
                Some(&format!("verbatim-claim-{i}")),
                &claim,
            );
            assert_eq!(status, 201, "{backend}: {decided}");
            assert_eq!(decided["status"], "denied");
            let (_, read) = server.get(&format!("/v1/claims/{}", decided["id"]), Some(&token));
            assert_eq!(read["provider_id"], json!(provider_id));
        }
        let (_, page) = server.get(&format!("/v1/members/{member}/claims"), Some(&insurer));
        assert_eq!(page["claims"].as_array().unwrap().len(), 2, "{backend}");
        let (status, report) = server.get("/v1/audit/verify", Some(&server.auditor));
        assert_eq!((status, report["valid"].clone()), (200, json!(true)));
    }
}

/// A GET with a raw `Authorization` header; returns the status.
fn get_with_authorization(server: &Server, path: &str, header: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(server.url(path))
        .header("Authorization", header)
        .call()
        .expect("GET")
        .status()
        .as_u16()
}

fn audit_events(server: &Server) -> usize {
    let (status, page) = server.get("/v1/audit/events?limit=1000", Some(&server.insurer));
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().len()
}

/// The GB 11643 check digit of the first 17 characters.
fn check_digit(body: &str) -> char {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize]
}
