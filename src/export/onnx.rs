//! The served pipeline as one ONNX graph: a raw trial in, its label and decision values out,
//! exactly what `bciops serve` computes (`ModelFile::predict_raw_batch`).
//!
//! ```text
//! eeg  float32 [batch, channels, samples]   raw µV, the model's channels and window
//!  │ Cast → float64                          all arithmetic in float64, as bciops does
//!  │ band-pass        MatMul by H            samples × samples, see `band_pass`
//!  │ spatial filters  MatMul by W            CSP filters, features × channels
//!  │ power            Mul, ReduceMean, Log   log of the mean square along time
//!  │ scaler           Sub, Div               when the model standardises
//!  │ head             kernel, machines, vote SVM as scikit-learn's SVC
//!  ├─► labels  string  [batch]               the model's class names
//!  └─► scores  float64 [batch, K]            decision values, as `/v2/…/infer` gives them
//! ```
//!
//! Every stage is one function adding its nodes to a [`Graph`]; another feature extractor or
//! head is one more function. Only standard `ai.onnx` operators (opset 17) are used, all in
//! float64: the `ai.onnx.ml` `SVMClassifier` holds its coefficients as float32 and rounds the
//! decision values to float32, which can flip the label of a trial near the boundary; the
//! kernel written out in float64 agrees with bciops to rounding.

mod graph;
pub mod proto;

use prost::Message;

use crate::dataset::FilterMeta;
use crate::error::{Error, Result};
use crate::model::artifact::ModelFile;
use crate::model::csp::Csp;
use crate::model::family::{CspHead, CspStages};
use crate::model::linear::Linear;
use crate::model::scaler::StandardScaler;
use crate::model::svm::{FittedKernel, Multiclass, SvmModel};
use crate::signal::filter;
use graph::{int, ints, Dim, Graph};
use proto::{elem, ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// The graph's input: raw trials.
pub const INPUT: &str = "eeg";
/// The graph's outputs: class names, and decision values.
pub const LABELS: &str = "labels";
pub const SCORES: &str = "scores";
/// ONNX IR version and the default domain's opset: ONNX 1.12 (2022), run by onnxruntime 1.12
/// and later.
pub const IR_VERSION: i64 = 8;
pub const OPSET: i64 = 17;
/// Longest window exported: the band-pass becomes a samples × samples float64 matrix, 128 MiB
/// at this length (750 samples: 4.5 MB), and a protobuf message must stay under 2 GiB.
pub const MAX_SAMPLES: usize = 4096;

/// The ONNX model of `model`, serialized. Deterministic: the same model gives the same bytes.
pub fn to_bytes(model: &ModelFile) -> Result<Vec<u8>> {
    Ok(to_proto(model)?.encode_to_vec())
}

/// The ONNX model of `model`.
pub fn to_proto(model: &ModelFile) -> Result<ModelProto> {
    let (channels, samples) = model.trial_shape();
    let stages = csp_stages(model)?;
    let names = class_names(&stages, model)?;
    let mut g = Graph::default();
    let batch = Dim::Named("batch");
    let eeg = g.input(
        INPUT,
        elem::FLOAT,
        &[batch.clone(), Dim::Fixed(channels), Dim::Fixed(samples)],
    );
    let x = g.op("Cast", &[&eeg], vec![int("to", elem::DOUBLE.into())]);
    let x = band_pass(&mut g, &x, &model.preprocessing.filter, samples)?;
    let z = spatial_filter(&mut g, &x, stages.csp);
    let mut features = power(&mut g, &z, stages.csp.log());
    if let Some(scaler) = stages.scaler {
        features = standardise(&mut g, &features, scaler);
    }
    let head = match stages.head {
        CspHead::Svm(model) => svm(&mut g, &features, model),
        CspHead::Linear(map) => linear(&mut g, &features, map),
    };
    let table = g.strings("class_names", &names);
    let labels = g.op("Gather", &[&table, &head.class], vec![int("axis", 0)]);
    g.output(&labels, LABELS, elem::STRING, std::slice::from_ref(&batch));
    g.output(
        &head.scores,
        SCORES,
        elem::DOUBLE,
        &[batch, Dim::Fixed(head.n_scores)],
    );
    let doc = format!(
        "bciops {} model: raw EEG trials ({channels} channels × {samples} samples, µV, float32) \
         → `{LABELS}` (class names: {}) and `{SCORES}` (the head's decision values, as scikit-learn's \
         decision_function)",
        model.bciops_version,
        model.classes.join(", ")
    );
    let meta = |key: &str, value: String| StringStringEntryProto {
        key: key.to_owned(),
        value,
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "bciops".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 0,
        doc_string: doc.clone(),
        graph: Some(g.into_proto("bciops", &doc)),
        metadata_props: vec![
            meta(
                "classes",
                serde_json::to_string(&model.classes).map_err(|e| Error::encode("classes", e))?,
            ),
            meta(
                "channels",
                serde_json::to_string(&model.preprocessing.channels)
                    .map_err(|e| Error::encode("channels", e))?,
            ),
            meta("rate", model.preprocessing.rate.to_string()),
            meta("bciops_version", model.bciops_version.clone()),
        ],
    })
}

/// The CSP stages of `model`: the families the exporter writes today (`csp+svm`, `csp+lda`,
/// `csp+lr`). Others are refused (exit 2), which `train` takes as "no `model.onnx`".
fn csp_stages(model: &ModelFile) -> Result<CspStages<'_>> {
    model.fitted.csp_stages().ok_or_else(|| {
        Error::Invalid(format!(
            "a `{}` model cannot be exported to ONNX: export writes `csp+svm`, `csp+lda` and \
             `csp+lr` models",
            model.params.pipeline()
        ))
    })
}

/// The class name of each head class, in the head's order: the output table of `Gather`.
/// A linear head's classes are the model's, in order.
fn class_names(stages: &CspStages<'_>, model: &ModelFile) -> Result<Vec<String>> {
    let svm = match stages.head {
        CspHead::Svm(svm) => svm,
        CspHead::Linear(_) => return Ok(model.classes.clone()),
    };
    svm
        .classes
        .iter()
        .map(|&label| {
            usize::try_from(label)
                .ok()
                .and_then(|i| model.classes.get(i))
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the svm predicts class `{label}`, which the model's {} classes do not name",
                        model.classes.len()
                    ))
                })
        })
        .collect()
}

/// The band-pass as the matrix it is on a fixed-length window: zero-phase filtering
/// (`sosfiltfilt`, odd padding and steady-state initial conditions included) and causal
/// filtering are both linear in the samples, so filtering a trial `x` (a row of `samples`
/// values) gives `x · H`, where row `k` of `H` is the filter's answer to a unit impulse at
/// sample `k`. `H` is made by the same `filter_rows` that serves, run on the identity.
fn band_pass(g: &mut Graph, x: &str, meta: &FilterMeta, samples: usize) -> Result<String> {
    if samples > MAX_SAMPLES {
        return Err(Error::Invalid(format!(
            "a window of {samples} samples cannot be exported to ONNX: its band-pass would be a \
             {samples} × {samples} matrix (at most {MAX_SAMPLES} samples)"
        )));
    }
    let h = impulse_responses(meta, samples)?;
    let h = g.f64s(
        "band_pass",
        &[samples, samples],
        h.as_slice().expect("a fresh array is contiguous"),
    );
    Ok(g.op2("MatMul", x, &h))
}

/// Row `k`: the model's band-pass applied to a unit impulse at sample `k`.
pub fn impulse_responses(meta: &FilterMeta, samples: usize) -> Result<ndarray::Array2<f64>> {
    let mut h = ndarray::Array2::<f64>::eye(samples);
    filter::filter_rows(&meta.sos, meta.mode, &mut h)?;
    Ok(h)
}

/// CSP's spatial filters: `W · x` for each trial, features × samples.
fn spatial_filter(g: &mut Graph, x: &str, csp: &Csp) -> String {
    let w = csp.filters();
    let w = g.f64s(
        "spatial_filters",
        &[w.nrows(), w.ncols()],
        &w.iter().copied().collect::<Vec<_>>(),
    );
    g.op2("MatMul", &w, x)
}

/// The mean power of each filter's output along time, logged when the model logs
/// (`mean_t((w·x_t)²)`, as `Csp::transform`).
fn power(g: &mut Graph, z: &str, log: bool) -> String {
    let squared = g.op2("Mul", z, z);
    let mean = g.op(
        "ReduceMean",
        &[&squared],
        vec![ints("axes", &[2]), int("keepdims", 0)],
    );
    if log {
        g.op("Log", &[&mean], Vec::new())
    } else {
        mean
    }
}

/// `(f - mean) / scale`, as scikit-learn's `StandardScaler`.
fn standardise(g: &mut Graph, f: &str, scaler: &StandardScaler) -> String {
    let n = scaler.n_features();
    let mean = g.f64s("scaler_mean", &[n], &scaler.mean.to_vec());
    let scale = g.f64s("scaler_scale", &[n], &scaler.scale.to_vec());
    let centred = g.op2("Sub", f, &mean);
    g.op2("Div", &centred, &scale)
}

/// What a head gives: the class index of each trial (int64 `[batch]`, into the head's class
/// order) and its scores (float64 `[batch, n_scores]`).
struct Head {
    class: String,
    scores: String,
    n_scores: usize,
}

/// scikit-learn's `SVC`: the kernel against every support vector, each binary machine's
/// value as one matrix product, then libsvm's vote (one-vs-one), the largest value
/// (one-vs-rest) or the sign (two classes); scores as `SvmModel::decision_function`.
fn svm(g: &mut Graph, f: &str, svm: &SvmModel) -> Head {
    let (n_sv, n_features) = svm.support_vectors.dim();
    let k = kernel(g, f, svm, n_sv, n_features);
    // Machine m's value: Σ_s dual_coef · K[s] + intercept, as a (support vectors × machines)
    // matrix with zeros where a machine does not use a support vector.
    let n_machines = svm.machines.len();
    let mut coef = vec![0.0; n_sv * n_machines];
    for (m, machine) in svm.machines.iter().enumerate() {
        for (&s, &a) in machine.support.iter().zip(&machine.dual_coef) {
            coef[s * n_machines + m] += a;
        }
    }
    let coef = g.f64s("dual_coef", &[n_sv, n_machines], &coef);
    let intercept: Vec<f64> = svm.machines.iter().map(|m| m.intercept).collect();
    let intercept = g.f64s("intercept", &[n_machines], &intercept);
    let product = g.op2("MatMul", &k, &coef);
    let raw = g.op2("Add", &product, &intercept);
    let n_classes = svm.classes.len();
    let zero = g.f64_scalar("zero", 0.0);
    if n_classes == 2 {
        // A value of exactly zero goes to classes[1] (see `SvmModel::winner`).
        let positive = g.op2("GreaterOrEqual", &raw, &zero);
        let index = g.op("Cast", &[&positive], vec![int("to", elem::INT64.into())]);
        let axes = g.i64s("axes", &[1]);
        let class = g.op2("Squeeze", &index, &axes);
        return Head {
            class,
            scores: raw,
            n_scores: 1,
        };
    }
    if svm.params.multiclass == Multiclass::Ovr {
        // The first largest value wins.
        let class = g.op(
            "ArgMax",
            &[&raw],
            vec![
                int("axis", 1),
                int("keepdims", 0),
                int("select_last_index", 0),
            ],
        );
        return Head {
            class,
            scores: raw,
            n_scores: n_classes,
        };
    }
    // One-vs-one. Machine m between classes i (positive) and j: `pairs[m, i] = 1`,
    // `pairs[m, j] = -1`; `base[j]` counts the machines whose negative class is j. A machine
    // votes i when its value passes the threshold, else j: votes = passed · pairs + base.
    let mut pairs = vec![0.0; n_machines * n_classes];
    let mut base = vec![0.0; n_classes];
    for (m, machine) in svm.machines.iter().enumerate() {
        let j = machine.negative.unwrap_or(machine.positive);
        pairs[m * n_classes + machine.positive] = 1.0;
        pairs[m * n_classes + j] = -1.0;
        base[j] += 1.0;
    }
    let pairs = g.f64s("pairs", &[n_machines, n_classes], &pairs);
    let base = g.f64s("votes_base", &[n_classes], &base);
    let votes = |g: &mut Graph, comparison: &str| {
        let passed = g.op2(comparison, &raw, &zero);
        let passed = g.op("Cast", &[&passed], vec![int("to", elem::DOUBLE.into())]);
        let counted = g.op2("MatMul", &passed, &pairs);
        g.op2("Add", &counted, &base)
    };
    // libsvm's vote: a value > 0 votes for the positive class; ties go to the lower class.
    let predicted = votes(g, "Greater");
    let class = g.op(
        "ArgMax",
        &[&predicted],
        vec![
            int("axis", 1),
            int("keepdims", 0),
            int("select_last_index", 0),
        ],
    );
    // scikit-learn's `_ovr_decision_function(dec < 0, -dec, k)`: votes (a value ≥ 0 votes
    // positive) plus the summed confidences squashed into (-1/3, 1/3).
    let counted = votes(g, "GreaterOrEqual");
    let confidence = g.op2("MatMul", &raw, &pairs);
    let magnitude = g.op("Abs", &[&confidence], Vec::new());
    let one = g.f64_scalar("one", 1.0);
    let three = g.f64_scalar("three", 3.0);
    let shifted = g.op2("Add", &magnitude, &one);
    let denominator = g.op2("Mul", &three, &shifted);
    let squashed = g.op2("Div", &confidence, &denominator);
    let scores = g.op2("Add", &counted, &squashed);
    Head {
        class,
        scores,
        n_scores: n_classes,
    }
}

/// A linear head (LDA, logistic regression): `scores = f · coefᵀ + intercept`, the class the
/// sign of the one score (two classes: a score of exactly zero is the first class, as
/// `linear::label`) or the first largest score.
fn linear(g: &mut Graph, f: &str, map: &Linear) -> Head {
    let (n_outputs, n_features) = map.coef.dim();
    let coef_t: Vec<f64> = map.coef.t().iter().copied().collect();
    let coef_t = g.f64s("linear_coef", &[n_features, n_outputs], &coef_t);
    let intercept = g.f64s("linear_intercept", &[n_outputs], &map.intercept.to_vec());
    let product = g.op2("MatMul", f, &coef_t);
    let scores = g.op2("Add", &product, &intercept);
    if n_outputs == 1 {
        let zero = g.f64_scalar("zero", 0.0);
        let positive = g.op2("Greater", &scores, &zero);
        let index = g.op("Cast", &[&positive], vec![int("to", elem::INT64.into())]);
        let axes = g.i64s("axes", &[1]);
        let class = g.op2("Squeeze", &index, &axes);
        return Head {
            class,
            scores,
            n_scores: 1,
        };
    }
    let class = g.op(
        "ArgMax",
        &[&scores],
        vec![
            int("axis", 1),
            int("keepdims", 0),
            int("select_last_index", 0),
        ],
    );
    Head {
        class,
        scores,
        n_scores: n_outputs,
    }
}

/// The kernel of each trial's features against every support vector: float64
/// `[batch, support vectors]`.
fn kernel(g: &mut Graph, f: &str, svm: &SvmModel, n_sv: usize, n_features: usize) -> String {
    let sv: Vec<f64> = svm.support_vectors.iter().copied().collect();
    // `gamma · (x · sv) + coef0`, the argument of the polynomial and sigmoid kernels.
    let affine = |g: &mut Graph, gamma: f64, coef0: f64| {
        let dot = dot_support_vectors(g, f, &sv, n_sv, n_features);
        let gamma = g.f64_scalar("gamma", gamma);
        let coef0 = g.f64_scalar("coef0", coef0);
        let scaled = g.op2("Mul", &gamma, &dot);
        g.op2("Add", &scaled, &coef0)
    };
    match svm.kernel {
        FittedKernel::Linear => dot_support_vectors(g, f, &sv, n_sv, n_features),
        FittedKernel::Rbf { gamma } => {
            // exp(-gamma |sv - x|²), the squared distance summed from differences (not
            // expanded into dot products, which loses digits when a trial is close to a
            // support vector).
            let sv = g.f64s("support_vectors", &[n_sv, n_features], &sv);
            let axis = g.i64s("axes", &[1]);
            let column = g.op2("Unsqueeze", f, &axis);
            let diff = g.op2("Sub", &column, &sv);
            let squared = g.op2("Mul", &diff, &diff);
            let last = g.i64s("axes", &[2]);
            let distance = g.op("ReduceSum", &[&squared, &last], vec![int("keepdims", 0)]);
            let minus_gamma = g.f64_scalar("minus_gamma", -gamma);
            let scaled = g.op2("Mul", &minus_gamma, &distance);
            g.op("Exp", &[&scaled], Vec::new())
        }
        FittedKernel::Poly {
            gamma,
            coef0,
            degree,
        } => {
            let base = affine(g, gamma, coef0);
            let degree = g.f64_scalar("degree", f64::from(degree));
            g.op2("Pow", &base, &degree)
        }
        FittedKernel::Sigmoid { gamma, coef0 } => {
            let inner = affine(g, gamma, coef0);
            g.op("Tanh", &[&inner], Vec::new())
        }
    }
}

/// `x · sv` for every support vector: `MatMul` by the transposed support vectors.
fn dot_support_vectors(
    g: &mut Graph,
    f: &str,
    sv: &[f64],
    n_sv: usize,
    n_features: usize,
) -> String {
    let mut transposed = vec![0.0; n_sv * n_features];
    for s in 0..n_sv {
        for d in 0..n_features {
            transposed[d * n_sv + s] = sv[s * n_features + d];
        }
    }
    let svt = g.f64s("support_vectors_t", &[n_features, n_sv], &transposed);
    g.op2("MatMul", f, &svt)
}

#[cfg(test)]
mod tests;
