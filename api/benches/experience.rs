//! Experience study benchmark: a synthetic product year loaded in bulk, then the study timed.
//!
//! ```text
//! cargo bench -p puhui --bench experience -- --database-url postgres://postgres@127.0.0.1:5432/bench \
//!     [--members 7400000] [--claims 300000] [--as-of 2027-03-31] [--runs 3]
//! ```
//!
//! The database must be empty (a fresh one): it loads the demo product `xiamen-2026`, fills it
//! through `engine::store::experience::bulk_load` (multi-row inserts, not requests) with
//! members whose ages follow the morbidity table's shares, a tenth declaring a condition, cover
//! starting over the enrolment window, and claims with payment delays of a few months, then
//! runs the whole study (the three GROUP BY queries and the pure computation) `--runs` times.
//!
//! `--fill-members N` (PostgreSQL) then adds N more members and enrollments in the database
//! itself (`INSERT ... SELECT FROM generate_series`, ages uniform over 0-99, the same take-up
//! pattern), to reach the full scale faster than the bulk loader's round trips allow on a small
//! machine; `--study-only` skips loading and studies what the database holds.

use std::time::Instant;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use engine::Database;
use engine::domain::product::Product;
use engine::store::experience::{self, SyntheticClaim, SyntheticMember, years_before};
use engine::store::{Keys, WriteContext, products};

const DEMO: &str = include_str!("../../products/xiamen-2026.toml");

/// Population shares of the age bands (the morbidity table's, both sexes and conditions).
const BANDS: [(u32, u32, f64); 7] = [
    (0, 17, 0.215),
    (18, 39, 0.300),
    (40, 54, 0.230),
    (55, 64, 0.120),
    (65, 74, 0.085),
    (75, 84, 0.038),
    (85, 99, 0.012),
];

/// splitmix64: a small seeded generator, enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Args {
    database_url: String,
    members: usize,
    claims: usize,
    as_of: NaiveDate,
    runs: usize,
    fill_members: usize,
    study_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        database_url: String::new(),
        members: 7_400_000,
        claims: 300_000,
        as_of: NaiveDate::from_ymd_opt(2027, 3, 31).ok_or("date")?,
        runs: 3,
        fill_members: 0,
        study_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        if flag == "--study-only" {
            args.study_only = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--database-url" => args.database_url = value,
            "--members" => args.members = value.parse().map_err(|e| bad(&e))?,
            "--claims" => args.claims = value.parse().map_err(|e| bad(&e))?,
            "--as-of" => args.as_of = value.parse().map_err(|e| bad(&e))?,
            "--runs" => args.runs = value.parse().map_err(|e| bad(&e))?,
            "--fill-members" => args.fill_members = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.database_url.is_empty() {
        return Err("--database-url is required (a fresh database)".into());
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let db = Database::open(&args.database_url, 2).map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let keys = Keys::derive(b"experience benchmark key, 32 bytes or more");
    let product = Product::from_toml_str(DEMO).map_err(|e| e.to_string())?;
    let ctx = WriteContext {
        keys: &keys,
        actor: "bench",
        now: chrono::Utc::now(),
    };
    products::load(&mut conn, &ctx, &product).map_err(|e| e.to_string())?;
    if !args.study_only {
        load(&mut conn, &product, &args)?;
    }
    if args.fill_members > 0 {
        fill(&mut conn, &product, args.fill_members)?;
    }
    if let DatabaseUrl::Postgres = DatabaseUrl::of(&args.database_url) {
        use diesel::connection::SimpleConnection;
        if let engine::DbConn::Postgres(c) = &mut *conn {
            // What autovacuum does to a table this size soon after a bulk load: statistics,
            // and the visibility map that lets the exposure query read its index alone.
            for statement in ["VACUUM (ANALYZE) enrollments", "ANALYZE"] {
                c.batch_execute(statement).map_err(|e| e.to_string())?;
            }
        }
    }
    study(&mut conn, &product, &args)
}

fn load(conn: &mut engine::DbConn, product: &Product, args: &Args) -> Result<(), String> {
    let start = product.period_start;
    let close = product.enrollment_close;
    let window = (close - start).num_days().max(0) as u64 + 1;
    let mut rng = Rng(20_270_331);
    let load_started = Instant::now();
    let members: Vec<SyntheticMember> = (0..args.members)
        .map(|_| {
            let mut u = rng.uniform();
            let mut band = BANDS[BANDS.len() - 1];
            for b in BANDS {
                if u < b.2 {
                    band = b;
                    break;
                }
                u -= b.2;
            }
            let age = band.0 + rng.below(u64::from(band.1 - band.0 + 1)) as u32;
            let birth =
                years_before(start, age).unwrap_or(start) - Duration::days(rng.below(365) as i64);
            // Most enrol in the first weeks.
            let offset = if rng.uniform() < 0.7 {
                0
            } else {
                rng.below(window)
            };
            SyntheticMember {
                birth_date: birth,
                sex: if rng.next() & 1 == 0 {
                    "male"
                } else {
                    "female"
                },
                declared_conditions: if rng.uniform() < 0.1 {
                    "[\"C34.1\"]"
                } else {
                    "[]"
                },
                coverage_start: start + Duration::days(offset as i64),
            }
        })
        .collect();
    let horizon = (args.as_of - start).num_days().max(1) as u64;
    let claims: Vec<SyntheticClaim> = (0..args.claims)
        .map(|_| {
            let member = rng.below(members.len() as u64) as usize;
            let service = start + Duration::days(rng.below(horizon) as i64);
            let service = service.max(members[member].coverage_start);
            let delay_days = (-(1.0 - rng.uniform()).ln() * 45.0) as i64;
            let paid_on = service + Duration::days(delay_days);
            let amount = (2_000_000.0 * (-(1.0 - rng.uniform()).ln())) as i64 + 100;
            let drug = rng.uniform() < 0.2;
            let when = NaiveDateTime::new(
                paid_on,
                NaiveTime::from_hms_opt(3, 0, 0).unwrap_or_default(),
            );
            let mut payments = vec![(when, amount)];
            if rng.uniform() < 0.01 {
                payments.push((when + Duration::days(20), -amount));
            }
            SyntheticClaim {
                member,
                benefit: if drug { "specialty_drug" } else { "inpatient" },
                service_date: service,
                payments,
            }
        })
        .collect();
    let generated = load_started.elapsed();
    experience::bulk_load(
        conn,
        &product.id,
        "bench",
        &members,
        &claims,
        NaiveDateTime::new(start, NaiveTime::MIN),
    )
    .map_err(|e| e.to_string())?;
    let loaded = load_started.elapsed();
    println!(
        "loaded {} members and {} claims in {:.1} s (generation {:.1} s)",
        args.members,
        args.claims,
        loaded.as_secs_f64(),
        generated.as_secs_f64()
    );
    Ok(())
}

/// Tops the product up with `n` members and enrollments generated by PostgreSQL itself.
fn fill(conn: &mut engine::DbConn, product: &Product, n: usize) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let engine::DbConn::Postgres(c) = conn else {
        return Err("--fill-members needs PostgreSQL".into());
    };
    let started = Instant::now();
    let start = product.period_start;
    let window = (product.enrollment_close - start).num_days().max(0) + 1;
    let chunk = 500_000;
    let mut done = 0;
    while done < n {
        let count = chunk.min(n - done);
        c.batch_execute(&format!(
            "WITH m AS ( \
               INSERT INTO members (resident_id_hash, resident_id_masked, name, phone, birth_date, sex, created_at) \
               SELECT 'fill:{done}:' || g, 'synthetic', 'synthetic', '', \
                      DATE '{start}' - (floor(random() * 36500))::int, \
                      CASE WHEN random() < 0.5 THEN 'male' ELSE 'female' END, TIMESTAMP '{start} 00:00:00' \
               FROM generate_series(1, {count}) g RETURNING id, birth_date, sex) \
             INSERT INTO enrollments (member_id, product_id, product_version_id, insurance_type, \
               declared_conditions, enrolled_on, coverage_start, waiting_waived, enrolled_by, created_at, \
               age_band, sex, preexisting) \
             SELECT id, '{id}', (SELECT max(id) FROM product_versions WHERE product_id = '{id}'), \
               'urban_employee', CASE WHEN pre THEN '[\"C34.1\"]' ELSE '[]' END, d, d, false, \
               'synthetic', TIMESTAMP '{start} 00:00:00', \
               CASE WHEN age >= 85 THEN '85+' WHEN age >= 75 THEN '75-84' WHEN age >= 65 THEN '65-74' \
                    WHEN age >= 55 THEN '55-64' WHEN age >= 40 THEN '40-54' WHEN age >= 18 THEN '18-39' \
                    ELSE '0-17' END, \
               sex, pre \
             FROM (SELECT id, sex, random() < 0.1 AS pre, \
                     CAST(extract(year FROM age(DATE '{start}', birth_date)) AS INTEGER) AS age, \
                     DATE '{start}' + CASE WHEN random() < 0.7 THEN 0 \
                     ELSE floor(random() * {window})::int END AS d FROM m) x",
            id = product.id,
        ))
        .map_err(|e| e.to_string())?;
        done += count;
    }
    println!(
        "filled {n} more members and enrollments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn study(conn: &mut engine::DbConn, product: &Product, args: &Args) -> Result<(), String> {
    let basis_started = Instant::now();
    let basis = puhui::experience::default_basis()?;
    println!(
        "basis (exact payout laws of 28 groups x 2 benefits) built in {:.2} s",
        basis_started.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for run in 0..args.runs {
        let t = Instant::now();
        let study = puhui::experience::run(conn, &product.id, args.as_of, basis)
            .map_err(|e| e.to_string())?;
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        println!(
            "run {}: study in {:.2} s: {} members, {:.0} member-years, paid {:.0}, IBNR {:.0} (SE {:.0}), {} A/E rows",
            run + 1,
            s,
            study.members,
            study.member_years,
            study.paid,
            study.ibnr.unwrap_or(f64::NAN),
            study.ibnr_se.unwrap_or(f64::NAN),
            study.actual_vs_expected.len()
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "study time: min {:.2} s, median {:.2} s, max {:.2} s over {} runs",
        times.first().copied().unwrap_or(0.0),
        times.get(times.len() / 2).copied().unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0),
        times.len()
    );
    Ok(())
}

enum DatabaseUrl {
    Postgres,
    Other,
}

impl DatabaseUrl {
    fn of(url: &str) -> Self {
        if url.starts_with("postgres") {
            DatabaseUrl::Postgres
        } else {
            DatabaseUrl::Other
        }
    }
}
