//! The morbidity study as a user runs it: synth, build (in one pass and in partitions merged),
//! price the built table; and `puhui credibility` on the Hachemeister data.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::BIN;

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn product() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../products/xiamen-2026.toml")
        .display()
        .to_string()
}

#[test]
fn synth_build_merge_and_price() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let data = d("data");
    run(&[
        "morbidity",
        "synth",
        "--persons",
        "6000",
        "--years",
        "2015-2024",
        "--seed",
        "4",
        "--out",
        &data,
        "--format",
        "csv.gz",
    ]);
    let persons = format!("{data}/persons.csv.gz");
    let encounters = format!("{data}/encounters.csv.gz");
    let product = product();
    let build = |extra: &[&str]| {
        let mut args = vec![
            "morbidity",
            "build",
            "--persons",
            &persons,
            "--encounters",
            &encounters,
            "--product",
            &product,
            "--years",
            "2019-2023",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let one = d("one.csv");
    let json = d("study.json");
    let html = d("study.html");
    build(&["--out", &one, "--json", &json, "--html", &html]);
    let (p1, p2) = (d("p1.json"), d("p2.json"));
    build(&["--partition", "1/2", "--out", &p1, "--threads", "1"]);
    build(&["--partition", "2/2", "--out", &p2]);
    let merged = d("merged.csv");
    run(&["morbidity", "merge", &p2, &p1, "--out", &merged]);
    let table = std::fs::read_to_string(&one).unwrap();
    assert_eq!(table, std::fs::read_to_string(&merged).unwrap());
    assert_eq!(table.lines().count(), 29);
    assert!(table.starts_with(
        "age_band,sex,condition_group,population_share,annual_hospitalization_rate,\
         mean_oop_cost_per_admission_cny,cv_cost,targeted_drug_need_rate,\
         mean_annual_drug_cost_cny\n"
    ));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["cells"].as_array().unwrap().len(), 28);
    assert!(
        report["credibility"]["hospitalization_rate"]["cell_level"]["within_variance"].is_number()
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));

    // A part given twice is refused, naming the file.
    let out = Command::new(BIN)
        .args(["morbidity", "merge", &p1, &p1, "--out", &merged])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("p1.json"));

    // A scenario that names the built table prices it.
    let scenario = d("built.toml");
    std::fs::write(
        &scenario,
        "name = \"built\"\nseed = 1\nsimulations = 1000\n\
         [benefits.inpatient]\ndeductible = 20000\ncoinsurance = 0.8\nannual_limit = 1000000\n\
         [population]\ntable = \"one.csv\"\nsize = 100000\ntake_up = 0.25\n\
         [pricing]\nexpense_ratio = 0.1\ncost_of_capital = 0.06\nrisk_measure = \"tvar\"\n\
         level = 0.995\n",
    )
    .unwrap();
    let out = run(&["price", &scenario, "--quiet"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("85+/F/preexisting"));
}

#[test]
fn strict_build_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let persons = dir.path().join("persons.csv");
    std::fs::write(
        &persons,
        "person_key,birth_year,sex,insurance_type,observed_from,observed_to\n\
         a,1960,M,urban_employee,2015-01-01,2024-12-31\n",
    )
    .unwrap();
    let encounters = dir.path().join("encounters.csv");
    std::fs::write(
        &encounters,
        "person_key,kind,start_date,diagnoses,total_cost,basic_paid,out_of_catalogue,atc\n\
         a,inpatient,2019-03-01,J18.9,1000.00,400.00,0,\n\
         a,inpatient,2019-03-01,J18.9,1000.00,4000.00,0,\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "morbidity",
            "build",
            "--persons",
            persons.to_str().unwrap(),
            "--encounters",
            encounters.to_str().unwrap(),
            "--product",
            &product(),
            "--years",
            "2019-2023",
            "--out",
            dir.path().join("t.csv").to_str().unwrap(),
            "--strict",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("encounters.csv: line 3: `basic_paid`"),
        "{stderr}"
    );
}

#[test]
fn credibility_reproduces_actuar_on_hachemeister() {
    // Hachemeister (1975) as shipped in R actuar; cm(~state, ...) gives the collective 1684,
    // between variance 89639, within 139120026 and premiums 2055 1524 1793 1443 1603.
    let ratios = [
        [
            1738, 1642, 1794, 2051, 2079, 2234, 2032, 2035, 2115, 2262, 2267, 2517,
        ],
        [
            1364, 1408, 1597, 1444, 1342, 1675, 1470, 1448, 1464, 1831, 1612, 1471,
        ],
        [
            1759, 1685, 1479, 1763, 1674, 2103, 1502, 1622, 1828, 2155, 2233, 2059,
        ],
        [
            1223, 1146, 1010, 1257, 1426, 1532, 1953, 1123, 1343, 1243, 1762, 1306,
        ],
        [
            1456, 1499, 1609, 1741, 1482, 1572, 1606, 1735, 1607, 1573, 1613, 1690,
        ],
    ];
    let weights = [
        [
            7861, 9251, 8706, 8575, 7917, 8263, 9456, 8003, 7365, 7832, 7849, 9077,
        ],
        [
            1622, 1742, 1523, 1515, 1622, 1602, 1964, 1515, 1527, 1748, 1654, 1861,
        ],
        [
            1147, 1357, 1329, 1204, 998, 1077, 1277, 1218, 896, 1003, 1108, 1121,
        ],
        [407, 396, 348, 341, 315, 328, 352, 331, 287, 384, 321, 342],
        [
            2902, 3172, 3046, 3068, 2693, 2910, 3275, 2697, 2663, 3017, 3242, 3425,
        ],
    ];
    let mut csv = String::from("group,period,value,weight\n");
    for s in 0..5 {
        for q in 0..12 {
            csv.push_str(&format!(
                "state {},{},{},{}\n",
                s + 1,
                q + 1,
                ratios[s][q],
                weights[s][q]
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hachemeister.csv");
    std::fs::write(&path, csv).unwrap();
    let out = run(&["credibility", path.to_str().unwrap(), "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((num(&r["collective"]) - 1684.0).abs() < 0.5);
    assert!((num(&r["between_variance"]) - 89639.0).abs() < 0.5);
    assert!((num(&r["within_variance"]) - 139_120_026.0).abs() < 0.5);
    assert!(num(&r["k"]) > 0.0);
    let groups = r["groups"].as_array().unwrap();
    for (g, premium) in groups.iter().zip([2055.0, 1524.0, 1793.0, 1443.0, 1603.0]) {
        assert!((num(&g["estimate"]) - premium).abs() < 0.5, "{g}");
        for key in ["group", "weight", "mean", "z"] {
            assert!(!g[key].is_null(), "{key}");
        }
    }
    assert_eq!(groups[0]["group"], "state 1");
}

#[test]
fn a_pricing_run_over_the_api_prices_an_inline_table_as_the_command_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let data = d("data");
    run(&[
        "morbidity",
        "synth",
        "--persons",
        "3000",
        "--years",
        "2016-2023",
        "--seed",
        "9",
        "--out",
        &data,
    ]);
    let table = d("built.csv");
    run(&[
        "morbidity",
        "build",
        "--persons",
        &format!("{data}/persons.csv"),
        "--encounters",
        &format!("{data}/encounters.csv"),
        "--product",
        &product(),
        "--years",
        "2020-2023",
        "--out",
        &table,
    ]);
    let scenario = "name = \"inline\"\nseed = 5\nsimulations = 1000\n\
        [benefits.inpatient]\ndeductible = 20000\ncoinsurance = 0.8\nannual_limit = 1000000\n\
        [population]\ntable = \"built.csv\"\nsize = 20000\ntake_up = 0.25\n\
        [pricing]\nexpense_ratio = 0.1\ncost_of_capital = 0.06\nrisk_measure = \"tvar\"\n\
        level = 0.995\n";
    let path = d("inline.toml");
    std::fs::write(&path, scenario).unwrap();
    let json = d("cli.json");
    run(&["price", &path, "--quiet", "--json", &json]);
    let cli: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let db_dir = tempfile::tempdir().unwrap();
    let db = crate::support::databases(db_dir.path()).remove(0);
    let server = crate::support::Server::start(&db, db_dir.path(), &[]);
    let body = serde_json::json!({
        "scenario": scenario,
        "tables": {"built.csv": std::fs::read_to_string(&table).unwrap()},
    });
    let (status, accepted) = server.post_raw(
        "/v1/pricing/runs",
        Some(&server.insurer),
        None,
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_i64().unwrap();
    let started = std::time::Instant::now();
    let result = loop {
        let (status, run) = server.get(&format!("/v1/pricing/runs/{id}"), Some(&server.insurer));
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" {
            break run;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "pricing run did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["results"]["groups"], cli["groups"]);
    assert_eq!(result["results"]["portfolio"], cli["portfolio"]);

    // A table too large is refused, naming it.
    let big = serde_json::json!({
        "scenario": scenario,
        "tables": {"built.csv": "x".repeat(300 * 1024)},
    });
    let (status, refused) = server.post_raw(
        "/v1/pricing/runs",
        Some(&server.insurer),
        None,
        "application/json",
        big.to_string().as_bytes(),
    );
    assert!(status == 422 || status == 413, "{status} {refused}");
    if status == 422 {
        assert!(
            refused.to_string().contains("tables.built.csv"),
            "{refused}"
        );
    }
}
