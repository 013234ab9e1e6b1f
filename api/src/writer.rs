//! Group commit for claim submissions.
//!
//! Every write is serialised (one audit hash chain, balances read and debited
//! without a gap), so claims cannot be decided in parallel; what can be
//! shared is the transaction. One writer thread takes the validated claims
//! queued while the previous batch was committing and hands them to
//! `engine::store::claims::submit_batch`, which decides them in memory, in
//! arrival order, each against the state the ones before it left, and writes
//! the batch with a fixed number of statements and one durable commit. When
//! that commit succeeds, the outcome of every claim is the one it would have
//! had alone; when it fails, every claim of the batch gets the error and
//! none is stored (a retry with the same key decides it afresh). Callers are
//! answered only after the commit. At low load a batch is one claim and
//! nothing waits; there is no timer.

use crate::clock::Clock;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use engine::domain::claim::ValidClaim;
use engine::store::claims::{self, BatchClaim, ClaimView};
use engine::store::{Keys, Recorded, WriteContext};
use engine::{Database, StoreError};

use crate::error::ApiError;

/// A batch that takes longer than this to decide and commit is logged as a
/// warning: twice the p99 the service aims at for a whole request.
const SLOW_BATCH: Duration = Duration::from_millis(100);

type Outcome = Result<Recorded<ClaimView>, StoreError>;

struct Job {
    actor: String,
    key: String,
    claim: ValidClaim,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// The queue in front of the claim writer thread.
pub struct ClaimWriter {
    queue: SyncSender<Job>,
}

impl ClaimWriter {
    /// Starts the writer thread. `max_batch` claims at most share a commit
    /// (1 turns group commit off); `capacity` claims at most wait, more are
    /// refused with 503.
    pub fn start(
        db: Database,
        keys: Keys,
        max_batch: usize,
        capacity: usize,
        clock: Clock,
    ) -> std::io::Result<ClaimWriter> {
        let (queue, jobs) = mpsc::sync_channel(capacity.max(1));
        std::thread::Builder::new()
            .name("claim-writer".into())
            .spawn(move || run(&db, &keys, &jobs, max_batch.max(1), clock))?;
        Ok(ClaimWriter { queue })
    }

    /// Queues a validated claim and waits, without holding a thread, for its
    /// decision.
    pub async fn submit(
        &self,
        actor: String,
        key: String,
        claim: ValidClaim,
    ) -> Result<Recorded<ClaimView>, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            actor,
            key,
            claim,
            reply,
        };
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ApiError::Unavailable("the claim queue is full".into()),
            TrySendError::Disconnected(_) => {
                ApiError::Unavailable("the claim writer has stopped".into())
            }
        })?;
        let result = answer
            .await
            .map_err(|_| ApiError::Unavailable("the claim writer has stopped".into()))?;
        result.map_err(ApiError::from)
    }
}

fn run(db: &Database, keys: &Keys, jobs: &Receiver<Job>, max_batch: usize, clock: Clock) {
    // Ends when the server drops the queue.
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let results = catch_unwind(AssertUnwindSafe(|| commit_batch(db, keys, &batch, clock)))
            .unwrap_or_else(|_| {
                batch
                    .iter()
                    .map(|_| Err(StoreError::integrity("the claim writer panicked")))
                    .collect()
            });
        let elapsed = started.elapsed();
        if elapsed > SLOW_BATCH {
            // Every queued claim waits for this one: worth an operator's
            // look (a stalled disk shows here first).
            tracing::warn!(
                batch.size = batch.len(),
                elapsed_ms = elapsed.as_millis() as u64,
                "claim batch slow to commit"
            );
        } else {
            tracing::debug!(batch.size = batch.len(), "claims committed");
        }
        for (job, result) in batch.into_iter().zip(results) {
            // A caller that went away no longer needs its answer; the
            // decision is stored and a retry with its key replays it.
            let _ = job.reply.send(result);
        }
    }
}

/// Hands a batch to the engine on one connection, at one time for all.
fn commit_batch(db: &Database, keys: &Keys, batch: &[Job], clock: Clock) -> Vec<Outcome> {
    let mut conn = match db.get() {
        Ok(conn) => conn,
        Err(e) => {
            let detail = e.to_string();
            return batch
                .iter()
                .map(|_| Err(StoreError::Unavailable(detail.clone())))
                .collect();
        }
    };
    let now = clock.now();
    let claims: Vec<BatchClaim<'_>> = batch
        .iter()
        .map(|job| BatchClaim {
            ctx: WriteContext {
                keys,
                actor: &job.actor,
                now,
            },
            idempotency_key: &job.key,
            claim: &job.claim,
        })
        .collect();
    claims::submit_batch(&mut conn, &claims)
}
