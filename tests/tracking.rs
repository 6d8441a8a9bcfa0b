//! Runs recorded by `preprocess` and `train`: the embedded store, the journal, and a real
//! MLflow server checked with MLflow's own Python client (issue 5).

mod common;
mod tracking_support;

use std::path::Path;

use tracking_support::*;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn local_store_records_preprocess_and_train_runs() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let epochs = tmp.path().join("epochs");
    let model = tmp.path().join("model");
    ok(bciops_in(
        tmp.path(),
        &[
            "preprocess",
            "--input",
            s(&t.dir.join("raw")),
            "--out",
            s(&epochs),
            "--tracking-uri",
            s(&store),
        ],
        &[],
    ));
    let done = ok(bciops_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&epochs),
            "--out",
            s(&model),
            "--eval",
            "cv:3",
            "--kernel",
            "linear",
            "--seed",
            "7",
            "--tracking-uri",
            &format!("file://{}", store.display()),
            "--experiment",
            "exp-a",
            "--run-id-out",
            "rid.txt",
        ],
        &[],
    ));
    assert!(done.stderr.contains("recorded in"), "{}", done.stderr);
    let rid = std::fs::read_to_string(tmp.path().join("rid.txt"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(rid.len(), 32);

    let list = json(
        &ok(bciops_in(
            tmp.path(),
            &["runs", "list", "--store", s(&store), "--json"],
            &[],
        ))
        .stdout,
    );
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let train = runs.iter().find(|r| r["run_id"] == rid.as_str()).unwrap();
    let prep = runs.iter().find(|r| r["run_id"] != rid.as_str()).unwrap();
    assert_eq!(train["status"], "FINISHED");
    assert_eq!(train["experiment"], "exp-a");
    assert_eq!(prep["experiment"], "bciops");
    // Every parameter: the seed, the SVM and CSP settings, the evaluation.
    for (k, v) in [("seed", "7"), ("kernel", "linear"), ("evaluation", "cv:3")] {
        assert_eq!(train["params"][k], v, "{k}");
    }
    assert!(train["params"]["n_components"].is_string());
    // The filter design, as preprocess used it.
    assert_eq!(prep["params"]["filter.order"], "4");
    assert_eq!(prep["params"]["filter.band_low_hz"], "8");
    assert!(prep["params"]["filter.sos"]
        .as_str()
        .unwrap()
        .starts_with("[["));
    // Fold scores as steps 0..2.
    let steps: Vec<i64> = train["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["key"] == "fold_accuracy")
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 1, 2]);
    // Tags: version, host, command line, and the same dataset digest in both runs and the model.
    let model_json = json(&std::fs::read_to_string(model.join("model.json")).unwrap());
    let sha = model_json["dataset"]["sha256"].as_str().unwrap();
    assert_eq!(train["tags"]["bciops.dataset_sha256"], sha);
    assert_eq!(prep["tags"]["bciops.dataset_sha256"], sha);
    assert_eq!(train["tags"]["bciops.version"], env!("CARGO_PKG_VERSION"));
    assert!(train["tags"]["bciops.command"]
        .as_str()
        .unwrap()
        .contains("train --data"));
    assert!(!train["tags"]["bciops.host"].as_str().unwrap().is_empty());
    // Artifacts: the model directory, metrics.json and report.html, byte for byte.
    let art = store.join("runs").join(&rid).join("artifacts");
    assert_eq!(files(&art.join("model")), files(&model));
    assert_eq!(
        std::fs::read(art.join("metrics.json")).unwrap(),
        std::fs::read(model.join("metrics.json")).unwrap()
    );
    assert!(art.join("report.html").is_file());

    let show = ok(bciops_in(
        tmp.path(),
        &["runs", "show", &rid[..8], "--store", s(&store)],
        &[],
    ))
    .stdout;
    assert!(show.contains("fold_accuracy [step 2]"), "{show}");
    fails(
        bciops_in(
            tmp.path(),
            &["runs", "show", "ffffffff", "--store", s(&store)],
            &[],
        ),
        2,
        "no run `ffffffff`",
    );
}

#[test]
fn default_store_is_local_and_no_track_records_nothing() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--data",
        s(&t.epochs),
        "--out",
        "m",
        "--eval",
        "holdout:0.3",
        "--no-report",
    ];
    let mut no_track = args.to_vec();
    no_track.push("--no-track");
    ok(bciops_in(tmp.path(), &no_track, &[]));
    assert!(!tmp.path().join("bciops-store").exists());
    // Offline default: ./bciops-store.
    ok(bciops_in(tmp.path(), &args, &[]));
    let runs = json(&ok(bciops_in(tmp.path(), &["runs", "list", "--json"], &[])).stdout);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    // MLFLOW_TRACKING_URI as a path chooses the local store too.
    let other = tmp.path().join("other");
    ok(bciops_in(
        tmp.path(),
        &args,
        &[("MLFLOW_TRACKING_URI", s(&other))],
    ));
    assert!(other.join("runs").is_dir());
}

#[test]
fn child_runs_name_their_parent() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let store = s(&tmp.path().join("store")).to_owned();
    let parent = "0123456789abcdef0123456789abcdef";
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
            "--tracking-uri",
            &store,
            "--parent-run",
            parent,
            "--run-name",
            "trial 3",
        ],
        &[],
    ));
    let runs = json(
        &ok(bciops_in(
            tmp.path(),
            &["runs", "list", "--store", &store, "--json"],
            &[],
        ))
        .stdout,
    );
    assert_eq!(runs[0]["tags"]["mlflow.parentRunId"], parent);
    assert_eq!(runs[0]["name"], "trial 3");
}

#[test]
fn unreachable_server_journals_the_run_and_sync_replays_it() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        ("BCIOPS_JOURNAL", s(&journal)),
        ("BCIOPS_MLFLOW_ATTEMPTS", "2"),
    ];
    let experiment = unique("journal");
    let done = ok(bciops_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&t.epochs),
            "--out",
            "m",
            "--eval",
            "cv:3",
            "--tracking-uri",
            &dead,
            "--experiment",
            &experiment,
        ],
        &env,
    ));
    assert!(
        done.stderr.contains("unreachable") && done.stderr.contains("bciops runs sync"),
        "{}",
        done.stderr
    );
    let entries: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
    assert_eq!(entries.len(), 1);
    // Still down: sync names the run and why, keeps it, and exits 1.
    let done = fails(
        bciops_in(tmp.path(), &["runs", "sync"], &env),
        1,
        "cannot reach MLflow",
    );
    assert!(done.stderr.contains("not replayed"), "{}", done.stderr);
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 1);

    let Some((uri, python)) = mlflow() else {
        return;
    };
    // A second journaled run whose server is up: it is replayed although the first run's
    // server is still down (sync stopped at the first failure before).
    let other = ok(bciops_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&t.epochs),
            "--out",
            "m2",
            "--eval",
            "cv:3",
            "--tracking-uri",
            &dead,
            "--experiment",
            &unique("journal-other"),
        ],
        &env,
    ));
    drop(other);
    let second = std::fs::read_dir(&journal)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("entry.json"))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let text = std::fs::read_to_string(&second)
        .unwrap()
        .replace(&dead, &uri);
    std::fs::write(&second, text).unwrap();
    let done = fails(
        bciops_in(tmp.path(), &["runs", "sync", "--json"], &env),
        1,
        "1 of 2 journaled runs failed",
    );
    let report = json(&done.stdout);
    assert_eq!(report["synced"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");

    let synced = json(
        &ok(bciops_in(
            tmp.path(),
            &["runs", "sync", "--tracking-uri", &uri, "--json"],
            &env,
        ))
        .stdout,
    );
    let run_id = synced["synced"][0]["run_id"].as_str().unwrap().to_owned();
    let out = mlflow_python(
        &python,
        &uri,
        r#"
import sys, mlflow
runs = mlflow.search_runs(experiment_names=[sys.argv[1]], output_format="list")
assert len(runs) == 1, runs
r = runs[0]
assert r.info.run_id == sys.argv[2], (r.info.run_id, sys.argv[2])
assert r.info.status == "FINISHED", r.info.status
assert r.data.params["evaluation"] == "cv:3"
hist = mlflow.MlflowClient().get_metric_history(r.info.run_id, "fold_accuracy")
print(sorted(m.step for m in hist), sorted(a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id)))
"#,
        &[&experiment, &run_id],
    );
    assert_eq!(
        out.trim(),
        "[0, 1, 2] ['metrics.json', 'model', 'report.html']"
    );
    // Replayed runs leave the journal.
    let left: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty());
}

#[test]
fn authentication_failure_exits_2_without_echoing_secrets() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let server = fixed_server(401, "{\"error_code\": \"UNAUTHENTICATED\"}", 4);
    let done = fails(
        bciops_in(
            tmp.path(),
            &[
                "train",
                "--data",
                s(&t.epochs),
                "--out",
                "m",
                "--tracking-uri",
                &server,
            ],
            &[("MLFLOW_TRACKING_TOKEN", "tok-sekrit-123")],
        ),
        2,
        "authentication failed",
    );
    assert!(!done.stderr.contains("sekrit"), "{}", done.stderr);
    assert!(
        !tmp.path().join("m").exists(),
        "training must not start with broken tracking"
    );
    // Credentials in the URL are not echoed either.
    let server = fixed_server(403, "", 4);
    let with_password = server.replace("http://", "http://alice:pw-sekrit-9@");
    let done = fails(
        bciops_in(
            tmp.path(),
            &[
                "compare-register",
                "--model",
                s(&t.model),
                "--name",
                "x",
                "--registry-uri",
                &with_password,
            ],
            &[],
        ),
        2,
        "authentication failed",
    );
    assert!(!done.stderr.contains("sekrit"), "{}", done.stderr);
}

#[test]
fn wrong_uris_are_clear_errors() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let args = |uri: &str| {
        vec![
            "train".to_owned(),
            "--data".into(),
            s(&t.epochs).into(),
            "--out".into(),
            "m".into(),
            "--tracking-uri".into(),
            uri.to_owned(),
        ]
    };
    let run = |uri: &str| {
        let a = args(uri);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        bciops_in(tmp.path(), &a, &[])
    };
    fails(
        run("ftp://host/x"),
        2,
        "unsupported tracking URI scheme `ftp`",
    );
    fails(run("http://"), 2, "is not a URL");
    // Something that answers, but not as MLflow does.
    let web = fixed_server(404, "<html>not here</html>", 4);
    fails(run(&web), 2, "is this an MLflow server URL?");
}

#[test]
fn train_run_is_what_mlflow_sees() {
    let Some((uri, python)) = mlflow() else {
        return;
    };
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let experiment = unique("train");
    let epochs = tmp.path().join("epochs");
    let model = tmp.path().join("model");
    let env = [
        ("MLFLOW_TRACKING_URI", uri.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", experiment.as_str()),
    ];
    ok(bciops_in(
        tmp.path(),
        &[
            "preprocess",
            "--input",
            s(&t.dir.join("raw")),
            "--out",
            s(&epochs),
        ],
        &env,
    ));
    let start = std::time::Instant::now();
    let done = ok(bciops_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&epochs),
            "--out",
            s(&model),
            "--eval",
            "cv:4",
            "--kernel",
            "linear",
            "--seed",
            "11",
            "--run-id-out",
            "rid",
        ],
        &env,
    ));
    eprintln!(
        "train with MLflow tracking: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        done.stderr.contains(&format!("recorded at {uri}")),
        "{}",
        done.stderr
    );
    let rid = std::fs::read_to_string(tmp.path().join("rid"))
        .unwrap()
        .trim()
        .to_owned();
    let dl = tmp.path().join("downloaded");
    let out = mlflow_python(
        &python,
        &uri,
        r#"
import sys, json, mlflow
exp, rid, dst = sys.argv[1:4]
runs = mlflow.search_runs(experiment_names=[exp], filter_string="params.seed = '11'", output_format="list")
assert [r.info.run_id for r in runs] == [rid], runs
r = runs[0]
c = mlflow.MlflowClient()
prep = mlflow.search_runs(experiment_names=[exp], filter_string="tags.`bciops.step` = 'preprocess'", output_format="list")
assert len(prep) == 1
mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="model", dst_path=dst)
print(json.dumps({
  "params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags, "status": r.info.status,
  "folds": [[m.step, m.value] for m in c.get_metric_history(rid, "fold_accuracy")],
  "prep_params": prep[0].data.params, "prep_tags": prep[0].data.tags,
  "artifacts": sorted(a.path for a in c.list_artifacts(rid)),
}))
"#,
        &[&experiment, &rid, s(&dl)],
    );
    let seen = json(&out);
    let metrics = json(&std::fs::read_to_string(model.join("metrics.json")).unwrap());
    assert_eq!(seen["status"], "FINISHED");
    assert_eq!(seen["params"]["kernel"], "linear");
    assert_eq!(seen["params"]["evaluation"], "cv:4");
    // Exactly the value of metrics.json (MLflow stores doubles).
    assert_eq!(seen["metrics"]["accuracy"], metrics["accuracy"]);
    let folds: Vec<(i64, f64)> = seen["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let expected: Vec<(i64, f64)> = metrics["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fold"].as_i64().unwrap(), f["accuracy"].as_f64().unwrap()))
        .collect();
    assert_eq!(folds, expected);
    let sha = json(&std::fs::read_to_string(model.join("model.json")).unwrap())["dataset"]
        ["sha256"]
        .clone();
    assert_eq!(seen["tags"]["bciops.dataset_sha256"], sha);
    assert_eq!(seen["prep_tags"]["bciops.dataset_sha256"], sha);
    assert_eq!(seen["prep_params"]["filter.order"], "4");
    assert_eq!(
        seen["artifacts"],
        serde_json::json!(["metrics.json", "model", "report.html"])
    );
    // download_artifacts returns the model directory byte for byte. MLflow 3's client
    // resolves `runs:/ID/model` to the run's logged model of that name and writes its
    // `registered_model_meta` note beside the files.
    let mut downloaded = files(&dl.join("model"));
    downloaded.remove("registered_model_meta");
    assert_eq!(downloaded, files(&model));
}
