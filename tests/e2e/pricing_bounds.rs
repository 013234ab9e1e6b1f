//! Bounded pricing runs over the API: a run is cancelled by an insurer or
//! stopped at the server's time budget, says so in its status, and frees
//! its slot for the next run. The long run is long by its size (about 1e10
//! member-years of work, within the admission bound); the tests assert on
//! states, never on how long anything took.

use serde_json::Value;

use crate::support::*;

/// A run of about 1e10 member-years (a million members, 100,000
/// portfolio-years): admitted by the default bound, and minutes of work.
const LONG: &str = r#"
name = "Long run"
seed = 3
simulations = 100_000
method = "monte_carlo"

[benefits.inpatient]
deductible = 20_000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1_000_000

[[groups]]
id = "everyone"
members = 1_000_000
preexisting = false
inpatient.frequency = { distribution = "poisson", mean = 0.08 }
inpatient.severity = { distribution = "lognormal", mean = 25_000, cv = 1.5 }

[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
"#;

/// LONG at 2,000 portfolio-years of 5,000 members: quick.
fn short() -> String {
    LONG.replace("simulations = 100_000", "simulations = 2_000")
        .replace("members = 1_000_000", "members = 5_000")
}

fn start(server: &Server, scenario: &str) -> (u16, Value) {
    server.post_raw(
        "/v1/pricing/runs",
        Some(&server.insurer),
        None,
        "application/toml",
        scenario.as_bytes(),
    )
}

fn started(server: &Server, scenario: &str) -> i64 {
    let (status, accepted) = start(server, scenario);
    assert_eq!(status, 202, "{accepted}");
    accepted["id"].as_i64().unwrap()
}

fn cancel(server: &Server, id: i64, token: &str) -> (u16, Value) {
    server.post_raw(
        &format!("/v1/pricing/runs/{id}/cancel"),
        Some(token),
        None,
        "application/json",
        b"",
    )
}

fn audited(server: &Server, action: &str, id: i64) -> bool {
    let (status, page) = server.get("/v1/audit/events?limit=1000", Some(&server.insurer));
    assert_eq!(status, 200, "{page}");
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == action && e["entity"] == format!("pricing_run:{id}"))
}

#[test]
fn a_cancelled_run_says_so_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let long = started(&server, LONG);
        // One run at a time (the default): the next one waits its turn.
        assert_eq!(start(&server, &short()).0, 429, "{}", server.backend);

        let (status, run) = cancel(&server, long, &server.insurer);
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["status"], "cancelled", "{run}");
        assert!(run["finished_at"].is_string(), "{run}");
        assert!(audited(&server, "pricing_run.cancelled", long));
        // The slot is free at once: another run is admitted and finishes.
        let next = started(&server, &short());
        assert_eq!(server.pricing_run_ended(next)["status"], "succeeded");
        // The cancelled run stays cancelled, whatever its computation did next.
        let (_, run) = server.get(&format!("/v1/pricing/runs/{long}"), Some(&server.insurer));
        assert_eq!(run["status"], "cancelled", "{run}");
        assert!(run["results"].is_null(), "{run}");

        // A run that has ended cannot be cancelled; an unknown one is not there.
        for id in [long, next] {
            let (status, problem) = cancel(&server, id, &server.insurer);
            assert_eq!(status, 409, "{problem}");
            assert_eq!(problem["code"], "run_not_running", "{problem}");
        }
        assert_eq!(cancel(&server, 999_999, &server.insurer).0, 404);
        // Only an insurer cancels.
        let another = started(&server, LONG);
        let (_, enrollee) = server.enrol(11, &[]);
        assert_eq!(cancel(&server, another, &enrollee).0, 403);
        assert_eq!(cancel(&server, another, &server.auditor).0, 403);
        assert_eq!(cancel(&server, another, &server.insurer).0, 200);
    }
}

#[test]
fn a_run_past_its_budget_is_timed_out_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &["--pricing-max-seconds", "1"]);
        let long = started(&server, LONG);
        let run = server.pricing_run_ended(long);
        assert_eq!(run["status"], "timed_out", "{run}");
        assert!(
            run["error"].as_str().unwrap().contains("budget of 1 s"),
            "{run}"
        );
        assert!(
            run["results"].is_null() && run["finished_at"].is_string(),
            "{run}"
        );
        assert!(audited(&server, "pricing_run.finished", long));
        let (status, problem) = cancel(&server, long, &server.insurer);
        assert_eq!(status, 409, "{problem}");
        // Its slot is free: the next run is admitted and, being short, succeeds.
        let next = started(&server, &short());
        assert_eq!(
            server.pricing_run_ended(next)["status"],
            "succeeded",
            "{}",
            server.backend
        );
    }
}
