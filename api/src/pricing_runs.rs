//! Pricing runs requested over HTTP: admitted within size and concurrency
//! bounds, run in the background on the rayon pool (never on an HTTP
//! worker), with progress kept in memory and results in the database. Each
//! run has a wall-clock budget, and an insurer may cancel it; either stops
//! the computation at its next check and frees its slot at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actuarial::{Cancellation, RunOptions, Scenario};
use engine::Database;
use engine::store::pricing_runs::{self, RunEnd};
use engine::store::{Keys, WriteContext};

/// The largest run `serve` accepts by default, in member-years of work:
/// `scenarios/city-default.toml` at 20,000 portfolio-years is about 1e10.
pub const DEFAULT_MAX_MEMBER_YEARS: u64 = 20_000_000_000;

#[derive(Debug, Clone)]
pub struct PricingLimits {
    /// Runs allowed at once; more are refused with 429.
    pub concurrency: usize,
    /// Largest run accepted, in member-years of work ([`Scenario::work_estimate`]).
    pub max_member_years: u64,
    /// Wall-clock time a run may take before it is stopped as `timed_out`.
    pub max_run_time: Duration,
}

/// Why a run was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    TimedOut,
}

/// A run that is still going: its progress, and how to stop it.
pub struct LiveRun {
    pub done: AtomicU64,
    pub total: u64,
    cancel: Cancellation,
    /// The first reason it was asked to stop, if any.
    stop: OnceLock<Stop>,
    /// Whether its concurrency slot has been given back.
    freed: AtomicBool,
}

pub struct PricingRuns {
    pub limits: PricingLimits,
    running: AtomicUsize,
    live: Mutex<HashMap<i64, Arc<LiveRun>>>,
}

/// Why a run was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// Over the size bound: `field` is the part of the scenario that weighs most
    /// (`simulations` or `sweep`).
    TooLarge {
        field: &'static str,
        work: f64,
        max: u64,
    },
    Busy,
}

impl PricingRuns {
    pub fn new(limits: PricingLimits) -> Self {
        PricingRuns {
            limits,
            running: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<LiveRun>>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the size bound, before anything runs.
    pub fn check_size(&self, scenario: &Scenario) -> Result<(), Refusal> {
        let estimate = scenario.work_estimate();
        let work = estimate.total();
        if !work.is_finite() || work > self.limits.max_member_years as f64 {
            let field = if estimate.sweep > estimate.main {
                "sweep"
            } else {
                "simulations"
            };
            return Err(Refusal::TooLarge {
                field,
                work,
                max: self.limits.max_member_years,
            });
        }
        Ok(())
    }

    /// Checks the size bound and takes a concurrency slot.
    pub fn admit(&self, scenario: &Scenario) -> Result<(), Refusal> {
        self.check_size(scenario)?;
        let taken = self.running.fetch_add(1, Ordering::SeqCst);
        if taken >= self.limits.concurrency {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        Ok(())
    }

    /// Releases a slot taken by [`admit`](Self::admit) when the run could not start.
    pub fn release(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Gives back a running run's slot, once however many times it is asked.
    fn free(&self, live: &LiveRun) {
        if !live.freed.swap(true, Ordering::SeqCst) {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub fn progress(&self, id: i64) -> Option<(u64, u64)> {
        self.live()
            .get(&id)
            .map(|r| (r.done.load(Ordering::Relaxed), r.total))
    }

    /// Asks run `id` to stop at its next check and frees its slot now;
    /// false when no such run is going.
    pub fn stop(&self, id: i64, reason: Stop) -> bool {
        let Some(live) = self.live().get(&id).cloned() else {
            return false;
        };
        // The first reason stands: a run cancelled just as its budget ran out stays cancelled.
        let _ = live.stop.set(reason);
        live.cancel.cancel();
        self.free(&live);
        true
    }

    /// Runs an admitted scenario on the rayon pool and records the outcome;
    /// stops it as `timed_out` once it has run for the budget. Called on the
    /// server's runtime, which keeps the budget's timer.
    pub fn spawn(
        self: &Arc<Self>,
        id: i64,
        scenario: Scenario,
        db: Database,
        keys: Keys,
        actor: String,
    ) {
        let live = Arc::new(LiveRun {
            done: AtomicU64::new(0),
            total: scenario.progress_total(),
            cancel: Cancellation::new(),
            stop: OnceLock::new(),
            freed: AtomicBool::new(false),
        });
        self.live().insert(id, Arc::clone(&live));
        let budget = self.limits.max_run_time;
        let runs = Arc::clone(self);
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(budget).await;
            if runs.stop(id, Stop::TimedOut) {
                tracing::warn!(
                    pricing_run.id = id,
                    budget_seconds = budget.as_secs_f64(),
                    "a pricing run exceeded its time budget and was stopped"
                );
            }
        });
        let runs = Arc::clone(self);
        rayon::spawn(move || {
            let options = RunOptions {
                progress: Some(&live.done),
                cancel: Some(&live.cancel),
                ..RunOptions::default()
            };
            let slot = Slot {
                runs: &runs,
                live: &live,
            };
            let outcome = actuarial::price(&scenario, &options);
            drop(slot);
            let results = outcome
                .map_err(|e| e.to_string())
                .and_then(|results| serde_json::to_value(&results).map_err(|e| e.to_string()));
            let timed_out = format!(
                "the run took longer than this server's budget of {} s per run and was stopped",
                budget.as_secs()
            );
            let end = match (&results, live.stop.get()) {
                (Ok(value), _) => Some(RunEnd::Succeeded(value)),
                // Recorded by the cancel itself.
                (Err(_), Some(Stop::Cancelled)) => None,
                (Err(_), Some(Stop::TimedOut)) => Some(RunEnd::TimedOut(&timed_out)),
                (Err(message), None) => Some(RunEnd::Failed(message)),
            };
            if let Some(end) = end {
                record(&db, &keys, &actor, id, end);
            }
            runs.live().remove(&id);
        });
    }
}

/// A running run's slot, freed when the computation returns, even if it panics.
struct Slot<'a> {
    runs: &'a PricingRuns,
    live: &'a LiveRun,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.runs.free(self.live);
    }
}

fn record(db: &Database, keys: &Keys, actor: &str, id: i64, end: RunEnd<'_>) {
    let recorded = db.get().and_then(|mut conn| {
        let ctx = WriteContext {
            keys,
            actor,
            now: chrono::Utc::now(),
        };
        pricing_runs::finish(&mut conn, &ctx, id, end)
    });
    if let Err(e) = recorded {
        tracing::error!(pricing_run.id = id, error.cause = %e, "could not record a pricing run's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs() -> PricingRuns {
        PricingRuns::new(PricingLimits {
            concurrency: 1,
            max_member_years: DEFAULT_MAX_MEMBER_YEARS,
            max_run_time: Duration::from_secs(600),
        })
    }

    /// The security probe's request: 100 small groups and a sweep of 10,000
    /// rows at the fewest portfolio-years a row may have. It simulates only
    /// about 1e9 member-years, which the bound on simulation alone admitted.
    fn probe() -> String {
        let mut text = String::from(
            "name = \"probe\"\nseed = 1\nsimulations = 1000\n\
             [benefits.inpatient]\ndeductible = 0\ncoinsurance = 0.8\nannual_limit = 100000\n\
             [pricing]\nexpense_ratio = 0.1\ncost_of_capital = 0.06\nrisk_measure = \"var\"\nlevel = 0.99\n",
        );
        for g in 0..100 {
            text.push_str(&format!(
                "[[groups]]\nid = \"g{g}\"\nmembers = 10\npreexisting = false\n\
                 inpatient.frequency = {{ distribution = \"poisson\", mean = 0.1 }}\n\
                 inpatient.severity = {{ distribution = \"lognormal\", mean = 20000, cv = 1.5 }}\n"
            ));
        }
        let values = |step: usize| {
            (1..=100)
                .map(|i| (i * step).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        text.push_str(&format!(
            "[sweep]\nsimulations = 1000\ninpatient.deductible = [{}]\ninpatient.annual_limit = [{}]\n",
            values(100),
            values(1000)
        ));
        text
    }

    #[test]
    fn the_probe_is_refused_on_its_sweep_and_the_shipped_scenarios_are_admitted() {
        let scenario = Scenario::from_toml_str(&probe(), "probe.toml", &actuarial::NoTables)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scenario.sweep().map(|s| s.rows()), Some(10_000));
        let estimate = scenario.work_estimate();
        // What it simulates alone is within the bound: model building is what makes it long.
        let simulated = estimate.total() - 100.0 * 10_001.0 * actuarial::MODEL_BUILD_MEMBER_YEARS;
        assert!(simulated < DEFAULT_MAX_MEMBER_YEARS as f64, "{simulated}");
        match runs().check_size(&scenario) {
            Err(Refusal::TooLarge { field, max, .. }) => {
                assert_eq!(field, "sweep");
                assert_eq!(max, DEFAULT_MAX_MEMBER_YEARS);
            }
            other => panic!("{other:?}"),
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut shipped = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let scenario = Scenario::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
                let runs = runs();
                assert!(
                    runs.admit(&scenario).is_ok(),
                    "{}: {:?}",
                    path.display(),
                    scenario.work_estimate()
                );
                shipped += 1;
            }
        }
        assert!(shipped >= 5, "{shipped} scenarios");
    }

    #[test]
    fn a_slot_is_freed_once_however_often_a_run_is_stopped() {
        let runs = runs();
        let scenario = Scenario::from_toml_str(&probe(), "probe.toml", &actuarial::NoTables)
            .unwrap_or_else(|e| panic!("{e}"));
        let live = Arc::new(LiveRun {
            done: AtomicU64::new(0),
            total: scenario.progress_total(),
            cancel: Cancellation::new(),
            stop: OnceLock::new(),
            freed: AtomicBool::new(false),
        });
        runs.running.fetch_add(1, Ordering::SeqCst);
        runs.live().insert(7, Arc::clone(&live));
        assert!(runs.stop(7, Stop::Cancelled));
        assert!(runs.stop(7, Stop::TimedOut));
        runs.free(&live);
        assert_eq!(runs.running.load(Ordering::SeqCst), 0);
        assert_eq!(live.stop.get(), Some(&Stop::Cancelled));
        assert!(live.cancel.is_cancelled());
        assert!(!runs.stop(8, Stop::Cancelled));
    }
}
