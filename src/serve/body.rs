//! Reading a prediction request's body within its limits: size (413), deadline and minimum
//! rate (408), before the request may take a slot of the concurrency limit.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;

use super::error::ApiError;
use super::state::{Limits, BODY_GRACE};

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
            format!("the body is larger than the server's limit of `{limit}` bytes"),
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
                            "the request body did not arrive within the server's `{}` ms: `{got}` bytes received",
                            limits.body_timeout.as_millis()
                        ),
                    ));
                }
                let paced = elapsed.saturating_sub(BODY_GRACE).as_secs_f64();
                if (got as f64) < rate as f64 * paced {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body arrived slower than the server's minimum of `{rate}` bytes/s: `{got}` bytes in `{}` ms",
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
