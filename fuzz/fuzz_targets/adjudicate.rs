//! The adjudicator over generated products, members, balances and claims.
//!
//! The bytes choose the terms of a product built on the demo Xiamen product,
//! the member's cover and balances, and a claim's items (drug or inpatient,
//! amounts, quantities, providers, diagnoses, biomarkers). For every valid
//! claim it checks, besides the absence of panics:
//! - each item pays between 0 and its eligible amount, and its deductible
//!   applied is at most its eligible amount;
//! - balances only grow, and never pass the deductible or the limit;
//! - the claim's payable is the sum of its items' and of its ledger's;
//! - deciding the claim again with its own paid items already paid elsewhere
//!   pays none of them again (each is denied `duplicate`).
#![no_main]

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use engine::domain::adjudication::{Balance, Balances, ClaimDecision, ItemOutcome, MemberCover, adjudicate};
use engine::domain::claim::{BenefitKind, ClaimSubmission, validate_claim};
use engine::domain::money::Fen;
use engine::domain::product::{BenefitTerms, Product};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use serde_json::json;

const PRODUCT: &str = include_str!("../../products/xiamen-2026.toml");
const DIAGNOSES: [&str; 8] = ["C34.1", "C50.9", "K35.8", "N18.5", "I21.0", "C91.0", "J44.1", "Z94.0"];
const PROVIDERS: [&str; 3] = ["H-001", "PH-001", "unknown-provider"];

/// Reads the fuzzer's bytes as a stream of small numbers (zeros past the end).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn below(&mut self, n: u32) -> u32 {
        self.u32() % n.max(1)
    }

    fn pick<'t>(&mut self, options: &[&'t str]) -> &'t str {
        options[self.below(options.len() as u32) as usize]
    }

    fn amount(&mut self) -> String {
        // Up to 10,000,000.00: large enough to cross any limit at once.
        let fen = u64::from(self.u32()) % 1_000_000_001;
        format!("{}.{:02}", fen / 100, fen % 100)
    }

    fn terms(&mut self, base: &BenefitTerms) -> BenefitTerms {
        let rate = |b: &mut Self| Decimal::new(i64::from(b.below(101)), 2);
        BenefitTerms {
            deductible: Fen(i64::from(self.below(3)) * base.deductible.0 / 2),
            coinsurance: rate(self),
            coinsurance_preexisting: rate(self),
            annual_limit: Fen(i64::from(self.below(200_000_001))),
        }
    }
}

fn balance(bytes: &mut Bytes<'_>, terms: Option<&BenefitTerms>) -> Balance {
    let (d, l) = terms.map_or((0, 0), |t| (t.deductible.0, t.annual_limit.0));
    Balance {
        deductible_met: Fen(i64::from(bytes.u32()) % (d + 1)),
        paid: Fen(i64::from(bytes.u32()) % (l + 1)),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut product = Product::from_toml_str(PRODUCT).expect("the demo product loads");
    if let Some(t) = product.inpatient.clone() {
        product.inpatient = Some(b.terms(&t));
    }
    if let Some(drug) = product.specialty_drug.as_mut() {
        drug.terms = b.terms(&drug.terms);
    }
    let period_days = (product.period_end - product.period_start).num_days().max(0) as u32;
    let day = |offset: u32| {
        product
            .period_start
            .checked_add_days(Days::new(u64::from(offset)))
            .unwrap_or(product.period_end)
    };
    let cover = MemberCover {
        coverage_start: day(b.below(period_days + 1)),
        waiting_waived: b.below(2) == 0,
        declared_conditions: (0..b.below(3))
            .filter_map(|_| b.pick(&DIAGNOSES).parse().ok())
            .collect(),
    };
    // From a little before the period to a little after it.
    let service_date = product
        .period_start
        .checked_sub_days(Days::new(10))
        .and_then(|d| d.checked_add_days(Days::new(u64::from(b.below(period_days + 20)))))
        .unwrap_or(product.period_start);
    let kind = if b.below(2) == 0 { BenefitKind::Inpatient } else { BenefitKind::SpecialtyDrug };
    let formulary: Vec<String> = product
        .specialty_drug
        .as_ref()
        .map(|d| d.formulary.iter().map(|f| f.atc.to_string()).collect())
        .unwrap_or_default();
    let drugs: Vec<&str> = formulary.iter().map(String::as_str).chain(["L01XX99"]).collect();
    let items: Vec<serde_json::Value> = (0..1 + b.below(5))
        .map(|_| match kind {
            BenefitKind::Inpatient => {
                let total = b.amount();
                json!({ "total": total, "basic_paid": b.amount(), "out_of_catalogue": b.amount() })
            }
            BenefitKind::SpecialtyDrug => json!({
                "drug": b.pick(&drugs),
                "quantity": 1 + b.below(5),
                "unit_price": b.amount(),
                "basic_paid": b.amount(),
                "biomarkers": (0..b.below(3))
                    .map(|_| json!({ "marker": b.pick(&["EGFR", "egfr", "ALK", "HER2"]), "positive": b.below(2) == 0 }))
                    .collect::<Vec<_>>(),
            }),
        })
        .collect();
    let submission = ClaimSubmission {
        member_id: 1,
        kind: kind.as_str().to_owned(),
        service_date: service_date.to_string(),
        provider_id: b.pick(&PROVIDERS).to_owned(),
        diagnosis: b.pick(&DIAGNOSES).to_owned(),
        items,
    };
    let today = NaiveDate::from_ymd_opt(2100, 1, 1).expect("a valid date");
    let Ok(claim) = validate_claim(&submission, today) else {
        return;
    };
    let balances = Balances {
        inpatient: balance(&mut b, product.inpatient.as_ref()),
        specialty_drug: balance(&mut b, product.specialty_drug.as_ref().map(|d| &d.terms)),
    };
    let Ok(decision) = adjudicate(&product, &cover, &balances, &HashSet::new(), &claim) else {
        return;
    };
    let terms = match kind {
        BenefitKind::Inpatient => product.inpatient.clone(),
        BenefitKind::SpecialtyDrug => product.specialty_drug.as_ref().map(|d| d.terms.clone()),
    }
    .expect("a decided claim's benefit is offered");
    check(&decision, &terms);

    // The same claim once its paid items are paid elsewhere: none pays again.
    let elsewhere: HashSet<_> = decision.paid_fingerprints().cloned().collect();
    if let Ok(again) = adjudicate(&product, &cover, &balances, &elsewhere, &claim) {
        check(&again, &terms);
        for item in &again.items {
            if elsewhere.contains(&item.fingerprint) {
                assert_eq!(item.outcome, ItemOutcome::Denied, "item {} paid twice", item.index);
            }
        }
    }
});

fn check(decision: &ClaimDecision, terms: &BenefitTerms) {
    let mut total = 0_i64;
    for item in &decision.items {
        assert!(item.payable.0 >= 0 && item.payable.0 <= item.eligible.0.max(0));
        assert!(item.deductible_applied.0 >= 0 && item.deductible_applied.0 <= item.eligible.0.max(0));
        assert!(item.balance_after.paid.0 >= item.balance_before.paid.0);
        assert!(item.balance_after.deductible_met.0 >= item.balance_before.deductible_met.0);
        assert!(item.balance_after.paid.0 <= terms.annual_limit.0, "limit passed");
        assert!(item.balance_after.deductible_met.0 <= terms.deductible.0, "deductible passed");
        total += item.payable.0;
    }
    assert_eq!(total, decision.totals.payable.0);
    let booked: i64 = decision.ledger.iter().map(|d| d.paid.0).sum();
    assert_eq!(booked, decision.totals.payable.0);
}
