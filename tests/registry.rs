//! `compare-register` and model references against the embedded registry and a real MLflow
//! Model Registry, checked with MLflow's own Python client (issue 5).

mod common;
mod tracking_support;

use std::path::{Path, PathBuf};

use tracking_support::*;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Candidates with chosen accuracies, made from the trained model.
fn candidates(dir: &Path, accuracies: &[f64]) -> Vec<PathBuf> {
    accuracies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let d = dir.join(format!("cand{i}"));
            variant(&trained().model, &d, *a);
            d
        })
        .collect()
}

fn compare(
    dir: &Path,
    model: &Path,
    name: &str,
    registry: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "compare-register",
        "--model",
        s(model),
        "--name",
        name,
        "--registry-uri",
        registry,
        "--json",
    ];
    args.extend_from_slice(extra);
    json(&ok(bciops_in(dir, &args, &[])).stdout)
}

/// The flow the issue asks for, on any registry: first promoted, worse rejected (alias
/// unchanged), better promoted with an audit trail, fetch by alias and by version.
fn promote_reject_promote(registry: &str, name: &str) -> (PathBuf, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap().keep();
    let c = candidates(&tmp, &[0.70, 0.65, 0.80]);
    let first = compare(&tmp, &c[0], name, registry, &["--decision-out", "d1"]);
    assert_eq!(first["decision"], "promoted");
    assert_eq!(first["version"], 1);
    assert!(first["champion"].is_null());
    assert_eq!(std::fs::read_to_string(tmp.join("d1")).unwrap(), "promoted");

    let worse = compare(&tmp, &c[1], name, registry, &["--decision-out", "out/d2"]);
    assert_eq!(worse["decision"], "rejected");
    assert_eq!(worse["champion"], 0.70);
    assert_eq!(worse["candidate"], 0.65);
    assert!(worse["version"].is_null());
    assert_eq!(
        std::fs::read_to_string(tmp.join("out/d2")).unwrap(),
        "rejected"
    );
    // Better, but not by more than --min-delta.
    let small = compare(&tmp, &c[2], name, registry, &["--min-delta", "0.2"]);
    assert_eq!(small["decision"], "rejected");

    let better = compare(&tmp, &c[2], name, registry, &["--min-delta", "0.05"]);
    assert_eq!(better["decision"], "promoted");
    assert_eq!(better["version"], 2);
    assert_eq!(better["champion_version"], 1);

    let versions = json(
        &ok(bciops_in(
            &tmp,
            &["models", "list", name, "--registry-uri", registry, "--json"],
            &[],
        ))
        .stdout,
    );
    let v = versions.as_array().unwrap();
    assert_eq!(v.len(), 2, "the rejected candidates are not registered");
    assert_eq!(v[1]["tags"]["bciops.replaced_version"], "1");
    assert_eq!(v[1]["tags"]["bciops.replaced_metric"], "0.7");
    assert_eq!(v[1]["tags"]["metric.accuracy"], "0.8");
    assert!(v[1]["tags"]["bciops.promoted_at"]
        .as_str()
        .unwrap()
        .starts_with("20"));
    assert_eq!(v[0]["tags"]["bciops.replaced_by"], "2");
    assert_eq!(v[1]["aliases"], serde_json::json!(["champion"]));

    let resolved = ok(bciops_in(
        &tmp,
        &[
            "models",
            "resolve",
            &format!("models:/{name}@champion"),
            "--registry-uri",
            registry,
        ],
        &[],
    ))
    .stdout;
    assert_eq!(resolved.trim(), format!("{name} 2"));
    ok(bciops_in(
        &tmp,
        &[
            "models",
            "fetch",
            &format!("models:/{name}@champion"),
            "--out",
            "f2",
            "--registry-uri",
            registry,
        ],
        &[],
    ));
    assert_eq!(files(&tmp.join("f2")), files(&c[2]));
    ok(bciops_in(
        &tmp,
        &[
            "models",
            "fetch",
            &format!("models:/{name}/1"),
            "--out",
            "f1",
            "--registry-uri",
            registry,
        ],
        &[],
    ));
    assert_eq!(files(&tmp.join("f1")), files(&c[0]));
    (tmp, c)
}

#[test]
fn local_registry_promotes_only_better_models() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    promote_reject_promote(s(&store), "bci");
    // The same store through file://, and the library call the server uses.
    let listed = ok(bciops_in(
        tmp.path(),
        &[
            "models",
            "list",
            "--registry-uri",
            &format!("file://{}", store.display()),
        ],
        &[],
    ))
    .stdout;
    assert!(listed.contains("bci  latest=2  @champion=2"), "{listed}");
    let config = bciops::registry::RegistryConfig::resolve(Some(s(&store)), None).unwrap();
    assert_eq!(
        bciops::registry::resolve("models:/bci@champion", &config).unwrap(),
        ("bci".to_owned(), 2)
    );
    let fetched =
        bciops::registry::fetch_model("models:/bci/2", &config, &tmp.path().join("lib"), false)
            .unwrap();
    assert_eq!(fetched.version, 2);
    bciops::model::artifact::load(&fetched.dir).unwrap();
}

#[test]
fn concurrent_compare_register_never_leaves_the_worse_champion_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let accuracies = [0.61, 0.93, 0.72, 0.85, 0.66, 0.90];
    let c = candidates(tmp.path(), &accuracies);
    let children: Vec<_> = c
        .iter()
        .map(|m| {
            std::process::Command::new(env!("CARGO_BIN_EXE_bciops"))
                .args([
                    "compare-register",
                    "--model",
                    s(m),
                    "--name",
                    "race",
                    "--registry-uri",
                    s(&store),
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let champion = json(
        &ok(bciops_in(
            tmp.path(),
            &[
                "models",
                "list",
                "race",
                "--registry-uri",
                s(&store),
                "--json",
            ],
            &[],
        ))
        .stdout,
    );
    let holder = champion
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["aliases"] == serde_json::json!(["champion"]))
        .unwrap()
        .clone();
    assert_eq!(holder["tags"]["metric.accuracy"], "0.93");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let reg = s(&store);
    // A directory without metrics.json.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                s(&empty),
                "--name",
                "x",
                "--registry-uri",
                reg,
            ],
            &[],
        ),
        2,
        "has no metrics.json",
    );
    // An unknown metric.
    fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                s(&trained().model),
                "--name",
                "x",
                "--metric",
                "auc",
                "--registry-uri",
                reg,
            ],
            &[],
        ),
        2,
        "has no numeric metric `auc`",
    );
    // A model changed after training is refused (checksums).
    let tampered = tmp.path().join("tampered");
    variant(&trained().model, &tampered, 0.9);
    std::fs::write(tampered.join("model.json"), b"{}").unwrap();
    fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                s(&tampered),
                "--name",
                "x",
                "--registry-uri",
                reg,
            ],
            &[],
        ),
        2,
        "checksum mismatch",
    );
    // Unknown names, versions, aliases; malformed references.
    fails(
        bciops_in(
            tmp.path(),
            &[
                "models",
                "fetch",
                "models:/nope@champion",
                "--out",
                "o",
                "--registry-uri",
                reg,
            ],
            &[],
        ),
        2,
        "registered model `nope` does not exist",
    );
    fails(
        bciops_in(
            tmp.path(),
            &["models", "list", "nope", "--registry-uri", reg],
            &[],
        ),
        2,
        "registered model `nope` does not exist",
    );
    fails(
        bciops_in(
            tmp.path(),
            &["models", "resolve", "bci@champion", "--registry-uri", reg],
            &[],
        ),
        2,
        "is not a model reference",
    );
    fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                s(&trained().model),
                "--name",
                "x",
                "--registry-uri",
                "ftp://b/x",
            ],
            &[],
        ),
        2,
        "unsupported tracking URI scheme `ftp`",
    );
    let dead = format!("http://127.0.0.1:{}", closed_port());
    fails(
        bciops_in(
            tmp.path(),
            &[
                "models",
                "resolve",
                "models:/x@champion",
                "--registry-uri",
                &dead,
            ],
            &[("BCIOPS_MLFLOW_ATTEMPTS", "1")],
        ),
        2,
        "cannot reach MLflow",
    );
    assert!(!tmp.path().join("o").exists());
}

#[test]
fn mlflow_registry_promotes_only_better_models() {
    let Some((uri, python)) = mlflow() else {
        return;
    };
    let name = unique("bci");
    let start = std::time::Instant::now();
    let (tmp, c) = promote_reject_promote(&uri, &name);
    eprintln!(
        "MLflow promote/reject/promote + 2 fetches: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    // MLflow's own client sees the promoted version behind the alias, and its files.
    let out = mlflow_python(
        &python,
        &uri,
        r#"
import sys, json, mlflow
name, dst = sys.argv[1:3]
c = mlflow.MlflowClient()
v = c.get_model_version_by_alias(name, "champion")
path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}@champion", dst_path=dst)
print(json.dumps({"version": v.version, "tags": v.tags, "run_id": v.run_id, "path": path,
                  "versions": sorted(int(m.version) for m in c.search_model_versions(f"name='{name}'"))}))
"#,
        &[&name, s(&tmp.join("py"))],
    );
    let seen = json(&out);
    assert_eq!(seen["version"], "2");
    assert_eq!(seen["versions"], serde_json::json!([1, 2]));
    assert_eq!(seen["tags"]["metric.accuracy"], "0.8");
    assert!(
        !seen["run_id"].as_str().unwrap().is_empty(),
        "the version comes from a run's model artifact"
    );
    let mut downloaded = files(Path::new(seen["path"].as_str().unwrap()));
    // MLflow's client writes this note of name and version beside a `models:/` download.
    assert!(downloaded.remove("registered_model_meta").is_some());
    assert_eq!(downloaded, files(&c[2]));

    // A worse candidate leaves the champion where it was.
    let worse = tmp.join("worse");
    variant(&trained().model, &worse, 0.75);
    assert_eq!(
        compare(&tmp, &worse, &name, &uri, &[])["decision"],
        "rejected"
    );
    let again = mlflow_python(&python, &uri, "import sys, mlflow; print(mlflow.MlflowClient().get_model_version_by_alias(sys.argv[1], 'champion').version)", &[&name]);
    assert_eq!(again.trim(), "2");
}

#[test]
fn mlflow_version_source_is_the_train_run_model_artifact() {
    let Some((uri, python)) = mlflow() else {
        return;
    };
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("from-run");
    let env = [
        ("MLFLOW_TRACKING_URI", uri.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", "bciops-tests"),
    ];
    ok(bciops_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&t.epochs),
            "--out",
            "m",
            "--eval",
            "holdout:0.3",
            "--run-id-out",
            "rid",
        ],
        &env,
    ));
    let rid = std::fs::read_to_string(tmp.path().join("rid"))
        .unwrap()
        .trim()
        .to_owned();
    let d = json(
        &ok(bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                "m",
                "--name",
                &name,
                "--run-id",
                &rid,
                "--json",
            ],
            &env,
        ))
        .stdout,
    );
    assert_eq!(d["decision"], "promoted");
    let out = mlflow_python(
        &python,
        &uri,
        "import sys, mlflow; v = mlflow.MlflowClient().get_model_version(sys.argv[1], '1'); print(v.run_id, v.source)",
        &[&name],
    );
    let (run, source) = out.trim().split_once(' ').unwrap();
    assert_eq!(run, rid);
    assert!(
        source.ends_with(&format!("{rid}/artifacts/model")),
        "{source}"
    );
    fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                "m",
                "--name",
                &name,
                "--run-id",
                "0000",
                "--min-delta",
                "-1",
            ],
            &env,
        ),
        2,
        "run `0000` does not exist",
    );
    fails(
        bciops_in(
            tmp.path(),
            &[
                "models",
                "fetch",
                &format!("models:/{name}-nope@champion"),
                "--out",
                "o",
            ],
            &env,
        ),
        2,
        "does not exist",
    );
}

#[test]
fn concurrent_compare_register_on_mlflow_settles_on_the_best() {
    let Some((uri, _python)) = mlflow() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("race");
    let c = candidates(tmp.path(), &[0.62, 0.91, 0.77]);
    // One after another (`name`), then all at once (`name-2`, the race).
    for m in &c {
        compare(tmp.path(), m, &name, &uri, &[]);
    }
    let spawned: Vec<_> = c
        .iter()
        .map(|m| {
            std::process::Command::new(env!("CARGO_BIN_EXE_bciops"))
                .args([
                    "compare-register",
                    "--model",
                    s(m),
                    "--name",
                    &format!("{name}-2"),
                    "--registry-uri",
                    &uri,
                    "--json",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut decisions = Vec::new();
    for child in spawned {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        decisions.push(json(&String::from_utf8_lossy(&out.stdout)));
    }
    for n in [name.clone(), format!("{name}-2")] {
        let resolved = ok(bciops_in(
            tmp.path(),
            &["models", "list", &n, "--registry-uri", &uri, "--json"],
            &[],
        ))
        .stdout;
        let versions = json(&resolved);
        let holder = versions
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["aliases"] == serde_json::json!(["champion"]))
            .unwrap_or_else(|| panic!("no champion: {resolved}"))
            .clone();
        assert_eq!(
            holder["tags"]["metric.accuracy"], "0.91",
            "{n}: {resolved}\n{decisions:?}"
        );
    }
}
