//! Helpers shared by the integration tests.
//!
//! Tolerance policy for Monte Carlo checks: an estimate must lie within 5 of its reported
//! standard errors of an independent answer (for two estimates, 5 combined standard errors).
//! Under the normal approximation a correct engine fails one such check with probability
//! 6e-7; the seeds are fixed, so a pass is reproducible and a failure means a real error.
//! Exact (discretised) values are checked against closed forms at the discretisation error the
//! crate reports, or tighter where the construction is exact.

#![allow(dead_code)]

use actuarial::{NoTables, PricingResults, RunOptions, Scenario, price};

pub const Z: f64 = 5.0;

pub fn scenario(toml: &str) -> Scenario {
    match Scenario::from_toml_str(toml, "test.toml", &NoTables) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

pub fn run(s: &Scenario) -> PricingResults {
    match price(s, &RunOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

pub fn within(what: &str, estimate: f64, se: f64, truth: f64) {
    assert!(
        (estimate - truth).abs() <= Z * se,
        "{what}: estimate {estimate} +- {se} is {:.2} standard errors from {truth}",
        (estimate - truth) / se
    );
}

pub fn close(what: &str, a: f64, b: f64, rel: f64) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE),
        "{what}: {a} vs {b} (relative difference {:.3e}, allowed {rel:.1e})",
        (a - b) / b
    );
}

/// Standard normal distribution function by composite Simpson integration of the density:
/// deliberately independent of the crate's erfc.
pub fn phi(z: f64) -> f64 {
    let n = 20_000;
    let a = z.abs().min(12.0);
    let h = a / n as f64;
    let f = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mut s = f(0.0) + f(a);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * f(i as f64 * h);
    }
    let half = s * h / 3.0;
    if z >= 0.0 { 0.5 + half } else { 0.5 - half }
}

/// Erlang survival function P(Gamma(n, 1) > x) = exp(-x) sum_{k<n} x^k / k!, by its finite sum.
pub fn erlang_sf(n: u32, x: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..n {
        if k > 0 {
            term *= x / k as f64;
        }
        sum += term;
    }
    (-x).exp() * sum
}
