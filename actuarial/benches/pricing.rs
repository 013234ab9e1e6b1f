//! The pricing benchmark (BENCHMARKS.md, "Pricing Monte Carlo").
//!
//! Runs `scenarios/benchmark.toml` by Monte Carlo (100,000 members, Poisson(0.08) admissions, lognormal cost
//! per admission with mean 25,000 and cv 1.5, D 20,000, c 0.8, L 1,000,000; 100,000
//! portfolio-years) on one thread and on all cores, then the numpy baseline
//! (`bench/numpy_baseline.py` in this repository, linear in portfolio-years, so run at 10,000 and
//! scaled) in the same process run, and prints throughput, wall times, ratios and the estimates
//! side by side. Nothing outside the repository is read.
//!
//!     cargo bench -p actuarial --bench pricing [-- --numpy-years N] [--python PATH]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use actuarial::{PricingResults, RunOptions, Scenario, price};

fn run(scenario: &Scenario, threads: usize) -> (PricingResults, f64) {
    let start = Instant::now();
    let options = RunOptions {
        threads: Some(threads),
        ..RunOptions::default()
    };
    match price(scenario, &options) {
        Ok(r) => (r, start.elapsed().as_secs_f64()),
        Err(e) => {
            eprintln!("pricing failed: {e}");
            std::process::exit(1);
        }
    }
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().map(PathBuf::from).unwrap_or(manifest);
    let scenarios = root.join("scenarios");
    let text = match std::fs::read_to_string(scenarios.join("benchmark.toml")) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("scenarios/benchmark.toml: {e}");
            std::process::exit(1);
        }
    };
    // The scenario leaves the method to `auto`, which prices it exactly; this benchmark is the
    // Monte Carlo's (the exact method has its own, benches/exact.rs).
    let text = format!("method = \"monte_carlo\"\n{text}");
    let resolver = actuarial::DirResolver::new(&scenarios);
    let scenario = match Scenario::from_toml_str(&text, "scenarios/benchmark.toml", &resolver) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let numpy_years: u64 = arg_value(&args, "--numpy-years")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let numpy_script = root.join("bench/numpy_baseline.py");
    let python = arg_value(&args, "--python").unwrap_or_else(|| "python3".to_string());

    let members = scenario.total_members() as f64;
    let years = scenario.simulations() as f64;
    let member_years = members * years;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "case: {} ({} members x {} portfolio-years = {:.2e} member-years)",
        scenario.name(),
        members,
        years,
        member_years
    );

    let (one, t_one) = run(&scenario, 1);
    println!(
        "puhui, 1 thread:    wall {t_one:7.3} s  {:.3e} member-years/s",
        member_years / t_one
    );
    let (all, t_all) = run(&scenario, cores);
    println!(
        "puhui, {cores} threads:   wall {t_all:7.3} s  {:.3e} member-years/s",
        member_years / t_all
    );
    let same = serde_json::to_string(&one).ok() == serde_json::to_string(&all).ok();
    println!("results identical on 1 and {cores} threads: {same}");
    let p = &all.portfolio;
    println!(
        "puhui estimates: mean {:.0} +- {:.0}  std {:.0}  VaR 99.5% {:.0} +- {:.0}  TVaR 99.5% {:.0} +- {:.0}",
        p.mean,
        p.mean_se,
        p.std,
        p.var.get("0.995").copied().unwrap_or(f64::NAN),
        p.var_se.get("0.995").copied().unwrap_or(f64::NAN),
        p.tvar.get("0.995").copied().unwrap_or(f64::NAN),
        p.tvar_se.get("0.995").copied().unwrap_or(f64::NAN),
    );
    println!(
        "puhui exact (discretised) mean: {:.0}; discretisation error of the mean within {:.1e} relative",
        all.groups
            .iter()
            .map(|g| g.exact.mean_payout_per_member * g.members as f64)
            .sum::<f64>(),
        all.method.max_relative_discretisation_error
    );

    let output = Command::new(&python)
        .arg(&numpy_script)
        .arg(numpy_years.to_string())
        .arg("1")
        .output();
    let parsed = match output {
        Ok(o) if o.status.success() => serde_json::from_slice::<serde_json::Value>(&o.stdout).ok(),
        Ok(o) => {
            eprintln!(
                "numpy baseline failed (python3 -m pip install numpy?): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("cannot run python3: {e}");
            None
        }
    };
    let Some(np) = parsed else {
        println!("numpy baseline not run; no ratios");
        return;
    };
    let np_wall = np["wall_s"].as_f64().unwrap_or(f64::NAN);
    let np_rate = numpy_years as f64 * members / np_wall;
    let np_full = member_years / np_rate;
    println!(
        "numpy, {numpy_years} portfolio-years: wall {np_wall:.3} s  {np_rate:.3e} member-years/s; whole case scaled: {np_full:.1} s"
    );
    let np_se = np["std"].as_f64().unwrap_or(f64::NAN) / (numpy_years as f64).sqrt();
    println!(
        "numpy estimates: mean {:.0} +- {:.0}  std {:.0}  VaR 99.5% {:.0}  TVaR 99.5% {:.0}",
        np["mean"].as_f64().unwrap_or(f64::NAN),
        np_se,
        np["std"].as_f64().unwrap_or(f64::NAN),
        np["var_0.995"].as_f64().unwrap_or(f64::NAN),
        np["tvar_0.995"].as_f64().unwrap_or(f64::NAN),
    );
    let diff = p.mean - np["mean"].as_f64().unwrap_or(f64::NAN);
    println!(
        "difference of means: {diff:.0} = {:.2} combined standard errors",
        diff / (p.mean_se * p.mean_se + np_se * np_se).sqrt()
    );
    println!(
        "speed-up over numpy: {:.1}x on 1 thread, {:.1}x on {cores} threads",
        np_full / t_one,
        np_full / t_all
    );
}
