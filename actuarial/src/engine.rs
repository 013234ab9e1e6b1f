//! The Monte Carlo engine and the assembly of results.
//!
//! Simulation per portfolio-year and group: draw how many members have an inpatient payout, a
//! drug payout, or both (binomial draws, exact), then draw only those members' payouts from the
//! exact member-level distributions (alias tables). Members with no payout cost nothing, so the
//! work is proportional to paying members, not to members.
//!
//! Reproducibility: portfolio-years are cut into fixed blocks of [`BLOCK_YEARS`]; block b uses
//! `ChaCha8Rng::seed_from_u64(seed)` on stream b, and block results are merged sequentially in
//! block order. Neither depends on the thread count, so neither do the results.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use crate::adverse::{self, Outcome, PoolGroup, PoolParams};
use crate::member::{PayoutDistribution, PayoutError, Resolution};
use crate::results::*;
use crate::scenario::{
    Benefit, REPORT_LEVELS, RiskMeasure, Scenario, SweepKey, SweepSpec, TermKind,
};
use crate::stats::{MemberStats, Moments, Sample};

/// Portfolio-years per block of work (one RNG stream each). Part of the reproducibility
/// contract: changing it changes every result.
pub const BLOCK_YEARS: u64 = 128;

/// How to run: threads, progress and cancellation. All optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunOptions<'a> {
    /// Run on this pool (the HTTP API's); takes precedence over `threads`.
    pub pool: Option<&'a rayon::ThreadPool>,
    /// Run on a new pool of this many threads; otherwise on the current (global) pool.
    pub threads: Option<usize>,
    /// Incremented by the number of portfolio-years simulated; the total is
    /// [`Scenario::progress_total`].
    pub progress: Option<&'a AtomicU64>,
    /// Checked between portfolio-years; when set the run stops with [`PricingError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("the run was cancelled")]
    Cancelled,
    #[error("cannot start a pool of {threads} threads: {message}")]
    ThreadPool { threads: usize, message: String },
    #[error("group `{group}`, {benefit}: {source}")]
    Payout {
        group: String,
        benefit: &'static str,
        source: PayoutError,
    },
}

/// Prices a scenario: main run, adverse selection and sweep when the scenario asks for them.
pub fn price(
    scenario: &Scenario,
    options: &RunOptions<'_>,
) -> Result<PricingResults, PricingError> {
    if let Some(pool) = options.pool {
        return pool.install(|| price_here(scenario, options));
    }
    if let Some(threads) = options.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| PricingError::ThreadPool {
                threads,
                message: e.to_string(),
            })?;
        return pool.install(|| price_here(scenario, options));
    }
    price_here(scenario, options)
}

fn price_here(
    scenario: &Scenario,
    options: &RunOptions<'_>,
) -> Result<PricingResults, PricingError> {
    let models = build_models(scenario)?;
    let sim = simulate(&models, scenario.simulations, scenario.seed, options)?;
    let mut results = assemble(scenario, &models, &sim);
    if let Some(spec) = &scenario.adverse_selection {
        results.adverse_selection = Some(adverse_selection(
            scenario,
            &results,
            spec.max_premium,
            spec.renewal_years,
        ));
    }
    if let Some(spec) = &scenario.sweep {
        results.sweep = Some(sweep(scenario, spec, options)?);
    }
    Ok(results)
}

/// One group's member-level model.
pub struct GroupModel {
    pub members: u64,
    pub inpatient: Option<PayoutDistribution>,
    pub specialty_drug: Option<PayoutDistribution>,
    q_inpatient: f64,
    q_drug: f64,
    /// The first binomial of the category draws has fixed parameters: built once.
    first: Option<Binomial>,
}

impl GroupModel {
    pub fn new(
        members: u64,
        inpatient: Option<PayoutDistribution>,
        specialty_drug: Option<PayoutDistribution>,
    ) -> Self {
        let q = |d: &Option<PayoutDistribution>| {
            d.as_ref().map_or(0.0, |d| d.prob_positive.clamp(0.0, 1.0))
        };
        let q_inpatient = q(&inpatient);
        let q_drug = q(&specialty_drug);
        let first_p = if q_inpatient > 0.0 && q_drug > 0.0 {
            q_inpatient * q_drug
        } else {
            q_inpatient.max(q_drug)
        };
        let first = if members > 0 && first_p > 0.0 {
            Binomial::new(members, first_p).ok()
        } else {
            None
        };
        Self {
            members,
            inpatient,
            specialty_drug,
            q_inpatient,
            q_drug,
            first,
        }
    }

    /// Members with (both, inpatient only, drug only) payouts this year. The benefits are
    /// independent, so the categories are multinomial; drawn as successive binomials.
    #[inline]
    fn categories(&self, rng: &mut ChaCha8Rng) -> (u64, u64, u64) {
        let Some(first) = &self.first else {
            return (0, 0, 0);
        };
        let k = first.sample(rng);
        let (qi, qd) = (self.q_inpatient, self.q_drug);
        if qi > 0.0 && qd > 0.0 {
            let rest = self.members - k;
            let denom = 1.0 - qi * qd;
            let p_inp = if denom > 0.0 {
                (qi * (1.0 - qd) / denom).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let inp_only = binomial(rest, p_inp, rng);
            // Given neither "both" nor "inpatient only", the drug-only probability is
            // (1 - qi) qd / (1 - qi) = qd.
            let drug_only = binomial(rest - inp_only, qd, rng);
            (k, inp_only, drug_only)
        } else if qi > 0.0 {
            (0, k, 0)
        } else {
            (0, 0, k)
        }
    }
}

#[inline]
fn binomial(n: u64, p: f64, rng: &mut ChaCha8Rng) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    // Parameters are checked above, so construction cannot fail; 0 keeps the function total.
    Binomial::new(n, p).map_or(0, |b| b.sample(rng))
}

pub fn build_models(scenario: &Scenario) -> Result<Vec<GroupModel>, PricingError> {
    build_models_at(scenario, Resolution::default())
}

pub fn build_models_at(
    scenario: &Scenario,
    resolution: Resolution,
) -> Result<Vec<GroupModel>, PricingError> {
    scenario
        .groups
        .par_iter()
        .map(|g| {
            let build = |b: Benefit| -> Result<Option<PayoutDistribution>, PricingError> {
                match g.benefit_model(b, &scenario.benefits) {
                    None => Ok(None),
                    Some((f, s, t)) => PayoutDistribution::build(&f, &s, &t, resolution)
                        .map(Some)
                        .map_err(|source| PricingError::Payout {
                            group: g.id.clone(),
                            benefit: b.key(),
                            source,
                        }),
                }
            };
            Ok(GroupModel::new(
                g.members,
                build(Benefit::Inpatient)?,
                build(Benefit::SpecialtyDrug)?,
            ))
        })
        .collect()
}

/// Per-group sums over simulated member-years.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupAcc {
    pub n_inp_only: u64,
    pub n_drug_only: u64,
    pub n_both: u64,
    pub inp_only: Moments,
    pub drug_only: Moments,
    pub both_inp: Moments,
    pub both_drug: Moments,
    pub both_total: Moments,
}

impl GroupAcc {
    fn merge(&mut self, o: &Self) {
        self.n_inp_only += o.n_inp_only;
        self.n_drug_only += o.n_drug_only;
        self.n_both += o.n_both;
        self.inp_only.merge(&o.inp_only);
        self.drug_only.merge(&o.drug_only);
        self.both_inp.merge(&o.both_inp);
        self.both_drug.merge(&o.both_drug);
        self.both_total.merge(&o.both_total);
    }
}

pub struct SimOutput {
    /// Portfolio total per simulated year, in simulation order.
    pub totals: Vec<f64>,
    pub groups: Vec<GroupAcc>,
}

struct BlockOut {
    totals: Vec<f64>,
    groups: Vec<GroupAcc>,
}

/// Random words are drawn in batches before use, so that the accumulation loop makes no calls
/// and its sums stay in registers. Words are consumed in the same order as one at a time.
const BATCH: usize = 64;

fn draw_many(dist: Option<&PayoutDistribution>, k: u64, rng: &mut ChaCha8Rng) -> Moments {
    let (mut s1, mut s2, mut s3, mut s4) = (0.0, 0.0, 0.0, 0.0);
    if let Some(d) = dist {
        let mut words = [0u64; BATCH];
        let mut left = k;
        while left > 0 {
            let n = left.min(BATCH as u64) as usize;
            for w in &mut words[..n] {
                *w = rng.next_u64();
            }
            for &w in &words[..n] {
                let y = d.sample_positive_word(w);
                let y2 = y * y;
                s1 += y;
                s2 += y2;
                s3 += y2 * y;
                s4 += y2 * y2;
            }
            left -= n as u64;
        }
    }
    Moments { s1, s2, s3, s4 }
}

/// Members with payouts under both benefits: one inpatient and one drug draw each, in that
/// order. Returns the sums for inpatient, drug and the member total.
fn draw_both(
    inpatient: &PayoutDistribution,
    drug: &PayoutDistribution,
    k: u64,
    rng: &mut ChaCha8Rng,
) -> (Moments, Moments, Moments) {
    let (mut mi, mut md, mut mt) = (Moments::default(), Moments::default(), Moments::default());
    let mut words = [0u64; BATCH];
    let mut left = k;
    while left > 0 {
        let n = left.min((BATCH / 2) as u64) as usize;
        for w in &mut words[..2 * n] {
            *w = rng.next_u64();
        }
        for pair in words[..2 * n].chunks_exact(2) {
            let yi = inpatient.sample_positive_word(pair[0]);
            let yd = drug.sample_positive_word(pair[1]);
            mi.add(yi);
            md.add(yd);
            mt.add(yi + yd);
        }
        left -= n as u64;
    }
    (mi, md, mt)
}

fn run_block(
    models: &[GroupModel],
    seed: u64,
    block: u64,
    years: u64,
    cancel: Option<&AtomicBool>,
) -> Option<BlockOut> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(block);
    let mut totals = Vec::with_capacity(years as usize);
    let mut groups = vec![GroupAcc::default(); models.len()];
    for _ in 0..years {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let mut total = 0.0;
        for (model, acc) in models.iter().zip(groups.iter_mut()) {
            let (both, inp_only, drug_only) = model.categories(&mut rng);
            if inp_only > 0 {
                let m = draw_many(model.inpatient.as_ref(), inp_only, &mut rng);
                acc.n_inp_only += inp_only;
                acc.inp_only.merge(&m);
                total += m.s1;
            }
            if drug_only > 0 {
                let m = draw_many(model.specialty_drug.as_ref(), drug_only, &mut rng);
                acc.n_drug_only += drug_only;
                acc.drug_only.merge(&m);
                total += m.s1;
            }
            if both > 0 {
                acc.n_both += both;
                if let (Some(di), Some(dd)) = (&model.inpatient, &model.specialty_drug) {
                    let (mi, md, mt) = draw_both(di, dd, both, &mut rng);
                    acc.both_inp.merge(&mi);
                    acc.both_drug.merge(&md);
                    acc.both_total.merge(&mt);
                    total += mt.s1;
                }
            }
        }
        totals.push(total);
    }
    Some(BlockOut { totals, groups })
}

/// Simulates `years` portfolio-years. Blocks run in parallel in waves; each wave's results are
/// merged in block order, which bounds memory (one wave of per-group sums at a time) and keeps
/// the float summation order fixed.
pub fn simulate(
    models: &[GroupModel],
    years: u64,
    seed: u64,
    options: &RunOptions<'_>,
) -> Result<SimOutput, PricingError> {
    let blocks = years.div_ceil(BLOCK_YEARS);
    let wave = (rayon::current_num_threads() as u64).max(1) * 4;
    let mut totals = Vec::with_capacity(years as usize);
    let mut groups = vec![GroupAcc::default(); models.len()];
    let mut start = 0;
    while start < blocks {
        let end = (start + wave).min(blocks);
        let outs: Vec<Option<BlockOut>> = (start..end)
            .into_par_iter()
            .map(|b| {
                let n = BLOCK_YEARS.min(years - b * BLOCK_YEARS);
                let out = run_block(models, seed, b, n, options.cancel);
                if let (Some(_), Some(p)) = (&out, options.progress) {
                    p.fetch_add(n, Ordering::Relaxed);
                }
                out
            })
            .collect();
        for out in outs {
            let out = out.ok_or(PricingError::Cancelled)?;
            totals.extend_from_slice(&out.totals);
            for (a, b) in groups.iter_mut().zip(&out.groups) {
                a.merge(b);
            }
        }
        start = end;
    }
    Ok(SimOutput { totals, groups })
}

fn payout_stats(s: MemberStats) -> PayoutStats {
    PayoutStats {
        mean_payout_per_member: s.mean,
        mean_payout_per_member_se: s.mean_se,
        std_payout_per_member: s.std,
        std_payout_per_member_se: s.std_se,
        prob_any_payout: s.prob,
        prob_any_payout_se: s.prob_se,
    }
}

fn level_key(level: f64) -> String {
    format!("{level}")
}

struct Core {
    groups: Vec<GroupResult>,
    portfolio: PortfolioResult,
    premium: PremiumResult,
    sweep_tail: (f64, f64, f64, f64),
}

fn core(scenario: &Scenario, models: &[GroupModel], sim: &SimOutput) -> Core {
    let years = sim.totals.len() as f64;
    let mut groups = Vec::with_capacity(models.len());
    for ((g, model), acc) in scenario.groups.iter().zip(models).zip(&sim.groups) {
        let n = g.members as f64 * years;
        let mut inp_m = acc.inp_only;
        inp_m.merge(&acc.both_inp);
        let mut drug_m = acc.drug_only;
        drug_m.merge(&acc.both_drug);
        let mut all_m = acc.inp_only;
        all_m.merge(&acc.drug_only);
        all_m.merge(&acc.both_total);
        let inp = MemberStats::from_sums(n, (acc.n_inp_only + acc.n_both) as f64, &inp_m);
        let drug = MemberStats::from_sums(n, (acc.n_drug_only + acc.n_both) as f64, &drug_m);
        let all = MemberStats::from_sums(
            n,
            (acc.n_inp_only + acc.n_drug_only + acc.n_both) as f64,
            &all_m,
        );
        let exact_parts = [&model.inpatient, &model.specialty_drug];
        let mean: f64 = exact_parts
            .iter()
            .filter_map(|d| d.as_ref())
            .map(|d| d.mean)
            .sum();
        let var: f64 = exact_parts
            .iter()
            .filter_map(|d| d.as_ref())
            .map(|d| d.variance())
            .sum();
        let none: f64 = exact_parts
            .iter()
            .filter_map(|d| d.as_ref())
            .map(|d| 1.0 - d.prob_positive)
            .product();
        groups.push(GroupResult {
            id: g.id.clone(),
            members: g.members,
            preexisting: g.preexisting,
            stats: payout_stats(all),
            by_benefit: ByBenefit {
                inpatient: model.inpatient.as_ref().map(|_| payout_stats(inp)),
                specialty_drug: model.specialty_drug.as_ref().map(|_| payout_stats(drug)),
            },
            exact: ExactStats {
                mean_payout_per_member: mean,
                std_payout_per_member: var.sqrt(),
                prob_any_payout: 1.0 - none,
            },
        });
    }

    let sample = Sample::new(&sim.totals);
    let members = scenario.total_members();
    let mut portfolio = PortfolioResult {
        members,
        mean: sample.mean,
        mean_se: sample.mean_se,
        std: sample.std,
        std_se: sample.std_se,
        var: Default::default(),
        var_se: Default::default(),
        tvar: Default::default(),
        tvar_se: Default::default(),
    };
    for level in REPORT_LEVELS {
        let t = sample.tail(level);
        let k = level_key(level);
        portfolio.var.insert(k.clone(), t.var);
        portfolio.var_se.insert(k.clone(), t.var_se);
        portfolio.tvar.insert(k.clone(), t.tvar);
        portfolio.tvar_se.insert(k, t.tvar_se);
    }

    let pricing = &scenario.pricing;
    let tail = sample.tail(pricing.level);
    let (measure, measure_se) = match pricing.risk_measure {
        RiskMeasure::Tvar => (tail.tvar, tail.tvar_se),
        RiskMeasure::Var => (tail.var, tail.var_se),
    };
    let mean = sample.mean;
    let coc = pricing.cost_of_capital;
    let excess = (measure - mean).max(0.0);
    let risk_margin = coc * excess;
    let risk_margin_se = coc * (measure_se + sample.mean_se);
    let load = 1.0 / (1.0 - pricing.expense_ratio);
    let gross = (mean + risk_margin) * load;
    // (1 - coc) mean + coc measure, errors combined as if perfectly correlated (an upper bound).
    let gross_se = ((1.0 - coc).abs() * sample.mean_se + coc * measure_se) * load;
    let nm = members.max(1) as f64;
    let flat = gross / nm;
    let flat_se = gross_se / nm;
    let loss_ratio = if gross > 0.0 { mean / gross } else { 0.0 };
    let denom = mean + risk_margin;
    let loss_ratio_se = if denom > 0.0 {
        (1.0 - pricing.expense_ratio) * coc * (measure * sample.mean_se + mean * measure_se)
            / (denom * denom)
    } else {
        0.0
    };
    let (p_exceed, p_exceed_se) = sample.prob_above(gross);

    let target = pricing.target_loss_ratio.map(|t| {
        let premium = mean / t;
        let margin = premium * (1.0 - pricing.expense_ratio) - mean;
        let (p, p_se) = sample.prob_above(premium);
        TargetLossRatioResult {
            target_loss_ratio: t,
            premium_per_member: premium / nm,
            premium_per_member_se: sample.mean_se / t / nm,
            gross_premium: premium,
            margin,
            margin_per_member: margin / nm,
            margin_to_risk_margin: if risk_margin > 0.0 {
                margin / risk_margin
            } else {
                0.0
            },
            prob_loss_ratio_above_100: p,
            prob_loss_ratio_above_100_se: p_se,
        }
    });

    let mean_per_member = mean / nm;
    let cross_subsidy = groups
        .iter()
        .map(|g| {
            let b = g.stats.mean_payout_per_member;
            let risk_rated = if mean_per_member > 0.0 {
                flat * b / mean_per_member
            } else {
                flat
            };
            let m = g.members as f64;
            CrossSubsidyRow {
                id: g.id.clone(),
                members: g.members,
                pure_premium_per_member: b,
                pure_premium_per_member_se: g.stats.mean_payout_per_member_se,
                risk_rated_premium_per_member: risk_rated,
                flat_premium_per_member: flat,
                premium_paid: flat * m,
                expected_payout: b * m,
                subsidy: (flat - risk_rated) * m,
                loss_ratio: if flat > 0.0 { b / flat } else { 0.0 },
            }
        })
        .collect();

    let premium = PremiumResult {
        risk_measure: pricing.risk_measure,
        level: pricing.level,
        expense_ratio: pricing.expense_ratio,
        cost_of_capital: coc,
        expected_payout: mean,
        expected_payout_se: sample.mean_se,
        risk_measure_value: measure,
        risk_measure_value_se: measure_se,
        risk_margin,
        risk_margin_se,
        expenses: gross * pricing.expense_ratio,
        gross_premium: gross,
        gross_premium_se: gross_se,
        flat_premium_per_member: flat,
        flat_premium_per_member_se: flat_se,
        expected_loss_ratio: loss_ratio,
        expected_loss_ratio_se: loss_ratio_se,
        prob_loss_ratio_above_100: p_exceed,
        prob_loss_ratio_above_100_se: p_exceed_se,
        target,
        cross_subsidy,
    };
    Core {
        groups,
        portfolio,
        premium,
        sweep_tail: (tail.var, tail.var_se, tail.tvar, tail.tvar_se),
    }
}

pub fn assemble(scenario: &Scenario, models: &[GroupModel], sim: &SimOutput) -> PricingResults {
    let c = core(scenario, models, sim);
    let mut max_rel: f64 = 0.0;
    let mut max_prob: f64 = 0.0;
    for m in models {
        for d in [&m.inpatient, &m.specialty_drug].into_iter().flatten() {
            if d.mean > 0.0 {
                max_rel = max_rel.max(d.mean_error_estimate / d.mean);
            }
            max_prob = max_prob.max(d.prob_error_estimate);
        }
    }
    PricingResults {
        name: scenario.name.clone(),
        currency: scenario.currency.clone(),
        seed: scenario.seed,
        simulations: sim.totals.len() as u64,
        scenario_hash: scenario.hash(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("PUHUI_GIT_COMMIT").to_string(),
        members: scenario.total_members(),
        groups: c.groups,
        portfolio: c.portfolio,
        premium: c.premium,
        adverse_selection: None,
        sweep: None,
        method: MethodInfo {
            description: "Per portfolio-year and group: binomial counts of members with a payout \
                (inpatient, specialty drug, both); their payouts drawn from the member-level \
                payout distributions, computed exactly up to discretisation (single-claim cells \
                at exact conditional means; compound claims by FFT of a moment-matched lattice)."
                .to_string(),
            rng: "ChaCha8Rng seeded with seed, stream = block index".to_string(),
            block_years: BLOCK_YEARS,
            max_relative_discretisation_error: max_rel,
            max_prob_discretisation_error: max_prob,
        },
    }
}

fn adverse_selection(
    scenario: &Scenario,
    results: &PricingResults,
    max_premium: Option<f64>,
    renewal_years: u32,
) -> AdverseSelectionResult {
    let pool: Vec<PoolGroup> = scenario
        .groups
        .iter()
        .zip(&results.groups)
        .map(|(g, r)| PoolGroup {
            eligible: g.eligible,
            base_take_up: g.base_take_up,
            elasticity: g.elasticity,
            pure_premium: r.stats.mean_payout_per_member,
            variance: r.stats.std_payout_per_member * r.stats.std_payout_per_member,
        })
        .collect();
    let p = &results.premium;
    let std = results.portfolio.std;
    let risk_factor = if std > 0.0 {
        (p.risk_measure_value - p.expected_payout).max(0.0) / std
    } else {
        0.0
    };
    let base = p.flat_premium_per_member;
    // Without a stated ceiling: ten times the base premium, far beyond what a flat inclusive
    // product has been sold at.
    let max_premium = max_premium.unwrap_or(10.0 * base).max(f64::MIN_POSITIVE);
    let params = PoolParams {
        expense_ratio: scenario.pricing.expense_ratio,
        cost_of_capital: scenario.pricing.cost_of_capital,
        risk_factor,
        max_premium,
    };
    let outcome = adverse::solve(&pool, &params);
    let renewal = adverse::renewal_path(&pool, &params, base, renewal_years);
    let at = match outcome {
        Outcome::Equilibrium { premium, .. } => premium,
        Outcome::NoEquilibrium => max_premium,
    };
    let groups = scenario
        .groups
        .iter()
        .zip(&pool)
        .map(|(g, pg)| {
            let t = adverse::take_up(pg, at);
            GroupTakeUp {
                id: g.id.clone(),
                take_up: t,
                members: pg.eligible * t,
            }
        })
        .collect();
    match outcome {
        Outcome::Equilibrium { premium, members } => {
            let expected: f64 = pool
                .iter()
                .map(|g| g.eligible * adverse::take_up(g, premium) * g.pure_premium)
                .sum::<f64>()
                / members.max(f64::MIN_POSITIVE);
            AdverseSelectionResult {
                status: "equilibrium".into(),
                max_premium,
                premium_per_member: Some(premium),
                members: Some(members),
                expected_payout_per_member: Some(expected),
                risk_factor,
                groups,
                renewal,
            }
        }
        Outcome::NoEquilibrium => AdverseSelectionResult {
            status: "no_equilibrium".into(),
            max_premium,
            premium_per_member: None,
            members: None,
            expected_payout_per_member: None,
            risk_factor,
            groups,
            renewal,
        },
    }
}

/// The scenario at one sweep point: term values replace the scenario's and the groups' own;
/// `take_up_scale` multiplies every group's enrolment, capped at its eligible population.
pub fn sweep_point(scenario: &Scenario, spec: &SweepSpec, values: &[f64]) -> Scenario {
    let mut s = scenario.clone();
    s.sweep = None;
    s.adverse_selection = None;
    s.simulations = spec.simulations;
    for (axis, &x) in spec.axes.iter().zip(values) {
        match axis.key {
            SweepKey::Term(b, kind) => {
                if let Some(t) = s.benefits.get_mut(b) {
                    match kind {
                        TermKind::Deductible => t.deductible = x,
                        TermKind::Coinsurance => t.coinsurance = x,
                        TermKind::CoinsurancePreexisting => t.coinsurance_preexisting = x,
                        TermKind::AnnualLimit => t.annual_limit = x,
                    }
                }
                for g in &mut s.groups {
                    let o = match b {
                        Benefit::Inpatient => g.inpatient.as_mut().map(|r| &mut r.overrides),
                        Benefit::SpecialtyDrug => {
                            g.specialty_drug.as_mut().map(|r| &mut r.overrides)
                        }
                    };
                    if let Some(o) = o {
                        match kind {
                            TermKind::Deductible => o.deductible = None,
                            TermKind::Coinsurance => o.coinsurance = None,
                            TermKind::CoinsurancePreexisting => o.coinsurance_preexisting = None,
                            TermKind::AnnualLimit => o.annual_limit = None,
                        }
                    }
                }
            }
            SweepKey::TakeUpScale => {
                for g in &mut s.groups {
                    let scaled = (g.members as f64 * x)
                        .round()
                        .min(g.eligible.floor().max(g.members as f64));
                    g.members = scaled.max(0.0) as u64;
                }
            }
        }
    }
    s
}

/// All combinations, first axis slowest.
pub fn sweep_combinations(spec: &SweepSpec) -> Vec<Vec<f64>> {
    let mut rows: Vec<Vec<f64>> = vec![Vec::new()];
    for axis in &spec.axes {
        rows = rows
            .into_iter()
            .flat_map(|r| {
                axis.values.iter().map(move |&v| {
                    let mut r = r.clone();
                    r.push(v);
                    r
                })
            })
            .collect();
    }
    rows
}

fn sweep(
    scenario: &Scenario,
    spec: &SweepSpec,
    options: &RunOptions<'_>,
) -> Result<SweepResult, PricingError> {
    let mut rows = Vec::new();
    // take_up_scale is the last axis, so consecutive rows often differ only in enrolment: the
    // member-level distributions of the previous row are then reused.
    let mut previous: Option<(Vec<u64>, Vec<GroupModel>)> = None;
    for values in sweep_combinations(spec) {
        let s = sweep_point(scenario, spec, &values);
        let term_key: Vec<u64> = spec
            .axes
            .iter()
            .zip(&values)
            .filter(|(a, _)| a.key != SweepKey::TakeUpScale)
            .map(|(_, v)| v.to_bits())
            .collect();
        let models = match previous.take() {
            Some((key, models)) if key == term_key => models
                .into_iter()
                .zip(&s.groups)
                .map(|(m, g)| GroupModel::new(g.members, m.inpatient, m.specialty_drug))
                .collect(),
            _ => build_models(&s)?,
        };
        // The same seed and streams at every point: common random numbers make differences
        // between rows much less noisy than the rows themselves.
        let sim = simulate(&models, s.simulations, s.seed, options)?;
        let c = core(&s, &models, &sim);
        let (var, var_se, tvar, tvar_se) = c.sweep_tail;
        rows.push(SweepRow {
            values,
            members: s.total_members(),
            expected_payout: c.premium.expected_payout,
            expected_payout_se: c.premium.expected_payout_se,
            flat_premium_per_member: c.premium.flat_premium_per_member,
            flat_premium_per_member_se: c.premium.flat_premium_per_member_se,
            expected_loss_ratio: c.premium.expected_loss_ratio,
            var,
            var_se,
            tvar,
            tvar_se,
            prob_loss_ratio_above_100: c.premium.prob_loss_ratio_above_100,
        });
        previous = Some((term_key, models));
    }
    Ok(SweepResult {
        simulations: spec.simulations,
        level: scenario.pricing.level,
        keys: spec.axes.iter().map(|a| a.key.name()).collect(),
        rows,
    })
}
