//! Nothing lost (issue 16): `--out` replaces only what bciops wrote there, never a file, never
//! the current directory or a directory holding an input; concurrent writers serialise; a
//! model directory holds only what its checksums list, and a signing key makes tampering
//! visible. Also the probe's small items: a window shorter than a sample, an SVM `c` the
//! solver cannot resolve, one-line usage errors, a sweep whose every trial failed.

mod common;

use std::path::{Path, PathBuf};

use common::{bciops, small_epochs};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory holding a user's file.
fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("victim");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("precious.txt"), "thesis").unwrap();
    v
}

fn assert_kept(v: &Path) {
    assert_eq!(
        std::fs::read_to_string(v.join("precious.txt")).unwrap(),
        "thesis"
    );
}

fn train(data: &Path, out: &Path) -> common::Run {
    bciops([
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--eval",
        "cv:3",
        "--no-report",
    ])
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn train_preprocess_and_fetch_never_replace_a_users_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_epochs(tmp.path());
    let raw = tmp.path().join("raw");
    let v = victim(tmp.path());

    // The probe's case: every writer of a directory refuses, before doing the work.
    let done = train(&data, &v).fails(2, "precious.txt");
    // One error line, and the flag that would replace it anyway: the core names the
    // setting, the command line its flag.
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", done.stderr);
    assert!(lines[0].starts_with("error: "), "{}", done.stderr);
    assert_eq!(lines[1], "hint: --force");
    assert_kept(&v);
    bciops(["preprocess", "--input", s(&raw), "--out", s(&v)]).fails(2, "precious.txt");
    assert_kept(&v);
    let model = tmp.path().join("model");
    train(&data, &model).success();
    let store = tmp.path().join("store");
    bciops([
        "compare-register",
        "--model",
        s(&model),
        "--name",
        "m",
        "--registry-uri",
        s(&store),
    ])
    .success();
    let fetch = |out: &Path, force: bool| {
        let mut args = vec![
            "models",
            "fetch",
            "models:/m@champion",
            "--out",
            s(out),
            "--registry-uri",
            s(&store),
        ];
        if force {
            args.push("--force");
        }
        bciops(args)
    };
    fetch(&v, false).fails(2, "precious.txt");
    assert_kept(&v);
    assert_eq!(
        names(tmp.path())
            .iter()
            .filter(|n| n.starts_with('.'))
            .count(),
        0
    );

    // Its own output of the same kind is replaced; one of another kind is not.
    train(&data, &model).success();
    fetch(&model, false).success();
    train(&model, &data).fails(2, "not part of a bciops model directory");
    bciops(["preprocess", "--input", s(&raw), "--out", s(&model)])
        .fails(2, "not part of a bciops epochs dataset");
    // A user's file added to a model directory makes it the user's.
    std::fs::write(model.join("notes.txt"), "mine").unwrap();
    train(&data, &model).fails(2, "notes.txt");
    assert!(model.join("notes.txt").exists());

    // --force replaces a foreign directory...
    bciops([
        "train",
        "--data",
        s(&data),
        "--out",
        s(&v),
        "--eval",
        "cv:3",
        "--no-report",
        "--force",
    ])
    .success();
    assert!(!v.join("precious.txt").exists());
    assert!(v.join("model.json").exists());
    // ...but never the current directory, a parent of it, or a directory holding an input.
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("keep.txt"), "x").unwrap();
    bciops([
        "train",
        "--data",
        s(&data),
        "--out",
        ".",
        "--eval",
        "cv:3",
        "--force",
    ])
    .current_dir(&cwd)
    .fails(2, "current directory");
    bciops([
        "train",
        "--data",
        s(&data),
        "--out",
        "..",
        "--eval",
        "cv:3",
        "--force",
    ])
    .current_dir(&cwd)
    .fails(2, "current directory");
    assert!(cwd.join("keep.txt").exists());
    bciops([
        "train",
        "--data",
        s(&data),
        "--out",
        s(tmp.path()),
        "--eval",
        "cv:3",
        "--force",
    ])
    .fails(2, "holds the input");
    bciops([
        "preprocess",
        "--input",
        s(&raw),
        "--out",
        s(&raw),
        "--force",
    ])
    .fails(2, "holds the input");
    assert!(data.join("X.npy").exists() && raw.read_dir().unwrap().count() > 0);
}

#[test]
fn an_output_path_that_is_a_file_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_epochs(tmp.path());
    let file = tmp.path().join("model");
    std::fs::write(&file, "keep").unwrap();
    // Twice: the first refusal must not have moved the file aside (it did, as `.model.old`,
    // and every later write then failed with "Not a directory").
    for _ in 0..2 {
        train(&data, &file).fails(2, "is a file");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    assert!(!tmp.path().join(".model.old").exists());
}

#[test]
fn concurrent_writers_to_one_output_serialise() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_epochs(tmp.path());
    let out = tmp.path().join("model");
    let children: Vec<_> = (0..4)
        .map(|seed| {
            std::process::Command::new(env!("CARGO_BIN_EXE_bciops"))
                .args([
                    "train",
                    "--data",
                    s(&data),
                    "--out",
                    s(&out),
                    "--eval",
                    "cv:3",
                    "--no-report",
                    "--seed",
                ])
                .arg(seed.to_string())
                .env("BCIOPS_NO_TRACK", "1")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One whole model, and no staging or aside copy left beside it.
    bciops(["predict", "--model", s(&out), "--data", s(&data)]).success();
    let left: Vec<String> = names(tmp.path())
        .into_iter()
        .filter(|n| n.starts_with(".model"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn model_directories_hold_only_what_they_list_and_signatures_catch_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_epochs(tmp.path());
    let model = tmp.path().join("model");
    train(&data, &model).success();
    let predict = |model: &Path| bciops(["predict", "--model", s(model), "--data", s(&data)]);

    // An unlisted file is refused, naming it.
    std::fs::write(model.join("extra.bin"), "x").unwrap();
    predict(&model).fails(2, "extra.bin");
    std::fs::remove_file(model.join("extra.bin")).unwrap();
    predict(&model).success();

    // A checksums file that is not UTF-8 is a bad model (exit 2), not an I/O failure.
    let sums = model.join("checksums.sha256");
    let good = std::fs::read(&sums).unwrap();
    std::fs::write(&sums, [0xff, 0xfe, 0x00]).unwrap();
    predict(&model).fails(2, "UTF-8");
    std::fs::write(&sums, &good).unwrap();

    // Signed with a key from the environment; a consistent tamper (a file and its checksum
    // line edited together) passes the checksums but not the signature.
    let signed = tmp.path().join("signed");
    train(&data, &signed)
        .env("BCIOPS_MODEL_KEY", "k1")
        .success();
    assert!(signed.join("signature.hmac-sha256").exists());
    predict(&signed).env("BCIOPS_MODEL_KEY", "k1").success();
    predict(&signed)
        .env("BCIOPS_MODEL_KEY", "k2")
        .fails(2, "another key");
    predict(&model)
        .env("BCIOPS_MODEL_KEY", "k1")
        .fails(2, "must be signed");
    let metrics = signed.join("metrics.json");
    let edited = std::fs::read_to_string(&metrics).unwrap().replacen(
        "\"accuracy\": 0.",
        "\"accuracy\": 1.",
        1,
    );
    std::fs::write(&metrics, &edited).unwrap();
    let old_line = "  metrics.json";
    let sums_text = std::fs::read_to_string(signed.join("checksums.sha256")).unwrap();
    let fixed: String = sums_text
        .lines()
        .map(|l| {
            if l.ends_with(&old_line) {
                format!("{}{old_line}\n", sha256_hex(edited.as_bytes()))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(signed.join("checksums.sha256"), fixed).unwrap();
    // Checksums guard against accidents only: without a key the consistent edit loads.
    predict(&signed).success();
    predict(&signed)
        .env("BCIOPS_MODEL_KEY", "k1")
        .fails(2, "was changed");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn small_bad_inputs_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_epochs(tmp.path());
    let raw = tmp.path().join("raw");

    // A window shorter than one sample panicked (exit 101).
    for window in ["0,0.001", "0.5,0.501"] {
        bciops([
            "preprocess",
            "--input",
            s(&raw),
            "--out",
            s(&tmp.path().join("w")),
            "--window",
            window,
        ])
        .fails(2, &format!("`{window}`"));
    }

    // An SVM `c` beyond what the solver resolves ran 45 s before failing.
    for c in ["1e300", "1e12"] {
        let started = std::time::Instant::now();
        let done = bciops([
            "train",
            "--data",
            s(&data),
            "--out",
            s(&tmp.path().join("m")),
            "--c",
            c,
        ])
        .fails(2, "svm `c`");
        assert!(started.elapsed().as_secs() < 10, "{}", done.stderr);
    }

    // A usage error is one line.
    let done = bciops(["train", "--data", s(&data), "--no-such-flag"]).run();
    assert_eq!(done.code, 2);
    assert_eq!(done.stderr.trim().lines().count(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("--no-such-flag"), "{}", done.stderr);

    // A sweep whose every trial failed exits 2, saying why, and keeps its outputs.
    let sweep = tmp.path().join("sweep.yaml");
    std::fs::write(
        &sweep,
        "method: grid\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  n_components: {values: [60, 80]}\n",
    )
    .unwrap();
    let out = tmp.path().join("tuned");
    bciops([
        "tune",
        "--data",
        s(&data),
        "--sweep",
        s(&sweep),
        "--out",
        s(&out),
    ])
    .fails(2, "every one of the 2 trials failed");
    assert!(out.exists());
}
