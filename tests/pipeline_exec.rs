//! The compiled pipeline executed, both modes, by the Kubeflow Pipelines SDK's own executor:
//! `kfp.local`'s DockerRunner on podman's Docker-compatible API, with the image
//! scripts/services/50-image.sh builds. The IR is what `bciops pipeline compile` writes for a
//! cluster; where kfp.local departs from the KFP v2 backend, tests/kfp_local_backend.py fills
//! the gap as the backend does (its docstring names each gap and the backend source).
//!
//! The steps' outputs are compared with `bciops pipeline run` (the local runner) of the same
//! config: same binary code, same inputs, so the same dataset, metrics, decision and sweep.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::bciops;
use serde_json::Value;

/// A small synthetic subject and a short sweep, so each run takes seconds per step.
const SMALL: [&str; 12] = [
    "--set",
    "data.synth.subjects=1",
    "--set",
    "data.synth.trials_per_class=12",
    "--set",
    "train.eval=cv:3",
    "--set",
    "tune.shards=3",
    "--set",
    "tune.max_trials=6",
    "--set",
    "tune.eval=cv:3",
];

/// What executing the pipeline needs, from scripts/test.sh's services.
struct Executor {
    /// .venv-kfp's Python (kfp and docker), 40-validators.sh.
    python: PathBuf,
    /// podman's API socket, 60-podman-api.sh.
    docker_host: String,
    /// The bciops image, 50-image.sh.
    image: String,
}

/// The services' variables (and `extra` ones); any unset: skip, except under CI.
fn executor(extra: &[&str]) -> Option<(Executor, Vec<String>)> {
    let names = ["BCIOPS_KFP_PYTHON", "BCIOPS_DOCKER_HOST", "BCIOPS_IMAGE"];
    let all: Vec<&str> = names.iter().chain(extra).copied().collect();
    let missing: Vec<&str> = all
        .iter()
        .filter(|n| std::env::var(n).is_err())
        .copied()
        .collect();
    if !missing.is_empty() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{missing:?} not set under CI: run the tests through scripts/test.sh");
        }
        eprintln!(
            "skipping the executed pipeline: {missing:?} not set (scripts/test.sh sets them)"
        );
        return None;
    }
    let var = |n: &str| std::env::var(n).unwrap();
    let executor = Executor {
        python: PathBuf::from(var(names[0])),
        docker_host: var(names[1]),
        image: var(names[2]),
    };
    Some((executor, extra.iter().map(|n| var(n)).collect()))
}

/// A registered-model name no other test (or earlier CI run on the same server) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

impl Executor {
    /// `bciops pipeline compile` of the small config for this image, into `dir/pipeline.yaml`.
    fn compile(&self, dir: &Path, registry: &str) -> PathBuf {
        let ir = dir.join("pipeline.yaml");
        let set_registry = format!("registry.uri={registry}");
        let mut args = vec![
            "pipeline",
            "compile",
            "--image",
            &self.image,
            "--out",
            ir.to_str().unwrap(),
            "--set",
            &set_registry,
        ];
        args.extend(SMALL);
        bciops(&args).success();
        ir
    }

    /// Runs the IR with kfp.local under `root`, with run `arguments`; returns what each task
    /// that ran output (`{"tasks": {NAME: {"status", "outputs"}}, "failed": [...]}`).
    fn execute(&self, ir: &Path, root: &Path, arguments: Value) -> Value {
        let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kfp_local_backend.py");
        let out = root.with_extension("json");
        let done = Command::new(&self.python)
            .arg(helper)
            .arg(ir)
            .arg(root)
            .arg(&out)
            .arg(arguments.to_string())
            .env("DOCKER_HOST", &self.docker_host)
            .output()
            .expect("run kfp_local_backend.py");
        let report = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(
            done.status.success(),
            "the pipeline failed: {report}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
        serde_json::from_str(&report).unwrap()
    }
}

/// `bciops pipeline run --json` of the small config plus `extra`.
fn run_locally(run_dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "pipeline",
        "run",
        "--json",
        "--run-dir",
        run_dir.to_str().unwrap(),
    ];
    args.extend(SMALL);
    args.extend(extra);
    let done = bciops(&args).success();
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {}", done.stdout))
}

fn ran(report: &Value) -> BTreeSet<String> {
    report["tasks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The local path of `task`'s output artifact `name`.
fn artifact(report: &Value, task: &str, name: &str) -> PathBuf {
    let path = report["tasks"][task]["outputs"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no artifact {task}.{name} in {report}"));
    PathBuf::from(path)
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `value` without the keys that measure time or name where a step ran.
fn without_times_and_paths(mut value: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !k.contains("seconds") && k != "model" && k != "data");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// Rows of the dataset's trials.csv (one per epoch), header excluded.
fn trial_count(dataset: &Path) -> usize {
    let text = std::fs::read_to_string(dataset.join("trials.csv")).unwrap();
    text.lines().skip(1).filter(|l| !l.is_empty()).count()
}

/// The two datasets hold the same epochs, labels and trial table, byte for byte (meta.json
/// differs: it names the recordings' paths).
fn same_epochs(a: &Path, b: &Path) {
    assert!(trial_count(a) > 0, "{}", a.display());
    assert_eq!(trial_count(a), trial_count(b));
    for file in ["X.npy", "y.npy", "trials.csv"] {
        let read = |d: &Path| std::fs::read(d.join(file)).unwrap();
        assert!(
            read(a) == read(b),
            "{file} differs: {} {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn train_mode_executes_as_locally_and_gates_promotion() {
    let Some((exec, extra)) = executor(&["BCIOPS_MLFLOW_URI"]) else {
        return;
    };
    let mlflow = &extra[0];
    let dir = tempfile::tempdir().unwrap();
    let ir = exec.compile(dir.path(), mlflow);

    // The reference: the local runner, its own registered-model name on the same server.
    let local_name = unique("exec-local");
    let set_name = format!("registry.name={local_name}");
    let set_registry = format!("registry.uri={mlflow}");
    let local = run_locally(
        &dir.path().join("local"),
        &["--set", &set_registry, "--set", &set_name],
    );
    assert_eq!(local["decision"], "promoted", "{local}");
    let out = |step: &str| PathBuf::from(local["outputs"][step].as_str().unwrap());

    let name = unique("exec-kfp");
    let root = dir.path().join("root");
    let first = exec.execute(
        &ir,
        &root,
        serde_json::json!({"mode": "train", "registry_name": name}),
    );
    assert_eq!(
        ran(&first),
        set(&["synth", "preprocess", "train", "compare-register", "deploy"]),
        "{first}"
    );
    // Outputs handed from step to step (gap 3 of the helper) and equal to the local run's.
    same_epochs(
        &artifact(&first, "preprocess", "dataset"),
        &out("preprocess.dataset"),
    );
    let model = artifact(&first, "train", "model");
    // Same code, same dataset, same seed: the metrics agree exactly, not within a tolerance.
    assert_eq!(
        without_times_and_paths(json(&model.join("metrics.json"))),
        without_times_and_paths(json(&out("train.model").join("metrics.json"))),
    );
    // The decision output parameter (read from the step's file) and the gate it drives (gap 4).
    assert_eq!(
        first["tasks"]["compare-register"]["outputs"]["decision"],
        "promoted"
    );
    let predictions = artifact(&first, "deploy", "predictions");
    assert_eq!(
        without_times_and_paths(json(&predictions)),
        without_times_and_paths(json(&out("deploy.predictions"))),
    );

    // The same pipeline again: upstream steps come from KFP's cache, compare-register (never
    // cached) finds the identical model as champion and rejects it, and deploy is skipped.
    let second = exec.execute(
        &ir,
        &dir.path().join("root"),
        serde_json::json!({"mode": "train", "registry_name": name}),
    );
    assert_eq!(
        second["tasks"]["compare-register"]["outputs"]["decision"], "rejected",
        "{second}"
    );
    assert!(!ran(&second).contains("deploy"), "{second}");
}

#[test]
fn tune_mode_executes_the_shards_and_merges_as_locally() {
    let Some((exec, _)) = executor(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Tune mode never reaches compare-register; the registry is only what compile requires.
    let ir = exec.compile(dir.path(), "https://mlflow.invalid");
    let local = run_locally(&dir.path().join("local"), &["--set", "mode=tune"]);
    let local_sweep = PathBuf::from(local["outputs"]["tune-merge.sweep"].as_str().unwrap());

    let report = exec.execute(
        &ir,
        &dir.path().join("root"),
        serde_json::json!({"mode": "tune"}),
    );
    assert_eq!(
        ran(&report),
        set(&[
            "synth",
            "preprocess",
            "tune-1",
            "tune-2",
            "tune-3",
            "tune-merge"
        ]),
        "{report}"
    );
    let sweep = artifact(&report, "tune-merge", "sweep");
    let trials = |dir: &Path| {
        let t = json(&dir.join("trials.json"));
        t.as_array()
            .or_else(|| t["trials"].as_array())
            .map(Vec::len)
    };
    // Every shard's trials reached the merge: tune.max_trials of them.
    assert_eq!(trials(&sweep), Some(6));
    assert_eq!(trials(&sweep), trials(&local_sweep));
    let (best, local_best) = (
        json(&sweep.join("best.json")),
        json(&local_sweep.join("best.json")),
    );
    same_epochs(
        &artifact(&report, "preprocess", "dataset"),
        &PathBuf::from(local["outputs"]["preprocess.dataset"].as_str().unwrap()),
    );
    for key in ["trial_id", "params", "value", "accuracy", "fold_accuracy"] {
        assert_eq!(best[key], local_best[key], "best.json `{key}`");
    }
    // Above chance on two classes: the trials were scored, not defaulted.
    assert!(best["value"].as_f64().is_some_and(|v| v > 0.5), "{best}");
}
