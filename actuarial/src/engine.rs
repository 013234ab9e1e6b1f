//! A pricing run: build the member-level models, simulate, and assemble the results (with
//! adverse selection and the sweep when the scenario asks for them).

use std::sync::atomic::{AtomicBool, AtomicU64};

use crate::adverse;
use crate::member::PayoutError;
use crate::model::{GroupModel, build_models};
use crate::montecarlo::{BLOCK_YEARS, GroupAcc, SimOutput, simulate};
use crate::premium::gross_premium;
use crate::results::*;
use crate::scenario::{Pricing, REPORT_LEVELS, RiskMeasure, Scenario, ScenarioError};
use crate::stats::{MemberStats, Sample, TailEstimate};
use crate::sweep;

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
    #[error("sweep row {row}: {source}")]
    SweepPoint { row: usize, source: ScenarioError },
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
    let sim = simulate(&models, scenario.simulations(), scenario.seed(), options)?;
    let mut results = assemble(scenario, &models, &sim);
    if let Some(spec) = scenario.adverse_selection() {
        results.adverse_selection = Some(adverse::analyse(scenario, &results, spec));
    }
    if let Some(spec) = scenario.sweep() {
        results.sweep = Some(sweep::run(scenario, spec, options)?);
    }
    Ok(results)
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

/// The main figures of one run: per group, for the portfolio, and the premium.
pub(crate) struct Summary {
    pub groups: Vec<GroupResult>,
    pub portfolio: PortfolioResult,
    pub premium: PremiumResult,
    /// VaR and TVaR at the pricing level (the sweep reports them).
    pub pricing_tail: TailEstimate,
}

pub(crate) fn summarise(scenario: &Scenario, models: &[GroupModel], sim: &SimOutput) -> Summary {
    let years = sim.totals.len() as f64;
    let groups: Vec<GroupResult> = scenario
        .groups()
        .iter()
        .zip(models)
        .zip(&sim.groups)
        .map(|((g, model), acc)| group_result(&g.id, g.preexisting, model, acc, years))
        .collect();
    let sample = Sample::new(&sim.totals);
    let members = scenario.total_members();
    let pricing_tail = sample.tail(scenario.pricing().level);
    let premium = premium_result(scenario.pricing(), &sample, &pricing_tail, &groups, members);
    Summary {
        groups,
        portfolio: portfolio_result(members, &sample),
        premium,
        pricing_tail,
    }
}

/// One group's simulated payout statistics per member-year, overall and by benefit, beside the
/// exact (discretised) ones.
fn group_result(
    id: &str,
    preexisting: bool,
    model: &GroupModel,
    acc: &GroupAcc,
    years: f64,
) -> GroupResult {
    let n = model.members as f64 * years;
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
    GroupResult {
        id: id.to_string(),
        members: model.members,
        preexisting,
        stats: payout_stats(all),
        by_benefit: ByBenefit {
            inpatient: model.inpatient.as_ref().map(|_| payout_stats(inp)),
            specialty_drug: model.specialty_drug.as_ref().map(|_| payout_stats(drug)),
        },
        exact: exact_stats(model),
    }
}

/// Mean, std and P(any payout) of a member-year from the discretised distributions; the benefits
/// are independent, so means and variances add.
fn exact_stats(model: &GroupModel) -> ExactStats {
    let parts = || {
        [&model.inpatient, &model.specialty_drug]
            .into_iter()
            .flatten()
    };
    let mean: f64 = parts().map(|d| d.mean).sum();
    let var: f64 = parts().map(|d| d.variance()).sum();
    let none: f64 = parts().map(|d| 1.0 - d.prob_positive).product();
    ExactStats {
        mean_payout_per_member: mean,
        std_payout_per_member: var.sqrt(),
        prob_any_payout: 1.0 - none,
    }
}

fn portfolio_result(members: u64, sample: &Sample) -> PortfolioResult {
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
    portfolio
}

fn premium_result(
    pricing: &Pricing,
    sample: &Sample,
    tail: &TailEstimate,
    groups: &[GroupResult],
    members: u64,
) -> PremiumResult {
    let (measure, measure_se) = match pricing.risk_measure {
        RiskMeasure::Tvar => (tail.tvar, tail.tvar_se),
        RiskMeasure::Var => (tail.var, tail.var_se),
    };
    let mean = sample.mean;
    let coc = pricing.cost_of_capital;
    let build_up = gross_premium(
        mean,
        measure - mean,
        pricing.expense_ratio,
        pricing.cost_of_capital,
    );
    let gross = build_up.gross;
    let load = 1.0 / (1.0 - pricing.expense_ratio);
    // (1 - coc) mean + coc measure, errors combined as if perfectly correlated (an upper bound).
    let gross_se = ((1.0 - coc).abs() * sample.mean_se + coc * measure_se) * load;
    let nm = members.max(1) as f64;
    let flat = gross / nm;
    let denom = mean + build_up.risk_margin;
    let loss_ratio_se = if denom > 0.0 {
        (1.0 - pricing.expense_ratio) * coc * (measure * sample.mean_se + mean * measure_se)
            / (denom * denom)
    } else {
        0.0
    };
    let (p_exceed, p_exceed_se) = sample.prob_above(gross);
    PremiumResult {
        risk_measure: pricing.risk_measure,
        level: pricing.level,
        expense_ratio: pricing.expense_ratio,
        cost_of_capital: coc,
        expected_payout: mean,
        expected_payout_se: sample.mean_se,
        risk_measure_value: measure,
        risk_measure_value_se: measure_se,
        risk_margin: build_up.risk_margin,
        risk_margin_se: coc * (measure_se + sample.mean_se),
        expenses: build_up.expenses,
        gross_premium: gross,
        gross_premium_se: gross_se,
        flat_premium_per_member: flat,
        flat_premium_per_member_se: gross_se / nm,
        expected_loss_ratio: if gross > 0.0 { mean / gross } else { 0.0 },
        expected_loss_ratio_se: loss_ratio_se,
        prob_loss_ratio_above_100: p_exceed,
        prob_loss_ratio_above_100_se: p_exceed_se,
        target: pricing
            .target_loss_ratio
            .map(|t| target_result(t, pricing, sample, build_up.risk_margin, nm)),
        cross_subsidy: cross_subsidy(groups, flat, mean / nm),
    }
}

/// The premium at a target loss ratio and what it leaves after expenses and claims.
fn target_result(
    target: f64,
    pricing: &Pricing,
    sample: &Sample,
    risk_margin: f64,
    members: f64,
) -> TargetLossRatioResult {
    let mean = sample.mean;
    let premium = mean / target;
    let margin = premium * (1.0 - pricing.expense_ratio) - mean;
    let (p, p_se) = sample.prob_above(premium);
    TargetLossRatioResult {
        target_loss_ratio: target,
        premium_per_member: premium / members,
        premium_per_member_se: sample.mean_se / target / members,
        gross_premium: premium,
        margin,
        margin_per_member: margin / members,
        margin_to_risk_margin: if risk_margin > 0.0 {
            margin / risk_margin
        } else {
            0.0
        },
        prob_loss_ratio_above_100: p,
        prob_loss_ratio_above_100_se: p_se,
    }
}

/// Who pays for whom under the flat premium: each group's own loaded premium (the flat premium
/// scaled by its expected payout relative to the portfolio's) against the flat one.
fn cross_subsidy(groups: &[GroupResult], flat: f64, mean_per_member: f64) -> Vec<CrossSubsidyRow> {
    groups
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
        .collect()
}

fn method_info(models: &[GroupModel]) -> MethodInfo {
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
    MethodInfo {
        description: "Per portfolio-year and group: binomial counts of members with a payout \
            (inpatient, specialty drug, both); their payouts drawn from the member-level \
            payout distributions, computed exactly up to discretisation (single-claim cells \
            at exact conditional means; compound claims by FFT of a moment-matched lattice)."
            .to_string(),
        rng: "ChaCha8Rng seeded with seed, stream = block index".to_string(),
        block_years: BLOCK_YEARS,
        max_relative_discretisation_error: max_rel,
        max_prob_discretisation_error: max_prob,
    }
}

pub fn assemble(scenario: &Scenario, models: &[GroupModel], sim: &SimOutput) -> PricingResults {
    let s = summarise(scenario, models, sim);
    PricingResults {
        name: scenario.name().to_string(),
        currency: scenario.currency().to_string(),
        seed: scenario.seed(),
        simulations: sim.totals.len() as u64,
        scenario_hash: scenario.hash(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("PUHUI_GIT_COMMIT").to_string(),
        members: scenario.total_members(),
        groups: s.groups,
        portfolio: s.portfolio,
        premium: s.premium,
        adverse_selection: None,
        sweep: None,
        method: method_info(models),
    }
}
