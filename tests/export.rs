//! `bciops export --format onnx` and the model directory's `model.onnx` (issue 20), checked
//! with the real runtimes: onnxruntime and `onnx.checker` in the test venv, `bciops serve`
//! for what the graph must give, and MLflow's own `mlflow.pyfunc` against a real server.

mod common;
mod tracking_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::serve::Server;
use common::{bciops, python, run_python};
use ndarray::Array3;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Synthetic subject 1 with `classes` classes, preprocessed (`preprocess` also given
/// `preprocess_args`), in `dir/out`; `seed` makes the training and the test trials differ.
fn epochs(
    dir: &Path,
    seed: &str,
    per_class: &str,
    classes: &str,
    preprocess_args: &[&str],
) -> PathBuf {
    let raw = dir.join(format!("raw-{seed}"));
    let out = dir.join(format!("epochs-{seed}"));
    bciops([
        "synth",
        "--out",
        s(&raw),
        "--subjects",
        "1",
        "--trials-per-class",
        per_class,
        "--runs",
        "1",
        "--seed",
        seed,
    ])
    .success();
    let mut args = vec![
        "preprocess",
        "--input",
        s(&raw),
        "--out",
        s(&out),
        "--classes",
        classes,
    ];
    args.extend_from_slice(preprocess_args);
    bciops(args).success();
    out
}

fn train(data: &Path, out: &Path, args: &[&str]) {
    let mut all = vec![
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--eval",
        "cv:2",
    ];
    all.extend_from_slice(args);
    bciops(all).success();
}

/// What `bciops serve` answers on `/v2/models/m/infer` for the trials of `x`: labels and
/// decision values (trials × K).
fn served(model: &Path, x: &Array3<f32>) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args([
        "serve",
        "--model",
        s(model),
        "--addr",
        "127.0.0.1:0",
        "--name",
        "m",
        "--max-body-bytes",
        "134217728",
    ]);
    let mut server = Server::spawn(cmd);
    let (n, c, t) = x.dim();
    let request = json!({"inputs": [{"name": "eeg", "shape": [n, c, t], "datatype": "FP32",
        "data": x.iter().copied().collect::<Vec<f32>>()}]});
    let (code, out) = server.post_json("/v2/models/m/infer", &request);
    assert_eq!(code, 200, "{out}");
    server.stop();
    let labels = out["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let k = out["outputs"][1]["shape"][1].as_u64().unwrap() as usize;
    let flat: Vec<f64> = out["outputs"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    (labels, flat.chunks(k).map(<[f64]>::to_vec).collect())
}

/// onnx.checker (full check) and strict shape inference on `model`, then onnxruntime on the
/// trials in `x_npy`: `{labels, scores, inputs, outputs}`.
const ORT: &str = r#"
import sys, json, numpy as np, onnx, onnxruntime as ort
path, x = sys.argv[1:3]
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
labels, scores = sess.run(["labels", "scores"], {"eeg": np.load(x)})
print(json.dumps({"labels": labels.tolist(), "scores": scores.tolist(),
  "inputs": [[i.name, i.type, i.shape] for i in sess.get_inputs()],
  "outputs": [[o.name, o.type, o.shape] for o in sess.get_outputs()]}))
"#;

/// Trains a model on one synthetic set, exports it, and checks onnxruntime's answers on
/// another set's trials against `bciops serve`'s.
fn onnx_matches_serve(case: &str, classes: &str, preprocess: &[&str], train_args: &[&str]) {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let train_set = epochs(tmp.path(), "42", "12", classes, preprocess);
    let test_set = epochs(tmp.path(), "7", "8", classes, preprocess);
    let model = tmp.path().join("model");
    train(&train_set, &model, train_args);
    let onnx = tmp.path().join("exported.onnx");
    bciops([
        "export",
        "--model",
        s(&model),
        "--format",
        "onnx",
        "--out",
        s(&onnx),
    ])
    .success();
    let x_path = test_set.join("X.npy");
    let x: Array3<f32> = ndarray_npy::read_npy(&x_path).unwrap();
    let (want_labels, want_scores) = served(&model, &x);
    let got: Value = serde_json::from_str(&run_python(&py, ORT, &[&onnx, &x_path])).unwrap();
    assert_eq!(
        got["inputs"],
        json!([["eeg", "tensor(float)", ["batch", x.dim().1, x.dim().2]]]),
        "{case}"
    );
    let distinct: std::collections::BTreeSet<&String> = want_labels.iter().collect();
    assert!(
        distinct.len() >= 2,
        "{case}: serve gave one class only, a weak check: {want_labels:?}"
    );
    let got_labels: Vec<String> = serde_json::from_value(got["labels"].clone()).unwrap();
    assert_eq!(got_labels, want_labels, "{case}: labels of every trial");
    let got_scores: Vec<Vec<f64>> = serde_json::from_value(got["scores"].clone()).unwrap();
    assert_eq!(got_scores.len(), want_scores.len(), "{case}");
    let mut worst = 0.0_f64;
    for (g, w) in got_scores.iter().zip(&want_scores) {
        assert_eq!(g.len(), w.len(), "{case}: scores per trial");
        for (a, b) in g.iter().zip(w) {
            let rel = (a - b).abs() / b.abs().max(1e-12);
            worst = worst.max(rel);
            // The issue's tolerance: decision values within 1e-4 relative of serve's
            // (onnxruntime 1.30 in float64 against bciops' own float64 path).
            assert!(rel <= 1e-4, "{case}: score {a} against serve's {b}");
        }
    }
    eprintln!(
        "{case}: {} trials, labels identical, largest relative score difference {worst:.2e}",
        want_labels.len()
    );
}

#[test]
fn onnx_gives_what_serve_gives_two_classes_rbf() {
    onnx_matches_serve("2 classes, rbf", "left,right", &[], &[]);
}

#[test]
fn onnx_gives_what_serve_gives_two_classes_linear_causal_filter() {
    onnx_matches_serve(
        "2 classes, linear, causal per-trial filter",
        "left,right",
        &["--causal", "--filter-per-trial"],
        &["--kernel", "linear", "--standardize"],
    );
}

#[test]
fn onnx_gives_what_serve_gives_four_classes_one_vs_one() {
    onnx_matches_serve(
        "4 classes, ovo, rbf, standardised",
        "left,right,feet,tongue",
        &[],
        &["--standardize"],
    );
}

#[test]
fn onnx_gives_what_serve_gives_four_classes_one_vs_rest_poly_power() {
    onnx_matches_serve(
        "4 classes, ovr, poly, plain power",
        "left,right,feet,tongue",
        &[],
        &[
            "--multiclass",
            "ovr",
            "--kernel",
            "poly",
            "--no-log",
            "--c",
            "10",
        ],
    );
}

#[test]
fn onnx_gives_what_serve_gives_four_classes_sigmoid() {
    onnx_matches_serve(
        "4 classes, ovo, sigmoid, standardised",
        "left,right,feet,tongue",
        &[],
        &["--kernel", "sigmoid", "--standardize", "--gamma", "0.05"],
    );
}

#[test]
fn onnx_gives_what_serve_gives_csp_lda_two_classes() {
    onnx_matches_serve(
        "csp+lda, 2 classes",
        "left,right",
        &[],
        &["--pipeline", "csp+lda"],
    );
}

#[test]
fn onnx_gives_what_serve_gives_csp_lr_four_classes_standardised() {
    onnx_matches_serve(
        "csp+lr, 4 classes, standardised",
        "left,right,feet,tongue",
        &[],
        &["--pipeline", "csp+lr", "--standardize"],
    );
}

#[test]
fn families_export_cannot_write_are_refused_by_name_and_train_leaves_out_model_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let data = epochs(tmp.path(), "42", "12", "left,right", &[]);
    let model = tmp.path().join("model");
    train(&data, &model, &["--pipeline", "ts+lr"]);
    assert!(
        !model.join("model.onnx").exists(),
        "a family the exporter cannot write gets no model.onnx"
    );
    let mlmodel = std::fs::read_to_string(model.join("MLmodel")).unwrap();
    assert!(!mlmodel.contains("python_function"), "{mlmodel}");
    let out = tmp.path().join("m.onnx");
    bciops([
        "export",
        "--model",
        s(&model),
        "--format",
        "onnx",
        "--out",
        s(&out),
    ])
    .fails(2, "a `ts+lr` model cannot be exported to ONNX");
    assert!(!out.exists(), "nothing written");
}

/// The sha256 lines of a model directory's checksums, by file name.
fn listed(model: &Path) -> Vec<String> {
    std::fs::read_to_string(model.join("checksums.sha256"))
        .unwrap()
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_owned())
        .collect()
}

#[test]
fn the_model_directory_carries_its_onnx_and_old_ones_still_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (epochs, model) = common::small_model(tmp.path());
    let names = listed(&model);
    for f in [
        "model.onnx",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    ] {
        assert!(
            names.iter().any(|n| n == f),
            "checksums list {f}: {names:?}"
        );
    }
    let stored = std::fs::read(model.join("model.onnx")).unwrap();
    let out = tmp.path().join("a.onnx");
    bciops([
        "export",
        "--model",
        s(&model),
        "--format",
        "onnx",
        "--out",
        s(&out),
    ])
    .success();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        stored,
        "export is deterministic"
    );

    let mlmodel: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(model.join("MLmodel")).unwrap()).unwrap();
    assert_eq!(
        mlmodel["flavors"]["python_function"]["loader_module"],
        "mlflow.onnx"
    );
    assert_eq!(mlmodel["flavors"]["onnx"]["data"], "model.onnx");
    assert_eq!(mlmodel["flavors"]["bciops"]["model_file"], "model.json");
    assert_eq!(mlmodel["model_uuid"].as_str().unwrap().len(), 32);
    let reqs = std::fs::read_to_string(model.join("requirements.txt")).unwrap();
    assert!(
        reqs.contains("onnxruntime==") && reqs.contains("onnx=="),
        "{reqs}"
    );

    // A model directory from before model.onnx: those files gone and unlisted.
    let old = tmp.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let drop = [
        "model.onnx",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    ];
    let mut sums = String::new();
    for line in std::fs::read_to_string(model.join("checksums.sha256"))
        .unwrap()
        .lines()
    {
        let name = line.split_once("  ").unwrap().1;
        if !drop.contains(&name) {
            std::fs::copy(model.join(name), old.join(name)).unwrap();
            sums.push_str(line);
            sums.push('\n');
        }
    }
    std::fs::write(old.join("checksums.sha256"), sums).unwrap();
    bciops(["predict", "--model", s(&old), "--data", s(&epochs)]).success();
    let from_old = tmp.path().join("old.onnx");
    bciops([
        "export",
        "--model",
        s(&old),
        "--format",
        "onnx",
        "--out",
        s(&from_old),
    ])
    .success();
    assert_eq!(std::fs::read(&from_old).unwrap(), stored);
}

/// Files in `dir` other than those named: what a failed export must not leave.
fn strays(dir: &Path, expected: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}

#[test]
fn export_refuses_bad_input_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, model) = common::small_model(tmp.path());
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("m.onnx");
    let export = |model: &str, format: &str, out: &Path| {
        bciops([
            "export",
            "--model",
            model,
            "--format",
            format,
            "--out",
            s(out),
        ])
    };

    let done = export(s(&model), "tflite", &out).fails(2, "tflite");
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    export(s(&model), "onnx", &out).success();
    let first = std::fs::read(&out).unwrap();
    export(s(&model), "onnx", &out).fails(2, "exists");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        first,
        "an existing output is never replaced"
    );

    let other = out_dir.join("n.onnx");
    export(s(&tmp.path().join("nosuch")), "onnx", &other).fails(2, "nosuch");
    // A model that fails verification: one byte of model.json changed.
    let bad = tmp.path().join("tampered");
    std::fs::create_dir(&bad).unwrap();
    for e in std::fs::read_dir(&model).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(bad.join("model.json")).unwrap();
    std::fs::write(
        bad.join("model.json"),
        text.replacen("\"seed\": 42", "\"seed\": 43", 1),
    )
    .unwrap();
    let done = export(s(&bad), "onnx", &other).fails(2, "checksum mismatch");
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    bciops([
        "export",
        "--model",
        s(&model),
        "--format",
        "onnx",
        "--out",
        s(&other),
        "--registry-uri",
        s(tmp.path()),
    ])
    .fails(2, "--registry-uri");
    let registry = tmp.path().join("store");
    bciops([
        "export",
        "--model",
        "models:/nosuch@champion",
        "--format",
        "onnx",
        "--out",
        s(&other),
        "--registry-uri",
        s(&registry),
    ])
    .fails(2, "nosuch");
    assert_eq!(
        strays(&out_dir, &["m.onnx"]),
        Vec::<String>::new(),
        "nothing half-written"
    );
}

#[test]
fn export_follows_a_registry_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, model) = common::small_model(tmp.path());
    let registry = tmp.path().join("store");
    bciops([
        "compare-register",
        "--model",
        s(&model),
        "--name",
        "bci",
        "--registry-uri",
        s(&registry),
    ])
    .success();
    for reference in ["models:/bci@champion", "models:/bci/1"] {
        let out = tmp
            .path()
            .join(format!("{}.onnx", reference.replace(['/', ':', '@'], "_")));
        bciops([
            "export",
            "--model",
            reference,
            "--format",
            "onnx",
            "--out",
            s(&out),
            "--registry-uri",
            s(&registry),
        ])
        .success();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(model.join("model.onnx")).unwrap(),
            "{reference}"
        );
    }
}

#[test]
fn mlflow_loads_the_champion_with_pyfunc_and_sees_the_logged_model() {
    use tracking_support::{bciops_in, mlflow, mlflow_python, ok, unique};
    let Some((uri, mlflow_py)) = mlflow() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let train_set = epochs(tmp.path(), "42", "12", "left,right,feet,tongue", &[]);
    let test_set = epochs(tmp.path(), "7", "6", "left,right,feet,tongue", &[]);
    let env = [
        ("MLFLOW_TRACKING_URI", uri.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", "bciops-export-tests"),
    ];
    let dir = tmp.path();
    ok(bciops_in(
        dir,
        &[
            "train",
            "--data",
            s(&train_set),
            "--out",
            "m",
            "--eval",
            "cv:2",
            "--run-id-out",
            "rid",
        ],
        &env,
    ));
    let rid = std::fs::read_to_string(dir.join("rid"))
        .unwrap()
        .trim()
        .to_owned();
    let mlmodel = std::fs::read_to_string(dir.join("m/MLmodel")).unwrap();
    assert!(mlmodel.contains(&format!("run_id: '{rid}'")), "{mlmodel}");
    let name = unique("onnx");
    ok(bciops_in(
        dir,
        &[
            "compare-register",
            "--model",
            "m",
            "--name",
            &name,
            "--run-id",
            &rid,
        ],
        &env,
    ));
    let x_path = test_set.join("X.npy");
    let x: Array3<f32> = ndarray_npy::read_npy(&x_path).unwrap();
    let (want_labels, _) = served(&dir.join("m"), &x);
    // MLflow's own loader, from the registry by alias, in the MLflow venv.
    let out = mlflow_python(
        &mlflow_py,
        &uri,
        r#"
import sys, json, numpy as np, mlflow
name, x, rid = sys.argv[1:4]
model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
out = model.predict(np.load(x))
run = mlflow.get_run(rid)
logged = [m for m in mlflow.search_logged_models(experiment_ids=[run.info.experiment_id],
          output_format="list") if m.source_run_id == rid]
print(json.dumps({"labels": out["labels"].tolist(), "scores_shape": list(out["scores"].shape),
  "logged": [{"id": m.model_id, "status": str(m.status), "metrics": {k.key: k.value for k in m.metrics}}
             for m in logged],
  "outputs": [o.model_id for o in run.outputs.model_outputs]}))
"#,
        &[&name, s(&x_path), &rid],
    );
    let got: Value = serde_json::from_str(&out).unwrap();
    let got_labels: Vec<String> = serde_json::from_value(got["labels"].clone()).unwrap();
    assert_eq!(
        got_labels, want_labels,
        "pyfunc labels against bciops serve's"
    );
    assert_eq!(got["scores_shape"], json!([x.dim().0, 4]));
    // The MLflow 3 way: one logged model of the train run, ready, holding its metrics.
    let logged = got["logged"].as_array().unwrap();
    assert_eq!(logged.len(), 1, "{got}");
    assert_eq!(logged[0]["status"], "READY");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(logged[0]["metrics"]["accuracy"], metrics["accuracy"]);
    assert_eq!(got["outputs"], json!([logged[0]["id"]]));
}
