//! `bciops pipeline run`: the local DAG runner runs each step as a bciops subcommand, caches
//! unchanged steps by the content of their inputs, and summarises the run. The cache tests stop
//! after `train` (`--until train`); the end-to-end tests run every step of a mode.

mod common;

use common::bciops;
use serde_json::Value;

/// A small synthetic subject, so a run takes seconds.
const SMALL: [&str; 6] = [
    "--set",
    "data.synth.subjects=1",
    "--set",
    "data.synth.trials_per_class=12",
    "--set",
    "train.eval=cv:3",
];

fn run(run_dir: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--until", "train"];
    args.extend(extra);
    run_all(run_dir, &args)
}

/// Every step of the configured mode.
fn run_all(run_dir: &str, extra: &[&str]) -> Value {
    let mut args = vec!["pipeline", "run", "--json", "--run-dir", run_dir];
    args.extend(SMALL);
    args.extend(extra);
    let done = bciops(&args).success();
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {}", done.stdout))
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn statuses(summary: &Value) -> Vec<(String, String)> {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of(summary: &Value, step: &str) -> String {
    statuses(summary)
        .into_iter()
        .find(|(s, _)| s == step)
        .unwrap_or_else(|| panic!("no step `{step}` in {summary}"))
        .1
}

#[test]
fn runs_steps_then_reuses_unchanged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let rd = run_dir.to_str().unwrap();

    let first = run(rd, &[]);
    assert_eq!(
        statuses(&first),
        [
            ("synth", "ran"),
            ("preprocess", "ran"),
            ("tune", "skipped"),
            ("tune-merge", "skipped"),
            ("train", "ran"),
            ("compare-register", "skipped"),
            ("deploy", "skipped"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(first["cache_hits"], 0);
    // Each step is the subcommand a container runs, with its outputs in the run directory.
    let train = &first["steps"][4]["command"];
    assert_eq!(train[0], "bciops");
    assert_eq!(train[1], "train");
    let model = run_dir.join("train/model");
    assert!(model.join("metrics.json").is_file());
    assert!(run_dir.join("preprocess/dataset/X.npy").is_file());
    assert_eq!(first["outputs"]["train.model"], model.to_str().unwrap());

    // Nothing changed: every step that ran is reused.
    let second = run(rd, &[]);
    assert_eq!(second["cache_hits"], 3, "{second}");
    for step in ["synth", "preprocess", "train"] {
        assert_eq!(status_of(&second, step), "cached");
    }

    // A train parameter changed: only train runs again.
    let third = run(rd, &["--set", "train.seed=7"]);
    assert_eq!(status_of(&third, "synth"), "cached");
    assert_eq!(status_of(&third, "preprocess"), "cached");
    assert_eq!(status_of(&third, "train"), "ran");

    // The dataset changed behind the runner's back: preprocess runs again, and since it
    // restores the same content, train's cached result is still valid.
    std::fs::write(run_dir.join("preprocess/dataset/trials.csv"), "x").unwrap();
    let fourth = run(rd, &["--set", "train.seed=7"]);
    assert_eq!(status_of(&fourth, "synth"), "cached");
    assert_eq!(status_of(&fourth, "preprocess"), "ran");
    assert_eq!(status_of(&fourth, "train"), "cached");

    // --no-cache runs everything.
    let fifth = run(rd, &["--no-cache"]);
    assert_eq!(fifth["cache_hits"], 0);
    assert_eq!(status_of(&fifth, "synth"), "ran");

    // A file a user put into a step's output is not deleted: the step refuses (issue 16).
    std::fs::write(run_dir.join("preprocess/dataset/notes.txt"), "mine").unwrap();
    let mut args = vec![
        "pipeline",
        "run",
        "--run-dir",
        rd,
        "--until",
        "train",
        "--no-cache",
    ];
    args.extend(SMALL);
    bciops(&args).fails(2, "notes.txt");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("preprocess/dataset/notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn default_run_promotes_then_rejects_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let store = dir.path().join("store");
    let set_store = format!("registry.uri={}", store.display());
    let extra = ["--set", set_store.as_str()];

    // First run: no champion yet, so the model is registered as version 1 and promoted, and
    // deploy smoke-tests it.
    let first = run_all(rd, &extra);
    assert_eq!(
        statuses(&first),
        pairs(&[
            ("synth", "ran"),
            ("preprocess", "ran"),
            ("tune", "skipped"),
            ("tune-merge", "skipped"),
            ("train", "ran"),
            ("compare-register", "ran"),
            ("deploy", "ran"),
        ])
    );
    assert_eq!(first["decision"], "promoted", "{first}");
    assert_eq!(first["registered_version"], 1);
    assert_eq!(first["champion_version"], 1);
    assert_eq!(first["registry"]["alias"], "champion");
    assert!(run_dir.join("deploy/predictions").exists());
    assert_eq!(
        std::fs::read_to_string(run_dir.join("compare-register/decision")).unwrap(),
        "promoted"
    );
    // The alias is in the registry a server reads.
    let models = bciops([
        "models",
        "list",
        "bciops-mi",
        "--registry-uri",
        store.to_str().unwrap(),
    ])
    .success();
    assert!(
        models.stdout.contains("version 1 @champion"),
        "{}",
        models.stdout
    );

    // Second run: everything up to train is reused; compare-register asks the registry again
    // (never cached) and the same model does not beat itself, so nothing is deployed.
    let second = run_all(rd, &extra);
    assert_eq!(
        statuses(&second),
        pairs(&[
            ("synth", "cached"),
            ("preprocess", "cached"),
            ("tune", "skipped"),
            ("tune-merge", "skipped"),
            ("train", "cached"),
            ("compare-register", "ran"),
            ("deploy", "skipped"),
        ])
    );
    assert_eq!(second["cache_hits"], 3);
    assert_eq!(second["decision"], "rejected", "{second}");
    assert_eq!(second["registered_version"], Value::Null);
    assert_eq!(second["champion_version"], 1);
}

/// Issue 16: a `pipeline run` stopped after compare-register promoted its model (here: the
/// promotion done by hand, as the killed step had done it) or during deploy is finished by the
/// next run: the champion is this model, so deploy runs, instead of "rejected, unchanged".
#[test]
fn a_run_stopped_after_its_promotion_deploys_on_the_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let store = dir.path().join("store");
    let set_store = format!("registry.uri={}", store.display());
    let extra = ["--set", set_store.as_str()];

    // Stopped after train; the promotion happens as compare-register did it before the kill.
    run(rd, &extra);
    let model = run_dir.join("train/model");
    bciops([
        "compare-register",
        "--model",
        model.to_str().unwrap(),
        "--name",
        "bciops-mi",
        "--registry-uri",
        store.to_str().unwrap(),
    ])
    .success();
    let rerun = run_all(rd, &extra);
    assert_eq!(status_of(&rerun, "compare-register"), "ran");
    assert_eq!(status_of(&rerun, "deploy"), "ran", "{rerun}");
    assert_eq!(rerun["decision"], "promoted", "{rerun}");
    assert_eq!(rerun["registry"]["champion_is_candidate"], true);

    // Stopped during deploy: its output never completed.
    std::fs::remove_dir_all(run_dir.join("deploy")).unwrap();
    let rerun = run_all(rd, &extra);
    assert_eq!(status_of(&rerun, "deploy"), "ran", "{rerun}");

    // Once deployed, the same model is rejected again and nothing is deployed.
    let again = run_all(rd, &extra);
    assert_eq!(again["decision"], "rejected", "{again}");
    assert_eq!(status_of(&again, "deploy"), "skipped");
}

/// Issue 16: killing `pipeline run` left its current step running and writing into the run
/// directory. Its steps now die with it, even under `kill -9`.
#[test]
fn steps_stop_when_the_runner_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut args = vec![
        "pipeline".to_owned(),
        "run".to_owned(),
        "--run-dir".to_owned(),
        run_dir.display().to_string(),
    ];
    // Enough data that synth takes a while.
    args.extend(
        [
            "--set",
            "data.synth.subjects=9",
            "--set",
            "data.synth.trials_per_class=72",
        ]
        .map(String::from),
    );
    let mut runner = std::process::Command::new(env!("CARGO_BIN_EXE_bciops"))
        .args(&args)
        .env("BCIOPS_NO_TRACK", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = format!("BCIOPS_RUNNER_PID={}", runner.id());
    let steps = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let env = std::fs::read(e.path().join("environ")).ok()?;
                env.split(|b| *b == 0)
                    .any(|v| v == marker.as_bytes())
                    .then_some(pid)
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while steps().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no step started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    // A synth step of this size runs for several seconds; the kernel stops it at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !steps().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "steps {:?} outlived the runner",
            steps()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn tune_mode_runs_shards_then_merges() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let summary = run_all(
        rd,
        &[
            "--set",
            "mode=tune",
            "--set",
            "tune.shards=2",
            "--set",
            "tune.max_trials=4",
            "--set",
            "tune.eval=cv:3",
            "--set",
            "tune.jobs=2",
        ],
    );
    assert_eq!(
        statuses(&summary),
        pairs(&[
            ("synth", "ran"),
            ("preprocess", "ran"),
            ("tune[1/2]", "ran"),
            ("tune[2/2]", "ran"),
            ("tune-merge", "ran"),
            ("train", "skipped"),
            ("compare-register", "skipped"),
            ("deploy", "skipped"),
        ])
    );
    // Shards are 1-based, as `tune --shard I/N` wants.
    let shard = &summary["steps"][2]["command"];
    let args: Vec<&str> = shard
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--shard", "1/2"]), "{args:?}");
    let merged = run_dir.join("tune-merge/sweep");
    assert_eq!(
        summary["outputs"]["tune-merge.sweep"],
        merged.to_str().unwrap()
    );
    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("best.json")).unwrap()).unwrap();
    assert!(best.is_object(), "{best}");
    // The merged table holds both shards' trials: 4 in all.
    let trials: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("trials.json")).unwrap())
            .unwrap();
    let n = trials
        .as_array()
        .or_else(|| trials["trials"].as_array())
        .map(Vec::len);
    assert_eq!(n, Some(4), "{trials}");
}

#[test]
fn bad_runs_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("run");
    let rd = rd.to_str().unwrap();
    bciops(["pipeline", "run", "--run-dir", rd, "--until", "serve"]).fails(2, "`--until serve`");
    bciops([
        "pipeline",
        "run",
        "--run-dir",
        rd,
        "--set",
        "train.params.kernel=cubic",
        "--set",
        "data.synth.subjects=1",
        "--set",
        "data.synth.trials_per_class=6",
    ])
    // Checked against the family's declaration when the config is read, before any step runs.
    .fails(2, "train parameter `kernel` = `cubic`");
    bciops([
        "pipeline",
        "run",
        "--run-dir",
        rd,
        "--set",
        "preprocess.order=x",
    ])
    .fails(2, "order");
}
