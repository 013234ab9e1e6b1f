//! The experience study's aggregates, on both backends: a small portfolio loaded in bulk with
//! known answers (age bands at their boundaries, a payment after the as-of date, a payment that
//! falls in the next China day, a reversal), plus one claim decided and reversed through the
//! ordinary write path.

mod common;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use common::*;
use engine::store::claims::{self, ReversalRequest};
use engine::store::experience::{
    self, ClaimCell, PaymentCell, PricingGroup, SyntheticClaim, SyntheticMember, years_before,
};
use engine::store::{enrollment, products};

fn at(date: NaiveDate, hour: u32) -> NaiveDateTime {
    NaiveDateTime::new(date, NaiveTime::from_hms_opt(hour, 0, 0).unwrap())
}

fn group(band: &str, sex: &str, preexisting: bool) -> PricingGroup {
    PricingGroup {
        age_band: band.into(),
        sex: sex.into(),
        preexisting,
    }
}

fn month(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

#[test]
fn aggregates_by_group_benefit_and_month_on_both_backends() {
    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        let toml = product_toml("exp-city", "500000.00", 0, None);
        products::load(&mut conn, &ctx(&keys, "cli"), &product(&toml)).unwrap();
        let start = products::current(&mut conn, "exp-city")
            .unwrap()
            .product
            .period_start;
        let as_of = start + Duration::days(30);

        let members = vec![
            // 70 at the period start.
            SyntheticMember {
                birth_date: years_before(start, 70).unwrap(),
                sex: "male",
                declared_conditions: "[]",
                coverage_start: start,
            },
            // 29, declared a condition, covered from day 10.
            SyntheticMember {
                birth_date: years_before(start, 30).unwrap() + Duration::days(1),
                sex: "female",
                declared_conditions: "[\"C34.1\"]",
                coverage_start: start + Duration::days(10),
            },
            // 18 on the day: the older band.
            SyntheticMember {
                birth_date: years_before(start, 18).unwrap(),
                sex: "male",
                declared_conditions: "[]",
                coverage_start: start,
            },
            // 18 the day after: still 0-17.
            SyntheticMember {
                birth_date: years_before(start, 18).unwrap() + Duration::days(1),
                sex: "male",
                declared_conditions: "[]",
                coverage_start: start,
            },
            // Covered only after the as-of date: no exposure.
            SyntheticMember {
                birth_date: years_before(start, 40).unwrap(),
                sex: "female",
                declared_conditions: "[]",
                coverage_start: as_of + Duration::days(1),
            },
        ];
        let day = |n: i64| start + Duration::days(n);
        let claims_in = vec![
            SyntheticClaim {
                member: 0,
                benefit: "inpatient",
                service_date: day(2),
                // The second payment is after the as-of date.
                payments: vec![(at(day(3), 2), 10_000), (at(day(35), 2), 5_000)],
            },
            SyntheticClaim {
                member: 0,
                benefit: "inpatient",
                service_date: day(5),
                payments: vec![(at(day(6), 2), 3_000), (at(day(9), 2), -3_000)],
            },
            SyntheticClaim {
                member: 1,
                benefit: "specialty_drug",
                service_date: day(12),
                // 20:00 UTC is 04:00 the next day in China.
                payments: vec![
                    (at(as_of, 20), 7_000),
                    (at(as_of - Duration::days(1), 20), 20_000),
                ],
            },
        ];
        experience::bulk_load(
            &mut conn,
            "exp-city",
            "t1",
            &members,
            &claims_in,
            at(start, 0),
        )
        .unwrap();

        let data = experience::read(&mut conn, "exp-city", as_of).unwrap();
        let mut enrolment: Vec<(String, NaiveDate, i64)> = data
            .enrolment
            .iter()
            .map(|c| (c.group.id(), c.coverage_start, c.members))
            .collect();
        enrolment.sort();
        assert_eq!(
            enrolment,
            vec![
                ("0-17/M/standard".to_string(), start, 1),
                ("18-39/F/preexisting".to_string(), day(10), 1),
                ("18-39/M/standard".to_string(), start, 1),
                ("65-74/M/standard".to_string(), start, 1),
            ],
            "{}",
            t.backend
        );

        let mut claims_out = data.claims.clone();
        claims_out.sort_by(|a, b| a.benefit.cmp(&b.benefit));
        let m = month(day(2));
        assert_eq!(
            claims_out[0],
            ClaimCell {
                group: group("65-74", "M", false),
                benefit: "inpatient".into(),
                service_month: month(day(2)),
                claims: if month(day(5)) == m { 2 } else { 1 },
                paid_claims: 1,
                paid_fen: 10_000,
                paid_fen_squared: 1.0e8,
            },
            "{}",
            t.backend
        );
        assert_eq!(claims_out[1].benefit, "specialty_drug");
        assert_eq!(claims_out[1].group, group("18-39", "F", true));
        assert_eq!(claims_out[1].paid_fen, 20_000, "{}", t.backend);

        let mut payments = data.payments.clone();
        payments.sort_by(|a, b| {
            (&a.service_month, &a.payment_month).cmp(&(&b.service_month, &b.payment_month))
        });
        let total: i64 = payments.iter().map(|p| p.paid_fen).sum();
        assert_eq!(total, 30_000, "{}: {payments:?}", t.backend);
        assert!(payments.contains(&PaymentCell {
            service_month: month(day(12)),
            payment_month: month(as_of),
            paid_fen: 20_000,
        }));

        // One claim through the ordinary path, then reversed: counted, netted to nothing.
        let recorded = enrollment::enroll(
            &mut conn,
            &ctx(&keys, "insurer:1"),
            "enrol-1",
            &enrollment_request("exp-city", 1, &[]),
        )
        .unwrap();
        let member_id = recorded.body.member.id;
        let decided = claims::submit(
            &mut conn,
            &ctx(&keys, "insurer:1"),
            "claim-1",
            &inpatient_claim(member_id, "26000.00", "1000.00", "K35.8"),
        )
        .unwrap();
        let claim_id = decided.body.id;
        let real_as_of = today();
        let before = experience::read(&mut conn, "exp-city", real_as_of).unwrap();
        let paid_before: i64 = before.claims.iter().map(|c| c.paid_fen).sum();
        claims::reverse(
            &mut conn,
            &ctx(&keys, "insurer:1"),
            "reverse-1",
            claim_id,
            &ReversalRequest {
                reason: "test".into(),
            },
        )
        .unwrap();
        let after = experience::read(&mut conn, "exp-city", real_as_of).unwrap();
        let paid_after: i64 = after.claims.iter().map(|c| c.paid_fen).sum();
        let claims_after: i64 = after.claims.iter().map(|c| c.claims).sum();
        let claims_before: i64 = before.claims.iter().map(|c| c.claims).sum();
        // (26,000 - 1,000 basic - 1,000 deductible) x 80 % = 19,200.00.
        assert_eq!(paid_before - paid_after, 1_920_000, "{}", t.backend);
        assert_eq!(claims_after, claims_before, "{}", t.backend);
    }
}

/// The case reserve of a product's treatment courses as of the study's date, on both backends,
/// against the rule worked by hand: several courses, some cycles dispensed (one after the date,
/// which still counts as open on it), one course cancelled, one ended by progression, a member
/// whose reserve the drug limit left caps.
#[test]
fn the_case_reserve_of_the_courses_as_of_the_date() {
    use chrono::{DateTime, Utc};
    use engine::domain::authorization_request::{AssessmentSubmission, CancelSubmission};
    use engine::store::{Keys, WriteContext, authorizations, china_date};
    use serde_json::json;

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
    /// A course of osimertinib from day `start`.
    fn course(
        member: i64,
        start: i64,
        cycle_days: u32,
        cycles: u32,
        (quantity, price, basic): (u32, &str, &str),
    ) -> engine::domain::authorization_request::AuthorizationSubmission {
        serde_json::from_value(json!({
            "member_id": member, "drug": "L01EB04", "diagnosis": "C34.1",
            "biomarkers": [{ "marker": "EGFR", "positive": true }], "prescriber": "H-001",
            "cycle_days": cycle_days, "quantity_per_cycle": quantity, "unit_price": price,
            "expected_basic_paid_per_cycle": basic, "cycles": cycles,
            "start_date": day(start).to_string(),
        }))
        .unwrap()
    }

    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        let toml = product_toml("courses", "50000.00", 0, None).replace(
            "designated_providers = [\"PH-001\"]",
            "designated_providers = [\"PH-001\"]\nrequires_authorization = true\n\
             max_cycle_days = 30\nmax_course_cycles = 12\nfollowup_every_cycles = 3",
        );
        products::load(&mut conn, &ctx_at(&keys, "cli", 0), &product(&toml)).unwrap();
        // Born 1980-01-01; odd serials are men. Member 2 declared lung cancer: 30 % on C34.
        let mut member = |serial: u32, declared: &[&str]| {
            enrollment::enroll(
                &mut conn,
                &ctx_at(&keys, "insurer:1", 0),
                &format!("enrol-{serial}"),
                &enrollment_request("courses", serial, declared),
            )
            .unwrap()
            .json()["member"]["id"]
                .as_i64()
                .unwrap()
        };
        let (m1, m2, m3, m4) = (
            member(1, &[]),
            member(2, &["C34.1"]),
            member(3, &[]),
            member(4, &[]),
        );
        let mut conn = t.db.get().unwrap();
        let mut n = 0;
        let mut authorise = |conn: &mut engine::DbConn, days: i64, request| {
            n += 1;
            let made = authorizations::request(
                conn,
                &ctx_at(&keys, "insurer:1", days),
                &format!("a{n}"),
                &request,
            )
            .unwrap();
            assert_eq!(made.json()["status"], "active", "{}", t.backend);
            made.body.id
        };
        let a = authorise(
            &mut conn,
            0,
            course(m1, 0, 30, 6, (30, "510.00", "1000.00")),
        );
        let b = authorise(&mut conn, 0, course(m2, 0, 30, 4, (10, "1000.00", "0")));
        let c = authorise(&mut conn, 0, course(m3, 0, 10, 5, (30, "510.00", "0")));
        let e = authorise(&mut conn, 0, course(m4, 0, 30, 6, (100, "800.00", "0")));
        let mut k = 0;
        let mut dispense = |conn: &mut engine::DbConn, member: i64, course: i64, days: i64, qty| {
            k += 1;
            let claim: engine::domain::claim::ClaimSubmission = serde_json::from_value(json!({
                "member_id": member, "kind": "specialty_drug",
                "service_date": day(days).to_string(), "provider_id": "PH-001",
                "diagnosis": "C34.1", "authorization_id": course,
                "items": [{ "drug": "L01EB04", "quantity": qty, "unit_price": "1.00",
                            "basic_paid": "0", "biomarkers": [] }],
            }))
            .unwrap();
            let decided = claims::submit(
                conn,
                &ctx_at(&keys, "provider:PH-001", days),
                &format!("d{k}"),
                &claim,
            )
            .unwrap()
            .json();
            assert_eq!(
                decided["decision"]["items"][0]["outcome"], "paid",
                "{}: {decided}",
                t.backend
            );
        };
        // A: cycles 1 and 2 by the date, cycle 3 on day 80, after it.
        dispense(&mut conn, m1, a, 0, 30);
        dispense(&mut conn, m1, a, 30, 30);
        dispense(&mut conn, m1, a, 80, 30);
        // B: cycle 1, then progression on day 40.
        dispense(&mut conn, m2, b, 0, 10);
        authorizations::record_followup(
            &mut conn,
            &ctx_at(&keys, "provider:H-001", 40),
            "f1",
            b,
            &AssessmentSubmission {
                assessed_on: day(40).to_string(),
                response: "progressive_disease".into(),
            },
        )
        .unwrap();
        // C: cancelled on day 5.
        authorizations::cancel(
            &mut conn,
            &ctx_at(&keys, "insurer:1", 5),
            "c1",
            c,
            &CancelSubmission {
                reason: "switched to another course".into(),
            },
        )
        .unwrap();
        // D and F once C and B have ended: they do not overlap.
        let d = authorise(&mut conn, 6, course(m3, 6, 30, 3, (20, "510.00", "200.00")));
        let f = authorise(&mut conn, 41, course(m2, 41, 30, 2, (10, "1000.00", "0")));
        // E: cycle 1 paid at 800.00 a unit: 0.70 x 80,000 = 56,000 of the 100,000 limit.
        let mut conn2 = t.db.get().unwrap();
        let claim: engine::domain::claim::ClaimSubmission = serde_json::from_value(json!({
            "member_id": m4, "kind": "specialty_drug",
            "service_date": day(0).to_string(), "provider_id": "PH-001",
            "diagnosis": "C34.1", "authorization_id": e,
            "items": [{ "drug": "L01EB04", "quantity": 100, "unit_price": "800.00",
                        "basic_paid": "0", "biomarkers": [] }],
        }))
        .unwrap();
        let paid = claims::submit(
            &mut conn2,
            &ctx_at(&keys, "provider:PH-001", 0),
            "e1",
            &claim,
        )
        .unwrap()
        .json();
        assert_eq!(paid["decision"]["items"][0]["payable"], "56000.00");

        let as_of = day(75);
        let data = experience::read(&mut conn, "courses", as_of).unwrap();
        let mut got: Vec<(String, i64, i64, i64)> = data
            .case_reserves
            .iter()
            .map(|cell| {
                (
                    cell.group.id(),
                    cell.members,
                    cell.authorizations,
                    cell.case_reserve_fen,
                )
            })
            .collect();
        got.sort();
        // Bills may come 30 days late: cycles ending on or after day 45 count.
        // A (30-day cycles from day 0): cycles 3-6 (cycle 3 was dispensed only after the
        //   date), 4 x round(0.70 x (30 x 510 - 1000)) = 4 x 10,010.00.
        // D (from day 6): cycle 1 ended on day 35; cycles 2-3, 2 x 0.70 x (20 x 510 - 200).
        // F (member 2, pre-existing, from day 41): cycles 1-2, 2 x 0.30 x 10 x 1000.
        // B ended by progression on day 40 and C cancelled on day 5: nothing.
        // E: cycles 2-6, 5 x 56,000, capped at the 44,000 left of the limit.
        let want = vec![
            ("40-54/F/preexisting".to_owned(), 1, 1, 2 * 300_000),
            ("40-54/F/standard".to_owned(), 1, 1, 4_400_000),
            (
                "40-54/M/standard".to_owned(),
                2,
                2,
                4 * 1_001_000 + 2 * 700_000,
            ),
        ];
        assert_eq!(got, want, "{}: case reserve by group", t.backend);
        // The coverage screen on the same day agrees member by member, except that it sees
        // the cycle of A dispensed since.
        for (member, want) in [
            (m1, 3 * 1_001_000),
            (m2, 600_000),
            (m3, 1_400_000),
            (m4, 4_400_000),
        ] {
            let cover = authorizations::coverage_on(&mut conn, member, as_of).unwrap();
            assert_eq!(cover.products[0].case_reserve.0, want, "{}", t.backend);
        }
        let _ = (d, f);
    }
}
