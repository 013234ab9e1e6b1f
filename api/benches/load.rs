//! Claims load benchmark: the real `puhui` server over loopback.
//!
//! ```text
//! cargo bench -p puhui --bench load -- --backend sqlite
//! cargo bench -p puhui --bench load -- --backend postgres [--postgres-url URL]
//! ```
//!
//! For the chosen backend, on a fresh database, it measures:
//! 1. the ceiling: a bare loop of one-row write transactions on one
//!    connection with the server's durability settings (SQLite WAL with
//!    `synchronous = FULL` and `BEGIN IMMEDIATE`; PostgreSQL with
//!    `synchronous_commit` as configured and the writers' advisory lock);
//! 2. a closed-loop run: `--clients` threads each send the next request as
//!    soon as the last one is answered, 70% claim submissions (drug and
//!    inpatient; a tenth of them retries of an earlier claim with the same
//!    Idempotency-Key), 20% coverage reads, 10% claim-history reads;
//! 3. an open-loop run of the same mix at a fixed rate (by default half the
//!    claims per second reached in 2), with latency counted from the moment
//!    each request was due, so that a stalled server is not hidden by
//!    clients that wait for it.
//!
//! Runs are bounded by time; nothing leaves the machine.

#[path = "../../tests/loadkit/mod.rs"]
mod loadkit;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use loadkit::{Backend, Client, FreshDb, Member, Res, Rng, Server, ms, percentile};
use serde_json::Value;

const PRODUCT_ID: &str = "load-city";
/// Share of requests that are new claims: 70% claims, a tenth of them retries.
const NEW_CLAIM_SHARE: f64 = 0.7 * 0.9;

struct Args {
    backend: Backend,
    postgres_url: String,
    members: u32,
    clients: usize,
    open_clients: usize,
    warmup: Duration,
    seconds: Duration,
    ceiling_seconds: Duration,
    /// Claims per second for the open-loop run; default half the closed-loop figure.
    rate: Option<f64>,
    server_args: Vec<String>,
    seed: u64,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        backend: Backend::Sqlite,
        postgres_url: std::env::var("PUHUI_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| loadkit::DEFAULT_POSTGRES_URL.to_owned()),
        members: 1_000,
        clients: 32,
        open_clients: 64,
        warmup: Duration::from_secs(3),
        seconds: Duration::from_secs(20),
        ceiling_seconds: Duration::from_secs(5),
        rate: None,
        server_args: Vec::new(),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // passed by `cargo bench`
        }
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => args.backend = Backend::parse(&value()?)?,
            "--postgres-url" => args.postgres_url = value()?,
            "--members" => args.members = number(value()?)? as u32,
            "--clients" => args.clients = number(value()?)? as usize,
            "--open-clients" => args.open_clients = number(value()?)? as usize,
            "--warmup" => args.warmup = Duration::from_secs_f64(number(value()?)?),
            "--seconds" => args.seconds = Duration::from_secs_f64(number(value()?)?),
            "--ceiling-seconds" => {
                args.ceiling_seconds = Duration::from_secs_f64(number(value()?)?)
            }
            "--rate" => args.rate = Some(number(value()?)?),
            "--server-arg" => args.server_args.push(value()?),
            "--seed" => args.seed = number(value()?)? as u64,
            "--help" | "-h" => {
                println!(
                    "options: --backend sqlite|postgres --postgres-url URL --members N \
                     --clients N --open-clients N --warmup S --seconds S --ceiling-seconds S \
                     --rate CLAIMS_PER_S --server-arg ARG (repeatable) --seed N"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_puhui"));
    println!(
        "# Claims load, {} backend, {} CPUs, {} members, {} closed-loop clients",
        args.backend.name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.members,
        args.clients
    );

    let ceiling = write_ceiling(&args)?;
    println!(
        "ceiling: {:.0} committed one-row write transactions/s on one connection \
         (p50 {:.2} ms, p99 {:.2} ms)",
        ceiling.per_second,
        ms(ceiling.p50_us),
        ms(ceiling.p99_us)
    );

    let db = FreshDb::new(args.backend, &args.postgres_url, "load")?;
    loadkit::load_product(
        &bin,
        &db,
        &loadkit::product_toml(PRODUCT_ID, "500000.00", "1000000.00"),
    )?;
    let server_args: Vec<&str> = args.server_args.iter().map(String::as_str).collect();
    let server = Server::start(&bin, &db, &server_args, true)?;
    let insurer = server.insurer.clone().ok_or("no insurer token printed")?;
    let started = Instant::now();
    let members = Arc::new(loadkit::enrol(
        &server.base,
        &insurer,
        PRODUCT_ID,
        args.members,
        8,
    )?);
    println!(
        "enrolled {} members in {:.1} s",
        members.len(),
        started.elapsed().as_secs_f64()
    );

    loadkit::settle_disk();
    let closed = drive(&server.base, &members, &args, Mode::Closed, args.seed)?;
    closed.print("closed loop", &ceiling);
    let rate = args.rate.unwrap_or(closed.claims_per_second() / 2.0);
    loadkit::settle_disk();
    let open = drive(
        &server.base,
        &members,
        &args,
        Mode::Open {
            claims_per_second: rate,
        },
        args.seed.wrapping_add(1),
    )?;
    open.print(&format!("open loop at {rate:.0} claims/s"), &ceiling);
    server.kill();
    Ok(())
}

struct Ceiling {
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
}

/// One-row write transactions in a loop on one connection of a fresh,
/// migrated database, through the same `write_transaction` the server uses.
fn write_ceiling(args: &Args) -> Res<Ceiling> {
    let db = FreshDb::new(args.backend, &args.postgres_url, "ceiling")?;
    let database = engine::Database::open(&db.url, 2).map_err(|e| e.to_string())?;
    let mut conn = database.get().map_err(|e| e.to_string())?;
    diesel::sql_query(
        "CREATE TABLE bench_ceiling (id BIGINT PRIMARY KEY, note TEXT NOT NULL, at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut id = 0_i64;
    while started.elapsed() < args.ceiling_seconds {
        id += 1;
        let t = Instant::now();
        engine::db::write_transaction(&mut conn, |c| {
            diesel::sql_query(format!(
                "INSERT INTO bench_ceiling (id, note, at) VALUES ({id}, 'claim {id}', {id})"
            ))
            .execute(c)
        })
        .map_err(|e: diesel::result::Error| e.to_string())?;
        latencies.push(t.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Ceiling {
        per_second: id as f64 / elapsed,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    })
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Closed,
    Open { claims_per_second: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Claim,
    Retry,
    Coverage,
    History,
}

const OPS: [Op; 4] = [Op::Claim, Op::Retry, Op::Coverage, Op::History];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Claim => "claim (new)",
            Op::Retry => "claim (retry, same key)",
            Op::Coverage => "coverage read",
            Op::History => "claim-history read",
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Op, Vec<u64>>,
    /// Decisions made: new claims answered 201 without a replay.
    decided: u64,
    errors: BTreeMap<String, u64>,
    window: f64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (op, mut l) in other.latencies {
            self.latencies.entry(op).or_default().append(&mut l);
        }
        self.decided += other.decided;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn claims_per_second(&self) -> f64 {
        self.decided as f64 / self.window
    }

    fn print(&self, title: &str, ceiling: &Ceiling) {
        let requests: usize = self.latencies.values().map(Vec::len).sum();
        let errors: u64 = self.errors.values().sum();
        println!(
            "{title}: {:.0} claims/s decided and committed ({:.0}% of the ceiling), \
             {:.0} requests/s, {errors} errors",
            self.claims_per_second(),
            100.0 * self.claims_per_second() / ceiling.per_second,
            requests as f64 / self.window
        );
        let mut all: Vec<u64> = self.latencies.values().flatten().copied().collect();
        all.sort_unstable();
        let line = |name: &str, l: &[u64]| {
            println!(
                "  {name:<26} n={:<7} p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms",
                l.len(),
                ms(percentile(l, 0.50)),
                ms(percentile(l, 0.99)),
                ms(percentile(l, 0.999)),
                ms(l.last().copied().unwrap_or(0))
            )
        };
        for op in OPS {
            if let Some(l) = self.latencies.get(&op) {
                let mut l = l.clone();
                l.sort_unstable();
                line(op.name(), &l);
            }
        }
        line("all requests", &all);
        for (k, v) in &self.errors {
            println!("  error {k}: {v}");
        }
    }
}

/// A claim sent earlier, kept to be retried with the same key.
struct Sent {
    member: usize,
    key: String,
    body: Value,
}

fn drive(base: &str, members: &Arc<Vec<Member>>, args: &Args, mode: Mode, seed: u64) -> Res<Tally> {
    let threads = match mode {
        Mode::Closed => args.clients,
        Mode::Open { .. } => args.open_clients,
    }
    .max(1);
    // One request per `interval` per thread, all kinds together.
    let interval = match mode {
        Mode::Closed => None,
        Mode::Open { claims_per_second } => Some(Duration::from_secs_f64(
            threads as f64 * NEW_CLAIM_SHARE / claims_per_second.max(0.1),
        )),
    };
    let started = Instant::now() + Duration::from_millis(50);
    let measure_from = started + args.warmup;
    let stop = measure_from + args.seconds;
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let members = Arc::clone(members);
                s.spawn(move || {
                    let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(t as u64));
                    let client = Client::new(base, Duration::from_secs(30));
                    let mut tally = Tally::default();
                    let mut sent: Vec<Sent> = Vec::new();
                    let mut n = 0_u64;
                    // Open loop: this thread's k-th request is due at
                    // started + (k + t / threads) * interval.
                    let offset = interval.map(|i| i.mul_f64(t as f64 / threads as f64));
                    loop {
                        let due = match (interval, offset) {
                            (Some(i), Some(o)) => started + o + i.mul_f64(n as f64),
                            _ => Instant::now().max(started),
                        };
                        if due >= stop {
                            break;
                        }
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        n += 1;
                        let roll = rng.unit();
                        let (op, result) = if roll < 0.7 {
                            if rng.unit() < 0.1 && !sent.is_empty() {
                                let i = rng.below(sent.len() as u64) as usize;
                                let s = &sent[i];
                                let reply = client.post_status(
                                    "/v1/claims",
                                    Some(&members[s.member].token),
                                    &s.key,
                                    &s.body,
                                );
                                (Op::Retry, reply)
                            } else {
                                let m = rng.below(members.len() as u64) as usize;
                                let body = loadkit::claim_body(&mut rng, members[m].id, 1_000_000);
                                let key = format!("s{seed}-t{t}-c{n}");
                                let reply = client.post_status(
                                    "/v1/claims",
                                    Some(&members[m].token),
                                    &key,
                                    &body,
                                );
                                if sent.len() < 64 {
                                    sent.push(Sent {
                                        member: m,
                                        key,
                                        body,
                                    });
                                } else {
                                    let i = rng.below(64) as usize;
                                    sent[i] = Sent {
                                        member: m,
                                        key,
                                        body,
                                    };
                                }
                                (Op::Claim, reply)
                            }
                        } else {
                            let m = &members[rng.below(members.len() as u64) as usize];
                            let (op, path) = if roll < 0.9 {
                                (Op::Coverage, format!("/v1/members/{}/coverage", m.id))
                            } else {
                                (Op::History, format!("/v1/members/{}/claims?limit=20", m.id))
                            };
                            (
                                op,
                                client.get_status(&path, Some(&m.token)).map(|s| (s, false)),
                            )
                        };
                        let finished = Instant::now();
                        if due < measure_from {
                            continue;
                        }
                        let latency = finished.saturating_duration_since(due).as_micros() as u64;
                        tally.latencies.entry(op).or_default().push(latency);
                        match (op, result) {
                            (Op::Claim, Ok((201, false))) => tally.decided += 1,
                            (Op::Retry, Ok((201, true))) => {}
                            (Op::Coverage | Op::History, Ok((200, _))) => {}
                            (_, Ok((status, replayed))) => {
                                *tally
                                    .errors
                                    .entry(format!(
                                        "{} HTTP {status} replayed={replayed}",
                                        op.name()
                                    ))
                                    .or_default() += 1
                            }
                            (_, Err(e)) => {
                                *tally
                                    .errors
                                    .entry(format!("{} transport: {e}", op.name()))
                                    .or_default() += 1
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut total = Tally {
        window: args.seconds.as_secs_f64(),
        ..Tally::default()
    };
    for t in tallies {
        total.merge(t);
    }
    Ok(total)
}
