//! Storage on both backends: migrations, products, enrollment, claims,
//! reversals, appeals, concurrency and the audit chain.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use diesel::prelude::*;
use diesel::sql_types::Text;
use engine::StoreError;
use engine::audit::{self, ChainHead};
use engine::db::{DbConn, migrate, revert_all};
use engine::domain::adjudication::AppealEvidence;
use engine::domain::money::Fen;
use engine::store::claims::{self, ReversalRequest};
use engine::store::{enrollment, products};

#[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

fn columns(conn: &mut DbConn) -> BTreeSet<(String, String)> {
    let sql = match conn {
        DbConn::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
             AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'"
        }
        DbConn::Postgres(_) => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name <> '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(sql)
        .load::<Column>(conn)
        .expect("list columns")
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect()
}

#[test]
fn migrations_round_trip_and_both_backends_have_the_same_columns() {
    let mut seen: Vec<BTreeSet<(String, String)>> = Vec::new();
    for t in backends() {
        let mut conn = t.db.get().unwrap();
        let before = columns(&mut conn);
        assert!(
            before.contains(&("ledger_entries".into(), "paid_fen".into())),
            "{}",
            t.backend
        );
        revert_all(&mut conn).unwrap();
        assert!(
            columns(&mut conn).is_empty(),
            "{}: down migrations leave tables",
            t.backend
        );
        migrate(&mut conn).unwrap();
        assert_eq!(
            columns(&mut conn),
            before,
            "{}: up/down/up changes the schema",
            t.backend
        );
        seen.push(before);
    }
    if seen.len() == 2 {
        assert_eq!(seen[0], seen[1], "SQLite and PostgreSQL schemas differ");
    }
}

#[test]
fn a_product_keeps_the_hash_of_its_pricing_scenario_and_a_changed_one_is_a_new_version() {
    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        let ctx = ctx(&keys, "cli");
        let mut priced = product(&product_toml("city-p", "50000.00", 0, None));
        priced.pricing_scenario = Some("scenarios/city-p.toml".into());
        let (a, sha_a) = ("a".repeat(64), Some("a".repeat(64)));
        let (v1, o1) = products::load_priced(&mut conn, &ctx, &priced, Some(&a)).unwrap();
        assert_eq!((v1.version, o1), (1, products::LoadOutcome::NewVersion));
        assert_eq!(
            products::pricing_scenario_hash(&mut conn, v1.version_id).unwrap(),
            sha_a,
            "{}",
            t.backend
        );
        let (_, again) = products::load_priced(&mut conn, &ctx, &priced, Some(&a)).unwrap();
        assert_eq!(again, products::LoadOutcome::Unchanged, "{}", t.backend);
        // The same terms on an edited scenario file: the basis changed, so a new version.
        let b = "b".repeat(64);
        let (v2, o2) = products::load_priced(&mut conn, &ctx, &priced, Some(&b)).unwrap();
        assert_eq!((v2.version, o2), (2, products::LoadOutcome::NewVersion));
        assert_eq!(
            products::pricing_scenario_hash(&mut conn, v2.version_id)
                .unwrap()
                .as_deref(),
            Some(b.as_str())
        );
        // A named scenario needs its hash, and a hash needs a named scenario.
        assert!(products::load_priced(&mut conn, &ctx, &priced, None).is_err());
        let plain = product(&product_toml("city-q", "50000.00", 0, None));
        assert!(products::load_priced(&mut conn, &ctx, &plain, Some(&a)).is_err());
        let (q, _) = products::load(&mut conn, &ctx, &plain).unwrap();
        assert_eq!(
            products::pricing_scenario_hash(&mut conn, q.version_id).unwrap(),
            None
        );
    }
}

#[test]
fn loading_a_product_versions_it_only_when_it_changes() {
    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        let ctx = ctx(&keys, "cli");
        let p1 = product(&product_toml("city-a", "50000.00", 0, None));
        let (v1, o1) = products::load(&mut conn, &ctx, &p1).unwrap();
        assert_eq!((v1.version, o1), (1, products::LoadOutcome::NewVersion));
        let (again, o2) = products::load(&mut conn, &ctx, &p1).unwrap();
        assert_eq!((again.version, o2), (1, products::LoadOutcome::Unchanged));
        let p2 = product(&product_toml("city-a", "60000.00", 0, None));
        let (v2, _) = products::load(&mut conn, &ctx, &p2).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(
            products::current(&mut conn, "city-a").unwrap().version_id,
            v2.version_id
        );
        assert_eq!(
            products::version(&mut conn, v1.version_id).unwrap().product,
            p1
        );
        assert_eq!(products::list_current(&mut conn).unwrap().len(), 1);
    }
}

fn setup(t: &TestDb, keys: &engine::store::Keys, inpatient_limit: &str) -> i64 {
    let mut conn = t.db.get().unwrap();
    products::load(
        &mut conn,
        &ctx(keys, "cli"),
        &product(&product_toml("city", inpatient_limit, 0, None)),
    )
    .unwrap();
    let recorded = enrollment::enroll(
        &mut conn,
        &ctx(keys, "insurer:1"),
        "enrol-1",
        &enrollment_request("city", 1, &[]),
    )
    .unwrap();
    recorded.json()["member"]["id"].as_i64().unwrap()
}

fn count(conn: &mut DbConn, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .unwrap()
        .n
}

#[test]
fn enrollment_is_unique_idempotent_and_stores_nothing_when_refused() {
    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        products::load(
            &mut conn,
            &ctx(&keys, "cli"),
            &product(&product_toml("city", "50000.00", 30, None)),
        )
        .unwrap();
        let insurer = ctx(&keys, "insurer:1");
        let request = enrollment_request("city", 7, &["C34.1"]);
        let first = enrollment::enroll(&mut conn, &insurer, "k1", &request).unwrap();
        assert!(!first.replayed);
        let replay = enrollment::enroll(&mut conn, &insurer, "k1", &request).unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.json(), first.json());
        // Same key, other content: conflict.
        let other = enrollment_request("city", 8, &[]);
        assert!(matches!(
            enrollment::enroll(&mut conn, &insurer, "k1", &other),
            Err(StoreError::IdempotencyKeyReused)
        ));
        // Same person, new key: a conflict, not a second member.
        match enrollment::enroll(&mut conn, &insurer, "k2", &request) {
            Err(StoreError::Conflict { code, .. }) => assert_eq!(code, "already_enrolled"),
            other => panic!("{}: expected already_enrolled, got {other:?}", t.backend),
        }
        assert_eq!(count(&mut conn, "members"), 1);
        // A bad ID stores nothing and leaves the key unused.
        let mut bad = enrollment_request("city", 9, &[]);
        bad.resident_id.replace_range(
            17..18,
            if bad.resident_id.ends_with('1') {
                "2"
            } else {
                "1"
            },
        );
        assert!(matches!(
            enrollment::enroll(&mut conn, &insurer, "k3", &bad),
            Err(StoreError::Validation(_))
        ));
        assert_eq!(count(&mut conn, "members"), 1);
        let good = enrollment_request("city", 9, &[]);
        assert!(
            !enrollment::enroll(&mut conn, &insurer, "k3", &good)
                .unwrap()
                .replayed
        );
        // The ID is stored only hashed and masked.
        let member = &first.json()["member"];
        let masked = member["resident_id_masked"].as_str().unwrap();
        assert_eq!(masked.len(), 18);
        assert!(masked.contains("**********"));
        assert_eq!(member["enrollments"][0]["declared_conditions"][0], "C34.1");
        let waiting = member["enrollments"][0]["first_covered_day"]
            .as_str()
            .unwrap();
        // Day of coverage start counts as day 1: 30 waiting days end the day before start + 30.
        assert_eq!(waiting, (today() + chrono::Duration::days(30)).to_string());
    }
}

#[test]
fn renewal_waives_the_waiting_period() {
    for t in backends() {
        let keys = keys();
        let mut conn = t.db.get().unwrap();
        let cli = ctx(&keys, "cli");
        // city-b renews city-a; city-c renews a product the member never had.
        products::load(
            &mut conn,
            &cli,
            &product(&product_toml("city-a", "50000.00", 0, None)),
        )
        .unwrap();
        products::load(
            &mut conn,
            &cli,
            &product(&product_toml("city-b", "50000.00", 60, Some("city-a"))),
        )
        .unwrap();
        products::load(
            &mut conn,
            &cli,
            &product(&product_toml("city-c", "50000.00", 60, Some("city-x"))),
        )
        .unwrap();
        let insurer = ctx(&keys, "insurer:1");
        enrollment::enroll(
            &mut conn,
            &insurer,
            "a",
            &enrollment_request("city-a", 3, &[]),
        )
        .unwrap();
        let renewed = enrollment::enroll(
            &mut conn,
            &insurer,
            "b",
            &enrollment_request("city-b", 3, &[]),
        )
        .unwrap();
        let not_renewed = enrollment::enroll(
            &mut conn,
            &insurer,
            "c",
            &enrollment_request("city-c", 3, &[]),
        )
        .unwrap();
        let find = |body: &serde_json::Value, product: &str| {
            body["member"]["enrollments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["product_id"] == product)
                .cloned()
                .unwrap()
        };
        assert_eq!(find(&renewed.json(), "city-b")["waiting_waived"], true);
        assert_eq!(find(&not_renewed.json(), "city-c")["waiting_waived"], false);
        assert_eq!(count(&mut conn, "members"), 1);
    }
}

fn payable(body: &serde_json::Value) -> String {
    body["decision"]["totals"]["payable"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn claims_are_decided_stored_and_replayed() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys, "50000.00");
        let mut conn = t.db.get().unwrap();
        let provider = ctx(&keys, "provider:H-001");
        // E = 6,000 - 1,000 = 5,000; deductible 1,000; 80% of 4,000 = 3,200.
        let claim = inpatient_claim(member, "6000.00", "1000.00", "K35.8");
        let first = claims::submit(&mut conn, &provider, "c1", &claim).unwrap();
        assert_eq!(first.json()["status"], "paid", "{}", t.backend);
        assert_eq!(payable(&first.json()), "3200.00");
        let again = claims::submit(&mut conn, &provider, "c1", &claim).unwrap();
        assert!(again.replayed);
        assert_eq!(again.json(), first.json());
        assert_eq!(count(&mut conn, "claims"), 1);
        // The same bill under another key is a duplicate, not a second payment.
        let dup = claims::submit(&mut conn, &provider, "c2", &claim).unwrap();
        assert_eq!(dup.json()["status"], "denied");
        assert_eq!(
            dup.json()["decision"]["items"][0]["reasons"][0],
            "duplicate"
        );
        let cover = enrollment::coverage(&mut conn, member).unwrap();
        let inpatient = &cover.products[0].benefits[0];
        assert_eq!(inpatient.deductible_met, Fen(100_000));
        assert_eq!(inpatient.limit_used, Fen(320_000));
        // Unknown member: field error, nothing stored, key unused.
        let stranger = inpatient_claim(member + 1000, "6000.00", "1000.00", "K35.8");
        match claims::submit(&mut conn, &provider, "c3", &stranger) {
            Err(StoreError::Validation(e)) => assert!(e.has_code("unknown_member")),
            other => panic!("expected unknown_member, got {other:?}"),
        }
        assert_eq!(count(&mut conn, "claims"), 2);
        let page = claims::list_for_member(&mut conn, member, None, 1).unwrap();
        assert_eq!(page.claims.len(), 1);
        let next = claims::list_for_member(&mut conn, member, page.next_cursor, 1).unwrap();
        assert_eq!(next.claims.len(), 1);
        assert!(next.next_cursor.is_none());
        assert_ne!(page.claims[0].id, next.claims[0].id);
    }
}

#[test]
fn reversal_restores_balances_exactly_and_only_once() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys, "50000.00");
        let mut conn = t.db.get().unwrap();
        let provider = ctx(&keys, "provider:H-001");
        let insurer = ctx(&keys, "insurer:1");
        let before = enrollment::coverage(&mut conn, member).unwrap();
        let paid = claims::submit(
            &mut conn,
            &provider,
            "c1",
            &inpatient_claim(member, "6000.00", "1000.00", "K35.8"),
        )
        .unwrap();
        let id = paid.json()["id"].as_i64().unwrap();
        // The explanation of benefits shows the cover left as the coverage
        // screen does.
        let paid_cover = enrollment::coverage(&mut conn, member).unwrap();
        let inpatient = serde_json::to_value(&paid_cover.products[0].benefits[0]).unwrap();
        assert_eq!(inpatient["benefit"], "inpatient");
        let shown = &paid.json()["decision"]["benefit_balance"];
        for field in [
            "deductible",
            "deductible_met",
            "deductible_left",
            "annual_limit",
            "limit_used",
            "limit_left",
        ] {
            assert_eq!(shown[field], inpatient[field], "{}: {field}", t.backend);
        }
        let reason = ReversalRequest {
            reason: "billed twice by the hospital".into(),
        };
        let reversed = claims::reverse(&mut conn, &insurer, "r1", id, &reason).unwrap();
        assert_eq!(reversed.json()["status"], "reversed");
        // The reversal states what it gave back: the decision's deductible
        // and payable, for its one benefit.
        let totals = &paid.json()["decision"]["totals"];
        assert_eq!(
            reversed.json()["reversal"]["reversed"],
            serde_json::json!([{
                "benefit": "inpatient",
                "deductible_met": totals["deductible_applied"],
                "paid": totals["payable"],
            }])
        );
        let after = enrollment::coverage(&mut conn, member).unwrap();
        assert_eq!(
            serde_json::to_value(&after.products[0].benefits).unwrap(),
            serde_json::to_value(&before.products[0].benefits).unwrap()
        );
        match claims::reverse(&mut conn, &insurer, "r2", id, &reason) {
            Err(StoreError::Conflict { code, .. }) => assert_eq!(code, "already_reversed"),
            other => panic!("expected already_reversed, got {other:?}"),
        }
        // The same bill can be claimed again once the first is reversed.
        let again = claims::submit(
            &mut conn,
            &provider,
            "c2",
            &inpatient_claim(member, "6000.00", "1000.00", "K35.8"),
        )
        .unwrap();
        assert_eq!(again.json()["status"], "paid");
        // A claim with nothing paid cannot be reversed.
        let denied = claims::submit(
            &mut conn,
            &provider,
            "c3",
            &drug_claim(member, 1, "100.00", false),
        )
        .unwrap();
        let denied_id = denied.json()["id"].as_i64().unwrap();
        assert_eq!(denied.json()["status"], "denied", "EGFR negative");
        match claims::reverse(&mut conn, &insurer, "r3", denied_id, &reason) {
            Err(StoreError::Conflict { code, .. }) => assert_eq!(code, "not_reversible"),
            other => panic!("expected not_reversible, got {other:?}"),
        }
    }
}

#[test]
fn appeal_decides_denied_items_again_with_new_evidence() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys, "50000.00");
        let mut conn = t.db.get().unwrap();
        let pharmacy = ctx(&keys, "provider:PH-001");
        let first = claims::submit(
            &mut conn,
            &pharmacy,
            "d1",
            &drug_claim(member, 2, "1000.00", false),
        )
        .unwrap();
        assert_eq!(first.json()["status"], "denied");
        assert_eq!(
            first.json()["decision"]["items"][0]["reasons"][0],
            "biomarker_required"
        );
        let id = first.json()["id"].as_i64().unwrap();
        let evidence: AppealEvidence = serde_json::from_value(serde_json::json!({
            "items": [{ "index": 0, "biomarkers": [{ "marker": "egfr", "positive": true }] }]
        }))
        .unwrap();
        let appealed = claims::appeal(&mut conn, &pharmacy, "a1", id, &evidence).unwrap();
        assert_eq!(appealed.json()["status"], "paid");
        assert_eq!(appealed.json()["decisions"].as_array().unwrap().len(), 2);
        assert_eq!(appealed.json()["decision"]["sequence"], 2);
        // 70% of 2,000 with no deductible.
        assert_eq!(payable(&appealed.json()), "1400.00");
        match claims::appeal(&mut conn, &pharmacy, "a2", id, &evidence) {
            Err(StoreError::Conflict { code, .. }) => assert_eq!(code, "not_appealable"),
            other => panic!("expected not_appealable, got {other:?}"),
        }
    }
}

#[test]
fn concurrent_claims_for_one_member_never_pay_past_the_limit() {
    for t in backends() {
        let keys = Arc::new(keys());
        // Limit 10,000; each claim has E = 3,000 (after a 1,000 deductible on
        // the first), 16 claims in all: far more than the limit.
        let member = setup(&t, &keys, "10000.00");
        let db = t.db.clone();
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let db = db.clone();
                let keys = Arc::clone(&keys);
                std::thread::spawn(move || {
                    let mut conn = db.get().unwrap();
                    for i in 0..2 {
                        let provider = ctx(&keys, "provider:H-001");
                        // Distinct totals, so no claim is a duplicate of another.
                        let total = format!("{}.00", 4_000 + thread * 10 + i);
                        let claim = inpatient_claim(member, &total, "1000.00", "K35.8");
                        let key = format!("t{thread}-{i}");
                        claims::submit(&mut conn, &provider, &key, &claim).unwrap();
                    }
                })
            })
            .collect();
        for handle in threads {
            handle.join().unwrap();
        }
        let mut conn = t.db.get().unwrap();
        let cover = enrollment::coverage(&mut conn, member).unwrap();
        let inpatient = &cover.products[0].benefits[0];
        assert_eq!(inpatient.limit_used, Fen(1_000_000), "{}", t.backend);
        assert_eq!(inpatient.deductible_met, Fen(100_000), "{}", t.backend);
        assert_eq!(count(&mut conn, "claims"), 16);
    }
}

#[test]
fn racing_requests_with_one_key_yield_one_decision() {
    for t in backends() {
        let keys = Arc::new(keys());
        let member = setup(&t, &keys, "50000.00");
        let db = t.db.clone();
        let bodies: Vec<serde_json::Value> = (0..6)
            .map(|_| {
                let db = db.clone();
                let keys = Arc::clone(&keys);
                std::thread::spawn(move || {
                    let mut conn = db.get().unwrap();
                    let provider = ctx(&keys, "provider:H-001");
                    let claim = inpatient_claim(member, "6000.00", "1000.00", "K35.8");
                    claims::submit(&mut conn, &provider, "same-key", &claim)
                        .unwrap()
                        .json()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{}", t.backend);
        let mut conn = t.db.get().unwrap();
        assert_eq!(count(&mut conn, "claims"), 1);
        assert_eq!(count(&mut conn, "decisions"), 1);
    }
}

#[test]
fn audit_chain_catches_an_edited_row_and_deleted_newest_events() {
    for t in backends() {
        let keys = keys();
        let member = setup(&t, &keys, "50000.00");
        let mut conn = t.db.get().unwrap();
        let provider = ctx(&keys, "provider:H-001");
        claims::submit(
            &mut conn,
            &provider,
            "c1",
            &inpatient_claim(member, "6000.00", "1000.00", "K35.8"),
        )
        .unwrap();
        let head: ChainHead = audit::head(&mut conn).unwrap().unwrap();
        let report = audit::verify(&mut conn, &keys.audit, Some(&head)).unwrap();
        assert!(report.valid, "{}: {report:?}", t.backend);
        assert_eq!(report.events_checked, head.seq as u64);
        // Another key cannot verify the chain.
        let wrong = engine::store::Keys::derive(b"another master key of 32 bytes or more");
        assert!(!audit::verify(&mut conn, &wrong.audit, None).unwrap().valid);

        claims::submit(
            &mut conn,
            &provider,
            "c2",
            &inpatient_claim(member, "7000.00", "1000.00", "K35.8"),
        )
        .unwrap();
        let newest = audit::head(&mut conn).unwrap().unwrap();
        // Delete the newest event: the chain left is valid on its own, but
        // the exported head is gone.
        diesel::sql_query(format!(
            "DELETE FROM audit_events WHERE seq = {}",
            newest.seq
        ))
        .execute(&mut conn)
        .unwrap();
        assert!(audit::verify(&mut conn, &keys.audit, None).unwrap().valid);
        let truncated = audit::verify(&mut conn, &keys.audit, Some(&newest)).unwrap();
        assert!(!truncated.valid);
        assert_eq!(truncated.first_broken.unwrap().seq, newest.seq);

        // Edit one event's payload in place (an amount, say).
        let target = 2;
        diesel::sql_query(format!(
            "UPDATE audit_events SET payload = REPLACE(payload, '\"seq\":{target}', '\"seq\":{target} ') WHERE seq = {target}"
        ))
        .execute(&mut conn)
        .unwrap();
        let edited = audit::verify(&mut conn, &keys.audit, None).unwrap();
        assert!(!edited.valid);
        assert_eq!(edited.first_broken.unwrap().seq, target);
    }
}
