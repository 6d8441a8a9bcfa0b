//! The deployment files: Kubernetes manifests (kubernetes-validate --strict for 1.30 and 1.37),
//! the Prometheus config and alert rules (promtool), and the Grafana dashboard (its queries use
//! only the metrics `bciops serve` exports).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A tool from an environment variable, or found on PATH; none: skip, except under CI.
fn tool(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let found = Command::new(fallback).arg("--version").output().is_ok();
    match (found, under_ci()) {
        (true, _) => Some(PathBuf::from(fallback)),
        (false, true) => panic!("{var} is not set and `{fallback}` is not on PATH under CI"),
        (false, false) => {
            eprintln!("skipping: {var} is not set and `{fallback}` is not on PATH (scripts/test.sh provides it)");
            None
        }
    }
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("configs/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn manifests_validate_strictly_for_kubernetes_1_30_and_1_37() {
    let Some(validator) = tool("BCIOPS_KUBERNETES_VALIDATE", "kubernetes-validate") else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 5, "{files:?}");
    for version in ["1.30.0", "1.37.0"] {
        let out = Command::new(&validator)
            .args(["--strict", "-k", version])
            .args(&files)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubernetes {version}:\n{text}");
        assert_eq!(text.matches("passed").count(), files.len(), "{text}");
    }
    // --strict really rejects what Kubernetes does not know.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(root().join("configs/k8s/service.yaml")).unwrap();
    std::fs::write(&bad, text.replace("spec:\n", "spec:\n  colour: blue\n")).unwrap();
    let out = Command::new(&validator)
        .args(["--strict", "-k", "1.37.0"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown field passed --strict");
}

#[test]
fn manifests_hang_together() {
    let k8s = root().join("configs/k8s");
    let deployment = yaml(&k8s.join("deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    // The image's numeric user (Dockerfile `USER 65532:65532`).
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65532));
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true));
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/livez")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env: Vec<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"MLFLOW_TRACKING_URI"), "{env:?}");
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    assert!(args.iter().any(|a| a.starts_with("models:/")), "{args:?}");
    assert!(args.contains(&"0.0.0.0:3000"));

    // Service, HPA, PDB and ServiceMonitor point at the Deployment's pods and port.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let service = yaml(&k8s.join("service.yaml"));
    let hpa = yaml(&k8s.join("hpa.yaml"));
    let pdb = yaml(&k8s.join("pdb.yaml"));
    let monitor = yaml(&k8s.join("prometheus-operator/servicemonitor.yaml"));
    let matches = |selector: &Value, labels: &Value| {
        selector
            .as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| &labels[k.as_str().unwrap()] == v)
    };
    assert!(matches(&service["spec"]["selector"], labels));
    assert!(matches(&pdb["spec"]["selector"]["matchLabels"], labels));
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    // The ServiceMonitor is a Prometheus Operator CRD, which kubernetes-validate does not
    // know: checked here by hand instead.
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert!(matches(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["path"].as_str(),
        Some("/metrics")
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    let Some(promtool) = tool("BCIOPS_PROMTOOL", "promtool") else {
        return;
    };
    let mon = root().join("configs/monitoring");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "alerts.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&mon)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = std::fs::read_to_string(mon.join("alerts.yml")).unwrap();
    for alert in [
        "HighErrorRate",
        "HighLatencyP99",
        "ModelNotReady",
        "ModelReloadFailed",
    ] {
        assert!(rules.contains(alert), "{alert}");
    }
    // The Kubernetes variant: Debian's build has no Kubernetes discovery and says so; any
    // other complaint is a real error.
    let out = Command::new(&promtool)
        .args(["check", "config", "prometheus-kubernetes.yml"])
        .current_dir(&mon)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || text.contains("field kubernetes_sd_configs not found"),
        "{text}"
    );
}

/// Every metric name a query uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if expr[i..].starts_with("bciops_")
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
        {
            let end = expr[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            names.push(expr[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// The metrics `bciops serve` exports (issue 6), with the suffixes Prometheus adds.
const SERVE_METRICS: &[&str] = &[
    "bciops_requests_total",
    "bciops_request_duration_seconds_bucket",
    "bciops_request_duration_seconds_sum",
    "bciops_request_duration_seconds_count",
    "bciops_inference_duration_seconds_bucket",
    "bciops_inference_duration_seconds_sum",
    "bciops_inference_duration_seconds_count",
    "bciops_requests_in_flight",
    "bciops_model_info",
    "bciops_model_ready",
    "bciops_model_reloads_total",
    "bciops_model_reload_failures_total",
];

/// The dashboard's and the alerts' queries, for this test and the live one.
pub fn queries() -> Vec<(String, String)> {
    let mon = root().join("configs/monitoring");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mon.join("grafana-dashboard.json")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                t["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let rules = yaml(&mon.join("alerts.yml"));
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        out.push((
            rule["alert"].as_str().unwrap().to_owned(),
            rule["expr"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

#[test]
fn dashboard_and_alerts_use_only_served_metrics() {
    let queries = queries();
    let mut used = std::collections::BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: no bciops metric in `{expr}`");
        for n in names {
            assert!(
                SERVE_METRICS.contains(&n.as_str()),
                "{title}: unknown metric `{n}`"
            );
            used.insert(n.trim_end_matches("_bucket").to_owned());
        }
    }
    // Every family the server exports is on the dashboard or in an alert.
    for family in [
        "bciops_requests_total",
        "bciops_request_duration_seconds",
        "bciops_inference_duration_seconds",
        "bciops_requests_in_flight",
        "bciops_model_info",
        "bciops_model_ready",
        "bciops_model_reloads_total",
        "bciops_model_reload_failures_total",
    ] {
        assert!(used.contains(family), "`{family}` is not shown: {used:?}");
    }
}
