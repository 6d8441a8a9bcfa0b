//! What every handler sees: the model slot, the metrics, the request limits and the CPU
//! scheduler, shared behind one `Arc`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use super::error::ApiError;
use super::metrics::Metrics;
use super::reload::{LoadedModel, Slot};
use super::work::Scheduler;

/// The limits a request is held to.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// From the body read in full to the answer.
    pub timeout: Duration,
    pub max_concurrency: usize,
    /// Longest a prediction request's body may take to arrive.
    pub body_timeout: Duration,
    /// After [`BODY_GRACE`], a body must have arrived at this many bytes/s on average
    /// (0: no minimum).
    pub min_body_rate: u64,
}

/// How long a body may arrive at any pace before `min_body_rate` applies: a client's first
/// packets (TCP slow start, a proxy's buffering) say little about its rate.
pub const BODY_GRACE: Duration = Duration::from_secs(1);

/// What every handler sees.
pub struct AppState {
    pub slot: Arc<Slot>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// The concurrency limit and the compute slots of prediction work.
    pub work: Scheduler,
    pub shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(slot: Arc<Slot>, metrics: Arc<Metrics>, limits: Limits) -> Self {
        AppState {
            work: Scheduler::new(limits.max_concurrency),
            slot,
            metrics,
            limits,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// The model being served, or 503 while none has loaded.
    pub fn model(&self) -> Result<Arc<LoadedModel>, ApiError> {
        self.slot.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no model is loaded yet; retry when /readyz answers 200",
            )
        })
    }

    pub fn is_ready(&self) -> bool {
        self.metrics.is_ready() && !self.shutting_down.load(Ordering::Relaxed)
    }
}

pub type Shared = Arc<AppState>;
