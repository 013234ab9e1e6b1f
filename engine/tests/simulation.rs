//! Seeded simulation of the claims engine.
//!
//! A workload generator drives enrollments, claims, retries, reused
//! idempotency keys, reversals and appeals through the storage layer over two
//! product years (the second renews the first and is reloaded with new rates
//! half-way), with a clock that moves day by day through enrollment windows,
//! waiting periods and period ends. An in-memory model written from the
//! adjudication rules of the specification, not from the engine's code,
//! predicts every response: each item's outcome, reasons and amounts, each
//! claim's status and totals, each replay and conflict. After every step
//! every balance must equal both the model's and the sum of its ledger
//! entries (read directly) and stay within the terms, and the cover shown to
//! the members the step touched must match (every member's, every 25 steps).
//! At the end the audit chain must verify and the stored rows must add up.
//!
//! Most steps also act on a treatment course (see `simulation/courses.rs`):
//! authorisation requests granted or denied for each reason, follow-ups,
//! cancels, dispensings against a course and their reversals. The model
//! predicts each authorisation's decision, each dispensing's reasons,
//! authorisation and cycle, every course's view as of today and as of
//! another date, and the coverage screen's courses and case reserve.
//!
//! A failure names the backend, the seed and the step, and prints the last
//! steps. `PUHUI_SIM_SEED` runs one seed instead of the default list (a
//! number, or hexadecimal digits such as a commit hash); `PUHUI_SIM_STEPS`
//! changes the number of steps.

mod common;
#[path = "simulation/courses.rs"]
mod courses;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use courses::{CourseSpec, CourseTerms, ModelCourse, QUALIFIED_PRESCRIBERS};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use engine::audit;
use engine::domain::adjudication::AppealEvidence;
use engine::domain::claim::ClaimSubmission;
use engine::domain::enrollment::EnrollmentRequest;
use engine::domain::product::Product;
use engine::store::claims::{self, ReversalRequest};
use engine::store::{Keys, Recorded, WriteContext, authorizations, enrollment, products};
use engine::{DbConn, StoreError};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const DEFAULT_SEEDS: &[u64] = &[1, 2, 3];
const DEFAULT_STEPS: usize = 300;
/// Every step compares all balances with the ledger and the cover of the
/// members it touched; every this many steps, every member's cover.
const FULL_SWEEP_EVERY: usize = 25;

/// A seed from `PUHUI_SIM_SEED`: a decimal number, or hexadecimal such as a
/// commit hash (its first 16 digits), so that CI can seed by commit.
fn seed_from(text: &str) -> u64 {
    let text = text.trim();
    text.parse().unwrap_or_else(|_| {
        u64::from_str_radix(&text[..text.len().min(16)], 16)
            .expect("PUHUI_SIM_SEED is a decimal number or hexadecimal digits")
    })
}

#[test]
fn seeded_simulation_matches_an_independent_model() {
    let given = std::env::var("PUHUI_SIM_SEED")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let by_default = given.is_none();
    let seeds: Vec<u64> = match &given {
        Some(text) => vec![seed_from(text)],
        None => DEFAULT_SEEDS.to_vec(),
    };
    let steps: usize = match std::env::var("PUHUI_SIM_STEPS") {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .expect("PUHUI_SIM_STEPS is an unsigned integer"),
        _ => DEFAULT_STEPS,
    };
    for seed in seeds {
        for t in backends() {
            let started = std::time::Instant::now();
            let step = Cell::new(0_usize);
            let trace = std::cell::RefCell::new(Vec::<String>::new());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut conn = t.db.get().expect("connection");
                let keys = keys();
                let mut sim = Sim::new(&mut conn, &keys, seed, &step, &trace, by_default);
                sim.run(steps);
                sim.seen
            }));
            let seen = match outcome {
                Ok(seen) => seen,
                Err(panic) => {
                    let trace = trace.borrow();
                    eprintln!(
                        "\nsimulation failed on {} with seed {seed} at step {} of {steps} \
                         (reproduce with PUHUI_SIM_SEED={seed} PUHUI_SIM_STEPS={steps}); \
                         last steps:",
                        t.backend,
                        step.get()
                    );
                    for line in trace.iter().rev().take(12).rev() {
                        eprintln!("  {line}");
                    }
                    resume_unwind(panic);
                }
            };
            eprintln!(
                "simulation: {} seed {seed}: {steps} steps in {:.2?}; {seen:?}",
                t.backend,
                started.elapsed()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The products, written once as data: rendered to TOML for the engine, read
// directly by the model.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Inpatient,
    Drug,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Inpatient => "inpatient",
            Kind::Drug => "specialty_drug",
        }
    }
}

#[derive(Debug, Clone)]
struct Terms {
    deductible: i64,
    rate: Decimal,
    rate_preexisting: Decimal,
    limit: i64,
}

struct Drug {
    atc: &'static str,
    /// Diagnoses the generator uses for this drug (not product data).
    typical_diagnoses: &'static [&'static str],
    name: &'static str,
    indications: &'static [&'static str],
    biomarker: Option<&'static str>,
    providers: &'static [&'static str],
    course: CourseTerms,
}

const FORMULARY: &[Drug] = &[
    Drug {
        atc: "L01EB04",
        typical_diagnoses: &["C34.1", "C34.9", "C34.100x001"],
        name: "osimertinib",
        indications: &["C34"],
        biomarker: Some("EGFR"),
        providers: &["PH-001", "PH-002"],
        // A course is allowed, not required.
        course: CourseTerms {
            requires_authorization: false,
            max_cycle_days: Some(60),
            max_course_cycles: Some(12),
            followup_every: 3,
        },
    },
    Drug {
        atc: "L01FF02",
        typical_diagnoses: &["C34.1", "C43.9"],
        name: "pembrolizumab",
        indications: &["C34", "C43"],
        biomarker: None,
        providers: &["PH-001"],
        course: CourseTerms::NONE,
    },
    Drug {
        atc: "L01XL03",
        typical_diagnoses: &["C83.3", "C85.1"],
        name: "axicabtagene ciloleucel",
        indications: &["C82-C85"],
        biomarker: Some("CD19"),
        providers: &["H-009"],
        course: CourseTerms::NONE,
    },
    // Paid only in an authorised course.
    Drug {
        atc: "L01ED01",
        typical_diagnoses: &["C34.1", "C34.9", "C34.1"],
        name: "crizotinib",
        indications: &["C34"],
        biomarker: Some("ALK"),
        providers: &["PH-002", "PH-003"],
        course: CourseTerms {
            requires_authorization: true,
            max_cycle_days: Some(30),
            max_course_cycles: Some(6),
            followup_every: 2,
        },
    },
];

/// A well-formed ATC code that no formulary lists (imatinib).
const OFF_FORMULARY: &str = "L01EA01";

const GROUPS: &[(&str, &[&str])] = &[
    ("malignant tumours", &["C00-C97"]),
    ("ischaemic heart disease", &["I20-I25"]),
    ("COPD", &["J44"]),
];

#[derive(Debug, Clone)]
struct ProductDef {
    id: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    open: NaiveDate,
    close: NaiveDate,
    waiting_days: i64,
    renews: Option<&'static str>,
    inpatient: Terms,
    drug: Terms,
}

impl ProductDef {
    fn terms(&self, kind: Kind) -> &Terms {
        match kind {
            Kind::Inpatient => &self.inpatient,
            Kind::Drug => &self.drug,
        }
    }

    fn toml(&self) -> String {
        let terms = |t: &Terms| {
            format!(
                "deductible = \"{}\"\ncoinsurance = \"{}\"\ncoinsurance_preexisting = \"{}\"\nannual_limit = \"{}\"\n",
                yuan(t.deductible),
                t.rate,
                t.rate_preexisting,
                yuan(t.limit)
            )
        };
        let quoted = |items: &[&str]| {
            items
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "id = \"{}\"\nname = \"Simulated city plan\"\npremium = \"89.00\"\n\
             period_start = {}\nperiod_end = {}\nenrollment_open = {}\nenrollment_close = {}\n\
             waiting_days = {}\n",
            self.id, self.start, self.end, self.open, self.close, self.waiting_days
        );
        if let Some(renews) = self.renews {
            out.push_str(&format!("renews = \"{renews}\"\n"));
        }
        out.push_str(&format!(
            "qualified_prescribers = [{}]\n",
            quoted(QUALIFIED_PRESCRIBERS)
        ));
        for (name, codes) in GROUPS {
            out.push_str(&format!(
                "\n[[preexisting_groups]]\nname = \"{name}\"\ncodes = [{}]\n",
                quoted(codes)
            ));
        }
        out.push_str(&format!("\n[inpatient]\n{}", terms(&self.inpatient)));
        out.push_str(&format!("\n[specialty_drug]\n{}", terms(&self.drug)));
        for drug in FORMULARY {
            out.push_str(&format!(
                "\n[[specialty_drug.formulary]]\natc = \"{}\"\nname = \"{}\"\nindications = [{}]\n",
                drug.atc,
                drug.name,
                quoted(drug.indications)
            ));
            if let Some(marker) = drug.biomarker {
                out.push_str(&format!("required_biomarker = \"{marker}\"\n"));
            }
            out.push_str(&format!(
                "designated_providers = [{}]\n",
                quoted(drug.providers)
            ));
            out.push_str(&drug.course.toml());
        }
        out
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::from_str(text).expect("date")
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

/// Two product years with small deductibles and limits, so that limits are
/// reached within a few claims. The second renews the first.
fn product_years() -> (ProductDef, ProductDef) {
    let y1 = ProductDef {
        id: "sim-2025a",
        start: date("2025-01-01"),
        end: date("2025-03-31"),
        open: date("2025-01-01"),
        close: date("2025-02-15"),
        waiting_days: 7,
        renews: None,
        inpatient: Terms {
            deductible: 80_000,
            rate: dec("0.80"),
            rate_preexisting: dec("0.55"),
            limit: 300_000,
        },
        drug: Terms {
            deductible: 20_000,
            rate: dec("0.70"),
            rate_preexisting: dec("0.35"),
            limit: 400_000,
        },
    };
    let y2 = ProductDef {
        id: "sim-2025b",
        start: date("2025-04-01"),
        end: date("2025-06-30"),
        open: date("2025-04-01"),
        close: date("2025-05-10"),
        waiting_days: 10,
        renews: Some("sim-2025a"),
        inpatient: Terms {
            deductible: 50_000,
            rate: dec("0.75"),
            rate_preexisting: dec("0.45"),
            limit: 250_000,
        },
        drug: Terms {
            deductible: 0,
            rate: dec("0.65"),
            rate_preexisting: dec("0.30"),
            limit: 500_000,
        },
    };
    (y1, y2)
}

/// The second year reloaded with other rates (same deductibles and limits):
/// claims decided before keep the first version, also on appeal.
fn y2_revised(y2: &ProductDef) -> ProductDef {
    let mut revised = y2.clone();
    revised.inpatient.rate = dec("0.85");
    revised.inpatient.rate_preexisting = dec("0.5");
    revised.drug.rate = dec("0.6");
    revised.drug.rate_preexisting = dec("0.333");
    revised
}

const START_DAY: &str = "2024-12-28";
const RELOAD_DAY: &str = "2025-05-01";

// ---------------------------------------------------------------------------
// Money and codes, as the model reads them.

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A response amount (`"-12.30"`) in fen.
fn fen_of(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("amount is not a string: {value}"));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "00"));
    assert_eq!(fraction.len(), 2, "amount {text} has two decimals");
    let fen = whole.parse::<i64>().expect("yuan") * 100 + fraction.parse::<i64>().expect("fen");
    if negative { -fen } else { fen }
}

/// Rate x amount, rounded to the fen half away from zero.
fn share(rate: Decimal, fen: i64) -> i64 {
    let yuan = rate * Decimal::new(fen, 2);
    let rounded = yuan.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let fen = rounded * Decimal::from(100);
    assert!(fen.fract().is_zero());
    fen.to_i64().expect("fen")
}

fn norm_code(code: &str) -> String {
    code.trim().to_ascii_uppercase().replace('.', "")
}

/// A product's ICD-10 pattern: a prefix (`C34`, `C83.3`) or a range of
/// three-character categories (`C00-C97`).
fn code_in(pattern: &str, code: &str) -> bool {
    let code = norm_code(code);
    match pattern.split_once('-') {
        None => code.starts_with(&norm_code(pattern)),
        Some((first, last)) => {
            assert!(first.len() == 3 && last.len() == 3, "category range");
            let category = &code[..3];
            first <= category && category <= last
        }
    }
}

// ---------------------------------------------------------------------------
// Requests as the generator builds them.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ItemSpec {
    Inpatient {
        total: i64,
        basic_paid: i64,
        out_of_catalogue: i64,
    },
    Drug {
        atc: String,
        quantity: i64,
        unit_price: i64,
        basic_paid: i64,
        markers: Vec<(String, bool)>,
    },
}

impl ItemSpec {
    fn submitted(&self) -> i64 {
        match self {
            ItemSpec::Inpatient { total, .. } => *total,
            ItemSpec::Drug {
                quantity,
                unit_price,
                ..
            } => quantity * unit_price,
        }
    }

    fn basic_paid(&self) -> i64 {
        match self {
            ItemSpec::Inpatient { basic_paid, .. } | ItemSpec::Drug { basic_paid, .. } => {
                *basic_paid
            }
        }
    }

    fn eligible(&self) -> i64 {
        match self {
            ItemSpec::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => total - basic_paid - out_of_catalogue,
            ItemSpec::Drug { basic_paid, .. } => self.submitted() - basic_paid,
        }
    }

    /// What duplicates compare besides kind, provider and service date.
    fn amounts(&self) -> (String, i64, i64, i64) {
        match self {
            ItemSpec::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => (String::new(), *total, *basic_paid, *out_of_catalogue),
            ItemSpec::Drug {
                atc,
                quantity,
                unit_price,
                basic_paid,
                ..
            } => (atc.clone(), *quantity, *unit_price, *basic_paid),
        }
    }
}

/// Kind, provider, service date and amounts: what makes two items the same.
type Fingerprint = (Kind, String, NaiveDate, (String, i64, i64, i64));

#[derive(Debug, Clone)]
struct ClaimSpec {
    member_id: i64,
    kind: Kind,
    service_date: NaiveDate,
    provider: String,
    diagnosis: String,
    items: Vec<ItemSpec>,
    /// The course a dispensing names.
    authorization_id: Option<i64>,
}

impl ClaimSpec {
    fn fingerprint(&self, index: usize) -> Fingerprint {
        (
            self.kind,
            self.provider.clone(),
            self.service_date,
            self.items[index].amounts(),
        )
    }

    /// The submission JSON. `style` varies the form without changing the
    /// content: amounts as strings or JSON numbers, the diagnosis in another
    /// case or without its dot.
    fn submission(&self, style: u8) -> ClaimSubmission {
        let amount = |fen: i64| -> Value {
            match style {
                1 if fen % 100 == 0 => json!(fen / 100),
                1 => json!(fen as f64 / 100.0),
                2 => {
                    let text = yuan(fen);
                    let text = text.trim_end_matches('0').trim_end_matches('.');
                    json!(if text.is_empty() { "0" } else { text })
                }
                _ => json!(yuan(fen)),
            }
        };
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|item| match item {
                ItemSpec::Inpatient {
                    total,
                    basic_paid,
                    out_of_catalogue,
                } => json!({
                    "total": amount(*total),
                    "basic_paid": amount(*basic_paid),
                    "out_of_catalogue": amount(*out_of_catalogue),
                }),
                ItemSpec::Drug {
                    atc,
                    quantity,
                    unit_price,
                    basic_paid,
                    markers,
                } => json!({
                    "drug": if style == 0 { atc.clone() } else { atc.to_ascii_lowercase() },
                    "quantity": quantity,
                    "unit_price": amount(*unit_price),
                    "basic_paid": amount(*basic_paid),
                    "biomarkers": markers
                        .iter()
                        .map(|(marker, positive)| json!({ "marker": marker, "positive": positive }))
                        .collect::<Vec<_>>(),
                }),
            })
            .collect();
        let diagnosis = match style {
            1 => self.diagnosis.to_ascii_lowercase(),
            2 => self.diagnosis.replace('.', ""),
            _ => self.diagnosis.clone(),
        };
        let mut claim = json!({
            "member_id": self.member_id,
            "kind": self.kind.as_str(),
            "service_date": self.service_date.to_string(),
            "provider_id": self.provider,
            "diagnosis": diagnosis,
            "items": items,
        });
        if let Some(id) = self.authorization_id {
            claim["authorization_id"] = json!(id);
        }
        serde_json::from_value(claim).expect("claim json")
    }
}

#[derive(Debug, Clone)]
struct EnrolSpec {
    product: &'static str,
    serial: u32,
    phone_tail: u32,
    declared: Vec<&'static str>,
}

impl EnrolSpec {
    /// The request; `reformatted` writes the same content differently (phone
    /// with +86 and dashes, a final `x` in lower case, codes reordered and in
    /// lower case).
    fn request(&self, reformatted: bool) -> EnrollmentRequest {
        let phone = format!("1380000{:04}", self.phone_tail);
        let mut declared: Vec<String> = self.declared.iter().map(|s| s.to_string()).collect();
        let mut id = resident_id(self.serial);
        let mut phone_text = phone.clone();
        if reformatted {
            declared.reverse();
            declared = declared.iter().map(|d| d.to_ascii_lowercase()).collect();
            id = id.to_ascii_lowercase();
            phone_text = format!("+86 {}-{}-{}", &phone[..3], &phone[3..7], &phone[7..]);
        }
        EnrollmentRequest {
            product_id: self.product.to_owned(),
            resident_id: id,
            name: "模拟参保人".to_owned(),
            phone: phone_text,
            insurance_type: if self.serial.is_multiple_of(2) {
                "urban_employee"
            } else {
                "urban_rural_resident"
            }
            .to_owned(),
            declared_conditions: declared,
        }
    }
}

#[derive(Debug, Clone)]
enum Request {
    Enrol(EnrolSpec),
    Claim(ClaimSpec),
    Reverse {
        claim_id: i64,
        reason: String,
    },
    Appeal {
        claim_id: i64,
        evidence: Evidence,
    },
    Authorize(CourseSpec),
    Followup {
        course: i64,
        assessed_on: NaiveDate,
        response: &'static str,
    },
    Cancel {
        course: i64,
        reason: String,
    },
}

type Evidence = Vec<(usize, Vec<(String, bool)>)>;

fn evidence_json(evidence: &Evidence) -> AppealEvidence {
    serde_json::from_value(json!({
        "items": evidence
            .iter()
            .map(|(index, markers)| json!({
                "index": index,
                "biomarkers": markers
                    .iter()
                    .map(|(marker, positive)| json!({ "marker": marker, "positive": positive }))
                    .collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
    }))
    .expect("evidence json")
}

/// A request that took effect, with the actor and key it was sent under and
/// the response it got: retries must get exactly this response back.
#[derive(Debug, Clone)]
struct Done {
    actor: String,
    key: String,
    request: Request,
    body: Value,
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone)]
struct ModelEnrollment {
    coverage_start: NaiveDate,
    first_covered_day: NaiveDate,
    waiting_waived: bool,
    declared: Vec<String>,
}

#[derive(Debug, Clone)]
struct ModelMember {
    serial: u32,
    enrollments: BTreeMap<&'static str, ModelEnrollment>,
}

/// One item's predicted explanation.
#[derive(Debug, Clone, PartialEq)]
struct ModelItem {
    paid: bool,
    reasons: Vec<&'static str>,
    submitted: i64,
    basic_paid: i64,
    eligible: i64,
    deductible_applied: i64,
    rate: Decimal,
    payable: i64,
    balance_before: (i64, i64),
    balance_after: (i64, i64),
    carried_over: bool,
    /// The course the claim names, and the cycle of it the service date
    /// falls in when the course matches the claim.
    authorization_id: Option<i64>,
    cycle: Option<u32>,
}

#[derive(Debug, Clone)]
struct ModelClaim {
    id: i64,
    spec: ClaimSpec,
    /// The product whose period contains the service date, when the member
    /// is enrolled in it; `None` when the rules leave no product to decide
    /// (every item is then denied `not_covered_period`).
    product: Option<&'static str>,
    /// Index into the product's versions of the first decision.
    version: usize,
    items: Vec<ModelItem>,
    /// Deductible and paid posted by the claim's decisions so far.
    posted: (i64, i64),
    reversed: bool,
    /// The decisions as the engine returned them: never edited later.
    decisions: Vec<Value>,
}

impl ModelClaim {
    fn status(&self) -> &'static str {
        if self.reversed {
            return "reversed";
        }
        decision_status(&self.items)
    }

    fn has_paid(&self) -> bool {
        self.items.iter().any(|i| i.paid)
    }

    fn has_denied(&self) -> bool {
        self.items.iter().any(|i| !i.paid)
    }
}

fn decision_status(items: &[ModelItem]) -> &'static str {
    let paid = items.iter().filter(|i| i.paid).count();
    if paid == items.len() {
        "paid"
    } else if paid == 0 {
        "denied"
    } else {
        "partial"
    }
}

/// What the model expects from a request.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// A new effect; the body is checked against the model.
    Fresh,
    /// The stored response of an earlier request, byte for byte.
    Replay(Value),
    KeyReused,
    Conflict(&'static str),
    Invalid(&'static str),
    NotFound,
}

struct ProductState {
    /// Versions loaded so far, oldest first, with their stored id.
    versions: Vec<(ProductDef, i64)>,
}

struct Sim<'a> {
    conn: &'a mut DbConn,
    keys: &'a Keys,
    rng: ChaCha8Rng,
    step: &'a Cell<usize>,
    trace: &'a std::cell::RefCell<Vec<String>>,
    today: NaiveDate,
    products: BTreeMap<&'static str, ProductState>,
    y2_revision: Option<ProductDef>,
    members: BTreeMap<i64, ModelMember>,
    member_by_serial: HashMap<u32, i64>,
    next_serial: u32,
    claims: BTreeMap<i64, ModelClaim>,
    courses: BTreeMap<i64, ModelCourse>,
    /// Turns of the course generators that cycle through their cases.
    course_turns: [u32; 4],
    balances: HashMap<(i64, &'static str, Kind), (i64, i64)>,
    done: Vec<Done>,
    /// Keys that were refused, per actor: still unused.
    unused_keys: HashMap<String, Vec<String>>,
    next_key: u64,
    /// Counts of what the run exercised, for the final sanity check.
    seen: BTreeMap<&'static str, usize>,
    /// Paid items whose share fell on half a fen, and items paid at the
    /// pre-existing rate (counted while predicting).
    seen_half: Cell<usize>,
    seen_preexisting: Cell<usize>,
    /// The default seeds must reach every situation listed in the final
    /// checks; a seed given by hand only reports what it missed.
    require_coverage: bool,
    touched: HashSet<i64>,
}

const INPATIENT_PROVIDERS: &[&str] = &["H-001", "H-002", "H-009"];
const DRUG_PROVIDERS: &[&str] = &["PH-001", "PH-002", "PH-003", "H-009"];
const DECLARABLE: &[&str] = &["C34.1", "C50.9", "I21.0", "J44.9", "N18.5"];
const INPATIENT_DIAGNOSES: &[&str] = &[
    "K35.8",
    "S72.0",
    "C34.1",
    "C50.9",
    "I21.0",
    "I25.1",
    "J44.1",
    "N18.5",
    "C34.100x001",
];
const DRUG_DIAGNOSES: &[&str] = &[
    "C34.1", "C34.9", "C34.1", "C43.9", "C83.3", "C85.1", "K35.8", "I21.0",
];

impl<'a> Sim<'a> {
    fn new(
        conn: &'a mut DbConn,
        keys: &'a Keys,
        seed: u64,
        step: &'a Cell<usize>,
        trace: &'a std::cell::RefCell<Vec<String>>,
        require_coverage: bool,
    ) -> Self {
        Sim {
            conn,
            keys,
            rng: ChaCha8Rng::seed_from_u64(seed),
            step,
            trace,
            today: date(START_DAY),
            products: BTreeMap::new(),
            y2_revision: None,
            members: BTreeMap::new(),
            member_by_serial: HashMap::new(),
            next_serial: 1,
            claims: BTreeMap::new(),
            courses: BTreeMap::new(),
            course_turns: [0; 4],
            balances: HashMap::new(),
            done: Vec::new(),
            unused_keys: HashMap::new(),
            next_key: 0,
            seen: BTreeMap::new(),
            seen_half: Cell::new(0),
            seen_preexisting: Cell::new(0),
            require_coverage,
            touched: HashSet::new(),
        }
    }

    fn note(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn log(&self, line: String) {
        let mut trace = self.trace.borrow_mut();
        trace.push(format!("step {}: {line}", self.step.get()));
        if trace.len() > 64 {
            trace.remove(0);
        }
    }

    /// 10:00 China time on the simulated day, a second per step later so
    /// that time never goes backwards.
    fn now(&self) -> DateTime<Utc> {
        let midnight_utc = self.today.and_hms_opt(2, 0, 0).expect("time").and_utc();
        midnight_utc + Duration::seconds(self.step.get() as i64)
    }

    fn fresh_key(&mut self, actor: &str) -> String {
        if self.rng.random_bool(0.3)
            && let Some(pool) = self.unused_keys.get_mut(actor)
            && !pool.is_empty()
        {
            let index = self.rng.random_range(0..pool.len());
            let key = pool.swap_remove(index);
            self.note("refused key used again");
            return key;
        }
        self.next_key += 1;
        format!("sim-{}", self.next_key)
    }

    fn product_def(&self, id: &str) -> &ProductDef {
        &self.products[id].versions.last().expect("version").0
    }

    fn load_product(&mut self, def: ProductDef) {
        let product = Product::from_toml_str(&def.toml()).expect("simulated product is valid");
        let ctx = WriteContext {
            keys: self.keys,
            actor: "cli",
            now: self.now(),
        };
        let (stored, outcome) = products::load(self.conn, &ctx, &product).expect("load product");
        assert_eq!(outcome, products::LoadOutcome::NewVersion);
        let state = self
            .products
            .entry(def.id)
            .or_insert(ProductState { versions: vec![] });
        assert_eq!(stored.version as usize, state.versions.len() + 1);
        state.versions.push((def, stored.version_id));
    }

    fn run(&mut self, steps: usize) {
        let (y1, y2) = product_years();
        self.y2_revision = Some(y2_revised(&y2));
        self.load_product(y1);
        self.load_product(y2);
        for step in 1..=steps {
            self.step.set(step);
            if self.rng.random_bool(0.6) {
                self.today += Duration::days(1);
            }
            if self.today >= date(RELOAD_DAY)
                && let Some(revised) = self.y2_revision.take()
            {
                self.log(format!("reload {} with new rates", revised.id));
                self.load_product(revised);
            }
            self.touched.clear();
            self.one_step();
            let sweep = step % FULL_SWEEP_EVERY == 0 || step == steps;
            let members: Vec<i64> = if sweep {
                self.members.keys().copied().collect()
            } else {
                self.touched.iter().copied().collect()
            };
            for member in members {
                self.check_cover(member);
            }
            self.check_ledger();
        }
        self.final_checks();
    }

    fn one_step(&mut self) {
        let window_open = self
            .products
            .values()
            .any(|p| p.versions[0].0.open <= self.today && self.today <= p.versions[0].0.close);
        let enrol_weight = if self.members.len() < 3 {
            60
        } else if window_open && self.members.len() < 12 {
            12
        } else if window_open {
            5
        } else {
            2
        };
        let has_claims = !self.claims.is_empty();
        let has_done = !self.done.is_empty();
        let weights = [
            enrol_weight,
            if self.members.is_empty() { 0 } else { 45 },
            if has_done { 10 } else { 0 },
            if has_done { 6 } else { 0 },
            if has_claims { 8 } else { 0 },
            if has_claims { 10 } else { 0 },
        ];
        let total: u32 = weights.iter().sum();
        let mut pick = self.rng.random_range(0..total);
        let mut action = 0;
        for (index, weight) in weights.iter().enumerate() {
            if pick < *weight {
                action = index;
                break;
            }
            pick -= weight;
        }
        match action {
            0 => self.enrol(),
            1 => self.claim(),
            2 => self.retry(),
            3 => self.reuse_key(),
            4 => self.reverse(),
            _ => self.appeal(),
        }
        // Most steps also act on a treatment course.
        if !self.members.is_empty() && self.rng.random_bool(0.7) {
            self.course_step();
        }
    }

    // -- enrollment ---------------------------------------------------------

    fn enrol(&mut self) {
        let open: Vec<&'static str> = self
            .products
            .iter()
            .filter(|(_, p)| {
                let def = &p.versions[0].0;
                def.open <= self.today && self.today <= def.close
            })
            .map(|(id, _)| *id)
            .collect();
        let all: Vec<&'static str> = self.products.keys().copied().collect();
        let product = if !open.is_empty() && self.rng.random_bool(0.9) {
            *open.choose(&mut self.rng).expect("open product")
        } else {
            *all.choose(&mut self.rng).expect("product")
        };
        // Existing people come back: renewing into the next year, or
        // enrolling twice in one (a conflict).
        let serial = if !self.members.is_empty() && self.rng.random_bool(0.4) {
            let serials: Vec<u32> = self.members.values().map(|m| m.serial).collect();
            *serials.choose(&mut self.rng).expect("serial")
        } else {
            self.next_serial += 1;
            self.next_serial
        };
        let mut declared = Vec::new();
        if self.rng.random_bool(0.45) {
            declared.push(*DECLARABLE.choose(&mut self.rng).expect("code"));
            if self.rng.random_bool(0.3) {
                let other = *DECLARABLE.choose(&mut self.rng).expect("code");
                if !declared.contains(&other) {
                    declared.push(other);
                }
            }
        }
        let spec = EnrolSpec {
            product,
            serial,
            phone_tail: self.rng.random_range(0..10_000),
            declared,
        };
        let actor = "insurer:1".to_owned();
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Enrol(spec), false);
    }

    fn predict_enrol(&self, spec: &EnrolSpec) -> Expect {
        let def = self.product_def(spec.product);
        if !(def.open <= self.today && self.today <= def.close) {
            return Expect::Invalid("outside_enrollment_window");
        }
        if let Some(member) = self.member_by_serial.get(&spec.serial)
            && self.members[member].enrollments.contains_key(spec.product)
        {
            return Expect::Conflict("already_enrolled");
        }
        Expect::Fresh
    }

    fn apply_enrol(&mut self, spec: &EnrolSpec, body: &Value) {
        let member_id = body["member"]["id"].as_i64().expect("member id");
        match self.member_by_serial.get(&spec.serial) {
            Some(known) => assert_eq!(
                *known, member_id,
                "a person enrolling again keeps their member"
            ),
            None => {
                assert!(
                    !self.members.contains_key(&member_id),
                    "a new person gets a new member"
                );
                self.member_by_serial.insert(spec.serial, member_id);
                self.members.insert(
                    member_id,
                    ModelMember {
                        serial: spec.serial,
                        enrollments: BTreeMap::new(),
                    },
                );
                self.note("new member");
            }
        }
        let def = self.product_def(spec.product).clone();
        // Coverage starts on the later of the product start and the
        // enrollment date; renewing members have no waiting period.
        let coverage_start = def.start.max(self.today);
        let waived = def
            .renews
            .is_some_and(|previous| self.members[&member_id].enrollments.contains_key(previous));
        let first_covered_day = if waived {
            coverage_start
        } else {
            coverage_start + Duration::days(def.waiting_days)
        };
        let mut declared: Vec<String> = spec.declared.iter().map(|c| norm_code(c)).collect();
        declared.sort();
        declared.dedup();
        let enrollment = ModelEnrollment {
            coverage_start,
            first_covered_day,
            waiting_waived: waived,
            declared,
        };
        if waived {
            self.note("renewal");
        }
        let member = self.members.get_mut(&member_id).expect("member");
        member.enrollments.insert(spec.product, enrollment.clone());
        let shown = body["member"]["enrollments"]
            .as_array()
            .expect("enrollments")
            .iter()
            .find(|e| e["product_id"] == spec.product)
            .expect("the new enrollment is shown");
        assert_eq!(shown["coverage_start"], coverage_start.to_string());
        assert_eq!(shown["first_covered_day"], first_covered_day.to_string());
        assert_eq!(shown["waiting_waived"], waived);
        let mut shown_declared: Vec<String> = shown["declared_conditions"]
            .as_array()
            .expect("declared")
            .iter()
            .map(|c| norm_code(c.as_str().expect("code")))
            .collect();
        shown_declared.sort();
        assert_eq!(shown_declared, enrollment.declared);
        assert_eq!(
            body["member"]["enrollments"].as_array().map(Vec::len),
            Some(member.enrollments.len())
        );
        self.touched.insert(member_id);
    }

    // -- claims -------------------------------------------------------------

    fn random_markers(&mut self, required: Option<&str>) -> Vec<(String, bool)> {
        let marker = required.unwrap_or("EGFR");
        match self.rng.random_range(0..10) {
            0..=4 => vec![(marker.to_owned(), true)],
            5 => vec![(marker.to_ascii_lowercase(), true)],
            6 => vec![(marker.to_owned(), false)],
            7 => vec![("ALK".to_owned(), true)],
            8 => vec![("ALK".to_owned(), false), (marker.to_owned(), true)],
            _ => vec![],
        }
    }

    /// A random item; drug items are mostly of `primary` (an index into the
    /// formulary) when given.
    fn random_item(&mut self, kind: Kind, primary: Option<usize>) -> ItemSpec {
        match kind {
            Kind::Inpatient => {
                let total = match self.rng.random_range(0..10) {
                    0 => 0,
                    1 => self.rng.random_range(1..2_000),
                    _ => self.rng.random_range(10_000..400_000),
                };
                let (basic_paid, out_of_catalogue) = if self.rng.random_bool(0.1) {
                    // Nothing left for the product: E = 0.
                    let basic = self.rng.random_range(0..=total);
                    (basic, total - basic)
                } else {
                    let basic = self.rng.random_range(0..=total * 6 / 10);
                    let ooc = self.rng.random_range(0..=(total - basic) / 3);
                    (basic, ooc)
                };
                ItemSpec::Inpatient {
                    total,
                    basic_paid,
                    out_of_catalogue,
                }
            }
            Kind::Drug => {
                let drug = match (primary, self.rng.random_range(0..10)) {
                    (Some(primary), 0..=6) => &FORMULARY[primary],
                    (_, 0..=5) => &FORMULARY[0],
                    (_, 6 | 7) => &FORMULARY[1],
                    _ => &FORMULARY[2],
                };
                let atc = if self.rng.random_bool(0.08) {
                    OFF_FORMULARY
                } else {
                    drug.atc
                };
                let quantity = self.rng.random_range(1..=6);
                let unit_price = if self.rng.random_bool(0.1) {
                    self.rng.random_range(1..100)
                } else {
                    self.rng.random_range(1_000..150_000)
                };
                let gross = quantity * unit_price;
                let basic_paid = match self.rng.random_range(0..10) {
                    0 => gross,
                    1..=4 => 0,
                    _ => self.rng.random_range(0..=gross / 2),
                };
                let markers = self.random_markers(drug.biomarker);
                ItemSpec::Drug {
                    atc: atc.to_owned(),
                    quantity,
                    unit_price,
                    basic_paid,
                    markers,
                }
            }
        }
    }

    fn claim(&mut self) {
        // Mostly members covered by the product year of today.
        let current: Vec<i64> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.enrollments.keys().any(|p| {
                    self.product_def(p).start <= self.today && self.today <= self.product_def(p).end
                })
            })
            .map(|(id, _)| *id)
            .collect();
        let members: Vec<i64> = if !current.is_empty() && self.rng.random_bool(0.85) {
            current
        } else {
            self.members.keys().copied().collect()
        };
        let member_id = *members.choose(&mut self.rng).expect("member");
        // Sometimes a copy of an earlier claim's bill (same kind, provider
        // and date; diagnosis and biomarkers may differ): its paid items are
        // duplicates while that claim stands.
        let earlier: Vec<i64> = self
            .claims
            .values()
            .filter(|c| c.spec.member_id == member_id)
            .map(|c| c.id)
            .collect();
        let mut spec = if !earlier.is_empty() && self.rng.random_bool(0.15) {
            let source = self.claims[earlier.choose(&mut self.rng).expect("claim")]
                .spec
                .clone();
            self.note("copied bill");
            let mut spec = source.clone();
            if self.rng.random_bool(0.3) {
                spec.diagnosis = self.random_diagnosis(spec.kind);
            }
            if self.rng.random_bool(0.4) {
                let extra = self.random_item(spec.kind, None);
                spec.items.push(extra);
            }
            if spec.items.len() > 1 && self.rng.random_bool(0.3) {
                spec.items.remove(0);
            }
            for item in &mut spec.items {
                if let ItemSpec::Drug { markers, .. } = item
                    && self.rng.random_bool(0.3)
                {
                    *markers = vec![("EGFR".to_owned(), true), ("CD19".to_owned(), true)];
                }
            }
            spec
        } else {
            let kind = if self.rng.random_bool(0.5) {
                Kind::Inpatient
            } else {
                Kind::Drug
            };
            // Drug claims mostly name a designated provider and an approved
            // indication of their main drug, so that biomarkers, duplicates
            // and limits decide them, and appeals can succeed.
            let primary = self.rng.random_range(0..FORMULARY.len());
            let usual = kind == Kind::Drug && self.rng.random_bool(0.75);
            let provider = match kind {
                Kind::Inpatient => *INPATIENT_PROVIDERS.choose(&mut self.rng).expect("p"),
                Kind::Drug if usual => *FORMULARY[primary]
                    .providers
                    .choose(&mut self.rng)
                    .expect("p"),
                Kind::Drug => *DRUG_PROVIDERS.choose(&mut self.rng).expect("p"),
            };
            let diagnosis = if usual && self.rng.random_bool(0.9) {
                FORMULARY[primary]
                    .typical_diagnoses
                    .choose(&mut self.rng)
                    .expect("dx")
                    .to_string()
            } else {
                self.random_diagnosis(kind)
            };
            let back = if self.rng.random_bool(0.85) {
                self.rng.random_range(0..8)
            } else {
                self.rng.random_range(20..120)
            };
            let count = match self.rng.random_range(0..10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(self.random_item(kind, Some(primary)));
            }
            ClaimSpec {
                member_id,
                kind,
                service_date: self.today - Duration::days(back),
                provider: provider.to_owned(),
                diagnosis,
                items,
                authorization_id: None,
            }
        };
        // An item repeated within the claim: the second one is a duplicate
        // when the first is paid.
        if self.rng.random_bool(0.08) {
            let copy = spec.items[self.rng.random_range(0..spec.items.len())].clone();
            spec.items.push(copy);
            self.note("repeated item");
        }
        // A claim for someone who is not a member: refused, key unused.
        if self.rng.random_bool(0.03) {
            spec.member_id = 1_000_000 + i64::from(self.rng.random_range(0..1000_u32));
        }
        let actor = format!("provider:{}", spec.provider);
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Claim(spec), false);
    }

    fn random_diagnosis(&mut self, kind: Kind) -> String {
        match kind {
            Kind::Inpatient => *INPATIENT_DIAGNOSES.choose(&mut self.rng).expect("dx"),
            Kind::Drug => *DRUG_DIAGNOSES.choose(&mut self.rng).expect("dx"),
        }
        .to_owned()
    }

    /// The items of the member's claims that are paid and not reversed,
    /// leaving out one claim.
    fn paid_fingerprints(&self, member_id: i64, except: Option<i64>) -> HashSet<Fingerprint> {
        let mut set = HashSet::new();
        for claim in self.claims.values() {
            if claim.spec.member_id != member_id || claim.reversed || Some(claim.id) == except {
                continue;
            }
            for (index, item) in claim.items.iter().enumerate() {
                if item.paid {
                    set.insert(claim.spec.fingerprint(index));
                }
            }
        }
        set
    }

    /// The product that decides a claim (rule: the one whose period holds
    /// the service date, if the member is enrolled in it).
    fn deciding_product(&self, spec: &ClaimSpec) -> Option<&'static str> {
        let member = &self.members[&spec.member_id];
        self.products
            .iter()
            .find(|(_, p)| {
                let def = &p.versions[0].0;
                def.start <= spec.service_date && spec.service_date <= def.end
            })
            .map(|(id, _)| *id)
            .filter(|id| member.enrollments.contains_key(id))
    }

    /// Decides items `which` of a claim, in order, by rules 1-5.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        spec: &ClaimSpec,
        product: Option<&'static str>,
        version: usize,
        which: &[usize],
        extra: &Evidence,
        mut paid_before: HashSet<Fingerprint>,
        balance: &mut (i64, i64),
        appealed: Option<i64>,
    ) -> BTreeMap<usize, ModelItem> {
        let member = &self.members[&spec.member_id];
        let (def, enrollment) = match product {
            Some(id) => (
                Some(&self.products[id].versions[version].0),
                member.enrollments.get(id),
            ),
            None => (None, None),
        };
        // Rules 1 and 2, for the whole claim.
        let claim_denial = match (def, enrollment) {
            (Some(def), Some(e)) => {
                if spec.service_date < e.coverage_start || spec.service_date > def.end {
                    Some("not_covered_period")
                } else if spec.service_date < e.first_covered_day {
                    Some("waiting_period")
                } else {
                    None
                }
            }
            _ => Some("not_covered_period"),
        };
        let rate = def.map(|def| {
            let terms = def.terms(spec.kind);
            let declared = &enrollment.expect("enrolled").declared;
            let preexisting = GROUPS.iter().any(|(_, patterns)| {
                let in_group = |code: &str| patterns.iter().any(|p| code_in(p, code));
                in_group(&spec.diagnosis) && declared.iter().any(|d| in_group(d))
            });
            if preexisting {
                terms.rate_preexisting
            } else {
                terms.rate
            }
        });
        let mut out = BTreeMap::new();
        for &index in which {
            let item = &spec.items[index];
            let submitted = item.submitted();
            let basic_paid = item.basic_paid();
            let eligible = item.eligible();
            let fingerprint = spec.fingerprint(index);
            let mut reasons: Vec<&'static str> = Vec::new();
            let mut cycle = None;
            if let Some(reason) = claim_denial {
                reasons.push(reason);
            } else {
                if let ItemSpec::Drug { atc, markers, .. } = item {
                    match FORMULARY.iter().find(|d| d.atc == atc) {
                        None => reasons.push("not_on_formulary"),
                        Some(drug) => {
                            let course = self.course_verdict(spec, drug, item, appealed);
                            cycle = course.cycle;
                            if !drug.indications.iter().any(|p| code_in(p, &spec.diagnosis)) {
                                reasons.push("indication_mismatch");
                            }
                            if let Some(required) = drug.biomarker {
                                let evidence = extra
                                    .iter()
                                    .filter(|(i, _)| *i == index)
                                    .flat_map(|(_, m)| m.iter());
                                let shown = course.meets_biomarker
                                    || markers.iter().chain(evidence).any(|(m, positive)| {
                                        *positive && m.eq_ignore_ascii_case(required)
                                    });
                                if !shown {
                                    reasons.push("biomarker_required");
                                }
                            }
                            if !drug.providers.contains(&spec.provider.as_str()) {
                                reasons.push("not_designated_provider");
                            }
                            reasons.extend(course.reasons);
                        }
                    }
                }
                if reasons.is_empty() && paid_before.contains(&fingerprint) {
                    reasons.push("duplicate");
                }
            }
            let before = *balance;
            if !reasons.is_empty() {
                out.insert(
                    index,
                    ModelItem {
                        paid: false,
                        reasons,
                        submitted,
                        basic_paid,
                        eligible,
                        deductible_applied: 0,
                        rate: Decimal::ZERO,
                        payable: 0,
                        balance_before: before,
                        balance_after: before,
                        carried_over: false,
                        authorization_id: spec.authorization_id,
                        cycle,
                    },
                );
                continue;
            }
            // Rule 5.
            let terms = def.expect("covered").terms(spec.kind);
            let rate = rate.expect("covered");
            let deductible_left = (terms.deductible - before.0).max(0);
            let limit_left = (terms.limit - before.1).max(0);
            let deductible_applied = eligible.min(deductible_left);
            let benefit = share(rate, eligible - deductible_applied);
            if (rate * Decimal::from(eligible - deductible_applied)).fract() == dec("0.5") {
                self.seen_half.set(self.seen_half.get() + 1);
            }
            if rate == terms.rate_preexisting && rate != terms.rate {
                self.seen_preexisting.set(self.seen_preexisting.get() + 1);
            }
            let payable = benefit.min(limit_left);
            if eligible == 0 {
                reasons.push("nothing_eligible");
            } else if deductible_applied == eligible {
                reasons.push("deductible");
            }
            if payable < benefit || limit_left == 0 {
                reasons.push("limit_reached");
            }
            *balance = (before.0 + deductible_applied, before.1 + payable);
            paid_before.insert(fingerprint);
            out.insert(
                index,
                ModelItem {
                    paid: true,
                    reasons,
                    submitted,
                    basic_paid,
                    eligible,
                    deductible_applied,
                    rate,
                    payable,
                    balance_before: before,
                    balance_after: *balance,
                    carried_over: false,
                    authorization_id: spec.authorization_id,
                    cycle,
                },
            );
        }
        out
    }

    fn balance(&self, member: i64, product: &'static str, kind: Kind) -> (i64, i64) {
        self.balances
            .get(&(member, product, kind))
            .copied()
            .unwrap_or((0, 0))
    }

    fn predict_claim(&self, spec: &ClaimSpec) -> Expect {
        // A course is named on a drug claim of exactly one item.
        if spec.authorization_id.is_some() && (spec.kind != Kind::Drug || spec.items.len() != 1) {
            return Expect::Invalid("authorization_not_allowed");
        }
        if !self.members.contains_key(&spec.member_id) {
            return Expect::Invalid("unknown_member");
        }
        if spec
            .authorization_id
            .is_some_and(|id| !self.courses.contains_key(&id))
        {
            return Expect::Invalid("unknown_authorization");
        }
        Expect::Fresh
    }

    fn apply_claim(&mut self, spec: &ClaimSpec, body: &Value) {
        let product = self.deciding_product(spec);
        let version = product.map_or(0, |p| self.products[p].versions.len() - 1);
        let mut balance = product.map_or((0, 0), |p| self.balance(spec.member_id, p, spec.kind));
        let all: Vec<usize> = (0..spec.items.len()).collect();
        let paid_elsewhere = self.paid_fingerprints(spec.member_id, None);
        let decided = self.decide(
            spec,
            product,
            version,
            &all,
            &Vec::new(),
            paid_elsewhere,
            &mut balance,
            None,
        );
        let items: Vec<ModelItem> = decided.into_values().collect();
        let posted = items.iter().fold((0, 0), |acc, i| {
            (acc.0 + i.deductible_applied, acc.1 + i.payable)
        });
        if let Some(p) = product {
            let entry = self
                .balances
                .entry((spec.member_id, p, spec.kind))
                .or_default();
            *entry = (entry.0 + posted.0, entry.1 + posted.1);
        }
        let id = body["id"].as_i64().expect("claim id");
        assert!(!self.claims.contains_key(&id), "claim ids are new");
        let claim = ModelClaim {
            id,
            spec: spec.clone(),
            product,
            version,
            items,
            posted,
            reversed: false,
            decisions: vec![],
        };
        self.note(match claim.status() {
            "paid" => "claim paid",
            "partial" => "claim partial",
            _ => "claim denied",
        });
        for item in &claim.items {
            for reason in &item.reasons {
                self.note(reason);
            }
        }
        self.claims.insert(id, claim);
        self.note_dispensing(id, None);
        self.check_claim_body(id, body, 1);
        self.touched.insert(spec.member_id);
    }

    /// Compares a claim response with the model's claim.
    fn check_claim_body(&mut self, id: i64, body: &Value, decisions: usize) {
        let claim = &self.claims[&id];
        let here = format!("claim {id}");
        assert_eq!(body["id"], id, "{here}");
        assert_eq!(body["member_id"], claim.spec.member_id, "{here}");
        assert_eq!(body["kind"], claim.spec.kind.as_str(), "{here}");
        assert_eq!(
            body["service_date"],
            claim.spec.service_date.to_string(),
            "{here}"
        );
        assert_eq!(body["provider_id"], claim.spec.provider, "{here}");
        assert_eq!(body["status"], claim.status(), "{here}: status");
        assert_eq!(
            body["reversal"].is_null(),
            !claim.reversed,
            "{here}: reversal"
        );
        let all = body["decisions"].as_array().expect("decisions");
        assert_eq!(all.len(), decisions, "{here}: number of decisions");
        // Earlier decisions are never edited.
        assert_eq!(
            &all[..claim.decisions.len().min(all.len())],
            &claim.decisions[..],
            "{here}: an earlier decision changed"
        );
        let decision = &body["decision"];
        assert_eq!(decision, all.last().expect("decision"), "{here}");
        assert_eq!(decision["sequence"], decisions, "{here}");
        assert_eq!(
            decision["parent_decision_id"],
            if decisions == 1 {
                Value::Null
            } else {
                all[decisions - 2]["id"].clone()
            },
            "{here}: parent decision"
        );
        assert_eq!(
            decision["status"],
            decision_status(&claim.items),
            "{here}: decision status"
        );
        if let Some(product) = claim.product {
            assert_eq!(body["product_id"], product, "{here}: deciding product");
            assert_eq!(
                decision["product_version_id"], self.products[product].versions[claim.version].1,
                "{here}: the first decision's product version decides"
            );
        }
        let items = decision["items"].as_array().expect("items");
        assert_eq!(items.len(), claim.items.len(), "{here}: items");
        let mut totals = [0_i64; 7];
        for (index, (got, want)) in items.iter().zip(&claim.items).enumerate() {
            let here = format!("claim {id} item {index}");
            let reasons: Vec<&str> = got["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .map(|r| r.as_str().expect("reason"))
                .collect();
            assert_eq!(got["index"], index, "{here}");
            assert_eq!(
                (got["outcome"].as_str().expect("outcome"), reasons),
                (
                    if want.paid { "paid" } else { "denied" },
                    want.reasons.clone()
                ),
                "{here}: outcome and reasons"
            );
            let member_responsibility = want.eligible - want.payable;
            let out_of_pocket = want.submitted - want.basic_paid - want.payable;
            let amounts = |v: &Value| {
                [
                    fen_of(&v["submitted"]),
                    fen_of(&v["basic_paid"]),
                    fen_of(&v["eligible"]),
                    fen_of(&v["deductible_applied"]),
                    fen_of(&v["payable"]),
                    fen_of(&v["member_responsibility"]),
                    fen_of(&v["out_of_pocket"]),
                ]
            };
            let want_amounts = [
                want.submitted,
                want.basic_paid,
                want.eligible,
                want.deductible_applied,
                want.payable,
                member_responsibility,
                out_of_pocket,
            ];
            assert_eq!(
                amounts(got),
                want_amounts,
                "{here}: submitted, basic_paid, eligible, deductible, payable, \
                 member responsibility, out of pocket"
            );
            for (total, amount) in totals.iter_mut().zip(want_amounts) {
                *total += amount;
            }
            if want.paid {
                let rate = Decimal::from_str(got["coinsurance_rate"].as_str().expect("rate"))
                    .expect("rate");
                assert_eq!(rate, want.rate, "{here}: coinsurance rate");
            }
            assert_eq!(
                got["carried_over"], want.carried_over,
                "{here}: carried over"
            );
            assert_eq!(
                (got["authorization_id"].as_i64(), got["cycle"].as_u64()),
                (want.authorization_id, want.cycle.map(u64::from)),
                "{here}: authorisation and cycle"
            );
            let balance = |v: &Value| (fen_of(&v["deductible_met"]), fen_of(&v["paid"]));
            let before = balance(&got["balance_before"]);
            let after = balance(&got["balance_after"]);
            if claim.product.is_some() {
                assert_eq!(
                    (before, after),
                    (want.balance_before, want.balance_after),
                    "{here}: balances before and after"
                );
            } else {
                assert_eq!(before, after, "{here}: a denied item consumes nothing");
            }
        }
        assert_eq!(
            amounts_of(&decision["totals"]),
            totals,
            "{here}: totals are sums over items"
        );
        let decisions_now = all.clone();
        self.claims
            .get_mut(&id)
            .expect("claim")
            .decisions
            .clone_from(&decisions_now);
    }

    // -- reversals ----------------------------------------------------------

    fn pick_claim(&mut self) -> i64 {
        let ids: Vec<i64> = self.claims.keys().copied().collect();
        *ids.choose(&mut self.rng).expect("claim")
    }

    fn reverse(&mut self) {
        // Mostly claims that paid something, so that reversals happen.
        let paid: Vec<i64> = self
            .claims
            .values()
            .filter(|c| c.has_paid() && !c.reversed)
            .map(|c| c.id)
            .collect();
        let claim_id = match self.rng.random_range(0..20) {
            0 => 9_000_000,
            1..=11 if !paid.is_empty() => *paid.choose(&mut self.rng).expect("claim"),
            _ => self.pick_claim(),
        };
        let reason = if self.rng.random_bool(0.04) {
            "   ".to_owned()
        } else {
            format!("billing error {}", self.rng.random_range(0..1000))
        };
        let actor = "insurer:1".to_owned();
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Reverse { claim_id, reason }, false);
    }

    fn predict_reverse(&self, claim_id: i64, reason: &str) -> Expect {
        if reason.trim().is_empty() {
            return Expect::Invalid("invalid_reason");
        }
        match self.claims.get(&claim_id) {
            None => Expect::NotFound,
            Some(c) if c.reversed => Expect::Conflict("already_reversed"),
            Some(c) if !c.has_paid() => Expect::Conflict("not_reversible"),
            Some(_) => Expect::Fresh,
        }
    }

    fn apply_reverse(&mut self, claim_id: i64, body: &Value) {
        let claim = self.claims.get_mut(&claim_id).expect("claim");
        claim.reversed = true;
        let product = claim
            .product
            .expect("a claim with a paid item has a product");
        let key = (claim.spec.member_id, product, claim.spec.kind);
        let posted = claim.posted;
        let decisions = claim.decisions.len();
        let member = claim.spec.member_id;
        let entry = self.balances.entry(key).or_default();
        *entry = (entry.0 - posted.0, entry.1 - posted.1);
        assert!(
            entry.0 >= 0 && entry.1 >= 0,
            "a reversal never goes below 0"
        );
        self.check_claim_body(claim_id, body, decisions);
        self.touched.insert(member);
        self.note("reversed");
        if self.claims[&claim_id]
            .items
            .iter()
            .any(|i| i.paid && i.cycle.is_some())
        {
            self.note("dispensing reversed");
        }
    }

    // -- appeals ------------------------------------------------------------

    fn appeal(&mut self) {
        let open: Vec<i64> = self
            .claims
            .values()
            .filter(|c| c.has_denied() && !c.reversed)
            .map(|c| c.id)
            .collect();
        // Mostly claims whose denials new evidence or a reversal elsewhere
        // can cure: a missing biomarker, a duplicate.
        let curable: Vec<i64> = open
            .iter()
            .copied()
            .filter(|id| {
                self.claims[id].items.iter().any(|i| {
                    !i.paid
                        && i.reasons
                            .iter()
                            .all(|r| *r == "biomarker_required" || *r == "duplicate")
                })
            })
            .collect();
        let claim_id = if !curable.is_empty() && self.rng.random_bool(0.6) {
            *curable.choose(&mut self.rng).expect("claim")
        } else if !open.is_empty() && self.rng.random_bool(0.7) {
            *open.choose(&mut self.rng).expect("claim")
        } else {
            self.pick_claim()
        };
        let claim = &self.claims[&claim_id];
        let mut evidence: Evidence = Vec::new();
        let denied: Vec<usize> = (0..claim.items.len())
            .filter(|&i| !claim.items[i].paid)
            .collect();
        let paid: Vec<usize> = (0..claim.items.len())
            .filter(|&i| claim.items[i].paid)
            .collect();
        let required: Vec<Option<&'static str>> = claim
            .spec
            .items
            .iter()
            .map(|item| match item {
                ItemSpec::Drug { atc, .. } => FORMULARY
                    .iter()
                    .find(|d| d.atc == atc)
                    .and_then(|d| d.biomarker),
                ItemSpec::Inpatient { .. } => None,
            })
            .collect();
        for index in denied {
            if self.rng.random_bool(0.7) {
                let marker = required[index].unwrap_or("EGFR");
                let markers = match self.rng.random_range(0..6) {
                    0..=2 => vec![(marker.to_owned(), true)],
                    3 => vec![(marker.to_ascii_lowercase(), true)],
                    4 => vec![(marker.to_owned(), false)],
                    _ => vec![("KRAS".to_owned(), true)],
                };
                evidence.push((index, markers));
            }
        }
        // Evidence for an item that was paid: refused.
        if !paid.is_empty() && self.rng.random_bool(0.08) {
            let index = *paid.choose(&mut self.rng).expect("paid");
            evidence.push((index, vec![("EGFR".to_owned(), true)]));
        }
        let actor = format!("provider:{}", claim.spec.provider);
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Appeal { claim_id, evidence }, false);
    }

    fn predict_appeal(&self, claim_id: i64, evidence: &Evidence) -> Expect {
        let Some(claim) = self.claims.get(&claim_id) else {
            return Expect::NotFound;
        };
        if claim.reversed || !claim.has_denied() {
            return Expect::Conflict("not_appealable");
        }
        if evidence
            .iter()
            .any(|(index, _)| claim.items.get(*index).is_none_or(|i| i.paid))
        {
            return Expect::Invalid("item_not_denied");
        }
        Expect::Fresh
    }

    fn apply_appeal(&mut self, claim_id: i64, evidence: &Evidence, body: &Value) {
        let claim = self.claims[&claim_id].clone();
        let denied: Vec<usize> = (0..claim.items.len())
            .filter(|&i| !claim.items[i].paid)
            .collect();
        // Duplicates against the member's other live claims and this claim's
        // paid items, whatever their position; balances of now.
        let mut paid_before = self.paid_fingerprints(claim.spec.member_id, Some(claim_id));
        for (index, item) in claim.items.iter().enumerate() {
            if item.paid {
                paid_before.insert(claim.spec.fingerprint(index));
            }
        }
        let mut balance = claim.product.map_or((0, 0), |p| {
            self.balance(claim.spec.member_id, p, claim.spec.kind)
        });
        let decided = self.decide(
            &claim.spec,
            claim.product,
            claim.version,
            &denied,
            evidence,
            paid_before,
            &mut balance,
            Some(claim_id),
        );
        let mut items = claim.items.clone();
        for item in items.iter_mut().filter(|i| i.paid) {
            item.carried_over = true;
        }
        let mut posted = (0, 0);
        for (index, item) in decided {
            posted = (posted.0 + item.deductible_applied, posted.1 + item.payable);
            if item.paid {
                self.note("paid on appeal");
            }
            items[index] = item;
        }
        if let Some(p) = claim.product {
            let entry = self
                .balances
                .entry((claim.spec.member_id, p, claim.spec.kind))
                .or_default();
            *entry = (entry.0 + posted.0, entry.1 + posted.1);
        }
        let model = self.claims.get_mut(&claim_id).expect("claim");
        model.items = items;
        model.posted = (model.posted.0 + posted.0, model.posted.1 + posted.1);
        let decisions = model.decisions.len() + 1;
        self.check_claim_body(claim_id, body, decisions);
        self.touched.insert(claim.spec.member_id);
        self.note("appeal decided");
        self.note_dispensing(claim_id, Some(&claim.items));
    }

    // -- retries and reused keys -------------------------------------------

    fn retry(&mut self) {
        let done = self.done.choose(&mut self.rng).expect("done").clone();
        self.note("retry");
        self.send(done.actor, done.key, done.request, true);
    }

    fn reuse_key(&mut self) {
        let done = self.done.choose(&mut self.rng).expect("done").clone();
        self.note("key reused");
        // The same key with other content: a change of one field, or
        // another operation altogether.
        let request = match (&done.request, self.rng.random_bool(0.25)) {
            (Request::Enrol(spec), false) => {
                let mut spec = spec.clone();
                spec.phone_tail = (spec.phone_tail + 1) % 10_000;
                Request::Enrol(spec)
            }
            (Request::Enrol(_), true) => Request::Reverse {
                claim_id: 1,
                reason: "wrong key".to_owned(),
            },
            (Request::Claim(spec), false) => {
                let mut spec = spec.clone();
                match &mut spec.items[0] {
                    ItemSpec::Inpatient { total, .. } => *total += 1,
                    ItemSpec::Drug { unit_price, .. } => *unit_price += 1,
                }
                Request::Claim(spec)
            }
            (Request::Claim(_), true) => Request::Appeal {
                claim_id: done.body["id"].as_i64().expect("id"),
                evidence: vec![],
            },
            (Request::Reverse { claim_id, reason }, _) => Request::Reverse {
                claim_id: *claim_id,
                reason: format!("{reason} (again)"),
            },
            (Request::Appeal { claim_id, evidence }, _) => {
                let mut evidence = evidence.clone();
                evidence.push((99, vec![("EGFR".to_owned(), true)]));
                Request::Appeal {
                    claim_id: *claim_id,
                    evidence,
                }
            }
            (Request::Authorize(spec), _) => {
                let mut spec = spec.clone();
                spec.cycles += 1;
                Request::Authorize(spec)
            }
            (
                Request::Followup {
                    course,
                    assessed_on,
                    response,
                },
                _,
            ) => Request::Followup {
                course: *course,
                assessed_on: *assessed_on,
                response: if *response == "stable_disease" {
                    "partial_response"
                } else {
                    "stable_disease"
                },
            },
            (Request::Cancel { course, reason }, _) => Request::Cancel {
                course: *course,
                reason: format!("{reason} (again)"),
            },
        };
        self.send(done.actor, done.key, request, false);
    }

    /// Sends a request and checks the engine's answer against the model.
    /// `retry` marks a request already sent under this key: the stored
    /// response must come back.
    fn send(&mut self, actor: String, key: String, request: Request, retry: bool) {
        let stored = self
            .done
            .iter()
            .find(|d| d.actor == actor && d.key == key)
            .cloned();
        // A course request's start is checked against today only when its
        // key is new: a retry after the start has passed replays.
        let expect = match (&stored, retry) {
            (Some(done), true) => Expect::Replay(done.body.clone()),
            (Some(_), false) => Expect::KeyReused,
            (None, true) => unreachable!("retries are of requests that took effect"),
            (None, false) => match &request {
                Request::Enrol(spec) => self.predict_enrol(spec),
                Request::Claim(spec) => self.predict_claim(spec),
                Request::Reverse { claim_id, reason } => self.predict_reverse(*claim_id, reason),
                Request::Appeal { claim_id, evidence } => self.predict_appeal(*claim_id, evidence),
                Request::Authorize(spec) => self.predict_authorize(spec),
                Request::Followup {
                    course,
                    assessed_on,
                    ..
                } => self.predict_followup(*course, *assessed_on),
                Request::Cancel { course, reason } => self.predict_cancel(*course, reason),
            },
        };
        // Content is compared in canonical form: a retry may be written
        // differently.
        let style = if retry {
            self.rng.random_range(0..3)
        } else {
            0
        };
        let summary = match &request {
            Request::Enrol(s) => format!(
                "enrol person {} in {} declaring {:?}",
                s.serial, s.product, s.declared
            ),
            Request::Claim(s) => format!(
                "claim {} for member {} on {} at {} for {}: {:?}",
                s.kind.as_str(),
                s.member_id,
                s.service_date,
                s.provider,
                s.diagnosis,
                s.items
            ),
            Request::Reverse { claim_id, reason } => {
                format!("reverse claim {claim_id} ({reason:?})")
            }
            Request::Appeal { claim_id, evidence } => {
                format!("appeal claim {claim_id} with {evidence:?}")
            }
            Request::Authorize(s) => format!("request a course: {s:?}"),
            Request::Followup {
                course,
                assessed_on,
                response,
            } => format!("follow-up of course {course} on {assessed_on}: {response}"),
            Request::Cancel { course, reason } => format!("cancel course {course} ({reason:?})"),
        };
        self.log(format!(
            "[{} {actor} {key}{}] {summary}; expect {}",
            self.today,
            if retry { " retry" } else { "" },
            match &expect {
                Expect::Replay(_) => "replay".to_owned(),
                other => format!("{other:?}"),
            }
        ));
        let ctx = WriteContext {
            keys: self.keys,
            actor: &actor,
            now: self.now(),
        };
        let result: Result<Recorded<Value>, StoreError> = match &request {
            Request::Enrol(spec) => as_json(enrollment::enroll(
                self.conn,
                &ctx,
                &key,
                &spec.request(style != 0),
            )),
            Request::Claim(spec) => as_json(claims::submit(
                self.conn,
                &ctx,
                &key,
                &spec.submission(style),
            )),
            Request::Reverse { claim_id, reason } => as_json(claims::reverse(
                self.conn,
                &ctx,
                &key,
                *claim_id,
                &ReversalRequest {
                    reason: if style != 0 {
                        format!("  {reason} ")
                    } else {
                        reason.clone()
                    },
                },
            )),
            Request::Appeal { claim_id, evidence } => as_json(claims::appeal(
                self.conn,
                &ctx,
                &key,
                *claim_id,
                &evidence_json(evidence),
            )),
            Request::Authorize(spec) => as_json(authorizations::request(
                self.conn,
                &ctx,
                &key,
                &spec.submission(style != 0),
            )),
            Request::Followup {
                course,
                assessed_on,
                response,
            } => as_json(authorizations::record_followup(
                self.conn,
                &ctx,
                &key,
                *course,
                &courses::assessment(*assessed_on, response),
            )),
            Request::Cancel { course, reason } => as_json(authorizations::cancel(
                self.conn,
                &ctx,
                &key,
                *course,
                &courses::cancel_submission(reason, style != 0),
            )),
        };
        let was_stored = stored.is_some();
        let refused = |sim: &mut Sim<'_>| {
            if was_stored {
                return;
            }
            sim.unused_keys
                .entry(actor.clone())
                .or_default()
                .push(key.clone());
        };
        match (expect, result) {
            (Expect::Replay(body), Ok(recorded)) => {
                assert!(recorded.replayed, "a retry is replayed");
                assert_eq!(recorded.body, body, "a retry gets the stored response");
                self.note("replayed");
            }
            (Expect::Fresh, Ok(recorded)) => {
                assert!(!recorded.replayed, "a new key is not replayed");
                match &request {
                    Request::Enrol(spec) => self.apply_enrol(spec, &recorded.body),
                    Request::Claim(spec) => self.apply_claim(spec, &recorded.body),
                    Request::Reverse { claim_id, .. } => {
                        self.apply_reverse(*claim_id, &recorded.body)
                    }
                    Request::Appeal { claim_id, evidence } => {
                        self.apply_appeal(*claim_id, evidence, &recorded.body)
                    }
                    Request::Authorize(spec) => self.apply_authorize(spec, &recorded.body),
                    Request::Followup {
                        course,
                        assessed_on,
                        response,
                    } => self.apply_followup(*course, *assessed_on, response, &recorded.body),
                    Request::Cancel { course, .. } => self.apply_cancel(*course, &recorded.body),
                }
                self.done.push(Done {
                    actor: actor.clone(),
                    key: key.clone(),
                    request,
                    body: recorded.body,
                });
            }
            (Expect::KeyReused, Err(StoreError::IdempotencyKeyReused)) => {}
            (Expect::Conflict(code), Err(StoreError::Conflict { code: got, .. })) => {
                assert_eq!(got, code, "conflict code");
                self.note(code);
                refused(self);
            }
            (Expect::Invalid(code), Err(StoreError::Validation(errors))) => {
                assert!(
                    errors.has_code(code),
                    "expected field error {code}, got {errors:?}"
                );
                self.note(code);
                refused(self);
            }
            (Expect::NotFound, Err(StoreError::NotFound { .. })) => {
                self.note("not found");
                refused(self);
            }
            (Expect::Replay(_), other) => panic!("expected a replay, got {other:?}"),
            (expect, other) => panic!("expected {expect:?}, got {other:?}"),
        }
    }

    // -- balances -----------------------------------------------------------

    fn check_cover(&mut self, member_id: i64) {
        let cover =
            authorizations::coverage_on(self.conn, member_id, self.today).expect("coverage");
        let member = &self.members[&member_id];
        let mut reserves = (false, false);
        assert_eq!(
            cover.products.len(),
            member.enrollments.len(),
            "member {member_id}: enrollments"
        );
        for product in &cover.products {
            let id = self
                .products
                .keys()
                .find(|p| **p == product.product_id)
                .copied()
                .expect("known product");
            let def = self.product_def(id);
            let enrolled = &member.enrollments[id];
            assert_eq!(
                (
                    product.enrollment.coverage_start,
                    product.enrollment.first_covered_day,
                    product.enrollment.waiting_waived,
                ),
                (
                    enrolled.coverage_start,
                    enrolled.first_covered_day,
                    enrolled.waiting_waived,
                ),
                "member {member_id} {id}: coverage start, first covered day, waiver"
            );
            let (reserved, capped) = self.check_cover_courses(member_id, id, product);
            reserves.0 |= reserved;
            reserves.1 |= capped;
            for benefit in &product.benefits {
                let kind = match benefit.benefit.as_str() {
                    "inpatient" => Kind::Inpatient,
                    _ => Kind::Drug,
                };
                let terms = def.terms(kind);
                let (deductible_met, paid) = self.balance(member_id, id, kind);
                assert_eq!(
                    (
                        benefit.deductible_met.0,
                        benefit.limit_used.0,
                        benefit.deductible_left.0,
                        benefit.limit_left.0,
                    ),
                    (
                        deductible_met,
                        paid,
                        terms.deductible - deductible_met,
                        terms.limit - paid,
                    ),
                    "member {member_id} {id} {}: deductible met, limit used, deductible left, limit left",
                    kind.as_str()
                );
            }
        }
        if reserves.0 {
            self.note("case reserve");
        }
        if reserves.1 {
            self.note("case reserve capped");
        }
        self.check_member_courses(member_id);
    }

    /// Every balance of every member, in the model and in the ledger (read
    /// directly): each is the sum of its entries, and within the terms.
    fn check_ledger(&mut self) {
        #[derive(QueryableByName)]
        struct Entry {
            #[diesel(sql_type = BigInt)]
            member_id: i64,
            #[diesel(sql_type = Text)]
            product_id: String,
            #[diesel(sql_type = Text)]
            benefit: String,
            #[diesel(sql_type = BigInt)]
            deductible_fen: i64,
            #[diesel(sql_type = BigInt)]
            paid_fen: i64,
        }
        let entries: Vec<Entry> = diesel::sql_query(
            "SELECT member_id, product_id, benefit, deductible_fen, paid_fen FROM ledger_entries",
        )
        .load(self.conn)
        .expect("ledger");
        let mut sums: HashMap<(i64, String, String), (i64, i64)> = HashMap::new();
        for e in &entries {
            let sum = sums
                .entry((e.member_id, e.product_id.clone(), e.benefit.clone()))
                .or_default();
            *sum = (sum.0 + e.deductible_fen, sum.1 + e.paid_fen);
        }
        for ((member, product, kind), balance) in &self.balances {
            let sum = sums
                .get(&(*member, product.to_string(), kind.as_str().to_owned()))
                .copied()
                .unwrap_or((0, 0));
            assert_eq!(
                sum,
                *balance,
                "member {member} {product} {}: ledger sum",
                kind.as_str()
            );
            let terms = self.product_def(product).terms(*kind);
            assert!(
                (0..=terms.deductible).contains(&balance.0)
                    && (0..=terms.limit).contains(&balance.1),
                "member {member} {product} {}: {balance:?} outside the terms",
                kind.as_str()
            );
        }
        for (key, sum) in &sums {
            let known = self
                .balances
                .iter()
                .any(|((m, p, k), _)| (*m, p.to_string(), k.as_str().to_owned()) == *key);
            assert!(
                known || *sum == (0, 0),
                "ledger entries the model does not know: {key:?}"
            );
        }
    }

    fn final_checks(&mut self) {
        self.step.set(self.step.get() + 1);
        self.log("final checks".to_owned());
        // The audit chain verifies up to its head.
        let head = audit::head(self.conn).expect("head").expect("events");
        let report = audit::verify(self.conn, &self.keys.audit, Some(&head)).expect("verify");
        assert!(report.valid, "audit chain: {report:?}");
        assert_eq!(report.events_checked, head.seq as u64);

        self.check_ledger();
        for member in self.members.keys().copied().collect::<Vec<_>>() {
            self.check_cover(member);
        }
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut count = |table: &str| {
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                .get_result::<Count>(self.conn)
                .expect("count")
                .n as usize
        };
        let decisions: usize = self.claims.values().map(|c| c.decisions.len()).sum();
        let reversed = self.claims.values().filter(|c| c.reversed).count();
        assert_eq!(count("claims"), self.claims.len(), "claims stored");
        assert_eq!(count("decisions"), decisions, "decisions stored");
        assert_eq!(count("reversals"), reversed, "reversals stored");
        assert_eq!(count("members"), self.members.len(), "members stored");
        let assessments: usize = self.courses.values().map(|c| c.assessments.len()).sum();
        let cancels = self
            .courses
            .values()
            .filter(|c| c.cancelled_on.is_some())
            .count();
        assert_eq!(
            count("authorizations"),
            self.courses.len(),
            "authorisations stored"
        );
        assert_eq!(
            count("authorization_followups"),
            assessments,
            "follow-ups stored"
        );
        assert_eq!(count("authorization_cancels"), cancels, "cancels stored");

        // The run reached the situations it is meant to: a seed that never
        // pays past a limit or never reverses tests little.
        let half = self.seen_half.get();
        let preexisting = self.seen_preexisting.get();
        self.seen.insert("share on half a fen", half);
        self.seen.insert("pre-existing rate", preexisting);
        for what in [
            "share on half a fen",
            "pre-existing rate",
            "new member",
            "renewal",
            "already_enrolled",
            "claim paid",
            "claim denied",
            "duplicate",
            "deductible",
            "limit_reached",
            "not_covered_period",
            "waiting_period",
            "biomarker_required",
            "reversed",
            "appeal decided",
            "replayed",
            "key reused",
        ]
        .into_iter()
        .chain(courses::SITUATIONS.iter().copied())
        {
            let seen = self.seen.get(what).copied().unwrap_or(0) > 0;
            if self.require_coverage {
                assert!(seen, "the run never saw {what}: {:?}", self.seen);
            } else if !seen {
                eprintln!("notice: this seed never saw {what}");
            }
        }
    }
}

fn amounts_of(totals: &Value) -> [i64; 7] {
    [
        fen_of(&totals["submitted"]),
        fen_of(&totals["basic_paid"]),
        fen_of(&totals["eligible"]),
        fen_of(&totals["deductible_applied"]),
        fen_of(&totals["payable"]),
        fen_of(&totals["member_responsibility"]),
        fen_of(&totals["out_of_pocket"]),
    ]
}
