//! What both prediction handlers answer with: the JSON body with the `Server-Timing` and
//! `X-Model-Version` headers, once the parse and inference times are counted in the metrics.

use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::metrics::Metrics;

/// Time spent decoding the body and predicting, for metrics and the `Server-Timing` header.
pub struct Timed<T> {
    pub value: T,
    pub parse: Duration,
    pub infer: Duration,
}

impl Timed<Vec<u8>> {
    /// `value` encoded as the JSON body of an answer, with the times it took.
    pub fn json<V: serde::Serialize>(
        value: &V,
        parse: Duration,
        infer: Duration,
    ) -> Result<Self, super::error::ApiError> {
        let body = serde_json::to_vec(value).map_err(|e| {
            super::error::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: cannot encode the answer: {e}"),
            )
        })?;
        Ok(Timed {
            value: body,
            parse,
            infer,
        })
    }
}

/// A JSON answer with the timing headers, once parse and inference time are counted.
pub fn json_answer(metrics: &Metrics, timed: Timed<Vec<u8>>, version: &str) -> Response {
    metrics.parse(timed.parse);
    metrics.inference(timed.infer);
    let mut r = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        timed.value,
    )
        .into_response();
    add_timing(&mut r, timed.parse, timed.infer, version);
    r
}

/// An answer of the binary tensor data extension: `json_len` bytes of JSON, then binary
/// outputs, with the timing headers and `Inference-Header-Content-Length`.
pub fn binary_answer(
    metrics: &Metrics,
    timed: Timed<Vec<u8>>,
    json_len: usize,
    version: &str,
) -> Response {
    metrics.parse(timed.parse);
    metrics.inference(timed.infer);
    let mut r = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(super::v2_binary::HEADER),
                HeaderValue::from(json_len),
            ),
        ],
        timed.value,
    )
        .into_response();
    add_timing(&mut r, timed.parse, timed.infer, version);
    r
}

/// `Server-Timing: parse;dur=…, infer;dur=…` (milliseconds) and the model version, so a
/// client can split the cost of a request without scraping metrics.
fn add_timing(r: &mut Response, parse: Duration, infer: Duration, version: &str) {
    let value = format!(
        "parse;dur={:.3}, infer;dur={:.3}",
        parse.as_secs_f64() * 1e3,
        infer.as_secs_f64() * 1e3
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert("server-timing", v);
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        r.headers_mut().insert("x-model-version", v);
    }
}
