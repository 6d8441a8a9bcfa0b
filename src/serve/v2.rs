//! The Open Inference Protocol (KServe V2) over REST: health, server and model metadata, and
//! `infer` with one FP32/FP64 input tensor `[N, channels, samples]`, answered with two outputs:
//! `labels` (BYTES, `[N]`) and `scores` (FP64, `[N, K]`, the model family's decision values
//! or distances: docs/model.md lists them per family).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::answer::{json_answer, Timed};
use super::error::ApiError;
use super::reload::LoadedModel;
use super::state::Shared;
use super::tensor::{Nested, Trials};
use super::work::Admitted;

pub const INPUT: &str = "eeg";

pub async fn server_metadata() -> Json<serde_json::Value> {
    Json(json!({
        "name": "bciops",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": []
    }))
}

pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "live": true }))
}

pub async fn ready(State(st): State<Shared>) -> Response {
    if st.is_ready() {
        Json(json!({ "ready": true })).into_response()
    } else {
        not_ready()
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "ready": false, "error": "the model is not loaded and warmed up yet" })),
    )
        .into_response()
}

/// The served model if `name` is its name; 404 otherwise.
fn named(st: &Shared, name: &str) -> Result<std::sync::Arc<LoadedModel>, ApiError> {
    let model = st.model()?;
    if model.name != name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown model `{name}`; this server serves `{}`",
                model.name
            ),
        ));
    }
    Ok(model)
}

pub async fn model_metadata(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let m = named(&st, &name)?;
    let (c, s) = m.model.trial_shape();
    let k = score_columns(&m);
    Ok(Json(json!({
        "name": m.name,
        "versions": [m.version],
        "platform": "bciops",
        "inputs": [{ "name": INPUT, "datatype": "FP32", "shape": [-1, c, s] }],
        "outputs": [
            { "name": "labels", "datatype": "BYTES", "shape": [-1] },
            { "name": "scores", "datatype": "FP64", "shape": [-1, k] }
        ],
        "parameters": {
            "classes": m.model.classes,
            "channels": m.model.preprocessing.channels,
            "rate": m.model.preprocessing.rate,
            "band": m.model.preprocessing.filter.band,
        }
    })))
}

/// Columns of the scores, as the model's family gives them.
fn score_columns(m: &LoadedModel) -> usize {
    m.model.score_columns()
}

pub async fn model_ready(State(st): State<Shared>, Path(name): Path<String>) -> Response {
    match named(&st, &name) {
        Ok(_) if st.is_ready() => Json(json!({ "name": name, "ready": true })).into_response(),
        Ok(_) => not_ready(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct InferRequest {
    id: Option<String>,
    inputs: Vec<InputTensor>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<usize>,
    datatype: String,
    data: Nested,
}

#[derive(Debug, Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<OutputTensor<'a>>,
}

#[derive(Debug, Serialize)]
struct OutputTensor<'a> {
    name: &'static str,
    shape: Vec<usize>,
    datatype: &'static str,
    data: OutputData<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum OutputData<'a> {
    Bytes(Vec<&'a str>),
    Fp64(Vec<f64>),
}

fn decode(bytes: &[u8]) -> Result<(Option<String>, Trials), ApiError> {
    let req: InferRequest = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("not a V2 inference request: {e}")))?;
    let [input] = <[InputTensor; 1]>::try_from(req.inputs).map_err(|v| {
        ApiError::bad_request(format!(
            "`{}` inputs given; the model takes one, `{INPUT}`",
            v.len()
        ))
    })?;
    let mut data = input.data.data;
    match input.datatype.as_str() {
        "FP64" => {}
        // The values are what an FP32 tensor holds, exactly as the binary body would carry them.
        "FP32" => data.iter_mut().for_each(|v| *v = f64::from(*v as f32)),
        other => {
            return Err(ApiError::bad_request(format!(
                "input `{}` has datatype `{other}`; FP32 or FP64 expected",
                input.name
            )))
        }
    }
    // serde_json refuses a number beyond f64's range, but narrowing to FP32 can overflow.
    let trials = Trials::from_shape(&input.shape, data)?.finite()?;
    Ok((req.id, trials))
}

pub async fn infer(
    State(st): State<Shared>,
    Extension(admitted): Extension<Admitted>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let model = named(&st, &name)?;
    let Admitted {
        body: bytes,
        permit,
    } = admitted;
    let served = model.clone();
    let timed = st
        .work
        .blocking(permit, bytes.len(), move |_threads| {
            let t0 = Instant::now();
            let (id, trials) = decode(&bytes)?;
            trials.check(&served.model)?;
            let parse = t0.elapsed();
            let t1 = Instant::now();
            let (labels, scores) = served.model.predict_raw_batch(trials.view(), true)?;
            let infer = t1.elapsed();
            let scores = scores.expect("scores were asked for");
            let m = &served;
            let response = InferResponse {
                model_name: &m.name,
                model_version: &m.version,
                id,
                outputs: vec![
                    OutputTensor {
                        name: "labels",
                        shape: vec![labels.len()],
                        datatype: "BYTES",
                        data: OutputData::Bytes(
                            labels
                                .iter()
                                .map(|&c| m.model.classes[c].as_str())
                                .collect(),
                        ),
                    },
                    OutputTensor {
                        name: "scores",
                        shape: vec![scores.nrows(), scores.ncols()],
                        datatype: "FP64",
                        data: OutputData::Fp64(scores.iter().copied().collect()),
                    },
                ],
            };
            Timed::json(&response, parse, infer)
        })
        .await?;
    Ok(json_answer(&st.metrics, timed, &model.version))
}

/// Requests whose `shape` claims huge, zero or overflowing sizes (issue 16).
#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::testutil::{hostile_size, quick};
    use proptest::prelude::*;

    fn request(shape: &str, datatype: &str, data: &str) -> Vec<u8> {
        format!(
            r#"{{"inputs": [{{"name": "eeg", "shape": {shape}, "datatype": "{datatype}", "data": {data}}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_shape_beyond_the_data_is_a_bad_request() {
        let e = decode(&request("[100000000000, 22, 750]", "FP32", "[[[1, 2]]]")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("does not match the 2 values"),
            "{}",
            e.message
        );
        for shape in [
            "[-1, 22, 750]",
            "[18446744073709551616, 1, 1]",
            "[1e3, 1, 1]",
        ] {
            let e = decode(&request(shape, "FP32", "[1]")).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{shape}");
            assert!(
                e.message.contains("not a V2 inference request"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn an_fp32_value_beyond_its_range_is_refused_at_decode() {
        // Finite as f64, infinite once narrowed to FP32: the one finiteness check is the
        // decoder's, so it must come after the narrowing.
        let e = decode(&request("[1, 1, 3]", "FP32", "[1, 1e39, 2]")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .contains("trial 0 channel 0 sample 1 is `inf`: values must be finite"),
            "{}",
            e.message
        );
        assert!(decode(&request("[1, 1, 3]", "FP64", "[1, 1e39, 2]")).is_ok());
        let e = decode(&request("[1, 1, 1]", "FP64", "[1e400]")).unwrap_err();
        assert!(
            e.message.contains("not a V2 inference request"),
            "{}",
            e.message
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn hostile_shapes_are_bad_requests_or_match_the_data(
            dims in prop::collection::vec(hostile_size(), 0..5),
            datatype in prop::sample::select(vec!["FP32", "FP64", "INT64", ""]),
            values in 0usize..40,
        ) {
            let shape = format!("[{}]", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
            let data = format!("[{}]", vec!["1.5"; values].join(", "));
            let body = request(&shape, datatype, &data);
            match quick("decode", || decode(&body)) {
                Ok((_, t)) => prop_assert_eq!(t.data.len(), values),
                Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
            }
        }
    }
}
