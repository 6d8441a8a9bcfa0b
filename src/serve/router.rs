//! The router and its two middleware layers: `observe` (every route: metrics, in-flight
//! gauge, panics caught, every error body JSON) and `limit` (prediction routes: the body
//! read within its own deadline and minimum rate, then the concurrency limit answering 503,
//! then the per-request timeout). The health probes, `/metrics` and the test hooks are
//! answered here too: each is a few lines over the shared state.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::FutureExt;
use serde_json::json;

use super::body::read_body;
use super::error::{json_errors, ApiError};
use super::metrics::Metrics;
use super::state::Shared;
use super::work::{work_panicked, Admitted};
use super::{classify, openapi, v2};

/// Every route of the server; `panic_route` and `sleep_route` are test hooks.
pub fn router(state: Shared, panic_route: bool, sleep_route: bool) -> Router {
    let mut predict = Router::new()
        .route("/classify", post(classify::classify))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer_version),
        );
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
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_version_ready),
        )
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
    let Some(permit) = st.work.admit() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: `{}` requests are being handled, the server's limit; retry later",
                st.limits.max_concurrency
            ),
        )
        .into_response();
    };
    parts.extensions.insert(Admitted { body, permit });
    let req = Request::from_parts(parts, Body::empty());
    match tokio::time::timeout(st.limits.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the prediction took longer than the server's limit of `{}` ms",
                st.limits.timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
