//! Starting the server and talking to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_puhui");

pub use crate::loadkit::{resident_id, today};

/// A product year around today, open for enrollment now, no waiting period;
/// inpatient limit 50,000.00, drugs 100,000.00.
pub fn product_toml(id: &str) -> String {
    crate::loadkit::product_toml(id, "50000.00", "100000.00")
}

pub struct Database {
    pub url: String,
    pub name: &'static str,
    pg_cleanup: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((url, schema)) = self.pg_cleanup.take() {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            if let Ok(mut conn) = diesel::PgConnection::establish(&url) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Every backend to run on: SQLite always, PostgreSQL when configured.
pub fn databases(dir: &Path) -> Vec<Database> {
    let mut all = vec![Database {
        url: format!("sqlite://{}", dir.join("e2e.db").display()),
        name: "sqlite",
        pg_cleanup: None,
    }];
    match std::env::var("PUHUI_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!(
                "e2e_{}_{}",
                std::process::id(),
                Utc::now().timestamp_nanos_opt().unwrap_or(0)
            );
            {
                use diesel::Connection;
                use diesel::connection::SimpleConnection;
                let mut conn =
                    diesel::PgConnection::establish(&url).expect("connect to PostgreSQL");
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create schema");
            }
            let separator = if url.contains('?') { '&' } else { '?' };
            all.push(Database {
                url: format!("{url}{separator}options=-csearch_path%3D{schema}"),
                name: "postgres",
                pg_cleanup: Some((url, schema)),
            });
        }
        _ => {
            eprintln!("notice: PUHUI_TEST_POSTGRES_URL is not set; the PostgreSQL pass is skipped")
        }
    }
    all
}

/// A running server with its database and first-start tokens.
pub struct Server {
    pub base: String,
    pub insurer: String,
    pub auditor: String,
    pub backend: &'static str,
    pub database_url: String,
    pub key_file: PathBuf,
    child: Child,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `puhui` with the database and key of a test.
pub fn puhui(database_url: &str, key_file: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("PUHUI_KEY_FILE", key_file)
        .env_remove("PUHUI_MASTER_KEY")
        .output()
        .expect("run puhui")
}

impl Server {
    /// Loads the test product, then starts `puhui serve` on a free port.
    pub fn start(db: &Database, dir: &Path, extra: &[&str]) -> Server {
        let key_file = dir.join(format!("{}.key", db.name));
        let product = dir.join("product.toml");
        std::fs::write(&product, product_toml("e2e-city")).unwrap();
        let loaded = puhui(
            &db.url,
            &key_file,
            &["products", "load", product.to_str().unwrap()],
        );
        assert!(
            loaded.status.success(),
            "products load: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-demo"])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .env("PUHUI_KEY_FILE", &key_file)
            .env("RUST_LOG", "warn")
            .env_remove("PUHUI_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start puhui serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        let mut insurer = None;
        let mut auditor = None;
        while insurer.is_none() || auditor.is_none() || base.is_none() {
            let line = lines
                .next()
                .expect("server exited before it was ready")
                .unwrap();
            if let Some(rest) = line.strip_prefix("Puhui listening on ") {
                base = Some(rest.split_whitespace().next().unwrap().to_owned());
            } else if let Some(token) =
                line.strip_prefix("insurer token (shown once, only its hash is stored): ")
            {
                insurer = Some(token.to_owned());
            } else if let Some(token) =
                line.strip_prefix("auditor token (shown once, only its hash is stored): ")
            {
                auditor = Some(token.to_owned());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let server = Server {
            base: base.unwrap(),
            insurer: insurer.unwrap(),
            auditor: auditor.unwrap(),
            backend: db.name,
            database_url: db.url.clone(),
            key_file,
            child,
            agent,
        };
        server.until_ready()
    }

    fn until_ready(self) -> Server {
        // Ready when the database answers.
        for _ in 0..100 {
            if self.get("/readyz", None).0 == 200 {
                return self;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready");
    }

    /// Stops this server and starts another on the same database with
    /// `extra` arguments (e.g. `--clock-offset-days 30`); the tokens issued
    /// on the first start stay valid.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-demo"])
            .args(extra)
            .env("DATABASE_URL", &self.database_url)
            .env("PUHUI_KEY_FILE", &self.key_file)
            .env("RUST_LOG", "warn")
            .env_remove("PUHUI_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("restart puhui serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before it was ready")
                .unwrap();
            if let Some(rest) = line.strip_prefix("Puhui listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let restarted = Server {
            base,
            insurer: std::mem::take(&mut self.insurer),
            auditor: std::mem::take(&mut self.auditor),
            backend: self.backend,
            database_url: std::mem::take(&mut self.database_url),
            key_file: std::mem::take(&mut self.key_file),
            child,
            agent: self.agent.clone(),
        };
        restarted.until_ready()
    }

    /// A pricing run once it is no longer `running` (read as the insurer).
    pub fn pricing_run_ended(&self, id: i64) -> Value {
        let started = std::time::Instant::now();
        loop {
            let (status, run) = self.get(&format!("/v1/pricing/runs/{id}"), Some(&self.insurer));
            assert_eq!(status, 200, "{run}");
            if run["status"] != "running" {
                return run;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(600),
                "pricing run {id} did not end: {run}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.agent.get(&self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        read(request.call().expect("GET"))
    }

    pub fn get_text(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut request = self.agent.get(&self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request.call().expect("GET");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (status, content_type, body)
    }

    /// POSTs raw bytes with a content type; `key` is the Idempotency-Key.
    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("Content-Type", content_type);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        read(request.send(body).expect("POST"))
    }

    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        self.post_raw(
            path,
            token,
            key,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    /// Signs a person up through the public endpoint; returns (member id, token).
    pub fn enrol(&self, serial: u32, declared: &[&str]) -> (i64, String) {
        let (status, body) = self.post(
            "/v1/enrollments",
            None,
            Some(&format!("enrol-{serial}")),
            &serde_json::json!({
                "product_id": "e2e-city",
                "resident_id": resident_id(serial),
                "name": "王小明",
                "phone": "13912345678",
                "insurance_type": "urban_rural_resident",
                "declared_conditions": declared,
            }),
        );
        assert_eq!(status, 201, "{}: enrol: {body}", self.backend);
        (
            body["member"]["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub fn drug_claim(member_id: i64, quantity: u32, egfr_positive: bool) -> Value {
    serde_json::json!({
        "member_id": member_id,
        "kind": "specialty_drug",
        "service_date": today().to_string(),
        "provider_id": "PH-001",
        "diagnosis": "C34.1",
        "items": [{
            "drug": "L01EB04", "quantity": quantity, "unit_price": "510.00", "basic_paid": "0",
            "biomarkers": [{ "marker": "EGFR", "positive": egfr_positive }],
        }],
    })
}

pub fn inpatient_claim(member_id: i64, total: &str) -> Value {
    serde_json::json!({
        "member_id": member_id,
        "kind": "inpatient",
        "service_date": today().to_string(),
        "provider_id": "H-001",
        "diagnosis": "K35.8",
        "items": [{ "total": total, "basic_paid": "1000.00", "out_of_catalogue": "0" }],
    })
}
