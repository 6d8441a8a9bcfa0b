//! The CPU scheduler of predictions: the concurrency limit (a [`Permit`] per admitted
//! request), the compute slots, and [`Scheduler::blocking`], which runs a prediction's
//! CPU-bound work on the blocking pool or, when predictions come one at a time, inline.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// A slot of the concurrency limit, held until the prediction's blocking work ends (even when
/// the request timed out first, so the limit bounds the work actually running).
#[derive(Clone)]
pub struct Permit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// A prediction request let through by the router's `limit` layer: its body, read in full,
/// and its slot of the concurrency limit, taken only once the body was in (a request
/// extension).
#[derive(Clone)]
pub struct Admitted {
    pub body: Bytes,
    pub permit: Permit,
}

/// Compute slots beyond one per core: see [`Scheduler::blocking`].
const SPARE_SLOTS: usize = 2;

/// Bodies up to this size are predicted on the runtime worker that read them when
/// predictions come one at a time (see [`Scheduler::blocking`]): one JSON trial is 329 KB
/// and about 0.5 ms of work, so this is at most about 2 ms, by which a `--timeout` answer
/// can come late.
const INLINE_MAX_BYTES: usize = 1 << 20;

/// How long no two prediction requests must have overlapped before work runs inline.
const QUIET_MS: u64 = 1000;

/// The concurrency limit and the compute slots.
pub struct Scheduler {
    max_concurrency: usize,
    permits: Arc<Semaphore>,
    /// Slots for the CPU-bound part of predictions, [`SPARE_SLOTS`] more than cores (see
    /// [`Scheduler::blocking`]).
    compute: Arc<Semaphore>,
    /// When a prediction request last arrived while another was in flight, in milliseconds
    /// since `started`: [`Scheduler::blocking`] runs work inline only after a quiet spell.
    overlapped_at: AtomicU64,
    started: Instant,
}

impl Scheduler {
    pub fn new(max_concurrency: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Scheduler {
            max_concurrency,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            compute: Arc::new(Semaphore::new(cores + SPARE_SLOTS)),
            overlapped_at: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// A slot of the concurrency limit, or `None` when all are taken (the caller answers
    /// 503). Taking one notes whether this request overlaps another.
    pub fn admit(&self) -> Option<Permit> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        self.note_arrival();
        Some(Permit(Arc::new(permit)))
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Called with a prediction request's own permit held.
    fn note_arrival(&self) {
        if self.permits.available_permits() + 1 < self.max_concurrency {
            // Never 0, which means "never overlapped".
            self.overlapped_at
                .store(self.millis().max(1), Ordering::Relaxed);
        }
    }

    /// Predictions have been coming one at a time for [`QUIET_MS`] (or since the start).
    fn one_at_a_time(&self) -> bool {
        let at = self.overlapped_at.load(Ordering::Relaxed);
        at == 0 || self.millis().saturating_sub(at) > QUIET_MS
    }

    /// Runs CPU-bound work, on the blocking pool unless predictions come one at a time
    /// (below); a panic inside becomes 500. `work` is told how many threads it may use:
    /// itself plus the cores no other prediction is using, so that a lone request can split
    /// its work (at 1 connection the other core is idle). `input_bytes` is the size of the
    /// body it decodes.
    ///
    /// At most cores + 2 pieces of work run at once; the rest wait here, in order. More only
    /// share the cores, and each extra blocking thread keeps its own allocator heap: with one
    /// thread per concurrent request the resident memory grew from 90 to 430 MB at 32
    /// connections, and p99 from 17 to 43 ms. Exactly one per core left a core idle between
    /// hand-offs (2 400 instead of 2 900 requests/s at 8 connections); two more keep the
    /// cores fed.
    ///
    /// The work goes to the blocking pool, except for a small body when predictions come one
    /// at a time: then it runs right here, on the runtime worker that read the request. That
    /// saves the two thread wake-ups of a hand-off to the pool and back (15-40 µs each on
    /// this VM) and keeps the request's buffers on one thread. It holds this worker for up to
    /// about 2 ms (`INLINE_MAX_BYTES`); with predictions one at a time the other workers of
    /// the multi-thread runtime that [`super::run`] builds serve everything else meanwhile.
    ///
    /// Measured with `wrk` at 1 connection, three interleaved A/B rounds each: after a
    /// warm-up at 1 connection 1 490-1 570 -> 1 690-1 930 requests/s, p99 2.5-3.9 -> 1.0-1.6
    /// ms; after one at 4 connections 1 320-1 430 -> 1 490-1 760 requests/s, but p99 1.7-2.1
    /// -> 2.5-3.0 ms. At 8 and 32 connections requests overlap all the time and the pool is
    /// used as before. Tried and not kept: `block_in_place` instead (it moves the worker to
    /// another thread each time: no faster after a warm-up at 4 connections, p99 worse), and
    /// running inline whenever no other prediction was in flight at that moment (8-17 %
    /// slower at 8 connections, where that is often the case), hence the quiet spell of
    /// `QUIET_MS` with no overlap.
    pub async fn blocking<T: Send + 'static>(
        &self,
        permit: Permit,
        input_bytes: usize,
        work: impl FnOnce(usize) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let Ok(core) = self.compute.clone().acquire_owned().await else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ));
        };
        // Free slots beyond the spare ones are idle cores (ours is taken already).
        let threads = self.compute.available_permits().saturating_sub(SPARE_SLOTS) + 1;
        if self.one_at_a_time() && input_bytes <= INLINE_MAX_BYTES {
            let _permits = (permit, core);
            return std::panic::catch_unwind(AssertUnwindSafe(|| work(threads)))
                .unwrap_or_else(|_| Err(work_panicked()));
        }
        tokio::task::spawn_blocking(move || {
            let _permits = (permit, core);
            work(threads)
        })
        .await
        .unwrap_or_else(|_| Err(work_panicked()))
    }
}

/// The answer when a prediction's work panicked.
pub fn work_panicked() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the prediction failed unexpectedly",
    )
}
