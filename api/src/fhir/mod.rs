//! FHIR R4 (4.0.1) views of claims and cover, for hospital and pharmacy
//! systems and the city's health-data platform. A pure mapping: the native
//! views (as the JSON the API serves) are parsed into the few fields FHIR
//! needs, and each resource is built from them. The mapping table is
//! `docs/fhir.md`.
//!
//! The patient is always a pseudonymous reference, the member id under
//! Puhui's own identifier system: never the resident ID or the name.

mod input;

use rust_decimal::Decimal;
use serde_json::{Value, json};

pub use input::{ClaimIn, CoverageIn, DecisionIn, ItemIn, MemberIn, from_view};

/// Content type of every FHIR response.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Puhui's identifier and code systems.
pub const MEMBER_SYSTEM: &str = "urn:puhui:member-id";
pub const PROVIDER_SYSTEM: &str = "urn:puhui:provider-id";
pub const DECISION_SYSTEM: &str = "urn:puhui:decision-id";
pub const PRODUCT_SYSTEM: &str = "urn:puhui:product-id";
/// Puhui's adjudication reason codes (`docs/fhir.md` lists them).
pub const REASON_SYSTEM: &str = "urn:puhui:CodeSystem:claim-reason";
pub const BENEFIT_SYSTEM: &str = "urn:puhui:CodeSystem:benefit";
pub const SERVICE_SYSTEM: &str = "urn:puhui:CodeSystem:service";
pub const INSURANCE_TYPE_SYSTEM: &str = "urn:puhui:CodeSystem:insurance-type";

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
const ATC: &str = "http://www.whocc.no/atc";
const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
const PRIORITY: &str = "http://terminology.hl7.org/CodeSystem/processpriority";
const BENEFIT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/benefit-type";
const RELATED: &str = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship";
const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
const CURRENCY: &str = "CNY";

fn coding(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// FHIR money. FHIR JSON writes decimals as numbers; the amount is exact
/// fen, and a number of fen over 100 with at most 15 significant digits is
/// written by serde_json as exactly that decimal (shortest round trip), so
/// no amount changes on the way out. Nothing is computed from it.
fn money(amount: Decimal) -> Value {
    json!({ "value": decimal_number(amount), "currency": CURRENCY })
}

fn decimal_number(amount: Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    amount
        .normalize()
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn patient(member_id: i64) -> Value {
    json!({
        "type": "Patient",
        "identifier": { "system": MEMBER_SYSTEM, "value": member_id.to_string() },
    })
}

fn provider(provider_id: &str) -> Value {
    json!({
        "type": "Organization",
        "identifier": { "system": PROVIDER_SYSTEM, "value": provider_id },
    })
}

fn insurer(product_id: &str) -> Value {
    json!({
        "type": "Organization",
        "identifier": { "system": PRODUCT_SYSTEM, "value": product_id },
        "display": "insurer of the Huimin Bao product",
    })
}

fn claim_type(kind: &str) -> Value {
    // An inpatient stay is an institutional claim; a drug from a designated
    // pharmacy, a pharmacy claim.
    let code = if kind == "inpatient" {
        "institutional"
    } else {
        "pharmacy"
    };
    coding(CLAIM_TYPE, code)
}

/// The member's cover as the claim's only insurance. A Claim numbers its
/// insurances (`sequence`); an ExplanationOfBenefit has no such element.
fn insurance(member_id: i64, numbered: bool) -> Value {
    let mut entry =
        json!({ "focal": true, "coverage": { "reference": format!("Coverage/{member_id}") } });
    if numbered {
        entry["sequence"] = json!(1);
    }
    json!([entry])
}

fn diagnosis(code: &str) -> Value {
    json!([{ "sequence": 1, "diagnosisCodeableConcept": coding(ICD10, code) }])
}

/// The submitted side of one item: what was bought or the stay.
fn submitted_item(claim: &ClaimIn, index: usize, item: &ItemIn) -> Value {
    let mut out = json!({
        "sequence": index + 1,
        "diagnosisSequence": [1],
        "servicedDate": claim.service_date,
    });
    match &item.drug {
        Some(drug) => {
            out["productOrService"] = coding(ATC, drug);
            if let Some(quantity) = item.quantity {
                out["quantity"] = json!({ "value": quantity });
            }
            if let Some(unit_price) = item.unit_price {
                out["unitPrice"] = money(unit_price);
            }
        }
        None => {
            out["productOrService"] = coding(SERVICE_SYSTEM, "inpatient-stay");
        }
    }
    out
}

fn item_net(item: &ItemIn) -> Option<Decimal> {
    match (item.total, item.quantity, item.unit_price) {
        (Some(total), _, _) => Some(total),
        (None, Some(quantity), Some(price)) => Some(Decimal::from(quantity) * price),
        _ => None,
    }
}

/// `Claim/{id}`: the claim as submitted.
pub fn claim(claim: &ClaimIn) -> Value {
    let items: Vec<Value> = claim
        .submission
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut out = submitted_item(claim, index, item);
            if let Some(net) = item_net(item) {
                out["net"] = money(net);
            }
            out
        })
        .collect();
    let mut out = json!({
        "resourceType": "Claim",
        "id": claim.id.to_string(),
        "status": if claim.status == "reversed" { "cancelled" } else { "active" },
        "type": claim_type(&claim.kind),
        "use": "claim",
        "patient": patient(claim.member_id),
        "billablePeriod": { "start": claim.service_date },
        "created": claim.submitted_at,
        "insurer": insurer(&claim.product_id),
        "provider": provider(&claim.provider_id),
        "priority": coding(PRIORITY, "normal"),
        "diagnosis": diagnosis(&claim.submission.diagnosis),
        "insurance": insurance(claim.member_id, true),
        "item": items,
    });
    if let Some(total) = claim.submitted_total() {
        out["total"] = money(total);
    }
    out
}

fn adjudication(category: &str, amount: Decimal) -> Value {
    json!({ "category": coding(ADJUDICATION, category), "amount": money(amount) })
}

/// The adjudication of one decided item: the amounts in FHIR's categories,
/// the coinsurance rate as `eligpercent`, and each reason code.
fn item_adjudication(item: &DecisionItem<'_>) -> Vec<Value> {
    let decided = item.decided;
    let mut out = vec![
        adjudication("submitted", decided.submitted),
        adjudication("eligible", decided.eligible),
        adjudication("deductible", decided.deductible_applied),
        adjudication("copay", decided.member_responsibility),
    ];
    if let Some(rate) = decided.coinsurance_rate {
        out.push(json!({
            "category": coding(ADJUDICATION, "eligpercent"),
            "value": decimal_number(rate * Decimal::ONE_HUNDRED),
        }));
    }
    let mut benefit = adjudication("benefit", decided.payable);
    if let Some(first) = decided.reasons.first() {
        benefit["reason"] = coding(REASON_SYSTEM, first);
    }
    out.push(benefit);
    for reason in decided.reasons.iter().skip(1) {
        out.push(json!({
            "category": coding(ADJUDICATION, "benefit"),
            "reason": coding(REASON_SYSTEM, reason),
        }));
    }
    out
}

struct DecisionItem<'a> {
    decided: &'a input::DecidedItemIn,
}

fn totals(decision: &DecisionIn) -> Value {
    let t = &decision.totals;
    json!([
        { "category": coding(ADJUDICATION, "submitted"), "amount": money(t.submitted) },
        { "category": coding(ADJUDICATION, "eligible"), "amount": money(t.eligible) },
        { "category": coding(ADJUDICATION, "deductible"), "amount": money(t.deductible_applied) },
        { "category": coding(ADJUDICATION, "copay"), "amount": money(t.member_responsibility) },
        { "category": coding(ADJUDICATION, "benefit"), "amount": money(t.payable) },
    ])
}

/// Earlier decisions of the claim (an appeal decides again) as `related`.
fn related(claim: &ClaimIn) -> Vec<Value> {
    let in_force = claim.decision.id;
    claim
        .decisions
        .iter()
        .filter(|d| d.id != in_force)
        .map(|d| {
            json!({
                "claim": { "reference": format!("Claim/{}", claim.id) },
                "relationship": coding(RELATED, "prior"),
                "reference": { "system": DECISION_SYSTEM, "value": d.id.to_string() },
            })
        })
        .collect()
}

/// What a decision's status and any reversal say, as FHIR's disposition.
fn disposition(claim: &ClaimIn) -> String {
    let decision = &claim.decision;
    let mut text = format!("decision {} ({})", decision.sequence, decision.status);
    if decision.parent_decision_id.is_some() {
        text.push_str(", on appeal");
    }
    if let Some(reversal) = &claim.reversal {
        text.push_str(&format!(
            "; reversed at {}: {}",
            reversal.reversed_at, reversal.reason
        ));
    }
    text
}

/// The balances of the claim's benefit after this decision, with the
/// product's terms from the member's cover: used and allowed for the
/// deductible and the annual limit.
fn benefit_balance(claim: &ClaimIn, coverage: &CoverageIn) -> Vec<Value> {
    let decision = &claim.decision;
    let Some(terms) = coverage.benefit(&claim.product_id, &decision.benefit) else {
        return Vec::new();
    };
    let after = decision.items.last().map(|i| &i.balance_after);
    let (deductible_met, paid) = after
        .map(|b| (b.deductible_met, b.paid))
        .unwrap_or((terms.deductible_met, terms.limit_used));
    vec![json!({
        "category": coding(BENEFIT_SYSTEM, &decision.benefit),
        "unit": coding("http://terminology.hl7.org/CodeSystem/benefit-unit", "individual"),
        "term": coding("http://terminology.hl7.org/CodeSystem/benefit-term", "annual"),
        "financial": [
            {
                "type": coding(BENEFIT_TYPE, "deductible"),
                "allowedMoney": money(terms.deductible),
                "usedMoney": money(deductible_met),
            },
            {
                "type": coding(BENEFIT_TYPE, "benefit"),
                "allowedMoney": money(terms.annual_limit),
                "usedMoney": money(paid),
            },
        ],
    })]
}

/// Parts shared by the ClaimResponse and the ExplanationOfBenefit.
fn adjudicated_items(claim: &ClaimIn) -> Vec<Value> {
    claim
        .decision
        .items
        .iter()
        .map(|decided| {
            json!({
                "itemSequence": decided.index + 1,
                "adjudication": item_adjudication(&DecisionItem { decided }),
            })
        })
        .collect()
}

/// `ClaimResponse/{claim_id}`: the decision in force.
pub fn claim_response(claim: &ClaimIn) -> Value {
    let decision = &claim.decision;
    json!({
        "resourceType": "ClaimResponse",
        "id": claim.id.to_string(),
        "identifier": [{ "system": DECISION_SYSTEM, "value": decision.id.to_string() }],
        "status": if claim.reversal.is_some() { "cancelled" } else { "active" },
        "type": claim_type(&claim.kind),
        "use": "claim",
        "patient": patient(claim.member_id),
        "created": decision.decided_at,
        "insurer": insurer(&claim.product_id),
        "request": { "reference": format!("Claim/{}", claim.id) },
        "outcome": "complete",
        "disposition": disposition(claim),
        "item": adjudicated_items(claim),
        "total": totals(decision),
        "payment": {
            "type": coding("http://terminology.hl7.org/CodeSystem/ex-paymenttype", "complete"),
            "amount": money(claim.paid_now()),
        },
    })
}

/// `ExplanationOfBenefit/{claim_id}`: the claim, its decision in force and
/// the balances left, in one resource.
pub fn explanation_of_benefit(claim: &ClaimIn, coverage: &CoverageIn) -> Value {
    let decision = &claim.decision;
    let items: Vec<Value> = claim
        .submission
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut out = submitted_item(claim, index, item);
            if let Some(net) = item_net(item) {
                out["net"] = money(net);
            }
            if let Some(decided) = decision.items.iter().find(|d| d.index == index) {
                out["adjudication"] = Value::Array(item_adjudication(&DecisionItem { decided }));
            }
            out
        })
        .collect();
    let mut out = json!({
        "resourceType": "ExplanationOfBenefit",
        "id": claim.id.to_string(),
        "identifier": [{ "system": DECISION_SYSTEM, "value": decision.id.to_string() }],
        "status": if claim.reversal.is_some() { "cancelled" } else { "active" },
        "type": claim_type(&claim.kind),
        "use": "claim",
        "patient": patient(claim.member_id),
        "billablePeriod": { "start": claim.service_date },
        "created": decision.decided_at,
        "insurer": insurer(&claim.product_id),
        "provider": provider(&claim.provider_id),
        "claim": { "reference": format!("Claim/{}", claim.id) },
        "claimResponse": { "reference": format!("ClaimResponse/{}", claim.id) },
        "outcome": "complete",
        "disposition": disposition(claim),
        "diagnosis": diagnosis(&claim.submission.diagnosis),
        "insurance": insurance(claim.member_id, false),
        "item": items,
        "total": totals(decision),
        "payment": {
            "type": coding("http://terminology.hl7.org/CodeSystem/ex-paymenttype", "complete"),
            "amount": money(claim.paid_now()),
        },
    });
    let related = related(claim);
    if !related.is_empty() {
        out["related"] = Value::Array(related);
    }
    let balance = benefit_balance(claim, coverage);
    if !balance.is_empty() {
        out["benefitBalance"] = Value::Array(balance);
    }
    out
}

/// `Coverage/{member_id}`: the member's cover under the latest product
/// year they are enrolled in.
pub fn coverage(member: &MemberIn, coverage: &CoverageIn) -> Option<Value> {
    let enrollment = member
        .enrollments
        .iter()
        .max_by_key(|e| &e.coverage_start)?;
    let product_name = coverage
        .products
        .iter()
        .find(|p| p.product_id == enrollment.product_id)
        .map(|p| p.product_name.clone())
        .unwrap_or_else(|| enrollment.product_id.clone());
    Some(json!({
        "resourceType": "Coverage",
        "id": member.id.to_string(),
        "identifier": [{ "system": MEMBER_SYSTEM, "value": member.id.to_string() }],
        "status": "active",
        "type": coding(INSURANCE_TYPE_SYSTEM, &enrollment.insurance_type),
        "beneficiary": patient(member.id),
        "relationship": coding("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self"),
        "period": { "start": enrollment.coverage_start, "end": enrollment.coverage_end },
        "payor": [insurer(&enrollment.product_id)],
        "class": [{
            "type": coding(COVERAGE_CLASS, "plan"),
            "value": enrollment.product_id,
            "name": product_name,
        }],
    }))
}

/// `ExplanationOfBenefit?patient=`: a searchset Bundle.
pub fn searchset(base: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let id = resource["id"].as_str().unwrap_or("").to_owned();
            json!({
                "fullUrl": format!("{base}/fhir/ExplanationOfBenefit/{id}"),
                "resource": resource,
                "search": { "mode": "match" },
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    })
}

#[cfg(test)]
mod tests;
