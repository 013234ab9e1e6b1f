//! What a security probe of the public server found, each as a test that
//! failed before the fix: invented HTTP methods growing the metrics, bodies
//! sent one byte a second holding connections, replayed sign-ups minting
//! live tokens, tokens nothing could revoke, clamped page limits and
//! unbounded biomarker lists.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Sends raw bytes and reads the answer until the server closes the
/// connection or `wait` passes; returns the answer and whether it closed.
fn raw(server: &Server, request: &[u8], wait: Duration) -> (String, bool) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < wait {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), true),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), false)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn invented_methods_are_405_and_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);
    let size_before = server.get_text("/metrics", None).2.len();
    for i in 0..200 {
        let method = format!("PROBE{i}{}", "X".repeat(2_000));
        let (answer, _) = raw(
            &server,
            format!("{method} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        );
        assert_eq!(
            status_of(&answer),
            405,
            "{}",
            &answer[..answer.len().min(200)]
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(
            answer.contains("\"code\":\"method_not_allowed\""),
            "{answer}"
        );
    }
    let metrics = server.get_text("/metrics", None).2;
    assert!(
        !metrics.contains("PROBE"),
        "an invented method became a label"
    );
    assert!(
        metrics.contains(
            r#"puhui_http_requests_total{method="OTHER",route="unmatched",status="405"} 200"#
        ),
        "{metrics}"
    );
    // A few fixed lines more (the OTHER counter and the /metrics reads), not
    // one per method.
    assert!(
        metrics.len() < size_before + 4_000,
        "{} -> {} bytes",
        size_before,
        metrics.len()
    );

    // A known path with another method: 405 naming what it has.
    let (answer, _) = raw(
        &server,
        b"PUT /v1/claims/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&answer), 405, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: get"),
        "{answer}"
    );
    let (answer, _) = raw(
        &server,
        b"DELETE /v1/claims HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&answer), 405, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: get, post"),
        "{answer}"
    );
    // An unknown path stays a 404.
    assert_eq!(server.get("/v1/nothing-here", None).0, 404);
}

#[test]
fn a_body_sent_one_byte_a_second_is_cut_off_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &["--body-timeout", "1"]);
    let address = server.base.trim_start_matches("http://").to_owned();
    // (request head, one slow piece of body): a sign-up read by its handler,
    // and a chunked body on a route that never reads one.
    let cases: [(&str, &[u8]); 3] = [
        (
            "POST /v1/enrollments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: slow-1\r\nContent-Length: 1000\r\n\r\n",
            b"{",
        ),
        (
            "POST /v1/enrollments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: slow-2\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\n{\r\n",
        ),
        (
            "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\na\r\n",
        ),
    ];
    for (head, piece) in cases {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut closed = false;
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(10) {
            if stream.write_all(piece).is_err() {
                closed = true;
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            closed,
            "{head}: the connection was still open after 10 s: {answer}"
        );
        if head.starts_with("POST") {
            assert_eq!(status_of(&answer), 408, "{head}: {answer}");
            assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
        }
    }
    // Nothing was enrolled by the slow sign-ups.
    let (status, page) = server.get("/v1/audit/events?limit=1000", Some(&server.insurer));
    assert_eq!(status, 200);
    assert!(
        !page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"].as_str().is_some_and(|a| a.starts_with("enrol"))),
        "{page}"
    );
}

fn sign_up(server: &Server, key: &str) -> (u16, Value) {
    server.post(
        "/v1/enrollments",
        None,
        Some(key),
        &json!({
            "product_id": "e2e-city",
            "resident_id": resident_id(77),
            "name": "王小明",
            "phone": "13912345678",
            "insurance_type": "urban_rural_resident",
            "declared_conditions": [],
        }),
    )
}

#[test]
fn a_replayed_sign_up_leaves_one_live_token_and_tokens_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let backend = server.backend;
        let (status, first) = sign_up(&server, "signup-replayed");
        assert_eq!(status, 201, "{backend}: {first}");
        let member = first["member"]["id"].as_i64().unwrap();
        let first_token = first["token"].as_str().unwrap().to_owned();
        let own = format!("/v1/members/{member}");
        // Used once, so that the server has it cached.
        assert_eq!(server.get(&own, Some(&first_token)).0, 200, "{backend}");

        let (status, again) = sign_up(&server, "signup-replayed");
        assert_eq!(status, 201, "{backend}: {again}");
        assert_eq!(again["member"], first["member"], "{backend}");
        let second_token = again["token"].as_str().unwrap().to_owned();
        assert_ne!(second_token, first_token, "{backend}");
        assert_eq!(
            server.get(&own, Some(&first_token)).0,
            401,
            "{backend}: the replaced token still works"
        );
        assert_eq!(server.get(&own, Some(&second_token)).0, 200, "{backend}");

        // Insurers revoke over the API; nobody else may.
        let token_id = again["token_id"].as_i64().unwrap();
        let delete = |token: &str, id: i64| -> u16 {
            ureq::delete(&server.url(&format!("/v1/tokens/{id}")))
                .header("Authorization", &format!("Bearer {token}"))
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(delete(&server.auditor, token_id), 403, "{backend}");
        assert_eq!(delete(&second_token, token_id), 403, "{backend}");
        assert_eq!(delete(&server.insurer, token_id), 204, "{backend}");
        assert_eq!(server.get(&own, Some(&second_token)).0, 401, "{backend}");
        assert_eq!(delete(&server.insurer, token_id), 204, "{backend}: again");
        assert_eq!(delete(&server.insurer, 999_999), 404, "{backend}");

        // From the command line: a new process never accepts it.
        let out = puhui(
            &server.database_url,
            &server.key_file,
            &["token", "create", "--role", "auditor"],
        );
        assert!(out.status.success());
        let auditor = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let created = String::from_utf8(out.stderr).unwrap();
        let auditor_id: i64 = created
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no token id in {created:?}"));
        assert_eq!(server.get("/v1/audit/verify", Some(&auditor)).0, 200);
        let out = puhui(
            &server.database_url,
            &server.key_file,
            &["token", "revoke", &auditor_id.to_string()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stopped = (0..40).any(|_| {
            std::thread::sleep(Duration::from_millis(250));
            server.get("/v1/audit/verify", Some(&auditor)).0 == 401
        });
        assert!(stopped, "{backend}: a revoked token kept working past 10 s");
        let out = puhui(
            &server.database_url,
            &server.key_file,
            &["token", "revoke", "999999"],
        );
        assert!(
            !out.status.success(),
            "{backend}: revoking nothing succeeded"
        );

        // Both revocations and the replacement are in the audit chain.
        let (_, page) = server.get("/v1/audit/events?limit=1000", Some(&server.insurer));
        let revoked = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "token.revoked")
            .count();
        assert_eq!(revoked, 3, "{backend}: {page}");
    }
}

#[test]
fn page_limits_out_of_range_are_refused_and_biomarkers_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);
    let (member, token) = server.enrol(5, &[]);
    for path in [
        format!("/v1/members/{member}/claims?limit=0"),
        format!("/v1/members/{member}/claims?limit=101"),
        format!("/v1/members/{member}/claims?limit=-3"),
        format!("/v1/members/{member}/claims?cursor=-1"),
        "/v1/claims?limit=1000".to_owned(),
        "/v1/audit/events?limit=1001".to_owned(),
        "/v1/audit/events?limit=0".to_owned(),
        "/v1/audit/export?limit=100001".to_owned(),
    ] {
        let (status, body) = server.get(&path, Some(&server.insurer));
        assert_eq!(status, 422, "{path}: {body}");
        let field = body["errors"][0]["field"].as_str().unwrap_or("");
        assert!(["limit", "cursor"].contains(&field), "{path}: {body}");
    }
    assert_eq!(
        server
            .get(
                &format!("/v1/members/{member}/claims?limit=100"),
                Some(&token)
            )
            .0,
        200
    );

    let mut claim = drug_claim(member, 1, true);
    let markers: Vec<Value> = (0..33)
        .map(|i| json!({"marker": format!("M{i}"), "positive": false}))
        .collect();
    claim["items"][0]["biomarkers"] = Value::Array(markers);
    let (status, body) = server.post("/v1/claims", Some(&token), Some("many-markers"), &claim);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "items[0].biomarkers", "{body}");
    assert_eq!(body["errors"][0]["code"], "too_many_biomarkers", "{body}");
}

#[test]
fn an_auditor_read_cannot_write_a_large_event_into_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);
    let events = |server: &Server| -> Vec<Value> {
        let (status, page) = server.get("/v1/audit/events?limit=1000", Some(&server.insurer));
        assert_eq!(status, 200, "{page}");
        page["events"].as_array().unwrap().clone()
    };
    let before = events(&server).len();
    let padding = "a".repeat(60_000);
    for path in [
        format!("/v1/members/999999?x={padding}"),
        format!("/v1/audit/verify?x={padding}"),
        "/v1/claims/1?cursor=1".to_owned(),
    ] {
        let (status, body) = server.get(&path, Some(&server.auditor));
        assert_eq!(status, 400, "{}: {body}", &path[..40.min(path.len())]);
        assert_eq!(body["code"], "malformed_request", "{body}");
    }
    assert_eq!(events(&server).len(), before, "a refused read was recorded");

    // A parameter the route takes is recorded, bounded.
    let (status, _) = server.get(
        &format!("/v1/audit/verify?head_seq=1&head_hash={padding}"),
        Some(&server.auditor),
    );
    assert_eq!(status, 200);
    let all = events(&server);
    let read = all
        .iter()
        .rev()
        .find(|e| e["action"] == "audit.read")
        .expect("the read was audited");
    let size = read.to_string().len();
    assert!(size < 2_000, "the audit.read event is {size} bytes: {read}");
    assert!(read.to_string().contains("head_seq"), "{read}");
}

#[test]
fn a_top_level_type_error_is_a_field_level_422_with_its_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);
    let (member, token) = server.enrol(6, &[]);
    let mut signup = json!({
        "product_id": "e2e-city", "resident_id": resident_id(7), "name": "王小明",
        "phone": "13912345678", "insurance_type": null, "declared_conditions": [],
    });
    let (status, body) = server.post("/v1/enrollments", None, Some("t-1"), &signup);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "insurance_type", "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/insurance_type", "{body}");
    signup["insurance_type"] = json!("urban_rural_resident");
    signup.as_object_mut().unwrap().remove("phone");
    let (status, body) = server.post("/v1/enrollments", None, Some("t-2"), &signup);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/phone", "{body}");

    let mut claim = drug_claim(member, 1, true);
    claim["member_id"] = json!("m1");
    let (status, body) = server.post("/v1/claims", Some(&token), Some("t-3"), &claim);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "member_id", "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/member_id", "{body}");
    // Inside items, the same shape of answer.
    let mut claim = drug_claim(member, 1, true);
    claim["items"][0]["quantity"] = json!("thirty");
    let (status, body) = server.post("/v1/claims", Some(&token), Some("t-4"), &claim);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/items/0/quantity", "{body}");
}

/// Writes `request` from another thread (the server may stop reading it) and reads the answer
/// until the server closes the connection.
fn raw_unread(server: &Server, request: Vec<u8>) -> String {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    sending.join().unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn problem_in(answer: &str) -> Value {
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    let body = answer.rsplit("\r\n\r\n").next().unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn malformed_and_oversized_request_heads_get_a_problem_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).remove(0);
    let server = Server::start(&db, dir.path(), &[]);

    // A NUL inside a bearer token.
    let answer = raw_unread(
        &server,
        b"GET /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\0def\r\n\r\n".to_vec(),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    let problem = problem_in(&answer);
    assert_eq!(problem["code"], "malformed_request", "{problem}");
    assert_eq!(
        problem["detail"],
        "the value of the header `authorization` contains a NUL byte"
    );

    // A 1 MB header.
    let mut big = b"GET /v1/products HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"\r\n\r\n");
    let answer = raw_unread(&server, big);
    assert_eq!(status_of(&answer), 431, "{answer}");
    let problem = problem_in(&answer);
    assert_eq!(problem["code"], "request_head_too_large", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("`x-big`"),
        "{problem}"
    );

    // A good request, then a bad one on the same connection: the first is answered as
    // always, the second with its problem, and the connection closes.
    let answer = raw_unread(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
    );
    let (first, second) = answer.split_at(answer.find("HTTP/1.1 400").unwrap_or(0));
    assert_eq!(status_of(first), 200, "{answer}");
    assert_eq!(
        problem_in(second)["detail"],
        "the request has more than one Content-Length header"
    );

    // A client cannot forge a refusal with the header that carries one.
    let answer = raw_unread(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-puhui-head-refused: 0123 400 forged\r\nConnection: close\r\n\r\n".to_vec(),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}
