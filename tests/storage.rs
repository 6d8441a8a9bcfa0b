//! Object storage through a real S3-compatible server (moto, started by
//! scripts/services/10-moto.sh): `preprocess` and `train` read and write `s3://` and give the
//! same bytes as a local run; missing buckets and keys, half-written and tampered directories
//! are refused with messages that name bucket and key and never the secret.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bciops, Run};

/// A secret no message may show.
const SECRET: &str = "bciops-test-secret-Zq81xv";

/// Where moto listens and a Python with boto3, or None (skip) outside CI.
fn s3() -> Option<(String, String)> {
    match (
        std::env::var("BCIOPS_S3_ENDPOINT"),
        std::env::var("BCIOPS_S3_PYTHON"),
    ) {
        (Ok(endpoint), Ok(python)) => Some((endpoint, python)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_S3_ENDPOINT is not set under CI: run the tests through scripts/test.sh")
        }
        _ => {
            eprintln!(
                "skipping: BCIOPS_S3_ENDPOINT is not set (scripts/services/10-moto.sh sets it)"
            );
            None
        }
    }
}

/// bciops pointed at moto with dummy credentials.
fn s3_bciops(endpoint: &str, args: &[&str]) -> Run {
    bciops(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
}

/// Runs boto3 against moto (an independent S3 client): `code` sees `s3` and `sys.argv`.
fn boto(endpoint: &str, python: &str, code: &str, args: &[&str]) -> String {
    let program = format!(
        "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='{endpoint}', \
         aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n{code}"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn create_bucket(endpoint: &str, python: &str, bucket: &str) {
    boto(
        endpoint,
        python,
        "s3.create_bucket(Bucket=sys.argv[1])",
        &[bucket],
    );
}

/// Downloads every object under `prefix/` into `dest` with boto3.
fn download(endpoint: &str, python: &str, bucket: &str, prefix: &str, dest: &Path) {
    boto(
        endpoint,
        python,
        "import os\n\
         b, p, d = sys.argv[1:4]\n\
         for o in s3.list_objects_v2(Bucket=b, Prefix=p + '/')['Contents']:\n\
         \x20   rel = o['Key'][len(p) + 1:]\n\
         \x20   os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)\n\
         \x20   s3.download_file(b, o['Key'], os.path.join(d, rel))\n",
        &[bucket, prefix, dest.to_str().unwrap()],
    );
}

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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
        &[
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
