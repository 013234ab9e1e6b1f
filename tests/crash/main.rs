//! Crash test: the real server under load, killed with SIGKILL at random
//! moments, restarted on the same database, then checked.
//!
//! ```text
//! cargo test --release -p puhui --test crash -- --backend sqlite --kills 8
//! cargo test --release -p puhui --test crash -- --backend postgres --kills 8
//! ```
//!
//! Not part of `cargo test`: it runs only when named. Clients keep sending
//! claims for a few members whose limits are small enough to be reached,
//! with amounts drawn from a short list so that the same item comes back
//! (duplicates), and with retries of earlier keys. A request that got no
//! answer because the server died is sent again, with the same key, after
//! the restart. At the end it checks:
//! - every claim that got a success response is stored with the same
//!   decision, and every retry of a key answered with that same claim;
//! - no key has two claims, and no item was paid twice (one paid fingerprint
//!   per member among claims not reversed);
//! - every balance equals the sum of its ledger entries (as the API shows it
//!   and as the rows add up), the ledger of each claim adds up to its
//!   decision, and no balance is negative or over its limit or deductible;
//! - every claim has its audit event, and `puhui audit verify` passes.
//!
//! Exit status 0 when all hold; the seed is printed to rerun a failure.

#[path = "../loadkit/mod.rs"]
mod loadkit;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use engine::schema::{
    audit_events, claims, decisions, idempotency_keys, ledger_entries, paid_items, reversals,
};
use loadkit::{Backend, Client, FreshDb, Member, Res, Rng, Server};
use serde_json::Value;

const PRODUCT_ID: &str = "crash-city";
const INPATIENT_LIMIT_FEN: i64 = 2_000_000;
const INPATIENT_DEDUCTIBLE_FEN: i64 = 100_000;
const DRUG_LIMIT_FEN: i64 = 3_000_000;

struct Args {
    backend: Backend,
    postgres_url: String,
    kills: u32,
    members: u32,
    clients: usize,
    seed: u64,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        backend: Backend::Sqlite,
        postgres_url: std::env::var("PUHUI_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| loadkit::DEFAULT_POSTGRES_URL.to_owned()),
        kills: 6,
        members: 12,
        clients: 16,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => args.backend = Backend::parse(&value()?)?,
            "--postgres-url" => args.postgres_url = value()?,
            "--kills" => args.kills = number(value()?)? as u32,
            "--members" => args.members = number(value()?)? as u32,
            "--clients" => args.clients = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            // Passed by the test runner; nothing to do with them here.
            "--nocapture" | "--quiet" | "-q" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(args)
}

fn main() {
    match run() {
        Ok(()) => println!("crash test passed"),
        Err(e) => {
            eprintln!("crash test FAILED: {e}");
            std::process::exit(1);
        }
    }
}

/// A claim sent to the server, and what the server said about it.
#[derive(Clone)]
struct Sent {
    member: usize,
    key: String,
    body: Value,
}

#[derive(Default)]
struct Log {
    /// Key -> (claim id, decision) of the first success response.
    decided: HashMap<String, (i64, Value)>,
    /// Claims that got no answer (the server died under them), to resend.
    unanswered: Vec<Sent>,
    /// Sent and answered with success, to retry later.
    answered: Vec<Sent>,
    requests: u64,
    successes: u64,
    no_answer: u64,
    problems: Vec<String>,
}

impl Log {
    /// Records a success; a key answered before must give the same claim
    /// and decision.
    fn success(&mut self, sent: &Sent, answer: &Value) {
        self.successes += 1;
        let (Some(id), decision) = (answer["id"].as_i64(), answer["decision"].clone()) else {
            self.problems.push(format!(
                "{}: success without a claim id: {answer}",
                sent.key
            ));
            return;
        };
        match self.decided.get(&sent.key) {
            Some((first_id, first_decision)) => {
                if *first_id != id || *first_decision != decision {
                    self.problems.push(format!(
                        "key {} answered with claim {id} after claim {first_id}",
                        sent.key
                    ));
                }
            }
            None => {
                self.decided.insert(sent.key.clone(), (id, decision));
                self.answered.push(sent.clone());
            }
        }
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_puhui"));
    println!(
        "crash test: {} backend, {} kills, {} members, {} clients, seed {}",
        args.backend.name(),
        args.kills,
        args.members,
        args.clients,
        args.seed
    );
    let db = FreshDb::new(args.backend, &args.postgres_url, "crash")?;
    loadkit::load_product(
        &bin,
        &db,
        &loadkit::product_toml(PRODUCT_ID, "20000.00", "30000.00"),
    )?;
    let mut server = Server::start(&bin, &db, &[], true)?;
    let insurer = server.insurer.clone().ok_or("no insurer token")?;
    let auditor = server.auditor.clone().ok_or("no auditor token")?;
    let members = Arc::new(loadkit::enrol(
        &server.base,
        &insurer,
        PRODUCT_ID,
        args.members,
        4,
    )?);
    let log = Arc::new(Mutex::new(Log::default()));
    let mut rng = Rng::new(args.seed);
    let started = Instant::now();

    for round in 0..args.kills {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..args.clients)
            .map(|t| {
                let base = server.base.clone();
                let members = Arc::clone(&members);
                let log = Arc::clone(&log);
                let stop = Arc::clone(&stop);
                let seed = args.seed ^ (u64::from(round) << 32) ^ t as u64;
                std::thread::spawn(move || client(&base, &members, &log, &stop, seed, round, t))
            })
            .collect();
        // Kill at a random moment between 0.3 and 2.5 seconds of load.
        let after = Duration::from_millis(300 + rng.below(2_200));
        std::thread::sleep(after);
        let pid = server.pid();
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().map_err(|_| "client thread panicked")?;
        }
        {
            let l = lock(&log);
            println!(
                "kill {}: SIGKILL to pid {pid} after {} ms; so far {} requests, {} successes, {} without an answer",
                round + 1,
                after.as_millis(),
                l.requests,
                l.successes,
                l.no_answer
            );
        }
        server = Server::start(&bin, &db, &[], false)?;
    }

    // After the last restart: every unanswered claim again, with its key.
    let client = Client::new(&server.base, Duration::from_secs(30));
    let unanswered = std::mem::take(&mut lock(&log).unanswered);
    let resent = unanswered.len();
    for sent in &unanswered {
        let reply = client.post(
            "/v1/claims",
            Some(&members[sent.member].token),
            &sent.key,
            &sent.body,
        )?;
        if reply.status != 201 {
            return Err(format!(
                "resent {} after the restarts: {} {}",
                sent.key, reply.status, reply.body
            ));
        }
        lock(&log).success(sent, &reply.body);
    }
    // And every answered claim once more: each must replay.
    let answered = lock(&log).answered.clone();
    for sent in &answered {
        let reply = client.post(
            "/v1/claims",
            Some(&members[sent.member].token),
            &sent.key,
            &sent.body,
        )?;
        if reply.status != 201 || !reply.replayed {
            return Err(format!(
                "retry of {} after the restarts: {} replayed={} {}",
                sent.key, reply.status, reply.replayed, reply.body
            ));
        }
        lock(&log).success(sent, &reply.body);
    }

    let log = std::mem::take(&mut *lock(&log));
    println!(
        "{} requests in {:.1} s, {} kills; {} claims decided; {} had no answer and were resent; {} answered keys retried",
        log.requests,
        started.elapsed().as_secs_f64(),
        args.kills,
        log.decided.len(),
        resent,
        answered.len()
    );
    if !log.problems.is_empty() {
        return Err(log.problems.join("\n"));
    }
    verify(&bin, &db, &server, &insurer, &auditor, &members, &log)
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

fn client(
    base: &str,
    members: &[Member],
    log: &Mutex<Log>,
    stop: &AtomicBool,
    seed: u64,
    round: u32,
    thread: usize,
) {
    let client = Client::new(base, Duration::from_secs(10));
    let mut rng = Rng::new(seed);
    let mut n = 0_u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let roll = rng.below(10);
        let sent = {
            let l = lock(log);
            if roll < 2 && !l.answered.is_empty() {
                l.answered[rng.below(l.answered.len() as u64) as usize].clone()
            } else {
                let member = rng.below(members.len() as u64) as usize;
                Sent {
                    member,
                    key: format!("r{round}-t{thread}-n{n}"),
                    // Forty amounts per kind: items repeat, duplicates arise.
                    body: loadkit::claim_body(&mut rng, members[member].id, 40),
                }
            }
        };
        let reply = client.post(
            "/v1/claims",
            Some(&members[sent.member].token),
            &sent.key,
            &sent.body,
        );
        let mut l = lock(log);
        l.requests += 1;
        match reply {
            Ok(reply) if reply.status == 201 => l.success(&sent, &reply.body),
            Ok(reply) if reply.status == 503 => l.unanswered.push(sent),
            Ok(reply) => l.problems.push(format!(
                "{}: HTTP {} {}",
                sent.key, reply.status, reply.body
            )),
            Err(_) => {
                l.no_answer += 1;
                if !l.decided.contains_key(&sent.key) {
                    l.unanswered.push(sent);
                }
                // The server was killed: this request was in flight, and
                // the next would only be refused until the restart.
                return;
            }
        }
    }
}

fn verify(
    bin: &std::path::Path,
    db: &FreshDb,
    server: &Server,
    insurer: &str,
    auditor: &str,
    members: &[Member],
    log: &Log,
) -> Res<()> {
    let client = Client::new(&server.base, Duration::from_secs(30));
    let mut problems = Vec::new();

    // 1. Every success is stored with the same decision.
    for (key, (id, decision)) in &log.decided {
        let (status, stored) = client.get(&format!("/v1/claims/{id}"), Some(insurer))?;
        if status != 200 {
            problems.push(format!("claim {id} of key {key}: HTTP {status}"));
        } else if stored["decisions"][0] != *decision {
            problems.push(format!("claim {id} of key {key}: stored decision differs"));
        }
    }

    let target = engine::db::DatabaseTarget::parse(&db.url).map_err(|e| e.to_string())?;
    let mut conn = target.connect().map_err(|e| e.to_string())?;
    let e = |e: diesel::result::Error| e.to_string();

    // 2. One claim per key; no claim without a key; no item paid twice.
    let claim_count: i64 = claims::table.count().get_result(&mut conn).map_err(e)?;
    let claim_keys: i64 = idempotency_keys::table
        .filter(idempotency_keys::operation.eq("claim"))
        .count()
        .get_result(&mut conn)
        .map_err(e)?;
    if claim_count != claim_keys {
        problems.push(format!(
            "{claim_count} claims stored for {claim_keys} claim idempotency keys"
        ));
    }
    if (claim_count as usize) < log.decided.len() {
        problems.push(format!(
            "{} claims acknowledged but only {claim_count} stored",
            log.decided.len()
        ));
    }
    let reversed: HashSet<i64> = reversals::table
        .select(reversals::claim_id)
        .load::<i64>(&mut conn)
        .map_err(e)?
        .into_iter()
        .collect();
    let paid: Vec<(i64, i64, String)> = paid_items::table
        .select((
            paid_items::member_id,
            paid_items::claim_id,
            paid_items::fingerprint,
        ))
        .load(&mut conn)
        .map_err(e)?;
    let mut seen = HashSet::new();
    for (member, claim, fingerprint) in &paid {
        if !reversed.contains(claim) && !seen.insert((*member, fingerprint.clone())) {
            problems.push(format!("member {member}: item {fingerprint} paid twice"));
        }
    }

    // 3. Ledger: per claim it adds up to the decision; per member and
    //    benefit it stays within the terms and is what the API shows.
    let ledger: Vec<(i64, i64, String, i64, i64)> = ledger_entries::table
        .select((
            ledger_entries::member_id,
            ledger_entries::claim_id,
            ledger_entries::benefit,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(&mut conn)
        .map_err(e)?;
    let mut per_claim: HashMap<i64, i64> = HashMap::new();
    let mut per_balance: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
    for (member, claim, benefit, deductible, paid) in &ledger {
        *per_claim.entry(*claim).or_default() += paid;
        let b = per_balance.entry((*member, benefit.clone())).or_default();
        b.0 += deductible;
        b.1 += paid;
    }
    let payable: Vec<(i64, i64)> = decisions::table
        .select((decisions::claim_id, decisions::payable_fen))
        .load(&mut conn)
        .map_err(e)?;
    for (claim, payable) in &payable {
        let booked = per_claim.get(claim).copied().unwrap_or(0);
        if booked != *payable {
            problems.push(format!(
                "claim {claim}: decision pays {payable} fen, ledger books {booked}"
            ));
        }
    }
    for ((member, benefit), (deductible, paid)) in &per_balance {
        let (max_deductible, max_paid) = match benefit.as_str() {
            "inpatient" => (INPATIENT_DEDUCTIBLE_FEN, INPATIENT_LIMIT_FEN),
            _ => (0, DRUG_LIMIT_FEN),
        };
        if *deductible < 0 || *paid < 0 || *deductible > max_deductible || *paid > max_paid {
            problems.push(format!(
                "member {member} {benefit}: deductible {deductible}, paid {paid} outside the terms"
            ));
        }
    }
    let mut at_limit = 0;
    for m in members {
        let (status, cover) =
            client.get(&format!("/v1/members/{}/coverage", m.id), Some(insurer))?;
        if status != 200 {
            problems.push(format!("coverage of member {}: HTTP {status}", m.id));
            continue;
        }
        for b in cover["products"][0]["benefits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let benefit = b["benefit"].as_str().unwrap_or("").to_owned();
            let (deductible, paid) = per_balance
                .get(&(m.id, benefit.clone()))
                .copied()
                .unwrap_or((0, 0));
            let shown = (fen(&b["deductible_met"]), fen(&b["limit_used"]));
            if shown != (Some(deductible), Some(paid)) {
                problems.push(format!(
                    "member {} {benefit}: API shows {shown:?}, ledger sums to ({deductible}, {paid})",
                    m.id
                ));
            }
            if b["limit_left"] == "0.00" {
                at_limit += 1;
            }
        }
    }

    // 4. The audit log: one decision event per claim, and the chain verifies.
    let decided_events: i64 = audit_events::table
        .filter(audit_events::action.eq("claim.decided"))
        .count()
        .get_result(&mut conn)
        .map_err(e)?;
    if decided_events != claim_count {
        problems.push(format!(
            "{decided_events} claim.decided events for {claim_count} claims"
        ));
    }
    let (status, report) = client.get("/v1/audit/verify", Some(auditor))?;
    if status != 200 || report["valid"] != true {
        problems.push(format!("audit verify over HTTP: {status} {report}"));
    }
    let out = loadkit::puhui(bin, db, &["audit", "verify"])?;
    if !out.status.success() {
        problems.push(format!(
            "puhui audit verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "checked: {claim_count} claims, {} paid items, {} ledger entries, {} balances ({at_limit} at their limit), {decided_events} decision events; audit chain verifies: {}",
        paid.len(),
        ledger.len(),
        per_balance.len(),
        out.status.success()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// "1234.50" -> 123450.
fn fen(amount: &Value) -> Option<i64> {
    let text = amount.as_str()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    Some(whole.parse::<i64>().ok()? * 100 + format!("{frac:0<2}").parse::<i64>().ok()?)
}
