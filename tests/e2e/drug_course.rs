//! The specialty-drug journey over HTTP: the enrollee applies for a course
//! of afatinib and it is approved; the designated pharmacy dispenses three
//! cycles a month apart; the fourth needs an efficacy assessment, which the
//! hospital records; progression ends the course; a second request is
//! denied. The server's clock is moved a month at a time
//! (`--clock-offset-days`), on the same database.

use chrono::Days;
use serde_json::{Value, json};

use crate::support::*;

fn day(offset: u64) -> String {
    (today() + Days::new(offset)).to_string()
}

fn provider_token(server: &Server, provider_id: &str) -> String {
    let out = puhui(
        &server.database_url,
        &server.key_file,
        &[
            "token",
            "create",
            "--role",
            "provider",
            "--provider-id",
            provider_id,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn dispensing(member: i64, course: Option<i64>, on: &str, pharmacy: &str) -> Value {
    let mut claim = json!({
        "member_id": member, "kind": "specialty_drug", "service_date": on,
        "provider_id": pharmacy, "diagnosis": "C34.100x001",
        "items": [{ "drug": "L01EB03", "quantity": 30, "unit_price": "300.00",
                    "basic_paid": "2000.00" }],
    });
    if let Some(id) = course {
        claim["authorization_id"] = json!(id);
    }
    claim
}

fn item(claim: &Value) -> &Value {
    &claim["decision"]["items"][0]
}

/// A server on the same database, its clock `days` ahead.
fn on_day(server: Server, days: u64) -> Server {
    server.restart(&["--clock-offset-days", &days.to_string()])
}

#[test]
fn apply_dispense_follow_up_progress_and_deny() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let mut server = Server::start(&db, dir.path(), &[]);
        let (member, own) = server.enrol(21, &[]);
        let pharmacy = provider_token(&server, "PH-001");
        let hospital = provider_token(&server, "H-001");
        let backend = server.backend;

        // Apply (the enrollee for herself): approved for 6 cycles of 30 days.
        let request = json!({
            "member_id": member, "drug": "L01EB03", "diagnosis": "C34.1",
            "biomarkers": [{ "marker": "EGFR", "positive": true }], "prescriber": "H-001",
            "cycle_days": 30, "quantity_per_cycle": 30, "unit_price": "300.00",
            "expected_basic_paid_per_cycle": "2000.00", "cycles": 6, "start_date": day(0),
        });
        let (status, course) =
            server.post("/v1/authorizations", Some(&own), Some("apply"), &request);
        assert_eq!(status, 201, "{backend}: {course}");
        assert_eq!(course["status"], "active");
        assert_eq!(course["cycles_authorized"], 6);
        assert_eq!(course["cycles"][5]["last_day"], day(179));
        let id = course["id"].as_i64().unwrap();
        let (status, replay) =
            server.post("/v1/authorizations", Some(&own), Some("apply"), &request);
        assert_eq!(
            (status, &replay),
            (201, &course),
            "a retry gets the same course"
        );

        // Without naming the course the drug is not paid.
        let (_, unnamed) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("d0"),
            &dispensing(member, None, &day(0), "PH-001"),
        );
        // (The course's EGFR result would have met the biomarker rule.)
        assert_eq!(
            item(&unnamed)["reasons"],
            json!(["biomarker_required", "authorization_required"]),
            "{unnamed}"
        );

        // Three cycles, a month apart: each paid 0.70 x (9000 - 2000) = 4900.
        for (cycle, offset) in [(1, 0), (2, 30), (3, 60)] {
            if offset > 0 {
                server = on_day(server, offset);
            }
            let claim = dispensing(member, Some(id), &day(offset), "PH-001");
            let (status, paid) = server.post(
                "/v1/claims",
                Some(&pharmacy),
                Some(&format!("d{cycle}")),
                &claim,
            );
            assert_eq!(status, 201, "{backend}: {paid}");
            assert_eq!(
                item(&paid)["outcome"],
                "paid",
                "{backend} cycle {cycle}: {paid}"
            );
            assert_eq!(item(&paid)["payable"], "4900.00");
            assert_eq!(
                (
                    item(&paid)["authorization_id"].clone(),
                    item(&paid)["cycle"].clone()
                ),
                (json!(id), json!(cycle))
            );
        }

        // Cycle 4 needs an assessment dated from the first day of cycle 3.
        server = on_day(server, 90);
        let (_, coverage) = server.get(&format!("/v1/members/{member}/coverage"), Some(&own));
        let shown = &coverage["products"][0]["courses"][0];
        assert_eq!(
            (
                shown["cycles_dispensed"].clone(),
                shown["cycles_left"].clone()
            ),
            (json!(3), json!(3))
        );
        assert_eq!(shown["next_assessment_due"], day(90), "{coverage}");
        // Cycles 4-6 left at 4900 each.
        assert_eq!(coverage["products"][0]["case_reserve"], "14700.00");
        let (_, refused) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("d4"),
            &dispensing(member, Some(id), &day(90), "PH-001"),
        );
        assert_eq!(
            item(&refused)["reasons"],
            json!(["followup_required"]),
            "{refused}"
        );
        let assessment = json!({ "assessed_on": day(89), "response": "partial_response" });
        let (status, followed) = server.post(
            &format!("/v1/authorizations/{id}/followups"),
            Some(&hospital),
            Some("f1"),
            &assessment,
        );
        assert_eq!(status, 201, "{followed}");
        assert_eq!(followed["next_assessment_due"], Value::Null);
        let (_, paid) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("d4b"),
            &dispensing(member, Some(id), &day(90), "PH-001"),
        );
        assert_eq!(item(&paid)["outcome"], "paid", "{paid}");
        assert_eq!(item(&paid)["cycle"], 4);

        // Progression: the dispensing that day is covered, the course ends after it.
        server = on_day(server, 120);
        let progression = json!({ "assessed_on": day(120), "response": "progressive_disease" });
        let (status, _) = server.post(
            &format!("/v1/authorizations/{id}/followups"),
            Some(&hospital),
            Some("f2"),
            &progression,
        );
        assert_eq!(status, 201);
        let (_, paid) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("d5"),
            &dispensing(member, Some(id), &day(120), "PH-001"),
        );
        assert_eq!(item(&paid)["outcome"], "paid", "{paid}");
        server = on_day(server, 150);
        let (_, ended) = server.post(
            "/v1/claims",
            Some(&pharmacy),
            Some("d6"),
            &dispensing(member, Some(id), &day(150), "PH-001"),
        );
        assert_eq!(item(&ended)["reasons"], json!(["course_ended"]), "{ended}");
        let (_, read) = server.get(&format!("/v1/authorizations/{id}"), Some(&own));
        assert_eq!(read["status"], "ended_progression", "{read}");
        let (status, problem) = server.post(
            &format!("/v1/authorizations/{id}/cancel"),
            Some(&own),
            Some("x1"),
            &json!({ "reason": "stopping" }),
        );
        assert_eq!(
            (status, problem["code"].clone()),
            (409, json!("not_active"))
        );

        // A second request: more cycles than the drug allows, denied; one
        // starting yesterday is refused outright.
        let mut again = request.clone();
        again["cycles"] = json!(13);
        again["start_date"] = json!(day(150));
        let (status, denied) = server.post(
            "/v1/authorizations",
            Some(&server.insurer.clone()),
            Some("apply-2"),
            &again,
        );
        assert_eq!(status, 201);
        assert_eq!(
            (denied["status"].clone(), denied["reasons"].clone()),
            (json!("denied"), json!(["course_too_long"]))
        );
        again["start_date"] = json!(day(149));
        let (status, problem) =
            server.post("/v1/authorizations", Some(&own), Some("apply-3"), &again);
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/start_date");
        let (_, list) = server.get(&format!("/v1/members/{member}/authorizations"), Some(&own));
        assert_eq!(list.as_array().map(Vec::len), Some(2));
        let metrics = server.get_text("/metrics", None).2;
        assert!(
            metrics.contains(r#"puhui_authorizations_decided_total{status="denied"} 1"#),
            "{metrics}"
        );
    }
}
