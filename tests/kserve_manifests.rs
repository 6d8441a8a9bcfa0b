//! The KServe manifests (configs/k8s/kserve/): checked strictly against KServe's own SDK
//! models (scripts/validate_kserve.py, in the kfp venv that also has kubernetes-validate),
//! consistent with each other, and the ServingRuntime's command really serving a model with
//! the routes its probes and a V2 client use.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::serve::Server;
use serde_norway::Value;

fn kserve_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/k8s/kserve")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kserve_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn yaml(name: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(kserve_dir().join(name)).unwrap()).unwrap()
}

/// The Python with the `kserve` SDK and kubernetes-validate ($BCIOPS_KFP_PYTHON, set by
/// scripts/services/40-validators.sh); none: skip, except under CI.
fn kfp_python() -> Option<PathBuf> {
    match std::env::var_os("BCIOPS_KFP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_KFP_PYTHON is not set under CI: run the tests through scripts/test.sh")
        }
        None => {
            eprintln!("skipping: BCIOPS_KFP_PYTHON is not set (scripts/test.sh sets it)");
            None
        }
    }
}

fn validate(python: &Path, files: &[PathBuf]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/validate_kserve.py");
    let out = Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn kserve_manifests_validate_strictly_against_the_sdk_models() {
    let Some(python) = kfp_python() else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    let (ok, text) = validate(&python, &files);
    assert!(ok, "{text}");
    assert_eq!(text.matches("passed").count(), files.len(), "{text}");

    // Strict: an unknown field, a wrong type, a missing required field or a wrong
    // apiVersion each fail, naming it.
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| std::fs::read_to_string(kserve_dir().join(name)).unwrap();
    let cases = [
        (
            read("inferenceservice.yaml").replace(
                "      runtime: bciops\n",
                "      runtime: bciops\n      colour: blue\n",
            ),
            "unknown field `colour` in V1beta1ModelSpec",
        ),
        (
            read("servingruntime.yaml").replace(
                "  protocolVersions:",
                "  protocolVersion: v2\n  protocolVersions:",
            ),
            "unknown field `protocolVersion` in V1alpha1ServingRuntimeSpec",
        ),
        (
            read("servingruntime.yaml").replace("periodSeconds: 10", "periodSeconds: ten"),
            "livenessProbe.periodSeconds: `'ten'` is not a int",
        ),
        (
            read("servingruntime.yaml")
                .replace("- name: kserve-container\n      image:", "- image:"),
            "Invalid value for `name`, must not be `None`",
        ),
        (
            read("inferenceservice-onnx.yaml")
                .replace("serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1"),
            "has apiVersion `serving.kserve.io/v1alpha1`, not `serving.kserve.io/v1beta1`",
        ),
        (
            read("s3-credentials.example.yaml")
                .replace("type: Opaque\n", "type: Opaque\ncolour: blue\n"),
            "'colour' was unexpected",
        ),
    ];
    for (i, (text, says)) in cases.iter().enumerate() {
        let bad = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&bad, text).unwrap();
        let (ok, out) = validate(&python, &[bad]);
        assert!(!ok, "case {i} passed: {out}");
        assert!(out.contains(says), "case {i}: {out}");
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn kserve_manifests_hang_together_and_the_runtime_command_serves() {
    let runtime = yaml("servingruntime.yaml");
    let isvc = yaml("inferenceservice.yaml");
    let onnx = yaml("inferenceservice-onnx.yaml");
    let credentials: Vec<Value> = serde_norway::Deserializer::from_str(
        &std::fs::read_to_string(kserve_dir().join("s3-credentials.example.yaml")).unwrap(),
    )
    .map(|d| serde::Deserialize::deserialize(d).unwrap())
    .collect();

    let spec = &runtime["spec"];
    assert_eq!(strings(&spec["protocolVersions"]), ["v2"]);
    let container = &spec["containers"][0];
    // KServe finds the serving container of a runtime by this name.
    assert_eq!(container["name"].as_str(), Some("kserve-container"));
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"].as_u64(), Some(port));
    }
    let args = strings(&container["args"]);
    assert!(
        args.contains(&format!("0.0.0.0:{port}").as_str()),
        "{args:?}"
    );

    // The InferenceService names the runtime and one of its formats; the ONNX one KServe's
    // Triton runtime.
    let model = &isvc["spec"]["predictor"]["model"];
    assert_eq!(model["runtime"], runtime["metadata"]["name"]);
    let formats: Vec<&Value> = spec["supportedModelFormats"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| &f["name"])
        .collect();
    assert!(formats.contains(&&model["modelFormat"]["name"]));
    assert_eq!(model["protocolVersion"].as_str(), Some("v2"));
    assert!(model["storageUri"].as_str().unwrap().starts_with("s3://"));
    let onnx_model = &onnx["spec"]["predictor"]["model"];
    assert_eq!(onnx_model["runtime"].as_str(), Some("kserve-tritonserver"));
    assert_eq!(onnx_model["modelFormat"]["name"].as_str(), Some("onnx"));
    assert!(onnx_model["storageUri"]
        .as_str()
        .unwrap()
        .starts_with("s3://"));
    // Both use the service account that carries the bucket's credentials.
    let account = credentials
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .unwrap();
    let secret = credentials.iter().find(|d| d["kind"] == "Secret").unwrap();
    assert_eq!(account["secrets"][0]["name"], secret["metadata"]["name"]);
    for s in [&isvc, &onnx] {
        assert_eq!(
            s["spec"]["predictor"]["serviceAccountName"],
            account["metadata"]["name"]
        );
    }

    // The runtime's command, with what KServe fills in (the downloaded model directory at
    // /mnt/models, the InferenceService's name) and a free local port, serves that model
    // on the routes its probes and a V2 client call.
    let tmp = tempfile::tempdir().unwrap();
    let (_, model_dir) = common::small_model(tmp.path());
    let name = isvc["metadata"]["name"].as_str().unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| match *a {
            "/mnt/models" => model_dir.to_str().unwrap().to_owned(),
            "{{.Name}}" => name.to_owned(),
            a if a == format!("0.0.0.0:{port}") => "127.0.0.1:0".to_owned(),
            a => a.to_owned(),
        })
        .collect();
    assert_eq!(args[0], "serve");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args(&args[..]);
    let mut server = Server::spawn(cmd);
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(server.get(path).0, 200, "{probe} {path}");
    }
    assert_eq!(server.get(&format!("/v2/models/{name}/ready")).0, 200);
    let metrics_path = spec["annotations"]["prometheus.kserve.io/path"]
        .as_str()
        .unwrap();
    assert!(server.get(metrics_path).1.contains("bciops_model_ready 1"));
    assert_eq!(server.stop(), 0);
}
