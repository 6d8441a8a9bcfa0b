//! The Open Inference Protocol (KServe V2) over REST: health, server and model metadata, and
//! `infer` with one FP32/FP64 input tensor `[N, channels, samples]` named `eeg`, answered with
//! the outputs asked for (both by default): `labels` (BYTES, `[N]`) and `scores` (FP64,
//! `[N, K]`, the model family's decision values or distances: docs/model.md lists them per
//! family). Values come as JSON `data` or, with the binary tensor data extension
//! ([`v2_binary`]), as raw bytes after the JSON header; outputs go back either way. Every model
//! route also exists under `/versions/{version}`, where the one version is the one being served.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::answer::{binary_answer, json_answer, Timed};
use super::error::ApiError;
use super::reload::LoadedModel;
use super::state::Shared;
use super::tensor::{Nested, Trials};
use super::v2_binary;
use super::work::Admitted;

pub const INPUT: &str = "eeg";

pub async fn server_metadata() -> Json<serde_json::Value> {
    Json(json!({
        "name": "bciops",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"]
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

/// The served model if `name` is its name and `version`, when given, the version it serves
/// now (the server serves one: a model directory's checksum digest, or the registry version
/// its reference resolves to); 404 otherwise.
fn named(st: &Shared, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ApiError> {
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
    if let Some(v) = version.filter(|&v| v != model.version) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "model `{name}` has no version `{v}` here; this server serves version `{}`",
                model.version
            ),
        ));
    }
    Ok(model)
}

pub async fn model_metadata(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    metadata(named(&st, &name, None)?.as_ref())
}

pub async fn model_version_metadata(
    State(st): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    metadata(named(&st, &name, Some(&version))?.as_ref())
}

fn metadata(m: &LoadedModel) -> Result<Json<serde_json::Value>, ApiError> {
    let (c, s) = m.model.trial_shape();
    let k = score_columns(m);
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
    readiness(&st, &name, None)
}

pub async fn model_version_ready(
    State(st): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    readiness(&st, &name, Some(&version))
}

fn readiness(st: &Shared, name: &str, version: Option<&str>) -> Response {
    match named(st, name, version) {
        Ok(_) if st.is_ready() => Json(json!({ "name": name, "ready": true })).into_response(),
        Ok(_) => not_ready(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct InferRequest {
    id: Option<String>,
    inputs: Vec<InputTensor>,
    /// The outputs to answer with; all of them when absent.
    outputs: Option<Vec<RequestedOutput>>,
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<usize>,
    datatype: String,
    /// Absent when the values come as binary data after the JSON header.
    data: Option<Nested>,
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// The parameters of a request, an input or an output that this server reads; the protocol
/// lets a client send others, which are ignored.
#[derive(Debug, Default, Deserialize)]
struct Parameters {
    /// An input's bytes of binary data after the JSON header.
    binary_data_size: Option<u64>,
    /// An output wanted as binary data (or not, overriding `binary_data_output`).
    binary_data: Option<bool>,
    /// Every output without its own `binary_data` wanted as binary data.
    binary_data_output: Option<bool>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<OutputData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<OutputParameters>,
}

#[derive(Debug, Serialize)]
struct OutputParameters {
    binary_data_size: usize,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum OutputData<'a> {
    Bytes(Vec<&'a str>),
    Fp64(Vec<f64>),
}

/// The outputs of the model, in the order metadata lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Labels,
    Scores,
}

impl Output {
    const ALL: [Output; 2] = [Output::Labels, Output::Scores];

    fn name(self) -> &'static str {
        match self {
            Output::Labels => "labels",
            Output::Scores => "scores",
        }
    }
}

/// One output to answer with, and whether as binary data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    output: Output,
    binary: bool,
}

/// A decoded inference request.
#[derive(Debug)]
struct Decoded {
    id: Option<String>,
    trials: Trials,
    outputs: Vec<Wanted>,
}

/// Decodes a request body: `json` is its JSON part and `binary` what follows it (see
/// [`v2_binary::split`]; empty without the extension).
fn decode(json: &[u8], binary: &[u8]) -> Result<Decoded, ApiError> {
    let req: InferRequest = serde_json::from_slice(json).map_err(|e| {
        // Raw bytes after the JSON without the header that says where the JSON ends.
        let hint = if binary.is_empty() && e.to_string().starts_with("trailing characters") {
            "; binary data after the JSON needs the `Inference-Header-Content-Length` header"
        } else {
            ""
        };
        ApiError::bad_request(format!("not a V2 inference request: {e}{hint}"))
    })?;
    let outputs = wanted(
        req.outputs,
        req.parameters.binary_data_output.unwrap_or(false),
    )?;
    let [input] = <[InputTensor; 1]>::try_from(req.inputs).map_err(|v| {
        ApiError::bad_request(format!(
            "`{}` inputs given; the model takes one, `{INPUT}`",
            v.len()
        ))
    })?;
    if input.name != INPUT {
        return Err(ApiError::bad_request(format!(
            "unknown input `{}`; the model's input is `{INPUT}`",
            input.name
        )));
    }
    let name = &input.name;
    let data = match (input.data, input.parameters.binary_data_size) {
        (Some(_), Some(size)) => {
            return Err(ApiError::bad_request(format!(
                "input `{name}` has both `data` and `binary_data_size` `{size}`; send one"
            )))
        }
        (None, Some(size)) => {
            v2_binary::input_values(name, &input.shape, &input.datatype, size, binary)?
        }
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "input `{name}` has neither `data` nor `parameters.binary_data_size`"
            )))
        }
        (Some(nested), None) => {
            if !binary.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "`{}` bytes of binary data follow the JSON header but no input has `binary_data_size`",
                    binary.len()
                )));
            }
            let mut data = nested.data;
            match input.datatype.as_str() {
                "FP64" => {}
                // The values are what an FP32 tensor holds, exactly as the binary body would
                // carry them.
                "FP32" => data.iter_mut().for_each(|v| *v = f64::from(*v as f32)),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "input `{name}` has datatype `{other}`; FP32 or FP64 expected"
                    )))
                }
            }
            data
        }
    };
    // serde_json refuses a number beyond f64's range, but narrowing to FP32 can overflow, and
    // binary data can hold NaN or infinities.
    let trials = Trials::from_shape(&input.shape, data)?.finite()?;
    Ok(Decoded {
        id: req.id,
        trials,
        outputs,
    })
}

/// The outputs asked for, each as binary data or not; every output when none is named.
fn wanted(requested: Option<Vec<RequestedOutput>>, binary: bool) -> Result<Vec<Wanted>, ApiError> {
    let requested = match requested {
        Some(r) if !r.is_empty() => r,
        _ => {
            return Ok(Output::ALL
                .iter()
                .map(|&output| Wanted { output, binary })
                .collect())
        }
    };
    let mut out: Vec<Wanted> = Vec::with_capacity(requested.len());
    for r in requested {
        let Some(&output) = Output::ALL.iter().find(|o| o.name() == r.name) else {
            return Err(ApiError::bad_request(format!(
                "unknown output `{}`; the model's outputs are `labels` and `scores`",
                r.name
            )));
        };
        if out.iter().any(|w| w.output == output) {
            return Err(ApiError::bad_request(format!(
                "output `{}` is requested twice",
                r.name
            )));
        }
        out.push(Wanted {
            output,
            binary: r.parameters.binary_data.unwrap_or(binary),
        });
    }
    Ok(out)
}

pub async fn infer(
    State(st): State<Shared>,
    Extension(admitted): Extension<Admitted>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    infer_on(st, admitted, headers, &name, None).await
}

pub async fn infer_version(
    State(st): State<Shared>,
    Extension(admitted): Extension<Admitted>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    infer_on(st, admitted, headers, &name, Some(&version)).await
}

async fn infer_on(
    st: Shared,
    admitted: Admitted,
    headers: HeaderMap,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let model = named(&st, name, version)?;
    let Admitted {
        body: bytes,
        permit,
    } = admitted;
    let served = model.clone();
    let (timed, header_len) = st
        .work
        .blocking(permit, bytes.len(), move |_threads| {
            let t0 = Instant::now();
            let (json, binary) = v2_binary::split(&headers, &bytes)?;
            let req = decode(json, binary)?;
            req.trials.check(&served.model)?;
            let parse = t0.elapsed();
            let t1 = Instant::now();
            let with_scores = req.outputs.iter().any(|w| w.output == Output::Scores);
            let (labels, scores) = served
                .model
                .predict_raw_batch(req.trials.view(), with_scores)?;
            let infer = t1.elapsed();
            let m = &served;
            let mut tail = Vec::new();
            let mut outputs = Vec::with_capacity(req.outputs.len());
            for w in &req.outputs {
                let (shape, datatype, data) = match w.output {
                    Output::Labels => (
                        vec![labels.len()],
                        "BYTES",
                        OutputData::Bytes(
                            labels
                                .iter()
                                .map(|&c| m.model.classes[c].as_str())
                                .collect(),
                        ),
                    ),
                    Output::Scores => {
                        let scores = scores.as_ref().expect("scores were asked for");
                        (
                            vec![scores.nrows(), scores.ncols()],
                            "FP64",
                            OutputData::Fp64(scores.iter().copied().collect()),
                        )
                    }
                };
                let (data, parameters) = if w.binary {
                    let before = tail.len();
                    match data {
                        OutputData::Bytes(v) => v2_binary::bytes_tensor(v, &mut tail),
                        OutputData::Fp64(v) => v2_binary::fp64_tensor(v, &mut tail),
                    }
                    let binary_data_size = tail.len() - before;
                    (None, Some(OutputParameters { binary_data_size }))
                } else {
                    (Some(data), None)
                };
                outputs.push(OutputTensor {
                    name: w.output.name(),
                    shape,
                    datatype,
                    data,
                    parameters,
                });
            }
            let response = InferResponse {
                model_name: &m.name,
                model_version: &m.version,
                id: req.id,
                outputs,
            };
            let any_binary = req.outputs.iter().any(|w| w.binary);
            let mut timed = Timed::json(&response, parse, infer)?;
            let header_len = any_binary.then_some(timed.value.len());
            timed.value.extend_from_slice(&tail);
            Ok::<_, ApiError>((timed, header_len))
        })
        .await?;
    Ok(match header_len {
        None => json_answer(&st.metrics, timed, &model.version),
        Some(n) => binary_answer(&st.metrics, timed, n, &model.version),
    })
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
        let e = decode(
            &request("[100000000000, 22, 750]", "FP32", "[[[1, 2]]]"),
            &[],
        )
        .unwrap_err();
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
            let e = decode(&request(shape, "FP32", "[1]"), &[]).unwrap_err();
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
        let e = decode(&request("[1, 1, 3]", "FP32", "[1, 1e39, 2]"), &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .contains("trial 0 channel 0 sample 1 is `inf`: values must be finite"),
            "{}",
            e.message
        );
        assert!(decode(&request("[1, 1, 3]", "FP64", "[1, 1e39, 2]"), &[]).is_ok());
        let e = decode(&request("[1, 1, 1]", "FP64", "[1e400]"), &[]).unwrap_err();
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
            match quick("decode", || decode(&body, &[])) {
                Ok(d) => prop_assert_eq!(d.trials.data.len(), values),
                Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
            }
        }
    }

    /// A body of the binary extension: the JSON header, then `bytes`.
    fn binary_request(input: &str, extra: &str, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let json = format!(r#"{{"inputs": [{input}]{extra}}}"#).into_bytes();
        (json, bytes.to_vec())
    }

    fn f32_le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn binary_inputs_decode_to_the_values_json_gives() {
        let values = [0.25f32, -1.5, 3.0, 1e-7];
        let (json, bin) = binary_request(
            r#"{"name": "eeg", "shape": [2, 1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}}"#,
            "",
            &f32_le(&values),
        );
        let from_binary = decode(&json, &bin).unwrap();
        let from_json = decode(
            &request("[2, 1, 2]", "FP32", "[0.25, -1.5, 3.0, 1e-7]"),
            &[],
        )
        .unwrap();
        assert_eq!(from_binary.trials, from_json.trials);
        assert_eq!(from_binary.outputs, from_json.outputs);
    }

    #[test]
    fn inconsistent_binary_requests_name_the_value() {
        let eeg = |params: &str, data: &str| {
            format!(
                r#"{{"name": "eeg", "shape": [1, 1, 2], "datatype": "FP32"{data}, "parameters": {params}}}"#
            )
        };
        let two = f32_le(&[1.0, 2.0]);
        for (input, bytes, says) in [
            (
                eeg(r#"{"binary_data_size": 8}"#, r#", "data": [1, 2]"#),
                &two[..],
                "has both `data` and `binary_data_size` `8`",
            ),
            (
                eeg(r#"{"binary_data_size": -8}"#, ""),
                &two[..],
                "invalid value: integer `-8`",
            ),
            (
                eeg(r#"{"binary_data_size": 18446744073709551616}"#, ""),
                &two[..],
                "floating point `1.8446744073709552e+19`, expected u64",
            ),
            (eeg(r#"{"binary_data_size": 8.5}"#, ""), &two[..], "8.5"),
            (
                eeg(r#"{"binary_data_size": 12}"#, ""),
                &two[..],
                "`12` does not match shape `[1, 1, 2]`",
            ),
            (
                eeg(r#"{"binary_data_size": 8}"#, ""),
                &two[..4],
                "`8` but `4` bytes of binary data",
            ),
            (
                eeg(r#"{}"#, ""),
                &two[..],
                "neither `data` nor `parameters.binary_data_size`",
            ),
            (
                eeg(r#"{}"#, r#", "data": [1, 2]"#),
                &two[..],
                "`8` bytes of binary data follow the JSON header but no input",
            ),
        ] {
            let (json, bin) = binary_request(&input, "", bytes);
            let e = decode(&json, &bin).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{input}");
            assert!(e.message.contains(says), "{says}: {}", e.message);
        }
        // Binary data sent without the header: the JSON seems to go on.
        let (json, bin) = binary_request(&eeg(r#"{"binary_data_size": 8}"#, ""), "", &two);
        let e = decode(&[json, bin].concat(), &[]).unwrap_err();
        assert!(
            e.message.contains("trailing characters")
                && e.message
                    .contains("needs the `Inference-Header-Content-Length` header"),
            "{}",
            e.message
        );
        // NaN in binary data is refused like a non-finite JSON value.
        let (json, bin) = binary_request(
            &eeg(r#"{"binary_data_size": 8}"#, ""),
            "",
            &f32_le(&[1.0, f32::NAN]),
        );
        let e = decode(&json, &bin).unwrap_err();
        assert!(e.message.contains("sample 1 is `NaN`"), "{}", e.message);
    }

    #[test]
    fn requested_outputs_and_input_names_are_checked() {
        let input = r#"{"name": "eeg", "shape": [1, 1, 1], "datatype": "FP64", "data": [1]}"#;
        let outputs = |extra: &str| {
            let (json, _) = binary_request(input, extra, &[]);
            decode(&json, &[]).map(|d| d.outputs)
        };
        let all = |binary| {
            vec![
                Wanted {
                    output: Output::Labels,
                    binary,
                },
                Wanted {
                    output: Output::Scores,
                    binary,
                },
            ]
        };
        assert_eq!(outputs("").unwrap(), all(false));
        assert_eq!(
            outputs(r#", "parameters": {"binary_data_output": true}"#).unwrap(),
            all(true)
        );
        assert_eq!(
            outputs(r#", "outputs": [{"name": "scores", "parameters": {"binary_data": true}}], "parameters": {"binary_data_output": false}"#).unwrap(),
            vec![Wanted { output: Output::Scores, binary: true }]
        );
        assert_eq!(
            outputs(r#", "outputs": [{"name": "labels", "parameters": {"binary_data": false}}], "parameters": {"binary_data_output": true}"#).unwrap(),
            vec![Wanted { output: Output::Labels, binary: false }]
        );
        for (extra, says) in [
            (
                r#", "outputs": [{"name": "probabilities"}]"#,
                "unknown output `probabilities`; the model's outputs are `labels` and `scores`",
            ),
            (
                r#", "outputs": [{"name": "labels"}, {"name": "labels"}]"#,
                "output `labels` is requested twice",
            ),
        ] {
            let e = outputs(extra).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(says), "{}", e.message);
        }
        let e = decode(
            br#"{"inputs": [{"name": "input_0", "shape": [1, 1, 1], "datatype": "FP64", "data": [1]}]}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "unknown input `input_0`; the model's input is `eeg`"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any stated size, shape and amount of binary data: a bad request, or exactly the
        /// values sent; never a panic or an allocation beyond the bytes received.
        #[test]
        fn hostile_binary_sizes_are_bad_requests_or_match_the_bytes(
            dims in prop::collection::vec(hostile_size(), 0..5),
            size in prop_oneof![hostile_size(), Just(0u64), 0u64..64],
            datatype in prop::sample::select(vec!["FP32", "FP64", "BYTES"]),
            bytes in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let shape = format!("[{}]", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
            let input = format!(r#"{{"name": "eeg", "shape": {shape}, "datatype": "{datatype}", "parameters": {{"binary_data_size": {size}}}}}"#);
            let (json, bin) = binary_request(&input, "", &bytes);
            match quick("decode", || decode(&json, &bin)) {
                Ok(d) => {
                    let w = if datatype == "FP32" { 4 } else { 8 };
                    prop_assert_eq!(d.trials.data.len() * w, bytes.len());
                }
                Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
            }
        }
    }
}
