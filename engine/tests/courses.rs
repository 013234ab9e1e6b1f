//! Authorised treatment courses in storage, on both backends: the request
//! decided and replayed, dispensings against it cycle by cycle, reversal,
//! follow-up and appeal, progression and cancel, the coverage screen, and
//! two pharmacies dispensing the same cycle at once.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use engine::DbConn;
use engine::StoreError;
use engine::domain::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission,
};
use engine::domain::claim::{ClaimSubmission, validate_claim};
use engine::store::claims::{self, BatchClaim, ReversalRequest};
use engine::store::{Keys, WriteContext, authorizations, china_date, enrollment, products};
use serde_json::{Value, json};

use common::{JsonBody, TestDb, backends, enrollment_request, keys, product, product_toml};

/// The test product with osimertinib paid only in a course: 30-day cycles
/// at most, 12 cycles, an assessment every 3 cycles; two pharmacies.
fn course_product() -> String {
    product_toml("city", "50000.00", 0, None).replace(
        "designated_providers = [\"PH-001\"]",
        "designated_providers = [\"PH-001\", \"PH-002\"]\nrequires_authorization = true\n\
         max_cycle_days = 30\nmax_course_cycles = 12\nfollowup_every_cycles = 3",
    )
}

/// Day 0 of the tests: now. Later writes move the clock on.
fn at(days: i64) -> DateTime<Utc> {
    Utc::now() + Duration::days(days)
}

fn day(days: i64) -> NaiveDate {
    china_date(at(days))
}

fn ctx_at<'a>(keys: &'a Keys, actor: &'a str, days: i64) -> WriteContext<'a> {
    WriteContext {
        keys,
        actor,
        now: at(days),
    }
}

fn setup(t: &TestDb, keys: &Keys) -> i64 {
    let mut conn = t.db.get().unwrap();
    let loaded = product(&course_product());
    products::load(&mut conn, &ctx_at(keys, "cli", 0), &loaded).unwrap();
    let enrolled = enrollment::enroll(
        &mut conn,
        &ctx_at(keys, "insurer:1", 0),
        "enrol-1",
        &enrollment_request("city", 1, &[]),
    )
    .unwrap();
    enrolled.json()["member"]["id"].as_i64().unwrap()
}

fn course_request(member_id: i64, cycles: u32) -> AuthorizationSubmission {
    serde_json::from_value(json!({
        "member_id": member_id, "drug": "L01EB04", "diagnosis": "C34.1",
        "biomarkers": [{ "marker": "EGFR", "positive": true }], "prescriber": "H-001",
        "cycle_days": 30, "quantity_per_cycle": 30, "unit_price": "510.00",
        "expected_basic_paid_per_cycle": "1000.00", "cycles": cycles,
        "start_date": day(0).to_string(),
    }))
    .unwrap()
}

/// A dispensing on day `days` of the course, by `pharmacy`.
fn dispensing(member_id: i64, course: i64, days: i64, pharmacy: &str, qty: u32) -> ClaimSubmission {
    serde_json::from_value(json!({
        "member_id": member_id, "kind": "specialty_drug",
        "service_date": day(days).to_string(), "provider_id": pharmacy,
        "diagnosis": "C34.100x001", "authorization_id": course,
        "items": [{ "drug": "L01EB04", "quantity": qty, "unit_price": "510.00",
                    "basic_paid": "1000.00", "biomarkers": [] }],
    }))
    .unwrap()
}

struct Journey<'a> {
    conn: &'a mut DbConn,
    keys: &'a Keys,
    member: i64,
    course: i64,
}

impl Journey<'_> {
    fn dispense(&mut self, key: &str, days: i64, pharmacy: &str, qty: u32) -> Value {
        let actor = format!("provider:{pharmacy}");
        let ctx = ctx_at(self.keys, &actor, days);
        let claim = dispensing(self.member, self.course, days, pharmacy, qty);
        claims::submit(self.conn, &ctx, key, &claim).unwrap().json()
    }

    /// An assessment dated day `assessed`, recorded on day `recorded`.
    fn followup(&mut self, key: &str, assessed: i64, recorded: i64, response: &str) -> Value {
        let submission = AssessmentSubmission {
            assessed_on: day(assessed).to_string(),
            response: response.into(),
        };
        let ctx = ctx_at(self.keys, "provider:H-001", recorded);
        authorizations::record_followup(self.conn, &ctx, key, self.course, &submission)
            .unwrap()
            .json()
    }
}

fn item(claim: &Value) -> &Value {
    &claim["decision"]["items"][0]
}

fn reasons(claim: &Value) -> Vec<String> {
    serde_json::from_value(item(claim)["reasons"].clone()).unwrap()
}

fn count(conn: &mut DbConn, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .unwrap()
        .n
}

#[test]
fn a_course_is_decided_dispensed_followed_up_and_ended() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys);
        let mut conn = t.db.get().unwrap();
        let insurer = ctx_at(&keys, "insurer:1", 0);
        let first =
            authorizations::request(&mut conn, &insurer, "a1", &course_request(member, 6)).unwrap();
        let view = first.json();
        assert_eq!(view["status"], "active", "{}: {view}", t.backend);
        assert_eq!(
            (
                view["cycles_requested"].clone(),
                view["cycles_authorized"].clone()
            ),
            (json!(6), json!(6))
        );
        let again =
            authorizations::request(&mut conn, &insurer, "a1", &course_request(member, 6)).unwrap();
        assert!(again.replayed);
        assert_eq!(again.json(), view);
        assert_eq!(count(&mut conn, "authorizations"), 1);
        let course = first.body.id;
        let mut journey = Journey {
            conn: &mut conn,
            keys: &keys,
            member,
            course,
        };

        // Cycles 1-3: paid, each once; the course's EGFR result counts.
        let cycle_1 = journey.dispense("d1", 0, "PH-001", 30);
        assert_eq!(
            item(&cycle_1)["outcome"],
            "paid",
            "{}: {cycle_1}",
            t.backend
        );
        assert_eq!(
            (
                item(&cycle_1)["authorization_id"].clone(),
                item(&cycle_1)["cycle"].clone()
            ),
            (json!(course), json!(1))
        );
        // round(0.70 x (30 x 510.00 - 1000.00)) = 10010.00
        assert_eq!(item(&cycle_1)["payable"], "10010.00");
        let twice = journey.dispense("d1b", 29, "PH-002", 20);
        assert_eq!(
            reasons(&twice),
            ["cycle_already_dispensed"],
            "{}",
            t.backend
        );
        let reversal = ReversalRequest {
            reason: "dispensed in error".into(),
        };
        let cycle_1_id = cycle_1["id"].as_i64().unwrap();
        claims::reverse(
            journey.conn,
            &ctx_at(&keys, "insurer:1", 1),
            "r1",
            cycle_1_id,
            &reversal,
        )
        .unwrap();
        let again = journey.dispense("d1c", 29, "PH-002", 20);
        assert_eq!(
            item(&again)["outcome"],
            "paid",
            "a reversal frees the cycle: {again}"
        );
        assert_eq!(item(&journey.dispense("d2", 30, "PH-001", 30))["cycle"], 2);
        assert_eq!(item(&journey.dispense("d3", 89, "PH-001", 30))["cycle"], 3);

        // Cycle 4 needs an assessment from the first day of cycle 3.
        let cycle_4 = journey.dispense("d4", 90, "PH-001", 30);
        assert_eq!(reasons(&cycle_4), ["followup_required"], "{}", t.backend);
        assert!(item(&cycle_4)["cycle"] == 4);
        // Assessed the day before, recorded after the dispensing was denied.
        journey.followup("f1", 89, 91, "partial_response");
        let appeal = claims::appeal(
            journey.conn,
            &ctx_at(&keys, "provider:PH-001", 91),
            "ap1",
            cycle_4["id"].as_i64().unwrap(),
            &Default::default(),
        )
        .unwrap()
        .json();
        assert_eq!(item(&appeal)["outcome"], "paid", "{}: {appeal}", t.backend);

        // Progression: a dispensing that day is covered, the next day not.
        journey.followup("f2", 130, 130, "progressive_disease");
        let on_the_day = journey.dispense("d5", 130, "PH-001", 30);
        assert_eq!(item(&on_the_day)["outcome"], "paid", "{on_the_day}");
        let after = journey.dispense("d6", 131, "PH-001", 10);
        assert_eq!(reasons(&after), ["course_ended", "cycle_already_dispensed"]);

        let cancel = CancelSubmission {
            reason: "no longer needed".into(),
        };
        let refused = authorizations::cancel(
            journey.conn,
            &ctx_at(&keys, "insurer:1", 131),
            "x1",
            course,
            &cancel,
        )
        .unwrap_err();
        assert!(
            matches!(
                refused,
                StoreError::Conflict {
                    code: "not_active",
                    ..
                }
            ),
            "{refused:?}"
        );
        let read = authorizations::view_on(journey.conn, course, day(131)).unwrap();
        assert_eq!(read.status.as_str(), "ended_progression");
        let dispensed: Vec<u32> = read
            .cycles
            .iter()
            .filter(|c| c.dispensed)
            .map(|c| c.cycle)
            .collect();
        assert_eq!(dispensed, [1, 2, 3, 4, 5]);
        assert_eq!(read.followups.len(), 2);
        assert_eq!(count(journey.conn, "authorization_cancels"), 0);
        let events: i64 = count(journey.conn, "audit_events");
        assert!(events > 10);
    }
}

#[test]
fn refused_requests_and_dispensings_store_nothing() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys);
        let mut conn = t.db.get().unwrap();
        let insurer = ctx_at(&keys, "insurer:1", 0);
        let mut past = course_request(member, 6);
        past.start_date = day(-1).to_string();
        let error = authorizations::request(&mut conn, &insurer, "a0", &past).unwrap_err();
        assert!(matches!(&error, StoreError::Validation(e) if e.for_field("start_date").is_some()));
        let unknown = authorizations::request(&mut conn, &insurer, "a0", &course_request(999, 6))
            .unwrap_err();
        assert!(matches!(&unknown, StoreError::Validation(e) if e.has_code("unknown_member")));
        assert_eq!(count(&mut conn, "authorizations"), 0);

        // A denial is stored and answered: 13 cycles is more than 12.
        let denied =
            authorizations::request(&mut conn, &insurer, "a1", &course_request(member, 13))
                .unwrap()
                .json();
        assert_eq!(denied["status"], "denied");
        assert_eq!(denied["reasons"], json!(["course_too_long"]));
        let ctx = ctx_at(&keys, "provider:PH-001", 0);
        let claims_before = count(&mut conn, "claims");
        let error = claims::submit(
            &mut conn,
            &ctx,
            "c1",
            &dispensing(member, 999, 0, "PH-001", 30),
        )
        .unwrap_err();
        match error {
            StoreError::Validation(errors) => {
                assert_eq!(errors.errors()[0].field, "authorization_id");
                assert_eq!(errors.errors()[0].code, "unknown_authorization");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(count(&mut conn, "claims"), claims_before);
        let course = denied["id"].as_i64().unwrap();
        let mismatch = claims::submit(
            &mut conn,
            &ctx,
            "c2",
            &dispensing(member, course, 0, "PH-001", 30),
        )
        .unwrap()
        .json();
        // A course not this claim's meets no biomarker requirement either.
        assert_eq!(
            reasons(&mismatch),
            ["biomarker_required", "authorization_mismatch"]
        );
        assert!(item(&mismatch)["cycle"].is_null());
        let followup = AssessmentSubmission {
            assessed_on: day(0).to_string(),
            response: "stable_disease".into(),
        };
        let error = authorizations::record_followup(&mut conn, &insurer, "f1", course, &followup)
            .unwrap_err();
        assert!(matches!(
            error,
            StoreError::Conflict {
                code: "authorization_denied",
                ..
            }
        ));
        // A cancel of an active course is dated today; a second is refused.
        let active =
            authorizations::request(&mut conn, &insurer, "a2", &course_request(member, 3)).unwrap();
        let cancel = CancelSubmission {
            reason: "changed hospital".into(),
        };
        let cancelled =
            authorizations::cancel(&mut conn, &insurer, "x1", active.body.id, &cancel).unwrap();
        assert_eq!(cancelled.body.cancel.as_ref().unwrap().cancelled_on, day(0));
        assert_eq!(cancelled.body.status.as_str(), "cancelled");
        let again =
            authorizations::cancel(&mut conn, &insurer, "x2", active.body.id, &cancel).unwrap_err();
        assert!(matches!(
            again,
            StoreError::Conflict {
                code: "not_active",
                ..
            }
        ));
        let on_the_day = claims::submit(
            &mut conn,
            &ctx,
            "c3",
            &dispensing(member, active.body.id, 0, "PH-001", 30),
        )
        .unwrap()
        .json();
        assert_eq!(item(&on_the_day)["outcome"], "paid", "{on_the_day}");
    }
}

#[test]
fn a_retried_request_replays_after_its_start_has_passed() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys);
        let mut conn = t.db.get().unwrap();
        let request = course_request(member, 6);
        let first =
            authorizations::request(&mut conn, &ctx_at(&keys, "insurer:1", 0), "a1", &request)
                .unwrap();
        assert!(!first.replayed);
        // The next day the course has started: the lost answer comes back.
        let tomorrow = ctx_at(&keys, "insurer:1", 1);
        let retry = authorizations::request(&mut conn, &tomorrow, "a1", &request).unwrap();
        assert!(retry.replayed);
        assert_eq!(retry.json(), first.json());
        assert_eq!(count(&mut conn, "authorizations"), 1);
        // Under a new key the same request is refused: it would start in the past.
        let error = authorizations::request(&mut conn, &tomorrow, "a2", &request).unwrap_err();
        assert!(
            matches!(&error, StoreError::Validation(e) if e.has_code("start_in_the_past")),
            "{error:?}"
        );
        assert_eq!(count(&mut conn, "authorizations"), 1);
    }
}

#[test]
fn the_coverage_screen_shows_active_courses_and_the_case_reserve() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys);
        let mut conn = t.db.get().unwrap();
        let insurer = ctx_at(&keys, "insurer:1", 0);
        let course = authorizations::request(&mut conn, &insurer, "a1", &course_request(member, 6))
            .unwrap()
            .body
            .id;
        let ctx = ctx_at(&keys, "provider:PH-001", 0);
        claims::submit(
            &mut conn,
            &ctx,
            "d1",
            &dispensing(member, course, 0, "PH-001", 30),
        )
        .unwrap();
        let cover = authorizations::coverage_on(&mut conn, member, day(0)).unwrap();
        let product = &cover.products[0];
        assert_eq!(product.courses.len(), 1, "{}", t.backend);
        let shown = &product.courses[0];
        assert_eq!((shown.cycles_dispensed, shown.cycles_left), (1, 5));
        assert_eq!(shown.next_assessment_due, Some(day(90)));
        // Five cycles left at 10,010.00, within the 100,000 limit less 10,010 paid.
        assert_eq!(product.case_reserve.to_string(), "50050.00");
        assert_eq!(shown.case_reserve.to_string(), "50050.00");
    }
}

#[test]
fn two_pharmacies_dispensing_the_same_cycle_at_once_pay_once() {
    for t in backends() {
        let keys = Arc::new(keys());
        let member = setup(&t, &keys);
        let course = {
            let mut conn = t.db.get().unwrap();
            let insurer = ctx_at(&keys, "insurer:1", 0);
            authorizations::request(&mut conn, &insurer, "a1", &course_request(member, 6))
                .unwrap()
                .body
                .id
        };
        let threads: Vec<_> = ["PH-001", "PH-002", "PH-001", "PH-002"]
            .into_iter()
            .enumerate()
            .map(|(n, pharmacy)| {
                let db = t.db.clone();
                let keys = Arc::clone(&keys);
                std::thread::spawn(move || {
                    let mut conn = db.get().unwrap();
                    let actor = format!("provider:{pharmacy}");
                    let ctx = ctx_at(&keys, &actor, 0);
                    let claim = dispensing(member, course, 0, pharmacy, 27 + n as u32);
                    claims::submit(&mut conn, &ctx, &format!("k{n}"), &claim)
                        .unwrap()
                        .json()
                })
            })
            .collect();
        let results: Vec<Value> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        let paid = results
            .iter()
            .filter(|r| item(r)["outcome"] == "paid")
            .count();
        assert_eq!(paid, 1, "{}: {results:?}", t.backend);
        for denied in results.iter().filter(|r| item(r)["outcome"] != "paid") {
            assert_eq!(reasons(denied), ["cycle_already_dispensed"]);
        }
        // The same within one batch of the claim writer.
        let mut conn = t.db.get().unwrap();
        let today = day(30);
        let batch_claims: Vec<_> = ["PH-001", "PH-002"]
            .iter()
            .enumerate()
            .map(|(n, pharmacy)| {
                let claim = dispensing(member, course, 30, pharmacy, 28 + n as u32);
                validate_claim(&claim, today).unwrap()
            })
            .collect();
        let actors = ["provider:PH-001", "provider:PH-002"];
        let batch: Vec<BatchClaim<'_>> = batch_claims
            .iter()
            .zip(actors)
            .map(|(claim, actor)| BatchClaim {
                ctx: ctx_at(&keys, actor, 30),
                idempotency_key: "b",
                claim,
            })
            .collect();
        let outcomes: Vec<Value> = claims::submit_batch(&mut conn, &batch)
            .into_iter()
            .map(|r| r.unwrap().json())
            .collect();
        assert_eq!(item(&outcomes[0])["outcome"], "paid", "{}", t.backend);
        assert_eq!(reasons(&outcomes[1]), ["cycle_already_dispensed"]);
    }
}

/// The course rules 6-8 as an independent model: one course of 6 cycles of
/// 30 days from day 0, an assessment needed every 3 cycles, 30 units at
/// 510.00 at most.
#[derive(Default)]
struct Model {
    /// Cycle -> the claim that paid it (not reversed).
    dispensed: std::collections::BTreeMap<u32, i64>,
    assessments: Vec<i64>,
    progression: Option<i64>,
    cancelled: Option<i64>,
}

impl Model {
    /// The end in force on `d`: 'p'rogression, 'c'ancel, 'd'one, or none.
    fn ended(&self, d: i64) -> Option<char> {
        let mut ends: Vec<(i64, u8, char)> = Vec::new();
        if let Some(p) = self.progression {
            ends.push((p, 0, 'p'));
        }
        if let Some(c) = self.cancelled {
            ends.push((c, 1, 'c'));
        }
        ends.push((179, 2, 'd'));
        ends.into_iter()
            .filter(|(day, _, _)| *day < d)
            .min()
            .map(|(_, _, end)| end)
    }

    fn reasons(&self, d: i64, quantity: u32, price_fen: i64) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if matches!(self.ended(d), Some('p' | 'c')) {
            reasons.push("course_ended");
        }
        let cycle = (d < 180).then(|| (d / 30 + 1) as u32);
        match cycle {
            None => reasons.push("outside_course"),
            Some(k) if self.dispensed.contains_key(&k) => reasons.push("cycle_already_dispensed"),
            Some(_) => {}
        }
        if quantity > 30 {
            reasons.push("quantity_exceeds_authorization");
        }
        if price_fen > 51_000 {
            reasons.push("price_exceeds_authorization");
        }
        if let Some(k) = cycle.filter(|k| *k > 3) {
            let m = 3 * ((k - 1) / 3);
            let opens = i64::from(m - 1) * 30;
            if !self.assessments.iter().any(|a| opens <= *a && *a <= d) {
                reasons.push("followup_required");
            }
        }
        reasons
    }
}

#[test]
fn a_seeded_sequence_of_course_events_matches_an_independent_model() {
    use rand::{Rng, SeedableRng};
    for seed in 0..4u64 {
        for t in backends() {
            let keys = keys();
            let member = setup(&t, &keys);
            let mut conn = t.db.get().unwrap();
            let insurer = ctx_at(&keys, "insurer:1", 0);
            let course =
                authorizations::request(&mut conn, &insurer, "a", &course_request(member, 6))
                    .unwrap()
                    .body
                    .id;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut model = Model::default();
            let mut d = 0i64;
            for step in 0..60 {
                d += rng.random_range(0..6);
                let key = format!("s{step}");
                match rng.random_range(0..100) {
                    0..60 => {
                        let quantity = if rng.random_bool(0.1) {
                            31
                        } else {
                            rng.random_range(20..=30)
                        };
                        let price = if rng.random_bool(0.1) {
                            "510.01"
                        } else {
                            "510.00"
                        };
                        let pharmacy = ["PH-001", "PH-002"][rng.random_range(0..2)];
                        let mut claim = dispensing(member, course, d, pharmacy, quantity);
                        claim.items[0]["unit_price"] = json!(price);
                        claim.items[0]["basic_paid"] = json!("0");
                        let actor = format!("provider:{pharmacy}");
                        let body =
                            claims::submit(&mut conn, &ctx_at(&keys, &actor, d), &key, &claim)
                                .unwrap()
                                .json();
                        let price_fen = if price == "510.00" { 51_000 } else { 51_001 };
                        let expected = model.reasons(d, quantity, price_fen);
                        assert_eq!(
                            reasons(&body),
                            expected,
                            "{} seed {seed} step {step} day {d}",
                            t.backend
                        );
                        if expected.is_empty() {
                            model
                                .dispensed
                                .insert((d / 30 + 1) as u32, body["id"].as_i64().unwrap());
                        }
                    }
                    60..80 => {
                        let assessed = (d - rng.random_range(0..3)).max(0);
                        let response = if rng.random_bool(0.08) {
                            "progressive_disease"
                        } else {
                            "stable_disease"
                        };
                        let submission = AssessmentSubmission {
                            assessed_on: day(assessed).to_string(),
                            response: response.into(),
                        };
                        authorizations::record_followup(
                            &mut conn,
                            &ctx_at(&keys, "insurer:1", d),
                            &key,
                            course,
                            &submission,
                        )
                        .unwrap();
                        model.assessments.push(assessed);
                        if response == "progressive_disease" {
                            model.progression =
                                Some(model.progression.map_or(assessed, |p| p.min(assessed)));
                        }
                    }
                    80..83 => {
                        let cancel = CancelSubmission {
                            reason: "stop".into(),
                        };
                        let result = authorizations::cancel(
                            &mut conn,
                            &ctx_at(&keys, "insurer:1", d),
                            &key,
                            course,
                            &cancel,
                        );
                        // A progression recorded for today already shows.
                        let shown_ended =
                            model.cancelled.is_some() || model.progression.is_some_and(|p| p <= d);
                        let allowed = !shown_ended && model.ended(d).is_none();
                        assert_eq!(
                            result.is_ok(),
                            allowed,
                            "{} seed {seed} step {step}: {result:?}",
                            t.backend
                        );
                        if allowed {
                            model.cancelled = Some(d);
                        }
                    }
                    _ => {
                        let Some((&cycle, &claim_id)) = model.dispensed.iter().next() else {
                            continue;
                        };
                        let reversal = ReversalRequest {
                            reason: "billed in error".into(),
                        };
                        claims::reverse(
                            &mut conn,
                            &ctx_at(&keys, "insurer:1", d),
                            &key,
                            claim_id,
                            &reversal,
                        )
                        .unwrap();
                        model.dispensed.remove(&cycle);
                    }
                }
            }
            let read = authorizations::view_on(&mut conn, course, day(d)).unwrap();
            let dispensed: Vec<u32> = read
                .cycles
                .iter()
                .filter(|c| c.dispensed)
                .map(|c| c.cycle)
                .collect();
            assert_eq!(
                dispensed,
                model.dispensed.keys().copied().collect::<Vec<_>>()
            );
        }
    }
}
