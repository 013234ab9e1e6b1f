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
