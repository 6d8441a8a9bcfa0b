//! `bciops tune` and `bciops tune merge` driven through the real binary.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::bciops;
use serde_json::Value;

/// Synthetic recordings (one subject, left/right) → epochs.
fn dataset(dir: &Path, trials_per_class: &str) -> PathBuf {
    common::synth_epochs(
        dir,
        "epochs",
        &["--trials-per-class", trials_per_class, "--runs", "2"],
        &[],
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `bciops tune --data --sweep --out` plus `extra`, not yet run.
fn tune_cmd(data: &Path, sweep: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "tune",
        "--data",
        data.to_str().unwrap(),
        "--sweep",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bciops(args)
}

fn tune(data: &Path, sweep: &Path, out: &Path, extra: &[&str]) -> common::Done {
    let mut args = extra.to_vec();
    if !extra.contains(&"--eval") {
        args.extend(["--eval", "cv:3"]);
    }
    tune_cmd(data, sweep, out, &args).success()
}

/// Trial id → (status, metric), the part of a sweep's result that must not depend on timing.
fn outcomes(out: &Path) -> BTreeMap<String, (String, Option<f64>, Vec<f64>)> {
    json(&out.join("trials.json"))["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                (
                    t["status"].as_str().unwrap().to_owned(),
                    t["accuracy"].as_f64(),
                    t["fold_accuracy"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect(),
                ),
            )
        })
        .collect()
}

const GRID: &str = "\
name: small grid
method: grid
metric: {name: accuracy, goal: maximize}
parameters:
  n_components: {values: [2, 4, 60]}
  C: {values: [0.5, 1.0]}
  kernel: {values: [linear, rbf]}
";

#[test]
fn grid_sweep_writes_every_output_and_best_json_trains() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "20");
    let sweep = write(dir.path(), "grid.yaml", GRID);
    let out = dir.path().join("sweep");
    let done = tune(&data, &sweep, &out, &["--json"]);
    let summary: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(summary["trials"], 12);
    assert_eq!(
        summary["failed"], 4,
        "60 components on 22 channels cannot work"
    );
    assert_eq!(summary["complete"], 8);
    // The top table is printed.
    assert!(done.stderr.contains("rank"), "{}", done.stderr);

    let trials = json(&out.join("trials.json"));
    let rows = trials["trials"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for r in rows {
        if r["values"]["n_components"] == 60 {
            assert_eq!(r["status"], "failed");
            assert!(r["error"].as_str().unwrap().contains("`60`"), "{r}");
        } else {
            assert_eq!(r["status"], "ok");
            assert_eq!(r["fold_accuracy"].as_array().unwrap().len(), 3);
            let acc = r["accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc));
        }
    }
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("trial_id,index,status,metric,accuracy,kappa,fold_1_accuracy"));
    assert!(header.ends_with(",C,kernel,n_components"), "{header}");
    assert_eq!(lines.count(), 12);

    // The same sweep given inline (`--sweep-text`, how a compiled Kubeflow pipeline passes
    // it) finds the same trials and scores.
    let inline = dir.path().join("inline");
    bciops([
        "tune",
        "--data",
        data.to_str().unwrap(),
        "--sweep-text",
        GRID,
        "--out",
        inline.to_str().unwrap(),
        "--eval",
        "cv:3",
    ])
    .success();
    let inline_rows = json(&inline.join("trials.json"))["trials"].clone();
    for (a, b) in rows.iter().zip(inline_rows.as_array().unwrap()) {
        assert_eq!(
            (&a["trial_id"], &a["accuracy"]),
            (&b["trial_id"], &b["accuracy"])
        );
    }

    // best.json names the best complete trial, and train takes it as is.
    let best = json(&out.join("best.json"));
    let best_acc = best["value"].as_f64().unwrap();
    for r in rows {
        if let Some(a) = r["accuracy"].as_f64() {
            assert!(a <= best_acc, "{a} > best {best_acc}");
        }
    }
    assert_eq!(best["params"]["c"], best["values"]["C"]);
    let model = dir.path().join("model");
    let trained = bciops([
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--params",
        out.join("best.json").to_str().unwrap(),
        "--eval",
        "cv:3",
        "--json",
    ])
    .success();
    let metrics: Value = serde_json::from_str(&trained.stdout).unwrap();
    // Same folds (same seed), same parameters: train's CV equals the sweep's score.
    let diff = (metrics["accuracy"].as_f64().unwrap() - best_acc).abs();
    assert!(
        diff < 1e-9,
        "train {} vs sweep {best_acc}",
        metrics["accuracy"]
    );

    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Sweep small grid"));
    for p in ["C", "kernel", "n_components"] {
        assert!(report.contains(&format!("accuracy against {p}")), "{p}");
    }
    assert!(report.contains("Failures"));
}

#[test]
fn a_killed_sweep_resumes_without_rerunning_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "20");
    let sweep = write(dir.path(), "grid.yaml", GRID);
    let straight = dir.path().join("straight");
    tune(&data, &sweep, &straight, &[]);

    // Stop after 5 trials (as a kill would), then resume.
    let out = dir.path().join("resumed");
    tune(&data, &sweep, &out, &["--max-trials", "5"]);
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 1 + 5);
    // A kill can tear the last line: it is ignored and that trial runs again.
    std::fs::write(
        out.join("journal.jsonl"),
        format!("{journal}{{\"id\":\"torn"),
    )
    .unwrap();
    let done = tune(&data, &sweep, &out, &["--json"]);
    let summary: Value = serde_json::from_str(&done.stdout).unwrap();
    // The 5 earlier trials include 60-component failures, which run again.
    let first_failed = 1; // grid order: C=0.5, kernel=linear, n_components 2, 4, 60, ...
    assert_eq!(summary["resumed"], 5 - first_failed);
    assert_eq!(summary["ran"], 12 - (5 - first_failed));
    assert_eq!(outcomes(&out), outcomes(&straight));

    // Another sweep's journal is refused (exit 2), unless --restart.
    let other = write(dir.path(), "other.yaml", &GRID.replace("0.5", "0.25"));
    tune_cmd(&data, &other, &out, &[]).fails(2, "belongs to another sweep");
}

#[test]
fn random_and_bayes_are_deterministic_and_shards_merge_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "20");
    let random = write(
        dir.path(),
        "random.yaml",
        "method: random\nrun_cap: 6\nparameters:\n  C: {distribution: log_uniform_values, min: 0.1, max: 10}\n  n_components: {values: [2, 4, 6]}\n",
    );
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    tune(&data, &random, &a, &["--jobs", "1"]);
    tune(&data, &random, &b, &["--jobs", "2"]);
    assert_eq!(outcomes(&a), outcomes(&b), "threads change nothing");
    assert_eq!(outcomes(&a).len(), 6);

    // Shards 1/2 and 2/2 split the same trials; merged, they are the unsharded sweep.
    let s1 = dir.path().join("s1");
    let s2 = dir.path().join("s2");
    tune(&data, &random, &s1, &["--shard", "1/2"]);
    tune(&data, &random, &s2, &["--shard", "2/2"]);
    let (o1, o2) = (outcomes(&s1), outcomes(&s2));
    assert_eq!(o1.len() + o2.len(), 6);
    assert!(
        o1.keys().all(|k| !o2.contains_key(k)),
        "shards are disjoint"
    );
    let merged = dir.path().join("merged");
    bciops([
        "tune",
        "merge",
        s1.to_str().unwrap(),
        s2.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ])
    .success();
    assert_eq!(outcomes(&merged), outcomes(&a));
    assert_eq!(
        json(&merged.join("best.json"))["trial_id"],
        json(&a.join("best.json"))["trial_id"]
    );

    let bayes = write(
        dir.path(),
        "bayes.yaml",
        "method: bayes\nmetric: {name: kappa, goal: maximize}\nrun_cap: 14\nparameters:\n  C: {distribution: log_uniform_values, min: 0.01, max: 100}\n  kernel: {values: [linear, rbf]}\n",
    );
    let b1 = dir.path().join("b1");
    let b2 = dir.path().join("b2");
    tune(&data, &bayes, &b1, &[]);
    tune(&data, &bayes, &b2, &[]);
    let ob = outcomes(&b1);
    assert_eq!(ob.len(), 14);
    assert_eq!(ob, outcomes(&b2), "bayes is deterministic for a seed");
    assert_eq!(json(&b1.join("best.json"))["metric"], "kappa");
}

#[test]
fn hyperband_stops_hopeless_trials_after_their_first_folds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "20");
    // C spans 1e-4..1e2: tiny C underfits, so some trials trail the rest early.
    let sweep = write(
        dir.path(),
        "hb.yaml",
        "method: grid\nearly_terminate: {type: hyperband, min_iter: 1, eta: 2}\nparameters:\n  C: {values: [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}\n  n_components: {values: [2, 4, 6, 8, 10]}\n  kernel: {values: [linear, rbf]}\n",
    );
    let out = dir.path().join("hb");
    // Batches of 32: the first batch sets the bar, later ones are judged against it.
    tune(&data, &sweep, &out, &["--eval", "cv:4"]);
    let trials = json(&out.join("trials.json"));
    let rows = trials["trials"].as_array().unwrap();
    let pruned: Vec<&Value> = rows.iter().filter(|r| r["status"] == "pruned").collect();
    assert!(!pruned.is_empty(), "nothing was stopped early");
    for r in &pruned {
        let folds = r["fold_accuracy"].as_array().unwrap().len();
        assert!(folds < 4, "{r}");
        assert!([1, 2].contains(&folds), "rungs are 1 and 2 folds: {r}");
    }
    // Pruned trials never become the best.
    let best = json(&out.join("best.json"));
    let best_row = rows.iter().find(|r| r["id"] == best["trial_id"]).unwrap();
    assert_eq!(best_row["status"], "ok");
}

#[test]
fn preprocessing_parameters_preprocess_the_sources_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "20");
    let sweep = write(
        dir.path(),
        "band.yaml",
        "method: grid\nparameters:\n  l_freq: {values: [8, 12]}\n  tmax: {values: [2.0, 3.0]}\n  n_components: {value: 4}\n",
    );
    let out = dir.path().join("band");
    tune(&data, &sweep, &out, &[]);
    let rows = json(&out.join("trials.json"))["trials"].clone();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:?}");
    // Each distinct preprocessing is cached once (the dataset's own is not: 8 Hz, 3 s is it).
    let cached = std::fs::read_dir(out.join("cache")).unwrap().count();
    assert_eq!(cached, 3);
    let best = json(&out.join("best.json"));
    assert!(best.get("preprocess").is_some() || best["values"]["l_freq"] == 8);
}

#[test]
fn bad_sweeps_and_data_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "10");
    let out = dir.path().join("out");
    let run = |sweep: &Path| {
        bciops([
            "tune",
            "--data",
            data.to_str().unwrap(),
            "--sweep",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let bad = write(
        dir.path(),
        "bad.yaml",
        "method: annealing\nparameters:\n  C: {min: 2, max: 1}\n  kernel: {values: [rbf], probabilities: [0.5]}\n",
    );
    let done = run(&bad).fails(2, "problems");
    assert!(done.stderr.contains("method"), "{}", done.stderr);
    assert!(
        done.stderr.contains("`min` (2) must be below `max` (1)"),
        "{}",
        done.stderr
    );

    let metric = write(
        dir.path(),
        "metric.yaml",
        "method: grid\nmetric: {name: f1, goal: maximize}\nparameters:\n  C: {values: [1]}\n",
    );
    run(&metric).fails(2, "metric `f1` does not exist");

    let empty = write(dir.path(), "empty.yaml", "method: grid\nparameters: {}\n");
    run(&empty).fails(2, "empty");

    let unknown = write(
        dir.path(),
        "unknown.yaml",
        "method: grid\nparameters:\n  alpha: {values: [1]}\n",
    );
    run(&unknown).fails(2, "unknown sweep parameter `alpha`");

    let typo = write(
        dir.path(),
        "typo.yaml",
        "method: grid\nparameters:\n  kernel: {values: [rbf, rfb]}\n",
    );
    run(&typo).fails(2, "rfb");

    let good = write(
        dir.path(),
        "good.yaml",
        "method: grid\nparameters:\n  C: {values: [1]}\n",
    );
    tune_cmd(&data, &good, &out, &["--shard", "3/2"]).fails(2, "shard `3/2`");

    // A dataset with one class.
    let raw = dir.path().join("raw");
    let one = dir.path().join("one");
    bciops([
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
        "--classes",
        "left",
    ])
    .success();
    tune_cmd(&one, &good, &out, &[]).fails(2, "one class");
}

#[test]
fn a_sweep_is_a_run_and_its_trials_are_child_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), "10");
    let sweep = write(
        dir.path(),
        "grid.yaml",
        "method: grid\nparameters:\n  C: {values: [0.5, 1.0]}\n  n_components: {values: [2, 60]}\n",
    );
    let store = dir.path().join("store");
    let out = dir.path().join("out");
    tune_cmd(
        &data,
        &sweep,
        &out,
        &["--eval", "cv:3", "--tracking-uri", store.to_str().unwrap()],
    )
    .env("BCIOPS_NO_TRACK", "0")
    .success();
    let listed = bciops(["runs", "list", "--store", store.to_str().unwrap(), "--json"])
        .success()
        .stdout;
    let runs: Value = serde_json::from_str(&listed).unwrap();
    let runs = runs.as_array().unwrap();
    let parents: Vec<&Value> = runs.iter().filter(|r| r["name"] == "tune").collect();
    assert_eq!(parents.len(), 1, "{runs:?}");
    let parent_id = parents[0]["run_id"].as_str().unwrap();
    let children: Vec<&Value> = runs
        .iter()
        .filter(|r| r["tags"]["mlflow.parentRunId"] == parent_id)
        .collect();
    assert_eq!(children.len(), 4);
    let failed = children
        .iter()
        .filter(|r| r["tags"]["bciops.trial_status"] == "failed")
        .count();
    assert_eq!(failed, 2, "60 components fail");
}
