//! Reproducibility, value stability, progress and cancellation, sweeps and adverse selection.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use actuarial::{Cancellation, PricingError, RunOptions, price, sweep_csv};
use common::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

// Monte Carlo asked for: these tests are about the simulation (streams, threads, progress).
const SMALL: &str = r#"
name = "golden"
seed = 2024
simulations = 1000
method = "monte_carlo"

[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 200000

[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 300000

[[groups]]
id = "standard"
members = 20000
preexisting = false
inpatient.frequency = { distribution = "poisson", mean = 0.12 }
inpatient.severity = { distribution = "lognormal", mean = 4000, cv = 1.6 }
specialty_drug.need_rate = 0.0005
specialty_drug.cost = { distribution = "lognormal", mean = 150000, cv = 0.8 }

[[groups]]
id = "preexisting"
members = 3000
preexisting = true
inpatient.frequency = { distribution = "negative_binomial", mean = 0.5, variance = 0.9 }
inpatient.severity = { distribution = "gamma", mean = 9000, cv = 1.2 }
inpatient.deductible = 40000
specialty_drug.need_rate = 0.008
specialty_drug.cost = { distribution = "pareto", alpha = 3.0, theta = 200000 }

[pricing]
expense_ratio = 0.12
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
target_loss_ratio = 0.85
"#;

#[test]
fn identical_results_whatever_the_thread_count() {
    let s = scenario(SMALL);
    let json = |threads: usize| {
        let r = price(
            &s,
            &RunOptions {
                threads: Some(threads),
                ..RunOptions::default()
            },
        )
        .unwrap();
        serde_json::to_string(&r).unwrap()
    };
    let one = json(1);
    assert_eq!(one, json(2));
    assert_eq!(one, json(3));
    // And on a caller's pool.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let r = price(
        &s,
        &RunOptions {
            pool: Some(&pool),
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert_eq!(one, serde_json::to_string(&r).unwrap());
    // A different seed gives a different sample.
    let other = run(&scenario(&SMALL.replace("seed = 2024", "seed = 2025")));
    assert_ne!(other.portfolio.mean, r.portfolio.mean);
}

#[test]
fn generator_value_stability() {
    // The engine's streams are ChaCha8 with the block index as stream; if rand_chacha ever
    // changed its output, every pinned price would move. These are its first words.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    rng.set_stream(0);
    let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    rng.set_stream(1);
    let second: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
    assert_eq!(first, GOLDEN_STREAM_0);
    assert_eq!(second, GOLDEN_STREAM_1);
}

const GOLDEN_STREAM_0: [u64; 3] = [
    12578764544318200737,
    17529487244874322312,
    7886285670807131020,
];
const GOLDEN_STREAM_1: [u64; 3] = [
    13222472167927179408,
    3078952320862533021,
    8898984633443201687,
];

#[test]
fn golden_small_scenario() {
    // Pinned outputs of a small scenario (value stability). Relative tolerance 1e-9 allows for
    // last-digit differences of libm between platforms, nothing more. If a deliberate change
    // of method moves them, re-pin and say so in the commit.
    let s = scenario(SMALL);
    let r = run(&s);
    let got = [
        r.portfolio.mean,
        r.portfolio.std,
        r.portfolio.var["0.995"],
        r.portfolio.tvar["0.995"],
        r.premium.flat_premium_per_member,
        r.groups[0].stats.mean_payout_per_member,
        r.groups[1].stats.prob_any_payout,
        r.groups[1].exact.mean_payout_per_member,
    ];
    for (g, want) in got.iter().zip(GOLDEN) {
        close("golden", *g, want, 1e-9);
    }
    assert_eq!(s.hash(), GOLDEN_HASH);
}

const GOLDEN: [f64; 8] = [
    2969074.7646942427,
    489793.51850894326,
    4225823.994643344,
    4390257.298645444,
    150.60904194349837,
    81.04659147658725,
    0.032323,
    449.94016073106764,
];
// The scenario names its method (`monte_carlo`), which is part of the canonical form.
const GOLDEN_HASH: &str = "1eeaa7cc30b3622cb3ba51fffd65f82cb7fb9a69d55c8779c9507493c8648232";

#[test]
fn progress_reaches_the_total_and_cancel_stops() {
    let s = scenario(SMALL);
    let progress = AtomicU64::new(0);
    price(
        &s,
        &RunOptions {
            progress: Some(&progress),
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert_eq!(progress.load(Ordering::Relaxed), s.progress_total());
    let cancel = Cancellation::new();
    cancel.cancel();
    let r = price(
        &s,
        &RunOptions {
            cancel: Some(&cancel),
            ..RunOptions::default()
        },
    );
    assert!(matches!(r, Err(PricingError::Cancelled)));
}

/// SMALL with a sweep of `rows` deductibles: every row rebuilds the member-level models.
fn swept(rows: usize, method: &str) -> actuarial::Scenario {
    let deductibles: Vec<String> = (0..rows).map(|i| (10_000 + 10 * i).to_string()).collect();
    let text = format!(
        "{}\n[sweep]\nsimulations = 1000\ninpatient.deductible = [{}]\n",
        SMALL.replace(
            "method = \"monte_carlo\"",
            &format!("method = \"{method}\"")
        ),
        deductibles.join(", ")
    );
    scenario(&text)
}

#[test]
fn a_cancelled_run_stops_whatever_its_method_and_an_uncancelled_one_is_unchanged() {
    for method in ["monte_carlo", "exact"] {
        let s = swept(3, method);
        let cancel = Cancellation::new();
        let with = price(
            &s,
            &RunOptions {
                cancel: Some(&cancel),
                ..RunOptions::default()
            },
        )
        .unwrap();
        let without = run(&s);
        assert_eq!(
            serde_json::to_value(&with).unwrap(),
            serde_json::to_value(&without).unwrap(),
            "{method}"
        );
        cancel.cancel();
        let stopped = price(
            &s,
            &RunOptions {
                cancel: Some(&cancel),
                ..RunOptions::default()
            },
        );
        assert!(matches!(stopped, Err(PricingError::Cancelled)), "{method}");
    }
}

#[test]
fn a_sweep_cancelled_while_it_runs_stops_before_its_last_row() {
    // Long by its size: 2,000 rows, each rebuilding its models and simulating 1,000 years.
    let s = swept(2_000, "monte_carlo");
    let progress = AtomicU64::new(0);
    let cancel = Cancellation::new();
    let total = s.progress_total();
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Once the sweep has started (the main run is done), ask it to stop.
            while progress.load(Ordering::Relaxed) <= s.simulations() {
                std::thread::yield_now();
            }
            cancel.cancel();
        });
        price(
            &s,
            &RunOptions {
                progress: Some(&progress),
                cancel: Some(&cancel),
                ..RunOptions::default()
            },
        )
    });
    assert!(matches!(outcome, Err(PricingError::Cancelled)));
    assert!(progress.load(Ordering::Relaxed) < total);
}

#[test]
fn premium_build_up_is_consistent() {
    let r = run(&scenario(SMALL));
    let p = &r.premium;
    let n = r.members as f64;
    close(
        "gross",
        p.gross_premium,
        (p.expected_payout + p.risk_margin) / (1.0 - 0.12),
        1e-12,
    );
    close(
        "risk margin",
        p.risk_margin,
        0.06 * (r.portfolio.tvar["0.99"] - r.portfolio.mean),
        1e-12,
    );
    close(
        "flat",
        p.flat_premium_per_member * n,
        p.gross_premium,
        1e-12,
    );
    close(
        "loss ratio",
        p.expected_loss_ratio,
        p.expected_payout / p.gross_premium,
        1e-12,
    );
    let subsidy: f64 = p.cross_subsidy.iter().map(|c| c.subsidy).sum();
    assert!(subsidy.abs() < 1e-6 * p.gross_premium, "{subsidy}");
    // The pre-existing group is subsidised by the standard one.
    assert!(p.cross_subsidy[0].subsidy > 0.0 && p.cross_subsidy[1].subsidy < 0.0);
    let t = p.target.as_ref().unwrap();
    close(
        "target premium",
        t.gross_premium,
        p.expected_payout / 0.85,
        1e-12,
    );
    close(
        "target margin",
        t.margin,
        t.gross_premium * 0.88 - p.expected_payout,
        1e-12,
    );
    // The group's deductible override applies: 40,000 rather than 20,000.
    let lower = run(&scenario(
        &SMALL.replace("inpatient.deductible = 40000\n", ""),
    ));
    let inp = |r: &actuarial::PricingResults| r.groups[1].exact.mean_payout_per_member;
    assert!(inp(&lower) > inp(&r) * 1.05);
}

#[test]
fn sweep_rows_reproduce_the_base_run_at_the_base_terms() {
    let text = format!(
        "{SMALL}\n[sweep]\nsimulations = 1000\ninpatient.deductible = [20000, 30000]\ntake_up_scale = [1.0, 0.5]\n"
    );
    let s = scenario(&text);
    let r = run(&s);
    let sw = r.sweep.as_ref().unwrap();
    assert_eq!(sw.keys, ["inpatient.deductible", "take_up_scale"]);
    assert_eq!(sw.rows.len(), 4);
    // Row (20000, 1.0) is the base scenario with the same seed and streams, except for the
    // group override of the deductible, which the sweep replaces: compare with that scenario.
    let base = run(&scenario(
        &SMALL.replace("inpatient.deductible = 40000\n", ""),
    ));
    assert_eq!(sw.rows[0].values, [20000.0, 1.0]);
    assert_eq!(sw.rows[0].expected_payout, base.portfolio.mean);
    assert_eq!(sw.rows[0].var, base.portfolio.var["0.99"]);
    // Half the members: about half the expected payout; a higher deductible pays less.
    assert_eq!(sw.rows[1].members, (20_000 / 2) + (3_000 / 2));
    let ratio = sw.rows[1].expected_payout / sw.rows[0].expected_payout;
    assert!((0.4..0.6).contains(&ratio), "{ratio}");
    assert!(sw.rows[2].expected_payout < sw.rows[0].expected_payout);
    let csv = sweep_csv(sw, "CNY");
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with(
        "inpatient.deductible [CNY],take_up_scale [x members],members [members],expected_payout [CNY per year],"
    ));
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("expected_loss_ratio [ratio]")
    );
    assert!(csv.lines().nth(1).unwrap().starts_with("20000,1,23000,"));
}

#[test]
fn adverse_selection_equilibrium_in_a_scenario() {
    // Group A never responds; group B (take-up 0.5 at the scenario's premium P0, elasticity 1)
    // responds: t_B(P) = 0.5 P0 / P. With no expenses and no risk margin the pool pays for itself
    // where E_A P^2 + (E_B t_B P0 - E_A b_A) P - E_B t_B P0 b_B = 0, with b the groups' pure
    // premiums and P0 the recommended flat premium.
    // Monte Carlo: the risk margin of other pools is scaled (here it is 0 anyway).
    let text = r#"
name = "adverse"
seed = 8
simulations = 1000
method = "monte_carlo"
[benefits.specialty_drug]
deductible = 0
coinsurance = 1.0
annual_limit = 1000000
[[groups]]
id = "a"
members = 1000
take_up = 1.0
take_up_elasticity = 0
specialty_drug.need_rate = 0.01
specialty_drug.cost = { distribution = "gamma", mean = 10000, cv = 0.5 }
[[groups]]
id = "b"
members = 500
take_up = 0.5
take_up_elasticity = 1
specialty_drug.need_rate = 0.001
specialty_drug.cost = { distribution = "gamma", mean = 10000, cv = 0.5 }
[pricing]
expense_ratio = 0
cost_of_capital = 0
risk_measure = "var"
level = 0.99
[adverse_selection]
max_premium = 1000
renewal_years = 40
"#;
    let r = run(&scenario(text));
    let a = r.adverse_selection.as_ref().unwrap();
    assert_eq!(a.repricing, "scaled");
    let (ba, bb) = (
        r.groups[0].stats.mean_payout_per_member,
        r.groups[1].stats.mean_payout_per_member,
    );
    // Exact pure premiums are 100 and 10; the simulated ones are within their errors.
    within(
        "b_A",
        ba,
        r.groups[0].stats.mean_payout_per_member_se,
        100.0,
    );
    within("b_B", bb, r.groups[1].stats.mean_payout_per_member_se, 10.0);
    let (ea, eb, tb) = (1000.0, 1000.0, 0.5);
    let p0 = r.premium.flat_premium_per_member;
    let (qa, qb, qc) = (ea, eb * tb * p0 - ea * ba, -eb * tb * p0 * bb);
    let expected = (-qb + (qb * qb - 4.0 * qa * qc).sqrt()) / (2.0 * qa);
    assert_eq!(a.status, "equilibrium");
    close(
        "equilibrium premium",
        a.premium_per_member.unwrap(),
        expected,
        1e-9,
    );
    close(
        "members",
        a.members.unwrap(),
        ea + eb * tb * p0 / expected,
        1e-9,
    );
    // Year 0 of the renewal path is the main report's pool at its premium.
    let year0 = &a.renewal[0];
    close("year 0 premium", year0.premium_per_member, p0, 1e-12);
    close("year 0 members", year0.members, r.members as f64, 1e-12);
    close(
        "year 0 loss ratio",
        year0.expected_loss_ratio,
        r.premium.expected_loss_ratio,
        1e-9,
    );
    let last = a.renewal.last().unwrap();
    close("renewal converges", last.premium_per_member, expected, 1e-6);

    let capped = run(&scenario(
        &text.replace("max_premium = 1000", "max_premium = 50"),
    ));
    let a = capped.adverse_selection.unwrap();
    assert_eq!(a.status, "no_equilibrium");
    assert!(a.premium_per_member.is_none());

    // A stated premium is where the take-up is observed: the path starts there with the main
    // report's members, and its loss ratio is the one reported at that premium.
    let sold = run(&scenario(
        &text.replace("level = 0.99\n", "level = 0.99\npremium = 80\n"),
    ));
    let at = sold.premium.at_premium.as_ref().unwrap();
    let year0 = &sold.adverse_selection.as_ref().unwrap().renewal[0];
    close("stated premium", year0.premium_per_member, 80.0, 1e-12);
    close("members at 80", year0.members, sold.members as f64, 1e-12);
    close(
        "loss ratio at 80",
        year0.expected_loss_ratio,
        at.expected_loss_ratio,
        1e-9,
    );
    close(
        "loss ratio at 80 from the mean",
        at.expected_loss_ratio,
        sold.portfolio.mean / (80.0 * 1500.0),
        1e-12,
    );
}

#[test]
fn take_up_scale_moves_the_groups_that_respond_to_the_premium() {
    // "young" leaves fast (elasticity 1), "old" barely (0.1): a 20% smaller pool forms at the
    // premium ratio r with 8,000 r^-1 + 2,000 r^-0.1 = 8,000 (take-ups observed at today's
    // premium), and the pool left is older.
    let text = r#"
name = "selection"
seed = 3
simulations = 1000
method = "monte_carlo"
[benefits.specialty_drug]
deductible = 0
coinsurance = 1.0
annual_limit = 1000000
[[groups]]
id = "young"
members = 8000
take_up = 0.4
take_up_elasticity = 1.0
specialty_drug.need_rate = 0.001
specialty_drug.cost = { distribution = "gamma", mean = 10000, cv = 0.5 }
[[groups]]
id = "old"
members = 2000
take_up = 0.5
take_up_elasticity = 0.1
specialty_drug.need_rate = 0.01
specialty_drug.cost = { distribution = "gamma", mean = 10000, cv = 0.5 }
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
[sweep]
take_up_scale = [1.0, 0.8]
"#;
    let r = run(&scenario(text));
    let rows = &r.sweep.as_ref().unwrap().rows;
    assert_eq!(rows[0].members, 10_000);
    assert!(rows[1].members.abs_diff(8_000) <= 1, "{}", rows[1].members);
    let ratio = rows[1].enrolment_premium_ratio.unwrap();
    let members = 8000.0 / ratio + 2000.0 * ratio.powf(-0.1);
    close("enrolment at the ratio", members, 8000.0, 1e-9);
    assert!(ratio > 1.0, "fewer members at a higher premium: {ratio}");
    // The older pool costs more per member than today's, not the same as scaling alike would.
    let per_member = |row: &actuarial::results::SweepRow| row.expected_payout / row.members as f64;
    assert!(per_member(&rows[1]) > 1.05 * per_member(&rows[0]));
    // An enrolment no premium reaches (everyone eligible is 24,000) names the key.
    let e = actuarial::Scenario::from_toml_str(
        &text.replace("[1.0, 0.8]", "[1.0, 2.5]"),
        "t.toml",
        &actuarial::NoTables,
    )
    .map(|s| actuarial::price(&s, &actuarial::RunOptions::default()));
    let message = match e {
        Ok(Err(e)) => e.to_string(),
        other => panic!("expected a sweep error, got {other:?}"),
    };
    assert!(message.contains("sweep.take_up_scale"), "{message}");
}

/// Two groups, the young leaving fast, and a cost factor every member shares: the renewal path's
/// pools are re-priced exactly, so each year's premium is the recommended premium of that pool
/// priced on its own.
fn repriced_pool(young: u64, old: u64, extra: &str) -> String {
    format!(
        r#"
name = "repriced"
seed = 9
simulations = 1000
[benefits.inpatient]
deductible = 10000
coinsurance = 0.8
annual_limit = 500000
[[groups]]
id = "young"
members = {young}
take_up = 0.4
take_up_elasticity = 1.5
inpatient.frequency = {{ distribution = "poisson", mean = 0.03 }}
inpatient.severity = {{ distribution = "lognormal", mean = 15000, cv = 1.5 }}
[[groups]]
id = "old"
members = {old}
take_up = 0.5
take_up_elasticity = 0.1
inpatient.frequency = {{ distribution = "poisson", mean = 0.2 }}
inpatient.severity = {{ distribution = "lognormal", mean = 25000, cv = 1.5 }}
[[risk_factors]]
id = "cost"
applies_to = ["inpatient.severity"]
distribution = {{ distribution = "gamma", cv = 0.1 }}
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.1
risk_measure = "tvar"
level = 0.995
{extra}
"#
    )
}

#[test]
fn adverse_selection_reprices_each_pool_exactly() {
    let text = repriced_pool(
        40_000,
        10_000,
        "premium = 300\n[adverse_selection]\nrenewal_years = 2\nmax_premium = 5000\n",
    );
    let r = run(&scenario(&text));
    assert_eq!(r.method.name, "exact");
    let a = r.adverse_selection.as_ref().unwrap();
    assert_eq!(a.repricing, "exact");
    let path = &a.renewal;
    assert_eq!(path.len(), 3);
    // Year 0 is the main report's pool at the stated premium; year 1's premium is what that
    // pool needs, the main report's recommended premium.
    close("year 0 premium", path[0].premium_per_member, 300.0, 1e-12);
    close("year 0 members", path[0].members, r.members as f64, 1e-12);
    close(
        "year 0 loss ratio",
        path[0].expected_loss_ratio,
        r.premium.at_premium.as_ref().unwrap().expected_loss_ratio,
        1e-9,
    );
    close(
        "year 1 premium",
        path[1].premium_per_member,
        r.premium.flat_premium_per_member,
        1e-12,
    );
    // Year 2's premium is the recommended premium of the pool enrolled at year 1's, priced as
    // a scenario of its own.
    let p1 = path[1].premium_per_member;
    let at =
        |t: f64, e: f64, eligible: f64| (eligible * (t * (300.0 / p1).powf(e)).min(1.0)).round();
    let (young, old) = (at(0.4, 1.5, 100_000.0), at(0.5, 0.1, 20_000.0));
    let own = run(&scenario(&repriced_pool(young as u64, old as u64, "")));
    close(
        "year 2 premium",
        path[2].premium_per_member,
        own.premium.flat_premium_per_member,
        1e-12,
    );
    // The equilibrium is a fixed point of the exact pricing, to the stated residual.
    let p = a.premium_per_member.expect("an equilibrium");
    let residual = a.equilibrium_residual_per_member.unwrap();
    assert!(residual <= 1e-3 * p, "residual {residual} at {p}");
}

#[test]
fn the_admission_estimate_counts_the_exact_repricings() {
    let plain = scenario(&repriced_pool(40_000, 10_000, ""));
    let with = scenario(&repriced_pool(
        40_000,
        10_000,
        "[adverse_selection]\nrenewal_years = 4\n",
    ));
    let extra = with.work_estimate().main - plain.work_estimate().main;
    let expected = 2.0
        * actuarial::MODEL_BUILD_MEMBER_YEARS
        * f64::from(4 + actuarial::adverse::EXACT_SOLVE_STEPS);
    close("re-pricing work", extra, expected, 1e-12);
    // The Monte Carlo scales the risk margin instead: nothing more to count.
    let mc = |t: &str| {
        scenario(&format!("method = \"monte_carlo\"\n{t}"))
            .work_estimate()
            .main
    };
    close(
        "Monte Carlo",
        mc(&repriced_pool(
            40_000,
            10_000,
            "[adverse_selection]\nrenewal_years = 4\n",
        )),
        mc(&repriced_pool(40_000, 10_000, "")),
        1e-12,
    );
}
