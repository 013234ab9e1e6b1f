//! Shared by the load benchmark (`api/benches/load.rs`) and the crash test
//! (`tests/crash/main.rs`): a fresh database per run, the real `puhui`
//! server started and stopped as a child process, a plain HTTP client, and
//! generated members and claims. Loopback only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{Duration as Days, FixedOffset, NaiveDate, Utc};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

pub type Res<T> = Result<T, String>;

/// The local PostgreSQL used when none is named.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn parse(name: &str) -> Res<Backend> {
        match name {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(format!("unknown backend {other:?} (sqlite or postgres)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh database: a SQLite file in a temporary directory, or a new
/// PostgreSQL schema (dropped again when this is dropped).
pub struct FreshDb {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pg_cleanup: Option<(String, String)>,
}

impl FreshDb {
    pub fn new(backend: Backend, postgres_url: &str, label: &str) -> Res<FreshDb> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("puhui-{label}-"))
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        match backend {
            Backend::Sqlite => Ok(FreshDb {
                url: format!("sqlite://{}", dir.path().join("claims.db").display()),
                backend,
                dir,
                pg_cleanup: None,
            }),
            Backend::Postgres => {
                let schema = format!(
                    "{label}_{}_{}",
                    std::process::id(),
                    Utc::now().timestamp_micros()
                );
                let mut conn = diesel::PgConnection::establish(postgres_url)
                    .map_err(|e| format!("connect to {postgres_url}: {e}"))?;
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .map_err(|e| format!("create schema: {e}"))?;
                let separator = if postgres_url.contains('?') { '&' } else { '?' };
                Ok(FreshDb {
                    url: format!("{postgres_url}{separator}options=-csearch_path%3D{schema}"),
                    backend,
                    dir,
                    pg_cleanup: Some((postgres_url.to_owned(), schema)),
                })
            }
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Some((url, schema)) = self.pg_cleanup.take()
            && let Ok(mut conn) = diesel::PgConnection::establish(&url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            // PostgreSQL removes a dropped table's files at its next
            // checkpoint. Left to itself, that checkpoint falls in a later
            // run and frees gigabytes mid-measurement; here it happens now.
            // (Needs a superuser or pg_checkpoint; without, it is skipped.)
            let _ = conn.batch_execute("CHECKPOINT");
        }
    }
}

/// Writes out the dirty pages a previous run (or its deleted files) left
/// in the operating system's cache, so that their writeback does not fall
/// inside this run's measurement.
pub fn settle_disk() {
    let _ = Command::new("sync").status();
}

pub fn today() -> NaiveDate {
    let china = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("valid offset"));
    Utc::now().with_timezone(&china).date_naive()
}

/// A product year around today, open for enrollment, no waiting period.
pub fn product_toml(id: &str, inpatient_limit: &str, drug_limit: &str) -> String {
    let t = today();
    let start = t - Days::days(30);
    let end = t + Days::days(334);
    let close = t + Days::days(30);
    format!(
        r#"id = "{id}"
name = "Load test city plan"
premium = "99.00"
period_start = {start}
period_end = {end}
enrollment_open = {start}
enrollment_close = {close}
waiting_days = 0

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
annual_limit = "{drug_limit}"

[[specialty_drug.formulary]]
atc = "L01EB04"
name = "osimertinib"
indications = ["C34"]
required_biomarker = "EGFR"
designated_providers = ["PH-001"]

[[specialty_drug.formulary]]
atc = "L01EB03"
name = "afatinib"
indications = ["C34"]
required_biomarker = "EGFR"
designated_providers = ["PH-001", "PH-002"]
requires_authorization = true
max_cycle_days = 30
max_course_cycles = 12
followup_every_cycles = 3
"#
    )
}

/// A valid resident ID number (GB 11643 check digit) for any serial below
/// 1,000,000: the birth date moves a day per thousand serials.
pub fn resident_id(serial: u32) -> String {
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_else(|| unreachable!("valid date"))
        + Days::days(i64::from(serial / 1000));
    let body = format!("110105{}{:03}", birth.format("%Y%m%d"), serial % 1000);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(weights)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

/// Runs a `puhui` command against a database.
pub fn puhui(bin: &Path, db: &FreshDb, args: &[&str]) -> Res<std::process::Output> {
    let output = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("PUHUI_KEY_FILE", db.key_file())
        .env("RUST_LOG", "warn")
        .env_remove("PUHUI_MASTER_KEY")
        .output()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    Ok(output)
}

/// Loads a product file into the database.
pub fn load_product(bin: &Path, db: &FreshDb, toml: &str) -> Res<()> {
    let path = db.dir.path().join("product.toml");
    std::fs::write(&path, toml).map_err(|e| format!("write product: {e}"))?;
    let path_text = path.to_str().ok_or("temporary path is not UTF-8")?;
    let out = puhui(bin, db, &["products", "load", path_text])?;
    if !out.status.success() {
        return Err(format!(
            "products load: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A running `puhui serve`.
pub struct Server {
    pub base: String,
    /// The first-start tokens (absent on a restart: only printed once).
    pub insurer: Option<String>,
    pub auditor: Option<String>,
    child: Child,
}

impl Server {
    /// Starts the server on a free loopback port and waits until it answers.
    /// On a first start (`first_start`) it also reads the two tokens the
    /// server prints once.
    pub fn start(bin: &Path, db: &FreshDb, extra: &[&str], first_start: bool) -> Res<Server> {
        let mut child = Command::new(bin)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-demo"])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .env("PUHUI_KEY_FILE", db.key_file())
            .env("RUST_LOG", "error")
            .env_remove("PUHUI_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        let mut insurer = None;
        let mut auditor = None;
        let done = |b: &Option<String>, i: &Option<String>, a: &Option<String>| {
            b.is_some() && (!first_start || (i.is_some() && a.is_some()))
        };
        while !done(&base, &insurer, &auditor) {
            let Some(line) = lines.next() else { break };
            let line = line.map_err(|e| format!("read server output: {e}"))?;
            if let Some(rest) = line.strip_prefix("Puhui listening on ") {
                base = rest.split_whitespace().next().map(str::to_owned);
            } else if let Some(t) =
                line.strip_prefix("insurer token (shown once, only its hash is stored): ")
            {
                insurer = Some(t.to_owned());
            } else if let Some(t) =
                line.strip_prefix("auditor token (shown once, only its hash is stored): ")
            {
                auditor = Some(t.to_owned());
            }
        }
        let base = base.ok_or("server exited before it listened")?;
        std::thread::spawn(move || for _ in lines {});
        let server = Server {
            base,
            insurer,
            auditor,
            child,
        };
        let client = Client::new(&server.base, Duration::from_secs(5));
        for _ in 0..200 {
            if let Ok((200, _)) = client.get("/readyz", None) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err("server did not become ready".into())
    }

    /// SIGKILL: no shutdown handler runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP client for one thread.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// A response: status, whether it was an idempotent replay, and the body.
pub struct Reply {
    pub status: u16,
    pub replayed: bool,
    pub body: Value,
}

impl Client {
    pub fn new(base: &str, timeout: Duration) -> Client {
        // Timeouts per phase, none on name resolution: with one set, ureq
        // resolves the address on a new thread for every request, which on
        // loopback costs more than the request itself.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .build()
            .into();
        Client {
            agent,
            base: base.to_owned(),
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Res<(u16, Value)> {
        let reply = read(self.send_get(path, token)?)?;
        Ok((reply.status, reply.body))
    }

    pub fn post(&self, path: &str, token: Option<&str>, key: &str, body: &Value) -> Res<Reply> {
        read(self.send_post(path, token, key, body)?)
    }

    /// A GET whose body is read and dropped: the load benchmark needs only
    /// the status, and parsing every answer would load the shared cores.
    pub fn get_status(&self, path: &str, token: Option<&str>) -> Res<u16> {
        drain(self.send_get(path, token)?).map(|(status, _)| status)
    }

    /// A POST answered with its status and whether it was a replay; the
    /// body is read and dropped.
    pub fn post_status(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: &Value,
    ) -> Res<(u16, bool)> {
        drain(self.send_post(path, token, key, body)?)
    }

    fn send_get(&self, path: &str, token: Option<&str>) -> Res<ureq::http::Response<ureq::Body>> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.call().map_err(|e| e.to_string())
    }

    fn send_post(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: &Value,
    ) -> Res<ureq::http::Response<ureq::Body>> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request
            .send(body.to_string().as_bytes())
            .map_err(|e| e.to_string())
    }
}

/// Status and replay flag of a response whose body is read to its end (so
/// the connection can be reused) and dropped.
fn drain(mut response: ureq::http::Response<ureq::Body>) -> Res<(u16, bool)> {
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    std::io::copy(&mut response.body_mut().as_reader(), &mut std::io::sink())
        .map_err(|e| e.to_string())?;
    Ok((status, replayed))
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Res<Reply> {
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        status,
        replayed,
        body,
    })
}

/// An enrolled member and their own token.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub token: String,
}

/// Enrols `count` members through the API with the insurer's token, on
/// `threads` threads.
pub fn enrol(
    base: &str,
    insurer: &str,
    product_id: &str,
    count: u32,
    threads: u32,
) -> Res<Vec<Member>> {
    let threads = threads.max(1);
    let results: Vec<Res<Vec<Member>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let client = Client::new(base, Duration::from_secs(30));
                    let mut out = Vec::new();
                    for serial in (t..count).step_by(threads as usize) {
                        let reply = client.post(
                            "/v1/enrollments",
                            Some(insurer),
                            &format!("enrol-{serial}"),
                            &json!({
                                "product_id": product_id,
                                "resident_id": resident_id(serial),
                                "name": "王小明",
                                "phone": "13912345678",
                                "insurance_type": "urban_rural_resident",
                                // Every fourth member declared a cancer: the
                                // pre-existing coinsurance applies to them.
                                "declared_conditions": if serial % 4 == 0 { vec!["C34.1"] } else { vec![] },
                            }),
                        )?;
                        let id = reply.body["member"]["id"].as_i64();
                        let token = reply.body["token"].as_str();
                        match (reply.status, id, token) {
                            (201, Some(id), Some(token)) => out.push(Member {
                                id,
                                token: token.to_owned(),
                            }),
                            _ => {
                                return Err(format!(
                                    "enrol {serial}: {} {}",
                                    reply.status, reply.body
                                ));
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("enrol thread panicked".into()))
            })
            .collect()
    });
    let mut members = Vec::new();
    for r in results {
        members.extend(r?);
    }
    members.sort_by_key(|m| m.id);
    Ok(members)
}

/// SplitMix64: a small, seedable generator for workload choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// Formats fen as a decimal yuan string.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A claim for today: a specialty drug (osimertinib at the designated
/// pharmacy, EGFR positive) or an inpatient stay. `spread` sets how many
/// different amounts are drawn from: a small spread makes the same item
/// (same fingerprint) come up again on another claim, a duplicate.
pub fn claim_body(rng: &mut Rng, member_id: i64, spread: u64) -> Value {
    let date = today().to_string();
    if rng.below(2) == 0 {
        let quantity = 1 + rng.below(3);
        let unit_price = 40_000 + rng.below(spread) * 7;
        json!({
            "member_id": member_id,
            "kind": "specialty_drug",
            "service_date": date,
            "provider_id": "PH-001",
            "diagnosis": "C34.1",
            "items": [{
                "drug": "L01EB04", "quantity": quantity, "unit_price": yuan(unit_price),
                "basic_paid": "0",
                "biomarkers": [{ "marker": "EGFR", "positive": true }],
            }],
        })
    } else {
        let total = 300_000 + rng.below(spread) * 13;
        json!({
            "member_id": member_id,
            "kind": "inpatient",
            "service_date": date,
            "provider_id": "H-001",
            "diagnosis": "K35.8",
            "items": [{ "total": yuan(total), "basic_paid": "1000.00", "out_of_catalogue": "0" }],
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds from microseconds, for printing.
pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
