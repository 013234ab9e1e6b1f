//! A pricing run: build the member-level models, simulate, and assemble the results (with
//! adverse selection and the sweep when the scenario asks for them).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::adverse;
use crate::member::PayoutError;

use crate::exact::{self, ExactError};
use crate::model::FactorModels;
use crate::montecarlo::simulate;
use crate::results::*;
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::Sample;
use crate::sweep;

mod assemble;
mod figures;
mod mixed;
mod total;

pub(crate) use assemble::level_key;
pub(crate) use assemble::{assemble, summarise};
use assemble::{exact_stats, group_result};
use mixed::{exact_group_results, factor_summary, mean_error, mixed_exact_stats, mixed_moments};
pub use total::{DENSITY_BINS, PERCENTILE_LEVELS, summary_probabilities};
pub(crate) use total::{ExactTotal, TotalDistribution};

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
    /// Checked between units of work; once cancelled the run stops with
    /// [`PricingError::Cancelled`].
    pub cancel: Option<&'a Cancellation>,
}

/// A request to stop a run, made from another thread (a user's cancel, a time budget) and
/// checked by the run between units of work: sweep rows, each group's member-level models, and
/// portfolio-years. A check is one relaxed atomic load and changes nothing, so a run that is
/// never cancelled computes exactly what it computes without one.
#[derive(Debug, Default)]
pub struct Cancellation(AtomicBool);

impl Cancellation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once `cancel` (if any) is cancelled.
    pub(crate) fn check(cancel: Option<&Cancellation>) -> Result<(), PricingError> {
        match cancel {
            Some(c) if c.is_cancelled() => Err(PricingError::Cancelled),
            _ => Ok(()),
        }
    }
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
    #[error("adverse selection, the pool enrolled at a premium: {source}")]
    AdversePool { source: ScenarioError },
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
    let models = FactorModels::build(scenario, options.cancel)?;
    let run = distribution(scenario, &models, options)?;
    let mut results = assemble(scenario, &models, &run);
    if !scenario.risk_factors().is_empty() {
        results.risk_factors = Some(factor_summary(scenario, &models, options.cancel)?);
    }
    if let Some(spec) = scenario.adverse_selection() {
        let price_pool = |members: &[u64]| reprice_pool(scenario, &models, members, options);
        let exact: Option<&adverse::ExactPricer<'_>> = scenario.runs_exact().then_some(&price_pool);
        results.adverse_selection = Some(adverse::analyse(scenario, &results, spec, exact)?);
    }
    if let Some(spec) = scenario.sweep() {
        results.sweep = Some(sweep::run(scenario, spec, options)?);
    }
    Ok(results)
}

/// The flat premium per member the pool with these members needs, priced exactly as the main
/// run is (the same member-level distributions, the same premium rule); None when nobody enrols.
fn reprice_pool(
    scenario: &Scenario,
    models: &FactorModels,
    members: &[u64],
    options: &RunOptions<'_>,
) -> Result<Option<f64>, PricingError> {
    Cancellation::check(options.cancel)?;
    if members.iter().all(|&m| m == 0) {
        return Ok(None);
    }
    let mut parts = scenario.to_parts();
    parts.sweep = None;
    parts.adverse_selection = None;
    for (g, &m) in parts.groups.iter_mut().zip(members) {
        g.members = m;
    }
    let source = format!("{} (adverse-selection pool)", scenario.name());
    let pool =
        Scenario::new(parts, &source).map_err(|source| PricingError::AdversePool { source })?;
    let pool_models = sweep::with_members(models, &pool);
    // Progress counts the main run and the sweep only.
    let quiet = RunOptions {
        progress: None,
        ..*options
    };
    let run = distribution(&pool, &pool_models, &quiet)?;
    Ok(Some(summarise(&pool, &run).premium.flat_premium_per_member))
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
    Cancellation::check(options.cancel)?;
    if scenario.runs_exact() {
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
            p.fetch_add(scenario.simulations(), Ordering::Relaxed);
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
