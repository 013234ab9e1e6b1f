//! Simulation and exact member-level distributions against independent closed forms.

mod common;

use actuarial::dist::{Frequency, Severity};
use actuarial::member::{PayoutDistribution, PayoutTerms, Resolution};
use actuarial::stats::Sample;
use common::*;
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal, Poisson};

const PRICING: &str = r#"
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

/// Lognormal partial moment E[X^k; a < X <= b] via the (independent) normal distribution.
fn ln_partial(mu: f64, sigma: f64, k: f64, a: f64, b: f64) -> f64 {
    let z = |x: f64| {
        if x <= 0.0 {
            f64::NEG_INFINITY
        } else if x.is_infinite() {
            f64::INFINITY
        } else {
            (x.ln() - mu - k * sigma * sigma) / sigma
        }
    };
    let cdf = |t: f64| {
        if t == f64::NEG_INFINITY {
            0.0
        } else if t == f64::INFINITY {
            1.0
        } else {
            phi(t)
        }
    };
    (k * mu + 0.5 * k * k * sigma * sigma).exp() * (cdf(z(b)) - cdf(z(a)))
}

#[test]
fn bernoulli_lognormal_with_deductible_coinsurance_and_limit() {
    let (p, mean, cv, d, c, l): (f64, f64, f64, f64, f64, f64) =
        (0.01, 150_000.0, 0.8, 20_000.0, 0.7, 300_000.0);
    let s = scenario(&format!(
        r#"
name = "bernoulli x lognormal"
seed = 3
simulations = 2000
[benefits.specialty_drug]
deductible = {d}
coinsurance = {c}
annual_limit = {l}
[[groups]]
id = "g"
members = 100000
specialty_drug.need_rate = {p}
specialty_drug.cost = {{ distribution = "lognormal", mean = {mean}, cv = {cv} }}
{PRICING}"#
    ));
    let sigma2 = (1.0_f64 + cv * cv).ln();
    let (mu, sigma) = (mean.ln() - 0.5 * sigma2, sigma2.sqrt());
    let m = d + l / c;
    let inf = f64::INFINITY;
    // E[Y] = p c (E[X - D; D < X <= M] + (M - D) P(X > M)).
    let p_mid = ln_partial(mu, sigma, 0.0, d, m);
    let e1 = ln_partial(mu, sigma, 1.0, d, m);
    let e2 = ln_partial(mu, sigma, 2.0, d, m);
    let tail = ln_partial(mu, sigma, 0.0, m, inf);
    let ey = p * (c * (e1 - d * p_mid) + l * tail);
    let ey2 = p * (c * c * (e2 - 2.0 * d * e1 + d * d * p_mid) + l * l * tail);
    let sd = (ey2 - ey * ey).sqrt();
    let prob = p * ln_partial(mu, sigma, 0.0, d, inf);

    let r = run(&s);
    let g = &r.groups[0];
    // Single-claim cells sit at exact conditional means: mean and probability are exact, the
    // standard deviation only loses the spread within cells.
    close("exact mean", g.exact.mean_payout_per_member, ey, 1e-7);
    close("exact P(Y>0)", g.exact.prob_any_payout, prob, 1e-7);
    close("exact std", g.exact.std_payout_per_member, sd, 1e-4);
    within(
        "mean",
        g.stats.mean_payout_per_member,
        g.stats.mean_payout_per_member_se,
        ey,
    );
    within(
        "std",
        g.stats.std_payout_per_member,
        g.stats.std_payout_per_member_se,
        sd,
    );
    within(
        "P(Y>0)",
        g.stats.prob_any_payout,
        g.stats.prob_any_payout_se,
        prob,
    );
    let drug = g.by_benefit.specialty_drug.expect("drug benefit priced");
    assert_eq!(drug, g.stats);
    assert!(g.by_benefit.inpatient.is_none());
    // Portfolio: sum of independent members.
    let n = 100_000.0;
    within(
        "portfolio mean",
        r.portfolio.mean,
        r.portfolio.mean_se,
        n * ey,
    );
    within(
        "portfolio std",
        r.portfolio.std,
        r.portfolio.std_se,
        n.sqrt() * sd,
    );
}

#[test]
fn single_claim_under_a_deductible() {
    // Exponential (gamma with cv 1): E[(X - D)+] = theta exp(-D / theta), and by memorylessness
    // E[(X - D)+^2] = 2 theta^2 exp(-D / theta).
    let (p, theta, d, c) = (0.2, 8_000.0, 5_000.0, 0.8);
    let terms = PayoutTerms {
        deductible: d,
        coinsurance: c,
        annual_limit: 1e9,
    };
    let exp_sev = Severity::gamma(theta, 1.0).unwrap();
    let freq = Frequency::bernoulli(p).unwrap();
    let dist = PayoutDistribution::build(&freq, &exp_sev, &terms, Resolution::default()).unwrap();
    let ey = p * c * theta * (-d / theta).exp();
    let ey2 = p * c * c * 2.0 * theta * theta * (-d / theta).exp();
    close("exponential mean", dist.mean, ey, 1e-9);
    close(
        "exponential P(Y>0)",
        dist.prob_positive,
        p * (-d / theta).exp(),
        1e-12,
    );
    close("exponential E[Y^2]", dist.second_moment, ey2, 1e-4);

    // Pareto II: E[(X - a)+] = (theta + a) / (alpha - 1) (theta / (theta + a))^alpha.
    let (alpha, th, limit) = (2.5, 30_000.0, 200_000.0);
    let terms = PayoutTerms {
        deductible: d,
        coinsurance: c,
        annual_limit: limit,
    };
    let m = d + limit / c;
    let excess = |a: f64| (th + a) / (alpha - 1.0) * (th / (th + a)).powf(alpha);
    let ey = p * c * (excess(d) - excess(m));
    let sev = Severity::pareto(alpha, th).unwrap();
    let dist = PayoutDistribution::build(&freq, &sev, &terms, Resolution::default()).unwrap();
    close("pareto mean", dist.mean, ey, 1e-9);
    close(
        "pareto P(Y>0)",
        dist.prob_positive,
        p * (th / (th + d)).powf(alpha),
        1e-12,
    );

    // The same through the simulation.
    let s = scenario(&format!(
        r#"
name = "single claim"
seed = 5
simulations = 2000
[benefits.inpatient]
deductible = {d}
coinsurance = {c}
annual_limit = {limit}
[[groups]]
id = "pareto"
members = 20000
inpatient.frequency = {{ distribution = "bernoulli", p = {p} }}
inpatient.severity = {{ distribution = "pareto", alpha = {alpha}, theta = {th} }}
{PRICING}"#
    ));
    let r = run(&s);
    let g = &r.groups[0];
    within(
        "pareto MC mean",
        g.stats.mean_payout_per_member,
        g.stats.mean_payout_per_member_se,
        ey,
    );
    within(
        "pareto MC P(Y>0)",
        g.stats.prob_any_payout,
        g.stats.prob_any_payout_se,
        p * (th / (th + d)).powf(alpha),
    );
}

/// E[Y], E[Y^2] and P(Y > 0) for a compound frequency with exponential severities, summing over
/// the claim count with Erlang distributions of the annual cost: a semi-analytic answer
/// independent of the lattice, the FFT and the crate's special functions.
fn compound_exponential(pmf: &[f64], theta: f64, d: f64, c: f64, l: f64) -> (f64, f64, f64) {
    let m = d + l / c;
    let (mut ey, mut ey2, mut prob) = (0.0, 0.0, 0.0);
    for (n, &pn) in pmf.iter().enumerate().skip(1) {
        let n = n as u32;
        let nf = n as f64;
        let q = |k: u32, x: f64| erlang_sf(n + k, x / theta);
        // E[S^k; S > a] = theta^k n (n + 1) ... (n + k - 1) Q(n + k, a / theta).
        let p_mid = q(0, d) - q(0, m);
        let e1 = theta * nf * (q(1, d) - q(1, m));
        let e2 = theta * theta * nf * (nf + 1.0) * (q(2, d) - q(2, m));
        let tail = q(0, m);
        ey += pn * (c * (e1 - d * p_mid) + l * tail);
        ey2 += pn * (c * c * (e2 - 2.0 * d * e1 + d * d * p_mid) + l * l * tail);
        prob += pn * q(0, d);
    }
    (ey, ey2, prob)
}

#[test]
fn compound_poisson_and_negative_binomial_against_erlang_sums() {
    let (theta, d, c, l) = (8_000.0, 20_000.0, 0.8, 50_000.0);
    let terms = PayoutTerms {
        deductible: d,
        coinsurance: c,
        annual_limit: l,
    };
    let sev = Severity::gamma(theta, 1.0).unwrap();
    let lambda: f64 = 0.6;
    let mut poisson = vec![(-lambda).exp()];
    for n in 1..80 {
        let prev = poisson[n - 1];
        poisson.push(prev * lambda / n as f64);
    }
    let (nb_mean, nb_var): (f64, f64) = (0.6, 1.5);
    let (pp, r) = (nb_mean / nb_var, nb_mean * nb_mean / (nb_var - nb_mean));
    let mut nb = vec![pp.powf(r)];
    for n in 1..200 {
        let prev = nb[n - 1];
        nb.push(prev * (n as f64 - 1.0 + r) / n as f64 * (1.0 - pp));
    }
    for (freq, pmf) in [
        (Frequency::poisson(lambda).unwrap(), poisson),
        (Frequency::negative_binomial(nb_mean, nb_var).unwrap(), nb),
    ] {
        let (ey, ey2, prob) = compound_exponential(&pmf, theta, d, c, l);
        let dist = PayoutDistribution::build(&freq, &sev, &terms, Resolution::default()).unwrap();
        // The reported error estimate is a bound on the discretisation error (plus rounding).
        let tol_mean = dist.mean_error_estimate + 1e-9 * ey;
        assert!(
            (dist.mean - ey).abs() <= tol_mean,
            "{freq:?}: mean {} vs {ey}, reported error {}",
            dist.mean,
            dist.mean_error_estimate
        );
        assert!(
            (dist.prob_positive - prob).abs() <= dist.prob_error_estimate + 1e-12,
            "{freq:?}: P(Y>0) {} vs {prob}, reported error {}",
            dist.prob_positive,
            dist.prob_error_estimate
        );
        close("E[Y^2]", dist.second_moment, ey2, 1e-4);
        // And a loose absolute bound, so that a broken error estimate cannot hide a bad mean.
        close("mean", dist.mean, ey, 1e-4);
    }

    // Through the simulation, NB frequency.
    let s = scenario(&format!(
        r#"
name = "compound nb"
seed = 9
simulations = 1000
[benefits.inpatient]
deductible = {d}
coinsurance = {c}
annual_limit = {l}
[[groups]]
id = "nb"
members = 20000
inpatient.frequency = {{ distribution = "negative_binomial", mean = {nb_mean}, variance = {nb_var} }}
inpatient.severity = {{ distribution = "gamma", mean = {theta}, cv = 1.0 }}
{PRICING}"#
    ));
    let mut nb = vec![pp.powf(r)];
    for n in 1..200 {
        let prev = nb[n - 1];
        nb.push(prev * (n as f64 - 1.0 + r) / n as f64 * (1.0 - pp));
    }
    let (ey, ey2, prob) = compound_exponential(&nb, theta, d, c, l);
    let g = &run(&s).groups[0];
    within(
        "NB mean",
        g.stats.mean_payout_per_member,
        g.stats.mean_payout_per_member_se,
        ey,
    );
    within(
        "NB std",
        g.stats.std_payout_per_member,
        g.stats.std_payout_per_member_se,
        (ey2 - ey * ey).sqrt(),
    );
    within(
        "NB P(Y>0)",
        g.stats.prob_any_payout,
        g.stats.prob_any_payout_se,
        prob,
    );
}

#[test]
fn known_moments_of_compound_sums() {
    // No deductible, full coinsurance, a limit no annual cost reaches: Y = S, a compound
    // Poisson with E[S] = lambda E[X] and Var[S] = lambda E[X^2].
    let (lambda, mean, cv, members): (f64, f64, f64, u64) = (0.4, 1_000.0, 0.5, 5_000);
    let s = scenario(&format!(
        r#"
name = "moments"
seed = 13
simulations = 2000
[benefits.inpatient]
deductible = 0
coinsurance = 1.0
annual_limit = 20000
[[groups]]
id = "m"
members = {members}
inpatient.frequency = {{ distribution = "poisson", mean = {lambda} }}
inpatient.severity = {{ distribution = "gamma", mean = {mean}, cv = {cv} }}
{PRICING}"#
    ));
    let ex2 = mean * mean * (1.0 + cv * cv);
    let (ey, vy) = (lambda * mean, lambda * ex2);
    let r = run(&s);
    let g = &r.groups[0];
    close("exact mean", g.exact.mean_payout_per_member, ey, 1e-9);
    close("exact std", g.exact.std_payout_per_member, vy.sqrt(), 1e-5);
    close(
        "exact P(Y>0)",
        g.exact.prob_any_payout,
        1.0 - (-lambda).exp(),
        1e-12,
    );
    within(
        "mean",
        g.stats.mean_payout_per_member,
        g.stats.mean_payout_per_member_se,
        ey,
    );
    within(
        "std",
        g.stats.std_payout_per_member,
        g.stats.std_payout_per_member_se,
        vy.sqrt(),
    );
    let n = members as f64;
    within(
        "portfolio mean",
        r.portfolio.mean,
        r.portfolio.mean_se,
        n * ey,
    );
    within(
        "portfolio std",
        r.portfolio.std,
        r.portfolio.std_se,
        (n * vy).sqrt(),
    );
}

#[test]
fn portfolio_tail_against_a_brute_force_simulation() {
    // Every member-year drawn the slow way with an unrelated generator: admissions, each
    // admission's cost, the terms. Mean, std, VaR and TVaR must agree within combined errors.
    let (members, lambda, mean, cv, d, c, l, years) = (
        300usize, 0.3, 20_000.0, 1.2, 10_000.0, 0.8, 200_000.0, 4000usize,
    );
    let s = scenario(&format!(
        r#"
name = "tail"
seed = 17
simulations = {years}
[benefits.inpatient]
deductible = {d}
coinsurance = {c}
annual_limit = {l}
[[groups]]
id = "t"
members = {members}
inpatient.frequency = {{ distribution = "poisson", mean = {lambda} }}
inpatient.severity = {{ distribution = "lognormal", mean = {mean}, cv = {cv} }}
{PRICING}"#
    ));
    let r = run(&s);
    // ChaCha20, not the engine's ChaCha8, and a different seed.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4242);
    let count = Poisson::new(lambda).unwrap();
    let cost = LogNormal::from_mean_cv(mean, cv).unwrap();
    let totals: Vec<f64> = (0..years)
        .map(|_| {
            (0..members)
                .map(|_| {
                    let k = count.sample(&mut rng) as u64;
                    let sum: f64 = (0..k).map(|_| cost.sample(&mut rng)).sum();
                    (c * (sum - d).max(0.0)).min(l)
                })
                .sum::<f64>()
        })
        .collect();
    let brute = Sample::new(&totals);
    let combined = |a: f64, b: f64| (a * a + b * b).sqrt();
    let p = &r.portfolio;
    within(
        "mean",
        p.mean,
        combined(p.mean_se, brute.mean_se),
        brute.mean,
    );
    within("std", p.std, combined(p.std_se, brute.std_se), brute.std);
    for level in ["0.95", "0.99"] {
        let t = brute.tail(level.parse().unwrap());
        within(
            &format!("VaR {level}"),
            p.var[level],
            combined(p.var_se[level], t.var_se),
            t.var,
        );
        within(
            &format!("TVaR {level}"),
            p.tvar[level],
            combined(p.tvar_se[level], t.tvar_se),
            t.tvar,
        );
    }
}
