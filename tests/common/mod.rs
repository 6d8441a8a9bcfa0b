//! Shared helpers for the integration tests: run the real binary, find fixtures and Python.
#![allow(dead_code)]

pub mod s3;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A run of the `bciops` binary, fluent in the style of just's test builder.
pub struct Run {
    cmd: Command,
}

pub fn bciops<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    // Tests that are not about tracking record no runs (the default store would be
    // ./bciops-store in the checkout); tests/tracking.rs and tests/registry.rs opt back in.
    // Nor W&B offline runs (tests/wandb.rs sets `WANDB_MODE` itself).
    cmd.args(args)
        .env("NO_PROGRESS", "1")
        .env("BCIOPS_NO_TRACK", "1")
        .env_remove("WANDB_MODE");
    Run { cmd }
}

/// What a finished run printed.
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Sets an environment variable of the child process.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn run(mut self) -> Done {
        let Output {
            status,
            stdout,
            stderr,
        } = self.cmd.output().expect("run bciops");
        Done {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and asserts exit code 0.
    pub fn success(self) -> Done {
        let done = self.run();
        assert_eq!(
            done.code, 0,
            "stderr:\n{}\nstdout:\n{}",
            done.stderr, done.stdout
        );
        done
    }

    /// Runs and asserts the exit code, and that stderr is one `error:` line holding `needle`.
    pub fn fails(self, code: i32, needle: &str) -> Done {
        let done = self.run();
        assert_eq!(done.code, code, "stderr:\n{}", done.stderr);
        assert!(
            done.stderr.contains(needle),
            "`{needle}` not in stderr:\n{}",
            done.stderr
        );
        assert!(!done.stderr.contains("panicked"), "panic:\n{}", done.stderr);
        done
    }
}

/// The shared reference fixtures: `../shared/fixtures` beside the checkout, or
/// `$BCIOPS_FIXTURES`. Missing fixtures fail the test: they are part of the project's contract.
pub fn fixtures() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if beside.is_dir() {
        return beside;
    }
    match std::env::var_os("BCIOPS_FIXTURES") {
        Some(p) if Path::new(&p).is_dir() => PathBuf::from(p),
        _ => {
            panic!("reference fixtures not found: expected ../shared/fixtures or $BCIOPS_FIXTURES")
        }
    }
}

/// A Python with NumPy, scipy and MNE (`$BCIOPS_PYTHON`, set by scripts/test.sh). Without it a
/// test returns None and says so, except under CI, where the missing peer is a failure.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("BCIOPS_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_PYTHON is not set under CI: run the tests through scripts/test.sh")
        }
        None => {
            eprintln!("skipping the Python cross-check: BCIOPS_PYTHON is not set (scripts/test.sh sets it)");
            None
        }
    }
}

/// Runs a Python snippet with `args` as `sys.argv[1:]`; returns stdout, panicking on failure.
pub fn run_python(python: &Path, code: &str, args: &[&Path]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .env("MNE_LOGGING_LEVEL", "ERROR")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Synthetic subject 1 written to `dir/raw` (`synth` also given `synth_args`) and
/// preprocessed into `dir/out` (`preprocess` also given `preprocess_args`); returns the
/// epochs' path. The set-up of every test that needs a dataset to train, tune or serve on.
pub fn synth_epochs(
    dir: &Path,
    out: &str,
    synth_args: &[&str],
    preprocess_args: &[&str],
) -> PathBuf {
    let raw = dir.join("raw");
    let epochs = dir.join(out);
    let mut synth = vec!["synth", "--out", raw.to_str().unwrap(), "--subjects", "1"];
    synth.extend_from_slice(synth_args);
    bciops(synth).success();
    let mut preprocess = vec![
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        epochs.to_str().unwrap(),
    ];
    preprocess.extend_from_slice(preprocess_args);
    bciops(preprocess).success();
    epochs
}

/// A small epochs dataset in `dir/data` (synthetic subject 1, 12 trials per class, from
/// `dir/raw`), for tests that need one to train or serve on; returns its path.
pub fn small_epochs(dir: &Path) -> PathBuf {
    synth_epochs(dir, "data", &["--trials-per-class", "12"], &[])
}

/// A small model in `dir/model` (linear kernel, 2-fold CV) trained on one run of synthetic
/// subject 1 in `dir/epochs`, for tests that serve or attack a model; returns both paths.
pub fn small_model(dir: &Path) -> (PathBuf, PathBuf) {
    let epochs = synth_epochs(
        dir,
        "epochs",
        &["--trials-per-class", "12", "--runs", "1"],
        &[],
    );
    let model = dir.join("model");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--kernel",
        "linear",
        "--eval",
        "cv:2",
    ])
    .success();
    (epochs, model)
}
