//! The PostgreSQL single-statement snapshot read against the portable one:
//! on the same database, in the same transaction, they must return equal
//! snapshots. On SQLite the portable read is the one that runs.

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;

use super::{BatchClaim, Snapshot, Wanted, read_snapshot, sqlite};
use crate::db::{Database, DbConn, write_transaction};
use crate::domain::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission,
};
use crate::domain::claim::{ClaimSubmission, ValidClaim, validate_claim};
use crate::domain::enrollment::EnrollmentRequest;
use crate::domain::product::Product;
use crate::error::StoreError;
use crate::store::claims::{self, ReversalRequest};
use crate::store::{Keys, WriteContext, authorizations, china_date, enrollment, products};

fn product_toml(id: &str, renews: Option<&str>) -> String {
    let today = china_date(Utc::now());
    let start = today - Duration::days(30);
    let end = today + Duration::days(334);
    let close = today + Duration::days(30);
    let renews = renews
        .map(|r| format!("renews = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"id = "{id}"
name = "Parity plan"
premium = "99.00"
period_start = {start}
period_end = {end}
enrollment_open = {start}
enrollment_close = {close}
waiting_days = 0
{renews}
[inpatient]
deductible = "1000.00"
coinsurance = "0.80"
coinsurance_preexisting = "0.50"
annual_limit = "50000.00"

[specialty_drug]
deductible = "0"
coinsurance = "0.70"
coinsurance_preexisting = "0.30"
annual_limit = "100000.00"

[[specialty_drug.formulary]]
atc = "L01EB04"
name = "osimertinib"
indications = ["C34"]
required_biomarker = "EGFR"
designated_providers = ["PH-001"]

[[specialty_drug.formulary]]
atc = "L01EB05"
name = "another EGFR inhibitor"
indications = ["C34"]
required_biomarker = "EGFR"
designated_providers = ["PH-001"]
"#
    )
}

fn resident_id(serial: u32) -> String {
    let body = format!("35020319800101{:03}", serial % 1000);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).expect("digit") * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

fn inpatient(member_id: i64, total: &str) -> ClaimSubmission {
    serde_json::from_value(serde_json::json!({
        "member_id": member_id,
        "kind": "inpatient",
        "service_date": china_date(Utc::now()).to_string(),
        "provider_id": "H-001",
        "diagnosis": "K35.8",
        "items": [
            { "total": total, "basic_paid": "1000.00", "out_of_catalogue": "0" },
            { "total": "800.00", "basic_paid": "0", "out_of_catalogue": "0" },
        ],
    }))
    .expect("claim json")
}

fn dispensing(member_id: i64, authorization_id: i64, drug: &str, quantity: u32) -> ClaimSubmission {
    serde_json::from_value(serde_json::json!({
        "member_id": member_id,
        "kind": "specialty_drug",
        "service_date": china_date(Utc::now()).to_string(),
        "provider_id": "PH-001",
        "diagnosis": "C34.1",
        "authorization_id": authorization_id,
        "items": [{ "drug": drug, "quantity": quantity, "unit_price": "510.00",
                    "basic_paid": "0", "biomarkers": [] }],
    }))
    .expect("claim json")
}

fn course_request(member_id: i64) -> AuthorizationSubmission {
    serde_json::from_value(serde_json::json!({
        "member_id": member_id, "drug": "L01EB04", "diagnosis": "C34",
        "biomarkers": [{ "marker": "EGFR", "positive": true }], "prescriber": "H-001",
        "cycle_days": 30, "quantity_per_cycle": 30, "unit_price": "510.00", "cycles": 3,
        "start_date": china_date(Utc::now()).to_string(),
    }))
    .expect("authorisation json")
}

/// Two courses of the first member: one dispensed and followed up, one
/// dispensed, reversed and cancelled.
fn populate_courses(conn: &mut DbConn, keys: &Keys, member: i64) -> Result<Vec<i64>, StoreError> {
    let ctx = |actor| WriteContext {
        keys,
        actor,
        now: Utc::now(),
    };
    let insurer = ctx("insurer:1");
    let pharmacy = ctx("provider:PH-001");
    let first = authorizations::request(conn, &insurer, "a1", &course_request(member))?;
    let first = first.body.id;
    claims::submit(
        conn,
        &pharmacy,
        "d1",
        &dispensing(member, first, "L01EB04", 30),
    )?;
    let followup = AssessmentSubmission {
        assessed_on: china_date(Utc::now()).to_string(),
        response: "stable_disease".into(),
    };
    authorizations::record_followup(conn, &insurer, "f1", first, &followup)?;
    let mut other = course_request(member);
    other.drug = "L01EB05".into();
    let second = authorizations::request(conn, &insurer, "a2", &other)?
        .body
        .id;
    let reversed = claims::submit(
        conn,
        &pharmacy,
        "d2",
        &dispensing(member, second, "L01EB05", 10),
    )?;
    let reason = ReversalRequest {
        reason: "dispensed in error".to_owned(),
    };
    claims::reverse(conn, &insurer, "r2", reversed.body.id, &reason)?;
    let cancel = CancelSubmission {
        reason: "treatment changed".into(),
    };
    authorizations::cancel(conn, &insurer, "x2", second, &cancel)?;
    Ok(vec![first, second])
}

/// Two products (one renewing the other), three members, paid, duplicate
/// and reversed claims, and courses: every part of a snapshot has rows to
/// return.
fn populate(conn: &mut DbConn, keys: &Keys) -> Result<Vec<i64>, StoreError> {
    let ctx = |actor| WriteContext {
        keys,
        actor,
        now: Utc::now(),
    };
    for (id, renews) in [("parity-a", None), ("parity-b", Some("parity-a"))] {
        let product = Product::from_toml_str(&product_toml(id, renews)).expect("product");
        products::load(conn, &ctx("cli"), &product)?;
    }
    let mut members = Vec::new();
    for (serial, product_ids) in [(1, &["parity-a", "parity-b"][..]), (2, &["parity-b"])] {
        for product_id in product_ids {
            let request = EnrollmentRequest {
                product_id: (*product_id).to_owned(),
                resident_id: resident_id(serial),
                name: "测试".to_owned(),
                phone: "13800000000".to_owned(),
                insurance_type: "urban_employee".to_owned(),
                declared_conditions: vec!["K35.8".to_owned()],
            };
            let key = format!("enrol-{serial}-{product_id}");
            let enrolled = enrollment::enroll(conn, &ctx("insurer:1"), &key, &request)?;
            if !members.contains(&enrolled.body.member.id) {
                members.push(enrolled.body.member.id);
            }
        }
    }
    let provider = ctx("provider:H-001");
    let first = claims::submit(conn, &provider, "c1", &inpatient(members[0], "6000.00"))?;
    claims::submit(conn, &provider, "c2", &inpatient(members[1], "3000.00"))?;
    let reversed = claims::submit(conn, &provider, "c3", &inpatient(members[1], "4000.00"))?;
    let reason = ReversalRequest {
        reason: "billed in error".to_owned(),
    };
    claims::reverse(conn, &ctx("insurer:1"), "r1", reversed.body.id, &reason)?;
    assert!(!first.replayed);
    let courses = populate_courses(conn, keys, members[0])?;
    members.extend(courses);
    Ok(members)
}

/// The claims a batch might bring: retries of used keys, a reused key,
/// repeats of paid, unpaid and reversed bills, and an unknown member.
fn batch_claims(ids: &[i64]) -> Vec<(&'static str, &'static str, ValidClaim)> {
    let today = china_date(Utc::now());
    let valid = |member, total| validate_claim(&inpatient(member, total), today).expect("valid");
    let (members, courses) = ids.split_at(2);
    let dispense = |course, quantity| {
        validate_claim(&dispensing(members[0], course, "L01EB04", quantity), today)
    };
    vec![
        (
            "provider:PH-001",
            "n4",
            dispense(courses[0], 20).expect("valid"),
        ),
        (
            "provider:PH-001",
            "n5",
            dispense(courses[1], 20).expect("valid"),
        ),
        (
            "provider:PH-001",
            "n6",
            dispense(999_999, 20).expect("valid"),
        ),
        ("provider:H-001", "c1", valid(members[0], "6000.00")),
        ("provider:H-001", "c2", valid(members[0], "3000.00")),
        ("provider:H-001", "n1", valid(members[1], "3000.00")),
        ("provider:H-001", "n2", valid(members[1], "4000.00")),
        ("provider:PH-001", "c1", valid(members[1], "5000.00")),
        ("provider:H-001", "n3", valid(999_999, "5000.00")),
    ]
}

fn snapshots_of(conn: &mut DbConn, keys: &Keys, members: &[i64]) -> (Snapshot, Snapshot) {
    let requests = batch_claims(members);
    let now = Utc::now();
    let batch: Vec<BatchClaim<'_>> = requests
        .iter()
        .map(|(actor, key, claim)| BatchClaim {
            ctx: WriteContext { keys, actor, now },
            idempotency_key: key,
            claim,
        })
        .collect();
    let wanted = Wanted::of(&batch);
    write_transaction(conn, |conn| {
        let portable = sqlite::read_snapshot(conn, &wanted)?;
        let chosen = read_snapshot(conn, &wanted)?.0;
        Ok::<_, StoreError>((portable, chosen))
    })
    .expect("both reads")
}

fn assert_parts_present(snapshot: &Snapshot, ids: &[i64]) {
    let (members, courses) = ids.split_at(2);
    assert_eq!(snapshot.courses.len(), 2, "the unknown course is absent");
    let first = &snapshot.courses[&courses[0]];
    assert_eq!(first.dispensed.len(), 1, "its first cycle is dispensed");
    assert_eq!(first.assessments.len(), 1);
    let second = &snapshot.courses[&courses[1]];
    assert!(second.dispensed.is_empty(), "a reversal frees the cycle");
    assert!(second.cancelled_on.is_some());
    assert_eq!(
        snapshot.keys.len(),
        2,
        "c1 and c2 of provider:H-001 are used"
    );
    assert_eq!(
        snapshot.enrollments.len(),
        2,
        "members 1 and 2 are enrolled"
    );
    assert_eq!(snapshot.products.len(), 2);
    assert_eq!(
        snapshot.members.len(),
        members.len(),
        "the unknown member is absent"
    );
    assert!(!snapshot.balances.is_empty());
    assert!(!snapshot.paid.is_empty(), "a paid bill comes back as paid");
    assert!(snapshot.audit_head.is_some());
}

#[test]
fn on_sqlite_the_portable_read_is_the_one_that_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("parity.db").display());
    let db = Database::open(&url, 2).expect("open sqlite");
    let mut conn = db.get().expect("connection");
    let keys = Keys::derive(b"parity test master key, 32 bytes or more");
    let members = populate(&mut conn, &keys).expect("populate");
    let (portable, chosen) = snapshots_of(&mut conn, &keys, &members);
    assert_parts_present(&portable, &members);
    assert_eq!(portable, chosen);
}

#[test]
fn the_postgres_single_statement_read_equals_the_portable_read() {
    let Some(url) = std::env::var("PUHUI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "notice: PUHUI_TEST_POSTGRES_URL is not set; the PostgreSQL parity test is skipped"
        );
        return;
    };
    let schema = format!(
        "parity_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let mut admin = crate::db::DatabaseTarget::parse(&url)
        .and_then(|t| t.connect())
        .expect("connect to PostgreSQL");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let outcome = std::panic::catch_unwind(|| {
        let db = Database::open(&scoped, 2).expect("open postgres");
        let mut conn = db.get().expect("connection");
        let keys = Keys::derive(b"parity test master key, 32 bytes or more");
        let members = populate(&mut conn, &keys).expect("populate");
        let (portable, single_statement) = snapshots_of(&mut conn, &keys, &members);
        assert_parts_present(&portable, &members);
        assert_eq!(portable, single_statement);
        assert!(
            matches!(*conn, DbConn::Postgres(_)),
            "the chosen read was PostgreSQL's"
        );
    });
    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
