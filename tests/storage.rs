//! Object storage through a real S3-compatible server (moto, started by
//! scripts/services/10-moto.sh): `preprocess` and `train` read and write `s3://` and give the
//! same bytes as a local run; missing buckets and keys, half-written and tampered directories
//! are refused with messages that name bucket and key and never the secret.

mod common;

use std::path::Path;

use common::s3::{boto, create_bucket, download, s3, s3_bciops, SECRET};
use common::{bciops, Run};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// meta.json with the sources' locations reduced to their file names (the one field that
/// says where the data was read from).
fn meta_without_locations(path: &Path) -> serde_json::Value {
    let mut meta = json(path);
    for source in meta["sources"].as_array_mut().unwrap() {
        let name =
            |v: &serde_json::Value| v.as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        source["path"] = name(&source["path"]).into();
        if let Some(labels) = source.get_mut("labels").filter(|l| l.is_object()) {
            labels["path"] = name(&labels["path"]).into();
        }
    }
    meta
}

fn synth_args(out: &str) -> Vec<String> {
    [
        "synth",
        "--out",
        out,
        "--subjects",
        "1",
        "--trials-per-class",
        "10",
        "--runs",
        "2",
        "--seed",
        "5",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn preprocess_and_train_through_s3_give_the_bytes_of_a_local_run() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-roundtrip";
    create_bucket(&endpoint, &python, bucket);
    let tmp = tempfile::tempdir().unwrap();
    let local = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let remote = |name: &str| format!("s3://{bucket}/runs/{name}");

    // Local run.
    bciops(synth_args(&local("raw"))).success();
    bciops([
        "preprocess",
        "-i",
        &local("raw"),
        "-o",
        &local("epochs"),
        "-q",
    ])
    .success();
    bciops([
        "train",
        "-d",
        &local("epochs"),
        "-o",
        &local("model"),
        "--eval",
        "cv:3",
        "--no-report",
        "-q",
    ])
    .success();

    // The same steps through the bucket; the recordings are written there by synth.
    let args = synth_args(&remote("raw"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s3_bciops(&endpoint, &args).success();
    let done = s3_bciops(
        &endpoint,
        [
            "preprocess",
            "-i",
            &remote("raw"),
            "-o",
            &remote("epochs"),
            "-q",
        ],
    )
    .success();
    assert!(done.stderr.contains(&remote("epochs")), "{}", done.stderr);
    s3_bciops(
        &endpoint,
        [
            "train",
            "-d",
            &remote("epochs"),
            "-o",
            &remote("model"),
            "--eval",
            "cv:3",
            "--no-report",
            "-q",
        ],
    )
    .success();
    let done = s3_bciops(
        &endpoint,
        [
            "predict",
            "-m",
            &remote("model"),
            "-d",
            &remote("epochs"),
            "-o",
            &remote("predictions.json"),
            "-q",
        ],
    )
    .success();
    assert!(done.stderr.contains("accuracy"), "{}", done.stderr);

    let got = tmp.path().join("from-s3");
    download(
        &endpoint,
        &python,
        bucket,
        "runs/epochs",
        &got.join("epochs"),
    );
    download(&endpoint, &python, bucket, "runs/model", &got.join("model"));
    let (l, r) = (tmp.path(), got.as_path());
    // The arrays and the trial table are byte for byte those of the local run.
    for name in ["X.npy", "y.npy", "trials.csv"] {
        assert_eq!(
            std::fs::read(l.join("epochs").join(name)).unwrap(),
            std::fs::read(r.join("epochs").join(name)).unwrap(),
            "epochs/{name} differs"
        );
    }
    // meta.json differs only where it records the sources' locations (s3:// URIs here).
    assert_eq!(
        meta_without_locations(&l.join("epochs/meta.json")),
        meta_without_locations(&r.join("epochs/meta.json"))
    );
    let remote_meta = json(&r.join("epochs/meta.json"));
    assert_eq!(
        remote_meta["sources"][0]["path"],
        format!("s3://{bucket}/runs/raw/A01E.gdf")
    );
    // The fitted model is identical; only the dataset reference (path, and the digest of a
    // meta.json that holds the path) and the creation time differ.
    let model = |dir: &Path| {
        let mut m = json(&dir.join("model/model.json"));
        m.as_object_mut().unwrap().remove("dataset");
        m
    };
    assert_eq!(model(l), model(r));
    assert_eq!(
        json(&r.join("model/model.json"))["dataset"]["path"],
        remote("epochs")
    );
    assert_eq!(
        std::fs::read(l.join("model/cv_predictions.csv")).unwrap(),
        std::fs::read(r.join("model/cv_predictions.csv")).unwrap()
    );
    let (ml, mr) = (
        json(&l.join("model/metrics.json")),
        json(&r.join("model/metrics.json")),
    );
    for key in ["accuracy", "kappa", "confusion", "recall", "n_trials"] {
        assert_eq!(ml[key], mr[key], "metrics.json `{key}`");
    }
    // The completion marker lists every file with its size and sha256.
    let marker = json(&r.join("epochs/_COMPLETE"));
    let files = marker["files"].as_object().unwrap();
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["X.npy", "meta.json", "trials.csv", "y.npy"]);
    assert_eq!(
        files["X.npy"]["size"].as_u64().unwrap(),
        std::fs::metadata(r.join("epochs/X.npy")).unwrap().len()
    );
}

#[test]
fn storage_errors_name_bucket_and_key_and_never_the_secret() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-errors";
    create_bucket(&endpoint, &python, bucket);
    let mut stderrs = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    bciops(synth_args(raw.to_str().unwrap())).success();
    let epochs = format!("s3://{bucket}/epochs");
    s3_bciops(
        &endpoint,
        [
            "preprocess",
            "-i",
            raw.to_str().unwrap(),
            "-o",
            &epochs,
            "-q",
        ],
    )
    .success();

    // A bucket that does not exist.
    let done = s3_bciops(
        &endpoint,
        [
            "train",
            "-d",
            "s3://no-such-bucket-q7/epochs",
            "-o",
            "s3://no-such-bucket-q7/m",
            "-q",
        ],
    )
    .fails(2, "bucket `no-such-bucket-q7` does not exist");
    stderrs.push(done.stderr);
    // A key that does not exist.
    let done = s3_bciops(
        &endpoint,
        [
            "preprocess",
            "-i",
            &format!("s3://{bucket}/raw/A09T.gdf"),
            "-o",
            "out",
            "-q",
        ],
    )
    .fails(2, &format!("no object `raw/A09T.gdf` in bucket `{bucket}`"));
    stderrs.push(done.stderr);
    let done = s3_bciops(
        &endpoint,
        [
            "train",
            "-d",
            &format!("s3://{bucket}/nothing-here"),
            "-o",
            "m",
            "-q",
        ],
    )
    .fails(
        2,
        &format!("nothing under key `nothing-here` in bucket `{bucket}`"),
    );
    stderrs.push(done.stderr);

    // A file changed after the directory was published is caught by the marker's digest.
    boto(
        &endpoint,
        &python,
        "s3.put_object(Bucket=sys.argv[1], Key='epochs/y.npy', Body=b'changed')",
        &[bucket],
    );
    let done = s3_bciops(
        &endpoint,
        [
            "train",
            "-d",
            &epochs,
            "-o",
            &format!("s3://{bucket}/m"),
            "-q",
        ],
    )
    .fails(2, "does not match the completion marker");
    assert!(
        done.stderr.contains(&format!("s3://{bucket}/epochs/y.npy")),
        "{}",
        done.stderr
    );
    stderrs.push(done.stderr);

    // Without its marker (a writer that died half-way) the directory is refused.
    boto(
        &endpoint,
        &python,
        "s3.delete_object(Bucket=sys.argv[1], Key='epochs/_COMPLETE')",
        &[bucket],
    );
    let done = s3_bciops(
        &endpoint,
        [
            "train",
            "-d",
            &epochs,
            "-o",
            &format!("s3://{bucket}/m"),
            "-q",
        ],
    )
    .fails(2, "half-written directory");
    assert!(
        done.stderr
            .contains(&format!("bucket `{bucket}`, key `epochs`")),
        "{}",
        done.stderr
    );
    stderrs.push(done.stderr);
    let done = s3_bciops(
        &endpoint,
        [
            "predict",
            "-m",
            &format!("s3://{bucket}/m"),
            "-d",
            &epochs,
            "-q",
        ],
    )
    .fails(2, "nothing under key `m`");
    stderrs.push(done.stderr);

    // A store that does not answer: a failure (1), naming the bucket, after a few retries.
    let done = bciops([
        "train",
        "-d",
        &format!("s3://{bucket}/epochs"),
        "-o",
        "m",
        "-q",
    ])
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    .env("AWS_ALLOW_HTTP", "true")
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", SECRET)
    .env("AWS_REGION", "us-east-1")
    .fails(1, &format!("bucket `{bucket}`"));
    stderrs.push(done.stderr);

    for stderr in &stderrs {
        assert!(!stderr.contains(SECRET), "the secret leaked:\n{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line:\n{stderr}");
    }
}

/// A model trained locally on a small synthetic set and published to `s3://BUCKET/KEY`.
fn train_to_s3(endpoint: &str, tmp: &Path, bucket: &str, key: &str) -> String {
    let raw = tmp.join("raw");
    let epochs = tmp.join("epochs");
    if !epochs.join("X.npy").is_file() {
        bciops(synth_args(raw.to_str().unwrap())).success();
        bciops([
            "preprocess",
            "-i",
            raw.to_str().unwrap(),
            "-o",
            epochs.to_str().unwrap(),
            "-q",
        ])
        .success();
    }
    let uri = format!("s3://{bucket}/{key}");
    s3_bciops(
        endpoint,
        [
            "train",
            "-d",
            epochs.to_str().unwrap(),
            "-o",
            &uri,
            "--eval",
            "cv:2",
            "--no-report",
            "-q",
        ],
    )
    .success();
    uri
}

fn parse(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn compare_register_takes_a_model_from_a_bucket_and_records_its_uri() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-compare";
    create_bucket(&endpoint, &python, bucket);
    let tmp = tempfile::tempdir().unwrap();
    let model = train_to_s3(&endpoint, tmp.path(), bucket, "models/a");
    let store = tmp.path().join("store");
    let decision = format!("s3://{bucket}/decision");
    let done = s3_bciops(
        &endpoint,
        [
            "compare-register",
            "--model",
            &model,
            "--name",
            "bci",
            "--registry-uri",
            store.to_str().unwrap(),
            "--decision-out",
            &decision,
            "--json",
        ],
    )
    .success();
    let d = parse(&done.stdout);
    assert_eq!(
        (d["decision"].as_str(), d["version"].as_u64()),
        (Some("promoted"), Some(1))
    );
    // The version records the bucket URI, not the temporary copy it was checked in.
    let version = json(&store.join("registry/bci/versions/1/version.json"));
    assert_eq!(version["source"], model.as_str());
    assert_eq!(version["tags"]["bciops.model_uri"], model.as_str());
    let copied = store.join("registry/bci/versions/1/files");
    assert!(copied.join("model.json").is_file());
    assert_eq!(
        boto(
            &endpoint,
            &python,
            "print(s3.get_object(Bucket=sys.argv[1], Key='decision')['Body'].read().decode())",
            &[bucket],
        )
        .trim(),
        "promoted"
    );

    // A model that is not there: exit 2, naming bucket and key.
    let done = s3_bciops(
        &endpoint,
        [
            "compare-register",
            "--model",
            &format!("s3://{bucket}/models/none"),
            "--name",
            "bci",
            "--registry-uri",
            store.to_str().unwrap(),
        ],
    )
    .fails(
        2,
        &format!("nothing under key `models/none` in bucket `{bucket}`"),
    );
    assert!(!done.stderr.contains(SECRET));
    assert_eq!(done.stderr.trim_end().lines().count(), 1, "{}", done.stderr);
}

/// compare-register into a registry on the bucket (no lock: conditional writes).
fn register_into(endpoint: &str, model: &str, name: &str, registry: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "compare-register",
        "--model",
        model,
        "--name",
        name,
        "--registry-uri",
        registry,
        "--json",
    ];
    args.extend_from_slice(extra);
    s3_bciops(endpoint, args)
}

/// A model name with characters that a bucket key must escape.
const RACE: &str = "bci 2a/race~1";

#[test]
fn a_registry_on_a_bucket_numbers_versions_and_moves_aliases_under_races() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-registry";
    create_bucket(&endpoint, &python, bucket);
    let tmp = tempfile::tempdir().unwrap();
    let model = train_to_s3(&endpoint, tmp.path(), bucket, "models/a");
    // A fresh prefix, so that a second run against the same server starts from nothing.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let store = format!("store-{nanos}");
    let registry = format!("s3://{bucket}/{store}");

    let first = parse(
        &register_into(&endpoint, &model, "bci", &registry, &[])
            .success()
            .stdout,
    );
    assert_eq!(
        (first["decision"].as_str(), first["version"].as_u64()),
        (Some("promoted"), Some(1))
    );
    // The same model again is no better: rejected, not registered.
    let same = parse(
        &register_into(&endpoint, &model, "bci", &registry, &[])
            .success()
            .stdout,
    );
    assert_eq!(
        (same["decision"].as_str(), same["version"].as_u64()),
        (Some("rejected"), None)
    );
    // With a negative margin it is promoted as version 2.
    let second = parse(
        &register_into(&endpoint, &model, "bci", &registry, &["--min-delta", "-1"])
            .success()
            .stdout,
    );
    assert_eq!(
        (second["decision"].as_str(), second["version"].as_u64()),
        (Some("promoted"), Some(2))
    );
    let resolved = s3_bciops(
        &endpoint,
        [
            "models",
            "resolve",
            "models:/bci@champion",
            "--registry-uri",
            &registry,
            "--json",
        ],
    )
    .success();
    assert_eq!(parse(&resolved.stdout)["version"], 2);
    let listed = parse(
        &s3_bciops(
            &endpoint,
            [
                "models",
                "list",
                "bci",
                "--registry-uri",
                &registry,
                "--json",
            ],
        )
        .success()
        .stdout,
    );
    let versions: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(listed[0]["tags"]["bciops.replaced_by"], "2");
    assert_eq!(listed[1]["source"], model.as_str());
    let fetched = tmp.path().join("fetched");
    s3_bciops(
        &endpoint,
        [
            "models",
            "fetch",
            "models:/bci/2",
            "--out",
            fetched.to_str().unwrap(),
            "--registry-uri",
            &registry,
        ],
    )
    .success();
    assert!(fetched.join("model.json").is_file());
    // The version's files are a published directory, with their completion marker.
    let marker = boto(
        &endpoint,
        &python,
        "print(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2] + '/registry/bci/versions/2/files/_COMPLETE')['Body'].read().decode())",
        &[bucket, &store],
    );
    assert!(marker.contains("model.json"), "{marker}");

    // Three registrations at once of a new name (one that needs escaping in a key), each
    // accepted whatever the champion (so each registers): three distinct numbers, and the
    // alias on one of them.
    let outcomes: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    register_into(&endpoint, &model, RACE, &registry, &["--min-delta", "-1"])
                        .success()
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| parse(&r.join().unwrap().stdout))
            .collect()
    });
    let mut numbers: Vec<u64> = outcomes
        .iter()
        .map(|d| d["version"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3], "{outcomes:?}");
    let champion = parse(
        &s3_bciops(
            &endpoint,
            [
                "models",
                "resolve",
                &format!("models:/{RACE}@champion"),
                "--registry-uri",
                &registry,
                "--json",
            ],
        )
        .success()
        .stdout,
    )["version"]
        .as_u64()
        .unwrap();
    assert!(
        outcomes
            .iter()
            .any(|d| d["decision"] == "promoted" && d["version"] == champion),
        "champion {champion}: {outcomes:?}"
    );
    let models = parse(
        &s3_bciops(
            &endpoint,
            ["models", "list", "--registry-uri", &registry, "--json"],
        )
        .success()
        .stdout,
    );
    let names: Vec<(&str, u64)> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["latest_version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("bci", 2), (RACE, 3)]);

    // A registry in a bucket that does not exist: exit 2, naming it.
    let done = register_into(
        &endpoint,
        &model,
        "bci",
        "s3://no-such-bucket-r4/store",
        &[],
    )
    .fails(2, "bucket `no-such-bucket-r4` does not exist");
    assert!(!done.stderr.contains(SECRET));
}

/// gs:// goes through the same code as s3://. No PyPI-installable GCS emulator speaks the XML
/// API that object_store's GCS client uses (see the README), so this checks what needs no
/// server: a service-account key with `gcs_base_url` and `disable_oauth` sends the requests
/// to that endpoint, and a store that does not answer is an error naming bucket and key that
/// never shows the key's secret.
#[test]
fn gs_uris_go_to_the_configured_endpoint_and_errors_keep_the_secret() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let key = serde_json::json!({
        "gcs_base_url": format!("http://127.0.0.1:{dead}"),
        "disable_oauth": true,
        "client_email": "bciops@example.invalid",
        "private_key": SECRET,
        "private_key_id": "k1",
    })
    .to_string();
    let done = bciops(["train", "-d", "gs://bciops-gcs/epochs", "-o", "m", "-q"])
        .env("GOOGLE_SERVICE_ACCOUNT_KEY", &key)
        .fails(1, "bucket `bciops-gcs`, key `epochs/_COMPLETE`");
    assert!(
        done.stderr.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains(SECRET), "{}", done.stderr);
    assert_eq!(done.stderr.trim_end().lines().count(), 1, "{}", done.stderr);
}

fn step_status(summary: &serde_json::Value, step: &str) -> String {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap_or_else(|| panic!("no step `{step}` in {summary}"))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn pipeline_run_reads_recordings_from_a_bucket_and_registers_into_one() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-pipeline";
    create_bucket(&endpoint, &python, bucket);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let raw = format!("s3://{bucket}/{nanos}/raw");
    let store = format!("s3://{bucket}/{nanos}/store");
    let synth = |seed: &str| {
        let mut args = synth_args(&raw);
        let at = args.iter().position(|a| a == "--seed").unwrap();
        args[at + 1] = seed.to_owned();
        s3_bciops(&endpoint, &args).success();
    };
    synth("5");
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let run = || {
        let done = s3_bciops(
            &endpoint,
            [
                "pipeline",
                "run",
                "--json",
                "--run-dir",
                run_dir.to_str().unwrap(),
                "--set",
                "data.source=uri",
                "--set",
                &format!("data.uri={raw}"),
                "--set",
                &format!("registry.uri={store}"),
                "--set",
                "train.eval=cv:3",
            ],
        )
        .success();
        parse(&done.stdout)
    };

    let first = run();
    for step in ["preprocess", "train", "compare-register", "deploy"] {
        assert_eq!(step_status(&first, step), "ran", "{step}: {first}");
    }
    assert_eq!(first["decision"], "promoted", "{first}");
    assert_eq!(first["registered_version"], 1);
    // Unchanged recordings on the bucket: preprocess and train are reused.
    let second = run();
    assert_eq!(step_status(&second, "preprocess"), "cached", "{second}");
    assert_eq!(step_status(&second, "train"), "cached", "{second}");
    assert_eq!(second["decision"], "rejected", "{second}");
    // New recordings under the same URI change the inputs' fingerprint: preprocess runs again.
    synth("6");
    let third = run();
    assert_eq!(step_status(&third, "preprocess"), "ran", "{third}");
    let resolved = s3_bciops(
        &endpoint,
        [
            "models",
            "resolve",
            "models:/bciops-mi@champion",
            "--registry-uri",
            &store,
            "--json",
        ],
    )
    .success();
    assert_eq!(
        parse(&resolved.stdout)["version"],
        third["champion_version"]
    );
}
