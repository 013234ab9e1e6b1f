//! Group commit decides a batch of claims in memory and writes it set-wise.
//! This checks it against the one-claim-at-a-time path (itself checked
//! against an independent model in `simulation.rs`): the same seeded stream
//! of claims, retries, reused keys, refusals and reversals goes to two fresh
//! databases, one in batches of random sizes, the other claim by claim, and
//! every answer and the final ledger must agree. On both backends.

mod common;

use std::collections::BTreeMap;

use chrono::Duration;
use common::*;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use engine::DbConn;
use engine::audit;
use engine::domain::claim::{ClaimSubmission, ValidClaim, validate_claim};
use engine::store::claims::{self, BatchClaim, ClaimView, ReversalRequest};
use engine::store::{Keys, Recorded, WriteContext, enrollment, products};
use engine::{Database, StoreError};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const MEMBERS: u32 = 4;
const STEPS: usize = 240;

#[derive(Clone)]
struct Request {
    actor: &'static str,
    key: String,
    submission: ClaimSubmission,
}

enum Step {
    /// Claims sent together: as one batch to the first database, one by one
    /// to the second.
    Claims(Vec<Request>),
    /// Reverse the n-th claim that was decided.
    Reverse(usize),
}

fn submission(rng: &mut ChaCha8Rng, member_id: i64) -> ClaimSubmission {
    // Cover starts on the day of enrollment: an earlier day is denied.
    let date = today() - Duration::days(if rng.random_bool(0.9) { 0 } else { 1 });
    let value = if rng.random_bool(0.5) {
        json!({
            "member_id": member_id,
            "kind": "inpatient",
            "service_date": date.to_string(),
            "provider_id": *["H-001", "H-002"].choose(rng).unwrap(),
            "diagnosis": *["K35.8", "C34.1", "I21.0"].choose(rng).unwrap(),
            "items": [{
                "total": *["3000.00", "8000.00", "15000.00", "26000.00"].choose(rng).unwrap(),
                "basic_paid": "1000.00",
                "out_of_catalogue": "0",
            }],
        })
    } else {
        json!({
            "member_id": member_id,
            "kind": "specialty_drug",
            "service_date": date.to_string(),
            "provider_id": *["PH-001", "PH-002"].choose(rng).unwrap(),
            "diagnosis": "C34.1",
            "items": [{
                "drug": "L01EB04",
                "quantity": rng.random_range(1..3),
                "unit_price": *["15000.00", "30000.00"].choose(rng).unwrap(),
                "basic_paid": "0",
                "biomarkers": [{ "marker": "EGFR", "positive": rng.random_bool(0.8) }],
            }],
        })
    };
    serde_json::from_value(value).expect("claim json")
}

/// A seeded stream: mostly new claims for four members (limits are reached,
/// bills repeat), with retries of earlier keys (also within one batch),
/// keys reused for other claims, unknown members, future dates, and
/// reversals between batches.
fn script(seed: u64, member_ids: &[i64]) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sent: Vec<Request> = Vec::new();
    let mut steps = Vec::new();
    let mut claims_sent = 0;
    let mut n = 0;
    while n < STEPS {
        if claims_sent > 3 && rng.random_bool(0.08) {
            steps.push(Step::Reverse(rng.random_range(0..claims_sent / 2)));
            continue;
        }
        let size = rng.random_range(1..=12).min(STEPS - n);
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            n += 1;
            let roll = rng.random_range(0..100);
            let request = if roll < 15 && !sent.is_empty() {
                sent.choose(&mut rng).unwrap().clone()
            } else if roll < 22 && !sent.is_empty() {
                let earlier = sent.choose(&mut rng).unwrap();
                let member = *member_ids.choose(&mut rng).unwrap();
                Request {
                    submission: submission(&mut rng, member),
                    ..earlier.clone()
                }
            } else {
                let member = if roll < 25 {
                    999_999
                } else {
                    *member_ids.choose(&mut rng).unwrap()
                };
                let mut submission = submission(&mut rng, member);
                if (25..28).contains(&roll) {
                    submission.service_date = (today() + Duration::days(3)).to_string();
                }
                Request {
                    actor: ["provider:H-001", "provider:PH-001"]
                        .choose(&mut rng)
                        .unwrap(),
                    key: format!("k{n}"),
                    submission,
                }
            };
            sent.push(request.clone());
            batch.push(request);
        }
        claims_sent += batch.len();
        steps.push(Step::Claims(batch));
    }
    steps
}

fn setup(db: &Database, keys: &Keys) -> Vec<i64> {
    let mut conn = db.get().unwrap();
    products::load(
        &mut conn,
        &ctx(keys, "cli"),
        &product(&product_toml("city", "20000.00", 0, None)),
    )
    .unwrap();
    (1..=MEMBERS)
        .map(|serial| {
            let recorded = enrollment::enroll(
                &mut conn,
                &ctx(keys, "insurer:1"),
                &format!("enrol-{serial}"),
                &enrollment_request("city", serial, &[]),
            )
            .unwrap();
            recorded.json()["member"]["id"].as_i64().unwrap()
        })
        .collect()
}

/// An answer with the row ids taken out: PostgreSQL sequences leave gaps
/// where a batch reserved ids that replays and refusals did not use, so
/// the two databases number their rows differently.
fn without_ids(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "claim_id" | "decision_id"))
                .map(|(k, v)| (k.clone(), without_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_ids).collect()),
        other => other.clone(),
    }
}

fn answer(result: &Result<Recorded<ClaimView>, StoreError>) -> String {
    match result {
        Ok(r) => format!("ok replayed={} {}", r.replayed, without_ids(&r.json())),
        // Messages may name a claim id, which differs as above.
        Err(e) => format!("error {e:?}")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect(),
    }
}

/// Validates each claim as the HTTP edge does, then submits the valid ones
/// as one batch, as the claim writer does; results in the order given.
fn submit_validated(
    conn: &mut DbConn,
    requests: &[(WriteContext<'_>, &str, &ClaimSubmission)],
) -> Vec<Result<Recorded<ClaimView>, StoreError>> {
    let validated: Vec<Result<ValidClaim, StoreError>> = requests
        .iter()
        .map(|(ctx, _, submission)| {
            validate_claim(submission, ctx.today_china()).map_err(StoreError::Validation)
        })
        .collect();
    let batch: Vec<BatchClaim<'_>> = requests
        .iter()
        .zip(&validated)
        .filter_map(|((ctx, key, _), valid)| {
            valid.as_ref().ok().map(|claim| BatchClaim {
                ctx: ctx.clone(),
                idempotency_key: key,
                claim,
            })
        })
        .collect();
    let mut decided = claims::submit_batch(conn, &batch).into_iter();
    validated
        .into_iter()
        .map(|valid| match valid {
            Ok(_) => decided.next().expect("one result per valid claim"),
            Err(e) => Err(e),
        })
        .collect()
}

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = BigInt)]
    member_id: i64,
    #[diesel(sql_type = Text)]
    benefit: String,
    #[diesel(sql_type = BigInt)]
    deductible: i64,
    #[diesel(sql_type = BigInt)]
    paid: i64,
    #[diesel(sql_type = BigInt)]
    entries: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What both databases must end with: ledger sums per member and benefit,
/// and the number of rows of every table the claims write.
/// (member, benefit, deductible, paid, entries) per member and benefit,
/// and the row count of each table.
type FinalState = (Vec<(i64, String, i64, i64, i64)>, BTreeMap<String, i64>);

fn final_state(conn: &mut DbConn) -> FinalState {
    let sums: Vec<Sums> = diesel::sql_query(
        "SELECT member_id, benefit, CAST(SUM(deductible_fen) AS BIGINT) AS deductible, \
         CAST(SUM(paid_fen) AS BIGINT) AS paid, CAST(COUNT(*) AS BIGINT) AS entries \
         FROM ledger_entries GROUP BY member_id, benefit ORDER BY member_id, benefit",
    )
    .load(conn)
    .unwrap();
    let mut counts = BTreeMap::new();
    for table in [
        "claims",
        "decisions",
        "paid_items",
        "ledger_entries",
        "reversals",
        "idempotency_keys",
        "audit_events",
    ] {
        let c: Count =
            diesel::sql_query(format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"))
                .get_result(conn)
                .unwrap();
        counts.insert(table.to_owned(), c.n);
    }
    let sums = sums
        .into_iter()
        .map(|s| (s.member_id, s.benefit, s.deductible, s.paid, s.entries))
        .collect();
    (sums, counts)
}

fn run(batched: &TestDb, single: &TestDb, seed: u64) {
    let keys = keys();
    let members = setup(&batched.db, &keys);
    assert_eq!(setup(&single.db, &keys), members, "both set up alike");
    let mut a = batched.db.get().unwrap();
    let mut b = single.db.get().unwrap();
    // One clock for both, so that the answers agree to the microsecond.
    let now = chrono::Utc::now();
    let insurer = WriteContext {
        keys: &keys,
        actor: "insurer:1",
        now,
    };
    // (id in the batched database, id in the other) of each decided claim.
    let mut decided: Vec<(i64, i64)> = Vec::new();
    let mut batches_over_one = 0;
    for (step_index, step) in script(seed, &members).iter().enumerate() {
        match step {
            Step::Claims(requests) => {
                let requests_in: Vec<(WriteContext<'_>, &str, &ClaimSubmission)> = requests
                    .iter()
                    .map(|r| {
                        let ctx = WriteContext {
                            keys: &keys,
                            actor: r.actor,
                            now,
                        };
                        (ctx, r.key.as_str(), &r.submission)
                    })
                    .collect();
                let together = submit_validated(&mut a, &requests_in);
                assert_eq!(together.len(), requests.len());
                if requests.len() > 1 {
                    batches_over_one += 1;
                }
                for (request, got) in requests.iter().zip(&together) {
                    let ctx = WriteContext {
                        keys: &keys,
                        actor: request.actor,
                        now,
                    };
                    let alone = claims::submit(&mut b, &ctx, &request.key, &request.submission);
                    assert_eq!(
                        answer(got),
                        answer(&alone),
                        "{} seed {seed} step {step_index}: key {} of {}",
                        batched.backend,
                        request.key,
                        request.actor
                    );
                    if let (Ok(got), Ok(alone)) = (got, &alone)
                        && !got.replayed
                    {
                        let id = got.json()["id"].as_i64().unwrap();
                        // What the batch answered is what it stored.
                        let stored =
                            serde_json::to_value(claims::view(&mut a, id).unwrap()).unwrap();
                        assert_eq!(stored, got.json(), "{}: claim {id}", batched.backend);
                        decided.push((id, alone.json()["id"].as_i64().unwrap()));
                    }
                }
            }
            Step::Reverse(n) => {
                let Some((id_a, id_b)) = decided.get(*n).copied() else {
                    continue;
                };
                let request = ReversalRequest {
                    reason: "billed in error".into(),
                };
                let key = format!("rev-{step_index}");
                let ra = claims::reverse(&mut a, &insurer, &key, id_a, &request);
                let rb = claims::reverse(&mut b, &insurer, &key, id_b, &request);
                assert_eq!(answer(&ra), answer(&rb), "{}: reversal", batched.backend);
            }
        }
    }
    assert!(batches_over_one > 10, "the script sends real batches");
    assert!(decided.len() > 50, "most claims are decided");
    assert_eq!(
        final_state(&mut a),
        final_state(&mut b),
        "{} seed {seed}",
        batched.backend
    );
    for conn in [&mut a, &mut b] {
        let report = audit::verify(conn, &keys.audit, None).unwrap();
        assert!(report.valid, "{}: audit chain", batched.backend);
    }
}

#[test]
fn a_batch_decides_every_claim_as_if_it_were_sent_alone() {
    for seed in [1_u64, 2, 3] {
        run(&sqlite(), &sqlite(), seed);
        if let Ok(url) = std::env::var("PUHUI_TEST_POSTGRES_URL")
            && !url.is_empty()
        {
            run(&postgres(&url), &postgres(&url), seed);
        } else if seed == 1 {
            eprintln!(
                "notice: PUHUI_TEST_POSTGRES_URL is not set; the PostgreSQL pass of this test is skipped"
            );
        }
    }
}

/// Two claims of 700 items each: more rows than one INSERT statement takes,
/// so the batch writes them in several; the result is the same as alone.
#[test]
fn a_batch_with_more_rows_than_one_insert_is_written_whole() {
    let mut pairs = vec![(sqlite(), sqlite())];
    if let Ok(url) = std::env::var("PUHUI_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        pairs.push((postgres(&url), postgres(&url)));
    }
    for (batched, single) in &pairs {
        let keys = keys();
        let members = setup(&batched.db, &keys);
        setup(&single.db, &keys);
        let big = |member_id: i64, base: i64| -> ClaimSubmission {
            let items: Vec<Value> = (0..700)
                .map(|i| {
                    json!({
                        "total": format!("{}.00", base + i),
                        "basic_paid": "100.00",
                        "out_of_catalogue": "0",
                    })
                })
                .collect();
            serde_json::from_value(json!({
                "member_id": member_id,
                "kind": "inpatient",
                "service_date": today().to_string(),
                "provider_id": "H-001",
                "diagnosis": "K35.8",
                "items": items,
            }))
            .unwrap()
        };
        let first = big(members[0], 1_000);
        let second = big(members[1], 2_000);
        let now = chrono::Utc::now();
        let ctx = WriteContext {
            keys: &keys,
            actor: "provider:H-001",
            now,
        };
        let requests = [("big-1", &first), ("big-2", &second), ("big-1", &first)];
        let requests_in: Vec<(WriteContext<'_>, &str, &ClaimSubmission)> = requests
            .iter()
            .map(|(key, submission)| (ctx.clone(), *key, *submission))
            .collect();
        let mut a = batched.db.get().unwrap();
        let mut b = single.db.get().unwrap();
        let together = submit_validated(&mut a, &requests_in);
        for ((key, submission), got) in requests.iter().zip(&together) {
            let alone = claims::submit(&mut b, &ctx, key, submission);
            assert_eq!(answer(got), answer(&alone), "{}: {key}", batched.backend);
        }
        assert!(together[2].as_ref().unwrap().replayed);
        let (sums, counts) = final_state(&mut a);
        assert_eq!(counts["paid_items"], 1_400, "{}", batched.backend);
        assert_eq!((sums, counts), final_state(&mut b), "{}", batched.backend);
    }
}
