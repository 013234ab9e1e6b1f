//! The exact-method benchmark (BENCHMARKS.md, "Exact portfolio distribution").
//!
//! Times, in one run: `scenarios/exact-benchmark.toml` (six groups, 1,000,000 members) by the
//! exact method, then the same portfolio by the Python library `aggregate`
//! (`bench/aggregate_peer.py`) for the ratio; `city-default.toml` exact without its risk
//! factors, with its two factors, and at a Shanghai-size pool (7.4 M members); and the Monte
//! Carlo with factors on city-default (20,000 portfolio-years). Nothing outside the repository
//! is read.
//!
//!     cargo bench -p actuarial --bench exact [-- --python PATH]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use actuarial::{DirResolver, PricingResults, RunOptions, Scenario, price};

fn load(dir: &Path, name: &str, edit: &dyn Fn(String) -> String) -> Scenario {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
        eprintln!("{name}: {e}");
        std::process::exit(1)
    });
    Scenario::from_toml_str(&edit(text), name, &DirResolver::new(dir)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
}

fn timed(what: &str, s: &Scenario) -> (PricingResults, f64) {
    let start = Instant::now();
    let r = price(s, &RunOptions::default()).unwrap_or_else(|e| {
        eprintln!("{what}: {e}");
        std::process::exit(1)
    });
    let t = start.elapsed().as_secs_f64();
    let p = &r.portfolio;
    println!(
        "{what:<44} {:>9} members  {:>8.3} s  [{}]  mean {:.0}  std {:.0}  VaR 99.5% {:.0}  TVaR 99.5% {:.0}",
        r.members, t, r.method.name, p.mean, p.std, p.var["0.995"], p.tvar["0.995"]
    );
    (r, t)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let python = args
        .iter()
        .position(|a| a == "--python")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "python3".to_string());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().map(PathBuf::from).unwrap_or(manifest);
    let dir = root.join("scenarios");
    let same = |t: String| t;
    let method = |m: &'static str| {
        move |t: String| {
            t.lines()
                .filter(|l| !l.starts_with("method"))
                .collect::<Vec<_>>()
                .join("\n")
                .replacen("name = ", &format!("method = \"{m}\"\nname = "), 1)
        }
    };
    let no_factors = |t: String| match t.find("[[risk_factors]]") {
        Some(i) => t[..i].to_string(),
        None => t,
    };

    let (six, t_six) = timed(
        "six groups, exact",
        &load(&dir, "exact-benchmark.toml", &same),
    );
    let peer = Command::new(&python)
        .arg(root.join("bench/aggregate_peer.py"))
        .output();
    match peer {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let wall = v["wall_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<44} {:>9} members  {wall:>8.3} s  [aggregate]  mean {:.0}  std {:.0}  VaR 99.5% {:.0}  TVaR 99.5% {:.0}",
                "six groups, Python aggregate",
                six.members,
                v["mean"].as_f64().unwrap_or(f64::NAN),
                v["std"].as_f64().unwrap_or(f64::NAN),
                v["var_0.995"].as_f64().unwrap_or(f64::NAN),
                v["tvar_0.995"].as_f64().unwrap_or(f64::NAN),
            );
            println!("speed-up over aggregate, same run: {:.1}x", wall / t_six);
        }
        Ok(o) => eprintln!(
            "aggregate peer failed (pip install aggregate?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("cannot run {python}: {e}"),
    }
    timed(
        "city-default, exact, no factors",
        &load(&dir, "city-default.toml", &no_factors),
    );
    timed(
        "city-default, exact, two factors",
        &load(&dir, "city-default.toml", &method("exact")),
    );
    let shanghai = |t: String| t.replace("size = 10_000_000", "size = 27_100_000");
    timed(
        "Shanghai-size pool (7.4 M), exact, no factors",
        &load(&dir, "city-default.toml", &|t| no_factors(shanghai(t))),
    );
    timed(
        "Shanghai-size pool (7.4 M), exact, two factors",
        &load(&dir, "city-default.toml", &shanghai),
    );
    timed(
        "city-default, Monte Carlo, two factors, 20,000 years",
        &load(&dir, "city-default.toml", &method("monte_carlo")),
    );
}
