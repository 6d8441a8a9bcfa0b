//! W&B: sweep files W&B's own validator accepts run in `bciops tune` (or are refused by name),
//! grids enumerate as W&B's grid search does, and `--wandb` runs read back with W&B's reader.
//!
//! The judges are W&B's packages in the test venv (`$BCIOPS_PYTHON`): `sweeps` 0.2.0 for
//! validity and grid order, `wandb` 0.29.0's `DataStore` + `wandb_internal_pb2.Record` and
//! `wandb sync --view` for the offline runs. Nothing is sent anywhere: `WANDB_MODE=offline`,
//! and W&B's base URL points at a closed loopback port.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bciops;
use serde_json::Value;

const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/wandb_support/wandb_peer.py"
);

/// W&B's code on `args`, its JSON answer.
fn peer(python: &Path, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(PEER)
        .args(args)
        .env("WANDB_MODE", "offline")
        .env("WANDB_BASE_URL", "http://127.0.0.1:9")
        .env("WANDB_SILENT", "true")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "wandb_peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from wandb_peer.py")
}

fn dataset(dir: &Path) -> PathBuf {
    common::synth_epochs(
        dir,
        "epochs",
        &["--trials-per-class", "12", "--runs", "2"],
        &[],
    )
}

/// `bciops tune` on `sweep` with W&B offline runs in `wandb_dir`.
fn tune(data: &Path, sweep: &Path, out: &Path, wandb_dir: &Path) -> common::Done {
    bciops([
        "tune",
        "--data",
        data.to_str().unwrap(),
        "--sweep",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--eval",
        "cv:2",
        "--max-trials",
        "8",
        "--jobs",
        "1",
        "--wandb",
    ])
    .env("WANDB_DIR", wandb_dir)
    .env("WANDB_MODE", "offline")
    .run()
}

/// What bciops must do with a sweep file.
enum Expect {
    /// Runs (exit 0).
    Runs,
    /// Runs with a `note:` line holding the text (a deprecated form and its replacement).
    RunsWithNote(&'static str),
    /// Refused with exit 2 and one stderr line holding the text (the construct's name).
    Refused(&'static str),
}

/// Sweep files W&B's validator accepts (except the deprecated forms, which it refuses and
/// bciops runs with a note), each with what bciops does with it.
const TABLE: &[(&str, &str, Expect)] = &[
    (
        "nested groups in a grid",
        "method: grid\nparameters:\n  svm:\n    parameters:\n      C: {values: [0.5, 1.0]}\n      kernel: {value: linear}\n  csp: {parameters: {n_components: {values: [2, 4]}}}\n",
        Expect::Runs,
    ),
    (
        "groups ordered by their own names",
        "method: grid\nparameters:\n  k-x: {parameters: {C: {values: [0.5, 1.0]}}}\n  k: {parameters: {kernel: {values: [linear, rbf]}}}\n",
        Expect::Runs,
    ),
    (
        "grid over int_uniform",
        "method: grid\nparameters:\n  n_components: {min: 2, max: 5}\n  kernel: {value: linear}\n",
        Expect::Runs,
    ),
    (
        "grid over integer q_uniform",
        "method: grid\nparameters:\n  n_components: {distribution: q_uniform, min: 2, max: 7, q: 2}\n",
        Expect::Runs,
    ),
    (
        "grid over float q_uniform",
        "method: grid\nparameters:\n  C: {distribution: q_uniform, min: 0.1, max: 0.4, q: 0.1}\n  kernel: {value: linear}\n",
        Expect::Runs,
    ),
    (
        "grid over q_uniform with the default q",
        "method: grid\nparameters:\n  n_components: {distribution: q_uniform, min: 2, max: 5}\n",
        Expect::Runs,
    ),
    (
        "W&B's controller keys and impute: worst",
        "apiVersion: v1\nkind: sweep\ncontroller: {type: local}\nmethod: random\nmetric: {name: accuracy, goal: maximize, impute: worst}\nparameters:\n  C: {distribution: q_log_uniform_values, min: 0.1, max: 10, q: 0.1}\n",
        Expect::Runs,
    ),
    (
        "categorical_w_probabilities",
        "method: random\nparameters:\n  kernel: {distribution: categorical_w_probabilities, values: [linear, rbf], probabilities: [0.5, 0.5]}\n",
        Expect::Runs,
    ),
    (
        "bayes over nested parameters",
        "method: bayes\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  svm: {parameters: {C: {distribution: log_uniform_values, min: 0.1, max: 10}}}\n",
        Expect::Runs,
    ),
    (
        "deprecated log_uniform",
        "method: random\nparameters:\n  C: {distribution: log_uniform, min: -1, max: 1}\n",
        Expect::RunsWithNote("`log_uniform_values`"),
    ),
    (
        "deprecated inv_log_uniform",
        "method: random\nparameters:\n  C: {distribution: inv_log_uniform, min: -1, max: 1}\n",
        Expect::RunsWithNote("`inv_log_uniform_values`"),
    ),
    (
        "probabilities in a grid",
        "method: grid\nparameters:\n  kernel: {values: [linear, rbf], probabilities: [0.5, 0.5]}\n",
        Expect::Refused("`probabilities` cannot be searched by grid"),
    ),
    (
        "q_log_uniform_values in a grid",
        "method: grid\nparameters:\n  C: {distribution: q_log_uniform_values, min: 0.1, max: 1, q: 0.1}\n",
        Expect::Refused("`q_log_uniform_values` cannot be searched by grid"),
    ),
    (
        "method custom",
        "method: custom\nparameters:\n  C: {values: [1.0]}\n",
        Expect::Refused("`custom`"),
    ),
    (
        "beta distribution",
        "method: random\nparameters:\n  C: {distribution: beta, a: 2, b: 2}\n",
        Expect::Refused("distribution `beta`"),
    ),
    (
        "impute: best",
        "method: bayes\nmetric: {name: accuracy, impute: best}\nparameters:\n  C: {min: 0.1, max: 1.0}\n",
        Expect::Refused("metric.impute: `best`"),
    ),
    (
        "hyperband with a fractional eta",
        "method: random\nearly_terminate: {type: hyperband, min_iter: 1, eta: 2.5}\nparameters:\n  C: {min: 0.1, max: 1.0}\n",
        Expect::Refused("early_terminate.eta"),
    ),
    (
        "a parameter bciops does not know",
        "method: grid\nparameters:\n  learning_rate: {values: [0.1]}\n",
        Expect::Refused("unknown sweep parameter `learning_rate`"),
    ),
    (
        "a metric bciops does not report",
        "method: grid\nmetric: {name: val_loss}\nparameters:\n  C: {values: [1.0]}\n",
        Expect::Refused("metric `val_loss` does not exist"),
    ),
];

#[test]
fn sweep_files_w_and_b_accepts_run_or_are_refused_by_name_and_grids_match_w_and_b() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let files: Vec<PathBuf> = TABLE
        .iter()
        .enumerate()
        .map(|(i, (_, text, _))| {
            let p = dir.path().join(format!("sweep{i}.yaml"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let verdicts = peer(&python, &args);

    for (i, ((label, _, expect), file)) in TABLE.iter().zip(&files).enumerate() {
        let violations = verdicts[i].as_array().unwrap();
        let out = dir.path().join(format!("out{i}"));
        let wandb_dir = dir.path().join(format!("w{i}"));
        let done = tune(&data, file, &out, &wandb_dir);
        assert!(
            !done.stderr.contains("panicked"),
            "{label}: {}",
            done.stderr
        );
        match expect {
            Expect::RunsWithNote(replacement) => {
                // sweeps 0.2.0 refuses the deprecated forms, naming the replacement.
                assert!(
                    violations.iter().any(|v| v
                        .as_str()
                        .unwrap()
                        .contains(&replacement[1..replacement.len() - 1])),
                    "{label}: W&B's validator said {violations:?}"
                );
                assert_eq!(done.code, 0, "{label}: {}", done.stderr);
                assert!(
                    done.stderr
                        .lines()
                        .any(|l| l.starts_with("note: ") && l.contains(replacement)),
                    "{label}: no note naming {replacement}:\n{}",
                    done.stderr
                );
            }
            Expect::Runs | Expect::Refused(_) => {
                assert!(
                    violations.is_empty(),
                    "{label}: W&B's validator refuses it: {violations:?}"
                );
                if let Expect::Refused(construct) = expect {
                    assert_eq!(done.code, 2, "{label}: {}", done.stderr);
                    assert!(
                        done.stderr.lines().any(|l| l.contains(construct)),
                        "{label}: no line naming {construct}:\n{}",
                        done.stderr
                    );
                    assert!(
                        !out.join("trials.json").exists(),
                        "{label}: outputs written"
                    );
                    continue;
                }
                assert_eq!(done.code, 0, "{label}: {}", done.stderr);
            }
        }
        // Every trial ran (none failed), and each is a W&B run of the sweep.
        let trials: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("trials.json")).unwrap())
                .unwrap();
        let trials = trials["trials"].as_array().unwrap();
        assert!(!trials.is_empty(), "{label}");
        for t in trials {
            assert_eq!(t["status"], "ok", "{label}: {t}");
        }
        let runs = peer(&python, &["read", wandb_dir.to_str().unwrap()]);
        let runs = runs.as_array().unwrap();
        assert_eq!(runs.len(), trials.len(), "{label}: one W&B run per trial");

        if !TABLE[i].1.starts_with("method: grid") {
            continue;
        }
        // The grid: bciops' trials, in sweep order, as W&B run configs, against the configs
        // W&B's grid search suggests, in its order. Compared as JSON text, so an integer and
        // a float of the same value differ (W&B's grid keeps NumPy's types).
        let wb = peer(&python, &["grid", file.to_str().unwrap()]);
        let mut ours: Vec<(u64, Value)> = runs
            .iter()
            .map(|r| {
                let id = r["display_name"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("trial-");
                let t = trials
                    .iter()
                    .find(|t| t["id"] == id)
                    .expect("run of a trial");
                (t["index"].as_u64().unwrap(), r["config"].clone())
            })
            .collect();
        ours.sort_by_key(|(i, _)| *i);
        let ours: Vec<String> = ours.iter().map(|(_, c)| c.to_string()).collect();
        let theirs: Vec<String> = wb
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        assert!(
            theirs.len() <= 8,
            "{label}: the table's grids fit --max-trials"
        );
        assert_eq!(ours, theirs, "{label}");
    }
}

/// `wandb sync --view --verbose DIR`: W&B's own offline viewer, printing every record.
fn wandb_view(python: &Path, run_dir: &Path) -> String {
    let wandb = python.with_file_name("wandb");
    let out = Command::new(wandb)
        .args(["sync", "--view", "--verbose"])
        .arg(run_dir)
        .current_dir(run_dir.parent().unwrap())
        .env("WANDB_MODE", "offline")
        .env("WANDB_BASE_URL", "http://127.0.0.1:9")
        // The legacy sync asks for a login first; a dummy key (never sent) satisfies it.
        .env("WANDB_API_KEY", "0".repeat(40))
        .output()
        .expect("run wandb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wandb sync --view failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn tune_and_train_runs_read_back_with_w_and_b_s_own_reader() {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let sweep = dir.path().join("sweep.yaml");
    std::fs::write(
        &sweep,
        "method: grid\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  svm: {parameters: {C: {values: [0.5, 2.0]}, kernel: {value: linear}}}\n  n_components: {values: [2, 4]}\n",
    )
    .unwrap();
    let out = dir.path().join("sweep-out");
    let wandb_dir = dir.path().join("w");
    let done = tune(&data, &sweep, &out, &wandb_dir);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let trials: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trials.json")).unwrap()).unwrap();
    let trials = trials["trials"].as_array().unwrap().clone();
    let runs = peer(&python, &["read", wandb_dir.to_str().unwrap()]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let sweep_id = runs[0]["sweep_id"].as_str().unwrap();
    assert_eq!(sweep_id.len(), 8, "{sweep_id}");
    for r in runs {
        assert_eq!(r["sweep_id"], sweep_id, "one sweep id for every trial");
        assert_eq!(
            r["types"],
            serde_json::json!(["header", "run", "history", "history", "summary", "exit", "final"])
        );
        assert_eq!(r["project"], "bciops");
        assert_eq!(r["exit_code"], 0);
        let id = r["display_name"]
            .as_str()
            .unwrap()
            .trim_start_matches("trial-");
        let t = trials.iter().find(|t| t["id"] == id).unwrap();
        // The config is the trial's values in W&B's nested shape.
        assert_eq!(
            r["config"],
            serde_json::json!({
                "n_components": t["values"]["n_components"],
                "svm": {"C": t["values"]["svm.C"], "kernel": "linear"},
            })
        );
        assert_eq!(r["summary"]["accuracy"], t["accuracy"]);
        assert_eq!(r["summary"]["kappa"], t["kappa"]);
        assert_eq!(r["summary"]["trial_id"], t["id"]);
        assert_eq!(r["steps"], serde_json::json!([0, 1]));
        let folds: Vec<Value> = r["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["fold_accuracy"].clone())
            .collect();
        assert_eq!(Value::Array(folds), t["fold_accuracy"]);
        assert!(r["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["_step"].is_u64()));
    }
    // W&B's own viewer reads the same records.
    let run_dir = Path::new(runs[0]["path"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let view = wandb_view(&python, &run_dir);
    assert!(
        view.contains(&format!("sweep_id: \"{sweep_id}\"")),
        "{view}"
    );
    assert_eq!(view.matches("Record: ").count(), 7, "{view}");
    assert!(view.contains("key: \"fold_accuracy\""), "{view}");

    // Run again: the journal resumes every trial and no run is written twice.
    let done = tune(&data, &sweep, &out, &wandb_dir);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        peer(&python, &["read", wandb_dir.to_str().unwrap()])
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // train, switched on by WANDB_MODE=offline alone.
    let model = dir.path().join("model");
    let train_wandb = dir.path().join("tw");
    bciops([
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "cv:3",
        "--n-components",
        "4",
    ])
    .env("WANDB_MODE", "offline")
    .env("WANDB_DIR", &train_wandb)
    .env("WANDB_PROJECT", "bci")
    .success();
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metrics.json")).unwrap())
            .unwrap();
    let runs = peer(&python, &["read", train_wandb.to_str().unwrap()]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["project"], "bci");
    assert_eq!(r["sweep_id"], "");
    assert_eq!(r["job_type"], "train");
    assert_eq!(r["config"]["n_components"], 4);
    assert_eq!(r["config"]["evaluation"], "cv:3");
    assert_eq!(r["summary"]["accuracy"], metrics["accuracy"]);
    assert_eq!(r["summary"]["kappa"], metrics["kappa"]);
    let folds: Vec<Value> = metrics["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["accuracy"].clone())
        .collect();
    let logged: Vec<Value> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fold_accuracy"].clone())
        .collect();
    assert_eq!(logged, folds);
    assert_eq!(r["steps"], serde_json::json!([0, 1, 2]));

    // WANDB_MODE=disabled wins over --wandb.
    let off = dir.path().join("off");
    bciops([
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("model2").to_str().unwrap(),
        "--eval",
        "cv:2",
        "--wandb",
    ])
    .env("WANDB_MODE", "disabled")
    .env("WANDB_DIR", &off)
    .success();
    assert!(!off.exists(), "nothing written under WANDB_MODE=disabled");
}
