//! Tests of the adjudication rules, one group per rule, then properties.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::adjudication::*;
use super::claim::{BenefitKind, Biomarker, ClaimItem, ValidClaim};
use super::codes::{AtcCode, Icd10Code};
use super::money::{Fen, round_to_fen};
use super::product::Product;
use super::product::tests::sample;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn icd(s: &str) -> Icd10Code {
    s.parse().unwrap()
}

fn atc(s: &str) -> AtcCode {
    s.parse().unwrap()
}

fn yuan(s: &str) -> Fen {
    s.parse().unwrap()
}

fn rate(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Enrolled on the first day of the sample product (30 waiting days), no
/// declared conditions.
fn cover() -> MemberCover {
    MemberCover {
        coverage_start: date("2026-07-01"),
        waiting_waived: false,
        declared_conditions: vec![],
    }
}

fn marker(name: &str, positive: bool) -> Biomarker {
    Biomarker {
        marker: name.into(),
        positive,
    }
}

fn osimertinib(quantity: u32, unit_price: &str, biomarkers: Vec<Biomarker>) -> ClaimItem {
    ClaimItem::Drug {
        drug: atc("L01EB04"),
        quantity,
        unit_price: yuan(unit_price),
        basic_paid: Fen::ZERO,
        biomarkers,
    }
}

fn egfr() -> Vec<Biomarker> {
    vec![marker("EGFR", true)]
}

fn drug_claim(items: Vec<ClaimItem>) -> ValidClaim {
    ValidClaim {
        member_id: 1,
        kind: BenefitKind::SpecialtyDrug,
        service_date: date("2026-09-01"),
        provider_id: "XM-PH-001".into(),
        diagnosis: icd("C34.1"),
        items,
        authorization_id: None,
    }
}

fn stay(total: &str, basic_paid: &str, out_of_catalogue: &str) -> ClaimItem {
    ClaimItem::Inpatient {
        total: yuan(total),
        basic_paid: yuan(basic_paid),
        out_of_catalogue: yuan(out_of_catalogue),
    }
}

fn inpatient_claim(items: Vec<ClaimItem>) -> ValidClaim {
    ValidClaim {
        member_id: 1,
        kind: BenefitKind::Inpatient,
        service_date: date("2026-09-01"),
        provider_id: "XM-HOSP-001".into(),
        diagnosis: icd("I21.0"),
        items,
        authorization_id: None,
    }
}

fn decide(claim: &ValidClaim) -> ClaimDecision {
    decide_with(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        claim,
    )
}

fn decide_with(
    product: &Product,
    cover: &MemberCover,
    balances: &Balances,
    paid_elsewhere: &HashSet<ItemFingerprint>,
    claim: &ValidClaim,
) -> ClaimDecision {
    adjudicate(product, cover, balances, paid_elsewhere, claim).unwrap()
}

fn reasons(decision: &ClaimDecision, index: usize) -> Vec<Reason> {
    decision.items[index].reasons.clone()
}

fn balances_with(kind: BenefitKind, deductible_met: &str, paid: &str) -> Balances {
    let mut balances = Balances::default();
    *balances.of_mut(kind) = Balance {
        deductible_met: yuan(deductible_met),
        paid: yuan(paid),
    };
    balances
}

// --- rule 1: coverage period ------------------------------------------------

#[test]
fn service_before_coverage_start_denies_every_item() {
    let mut claim = drug_claim(vec![
        osimertinib(30, "510.00", egfr()),
        osimertinib(1, "1.00", egfr()),
    ]);
    let member = MemberCover {
        coverage_start: date("2026-09-02"),
        waiting_waived: true,
        ..cover()
    };
    let decision = decide_with(
        &sample(),
        &member,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(decision.status, ClaimStatus::Denied);
    for item in &decision.items {
        assert_eq!(item.reasons, [Reason::NotCoveredPeriod]);
        assert_eq!(item.payable, Fen::ZERO);
    }
    assert!(decision.ledger.is_empty());
    // On the coverage start itself the member is covered.
    claim.service_date = date("2026-09-02");
    let decision = decide_with(
        &sample(),
        &member,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(decision.status, ClaimStatus::Paid);
}

#[test]
fn service_after_the_period_end_is_not_covered() {
    let renewed = MemberCover {
        waiting_waived: true,
        ..cover()
    };
    let mut claim = drug_claim(vec![osimertinib(1, "100.00", egfr())]);
    claim.service_date = date("2027-06-30");
    let last_day = decide_with(
        &sample(),
        &renewed,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(last_day.status, ClaimStatus::Paid);
    claim.service_date = date("2027-07-01");
    let after = decide_with(
        &sample(),
        &renewed,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(reasons(&after, 0), [Reason::NotCoveredPeriod]);
}

#[test]
fn coverage_period_comes_before_every_other_check() {
    // Off formulary, wrong provider, and outside cover: only the period is named.
    let mut claim = drug_claim(vec![ClaimItem::Drug {
        drug: atc("L01FF02"),
        quantity: 1,
        unit_price: yuan("1.00"),
        basic_paid: Fen::ZERO,
        biomarkers: vec![],
    }]);
    claim.service_date = date("2026-06-30");
    claim.provider_id = "ELSEWHERE".into();
    let decision = decide(&claim);
    assert_eq!(reasons(&decision, 0), [Reason::NotCoveredPeriod]);
}

// --- rule 2: waiting period -------------------------------------------------

#[test]
fn waiting_period_boundary_counts_the_start_as_day_one() {
    // Cover from 2026-07-01 with 30 waiting days: 07-30 waits, 07-31 is covered.
    let mut claim = drug_claim(vec![osimertinib(1, "100.00", egfr())]);
    claim.service_date = date("2026-07-30");
    let waiting = decide(&claim);
    assert_eq!(waiting.status, ClaimStatus::Denied);
    assert_eq!(reasons(&waiting, 0), [Reason::WaitingPeriod]);
    claim.service_date = date("2026-07-31");
    let covered = decide(&claim);
    assert_eq!(covered.status, ClaimStatus::Paid);
    assert_eq!(covered.items[0].payable, yuan("70.00"));
}

#[test]
fn renewal_waives_the_waiting_period() {
    let mut claim = drug_claim(vec![osimertinib(1, "100.00", egfr())]);
    claim.service_date = date("2026-07-01");
    let renewed = MemberCover {
        waiting_waived: true,
        ..cover()
    };
    let decision = decide_with(
        &sample(),
        &renewed,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(decision.status, ClaimStatus::Paid);
}

#[test]
fn a_product_without_waiting_period_covers_from_the_start() {
    let mut product = sample();
    product.waiting_days = 0;
    let mut claim = drug_claim(vec![osimertinib(1, "100.00", egfr())]);
    claim.service_date = date("2026-07-01");
    let decision = decide_with(
        &product,
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(decision.status, ClaimStatus::Paid);
}

#[test]
fn waiting_denies_every_item_before_drug_checks() {
    let mut claim = drug_claim(vec![
        osimertinib(1, "100.00", vec![]),
        ClaimItem::Drug {
            drug: atc("N02BE01"),
            quantity: 1,
            unit_price: yuan("5.00"),
            basic_paid: Fen::ZERO,
            biomarkers: vec![],
        },
    ]);
    claim.service_date = date("2026-07-15");
    let decision = decide(&claim);
    assert_eq!(reasons(&decision, 0), [Reason::WaitingPeriod]);
    assert_eq!(reasons(&decision, 1), [Reason::WaitingPeriod]);
}

// --- rule 3: formulary, indication, biomarker, provider ----------------------

#[test]
fn not_on_formulary_is_named_alone() {
    let mut claim = drug_claim(vec![ClaimItem::Drug {
        drug: atc("L01FF02"),
        quantity: 1,
        unit_price: yuan("17918.00"),
        basic_paid: Fen::ZERO,
        biomarkers: vec![],
    }]);
    claim.provider_id = "XM-PH-999".into();
    claim.diagnosis = icd("J18.9");
    let decision = decide(&claim);
    assert_eq!(reasons(&decision, 0), [Reason::NotOnFormulary]);
    assert_eq!(decision.items[0].outcome, ItemOutcome::Denied);
}

#[test]
fn all_failing_drug_reasons_are_listed_together() {
    let mut claim = drug_claim(vec![osimertinib(30, "510.00", vec![marker("EGFR", false)])]);
    claim.diagnosis = icd("C50.9");
    claim.provider_id = "XM-PH-999".into();
    let decision = decide(&claim);
    assert_eq!(
        reasons(&decision, 0),
        [
            Reason::IndicationMismatch,
            Reason::BiomarkerRequired,
            Reason::NotDesignatedProvider
        ]
    );
}

#[test]
fn each_drug_reason_alone() {
    let mut wrong_diagnosis = drug_claim(vec![osimertinib(1, "1.00", egfr())]);
    wrong_diagnosis.diagnosis = icd("C33");
    assert_eq!(
        reasons(&decide(&wrong_diagnosis), 0),
        [Reason::IndicationMismatch]
    );

    let no_marker = drug_claim(vec![osimertinib(1, "1.00", vec![])]);
    assert_eq!(reasons(&decide(&no_marker), 0), [Reason::BiomarkerRequired]);

    let mut wrong_provider = drug_claim(vec![osimertinib(1, "1.00", egfr())]);
    wrong_provider.provider_id = "XM-PH-003".into();
    assert_eq!(
        reasons(&decide(&wrong_provider), 0),
        [Reason::NotDesignatedProvider]
    );

    // The second designated pharmacy is as good as the first.
    let mut second = drug_claim(vec![osimertinib(1, "1.00", egfr())]);
    second.provider_id = "XM-PH-002".into();
    assert_eq!(decide(&second).status, ClaimStatus::Paid);
}

#[test]
fn biomarker_names_compare_case_insensitively_and_must_be_positive() {
    for (markers, paid) in [
        (vec![marker("egfr", true)], true),
        (vec![marker(" Egfr ", true)], true),
        (vec![marker("EGFR", false)], false),
        (vec![marker("ALK", true)], false),
        (vec![marker("EGFR", false), marker("EGFR", true)], true),
    ] {
        let decision = decide(&drug_claim(vec![osimertinib(1, "1.00", markers.clone())]));
        assert_eq!(decision.status == ClaimStatus::Paid, paid, "{markers:?}");
    }
}

#[test]
fn a_drug_without_required_biomarker_needs_none() {
    let mut product = sample();
    product.specialty_drug.as_mut().unwrap().formulary[1].required_biomarker = None;
    let mut claim = drug_claim(vec![ClaimItem::Drug {
        drug: atc("L01FD01"),
        quantity: 1,
        unit_price: yuan("100.00"),
        basic_paid: Fen::ZERO,
        biomarkers: vec![],
    }]);
    claim.diagnosis = icd("C50.9");
    let decision = decide_with(
        &product,
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    );
    assert_eq!(decision.status, ClaimStatus::Paid);
}

// --- rule 4: duplicates -------------------------------------------------------

#[test]
fn an_item_paid_on_another_claim_is_a_duplicate() {
    let claim = drug_claim(vec![osimertinib(30, "510.00", egfr())]);
    let first = decide(&claim);
    let elsewhere: HashSet<ItemFingerprint> = first.paid_fingerprints().cloned().collect();
    // Diagnosis and biomarkers are not compared.
    let mut again = claim.clone();
    again.diagnosis = icd("C34.9");
    again.items = vec![osimertinib(
        30,
        "510.00",
        vec![marker("egfr", true), marker("T790M", true)],
    )];
    let decision = decide_with(
        &sample(),
        &cover(),
        &Balances::default(),
        &elsewhere,
        &again,
    );
    assert_eq!(reasons(&decision, 0), [Reason::Duplicate]);
    assert_eq!(decision.items[0].payable, Fen::ZERO);
    assert!(decision.ledger.is_empty());
}

#[test]
fn any_compared_field_that_differs_is_not_a_duplicate() {
    let claim = drug_claim(vec![osimertinib(30, "510.00", egfr())]);
    let elsewhere: HashSet<ItemFingerprint> = decide(&claim).paid_fingerprints().cloned().collect();
    let mut other_day = claim.clone();
    other_day.service_date = date("2026-09-02");
    let mut other_pharmacy = claim.clone();
    other_pharmacy.provider_id = "XM-PH-002".into();
    let other_quantity = drug_claim(vec![osimertinib(29, "510.00", egfr())]);
    let other_price = drug_claim(vec![osimertinib(30, "510.01", egfr())]);
    let other_basic = drug_claim(vec![ClaimItem::Drug {
        drug: atc("L01EB04"),
        quantity: 30,
        unit_price: yuan("510.00"),
        basic_paid: yuan("0.01"),
        biomarkers: egfr(),
    }]);
    for claim in [
        other_day,
        other_pharmacy,
        other_quantity,
        other_price,
        other_basic,
    ] {
        let decision = decide_with(
            &sample(),
            &cover(),
            &Balances::default(),
            &elsewhere,
            &claim,
        );
        assert_eq!(decision.status, ClaimStatus::Paid, "{claim:?}");
    }
}

#[test]
fn duplicates_are_checked_only_when_rules_one_to_three_pass() {
    let claim = drug_claim(vec![osimertinib(30, "510.00", egfr())]);
    let elsewhere: HashSet<ItemFingerprint> = decide(&claim).paid_fingerprints().cloned().collect();
    let mut wrong_diagnosis = claim.clone();
    wrong_diagnosis.diagnosis = icd("C50.1");
    let decision = decide_with(
        &sample(),
        &cover(),
        &Balances::default(),
        &elsewhere,
        &wrong_diagnosis,
    );
    assert_eq!(reasons(&decision, 0), [Reason::IndicationMismatch]);
    let mut waiting = claim.clone();
    waiting.service_date = date("2026-07-02");
    let decision = decide_with(
        &sample(),
        &cover(),
        &Balances::default(),
        &elsewhere,
        &waiting,
    );
    assert_eq!(reasons(&decision, 0), [Reason::WaitingPeriod]);
}

#[test]
fn an_identical_item_within_the_claim_is_a_duplicate() {
    let claim = inpatient_claim(vec![
        stay("50000.00", "20000.00", "0"),
        stay("50000.00", "20000.00", "0"),
        stay("50000.00", "20000.00", "0.01"),
    ]);
    let decision = decide(&claim);
    assert_eq!(decision.items[0].outcome, ItemOutcome::Paid);
    assert_eq!(reasons(&decision, 1), [Reason::Duplicate]);
    assert_eq!(decision.items[2].outcome, ItemOutcome::Paid);
    assert_eq!(decision.status, ClaimStatus::Partial);
}

#[test]
fn a_denied_twin_does_not_make_a_duplicate() {
    // The first copy lacks the biomarker and is denied; the second is paid.
    let claim = drug_claim(vec![
        osimertinib(30, "510.00", vec![]),
        osimertinib(30, "510.00", egfr()),
    ]);
    let decision = decide(&claim);
    assert_eq!(reasons(&decision, 0), [Reason::BiomarkerRequired]);
    assert_eq!(decision.items[1].outcome, ItemOutcome::Paid);
}

#[test]
fn a_twin_paid_with_nothing_still_makes_a_duplicate() {
    // E = 0 items are paid (with 0), so an identical one is a duplicate.
    let claim = inpatient_claim(vec![
        stay("100.00", "100.00", "0"),
        stay("100.00", "100.00", "0"),
    ]);
    let decision = decide(&claim);
    assert_eq!(reasons(&decision, 0), [Reason::NothingEligible]);
    assert_eq!(reasons(&decision, 1), [Reason::Duplicate]);
}

// --- rule 5: deductible, coinsurance, limit -----------------------------------

#[test]
fn inpatient_explanation_adds_up() {
    // Total 80,000; BMI 35,000; out of catalogue 5,000: E = 40,000.
    // Deductible 20,000, then 70 % of 20,000 = 14,000.
    let decision = decide(&inpatient_claim(vec![stay(
        "80000.00", "35000.00", "5000.00",
    )]));
    let item = &decision.items[0];
    assert_eq!(item.outcome, ItemOutcome::Paid);
    assert!(item.reasons.is_empty());
    assert_eq!(item.submitted, yuan("80000.00"));
    assert_eq!(item.basic_paid, yuan("35000.00"));
    assert_eq!(item.eligible, yuan("40000.00"));
    assert_eq!(item.deductible_applied, yuan("20000.00"));
    assert_eq!(item.coinsurance_rate, Some(rate("0.70")));
    assert_eq!(item.payable, yuan("14000.00"));
    assert_eq!(item.member_responsibility, yuan("26000.00"));
    assert_eq!(item.out_of_pocket, yuan("31000.00"));
    assert_eq!(item.balance_before, Balance::default());
    assert_eq!(
        item.balance_after,
        Balance {
            deductible_met: yuan("20000.00"),
            paid: yuan("14000.00")
        }
    );
    assert_eq!(
        decision.ledger,
        [LedgerDelta {
            item_index: 0,
            benefit: BenefitKind::Inpatient,
            deductible_met: yuan("20000.00"),
            paid: yuan("14000.00"),
        }]
    );
    assert_eq!(decision.totals.payable, yuan("14000.00"));
    assert_eq!(decision.benefit, BenefitKind::Inpatient);
}

#[test]
fn deductible_exactly_met_pays_nothing_then_the_next_item_pays() {
    let decision = decide(&inpatient_claim(vec![
        stay("30000.00", "10000.00", "0"),
        stay("1000.00", "0", "0"),
    ]));
    let first = &decision.items[0];
    assert_eq!(first.eligible, yuan("20000.00"));
    assert_eq!(first.deductible_applied, yuan("20000.00"));
    assert_eq!(first.payable, Fen::ZERO);
    assert_eq!(first.reasons, [Reason::Deductible]);
    assert_eq!(first.outcome, ItemOutcome::Paid);
    let second = &decision.items[1];
    assert_eq!(second.balance_before.deductible_met, yuan("20000.00"));
    assert_eq!(second.deductible_applied, Fen::ZERO);
    assert_eq!(second.payable, yuan("700.00"));
    assert!(second.reasons.is_empty());
    assert_eq!(decision.status, ClaimStatus::Paid);
}

#[test]
fn one_fen_over_the_deductible_is_paid_rounded() {
    // 0.70 x 0.01 = 0.007 -> 0.01.
    let decision = decide(&inpatient_claim(vec![stay("20000.01", "0", "0")]));
    assert_eq!(decision.items[0].deductible_applied, yuan("20000.00"));
    assert_eq!(decision.items[0].payable, yuan("0.01"));
    assert!(decision.items[0].reasons.is_empty());
}

#[test]
fn deductible_carries_across_claims_through_balances() {
    let balances = balances_with(BenefitKind::Inpatient, "15000.00", "0");
    let decision = decide_with(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &inpatient_claim(vec![stay("10000.00", "0", "0")]),
    );
    assert_eq!(decision.items[0].deductible_applied, yuan("5000.00"));
    assert_eq!(decision.items[0].payable, yuan("3500.00"));
    // The drug balance is separate and untouched.
    assert!(
        decision
            .ledger
            .iter()
            .all(|delta| delta.benefit == BenefitKind::Inpatient)
    );
}

#[test]
fn a_partly_used_deductible_below_the_item_is_marked_deductible() {
    let balances = balances_with(BenefitKind::Inpatient, "15000.00", "0");
    let decision = decide_with(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &inpatient_claim(vec![stay("4000.00", "0", "0")]),
    );
    assert_eq!(decision.items[0].deductible_applied, yuan("4000.00"));
    assert_eq!(decision.items[0].reasons, [Reason::Deductible]);
    assert_eq!(
        decision.items[0].balance_after.deductible_met,
        yuan("19000.00")
    );
}

#[test]
fn rounding_is_per_item_and_half_away_from_zero() {
    // Pre-existing inpatient rate 0.5; deductible already met.
    let member = MemberCover {
        declared_conditions: vec![icd("I25.1")],
        ..cover()
    };
    let mut product = sample();
    product
        .preexisting_groups
        .push(super::product::PreexistingGroup {
            name: "ischaemic heart disease".into(),
            codes: vec!["I20-I25".parse().unwrap()],
        });
    let balances = balances_with(BenefitKind::Inpatient, "20000.00", "0");
    // 0.5 x 0.05 = 0.025 -> 0.03 (banker's rounding would give 0.02); twice,
    // per item, so the claim pays 0.06, not round(0.5 x 0.10) = 0.05.
    let claim = inpatient_claim(vec![stay("0.05", "0", "0"), stay("0.05", "0", "0.00")]);
    let mut claim = claim;
    claim.items[1] = stay("0.06", "0.01", "0");
    let decision = decide_with(&product, &member, &balances, &HashSet::new(), &claim);
    assert_eq!(decision.items[0].coinsurance_rate, Some(rate("0.5")));
    assert_eq!(decision.items[0].payable, yuan("0.03"));
    assert_eq!(decision.items[1].payable, yuan("0.03"));
    assert_eq!(decision.totals.payable, yuan("0.06"));
    // 0.70 x 0.15 = 0.105 -> 0.11 for a standard-rate member.
    let decision = decide_with(
        &product,
        &cover(),
        &balances,
        &HashSet::new(),
        &inpatient_claim(vec![stay("0.15", "0", "0")]),
    );
    assert_eq!(decision.items[0].payable, yuan("0.11"));
    assert_eq!(round_to_fen(rate("0.105")), yuan("0.11"));
}

#[test]
fn limit_exactly_reached_is_not_cut() {
    // Drug limit 3,000,000; 2,999,300 used; 70 % of 1,000 = 700 fits exactly.
    let balances = balances_with(BenefitKind::SpecialtyDrug, "0", "2999300.00");
    let decision = decide_with(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &drug_claim(vec![
            osimertinib(1, "1000.00", egfr()),
            osimertinib(2, "1000.00", egfr()),
        ]),
    );
    assert_eq!(decision.items[0].payable, yuan("700.00"));
    assert!(decision.items[0].reasons.is_empty());
    assert_eq!(decision.items[0].balance_after.paid, yuan("3000000.00"));
    // The next item finds the limit used up: paid with 0, limit_reached.
    assert_eq!(decision.items[1].outcome, ItemOutcome::Paid);
    assert_eq!(decision.items[1].payable, Fen::ZERO);
    assert_eq!(decision.items[1].reasons, [Reason::LimitReached]);
    assert_eq!(decision.items[1].member_responsibility, yuan("2000.00"));
    assert_eq!(decision.status, ClaimStatus::Paid);
    assert_eq!(
        decision.ledger.len(),
        1,
        "nothing to post for the second item"
    );
}

#[test]
fn limit_cuts_the_payment_to_what_is_left() {
    let balances = balances_with(BenefitKind::SpecialtyDrug, "0", "2999500.00");
    let decision = decide_with(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &drug_claim(vec![osimertinib(1, "1000.00", egfr())]),
    );
    assert_eq!(decision.items[0].payable, yuan("500.00"));
    assert_eq!(decision.items[0].reasons, [Reason::LimitReached]);
    assert_eq!(decision.items[0].member_responsibility, yuan("500.00"));
}

#[test]
fn limit_already_used_up_marks_even_items_with_nothing_eligible() {
    let balances = balances_with(BenefitKind::Inpatient, "20000.00", "1500000.00");
    let decision = decide_with(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &inpatient_claim(vec![
            stay("100.00", "100.00", "0"),
            stay("5000.00", "0", "0"),
        ]),
    );
    assert_eq!(
        reasons(&decision, 0),
        [Reason::NothingEligible, Reason::LimitReached]
    );
    assert_eq!(reasons(&decision, 1), [Reason::LimitReached]);
    assert!(decision.ledger.is_empty());
}

#[test]
fn nothing_eligible_is_paid_with_zero() {
    let decision = decide(&inpatient_claim(vec![stay(
        "5000.00", "3000.00", "2000.00",
    )]));
    assert_eq!(decision.items[0].outcome, ItemOutcome::Paid);
    assert_eq!(decision.items[0].reasons, [Reason::NothingEligible]);
    assert_eq!(decision.items[0].payable, Fen::ZERO);
    assert_eq!(decision.items[0].out_of_pocket, yuan("2000.00"));
    assert_eq!(decision.status, ClaimStatus::Paid);
    assert!(decision.ledger.is_empty());
}

#[test]
fn preexisting_rate_only_when_the_declared_group_matches_the_diagnosis() {
    let product = sample();
    let stay_claim = |diagnosis: &str| {
        let mut claim = inpatient_claim(vec![stay("30000.00", "0", "0")]);
        claim.diagnosis = icd(diagnosis);
        claim
    };
    let declared = |codes: &[&str]| MemberCover {
        declared_conditions: codes.iter().map(|c| icd(c)).collect(),
        ..cover()
    };
    let decide_rate = |member: &MemberCover, diagnosis: &str| {
        let decision = decide_with(
            &product,
            member,
            &Balances::default(),
            &HashSet::new(),
            &stay_claim(diagnosis),
        );
        (
            decision.items[0]
                .coinsurance_rate
                .expect("a paid item shows its rate"),
            decision.items[0].payable,
        )
    };
    // Declared breast cancer, claim for lung cancer: same group (C00-C97).
    assert_eq!(
        decide_rate(&declared(&["C50.9"]), "C34.1"),
        (rate("0.5"), yuan("5000.00"))
    );
    // Declared renal failure, claim for lung cancer: other group, standard rate.
    assert_eq!(
        decide_rate(&declared(&["N18.5"]), "C34.1"),
        (rate("0.70"), yuan("7000.00"))
    );
    // Declared cancer, claim for pneumonia: not in any group, standard rate.
    assert_eq!(
        decide_rate(&declared(&["C34"]), "J18.9"),
        (rate("0.70"), yuan("7000.00"))
    );
    // Nothing declared: standard rate even for a cancer diagnosis.
    assert_eq!(
        decide_rate(&declared(&[]), "C34.1"),
        (rate("0.70"), yuan("7000.00"))
    );
    // N18.5 group holds N18.5 and N18.6 but not N18.4.
    assert_eq!(
        decide_rate(&declared(&["N18.6"]), "N18.5"),
        (rate("0.5"), yuan("5000.00"))
    );
    assert_eq!(
        decide_rate(&declared(&["N18.4"]), "N18.5"),
        (rate("0.70"), yuan("7000.00"))
    );
}

#[test]
fn drug_preexisting_rate_uses_the_drug_terms() {
    let member = MemberCover {
        declared_conditions: vec![icd("C34.1")],
        ..cover()
    };
    let decision = decide_with(
        &sample(),
        &member,
        &Balances::default(),
        &HashSet::new(),
        &drug_claim(vec![osimertinib(30, "510.00", egfr())]),
    );
    // 30 x 510 = 15,300, no deductible, 30 %.
    assert_eq!(decision.items[0].coinsurance_rate, Some(rate("0.30")));
    assert_eq!(decision.items[0].payable, yuan("4590.00"));
}

#[test]
fn denied_items_consume_nothing() {
    let decision = decide(&drug_claim(vec![
        osimertinib(30, "510.00", vec![]),
        osimertinib(30, "510.00", egfr()),
    ]));
    let denied = &decision.items[0];
    assert_eq!(denied.outcome, ItemOutcome::Denied);
    assert_eq!(denied.deductible_applied, Fen::ZERO);
    assert_eq!(denied.payable, Fen::ZERO);
    assert_eq!(denied.coinsurance_rate, None);
    assert!(serde_json::to_value(denied).unwrap()["coinsurance_rate"].is_null());
    assert_eq!(denied.eligible, yuan("15300.00"));
    assert_eq!(denied.member_responsibility, yuan("15300.00"));
    assert_eq!(denied.out_of_pocket, yuan("15300.00"));
    assert_eq!(denied.balance_before, denied.balance_after);
    assert_eq!(decision.items[1].balance_before, Balance::default());
    assert_eq!(decision.items[1].payable, yuan("10710.00"));
    assert_eq!(decision.status, ClaimStatus::Partial);
    assert_eq!(decision.ledger.len(), 1);
    assert_eq!(decision.ledger[0].item_index, 1);
    assert_eq!(decision.totals.payable, yuan("10710.00"));
    assert_eq!(decision.totals.submitted, yuan("30600.00"));
    assert_eq!(decision.totals.member_responsibility, yuan("19890.00"));
}

#[test]
fn a_benefit_the_product_does_not_offer_is_an_error() {
    let mut product = sample();
    product.inpatient = None;
    let error = adjudicate(
        &product,
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &inpatient_claim(vec![stay("1.00", "0", "0")]),
    )
    .unwrap_err();
    assert_eq!(error.code(), "benefit_not_offered");
}

#[test]
fn an_item_of_the_other_kind_is_an_error() {
    let mut claim = inpatient_claim(vec![osimertinib(1, "1.00", egfr())]);
    claim.kind = BenefitKind::Inpatient;
    let error = adjudicate(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    )
    .unwrap_err();
    assert_eq!(
        error,
        AdjudicationError::ItemKindMismatch {
            index: 0,
            claim_kind: BenefitKind::Inpatient
        }
    );
}

#[test]
fn inconsistent_hand_built_amounts_are_an_error_not_a_payment() {
    let claim = inpatient_claim(vec![stay("100.00", "200.00", "0")]);
    let error = adjudicate(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
    )
    .unwrap_err();
    assert_eq!(error.code(), "inconsistent_amounts");
    let huge = drug_claim(vec![ClaimItem::Drug {
        drug: atc("L01EB04"),
        quantity: 100_000,
        unit_price: Fen(i64::MAX / 1_000),
        basic_paid: Fen::ZERO,
        biomarkers: egfr(),
    }]);
    let error = adjudicate(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &huge,
    )
    .unwrap_err();
    assert_eq!(error.code(), "amount_overflow");
}

// --- appeals -------------------------------------------------------------------

#[test]
fn appeal_decides_denied_items_again_and_carries_paid_items_over() {
    let claim = drug_claim(vec![
        osimertinib(30, "510.00", egfr()),
        osimertinib(10, "510.00", vec![]),
    ]);
    let first = decide(&claim);
    assert_eq!(first.status, ClaimStatus::Partial);
    let mut balances = Balances::default();
    balances.apply(&first.ledger).unwrap();
    let elsewhere = HashSet::new();
    let evidence = AppealEvidence {
        items: vec![AppealItemEvidence {
            index: 1,
            biomarkers: vec![marker("egfr", true)],
        }],
    };
    evidence.validate().unwrap();
    evidence.check_against(&first).unwrap();
    let appeal = adjudicate_appeal(
        &sample(),
        &cover(),
        &balances,
        &elsewhere,
        &claim,
        &first,
        &evidence,
    )
    .unwrap();
    assert_eq!(appeal.status, ClaimStatus::Paid);
    let carried = &appeal.items[0];
    assert!(carried.carried_over);
    assert_eq!(
        ItemDecision {
            carried_over: false,
            ..carried.clone()
        },
        first.items[0]
    );
    let redecided = &appeal.items[1];
    assert!(!redecided.carried_over);
    assert_eq!(redecided.payable, yuan("3570.00"));
    assert_eq!(redecided.balance_before, balances.specialty_drug);
    // Only the newly paid item is posted.
    assert_eq!(appeal.ledger.len(), 1);
    assert_eq!(appeal.ledger[0].item_index, 1);
    assert_eq!(appeal.ledger[0].paid, yuan("3570.00"));
    assert_eq!(appeal.totals.payable, yuan("14280.00"));
}

#[test]
fn appeal_without_new_evidence_still_sees_the_current_state() {
    // Denied as a duplicate of another claim that has since been reversed.
    let claim = drug_claim(vec![osimertinib(30, "510.00", egfr())]);
    let other: HashSet<ItemFingerprint> = decide(&claim).paid_fingerprints().cloned().collect();
    let first = decide_with(&sample(), &cover(), &Balances::default(), &other, &claim);
    assert_eq!(reasons(&first, 0), [Reason::Duplicate]);
    let after_reversal = HashSet::new();
    let appeal = adjudicate_appeal(
        &sample(),
        &cover(),
        &Balances::default(),
        &after_reversal,
        &claim,
        &first,
        &AppealEvidence::default(),
    )
    .unwrap();
    assert_eq!(appeal.status, ClaimStatus::Paid);
    // Still a duplicate while the other claim stands.
    let again = adjudicate_appeal(
        &sample(),
        &cover(),
        &Balances::default(),
        &other,
        &claim,
        &first,
        &AppealEvidence::default(),
    )
    .unwrap();
    assert_eq!(reasons(&again, 0), [Reason::Duplicate]);
    assert!(again.ledger.is_empty());
}

#[test]
fn appeal_finds_duplicates_of_carried_over_items_in_any_position() {
    // Item 0 is denied for the biomarker, item 1 (identical) is paid.
    let claim = drug_claim(vec![
        osimertinib(30, "510.00", vec![]),
        osimertinib(30, "510.00", egfr()),
    ]);
    let first = decide(&claim);
    assert_eq!(first.items[1].outcome, ItemOutcome::Paid);
    let evidence = AppealEvidence {
        items: vec![AppealItemEvidence {
            index: 0,
            biomarkers: egfr(),
        }],
    };
    let mut balances = Balances::default();
    balances.apply(&first.ledger).unwrap();
    let appeal = adjudicate_appeal(
        &sample(),
        &cover(),
        &balances,
        &HashSet::new(),
        &claim,
        &first,
        &evidence,
    )
    .unwrap();
    assert_eq!(reasons(&appeal, 0), [Reason::Duplicate]);
    assert!(appeal.ledger.is_empty());
}

#[test]
fn appeal_keeps_the_claim_level_denials() {
    let mut claim = drug_claim(vec![osimertinib(1, "100.00", vec![])]);
    claim.service_date = date("2026-07-10");
    let first = decide(&claim);
    let evidence = AppealEvidence {
        items: vec![AppealItemEvidence {
            index: 0,
            biomarkers: egfr(),
        }],
    };
    let appeal = adjudicate_appeal(
        &sample(),
        &cover(),
        &Balances::default(),
        &HashSet::new(),
        &claim,
        &first,
        &evidence,
    )
    .unwrap();
    assert_eq!(reasons(&appeal, 0), [Reason::WaitingPeriod]);
}

#[test]
fn appeals_that_cannot_be_decided() {
    let claim = drug_claim(vec![
        osimertinib(1, "100.00", egfr()),
        osimertinib(2, "100.00", vec![]),
    ]);
    let first = decide(&claim);
    let all_paid = decide(&drug_claim(vec![osimertinib(1, "100.00", egfr())]));
    let appeal = |claim: &ValidClaim, prior: &ClaimDecision, evidence: &AppealEvidence| {
        adjudicate_appeal(
            &sample(),
            &cover(),
            &Balances::default(),
            &HashSet::new(),
            claim,
            prior,
            evidence,
        )
    };
    let nothing = AppealEvidence::default();
    assert_eq!(
        appeal(
            &drug_claim(vec![osimertinib(1, "100.00", egfr())]),
            &all_paid,
            &nothing
        ),
        Err(AdjudicationError::NotAppealable)
    );
    assert_eq!(
        appeal(
            &drug_claim(vec![osimertinib(1, "100.00", egfr())]),
            &first,
            &nothing
        ),
        Err(AdjudicationError::PriorDoesNotMatchClaim)
    );
    let mut other_items = claim.clone();
    other_items.items[1] = osimertinib(3, "100.00", vec![]);
    assert_eq!(
        appeal(&other_items, &first, &nothing),
        Err(AdjudicationError::PriorDoesNotMatchClaim)
    );
    let for_paid = AppealEvidence {
        items: vec![AppealItemEvidence {
            index: 0,
            biomarkers: egfr(),
        }],
    };
    assert_eq!(
        appeal(&claim, &first, &for_paid),
        Err(AdjudicationError::EvidenceForUndeniedItem { index: 0 })
    );
    let errors = for_paid.check_against(&first).unwrap_err();
    assert_eq!(errors.0[0].code, "item_not_denied");
    let out_of_range = AppealEvidence {
        items: vec![AppealItemEvidence {
            index: 5,
            biomarkers: egfr(),
        }],
    };
    assert_eq!(
        out_of_range.check_against(&first).unwrap_err().0[0].code,
        "unknown_item"
    );
}

#[test]
fn appeal_evidence_is_validated_on_its_own() {
    let evidence: AppealEvidence = serde_json::from_value(serde_json::json!({
        "items": [
            {"index": 1, "biomarkers": []},
            {"index": 1, "biomarkers": [{"marker": " ", "positive": true}]}
        ]
    }))
    .unwrap();
    let codes: Vec<(String, &str)> = evidence
        .validate()
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("items[0].biomarkers".to_owned(), "invalid_biomarkers"),
            ("items[1].index".to_owned(), "duplicate_index"),
            ("items[1].biomarkers[0].marker".to_owned(), "invalid_marker"),
        ]
    );
    let unknown = serde_json::from_value::<AppealEvidence>(serde_json::json!({
        "items": [{"index": 0, "biomarkers": [], "note": "x"}]
    }));
    assert!(unknown.is_err());
}

// --- ledger, fingerprints, serialisation ----------------------------------------

#[test]
fn reversal_entries_restore_the_balances_exactly() {
    let decision = decide(&inpatient_claim(vec![stay(
        "80000.00", "35000.00", "5000.00",
    )]));
    let before = Balances::default();
    let mut balances = before;
    balances.apply(&decision.ledger).unwrap();
    assert_eq!(balances.inpatient, decision.items[0].balance_after);
    let reversal: Vec<LedgerDelta> = decision
        .ledger
        .iter()
        .map(|d| d.negated().unwrap())
        .collect();
    balances.apply(&reversal).unwrap();
    assert_eq!(balances, before);
}

#[test]
fn fingerprint_keys_are_stable_and_read_back() {
    let claim = drug_claim(vec![osimertinib(30, "510.00", egfr())]);
    let fingerprint = ItemFingerprint::of_claim_item(&claim, 0).unwrap();
    assert_eq!(
        fingerprint.key(),
        r#"["specialty_drug","XM-PH-001","2026-09-01","L01EB04",30,51000,0]"#
    );
    assert_eq!(
        ItemFingerprint::from_key(&fingerprint.key()).unwrap(),
        fingerprint
    );
    let stay_claim = inpatient_claim(vec![stay("80000.00", "35000.00", "5000.50")]);
    let stay_print = ItemFingerprint::of_claim_item(&stay_claim, 0).unwrap();
    assert_eq!(
        stay_print.key(),
        r#"["inpatient","XM-HOSP-001","2026-09-01",8000000,3500000,500050]"#
    );
    assert_eq!(
        ItemFingerprint::from_key(&stay_print.key()).unwrap(),
        stay_print
    );
    assert_eq!(stay_print.kind(), BenefitKind::Inpatient);
    for bad in [
        "",
        "[]",
        r#"["inpatient","X","2026-09-01",1,2]"#,
        r#"["dental","X","2026-09-01",1,2,3]"#,
        r#"["inpatient","X","2026-02-30",1,2,3]"#,
    ] {
        assert!(ItemFingerprint::from_key(bad).is_err(), "{bad}");
    }
    assert!(ItemFingerprint::of_claim_item(&claim, 1).is_none());
}

#[test]
fn decisions_round_trip_through_json() {
    let decision = decide(&drug_claim(vec![
        osimertinib(30, "510.00", egfr()),
        osimertinib(1, "1.00", vec![]),
    ]));
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["status"], "partial");
    assert_eq!(json["benefit"], "specialty_drug");
    assert_eq!(json["items"][0]["outcome"], "paid");
    assert_eq!(json["items"][0]["payable"], "10710.00");
    assert_eq!(json["items"][0]["coinsurance_rate"], "0.70");
    assert_eq!(
        json["items"][1]["reasons"],
        serde_json::json!(["biomarker_required"])
    );
    let back: ClaimDecision = serde_json::from_value(json).unwrap();
    assert_eq!(back, decision);
}

#[test]
fn every_reason_code_is_its_serde_name() {
    for reason in [
        Reason::NotCoveredPeriod,
        Reason::WaitingPeriod,
        Reason::NotOnFormulary,
        Reason::IndicationMismatch,
        Reason::BiomarkerRequired,
        Reason::NotDesignatedProvider,
        Reason::Duplicate,
        Reason::NothingEligible,
        Reason::Deductible,
        Reason::LimitReached,
    ] {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.code());
    }
}

// --- the shipped demo product ----------------------------------------------------

#[test]
fn demo_product_decides_a_submitted_osimertinib_claim() {
    use super::claim::{ClaimSubmission, validate_claim};
    use super::enrollment::{EnrollmentRequest, first_covered_day, validate_enrollment};
    use super::resident_id::tests::valid_id;

    let product = Product::from_toml_str(super::product::tests::DEMO_2026).unwrap();
    let today = date("2026-11-28");
    let enrollment = validate_enrollment(
        &EnrollmentRequest {
            product_id: "xiamen-2026".into(),
            resident_id: valid_id("350203", "19580321", "214"),
            name: "林秀英".into(),
            phone: "13906001234".into(),
            insurance_type: "urban_rural_resident".into(),
            declared_conditions: vec!["C34.9".into()],
        },
        &product,
        today,
    )
    .unwrap();
    assert_eq!(enrollment.coverage_start, today);
    assert_eq!(
        first_covered_day(enrollment.coverage_start, product.waiting_days, false),
        today
    );
    let member = MemberCover {
        coverage_start: enrollment.coverage_start,
        waiting_waived: false,
        declared_conditions: enrollment.declared.clone(),
    };
    let submission: ClaimSubmission = serde_json::from_value(serde_json::json!({
        "member_id": 1,
        "kind": "specialty_drug",
        "service_date": "2026-11-28",
        "provider_id": "XM-PH-002",
        "diagnosis": "C34.100x001",
        "items": [
            {"drug": "L01EB04", "quantity": 30, "unit_price": "510.00", "basic_paid": "0",
             "biomarkers": [{"marker": "EGFR", "positive": true}]},
            {"drug": "L01XL03", "quantity": 1, "unit_price": "1200000.00", "basic_paid": "0"}
        ]
    }))
    .unwrap();
    let claim = validate_claim(&submission, today).unwrap();
    let decision = adjudicate(
        &product,
        &member,
        &Balances::default(),
        &HashSet::new(),
        &claim,
    )
    .unwrap();
    // Declared lung cancer, claim for lung cancer: the pre-existing 30 %.
    assert_eq!(decision.items[0].coinsurance_rate, Some(rate("0.30")));
    assert_eq!(decision.items[0].payable, yuan("4590.00"));
    // CAR-T is for lymphoma, and only in hospitals.
    assert_eq!(
        reasons(&decision, 1),
        [Reason::IndicationMismatch, Reason::NotDesignatedProvider]
    );
    assert_eq!(decision.status, ClaimStatus::Partial);
}

// --- properties -------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Inpatient items with amounts up to 200,000 CNY, some repeated so that
    /// within-claim duplicates occur.
    fn stays() -> impl Strategy<Value = Vec<ClaimItem>> {
        let one =
            (0i64..=20_000_000, 0u32..=100, 0u32..=100).prop_map(|(total, basic_pct, ooc_pct)| {
                let basic_paid = total * i64::from(basic_pct) / 100;
                let out_of_catalogue = (total - basic_paid) * i64::from(ooc_pct) / 100;
                ClaimItem::Inpatient {
                    total: Fen(total),
                    basic_paid: Fen(basic_paid),
                    out_of_catalogue: Fen(out_of_catalogue),
                }
            });
        prop::collection::vec(one, 1..8)
            .prop_flat_map(|items| {
                let len = items.len();
                (Just(items), prop::collection::vec(0..len, 0..3))
            })
            .prop_map(|(mut items, repeats)| {
                for index in repeats {
                    let copy = items[index].clone();
                    items.push(copy);
                }
                items
            })
    }

    /// Drug items: listed or not, with or without the biomarker.
    fn drug_items() -> impl Strategy<Value = Vec<ClaimItem>> {
        let one = (
            prop::sample::select(vec!["L01EB04", "L01FD01", "L01FF02"]),
            1u32..=60,
            0i64..=2_000_000,
            0u32..=100,
            any::<bool>(),
        )
            .prop_map(|(code, quantity, unit_price, basic_pct, with_marker)| {
                let gross = unit_price * i64::from(quantity);
                ClaimItem::Drug {
                    drug: atc(code),
                    quantity,
                    unit_price: Fen(unit_price),
                    basic_paid: Fen(gross * i64::from(basic_pct) / 100),
                    biomarkers: if with_marker { egfr() } else { vec![] },
                }
            });
        prop::collection::vec(one, 1..8)
    }

    fn product_terms() -> impl Strategy<Value = Product> {
        (
            0i64..=5_000_000,
            0u32..=100,
            0u32..=100,
            0i64..=30_000_000,
            0i64..=5_000_000,
            0i64..=30_000_000,
        )
            .prop_map(
                |(
                    inpatient_deductible,
                    rate_pct,
                    preexisting_pct,
                    inpatient_limit,
                    drug_deductible,
                    drug_limit,
                )| {
                    let mut product = sample();
                    let inpatient = product.inpatient.as_mut().unwrap();
                    inpatient.deductible = Fen(inpatient_deductible);
                    inpatient.coinsurance = Decimal::new(i64::from(rate_pct), 2);
                    inpatient.coinsurance_preexisting = Decimal::new(i64::from(preexisting_pct), 2);
                    inpatient.annual_limit = Fen(inpatient_limit);
                    let drugs = &mut product.specialty_drug.as_mut().unwrap().terms;
                    drugs.deductible = Fen(drug_deductible);
                    drugs.coinsurance = Decimal::new(i64::from(rate_pct), 2);
                    drugs.coinsurance_preexisting = Decimal::new(i64::from(preexisting_pct), 2);
                    drugs.annual_limit = Fen(drug_limit);
                    product
                },
            )
    }

    fn balances() -> impl Strategy<Value = Balances> {
        (
            0i64..=6_000_000,
            0i64..=32_000_000,
            0i64..=6_000_000,
            0i64..=32_000_000,
        )
            .prop_map(|(a, b, c, d)| Balances {
                inpatient: Balance {
                    deductible_met: Fen(a),
                    paid: Fen(b),
                },
                specialty_drug: Balance {
                    deductible_met: Fen(c),
                    paid: Fen(d),
                },
            })
    }

    fn claims() -> impl Strategy<Value = ValidClaim> {
        prop_oneof![
            (
                stays(),
                prop::sample::select(vec!["I21.0", "C34.1", "J18.9"])
            )
                .prop_map(|(items, diagnosis)| {
                    let mut claim = inpatient_claim(items);
                    claim.diagnosis = icd(diagnosis);
                    claim
                }),
            (drug_items(), prop::sample::select(vec!["C34.1", "C50.9"])).prop_map(
                |(items, diagnosis)| {
                    let mut claim = drug_claim(items);
                    claim.diagnosis = icd(diagnosis);
                    claim
                }
            ),
        ]
    }

    fn members() -> impl Strategy<Value = MemberCover> {
        (
            any::<bool>(),
            prop::sample::select(vec![vec![], vec!["C50.9"], vec!["N18.5"]]),
        )
            .prop_map(|(waived, declared)| MemberCover {
                coverage_start: date("2026-07-01"),
                waiting_waived: waived,
                declared_conditions: declared.into_iter().map(icd).collect(),
            })
    }

    fn check_decision(
        product: &Product,
        start: &Balances,
        claim: &ValidClaim,
        decision: &ClaimDecision,
    ) -> Result<(), TestCaseError> {
        let terms = product.terms(claim.kind).unwrap();
        let start_balance = start.of(claim.kind);
        let mut running = start_balance;
        for item in &decision.items {
            prop_assert_eq!(item.balance_before, running);
            prop_assert!(item.deductible_applied <= item.eligible);
            let deductible_left = terms
                .deductible
                .remaining_after(item.balance_before.deductible_met)
                .unwrap();
            let limit_left = terms
                .annual_limit
                .remaining_after(item.balance_before.paid)
                .unwrap();
            prop_assert!(item.deductible_applied <= deductible_left);
            let after_deductible = Fen(item.eligible.0 - item.deductible_applied.0);
            // Only a paid item applies a rate; a denied one shows none.
            prop_assert_eq!(
                item.coinsurance_rate.is_none(),
                item.outcome == ItemOutcome::Denied
            );
            let rate = item.coinsurance_rate.unwrap_or(Decimal::ZERO);
            let share = round_to_fen(rate * after_deductible.to_decimal());
            prop_assert!(
                item.payable <= share,
                "payable {} > share {}",
                item.payable,
                share
            );
            prop_assert!(item.payable <= limit_left);
            prop_assert!(item.payable >= Fen::ZERO);
            prop_assert_eq!(
                item.member_responsibility.0,
                item.eligible.0 - item.payable.0
            );
            prop_assert_eq!(
                item.out_of_pocket.0,
                item.submitted.0 - item.basic_paid.0 - item.payable.0
            );
            prop_assert_eq!(
                item.balance_after.deductible_met.0,
                item.balance_before.deductible_met.0 + item.deductible_applied.0
            );
            prop_assert_eq!(
                item.balance_after.paid.0,
                item.balance_before.paid.0 + item.payable.0
            );
            if item.outcome == ItemOutcome::Denied {
                prop_assert_eq!(item.payable, Fen::ZERO);
                prop_assert_eq!(item.deductible_applied, Fen::ZERO);
                prop_assert!(!item.reasons.is_empty());
                prop_assert!(item.reasons.iter().all(|r| !matches!(
                    r,
                    Reason::NothingEligible | Reason::Deductible | Reason::LimitReached
                )));
            }
            if item.reasons.contains(&Reason::NotOnFormulary) {
                prop_assert_eq!(&item.reasons, &vec![Reason::NotOnFormulary]);
            }
            running = item.balance_after;
        }
        // The ledger holds exactly the consumption of the items.
        let ledger_paid: i64 = decision.ledger.iter().map(|d| d.paid.0).sum();
        let ledger_deductible: i64 = decision.ledger.iter().map(|d| d.deductible_met.0).sum();
        let item_paid: i64 = decision.items.iter().map(|i| i.payable.0).sum();
        let item_deductible: i64 = decision.items.iter().map(|i| i.deductible_applied.0).sum();
        prop_assert_eq!(ledger_paid, item_paid);
        prop_assert_eq!(ledger_deductible, item_deductible);
        prop_assert!(
            decision
                .ledger
                .iter()
                .all(|d| d.benefit == claim.kind
                    && !(d.paid.is_zero() && d.deductible_met.is_zero()))
        );
        let mut after = *start;
        after.apply(&decision.ledger).unwrap();
        prop_assert_eq!(after.of(claim.kind), running);
        // Never more than the limit, never the deductible beyond its amount.
        prop_assert!(running.paid <= start_balance.paid.max(terms.annual_limit));
        prop_assert!(running.deductible_met <= start_balance.deductible_met.max(terms.deductible));
        // Totals are sums over items.
        prop_assert_eq!(decision.totals.payable.0, item_paid);
        prop_assert_eq!(
            decision.totals.submitted.0,
            decision.items.iter().map(|i| i.submitted.0).sum::<i64>()
        );
        prop_assert_eq!(
            decision.totals.out_of_pocket.0,
            decision
                .items
                .iter()
                .map(|i| i.out_of_pocket.0)
                .sum::<i64>()
        );
        // A reversal restores the balances exactly.
        let reversal: Vec<LedgerDelta> = decision
            .ledger
            .iter()
            .map(|d| d.negated().unwrap())
            .collect();
        after.apply(&reversal).unwrap();
        prop_assert_eq!(&after, start);
        // No fingerprint is paid twice within the claim.
        let mut paid = HashSet::new();
        for fingerprint in decision.paid_fingerprints() {
            prop_assert!(paid.insert(fingerprint.clone()));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn adjudication_invariants(
            product in product_terms(),
            member in members(),
            start in balances(),
            claim in claims(),
            day in 0u64..120,
        ) {
            let mut claim = claim;
            claim.service_date = date("2026-07-01") + chrono::Days::new(day);
            let decision = adjudicate(&product, &member, &start, &HashSet::new(), &claim).unwrap();
            check_decision(&product, &start, &claim, &decision)?;
            // Pure: the same inputs give the same decision.
            prop_assert_eq!(&adjudicate(&product, &member, &start, &HashSet::new(), &claim).unwrap(), &decision);
        }

        #[test]
        fn claims_in_sequence_never_exceed_the_limit(
            product in product_terms(),
            claims in prop::collection::vec(claims(), 1..6),
        ) {
            let member = MemberCover { waiting_waived: true, ..cover() };
            let mut balances = Balances::default();
            let mut paid_elsewhere = HashSet::new();
            for claim in &claims {
                let decision = adjudicate(&product, &member, &balances, &paid_elsewhere, claim).unwrap();
                check_decision(&product, &balances, claim, &decision)?;
                balances.apply(&decision.ledger).unwrap();
                paid_elsewhere.extend(decision.paid_fingerprints().cloned());
            }
            for kind in [BenefitKind::Inpatient, BenefitKind::SpecialtyDrug] {
                let terms = product.terms(kind).unwrap();
                prop_assert!(balances.of(kind).paid <= terms.annual_limit);
                prop_assert!(balances.of(kind).deductible_met <= terms.deductible);
            }
        }

        #[test]
        fn appeals_carry_paid_items_and_post_only_new_ones(
            product in product_terms(),
            claim in claims(),
        ) {
            let member = MemberCover { waiting_waived: true, ..cover() };
            let first = adjudicate(&product, &member, &Balances::default(), &HashSet::new(), &claim).unwrap();
            let mut balances = Balances::default();
            balances.apply(&first.ledger).unwrap();
            let evidence = AppealEvidence {
                items: first.items.iter()
                    .filter(|i| i.outcome == ItemOutcome::Denied)
                    .map(|i| AppealItemEvidence { index: i.index, biomarkers: egfr() })
                    .collect(),
            };
            match adjudicate_appeal(&product, &member, &balances, &HashSet::new(), &claim, &first, &evidence) {
                Err(AdjudicationError::NotAppealable) => prop_assert!(!first.has_denied_item()),
                Err(other) => prop_assert!(false, "unexpected {other}"),
                Ok(appeal) => {
                    for (before, after) in first.items.iter().zip(&appeal.items) {
                        if before.outcome == ItemOutcome::Paid {
                            prop_assert!(after.carried_over);
                            prop_assert_eq!(&ItemDecision { carried_over: false, ..after.clone() }, before);
                            prop_assert!(appeal.ledger.iter().all(|d| d.item_index != before.index));
                        } else {
                            prop_assert!(!after.carried_over);
                        }
                    }
                    let new_paid: i64 = appeal.items.iter().filter(|i| !i.carried_over).map(|i| i.payable.0).sum();
                    prop_assert_eq!(appeal.ledger.iter().map(|d| d.paid.0).sum::<i64>(), new_paid);
                    let mut after = balances;
                    after.apply(&appeal.ledger).unwrap();
                    let terms = product.terms(claim.kind).unwrap();
                    prop_assert!(after.of(claim.kind).paid <= terms.annual_limit);
                    prop_assert!(after.of(claim.kind).deductible_met <= terms.deductible);
                }
            }
        }
    }
}
