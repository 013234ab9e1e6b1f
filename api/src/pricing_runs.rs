//! Pricing runs requested over HTTP: admitted within size and concurrency
//! bounds, run in the background on the rayon pool (never on an HTTP
//! worker), with progress kept in memory and results in the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actuarial::{RunOptions, Scenario};
use engine::Database;
use engine::store::pricing_runs;
use engine::store::{Keys, WriteContext};

#[derive(Debug, Clone)]
pub struct PricingLimits {
    /// Runs allowed at once; more are refused with 429.
    pub concurrency: usize,
    /// Largest run accepted, in simulated member-years (work units).
    pub max_member_years: u64,
}

/// Progress of a run that is still going.
pub struct LiveRun {
    pub done: AtomicU64,
    pub total: u64,
}

pub struct PricingRuns {
    pub limits: PricingLimits,
    running: AtomicUsize,
    live: Mutex<HashMap<i64, Arc<LiveRun>>>,
}

/// Why a run was not admitted.
#[derive(Debug)]
pub enum Refusal {
    TooLarge { work: f64, max: u64 },
    Busy,
}

/// Holds one of the concurrency slots; released when dropped, even if the
/// run panics.
pub struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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

    /// Checks the size bound and takes a concurrency slot.
    pub fn admit(&self, scenario: &Scenario) -> Result<(), Refusal> {
        let work = scenario.work_units();
        if !work.is_finite() || work > self.limits.max_member_years as f64 {
            return Err(Refusal::TooLarge {
                work,
                max: self.limits.max_member_years,
            });
        }
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

    pub fn progress(&self, id: i64) -> Option<(u64, u64)> {
        self.live()
            .get(&id)
            .map(|r| (r.done.load(Ordering::Relaxed), r.total))
    }

    /// Runs an admitted scenario on the rayon pool and records the outcome.
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
        });
        self.live().insert(id, Arc::clone(&live));
        let runs = Arc::clone(self);
        rayon::spawn(move || {
            let _slot = Slot(&runs.running);
            let options = RunOptions {
                progress: Some(&live.done),
                ..RunOptions::default()
            };
            let outcome = actuarial::price(&scenario, &options)
                .map_err(|e| e.to_string())
                .and_then(|results| serde_json::to_value(&results).map_err(|e| e.to_string()));
            let recorded = db.get().and_then(|mut conn| {
                let ctx = WriteContext {
                    keys: &keys,
                    actor: &actor,
                    now: chrono::Utc::now(),
                };
                pricing_runs::finish(
                    &mut conn,
                    &ctx,
                    id,
                    outcome.as_ref().map_err(String::as_str),
                )
            });
            if let Err(e) = recorded {
                tracing::error!(pricing_run.id = id, error.cause = %e, "could not record a pricing run's outcome");
            }
            runs.live().remove(&id);
        });
    }
}
