//! Pricing from the command line and over the API: the same engine, the
//! same results for the same seed.

use serde_json::{Value, json};

use crate::support::*;

const TINY: &str = r#"
name = "Tiny city"
seed = 42
simulations = 2_000

[benefits.inpatient]
deductible = 20_000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1_000_000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 500_000

[[groups]]
id = "young"
members = 5_000
preexisting = false
inpatient.frequency = { distribution = "poisson", mean = 0.08 }
inpatient.severity = { distribution = "lognormal", mean = 25_000, cv = 1.5 }
specialty_drug.need_rate = 0.0005
specialty_drug.cost = { distribution = "gamma", mean = 150_000, cv = 0.8 }

[[groups]]
id = "old-cancer"
members = 500
preexisting = true
inpatient.frequency = { distribution = "negative_binomial", mean = 0.6, variance = 1.2 }
inpatient.severity = { distribution = "pareto", alpha = 2.5, theta = 30_000 }
specialty_drug.need_rate = 0.01
specialty_drug.cost = { distribution = "lognormal", mean = 140_000, cv = 0.8 }

[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
target_loss_ratio = 0.85
"#;

#[test]
fn the_command_and_the_api_price_a_scenario_alike() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let json_path = dir.path().join("tiny.json");
    let out = std::process::Command::new(BIN)
        .args([
            "price",
            scenario.to_str().unwrap(),
            "--quiet",
            "--json",
            json_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    for heading in ["Premium build-up", "Cross-subsidy", "old-cancer"] {
        assert!(
            report.contains(heading),
            "no {heading} in the report:\n{report}"
        );
    }
    let cli: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(cli["seed"], 42);
    assert_eq!(cli["simulations"], 2000);
    assert_eq!(cli["groups"][0]["id"], "young");
    for key in [
        "mean_payout_per_member",
        "std_payout_per_member",
        "prob_any_payout",
    ] {
        assert!(cli["groups"][1][key].is_number(), "{key}");
        assert!(
            cli["groups"][1][format!("{key}_se")].is_number(),
            "{key}_se"
        );
        assert!(
            cli["groups"][1]["by_benefit"]["specialty_drug"][key].is_number(),
            "{key} by benefit"
        );
    }
    for level in ["0.95", "0.99", "0.995"] {
        assert!(cli["portfolio"]["var"][level].is_number());
        assert!(cli["portfolio"]["tvar_se"][level].is_number());
    }

    let db_dir = tempfile::tempdir().unwrap();
    for db in databases(db_dir.path()) {
        let server = Server::start(&db, db_dir.path(), &[]);
        let (status, accepted) = server.post_raw(
            "/v1/pricing/runs",
            Some(&server.insurer),
            None,
            "application/toml",
            TINY.as_bytes(),
        );
        assert_eq!(status, 202, "{accepted}");
        let run = server.pricing_run_ended(accepted["id"].as_i64().unwrap());
        assert_eq!(run["status"], "succeeded", "{run}");
        // Same seed, same engine: the same numbers as the command line.
        assert_eq!(run["results"], cli, "{}", server.backend);
        // An auditor may read it too.
        assert_eq!(
            server
                .get(
                    &format!("/v1/pricing/runs/{}", run["id"]),
                    Some(&server.auditor)
                )
                .0,
            200
        );

        // A bad scenario is refused with the key named, and nothing runs.
        let bad = TINY.replace("coinsurance = 0.8", "coinsurance = 1.8");
        let (status, problem) = server.post_raw(
            "/v1/pricing/runs",
            Some(&server.insurer),
            None,
            "application/toml",
            bad.as_bytes(),
        );
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("coinsurance"),
            "{problem}"
        );
        // Only the shipped table may be named over the API: no file system access.
        let stolen = json!({"name": "x", "seed": 1, "simulations": 1000,
            "benefits": {"inpatient": {"deductible": 0, "coinsurance": 0.5, "annual_limit": 1000}},
            "population": {"table": "../../../../etc/passwd", "size": 1000, "take_up": {"default": 0.5}},
            "pricing": {"expense_ratio": 0.1, "cost_of_capital": 0.06, "risk_measure": "var", "level": 0.99}});
        let (status, problem) =
            server.post("/v1/pricing/runs", Some(&server.insurer), None, &stolen);
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .contains("table"),
            "{problem}"
        );
        // The shipped morbidity table is allowed, and a JSON body works.
        let mut city = stolen.clone();
        city["population"]["table"] = json!("morbidity_default.csv");
        let (status, accepted) =
            server.post("/v1/pricing/runs", Some(&server.insurer), None, &city);
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(
            server.pricing_run_ended(accepted["id"].as_i64().unwrap())["status"],
            "succeeded"
        );
        // Far too large a run is refused before it starts.
        let huge = TINY.replace("simulations = 2_000", "simulations = 40_000_000");
        let (status, problem) = server.post_raw(
            "/v1/pricing/runs",
            Some(&server.insurer),
            None,
            "application/toml",
            huge.as_bytes(),
        );
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["code"], "scenario_too_large");
    }
}
