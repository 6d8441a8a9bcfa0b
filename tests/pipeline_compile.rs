//! `bciops pipeline compile`: the Kubeflow Pipelines IR it writes is checked with the real kfp
//! SDK (scripts/validate_kfp.py: strict protobuf parse of the whole file and of its
//! deploymentSpec, load_component_from_file, the SDK compiler reusing it, and every reference
//! resolved).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bciops;

/// The kfp venv's Python (`$BCIOPS_KFP_PYTHON`, set by scripts/services/40-validators.sh). Unset:
/// skip with a message, except under CI, where it is a failure.
fn kfp_python() -> Option<PathBuf> {
    match std::env::var_os("BCIOPS_KFP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_KFP_PYTHON is not set under CI: run the tests through scripts/test.sh")
        }
        None => {
            eprintln!("skipping the kfp SDK check: BCIOPS_KFP_PYTHON is not set (scripts/test.sh sets it)");
            None
        }
    }
}

fn validate(yaml: &Path) -> Option<serde_json::Value> {
    let python = kfp_python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate_kfp.py");
    let out = Command::new(python)
        .arg(script)
        .arg(yaml)
        .output()
        .expect("run the kfp validator");
    assert!(
        out.status.success(),
        "kfp SDK rejected {}:\n{}\n{}",
        yaml.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(yaml).unwrap_or_default()
    );
    Some(serde_json::from_slice(&out.stdout).expect("validator prints JSON"))
}

#[test]
fn default_pipeline_is_valid_kfp_ir() {
    let dir = tempfile::tempdir().unwrap();
    // A nested output path: compile creates the parents.
    let out = dir.path().join("kfp/pipeline.yaml");
    bciops([
        "pipeline",
        "compile",
        "--image",
        "ghcr.io/example/bciops:0.1.0",
        "--out",
        out.to_str().unwrap(),
        // The one key a cluster needs that the local default leaves unset.
        "--set",
        "registry.uri=https://mlflow.example.com",
    ])
    .success();
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(yaml.contains("image: ghcr.io/example/bciops:0.1.0"));
    assert!(yaml.contains("- bciops\n        - compare-register"));
    if let Some(seen) = validate(&out) {
        // 9 steps (tune unrolled into 3 shards) + 2 conditions + 1 promoted-gate; the sweep
        // travels inline, so no importer.
        assert_eq!(seen["components"], 12, "{seen}");
        assert_eq!(seen["executors"], 9, "{seen}");
    }
}

#[test]
fn every_option_compiles_to_valid_kfp_ir() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pipeline.yaml");
    let sets = [
        "mode=tune",
        "pipeline_root=gs://bucket/pipeline-root",
        "data.source=uri",
        "data.uri=gs://bucket/bci-iv-2a",
        "tune.sweep=gs://bucket/sweep.yaml",
        "tune.shards=4",
        "tune.max_trials=64",
        "train.params_file=gs://bucket/best.json",
        "train.params.c=1.2",
        "train.params.n_components=6",
        "train.params.kernel=rbf",
        "train.params.log=false",
        "steps.preprocess.node_selector.pool=highmem",
        "steps.train.node_selector.pool=gpu",
        "steps.train.accelerator.type=nvidia.com/gpu",
        "steps.train.accelerator.count=1",
        "steps.deploy.cache=false",
        "registry.uri=gs://bucket/registry",
    ];
    let mut args: Vec<String> = ["pipeline", "compile", "--image", "bciops:dev", "--out"]
        .map(String::from)
        .to_vec();
    args.push(out.display().to_string());
    for s in sets {
        args.extend(["--set".to_owned(), s.to_owned()]);
    }
    bciops(&args).success();
    let yaml = std::fs::read_to_string(&out).unwrap();
    for needle in [
        "defaultPipelineRoot: gs://bucket/pipeline-root",
        "- --shard\n        - 4/4",
        "'{{$.inputs.artifacts[''shards-4''].path}}'",
        "resourceType: nvidia.com/gpu",
        "runtimeParameter: uri",
        "- --max-trials\n        - '64'",
        "- --no-log",
        "enableCache: false",
    ] {
        assert!(yaml.contains(needle), "`{needle}` missing:\n{yaml}");
    }
    if let Some(seen) = validate(&out) {
        assert_eq!(
            seen["platform_executors"],
            serde_json::json!(["exec-preprocess", "exec-train"]),
            "{seen}"
        );
    }
}

#[test]
fn bad_configs_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.yaml");
    let o = out.to_str().unwrap();
    bciops([
        "pipeline",
        "compile",
        "--image",
        "x",
        "--out",
        o,
        "--set",
        "mode=fast",
    ])
    .fails(2, "fast");
    bciops([
        "pipeline",
        "compile",
        "--image",
        "x",
        "--out",
        o,
        "--set",
        "steps.train.memory_limit=much",
        "--set",
        "registry.uri=http://mlflow:5000",
    ])
    .fails(2, "`much`");
    bciops(["pipeline", "compile", "--image", " ", "--out", o]).fails(2, "--image");
    bciops([
        "pipeline",
        "compile",
        "--image",
        "x",
        "--out",
        o,
        "--config",
        "/nonexistent.yaml",
    ])
    .fails(2, "/nonexistent.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "mode: train\nunknown_key: 1\n").unwrap();
    bciops([
        "pipeline",
        "compile",
        "--image",
        "x",
        "--out",
        o,
        "--config",
        bad.to_str().unwrap(),
    ])
    .fails(2, "unknown");
    // Inputs a step on a cluster cannot read, and a registry that would live in a step's pod
    // (issue 19): refused, naming the key.
    for (set, key) in [
        ("data.uri=./recordings", "data.uri"),
        ("train.params_file=best.json", "train.params_file"),
        ("registry.uri=./bciops-store", "registry.uri"),
        ("registry.uri=file:///srv/registry", "registry.uri"),
        ("registry.uri=null", "registry.uri"),
    ] {
        let mut args = vec![
            "pipeline", "compile", "--image", "x", "--out", o, "--set", set,
        ];
        if key != "registry.uri" {
            args.extend(["--set", "registry.uri=http://mlflow:5000"]);
        }
        if key == "data.uri" {
            args.extend(["--set", "data.source=uri"]);
        }
        bciops(&args).fails(2, &format!("`{key}` is"));
    }
    assert!(!out.exists());
}
