use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;

fn claim_view(reversed: bool, appealed: bool) -> Value {
    let item = |index: usize, outcome: &str, payable: &str, reasons: Vec<&str>, rate: Value| {
        json!({
            "index": index, "outcome": outcome, "reasons": reasons,
            "submitted": "15300.00", "basic_paid": "0.00", "eligible": "15300.00",
            "deductible_applied": "0.00", "coinsurance_rate": rate, "payable": payable,
            "member_responsibility": "4590.00", "out_of_pocket": "4590.00",
            "balance_before": {"deductible_met": "0.00", "paid": "0.00"},
            "balance_after": {"deductible_met": "0.00", "paid": "10710.00"},
            "carried_over": false,
        })
    };
    let first = json!({
        "id": 1, "sequence": 1, "parent_decision_id": null, "product_version_id": 2,
        "decided_by": "insurer:1", "decided_at": "2026-12-01T09:21:43.999965Z",
        "status": "partial", "benefit": "specialty_drug",
        "items": [item(0, "paid", "10710.00", vec![], json!("0.70")),
                  item(1, "denied", "0.00", vec!["biomarker_required", "duplicate"], Value::Null)],
        "totals": {"submitted": "30600.00", "basic_paid": "0.00", "eligible": "30600.00",
                   "deductible_applied": "0.00", "member_responsibility": "19890.00",
                   "out_of_pocket": "19890.00", "payable": "10710.00"},
    });
    let mut second = first.clone();
    second["id"] = json!(2);
    second["sequence"] = json!(2);
    second["parent_decision_id"] = json!(1);
    let decisions = if appealed {
        vec![first.clone(), second.clone()]
    } else {
        vec![first.clone()]
    };
    json!({
        "id": 7, "member_id": 3, "product_id": "xiamen-2026", "kind": "specialty_drug",
        "service_date": "2026-12-01", "provider_id": "XM-PH-001", "submitted_by": "insurer:1",
        "submitted_at": "2026-12-01T09:21:43.999965Z",
        "status": if reversed { "reversed" } else { "partial" },
        "submission": {"diagnosis": "C34.100X001", "kind": "specialty_drug", "member_id": 3,
            "provider_id": "XM-PH-001", "service_date": "2026-12-01",
            "items": [{"type": "drug", "drug": "L01EB04", "quantity": 30, "unit_price": "510.00",
                       "basic_paid": "0.00", "biomarkers": []},
                      {"type": "drug", "drug": "L01EB04", "quantity": 30, "unit_price": "510.00",
                       "basic_paid": "0.00", "biomarkers": []}]},
        "decision": if appealed { second } else { first },
        "decisions": decisions,
        "reversal": if reversed {
            json!({"reason": "duplicate payment", "reversed_by": "insurer:1", "reversed_at": "2026-12-02T01:00:00Z"})
        } else { Value::Null },
    })
}

fn coverage_view() -> CoverageIn {
    serde_json::from_value(json!({"member_id": 3, "products": [{
        "product_id": "xiamen-2026", "product_name": "惠厦保 2026",
        "benefits": [{"benefit": "specialty_drug", "deductible": "0.00", "deductible_met": "0.00",
            "deductible_left": "0.00", "annual_limit": "3000000.00", "limit_used": "10710.00",
            "limit_left": "2989290.00"}]}]}))
    .unwrap()
}

fn claim_in(reversed: bool, appealed: bool) -> ClaimIn {
    from_view(&claim_view(reversed, appealed)).unwrap()
}

fn category<'a>(adjudication: &'a Value, code: &str) -> Vec<&'a Value> {
    adjudication
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["category"]["coding"][0]["code"] == code)
        .collect()
}

#[test]
fn an_explanation_of_benefit_carries_every_amount_reason_and_balance() {
    let eob = explanation_of_benefit(&claim_in(false, false), &coverage_view());
    assert_eq!(eob["resourceType"], "ExplanationOfBenefit");
    assert_eq!(eob["status"], "active");
    assert_eq!(eob["type"]["coding"][0]["code"], "pharmacy");
    assert_eq!(
        eob["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"],
        "C34.100X001"
    );
    let paid = &eob["item"][0];
    assert_eq!(
        paid["productOrService"]["coding"][0]["system"],
        "http://www.whocc.no/atc"
    );
    assert_eq!(paid["productOrService"]["coding"][0]["code"], "L01EB04");
    assert_eq!(paid["quantity"]["value"], 30);
    assert_eq!(paid["unitPrice"]["value"], 510.0);
    assert_eq!(paid["net"]["value"], 15300.0);
    let adjudication = &paid["adjudication"];
    assert_eq!(
        category(adjudication, "submitted")[0]["amount"]["value"],
        15300.0
    );
    assert_eq!(
        category(adjudication, "eligible")[0]["amount"]["value"],
        15300.0
    );
    assert_eq!(
        category(adjudication, "deductible")[0]["amount"]["value"],
        0.0
    );
    assert_eq!(
        category(adjudication, "copay")[0]["amount"]["value"],
        4590.0
    );
    assert_eq!(
        category(adjudication, "benefit")[0]["amount"]["value"],
        10710.0
    );
    assert_eq!(category(adjudication, "eligpercent")[0]["value"], 70.0);
    // The denied item: no rate, both reasons, from Puhui's code system.
    let denied = &eob["item"][1]["adjudication"];
    assert!(category(denied, "eligpercent").is_empty());
    let reasons: Vec<&Value> = category(denied, "benefit")
        .into_iter()
        .map(|a| &a["reason"]["coding"][0])
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0]["system"], REASON_SYSTEM);
    assert_eq!(reasons[0]["code"], "biomarker_required");
    assert_eq!(reasons[1]["code"], "duplicate");
    // Totals add up to the items.
    assert_eq!(
        category(&eob["total"], "benefit")[0]["amount"]["value"],
        10710.0
    );
    assert_eq!(eob["payment"]["amount"]["value"], 10710.0);
    // Balances: used and allowed, deductible and limit.
    let financial = &eob["benefitBalance"][0]["financial"];
    assert_eq!(financial[0]["type"]["coding"][0]["code"], "deductible");
    assert_eq!(financial[1]["allowedMoney"]["value"], 3000000.0);
    assert_eq!(financial[1]["usedMoney"]["value"], 10710.0);
    assert!(eob.get("related").is_none());
}

#[test]
fn the_patient_is_a_pseudonymous_reference() {
    let claim = claim_in(false, false);
    for resource in [
        explanation_of_benefit(&claim, &coverage_view()),
        super::claim(&claim),
        claim_response(&claim),
    ] {
        assert_eq!(resource["patient"]["identifier"]["system"], MEMBER_SYSTEM);
        assert_eq!(resource["patient"]["identifier"]["value"], "3");
        assert!(resource["patient"].get("display").is_none());
    }
}

#[test]
fn appeals_are_related_claims_and_a_reversal_cancels() {
    let eob = explanation_of_benefit(&claim_in(true, true), &coverage_view());
    assert_eq!(eob["status"], "cancelled");
    assert_eq!(eob["payment"]["amount"]["value"], 0.0);
    assert_eq!(eob["identifier"][0]["value"], "2");
    assert_eq!(
        eob["related"][0]["relationship"]["coding"][0]["code"],
        "prior"
    );
    assert_eq!(eob["related"][0]["reference"]["value"], "1");
    let text = eob["disposition"].as_str().unwrap();
    assert!(
        text.contains("on appeal") && text.contains("reversed"),
        "{text}"
    );
}

#[test]
fn money_is_written_as_the_exact_decimal() {
    for text in [
        "0.01",
        "4590.00",
        "10710.55",
        "2989290.99",
        "99999999999.99",
    ] {
        let amount: Decimal = text.parse().unwrap();
        let written = money(amount)["value"].to_string();
        let back: Decimal = written.parse().unwrap();
        assert_eq!(back, amount, "{text} was written {written}");
    }
}
