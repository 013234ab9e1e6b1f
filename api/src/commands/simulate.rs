//! `puhui simulate`: a synthetic policy year of a product, run through the real server.
//!
//! The year is drawn from a known morbidity model (`actuarial::policy_year`); the members are
//! enrolled through `POST /v1/enrollments` and their claims submitted through `POST /v1/claims`
//! by a hospital's and a pharmacy's tokens, each in the month it is reported. Months pass by
//! restarting `puhui serve` on the same database with its clock moved to the month's last day
//! (`--clock-offset-days`), so every decision and payment carries the date it would have had:
//! the payment triangle of the experience study develops as a real year's would.
//!
//! Everything goes through the server's validation, adjudication, ledger and audit chain; the
//! command only chooses what to send and when. Idempotency keys are derived from the seed, so a
//! run interrupted and started again replays what was already sent instead of doubling it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use actuarial::Scenario;
use actuarial::policy_year::{ClaimKind, DrawnYear, YearSpec, draw_year};
use chrono::{Datelike, Months, NaiveDate};
use engine::db::write_transaction;
use engine::domain::pricing_group::{age_band_on, years_before};
use engine::domain::resident_id::check_character;
use engine::domain::{Fen, Icd10Code, Product};
use engine::store::products;
use engine::store::tokens::{self, Role};
use serde_json::{Value, json};

use crate::config::DatabaseArgs;

/// The diagnosis of the drug claims (a lung cancer, whose targeted drugs every formulary of
/// the kind lists), also the pre-existing condition members of pre-existing groups declare.
const DRUG_DIAGNOSIS: &str = "C34.1";
/// The diagnosis of a standard member's hospital stay (appendicitis): no pre-existing group.
const STANDARD_DIAGNOSIS: &str = "K35.8";
/// The hospital the stays are claimed from when the product names no qualified prescriber.
const DEFAULT_HOSPITAL: &str = "SIM-H-001";
/// Basic medical insurance's part of a stay, as a multiple of the out-of-pocket cost left
/// after it (basic pays 60% of the bill, in the 50-70% range inpatient reimbursement has).
const BASIC_PER_OUT_OF_POCKET: f64 = 1.5;
/// Region code of the synthetic resident IDs (Xiamen, Siming district).
const REGION: &str = "350203";

#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Draws a policy year of the product from a morbidity model (the product's pricing scenario, or \
--truth): members in the scenario's group mix, hospital stays and specialty-drug dispensings \
with their costs, and a reporting delay for each stay (exponential, --mean-report-delay-days; \
pharmacies report on the day they dispense). It then runs the year through the server: it \
starts `puhui serve` on the database with the clock at the first day of cover, enrols the \
members through the API, and then, month by month (the server restarted with its clock at \
the month's last day), submits the claims reported in that month, until every claim is in or \
--until. The server's decisions are the claims engine's own; nothing is written around it.

Use a database of its own for the demonstration: the server's clock is moved, so its dates \
run ahead of today's.

Example (then `puhui experience --product xiamen-2026 --as-of 2027-03-31` on the same \
database):
  DATABASE_URL=sqlite://data/demo-year.db puhui simulate --product xiamen-2026 --members 20000")]
pub struct SimulateArgs {
    /// Product id (the demo products are loaded first unless --no-demo).
    #[arg(long, value_name = "ID", default_value = "xiamen-2026")]
    pub product: String,
    /// Members to enrol.
    #[arg(long, default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub members: u64,
    /// Seed of the draws (the same seed draws the same year).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The scenario whose morbidity the year is drawn from (default: the product's pricing
    /// scenario). A different table here is a "true" morbidity the price did not know.
    #[arg(long, value_name = "SCENARIO.toml")]
    pub truth: Option<PathBuf>,
    /// Mean delay in days from a hospital admission to its claim.
    #[arg(long, default_value_t = 45.0)]
    pub mean_report_delay_days: f64,
    /// Last day to submit claims (default: until the last claim is reported).
    #[arg(long, value_name = "DATE")]
    pub until: Option<NaiveDate>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub connections: u16,
    /// Also write what was drawn and sent, per group and month, as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Do not load the demo products first.
    #[arg(long)]
    pub no_demo: bool,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// The claim in the API's terms, with the day it is reported.
struct Outgoing {
    report_date: NaiveDate,
    member: usize,
    body: Value,
}

/// Who submits the claims, and with what.
struct Submitters {
    hospital: String,
    hospital_token: String,
    pharmacy: String,
    pharmacy_token: String,
    drug_atc: String,
    biomarker: Option<String>,
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode, String> {
    let (db, keys) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let ctx = super::cli_context(&keys);
    if !args.no_demo {
        super::serve::load_demo_products(&mut conn, &ctx)?;
    }
    let stored = products::current(&mut conn, &args.product).map_err(|e| e.to_string())?;
    let product = stored.product.clone();
    let truth = match &args.truth {
        Some(path) => Scenario::from_path(path).map_err(|e| e.to_string())?,
        None => crate::basis::product_basis(&mut conn, &stored)
            .map_err(|e| e.to_string())?
            .map(|(_, scenario)| scenario)
            .ok_or_else(|| {
                format!(
                    "product {}: names no pricing scenario to draw the year from; give --truth",
                    product.id
                )
            })?,
    };
    if product.enrollment_open > product.period_start {
        return Err(format!(
            "product {}: enrolment opens {} after the period starts {}; the year is drawn for \
             members covered from the first day",
            product.id, product.enrollment_open, product.period_start
        ));
    }
    let period_days = u32::try_from((product.period_end - product.period_start).num_days() + 1)
        .map_err(|_| format!("product {}: the period ends before it starts", product.id))?;
    let spec = YearSpec {
        members: args.members,
        period_days,
        mean_report_delay_days: args.mean_report_delay_days,
        seed: args.seed,
    };
    let year = draw_year(&truth, &spec).map_err(|e| {
        let name = args.truth.as_ref().map_or_else(
            || "the pricing scenario".to_string(),
            |p| p.display().to_string(),
        );
        format!("{name}: {e}")
    })?;

    let submitters = submitters(&mut conn, &ctx, &product)?;
    drop(conn);
    let people = people(&year, product.period_start)?;
    let outgoing = claims(&year, &product, &submitters);
    eprintln!(
        "drew {} members in {} groups and {} claims from {} (seed {})",
        year.members.len(),
        year.groups.len(),
        outgoing.len(),
        truth.name(),
        args.seed
    );

    let today = ctx.today_china();
    let mut log = Vec::new();
    // Enrolment, on the first day of cover.
    let server = Server::start(args, product.period_start, today)?;
    let member_ids = enrol(&server, args, &product, &people)?;
    server.stop();
    eprintln!(
        "{}: enrolled {} members",
        product.period_start,
        member_ids.len()
    );

    let last_report = outgoing
        .last()
        .map_or(product.period_end, |c| c.report_date);
    let end = args.until.unwrap_or(last_report).min(last_report);
    let mut month_end = last_of_month(product.period_start);
    let mut next = 0;
    let mut sent = 0;
    while next < outgoing.len() && month_end_before_or_at(month_end, end) {
        let server_date = month_end.min(end);
        let due = outgoing[next..]
            .iter()
            .take_while(|c| c.report_date <= server_date)
            .count();
        if due > 0 {
            let server = Server::start(args, server_date, today)?;
            let month = &outgoing[next..next + due];
            let (paid_fen, refused) = submit(&server, args, &submitters, &member_ids, month, next)?;
            server.stop();
            eprintln!(
                "{}: {} claims reported, paid {} CNY{}",
                server_date.format("%Y-%m"),
                due,
                Fen(paid_fen),
                if refused.is_empty() {
                    String::new()
                } else {
                    format!(", {} refused", refused.len())
                }
            );
            if let Some(first) = refused.first() {
                return Err(format!("claims refused by the server, first: {first}"));
            }
            log.push(json!({
                "month": server_date.format("%Y-%m").to_string(),
                "server_date": server_date.to_string(),
                "claims": due,
                "paid": paid_fen as f64 / 100.0,
            }));
            sent += due;
        }
        next += due;
        month_end = last_of_month(month_end + chrono::Duration::days(1));
    }
    eprintln!(
        "submitted {sent} of {} claims; the last on {}",
        outgoing.len(),
        end
    );
    if let Some(path) = &args.json {
        let summary = summary(&year, &outgoing[..sent], &log, args, &product);
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn month_end_before_or_at(month_end: NaiveDate, end: NaiveDate) -> bool {
    // The month holding `end` still runs, to the day `end`.
    month_end <= end || (month_end.year(), month_end.month()) == (end.year(), end.month())
}

fn last_of_month(date: NaiveDate) -> NaiveDate {
    let first = date.with_day(1).unwrap_or(date);
    first
        .checked_add_months(Months::new(1))
        .map_or(date, |next| next - chrono::Duration::days(1))
}

/// The hospital and pharmacy tokens, and the formulary drug the dispensings are of: the first
/// one for the drug diagnosis that needs no authorised course.
fn submitters(
    conn: &mut engine::DbConn,
    ctx: &engine::store::WriteContext<'_>,
    product: &Product,
) -> Result<Submitters, String> {
    let diagnosis: Icd10Code = DRUG_DIAGNOSIS.parse().map_err(|e| format!("{e}"))?;
    let drug = product
        .specialty_drug
        .as_ref()
        .and_then(|benefit| {
            benefit.formulary.iter().find(|d| {
                !d.requires_authorization
                    && !d.designated_providers.is_empty()
                    && d.indications.iter().any(|p| p.matches(&diagnosis))
            })
        })
        .ok_or_else(|| {
            format!(
                "product {}: no specialty drug for {DRUG_DIAGNOSIS} that is dispensed without \
                 an authorised course, at a designated pharmacy",
                product.id
            )
        })?;
    let hospital = product
        .qualified_prescribers
        .as_ref()
        .and_then(|p| p.first().cloned())
        .unwrap_or_else(|| DEFAULT_HOSPITAL.to_string());
    let pharmacy = drug.designated_providers[0].clone();
    let mut token = |provider: &str| -> Result<String, String> {
        let secret = crate::auth::new_token_secret();
        let role = Role::Provider {
            provider_id: provider.to_string(),
        };
        write_transaction(conn, |conn| {
            tokens::create(conn, ctx, &secret, &role, "puhui simulate")
        })
        .map_err(|e| e.to_string())?;
        Ok(secret)
    };
    Ok(Submitters {
        hospital_token: token(&hospital)?,
        pharmacy_token: token(&pharmacy)?,
        hospital,
        pharmacy,
        drug_atc: drug.atc.to_string(),
        biomarker: drug.required_biomarker.clone(),
    })
}

/// A resident ID per member, with the birth date and sex the draw gave: born on the day that
/// makes the member `age` at the period start, `days_since_birthday` days before it; the
/// sequence number's parity is the sex (odd for men), and distinct members never share one.
fn people(year: &DrawnYear, period_start: NaiveDate) -> Result<Vec<(String, bool)>, String> {
    let mut taken: BTreeMap<(NaiveDate, bool), u32> = BTreeMap::new();
    year.members
        .iter()
        .map(|m| {
            let group = &year.groups[m.group];
            let anniversary = years_before(period_start, m.age)
                .ok_or_else(|| format!("age {} before year 1", m.age))?;
            let birth = anniversary - chrono::Duration::days(i64::from(m.days_since_birthday));
            debug_assert!(group.id.starts_with(age_band_on(birth, period_start)));
            let n = taken.entry((birth, group.male)).or_insert(0);
            if *n >= 500 {
                return Err(format!(
                    "more than 500 members of one sex born on {birth}: too many for resident IDs"
                ));
            }
            let sequence = 2 * *n + if group.male { 1 } else { 2 };
            *n += 1;
            let body = format!("{REGION}{}{sequence:03}", birth.format("%Y%m%d"));
            let check = check_character(&body).ok_or("resident ID check character")?;
            Ok((format!("{body}{check}"), group.preexisting))
        })
        .collect()
}

/// The claims in the API's terms, in the order they are reported.
fn claims(year: &DrawnYear, product: &Product, who: &Submitters) -> Vec<Outgoing> {
    year.claims
        .iter()
        .map(|c| {
            let member = &year.members[c.member];
            let preexisting = year.groups[member.group].preexisting;
            let service = product.period_start + chrono::Duration::days(i64::from(c.service_day));
            let report = product.period_start + chrono::Duration::days(i64::from(c.report_day));
            let cost_fen = ((c.cost * 100.0).round() as i64).max(1);
            let body = match c.kind {
                ClaimKind::Inpatient => {
                    let basic = (cost_fen as f64 * BASIC_PER_OUT_OF_POCKET).round() as i64;
                    json!({
                        "kind": "inpatient",
                        "service_date": service.to_string(),
                        "provider_id": who.hospital,
                        "diagnosis": if preexisting { DRUG_DIAGNOSIS } else { STANDARD_DIAGNOSIS },
                        "items": [{
                            "total": Fen(cost_fen + basic).to_string(),
                            "basic_paid": Fen(basic).to_string(),
                            "out_of_catalogue": "0",
                        }],
                    })
                }
                ClaimKind::SpecialtyDrug => {
                    let mut item = json!({
                        "drug": who.drug_atc,
                        "quantity": 1,
                        "unit_price": Fen(cost_fen).to_string(),
                        "basic_paid": "0",
                    });
                    if let Some(marker) = &who.biomarker {
                        item["biomarkers"] = json!([{ "marker": marker, "positive": true }]);
                    }
                    json!({
                        "kind": "specialty_drug",
                        "service_date": service.to_string(),
                        "provider_id": who.pharmacy,
                        "diagnosis": DRUG_DIAGNOSIS,
                        "items": [item],
                    })
                }
            };
            Outgoing {
                report_date: report,
                member: c.member,
                body,
            }
        })
        .collect()
}

/// A `puhui serve` child on the database with its clock at `date`.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(args: &SimulateArgs, date: NaiveDate, today: NaiveDate) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("the puhui binary: {e}"))?;
        let offset = (date - today).num_days();
        let mut child = Command::new(exe)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-demo"])
            .args(["--clock-offset-days", &offset.to_string()])
            .args(["--enrollments-per-minute", "1000000000"])
            .arg("--database-url")
            .arg(&args.db.database_url)
            .arg("--key-file")
            .arg(&args.db.key_file)
            // Errors only: each restart would otherwise warn that the clock is offset.
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start puhui serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("the server's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.map_err(|e| format!("the server's output: {e}"))?;
            // A first start's tokens are shown once: pass them on.
            if line.contains("token (shown once") {
                println!("{line}");
            }
            if let Some(rest) = line.strip_prefix("Puhui listening on ") {
                base = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        let Some(base) = base else {
            let _ = child.wait();
            return Err("puhui serve stopped before it listened".into());
        };
        std::thread::spawn(move || for _ in lines {});
        let server = Server { child, base };
        let agent = agent();
        for _ in 0..200 {
            if let Ok(response) = agent.get(&format!("{}/readyz", server.base)).call()
                && response.status() == 200
            {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("puhui serve did not become ready".into())
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Busy answers (503: the database is busy; 429: too many at once) are retried with the same
/// idempotency key, which makes a retry safe, up to this many times with a growing pause.
const RETRIES: u32 = 30;

fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let payload = body.to_string();
    let mut attempt = 0;
    loop {
        let mut request = agent
            .post(url)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request
            .send(payload.as_bytes())
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if matches!(status, 429 | 503) && attempt < RETRIES {
            attempt += 1;
            std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
            continue;
        }
        return Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ));
    }
}

/// Runs `work(i)` for every index below `n` on `connections` threads; results in index order.
fn in_parallel<T: Send>(
    n: usize,
    connections: u16,
    work: impl Fn(&ureq::Agent, usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let threads = usize::from(connections).min(n.max(1));
    let mut parts: Vec<Result<Vec<(usize, T)>, String>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                scope.spawn(move || {
                    let agent = agent();
                    (t..n)
                        .step_by(threads)
                        .map(|i| work(&agent, i).map(|r| (i, r)))
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        parts = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a request thread panicked".into()))
            })
            .collect();
    });
    let mut all: Vec<(usize, T)> = Vec::with_capacity(n);
    for part in parts {
        all.extend(part?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}

fn enrol(
    server: &Server,
    args: &SimulateArgs,
    product: &Product,
    people: &[(String, bool)],
) -> Result<Vec<i64>, String> {
    let url = format!("{}/v1/enrollments", server.base);
    in_parallel(people.len(), args.connections, |agent, i| {
        let (resident_id, preexisting) = &people[i];
        let declared: Vec<&str> = if *preexisting {
            vec![DRUG_DIAGNOSIS]
        } else {
            vec![]
        };
        let body = json!({
            "product_id": product.id,
            "resident_id": resident_id,
            "name": "模拟参保人",
            "phone": "13900000000",
            "insurance_type": if i % 3 == 0 { "urban_employee" } else { "urban_rural_resident" },
            "declared_conditions": declared,
        });
        let key = format!("simulate-{}-enrol-{i}", args.seed);
        let (status, answer) = post(agent, &url, None, &key, &body)?;
        match (status, answer["member"]["id"].as_i64()) {
            (200 | 201, Some(id)) => Ok(id),
            _ => Err(format!("enrolment of member {i}: {status} {answer}")),
        }
    })
}

/// Submits one month's claims; returns the net paid (fen) and the refusals.
fn submit(
    server: &Server,
    args: &SimulateArgs,
    who: &Submitters,
    member_ids: &[i64],
    month: &[Outgoing],
    first_index: usize,
) -> Result<(i64, Vec<String>), String> {
    let url = format!("{}/v1/claims", server.base);
    let answers = in_parallel(month.len(), args.connections, |agent, i| {
        let claim = &month[i];
        let mut body = claim.body.clone();
        body["member_id"] = json!(member_ids[claim.member]);
        let token = if body["kind"] == "inpatient" {
            &who.hospital_token
        } else {
            &who.pharmacy_token
        };
        let key = format!("simulate-{}-claim-{}", args.seed, first_index + i);
        let (status, answer) = post(agent, &url, Some(token), &key, &body)?;
        if status >= 500 {
            return Err(format!("claim {}: {status} {answer}", first_index + i));
        }
        Ok((status, answer))
    })?;
    let mut paid = 0i64;
    let mut refused = Vec::new();
    for (i, (status, answer)) in answers.iter().enumerate() {
        if matches!(status, 200 | 201) {
            paid += paid_fen(answer);
        } else {
            refused.push(format!("claim {}: {status} {answer}", first_index + i));
        }
    }
    Ok((paid, refused))
}

/// The amount a decision paid, in fen, from its decimal string.
fn paid_fen(decision: &Value) -> i64 {
    engine::domain::parse_amount(&decision["decision"]["totals"]["payable"]).map_or(0, |fen| fen.0)
}

fn summary(
    year: &DrawnYear,
    sent: &[Outgoing],
    months: &[Value],
    args: &SimulateArgs,
    product: &Product,
) -> Value {
    // `sent` is the first part of the claims in report order, as drawn.
    let mut by_group: Vec<(u64, u64, f64, u64)> = vec![(0, 0, 0.0, 0); year.groups.len()];
    for (i, c) in year.claims.iter().enumerate() {
        let g = &mut by_group[year.members[c.member].group];
        match c.kind {
            ClaimKind::Inpatient => {
                g.0 += 1;
                g.2 += c.cost;
            }
            ClaimKind::SpecialtyDrug => g.1 += 1,
        }
        if i < sent.len() {
            g.3 += 1;
        }
    }
    json!({
        "product": product.id,
        "seed": args.seed,
        "members": year.members.len(),
        "claims_drawn": year.claims.len(),
        "claims_submitted": sent.len(),
        "mean_report_delay_days": args.mean_report_delay_days,
        "months": months,
        "groups": year.groups.iter().zip(&by_group).map(|(g, s)| json!({
            "group": g.id,
            "members": g.members,
            "admissions": s.0,
            "dispensings": s.1,
            "inpatient_cost": s.2,
            "claims_submitted": s.3,
        })).collect::<Vec<_>>(),
    })
}
