//! Test support: a fresh database per test on every backend, products with
//! dates around today, and valid resident ID numbers.

#![allow(dead_code)]

use chrono::{Duration, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use engine::Database;
use engine::domain::product::Product;
use engine::store::{Keys, WriteContext, china_date};

/// One fresh database. PostgreSQL tests get a schema of their own, dropped
/// at the end.
pub struct TestDb {
    pub db: Database,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((url, schema)) = self.pg_cleanup.take() {
            use diesel::Connection;
            if let Ok(mut conn) = diesel::PgConnection::establish(&url) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    let db = Database::open(&format!("sqlite://{}", path.display()), 8).expect("open sqlite");
    TestDb {
        db,
        backend: "sqlite",
        _dir: Some(dir),
        pg_cleanup: None,
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), nanos, n)
}

pub fn postgres(url: &str) -> TestDb {
    use diesel::Connection;
    let schema = format!("t_{}", unique_suffix());
    let mut admin = diesel::PgConnection::establish(url).expect("connect to PostgreSQL");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let db = Database::open(&scoped, 8).expect("open postgres");
    TestDb {
        db,
        backend: "postgres",
        _dir: None,
        pg_cleanup: Some((url.to_owned(), schema)),
    }
}

/// SQLite always; PostgreSQL when `PUHUI_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<TestDb> {
    let mut all = vec![sqlite()];
    match std::env::var("PUHUI_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => all.push(postgres(&url)),
        _ => eprintln!(
            "notice: PUHUI_TEST_POSTGRES_URL is not set; the PostgreSQL pass of this test is skipped"
        ),
    }
    all
}

pub fn keys() -> Keys {
    Keys::derive(b"test master key, 32 bytes or more......")
}

pub fn ctx<'a>(keys: &'a Keys, actor: &'a str) -> WriteContext<'a> {
    WriteContext {
        keys,
        actor,
        now: Utc::now(),
    }
}

pub fn today() -> NaiveDate {
    china_date(Utc::now())
}

/// A product year around today, open for enrollment now, with no waiting
/// period unless asked. Inpatient: deductible 1,000, 80 % / 50 %, limit
/// `inpatient_limit`. Drugs: deductible 0, 70 % / 30 %, limit 100,000.
pub fn product_toml(
    id: &str,
    inpatient_limit: &str,
    waiting_days: u32,
    renews: Option<&str>,
) -> String {
    let t = today();
    let start = t - Duration::days(30);
    let end = t + Duration::days(334);
    let close = t + Duration::days(30);
    let renews = renews
        .map(|r| format!("renews = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"id = "{id}"
name = "Test city plan"
premium = "99.00"
period_start = {start}
period_end = {end}
enrollment_open = {start}
enrollment_close = {close}
waiting_days = {waiting_days}
{renews}
[[preexisting_groups]]
name = "malignant tumours"
codes = ["C00-C97"]

[inpatient]
deductible = "1000.00"
coinsurance = "0.80"
coinsurance_preexisting = "0.50"
annual_limit = "{inpatient_limit}"

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
"#
    )
}

pub fn product(toml: &str) -> Product {
    Product::from_toml_str(toml).expect("test product is valid")
}

/// A valid 18-character resident ID (GB 11643) for a serial number.
pub fn resident_id(serial: u32) -> String {
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

pub fn enrollment_request(
    product_id: &str,
    serial: u32,
    declared: &[&str],
) -> engine::domain::enrollment::EnrollmentRequest {
    engine::domain::enrollment::EnrollmentRequest {
        product_id: product_id.to_owned(),
        resident_id: resident_id(serial),
        name: "测试".to_owned(),
        phone: "13800000000".to_owned(),
        insurance_type: "urban_employee".to_owned(),
        declared_conditions: declared.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn inpatient_claim(
    member_id: i64,
    total: &str,
    basic_paid: &str,
    diagnosis: &str,
) -> engine::domain::claim::ClaimSubmission {
    serde_json::from_value(serde_json::json!({
        "member_id": member_id,
        "kind": "inpatient",
        "service_date": today().to_string(),
        "provider_id": "H-001",
        "diagnosis": diagnosis,
        "items": [{ "total": total, "basic_paid": basic_paid, "out_of_catalogue": "0" }],
    }))
    .expect("claim json")
}

pub fn drug_claim(
    member_id: i64,
    quantity: u32,
    unit_price: &str,
    egfr_positive: bool,
) -> engine::domain::claim::ClaimSubmission {
    serde_json::from_value(serde_json::json!({
        "member_id": member_id,
        "kind": "specialty_drug",
        "service_date": today().to_string(),
        "provider_id": "PH-001",
        "diagnosis": "C34.1",
        "items": [{
            "drug": "L01EB04", "quantity": quantity, "unit_price": unit_price, "basic_paid": "0",
            "biomarkers": [{ "marker": "EGFR", "positive": egfr_positive }],
        }],
    }))
    .expect("claim json")
}

/// A write's response body as JSON, as the HTTP edge sends it.
pub trait JsonBody {
    fn json(&self) -> serde_json::Value;
}

impl<T: serde::Serialize> JsonBody for engine::store::Recorded<T> {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.body).expect("a response serialises")
    }
}

/// A write's result with its body as JSON, so that results of different
/// writes compare alike.
pub fn as_json<T: serde::Serialize>(
    result: Result<engine::store::Recorded<T>, engine::StoreError>,
) -> Result<engine::store::Recorded<serde_json::Value>, engine::StoreError> {
    result.map(|r| engine::store::Recorded {
        body: r.json(),
        replayed: r.replayed,
    })
}
