//! `bciops train` and `bciops predict` driven through the real binary.

mod common;

use std::path::{Path, PathBuf};

use common::bciops;

/// Synthetic recordings → epochs, shared by the tests in this file (built once per test).
fn dataset(dir: &Path, extra: &[&str]) -> PathBuf {
    common::synth_epochs(
        dir,
        "epochs",
        &["--trials-per-class", "24", "--runs", "2"],
        extra,
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_writes_a_verified_model_and_predict_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &[]);
    let model = tmp.path().join("model");
    let done = bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "cv:4",
        "--kernel",
        "linear",
        "--seed",
        "3",
        "--json",
    ])
    .success();
    let metrics: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    for name in [
        "MLmodel",
        "model.json",
        "metrics.json",
        "report.html",
        "checksums.sha256",
        "cv_predictions.csv",
    ] {
        assert!(model.join(name).is_file(), "{name}");
    }
    let on_disk = json(&model.join("metrics.json"));
    assert_eq!(on_disk["accuracy"], metrics["accuracy"]);
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.6, "subject 1 is separable: {accuracy}");
    assert_eq!(metrics["folds"].as_array().unwrap().len(), 4);
    assert!(metrics["kappa"].as_f64().unwrap() > 0.2);
    let mlmodel = std::fs::read_to_string(model.join("MLmodel")).unwrap();
    assert!(mlmodel.contains("bciops:"), "{mlmodel}");
    assert!(mlmodel.contains("[-1, 22, 750]"), "{mlmodel}");
    let m = json(&model.join("model.json"));
    assert_eq!(m["seed"], 3);
    assert_eq!(m["params"]["kernel"], "linear");
    assert_eq!(m["preprocessing"]["channels"].as_array().unwrap().len(), 22);
    assert_eq!(m["dataset"]["sha256"].as_str().unwrap().len(), 64);
    let report = std::fs::read_to_string(model.join("report.html")).unwrap();
    assert!(report.contains("Confusion matrix") && report.contains("CSP spatial patterns"));
    assert!(
        report.contains("<title>EEG-C3</title>"),
        "topomaps place the 2a electrodes"
    );

    // The same seed gives the same model; the evaluation is deterministic.
    let again = tmp.path().join("again");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--eval",
        "cv:4",
        "--kernel",
        "linear",
        "--seed",
        "3",
    ])
    .success();
    assert_eq!(
        json(&again.join("metrics.json"))["accuracy"],
        metrics["accuracy"]
    );
    assert_eq!(json(&again.join("model.json"))["fitted"], m["fitted"]);

    // predict on the dataset: labels, decision values, accuracy on training data.
    let out = tmp.path().join("pred.json");
    bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
        "--decision",
        "--out",
        out.to_str().unwrap(),
    ])
    .success();
    let p = json(&out);
    let n = p["n"].as_u64().unwrap() as usize;
    assert_eq!(p["labels"].as_array().unwrap().len(), n);
    assert_eq!(p["decision"].as_array().unwrap().len(), n);
    assert!(
        p["accuracy"].as_f64().unwrap() >= accuracy - 0.05,
        "training accuracy is not below CV accuracy"
    );

    // predict on raw recordings applies the model's own preprocessing: same trials, same answers.
    let raw = tmp.path().join("raw");
    let from_raw = bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        raw.to_str().unwrap(),
        "--json",
    ])
    .success();
    let q: serde_json::Value = serde_json::from_str(&from_raw.stdout).unwrap();
    assert_eq!(q["labels"], p["labels"]);
    assert_eq!(q["accuracy"], p["accuracy"]);
}

#[test]
fn tampered_or_mismatched_models_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &["--sessions", "T"]);
    let model = tmp.path().join("model");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "holdout:0.25",
        "--no-report",
    ])
    .success();
    assert!(!model.join("report.html").exists());

    // Data cut with another window does not fit the model.
    let short = tmp.path().join("short");
    bciops([
        "preprocess",
        "--input",
        tmp.path().join("raw").to_str().unwrap(),
        "--out",
        short.to_str().unwrap(),
        "--window",
        "0,2",
    ])
    .success();
    bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        short.to_str().unwrap(),
    ])
    .fails(2, "500 samples");

    // A probability request on a model trained without it.
    bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
        "--proba",
    ])
    .fails(2, "--probability");

    // One changed byte in model.json is caught by the checksum.
    let path = model.join("model.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\"seed\": 42", "\"seed\": 43", 1);
    std::fs::write(&path, text).unwrap();
    bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
    ])
    .fails(2, "checksum mismatch");
    bciops([
        "predict",
        "--model",
        tmp.path().to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
    ])
    .fails(2, "not a bciops model");
}

#[test]
fn bad_training_requests_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &["--sessions", "T"]);
    let d = epochs.to_str().unwrap();
    let o = tmp.path().join("m");
    let o = o.to_str().unwrap();
    bciops(["train", "--data", d, "--out", o, "--kernel", "cubic"]).fails(2, "`cubic`");
    bciops(["train", "--data", d, "--out", o, "--n-components", "40"]).fails(2, "`40`");
    bciops(["train", "--data", d, "--out", o, "--c", "-1"]).fails(2, "-1");
    bciops(["train", "--data", d, "--out", o, "--gamma", "fast"]).fails(2, "`fast`");
    bciops(["train", "--data", d, "--out", o, "--eval", "cv:100"])
        .fails(2, "fewer than the 100 folds");
    bciops(["train", "--data", d, "--out", o, "--eval", "session"]).fails(2, "0 E");
    bciops(["train", "--data", d, "--out", o, "--shrinkage", "2"]).fails(2, "`2`");
    let params = tmp.path().join("p.json");
    std::fs::write(
        &params,
        r#"{"params": {"kernel": "linear", "colour": "red"}}"#,
    )
    .unwrap();
    bciops([
        "train",
        "--data",
        d,
        "--out",
        o,
        "--params",
        params.to_str().unwrap(),
    ])
    .fails(2, "colour");
    assert!(!Path::new(o).exists(), "no model is left after a failure");

    // A dataset with a single class.
    let one = tmp.path().join("one");
    bciops([
        "preprocess",
        "--input",
        tmp.path().join("raw").to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
        "--sessions",
        "T",
        "--classes",
        "left",
    ])
    .success();
    bciops(["train", "--data", one.to_str().unwrap(), "--out", o]).fails(2, "class");

    // NaN in X.npy.
    let nan = tmp.path().join("nan");
    copy_dir(&epochs, &nan);
    let mut x: ndarray::Array3<f32> = ndarray_npy::read_npy(nan.join("X.npy")).unwrap();
    x[[5, 3, 100]] = f32::NAN;
    ndarray_npy::write_npy(nan.join("X.npy"), &x).unwrap();
    bciops(["train", "--data", nan.to_str().unwrap(), "--out", o]).fails(2, "trial 5");
}

#[test]
fn params_file_is_read_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &["--sessions", "T"]);
    let params = tmp.path().join("best.json");
    std::fs::write(
        &params,
        r#"{"params": {"kernel": "poly", "degree": 2, "n_components": 6, "shrinkage": "auto"}}"#,
    )
    .unwrap();
    let model = tmp.path().join("m");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
        "--n-components",
        "8",
        "--no-report",
    ])
    .success();
    let m = json(&model.join("model.json"));
    assert_eq!(m["params"]["kernel"], "poly");
    assert_eq!(m["params"]["degree"], 2);
    assert_eq!(
        m["params"]["n_components"], 8,
        "the flag wins over the file"
    );
    assert_eq!(m["params"]["shrinkage"], "auto");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn session_protocol_and_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &[]);
    let model = tmp.path().join("m");
    let done = bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "session",
        "--probability",
        "--standardize",
        "--json",
    ])
    .success();
    let metrics: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(metrics["evaluation"], "session");
    let folds = metrics["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 1);
    // Fitted on the T trials, tested on the E trials only.
    let csv = std::fs::read_to_string(epochs.join("trials.csv")).unwrap();
    let e_trials = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("E"))
        .count();
    assert_eq!(folds[0]["n_test"].as_u64().unwrap() as usize, e_trials);
    assert_eq!(
        json(&model.join("model.json"))["dataset"]["n_trials"]
            .as_u64()
            .unwrap() as usize,
        csv.lines().count() - 1
    );

    let done = bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
        "--proba",
        "--json",
    ])
    .success();
    let p: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    let rows = p["probabilities"].as_array().unwrap();
    assert_eq!(rows.len(), p["n"].as_u64().unwrap() as usize);
    for row in rows {
        let row: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(row.len(), 2);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{row:?}");
        assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn sigmoid_kernel_trains_and_predicts() {
    // libsvm's sigmoid kernel tanh(gamma x·y + coef0), as scikit-learn's SVC(kernel="sigmoid").
    let tmp = tempfile::tempdir().unwrap();
    let epochs = dataset(tmp.path(), &["--sessions", "T"]);
    let model = tmp.path().join("model");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "cv:3",
        "--kernel",
        "sigmoid",
        "--gamma",
        "0.05",
        // `=`: a bare `-0.5` would read as a flag.
        "--coef0=-0.5",
    ])
    .success();
    let m = json(&model.join("model.json"));
    assert_eq!(m["params"]["kernel"], "sigmoid");
    assert_eq!(m["params"]["coef0"], -0.5);
    let out = tmp.path().join("pred.json");
    bciops([
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .success();
    let p = json(&out);
    assert_eq!(
        p["labels"].as_array().unwrap().len() as u64,
        p["n"].as_u64().unwrap()
    );
}
