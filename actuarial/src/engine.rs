//! A pricing run: build the member-level models, simulate, and assemble the results (with
//! adverse selection and the sweep when the scenario asks for them).

use std::sync::atomic::{AtomicBool, AtomicU64};

use crate::adverse;
use crate::member::PayoutError;
use std::collections::BTreeMap;

use crate::exact::{self, ExactError, Lattice};
use crate::member::PayoutDistribution;
use crate::model::{FactorModels, GroupModel};
use crate::montecarlo::{BLOCK_YEARS, GroupAcc, simulate};
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
    let models = FactorModels::build(scenario)?;
    let run = distribution(scenario, &models, options)?;
    let mut results = assemble(scenario, &models, &run);
    if !scenario.risk_factors().is_empty() {
        results.risk_factors = Some(factor_summary(scenario, &models)?);
    }
    if let Some(spec) = scenario.adverse_selection() {
        results.adverse_selection = Some(adverse::analyse(scenario, &results, spec));
    }
    if let Some(spec) = scenario.sweep() {
        results.sweep = Some(sweep::run(scenario, spec, options)?);
    }
    Ok(results)
}

/// The distribution of the portfolio total as either method gives it: estimates with their
/// Monte Carlo standard errors, or exact values with bounds on their numerical error in the
/// same places.
pub(crate) trait TotalDistribution {
    /// (value, standard error or error bound)
    fn mean(&self) -> (f64, f64);
    fn std(&self) -> (f64, f64);
    fn tail(&self, level: f64) -> TailEstimate;
    fn prob_above(&self, x: f64) -> (f64, f64);
}

impl TotalDistribution for Sample {
    fn mean(&self) -> (f64, f64) {
        (self.mean, self.mean_se)
    }
    fn std(&self) -> (f64, f64) {
        (self.std, self.std_se)
    }
    fn tail(&self, level: f64) -> TailEstimate {
        Sample::tail(self, level)
    }
    fn prob_above(&self, x: f64) -> (f64, f64) {
        Sample::prob_above(self, x)
    }
}

/// The exact lattice distribution with its error bounds.
pub(crate) struct ExactTotal {
    pub lattice: Lattice,
    pub error: ExactError,
    /// Bound on the error of the mean from the member-level discretisation.
    pub mean_error: f64,
    std_error: f64,
    mean: f64,
    std: f64,
}

impl ExactTotal {
    /// `moments` are the mean and variance of the total computed directly from the member
    /// distributions; the lattice's own differ from them only by floating-point rounding in the
    /// transforms (and the variance by the lattice rounding), which is added to the bounds.
    pub fn new(
        lattice: Lattice,
        error: ExactError,
        mean_error: f64,
        moments: (f64, f64),
        variance_error: f64,
    ) -> Self {
        let (mean, var) = moments;
        let std = var.max(0.0).sqrt();
        let mean_error = mean_error + (lattice.mean() - mean).abs();
        // d sd = d var / (2 sd).
        let std_error = if std > 0.0 {
            variance_error / (2.0 * std)
        } else {
            0.0
        };
        Self {
            lattice,
            error,
            mean_error,
            std_error: std_error + 1e-9 * std,
            mean,
            std,
        }
    }
}

impl TotalDistribution for ExactTotal {
    fn mean(&self) -> (f64, f64) {
        (self.mean, self.mean_error)
    }
    fn std(&self) -> (f64, f64) {
        // Rounding adds at most a relative `rounding_variance` to the variance, so at most half
        // of it to the standard deviation.
        (self.std, self.std_error)
    }
    fn tail(&self, level: f64) -> TailEstimate {
        // Quantiles are read on the lattice: within one span, plus what the mean may be off.
        let e = self.error.lattice_span + self.mean_error;
        TailEstimate {
            var: self.lattice.var(level),
            var_se: e,
            tvar: self.lattice.tvar(level),
            tvar_se: e,
        }
    }
    fn prob_above(&self, x: f64) -> (f64, f64) {
        (
            self.lattice.prob_above(x),
            self.error.aliasing_mass + self.error.mass_defect,
        )
    }
}

/// One run's group figures and portfolio distribution, by the method the scenario asks for.
pub(crate) struct Run {
    pub groups: Vec<GroupResult>,
    pub total: Box<dyn TotalDistribution + Send + Sync>,
    pub exact: Option<ExactError>,
    pub simulated_years: u64,
}

pub(crate) fn distribution(
    scenario: &Scenario,
    models: &FactorModels,
    options: &RunOptions<'_>,
) -> Result<Run, PricingError> {
    if scenario.runs_exact() {
        if options
            .cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(PricingError::Cancelled);
        }
        let (lattice, error) = exact::portfolio(models);
        let groups = exact_group_results(scenario, models);
        let mean_error = models
            .grid
            .weights
            .iter()
            .zip(&models.models)
            .map(|(w, ms)| w * ms.iter().map(mean_error).sum::<f64>())
            .sum();
        if let Some(p) = options.progress {
            p.fetch_add(scenario.simulations(), std::sync::atomic::Ordering::Relaxed);
        }
        let moments = mixed_moments(models);
        // The variance of the total is sum n (E[Y^2] - E[Y]^2) per combination: its error is
        // bounded through the members' std and mean error estimates.
        let variance_error: f64 = models
            .grid
            .weights
            .iter()
            .zip(&models.models)
            .map(|(w, ms)| {
                w * ms
                    .iter()
                    .map(|m| {
                        let n = m.members as f64;
                        [&m.inpatient, &m.specialty_drug]
                            .into_iter()
                            .flatten()
                            .map(|d| {
                                let sd = d.variance().sqrt();
                                n * (2.0 * sd * d.std_error_estimate + d.std_error_estimate.powi(2))
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>()
            })
            .sum();
        return Ok(Run {
            groups,
            total: Box::new(ExactTotal::new(
                lattice,
                error,
                mean_error,
                moments,
                variance_error,
            )),
            exact: Some(error),
            // The scenario's count, as before: `method.name` says none were simulated.
            simulated_years: scenario.simulations(),
        });
    }
    let sim = simulate(models, scenario.simulations(), scenario.seed(), options)?;
    let years = sim.totals.len() as f64;
    let groups = scenario
        .groups()
        .iter()
        .enumerate()
        .zip(&sim.groups)
        .map(|((i, g), acc)| group_result(&g.id, g.preexisting, models, i, acc, years))
        .collect();
    Ok(Run {
        groups,
        total: Box::new(Sample::new(&sim.totals)),
        exact: None,
        simulated_years: sim.totals.len() as u64,
    })
}

/// Bound on a group's total mean error from discretisation: members x the per-benefit estimates.
fn mean_error(m: &GroupModel) -> f64 {
    [&m.inpatient, &m.specialty_drug]
        .into_iter()
        .flatten()
        .map(|d| d.mean_error_estimate)
        .sum::<f64>()
        * m.members as f64
}

/// Group figures from the member distributions (mixed over the factor nodes), with the
/// discretisation error estimates where Monte Carlo gives standard errors.
fn exact_group_results(scenario: &Scenario, models: &FactorModels) -> Vec<GroupResult> {
    scenario
        .groups()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let e = mixed_exact_stats(models, i);
            let part = |pick: fn(&GroupModel) -> Option<&PayoutDistribution>| {
                pick(&models.models[0][i])?;
                Some(mixed_benefit_stats(models, i, pick))
            };
            let err = mixed_errors(models, i);
            let inpatient = part(|m| m.inpatient.as_deref());
            let specialty_drug = part(|m| m.specialty_drug.as_deref());
            let only = match (inpatient, specialty_drug) {
                (Some(s), None) | (None, Some(s)) => Some(s),
                _ => None,
            };
            GroupResult {
                id: g.id.clone(),
                members: g.members,
                preexisting: g.preexisting,
                stats: only.unwrap_or(PayoutStats {
                    mean_payout_per_member: e.mean_payout_per_member,
                    mean_payout_per_member_se: err.0,
                    std_payout_per_member: e.std_payout_per_member,
                    std_payout_per_member_se: err.1,
                    prob_any_payout: e.prob_any_payout,
                    prob_any_payout_se: err.2,
                }),
                by_benefit: ByBenefit {
                    inpatient,
                    specialty_drug,
                },
                exact: e,
            }
        })
        .collect()
}

/// Discretisation error estimates of a member-year's (mean, std, P(any payout)), weighted over
/// the factor nodes; floating-point rounding (1e-12 relative) is the floor.
fn mixed_errors(models: &FactorModels, g: usize) -> (f64, f64, f64) {
    let mut out = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        let m = &ms[g];
        for d in [&m.inpatient, &m.specialty_drug].into_iter().flatten() {
            out.0 += w * (d.mean_error_estimate + 1e-12 * d.mean);
            out.1 += w * (d.std_error_estimate + 1e-12 * d.variance().sqrt());
            out.2 += w * (d.prob_error_estimate + 1e-12 * d.prob_positive);
        }
    }
    out
}

/// One benefit's mean, std and P(payout > 0) per member-year, mixed over the factor nodes.
fn mixed_benefit_stats(
    models: &FactorModels,
    g: usize,
    pick: fn(&GroupModel) -> Option<&PayoutDistribution>,
) -> PayoutStats {
    let (mut m1, mut m2, mut p) = (0.0, 0.0, 0.0);
    let (mut e1, mut e2, mut ep) = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        if let Some(d) = pick(&ms[g]) {
            m1 += w * d.mean;
            m2 += w * d.second_moment;
            p += w * d.prob_positive;
            e1 += w * (d.mean_error_estimate + 1e-12 * d.mean);
            e2 += w * (d.std_error_estimate + 1e-12 * d.variance().sqrt());
            ep += w * (d.prob_error_estimate + 1e-12 * d.prob_positive);
        }
    }
    PayoutStats {
        mean_payout_per_member: m1,
        mean_payout_per_member_se: e1,
        std_payout_per_member: (m2 - m1 * m1).max(0.0).sqrt(),
        std_payout_per_member_se: e2,
        prob_any_payout: p,
        prob_any_payout_se: ep,
    }
}

/// A member-year's mean, std and P(any payout), mixed over the factor nodes: within a node the
/// benefits are independent; across nodes the moments mix with the node probabilities.
fn mixed_exact_stats(models: &FactorModels, g: usize) -> ExactStats {
    let (mut m1, mut m2, mut p) = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        let e = exact_stats(&ms[g]);
        let second = e.std_payout_per_member.powi(2) + e.mean_payout_per_member.powi(2);
        m1 += w * e.mean_payout_per_member;
        m2 += w * second;
        p += w * e.prob_any_payout;
    }
    ExactStats {
        mean_payout_per_member: m1,
        std_payout_per_member: (m2 - m1 * m1).max(0.0).sqrt(),
        prob_any_payout: p,
    }
}

/// Mean and variance of the portfolio total at every factor combination, exactly from the
/// member distributions (members are independent given the factors).
fn conditional_moments(models: &FactorModels) -> Vec<(f64, f64)> {
    models
        .models
        .iter()
        .map(|ms| {
            ms.iter().fold((0.0, 0.0), |(m, v), g| {
                let e = exact_stats(g);
                let n = g.members as f64;
                (
                    m + n * e.mean_payout_per_member,
                    v + n * e.std_payout_per_member.powi(2),
                )
            })
        })
        .collect()
}

/// Mean and variance of the total over the factor combinations.
fn mixed_moments(models: &FactorModels) -> (f64, f64) {
    let cond = conditional_moments(models);
    let w = &models.grid.weights;
    let mean: f64 = w.iter().zip(&cond).map(|(w, (m, _))| w * m).sum();
    let second: f64 = w.iter().zip(&cond).map(|(w, (m, v))| w * (v + m * m)).sum();
    (mean, (second - mean * mean).max(0.0))
}

/// The variance decomposition over the factors and the figures without them.
fn factor_summary(
    scenario: &Scenario,
    models: &FactorModels,
) -> Result<FactorSummary, PricingError> {
    let cond = conditional_moments(models);
    let w = &models.grid.weights;
    let mean: f64 = w.iter().zip(&cond).map(|(w, (m, _))| w * m).sum();
    let process_variance: f64 = w.iter().zip(&cond).map(|(w, (_, v))| w * v).sum();
    let between: f64 = w
        .iter()
        .zip(&cond)
        .map(|(w, (m, _))| w * (m - mean).powi(2))
        .sum();
    let total_variance = process_variance + between;
    let factors = scenario
        .risk_factors()
        .iter()
        .enumerate()
        .map(|(f, factor)| {
            let nodes = &models.grid.nodes[f];
            // E[total | factor f at node k], averaged over the other factors.
            let mut by_node = vec![0.0; nodes.values.len()];
            for ((combo, w), (m, _)) in models.grid.combos.iter().zip(w).zip(&cond) {
                by_node[combo[f]] += w * m;
            }
            let explained: f64 = by_node
                .iter()
                .zip(&nodes.weights)
                .map(|(s, nw)| nw * (s / nw - mean).powi(2))
                .sum();
            RiskFactorResult {
                id: factor.id.clone(),
                applies_to: factor
                    .applies_to
                    .iter()
                    .map(|t| t.key().to_string())
                    .collect(),
                groups: factor.groups.len(),
                distribution: format!("{:?}", factor.family).to_lowercase(),
                mean: factor.mean,
                cv: factor.cv,
                variance_explained: if total_variance > 0.0 {
                    explained / total_variance
                } else {
                    0.0
                },
                nodes: nodes.values.len(),
                node_variance_kept: nodes.variance_kept,
            }
        })
        .collect();
    let base = FactorModels::without_factors(crate::model::build_models(scenario)?);
    let (lattice, _) = exact::portfolio(&base);
    let mut var = BTreeMap::new();
    let mut tvar = BTreeMap::new();
    for level in REPORT_LEVELS {
        var.insert(level_key(level), lattice.var(level));
        tvar.insert(level_key(level), lattice.tvar(level));
    }
    Ok(FactorSummary {
        factors,
        total_variance,
        process_variance,
        process_risk: ProcessRiskResult {
            mean: lattice.mean(),
            std: lattice.std(),
            var,
            tvar,
        },
    })
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

pub(crate) fn summarise(scenario: &Scenario, run: &Run) -> Summary {
    let total = run.total.as_ref();
    let members = scenario.total_members();
    let pricing_tail = total.tail(scenario.pricing().level);
    let premium = premium_result(
        scenario.pricing(),
        total,
        &pricing_tail,
        &run.groups,
        members,
    );
    Summary {
        groups: run.groups.clone(),
        portfolio: portfolio_result(members, total),
        premium,
        pricing_tail,
    }
}

/// One group's simulated payout statistics per member-year, overall and by benefit, beside the
/// exact (discretised) ones.
fn group_result(
    id: &str,
    preexisting: bool,
    models: &FactorModels,
    g: usize,
    acc: &GroupAcc,
    years: f64,
) -> GroupResult {
    let model = &models.models[0][g];
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
        exact: mixed_exact_stats(models, g),
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

fn portfolio_result(members: u64, total: &dyn TotalDistribution) -> PortfolioResult {
    let mut portfolio = PortfolioResult {
        members,
        mean: total.mean().0,
        mean_se: total.mean().1,
        std: total.std().0,
        std_se: total.std().1,
        var: Default::default(),
        var_se: Default::default(),
        tvar: Default::default(),
        tvar_se: Default::default(),
    };
    for level in REPORT_LEVELS {
        let t = total.tail(level);
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
    total: &dyn TotalDistribution,
    tail: &TailEstimate,
    groups: &[GroupResult],
    members: u64,
) -> PremiumResult {
    let (measure, measure_se) = match pricing.risk_measure {
        RiskMeasure::Tvar => (tail.tvar, tail.tvar_se),
        RiskMeasure::Var => (tail.var, tail.var_se),
    };
    let mean = total.mean().0;
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
    let gross_se = ((1.0 - coc).abs() * total.mean().1 + coc * measure_se) * load;
    let nm = members.max(1) as f64;
    let flat = gross / nm;
    let denom = mean + build_up.risk_margin;
    let loss_ratio_se = if denom > 0.0 {
        (1.0 - pricing.expense_ratio) * coc * (measure * total.mean().1 + mean * measure_se)
            / (denom * denom)
    } else {
        0.0
    };
    let (p_exceed, p_exceed_se) = total.prob_above(gross);
    PremiumResult {
        risk_measure: pricing.risk_measure,
        level: pricing.level,
        expense_ratio: pricing.expense_ratio,
        cost_of_capital: coc,
        expected_payout: mean,
        expected_payout_se: total.mean().1,
        risk_measure_value: measure,
        risk_measure_value_se: measure_se,
        risk_margin: build_up.risk_margin,
        risk_margin_se: coc * (measure_se + total.mean().1),
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
            .map(|t| target_result(t, pricing, total, build_up.risk_margin, nm)),
        cross_subsidy: cross_subsidy(groups, flat, mean / nm),
    }
}

/// The premium at a target loss ratio and what it leaves after expenses and claims.
fn target_result(
    target: f64,
    pricing: &Pricing,
    total: &dyn TotalDistribution,
    risk_margin: f64,
    members: f64,
) -> TargetLossRatioResult {
    let mean = total.mean().0;
    let premium = mean / target;
    let margin = premium * (1.0 - pricing.expense_ratio) - mean;
    let (p, p_se) = total.prob_above(premium);
    TargetLossRatioResult {
        target_loss_ratio: target,
        premium_per_member: premium / members,
        premium_per_member_se: total.mean().1 / target / members,
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

fn method_info(models: &FactorModels, exact: Option<&ExactError>) -> MethodInfo {
    let mut max_rel: f64 = 0.0;
    let mut max_prob: f64 = 0.0;
    for m in models.all() {
        for d in [&m.inpatient, &m.specialty_drug].into_iter().flatten() {
            if d.mean > 0.0 {
                max_rel = max_rel.max(d.mean_error_estimate / d.mean);
            }
            max_prob = max_prob.max(d.prob_error_estimate);
        }
    }
    let factors = if models.models.len() > 1 {
        format!(
            " Risk factors: each portfolio-year draws one of {} combinations of factor nodes \
             (each factor's distribution cut into strata of fixed probability, one node per \
             stratum at its conditional mean).",
            models.models.len()
        )
    } else {
        String::new()
    };
    let (name, description) = match exact {
        Some(e) => (
            "exact",
            format!(
                "Exact: the member-level payout distributions of each group are put on one \
                 lattice (span {:.1}, up to {} points), the group total is exp(n log phi) in \
                 Fourier space, groups multiply and one inverse FFT gives the portfolio total.{} \
                 Error bounds replace standard errors: wrapped-around mass at most {:.1e}, \
                 rounding to the lattice adds at most {:.1e} of the variance.",
                e.lattice_span,
                e.lattice_points,
                factors.replace(
                    "each portfolio-year draws one of",
                    "the distribution is a mixture over"
                ),
                e.aliasing_mass,
                e.rounding_variance
            ),
        ),
        None => (
            "monte_carlo",
            format!(
                "Monte Carlo: per portfolio-year and group, binomial counts of members with a \
                 payout (inpatient, specialty drug, both); their payouts drawn from the \
                 member-level payout distributions, computed exactly up to discretisation \
                 (single-claim cells at exact conditional means; compound claims by FFT of a \
                 moment-matched lattice).{factors}"
            ),
        ),
    };
    MethodInfo {
        name: name.to_string(),
        description,
        rng: "ChaCha8Rng seeded with seed, stream = block index".to_string(),
        block_years: BLOCK_YEARS,
        max_relative_discretisation_error: max_rel,
        max_prob_discretisation_error: max_prob,
        exact_error: exact.map(|e| ExactErrorBound {
            lattice_span: e.lattice_span,
            lattice_points: e.lattice_points,
            aliasing_mass: e.aliasing_mass,
            rounding_variance: e.rounding_variance,
            mass_defect: e.mass_defect,
        }),
    }
}

pub(crate) fn assemble(scenario: &Scenario, models: &FactorModels, run: &Run) -> PricingResults {
    let s = summarise(scenario, run);
    PricingResults {
        name: scenario.name().to_string(),
        currency: scenario.currency().to_string(),
        seed: scenario.seed(),
        simulations: run.simulated_years,
        scenario_hash: scenario.hash(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("PUHUI_GIT_COMMIT").to_string(),
        members: scenario.total_members(),
        groups: s.groups,
        portfolio: s.portfolio,
        premium: s.premium,
        adverse_selection: None,
        sweep: None,
        risk_factors: None,
        method: method_info(models, run.exact.as_ref()),
    }
}
