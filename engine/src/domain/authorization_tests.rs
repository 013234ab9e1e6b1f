//! Tests of authorised courses: the decision of a request, cycles and
//! status as of a date, the dispensing rules 6-8 through the adjudicator,
//! the follow-up window, the case reserve and the request validation.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::adjudication::*;
use super::authorization::*;
use super::authorization_request::*;
use super::claim::{BenefitKind, Biomarker, ClaimItem, ValidClaim};
use super::money::Fen;
use super::product::Product;
use super::product::tests::sample;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn yuan(s: &str) -> Fen {
    s.parse().unwrap()
}

/// The sample product with osimertinib paid only in a course: 30-day
/// cycles at most, 12 cycles, an assessment every 3; one qualified
/// hospital.
fn product() -> Product {
    let mut product = sample();
    product.qualified_prescribers = Some(vec!["XM-H-001".into()]);
    let drug = &mut product.specialty_drug.as_mut().unwrap().formulary[0];
    drug.requires_authorization = true;
    drug.max_cycle_days = Some(30);
    drug.max_course_cycles = Some(12);
    drug.followup_every_cycles = 3;
    product.validate().unwrap();
    product
}

/// Enrolled from the first day; 30 waiting days, so covered from 2026-07-31.
fn cover() -> MemberCover {
    MemberCover {
        coverage_start: date("2026-07-01"),
        waiting_waived: false,
        declared_conditions: vec![],
    }
}

fn egfr() -> Vec<Biomarker> {
    vec![Biomarker {
        marker: "EGFR".into(),
        positive: true,
    }]
}

/// 12 cycles of 30 days of osimertinib from 2026-09-01, 30 tablets at 510.
fn request() -> CourseRequest {
    CourseRequest {
        member_id: 1,
        drug: "L01EB04".parse().unwrap(),
        diagnosis: "C34.1".parse().unwrap(),
        biomarkers: egfr(),
        prescriber: "XM-H-001".into(),
        cycle_days: 30,
        quantity_per_cycle: 30,
        unit_price: yuan("510.00"),
        expected_basic_paid_per_cycle: yuan("1000.00"),
        cycles: 6,
        start_date: date("2026-09-01"),
    }
}

fn decide(request: &CourseRequest) -> CourseDecision {
    decide_authorization(Some((&product(), &cover())), &[], request)
}

fn course(request: CourseRequest) -> CourseState {
    let decision = decide(&request);
    CourseState {
        course: Course {
            id: 7,
            member_id: request.member_id,
            product_id: "sample-2026".into(),
            request,
            decision,
        },
        assessments: vec![],
        cancelled_on: None,
        dispensed: BTreeSet::new(),
    }
}

fn active() -> CourseState {
    let state = course(request());
    assert_eq!(state.course.decision.status, CourseStatus::Active);
    state
}

fn assessed(state: &mut CourseState, on: &str, response: Response) {
    state.assessments.push(Assessment {
        assessed_on: date(on),
        response,
    });
}

// --- deciding a request ----------------------------------------------------

#[test]
fn a_request_within_the_terms_is_active_with_its_cycles() {
    let decision = decide(&request());
    assert_eq!(decision.status, CourseStatus::Active);
    assert!(decision.reasons.is_empty());
    assert_eq!(
        (decision.cycles_requested, decision.cycles_authorized),
        (6, 6)
    );
}

#[test]
fn cycles_are_cut_to_those_ending_in_the_period() {
    // From 2026-09-01, cycle 10 ends 2027-06-28 and cycle 11 on 2027-07-28.
    let decision = decide(&CourseRequest {
        cycles: 12,
        ..request()
    });
    assert_eq!(
        (decision.cycles_requested, decision.cycles_authorized),
        (12, 10)
    );
    // A cycle that ends exactly on the period's last day still fits.
    let last_day = decide(&CourseRequest {
        start_date: date("2027-06-01"),
        cycles: 2,
        ..request()
    });
    assert_eq!(last_day.cycles_authorized, 1);
    let not_one = decide(&CourseRequest {
        start_date: date("2027-06-02"),
        ..request()
    });
    assert_eq!(not_one.status, CourseStatus::Denied);
    assert_eq!(not_one.reasons, vec![Reason::BeyondPeriod]);
    assert_eq!(not_one.cycles_authorized, 0);
}

#[test]
fn cover_reasons_come_alone() {
    let before_cover = decide(&CourseRequest {
        start_date: date("2026-07-30"),
        cycle_days: 45,
        ..request()
    });
    assert_eq!(before_cover.reasons, vec![Reason::WaitingPeriod]);
    assert_eq!(
        decide_authorization(None, &[], &request()).reasons,
        vec![Reason::NotCoveredPeriod]
    );
    let not_listed = decide(&CourseRequest {
        drug: "L01XX99".parse().unwrap(),
        cycle_days: 45,
        ..request()
    });
    assert_eq!(not_listed.reasons, vec![Reason::NotOnFormulary]);
}

#[test]
fn every_other_failing_reason_is_listed_in_order() {
    let existing = OtherCourse::of(&active());
    let all = CourseRequest {
        diagnosis: "C50.9".parse().unwrap(),
        biomarkers: vec![],
        prescriber: "XM-H-009".into(),
        cycle_days: 31,
        cycles: 13,
        ..request()
    };
    let decision = decide_authorization(Some((&product(), &cover())), &[existing], &all);
    assert_eq!(decision.status, CourseStatus::Denied);
    assert_eq!(
        decision.reasons,
        vec![
            Reason::IndicationMismatch,
            Reason::BiomarkerRequired,
            Reason::PrescriberNotQualified,
            Reason::CycleTooLong,
            Reason::CourseTooLong,
            Reason::OverlappingCourse,
        ]
    );
    // The bounds themselves are allowed.
    let at_bounds = decide(&CourseRequest {
        cycles: 12,
        start_date: date("2026-08-01"),
        ..request()
    });
    assert_eq!(at_bounds.status, CourseStatus::Active);
}

#[test]
fn only_a_live_course_of_the_same_drug_overlaps() {
    let product = product();
    let decide_next = |other: CourseState, start: &str| {
        let next = CourseRequest {
            start_date: date(start),
            ..request()
        };
        decide_authorization(
            Some((&product, &cover())),
            &[OtherCourse::of(&other)],
            &next,
        )
    };
    // The existing course runs 2026-09-01 to 2027-02-27, both inclusive.
    assert_eq!(
        decide_next(active(), "2027-02-27").reasons,
        vec![Reason::OverlappingCourse]
    );
    assert_eq!(
        decide_next(active(), "2027-02-28").status,
        CourseStatus::Active
    );
    let mut cancelled = active();
    cancelled.cancelled_on = Some(date("2026-09-10"));
    assert_eq!(
        decide_next(cancelled, "2026-10-01").status,
        CourseStatus::Active
    );
    let mut progressed = active();
    assessed(&mut progressed, "2026-09-20", Response::ProgressiveDisease);
    assert_eq!(
        decide_next(progressed, "2026-10-01").status,
        CourseStatus::Active
    );
    let mut other_drug = active();
    other_drug.course.request.drug = "L01FD01".parse().unwrap();
    assert_eq!(
        decide_next(other_drug, "2026-10-01").status,
        CourseStatus::Active
    );
}

// --- cycles and status -----------------------------------------------------

#[test]
fn cycles_cover_inclusive_days() {
    let state = active();
    assert_eq!(state.cycle_of(date("2026-08-31")), None);
    assert_eq!(state.cycle_of(date("2026-09-01")), Some(1));
    assert_eq!(state.cycle_of(date("2026-09-30")), Some(1));
    assert_eq!(state.cycle_of(date("2026-10-01")), Some(2));
    assert_eq!(
        state.cycle_bounds(6),
        (date("2027-01-29"), date("2027-02-27"))
    );
    assert_eq!(state.cycle_of(date("2027-02-27")), Some(6));
    assert_eq!(state.cycle_of(date("2027-02-28")), None);
}

#[test]
fn status_ends_the_day_after_its_event_and_the_first_sticks() {
    let mut state = active();
    assert_eq!(state.status_as_of(date("2027-02-27")), CourseStatus::Active);
    assert_eq!(
        state.status_as_of(date("2027-02-28")),
        CourseStatus::Completed
    );
    assessed(&mut state, "2026-12-01", Response::StableDisease);
    assessed(&mut state, "2026-12-10", Response::ProgressiveDisease);
    assert_eq!(state.status_as_of(date("2026-12-10")), CourseStatus::Active);
    assert_eq!(
        state.status_as_of(date("2026-12-11")),
        CourseStatus::EndedProgression
    );
    // A cancel after the progression does not change how it ended.
    state.cancelled_on = Some(date("2026-12-20"));
    assert_eq!(
        state.status_as_of(date("2027-01-01")),
        CourseStatus::EndedProgression
    );
    let mut cancelled = active();
    cancelled.cancelled_on = Some(date("2026-10-05"));
    assessed(&mut cancelled, "2026-10-06", Response::ProgressiveDisease);
    assert_eq!(
        cancelled.status_as_of(date("2026-10-05")),
        CourseStatus::Active
    );
    assert_eq!(
        cancelled.status_as_of(date("2026-10-20")),
        CourseStatus::Cancelled
    );
    let denied = course(CourseRequest {
        cycles: 13,
        ..request()
    });
    assert_eq!(
        denied.status_as_of(date("2026-10-01")),
        CourseStatus::Denied
    );
    // What a read shows: an event of the day already, completion only after.
    assert_eq!(
        cancelled.status_on(date("2026-10-05")),
        CourseStatus::Cancelled
    );
    assert_eq!(
        cancelled.status_on(date("2026-10-04")),
        CourseStatus::Active
    );
    assert_eq!(active().status_on(date("2027-02-27")), CourseStatus::Active);
    assert_eq!(
        active().status_on(date("2027-02-28")),
        CourseStatus::Completed
    );
}

#[test]
fn the_followup_window_opens_on_the_first_day_of_cycle_m() {
    assert_eq!(CourseState::followup_anchor(3, 3), None);
    assert_eq!(CourseState::followup_anchor(3, 4), Some(3));
    assert_eq!(CourseState::followup_anchor(3, 6), Some(3));
    assert_eq!(CourseState::followup_anchor(3, 7), Some(6));
    assert_eq!(CourseState::followup_anchor(0, 9), None);
    let mut state = active();
    // Cycle 3 opens 2026-10-31; cycle 4 runs 2026-11-30 to 2026-12-29.
    let in_cycle_4 = date("2026-12-05");
    assert!(!state.followup_met(3, 4, in_cycle_4));
    assessed(&mut state, "2026-10-30", Response::PartialResponse);
    assert!(!state.followup_met(3, 4, in_cycle_4));
    assessed(&mut state, "2026-12-06", Response::PartialResponse);
    assert!(
        !state.followup_met(3, 4, in_cycle_4),
        "after the service date"
    );
    assert!(
        state.followup_met(3, 4, date("2026-12-06")),
        "on the service date"
    );
    assessed(&mut state, "2026-10-31", Response::StableDisease);
    assert!(state.followup_met(3, 4, in_cycle_4));
    // Cycles 4-6 look to cycle 3, cycle 7 to cycle 6.
    assert!(state.followup_met(3, 6, date("2027-01-29")));
}

#[test]
fn the_next_assessment_due_is_the_first_cycle_still_needing_one() {
    let mut state = CourseState {
        course: Course {
            decision: decide(&CourseRequest {
                cycles: 9,
                ..request()
            }),
            ..active().course
        },
        ..active()
    };
    assert_eq!(
        state.next_assessment_due(3, date("2026-08-20")),
        Some(date("2026-11-30"))
    );
    assessed(&mut state, "2026-11-02", Response::StableDisease);
    // Cycles 4-6 are met; cycle 7 (from 2027-02-28) looks to cycle 6.
    assert_eq!(
        state.next_assessment_due(3, date("2026-11-02")),
        Some(date("2027-02-28"))
    );
    state.dispensed.insert(7);
    assert_eq!(
        state.next_assessment_due(3, date("2026-11-02")),
        Some(date("2027-03-30"))
    );
    assert_eq!(state.next_assessment_due(0, date("2026-11-02")), None);
}

// --- dispensing -------------------------------------------------------------

fn dispensing(service_date: &str, quantity: u32, unit_price: &str) -> ValidClaim {
    ValidClaim {
        member_id: 1,
        kind: BenefitKind::SpecialtyDrug,
        service_date: date(service_date),
        provider_id: "XM-PH-001".into(),
        diagnosis: "C34.100x001".parse().unwrap(),
        items: vec![ClaimItem::Drug {
            drug: "L01EB04".parse().unwrap(),
            quantity,
            unit_price: yuan(unit_price),
            basic_paid: yuan("1000.00"),
            biomarkers: vec![],
        }],
        authorization_id: Some(7),
    }
}

fn dispense(claim: &ValidClaim, state: &CourseState) -> ItemDecision {
    let decision = adjudicate_in_course(
        &product(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        claim,
        Some(state),
    )
    .unwrap();
    decision.items[0].clone()
}

fn reasons(claim: &ValidClaim, state: &CourseState) -> Vec<Reason> {
    dispense(claim, state).reasons
}

#[test]
fn a_dispensing_in_its_course_is_paid_and_names_its_cycle() {
    let item = dispense(&dispensing("2026-10-01", 30, "510.00"), &active());
    assert_eq!(item.outcome, ItemOutcome::Paid, "{:?}", item.reasons);
    // The course's EGFR result meets the biomarker rule.
    assert_eq!(item.payable, yuan("10010.00"));
    assert_eq!((item.authorization_id, item.cycle), (Some(7), Some(2)));
    // First and last day of a cycle are in it.
    for day in ["2026-09-01", "2026-09-30", "2026-11-29"] {
        assert!(
            reasons(&dispensing(day, 30, "510.00"), &active()).is_empty(),
            "{day}"
        );
    }
    let mut assessed_once = active();
    assessed(&mut assessed_once, "2026-11-01", Response::StableDisease);
    let last_day = dispense(&dispensing("2027-02-27", 30, "510.00"), &assessed_once);
    assert_eq!(
        (last_day.outcome, last_day.cycle),
        (ItemOutcome::Paid, Some(6))
    );
}

#[test]
fn a_drug_paid_only_in_a_course_needs_one_named() {
    let claim = ValidClaim {
        authorization_id: None,
        ..dispensing("2026-10-01", 30, "510.00")
    };
    let decision = adjudicate(
        &product(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    )
    .unwrap();
    assert_eq!(
        decision.items[0].reasons,
        vec![Reason::BiomarkerRequired, Reason::AuthorizationRequired]
    );
    assert_eq!(decision.items[0].cycle, None);
    // A drug that needs no course is decided as before.
    let decision = adjudicate(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    )
    .unwrap();
    assert_eq!(decision.items[0].reasons, vec![Reason::BiomarkerRequired]);
}

#[test]
fn a_course_not_this_claims_is_a_mismatch_alone() {
    let claim = dispensing("2026-10-01", 30, "510.00");
    let mut other_member = active();
    other_member.course.member_id = 2;
    let mut other_drug = active();
    other_drug.course.request.drug = "L01FD01".parse().unwrap();
    let mut other_diagnosis = active();
    other_diagnosis.course.request.diagnosis = "C34.2".parse().unwrap();
    let denied = course(CourseRequest {
        cycles: 13,
        ..request()
    });
    for state in [other_member, other_drug, other_diagnosis, denied] {
        let item = dispense(&claim, &state);
        assert_eq!(
            item.reasons,
            vec![Reason::BiomarkerRequired, Reason::AuthorizationMismatch]
        );
        assert_eq!(item.cycle, None);
    }
    let mut broader = active();
    broader.course.request.diagnosis = "C34".parse().unwrap();
    assert!(reasons(&claim, &broader).is_empty());
    assert!(diagnoses_match(
        &"c34.1".parse().unwrap(),
        &"C341".parse().unwrap()
    ));
}

#[test]
fn a_course_ends_the_day_after_a_progression_or_cancel() {
    let on_the_day = dispensing("2026-10-10", 30, "510.00");
    let next_day = dispensing("2026-10-11", 30, "510.00");
    let mut progressed = active();
    assessed(&mut progressed, "2026-10-10", Response::ProgressiveDisease);
    assert!(reasons(&on_the_day, &progressed).is_empty());
    assert_eq!(reasons(&next_day, &progressed), vec![Reason::CourseEnded]);
    let mut cancelled = active();
    cancelled.cancelled_on = Some(date("2026-10-10"));
    assert!(reasons(&on_the_day, &cancelled).is_empty());
    assert_eq!(reasons(&next_day, &cancelled), vec![Reason::CourseEnded]);
}

#[test]
fn every_failing_course_reason_is_listed_in_order() {
    assert_eq!(
        reasons(&dispensing("2026-08-31", 30, "510.00"), &active()),
        vec![Reason::OutsideCourse]
    );
    assert_eq!(
        reasons(&dispensing("2027-02-28", 30, "510.00"), &active()),
        vec![Reason::OutsideCourse]
    );
    let mut state = active();
    state.dispensed.insert(4);
    state.cancelled_on = Some(date("2026-12-01"));
    let claim = ValidClaim {
        provider_id: "XM-PH-009".into(),
        ..dispensing("2026-12-05", 31, "510.01")
    };
    assert_eq!(
        reasons(&claim, &state),
        vec![
            Reason::NotDesignatedProvider,
            Reason::CourseEnded,
            Reason::CycleAlreadyDispensed,
            Reason::QuantityExceedsAuthorization,
            Reason::PriceExceedsAuthorization,
            Reason::FollowupRequired,
        ]
    );
    // A smaller supply at a lower price is within the authorisation.
    assert!(reasons(&dispensing("2026-10-01", 10, "500.00"), &active()).is_empty());
}

#[test]
fn followup_decides_cycles_after_the_first_f() {
    let mut state = active();
    let cycle_4 = dispensing("2026-11-30", 30, "510.00");
    assert_eq!(reasons(&cycle_4, &state), vec![Reason::FollowupRequired]);
    assert!(reasons(&dispensing("2026-11-29", 30, "510.00"), &state).is_empty());
    assessed(&mut state, "2026-11-30", Response::ProgressiveDisease);
    // A progression dated on the service date is an assessment in the window,
    // and the course is still on that day.
    assert!(reasons(&cycle_4, &state).is_empty());
}

#[test]
fn a_course_named_but_not_given_is_refused() {
    let error = adjudicate(
        &product(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &dispensing("2026-10-01", 30, "510.00"),
    )
    .unwrap_err();
    assert_eq!(
        error,
        AdjudicationError::CourseNotLoaded {
            authorization_id: 7
        }
    );
}

// --- case reserve ------------------------------------------------------------

#[test]
fn the_case_reserve_counts_undispensed_cycles_from_d_minus_30() {
    let rate = Decimal::from_str("0.70").unwrap();
    let mut state = active();
    // round(0.70 x (30 x 510.00 - 1000.00)) = 10010.00 per cycle.
    assert_eq!(state.cycle_cost(rate).unwrap(), yuan("10010.00"));
    assert_eq!(
        state.reserve(rate, date("2026-09-01")).unwrap(),
        yuan("60060.00")
    );
    state.dispensed.extend([1, 2]);
    // Cycle 3 ends 2026-11-29: counted through 2026-12-29, not after.
    assert_eq!(
        state.reserve(rate, date("2026-12-29")).unwrap(),
        yuan("40040.00")
    );
    assert_eq!(
        state.reserve(rate, date("2026-12-30")).unwrap(),
        yuan("30030.00")
    );
    // Rounding half away from zero, per cycle.
    let odd = Decimal::from_str("0.333").unwrap();
    assert_eq!(state.cycle_cost(odd).unwrap(), yuan("4761.90"));
    // A cancel counts from the day after it.
    state.cancelled_on = Some(date("2026-12-01"));
    assert_eq!(
        state.reserve(rate, date("2026-12-01")).unwrap(),
        yuan("40040.00")
    );
    assert_eq!(state.reserve(rate, date("2026-12-02")).unwrap(), Fen::ZERO);
    let capped = case_reserve(
        [(&active(), rate), (&active(), rate)],
        yuan("100000.00"),
        date("2026-09-01"),
    );
    assert_eq!(capped.unwrap(), yuan("100000.00"));
    let denied = course(CourseRequest {
        cycles: 13,
        ..request()
    });
    assert_eq!(denied.reserve(rate, date("2026-09-01")).unwrap(), Fen::ZERO);
}

// --- validation ------------------------------------------------------------

fn submission() -> AuthorizationSubmission {
    serde_json::from_value(json!({
        "member_id": 1, "drug": "L01EB04", "diagnosis": "C34.1",
        "biomarkers": [{"marker": "EGFR", "positive": true}],
        "prescriber": "XM-H-001", "cycle_days": 30, "quantity_per_cycle": 30,
        "unit_price": "510.00", "cycles": 6, "start_date": "2026-09-01"
    }))
    .unwrap()
}

#[test]
fn a_request_is_validated_field_by_field() {
    let today = date("2026-09-01");
    let valid = validate_authorization(&submission(), today).unwrap();
    assert_eq!(valid.expected_basic_paid_per_cycle, Fen::ZERO);
    assert_eq!(valid.unit_price, yuan("510.00"));
    assert!(
        validate_authorization(&submission(), date("2026-09-02"))
            .unwrap_err()
            .for_field("start_date")
            .is_some_and(|e| e.code == "start_in_the_past")
    );
    let bad = AuthorizationSubmission {
        member_id: 0,
        drug: "L01".into(),
        diagnosis: "lung".into(),
        prescriber: "XM H".into(),
        cycle_days: Some(json!(0)),
        quantity_per_cycle: Some(json!(100_001)),
        unit_price: Some(json!("1.001")),
        cycles: Some(json!(1.5)),
        start_date: "2026-9-1".into(),
        ..submission()
    };
    let errors = validate_authorization(&bad, today).unwrap_err();
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "member_id",
            "drug",
            "diagnosis",
            "prescriber",
            "cycle_days",
            "quantity_per_cycle",
            "cycles",
            "unit_price",
            "start_date"
        ]
    );
    let too_much_basic = AuthorizationSubmission {
        expected_basic_paid_per_cycle: Some(json!("15300.01")),
        ..submission()
    };
    assert!(
        validate_authorization(&too_much_basic, today)
            .unwrap_err()
            .has_code("exceeds_total")
    );
}

#[test]
fn an_assessment_is_dated_within_the_course_and_not_in_the_future() {
    let start = date("2026-09-01");
    let today = date("2026-10-01");
    let of = |on: &str, response: &str| AssessmentSubmission {
        assessed_on: on.into(),
        response: response.into(),
    };
    let ok = validate_assessment(&of("2026-09-01", "stable_disease"), start, today).unwrap();
    assert_eq!(ok.response, Response::StableDisease);
    assert!(validate_assessment(&of("2026-10-01", "progressive_disease"), start, today).is_ok());
    for (on, response, code) in [
        ("2026-08-31", "stable_disease", "before_course_start"),
        ("2026-10-02", "stable_disease", "future_date"),
        ("2026-09-05", "better", "invalid_response"),
    ] {
        let errors = validate_assessment(&of(on, response), start, today).unwrap_err();
        assert!(errors.has_code(code), "{errors}");
    }
    assert!(validate_cancel(&CancelSubmission { reason: " ".into() }).is_err());
    assert_eq!(
        validate_cancel(&CancelSubmission {
            reason: " moved away ".into()
        })
        .unwrap(),
        "moved away"
    );
}
