//! `POST /classify`: the original BentoML service's request and answer. The body is a JSON
//! array of trials (each channels × samples of raw EEG in µV), little-endian f32 bytes
//! (`application/octet-stream`, shape in the `X-Tensor-Shape` header or `?shape=`), or a
//! `.npy` file (`application/x-npy`); the answer is the labels, `["left", …]`.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::answer::{json_answer, Timed};
use super::error::ApiError;
use super::state::Shared;
use super::tensor::{self, Nested, Trials};
use super::work::Admitted;

/// The body formats `/classify` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    F32,
    Npy,
}

impl BodyFormat {
    /// JSON when no type or a generic one is given (what `curl -d` sends).
    pub fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(ct) = headers.get(header::CONTENT_TYPE) else {
            return Ok(BodyFormat::Json);
        };
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json" | "text/plain" | "application/x-www-form-urlencoded" | "*/*"
            | "" => Ok(BodyFormat::Json),
            "application/octet-stream" => Ok(BodyFormat::F32),
            "application/x-npy" | "application/npy" => Ok(BodyFormat::Npy),
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type `{other}` is not application/json, application/octet-stream or application/x-npy"
                ),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ShapeQuery {
    shape: Option<String>,
}

pub async fn classify(
    State(st): State<Shared>,
    Extension(admitted): Extension<Admitted>,
    Query(query): Query<ShapeQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = BodyFormat::of(&headers)?;
    let model = st.model()?;
    let shape = headers
        .get("x-tensor-shape")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.shape);
    let Admitted {
        body: bytes,
        permit,
    } = admitted;
    let served = model.clone();
    // When cores are idle, pieces of a JSON body are read on the runtime's blocking pool too
    // (see `Scheduler::blocking`). Splitting the band-pass the same way measured no faster: waking a
    // thread costs about what filtering half the channels saves.
    let runtime = tokio::runtime::Handle::current();
    let timed = st
        .work
        .blocking(permit, bytes.len(), move |threads| {
            let spawn = |job| {
                runtime.spawn_blocking(job);
            };
            let t0 = Instant::now();
            let trials: Trials = match format {
                BodyFormat::Json => {
                    // The scanner has refused non-finite numbers already.
                    let n = Nested::from_json_on(&bytes, threads, &spawn)?;
                    Trials::from_shape(&n.shape, n.data)?
                }
                BodyFormat::F32 => {
                    let shape = shape.as_deref().map(tensor::parse_shape).transpose()?;
                    tensor::from_f32_le(&bytes, shape.as_deref(), &served.model)?
                }
                BodyFormat::Npy => tensor::from_npy(&bytes)?,
            };
            trials.check(&served.model)?;
            let parse = t0.elapsed();
            let t1 = Instant::now();
            let (labels, _) = served.model.predict_raw_batch(trials.view(), false)?;
            let infer = t1.elapsed();
            let names: Vec<&str> = labels
                .iter()
                .map(|&c| served.model.classes[c].as_str())
                .collect();
            Timed::json(&names, parse, infer)
        })
        .await?;
    Ok(json_answer(&st.metrics, timed, &model.version))
}
