//! The router, the shared state, the JSON error type and the two middleware layers:
//! `observe` (every route: metrics, in-flight gauge, panics caught, every error body JSON)
//! and `limit` (prediction routes: the body read within its own deadline and minimum rate,
//! then the concurrency limit answering 503, then the per-request timeout).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{FutureExt, StreamExt};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;
use super::reload::{LoadedModel, Slot};
use super::{classify, openapi, v2};
use crate::error::Error;

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
    permits: Arc<Semaphore>,
    /// Slots for the CPU-bound part of predictions, [`SPARE_SLOTS`] more than cores (see
    /// [`blocking`]).
    compute: Arc<Semaphore>,
    /// When a prediction request last arrived while another was in flight, in milliseconds
    /// since `started`: [`blocking`] runs work inline only after a quiet spell.
    overlapped_at: AtomicU64,
    started: Instant,
    pub shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(slot: Arc<Slot>, metrics: Arc<Metrics>, limits: Limits) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        AppState {
            permits: Arc::new(Semaphore::new(limits.max_concurrency)),
            compute: Arc::new(Semaphore::new(cores + SPARE_SLOTS)),
            overlapped_at: AtomicU64::new(0),
            started: Instant::now(),
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

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Called with a prediction request's own permit held.
    fn note_arrival(&self) {
        if self.permits.available_permits() + 1 < self.limits.max_concurrency {
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
}

pub type Shared = Arc<AppState>;

/// An error answer: a status and a one-line message, sent as `{"error": message}` (the V2
/// protocol's error shape, used by every endpoint).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        // The caller's input is wrong exactly when the command line would exit 2.
        let status = if e.exit_code() == crate::error::exit::BAD_INPUT {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // These answers can go out before the request body was read; the server then closes
        // the connection, so it says so, and a client does not send its next request down a
        // connection that is about to close (seen as `IncompleteMessage` in the tests).
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::REQUEST_TIMEOUT
        ) {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// A slot of the concurrency limit, held until the prediction's blocking work ends (even when
/// the request timed out first, so the limit bounds the work actually running).
#[derive(Clone)]
pub struct Permit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// A prediction request let through by [`limit`]: its body, read in full, and its slot of
/// the concurrency limit, taken only once the body was in (a request extension).
#[derive(Clone)]
pub struct Admitted {
    pub body: Bytes,
    pub permit: Permit,
}

/// Compute slots beyond one per core: see [`blocking`].
const SPARE_SLOTS: usize = 2;

/// Bodies up to this size are predicted on the runtime worker that read them when
/// predictions come one at a time (see [`blocking`]): one JSON trial is 329 KB and about
/// 0.5 ms of work, so this is at most about 2 ms, by which a `--timeout` answer can come late.
const INLINE_MAX_BYTES: usize = 1 << 20;

/// How long no two prediction requests must have overlapped before work runs inline.
const QUIET_MS: u64 = 1000;

/// Runs CPU-bound work, on the blocking pool unless predictions come one at a time (below);
/// a panic inside becomes 500. `work` is told how many threads it may use: itself plus the
/// cores no other prediction is using, so that a lone request can split its work (at 1
/// connection the other core is idle). `input_bytes` is the size of the body it decodes.
///
/// At most cores + 2 pieces of work run at once; the rest wait here, in order. More only
/// share the cores, and each extra blocking thread keeps its own allocator heap: with one
/// thread per concurrent request the resident memory grew from 90 to 430 MB at 32
/// connections, and p99 from 17 to 43 ms. Exactly one per core left a core idle between hand-offs
/// (2 400 instead of 2 900 requests/s at 8 connections); two more keep the cores fed.
///
/// The work goes to the blocking pool, except for a small body when predictions come one at
/// a time: then it runs right here, on the runtime worker that read the request. That saves
/// the two thread wake-ups of a hand-off to the pool and back (15-40 µs each on this VM)
/// and keeps the request's buffers on one thread. It holds this worker for up to about 2 ms
/// (`INLINE_MAX_BYTES`); with predictions one at a time the other workers of the
/// multi-thread runtime that [`super::run`] builds serve everything else meanwhile.
///
/// Measured with `wrk` at 1 connection, three interleaved A/B rounds each: after a warm-up at
/// 1 connection 1 490-1 570 -> 1 690-1 930 requests/s, p99 2.5-3.9 -> 1.0-1.6 ms; after one
/// at 4 connections 1 320-1 430 -> 1 490-1 760 requests/s, but p99 1.7-2.1 -> 2.5-3.0 ms. At 8
/// and 32 connections requests overlap all the time and the pool is used as before. Tried
/// and not kept: `block_in_place` instead (it moves the worker to another thread each time:
/// no faster after a warm-up at 4 connections, p99 worse), and running inline whenever no
/// other prediction was in flight at that moment (8-17 % slower at 8 connections, where that
/// is often the case), hence the quiet spell of `QUIET_MS` with no overlap.
pub async fn blocking<T: Send + 'static>(
    st: &AppState,
    permit: Permit,
    input_bytes: usize,
    work: impl FnOnce(usize) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let Ok(core) = st.compute.clone().acquire_owned().await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    };
    // Free slots beyond the spare ones are idle cores (ours is taken already).
    let threads = st.compute.available_permits().saturating_sub(SPARE_SLOTS) + 1;
    if st.one_at_a_time() && input_bytes <= INLINE_MAX_BYTES {
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

fn work_panicked() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the prediction failed unexpectedly",
    )
}

/// Reads the whole body, answering 413 as soon as it exceeds the limit and 408 when it
/// arrives too slowly: not complete within `--body-timeout`, or, after [`BODY_GRACE`], at
/// less than `--min-body-rate` bytes/s on average. A client trickling its body a byte at a
/// time then holds its connection for about a second, and never a slot of the concurrency
/// limit (taken only after this).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &Limits,
) -> Result<Bytes, ApiError> {
    let limit = limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the `{limit}` byte limit (--max-body-bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let start = tokio::time::Instant::now();
    let deadline = start + limits.body_timeout;
    let rate = limits.min_body_rate;
    // One timer for the whole body, first due at the end of the grace period (or the
    // deadline), then moved to the next moment the body could fall below the rate. It is
    // only registered if the body is not already in: `biased` polls the body first.
    let first_check = if rate > 0 {
        deadline.min(start + BODY_GRACE)
    } else {
        deadline
    };
    let check = tokio::time::sleep_until(first_check);
    tokio::pin!(check);
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    loop {
        tokio::select! {
            biased;
            chunk = stream.next() => {
                let Some(chunk) = chunk else { break };
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request(format!("cannot read the request body: {e}"))
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            () = &mut check => {
                let now = tokio::time::Instant::now();
                let elapsed = now - start;
                let got = buf.len();
                if now >= deadline {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body did not arrive within `{}` ms (--body-timeout): `{got}` bytes received",
                            limits.body_timeout.as_millis()
                        ),
                    ));
                }
                let paced = elapsed.saturating_sub(BODY_GRACE).as_secs_f64();
                if (got as f64) < rate as f64 * paced {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body arrived slower than `{rate}` bytes/s (--min-body-rate): `{got}` bytes in `{}` ms",
                            elapsed.as_millis()
                        ),
                    ));
                }
                // The body keeps the average until `got` bytes are what the rate asks for;
                // at least 50 ms on, so that a body right at the rate is not checked in a
                // busy loop.
                let due = if rate > 0 {
                    let paced_for = Duration::try_from_secs_f64(got as f64 / rate as f64)
                        .unwrap_or(limits.body_timeout);
                    (start + BODY_GRACE + paced_for).max(now + Duration::from_millis(50))
                } else {
                    deadline
                };
                check.as_mut().reset(due.min(deadline));
            }
        }
    }
    Ok(Bytes::from(buf))
}

/// Every route of the server; `panic_route` and `sleep_route` are test hooks.
pub fn router(state: Shared, panic_route: bool, sleep_route: bool) -> Router {
    let mut predict = Router::new()
        .route("/classify", post(classify::classify))
        .route("/v2/models/{name}/infer", post(v2::infer));
    if panic_route {
        // Test hook (BCIOPS_SERVE_PANIC_ROUTE=1): proves a panic never reaches a client.
        predict = predict.route(
            "/debug/panic",
            post(|| async {
                panic!("deliberate panic from /debug/panic");
                #[allow(unreachable_code)]
                ()
            }),
        );
    }
    if sleep_route {
        // Test hook (BCIOPS_SERVE_SLEEP_ROUTE=1): a prediction that holds its slot of the
        // concurrency limit for the milliseconds in its body, off the runtime's workers.
        predict = predict.route("/debug/sleep", post(sleep));
    }
    let predict = predict.route_layer(middleware::from_fn_with_state(state.clone(), limit));
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .merge(predict)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn sleep(Extension(admitted): Extension<Admitted>) -> Result<&'static str, ApiError> {
    let text = std::str::from_utf8(&admitted.body).unwrap_or("");
    let ms: u64 = text
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not a number of milliseconds")))?;
    let permit = admitted.permit;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        std::thread::sleep(Duration::from_millis(ms));
    })
    .await
    .map_err(|_| work_panicked())?;
    Ok("slept")
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route `{} {}`; see /openapi.json",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn livez() -> Json<serde_json::Value> {
    Json(json!({ "status": "live" }))
}

async fn readyz(State(st): State<Shared>) -> Response {
    match (st.is_ready(), st.slot.get()) {
        (true, Some(m)) => Json(json!({
            "status": "ready", "model": m.name, "version": m.version
        }))
        .into_response(),
        _ if st.shutting_down.load(Ordering::Relaxed) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
        }
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is not loaded and warmed up yet",
        )
        .into_response(),
    }
}

async fn metrics(State(st): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Decrements the in-flight gauge however the request ends (even a dropped connection).
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight(-1);
    }
}

async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    st.metrics.in_flight(1);
    let _guard = InFlight(st.metrics.clone());
    let start = Instant::now();
    let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the server failed handling this request",
        )
        .into_response(),
    };
    let mut response = json_errors(response).await;
    // While draining, each answer closes its connection: the client then opens its next
    // request elsewhere instead of sending it down a connection about to be closed (where it
    // could be lost unanswered).
    if st.shutting_down.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    st.metrics
        .request(&endpoint, response.status().as_u16(), start.elapsed());
    response
}

/// Turns an error answer that is not JSON (axum's own 405, a rejected extractor) into
/// `{"error": …}`, keeping its text.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut r = ApiError::new(status, message).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    r
}

/// Prediction routes: the body is read first (within `--body-timeout` and above
/// `--min-body-rate`, see [`read_body`]), and only then a slot of `--max-concurrency` taken
/// (503 when none is free) and `--timeout` started. A slot is thus held only by work this
/// server can do now, never by a client that is slow to send: 64 clients trickling bodies
/// at a byte a second used to hold every slot for the whole `--timeout`.
async fn limit(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, &st.limits).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let permit = match st.permits.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: `{}` requests are being handled (--max-concurrency); retry later",
                    st.limits.max_concurrency
                ),
            )
            .into_response()
        }
    };
    st.note_arrival();
    parts.extensions.insert(Admitted {
        body,
        permit: Permit(Arc::new(permit)),
    });
    let req = Request::from_parts(parts, Body::empty());
    match tokio::time::timeout(st.limits.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the prediction took longer than `{}` ms (--timeout)",
                st.limits.timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
