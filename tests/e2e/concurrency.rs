//! Many clients at once over HTTP: claims for the same few members that
//! together exceed the annual limit, each idempotency key sent twice at the
//! same moment. The limit is paid exactly, never more; each key has one
//! decision; nothing fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use serde_json::Value;

use crate::support::*;

const MEMBERS: usize = 3;
const CLAIMS_PER_MEMBER: usize = 8;
const THREADS: usize = 16;

/// "15200.00" -> 1_520_000 fen.
fn fen(amount: &Value) -> i64 {
    let text = amount.as_str().unwrap_or_else(|| panic!("amount {amount}"));
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    whole.parse::<i64>().unwrap() * 100 + format!("{frac:0<2}").parse::<i64>().unwrap()
}

#[test]
fn racing_clients_never_pay_past_the_limit_and_each_key_decides_once() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let members: Vec<i64> = (0..MEMBERS as u32)
            .map(|i| server.enrol(40 + i, &[]).0)
            .collect();
        // Each claim is eligible for 19,000 (total 20,000 less 1,000 paid by
        // basic insurance, plus a few fen so no two are duplicates): about
        // 15,200 payable, so four claims exhaust the 50,000 limit and the
        // other four find it used up.
        let mut requests = Vec::new();
        for (m, member) in members.iter().enumerate() {
            for c in 0..CLAIMS_PER_MEMBER {
                let total = format!("20000.{:02}", m * CLAIMS_PER_MEMBER + c);
                let key = format!("race-{m}-{c}");
                let body = inpatient_claim(*member, &total);
                // The same key twice, next to each other, so the two copies
                // are in flight together.
                requests.push((key.clone(), body.clone()));
                requests.push((key, body));
            }
        }
        let next = AtomicUsize::new(0);
        let barrier = Barrier::new(THREADS);
        let answers: Mutex<Vec<(String, u16, Value)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    barrier.wait();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((key, body)) = requests.get(i) else {
                            break;
                        };
                        let (status, answer) =
                            server.post("/v1/claims", Some(&server.insurer), Some(key), body);
                        answers.lock().unwrap().push((key.clone(), status, answer));
                    }
                });
            }
        });
        let answers = answers.into_inner().unwrap();
        assert_eq!(answers.len(), requests.len());

        let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (key, status, answer) in answers {
            assert_eq!(status, 201, "{}: {key}: {answer}", server.backend);
            by_key.entry(key).or_default().push(answer);
        }
        let mut paid: BTreeMap<i64, i64> = BTreeMap::new();
        for (key, copies) in &by_key {
            assert_eq!(copies.len(), 2);
            assert_eq!(
                copies[0]["id"], copies[1]["id"],
                "{}: key {key} gave two claims",
                server.backend
            );
            assert_eq!(copies[0]["decision"], copies[1]["decision"]);
            let member = copies[0]["member_id"].as_i64().unwrap();
            *paid.entry(member).or_default() += fen(&copies[0]["decision"]["totals"]["payable"]);
        }
        assert_eq!(by_key.len(), MEMBERS * CLAIMS_PER_MEMBER);

        for member in &members {
            assert_eq!(
                paid[member], 5_000_000,
                "{}: member {member} was paid {} fen against a 50,000.00 limit",
                server.backend, paid[member]
            );
            let (status, cover) = server.get(
                &format!("/v1/members/{member}/coverage"),
                Some(&server.insurer),
            );
            assert_eq!(status, 200);
            let inpatient = cover["products"][0]["benefits"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["benefit"] == "inpatient")
                .unwrap()
                .clone();
            assert_eq!(inpatient["limit_used"], "50000.00", "{}", server.backend);
            assert_eq!(inpatient["limit_left"], "0.00");
            assert_eq!(inpatient["deductible_met"], "1000.00");
            let (_, page) = server.get(
                &format!("/v1/members/{member}/claims?limit=100"),
                Some(&server.insurer),
            );
            assert_eq!(
                page["claims"].as_array().unwrap().len(),
                CLAIMS_PER_MEMBER,
                "{}: one stored claim per key",
                server.backend
            );
        }
        assert_eq!(server.get("/readyz", None).0, 200);
        let (status, report) = server.get("/v1/audit/verify", Some(&server.auditor));
        assert_eq!(status, 200);
        assert_eq!(report["valid"], true, "{report}");
    }
}
