//! Helpers shared by the tracking and registry tests: a trained model made once per test
//! binary, model variants with other metrics, the MLflow server from scripts/services, and
//! tiny HTTP servers that answer with a fixed status.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{bciops, Done};

/// Runs bciops in `dir` with extra environment variables (and none of MLflow's own, so the
/// developer's settings cannot leak into a test).
pub fn bciops_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args(args).current_dir(dir).env("NO_PROGRESS", "1");
    for k in [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "BCIOPS_JOURNAL",
        "BCIOPS_NO_TRACK",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bciops");
    Done {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts success and returns the run.
pub fn ok(done: Done) -> Done {
    assert_eq!(
        done.code, 0,
        "stderr:\n{}\nstdout:\n{}",
        done.stderr, done.stdout
    );
    done
}

/// Asserts the exit code and a one-line `error:` holding `needle`.
pub fn fails(done: Done, code: i32, needle: &str) -> Done {
    assert_eq!(done.code, code, "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains(needle),
        "`{needle}` not in stderr:\n{}",
        done.stderr
    );
    assert!(done.stderr.contains("error: "), "{}", done.stderr);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    done
}

/// Synthetic recordings → epochs → an untracked model, made once per test binary.
pub struct Trained {
    pub dir: PathBuf,
    pub epochs: PathBuf,
    pub model: PathBuf,
}

pub fn trained() -> &'static Trained {
    static ONCE: OnceLock<Trained> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let raw = dir.join("raw");
        let epochs = dir.join("epochs");
        let model = dir.join("model");
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        bciops([
            "synth",
            "--out",
            &s(&raw),
            "--subjects",
            "1",
            "--trials-per-class",
            "24",
            "--runs",
            "2",
        ])
        .success();
        bciops([
            "preprocess",
            "--input",
            &s(&raw),
            "--out",
            &s(&epochs),
            "--no-track",
        ])
        .success();
        bciops([
            "train",
            "--data",
            &s(&epochs),
            "--out",
            &s(&model),
            "--eval",
            "cv:3",
            "--kernel",
            "linear",
            "--no-track",
        ])
        .success();
        Trained { dir, epochs, model }
    })
}

/// A copy of `src` whose metrics.json says `accuracy` (checksums updated, so it verifies).
pub fn variant(src: &Path, dst: &Path, accuracy: f64) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let path = dst.join("metrics.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["accuracy"] = serde_json::json!(accuracy);
    let text = serde_json::to_string_pretty(&m).unwrap();
    std::fs::write(&path, &text).unwrap();
    let sums = std::fs::read_to_string(dst.join("checksums.sha256")).unwrap();
    let digest = sha256_hex(text.as_bytes());
    let sums: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  metrics.json") {
                format!("{digest}  metrics.json\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dst.join("checksums.sha256"), sums).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file of a directory tree, relative path → sha256 of its bytes (so a failed
/// comparison prints digests, not megabytes).
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The MLflow server started by scripts/services/20-mlflow.sh and a Python with its client.
/// Unset: None with a message, except under CI, where it is a failure.
pub fn mlflow() -> Option<(String, PathBuf)> {
    match (
        std::env::var("BCIOPS_MLFLOW_URI"),
        std::env::var_os("BCIOPS_MLFLOW_PYTHON"),
    ) {
        (Ok(uri), Some(py)) => Some((uri, PathBuf::from(py))),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_MLFLOW_URI is not set under CI: run the tests through scripts/test.sh")
        }
        _ => {
            eprintln!("skipping the MLflow check: BCIOPS_MLFLOW_URI is not set (scripts/test.sh starts MLflow)");
            None
        }
    }
}

/// Runs a Python snippet with MLflow's client against `uri`; `args` become `sys.argv[1:]`.
/// Returns stdout, panicking on failure.
pub fn mlflow_python(python: &Path, uri: &str, code: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .env("MLFLOW_TRACKING_URI", uri)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or earlier test run on the shared server) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A loopback HTTP server answering every request with `status` and `body`, for at most
/// `requests` requests (then it stops by itself). Returns its base URL.
pub fn fixed_server(status: u16, body: &'static str, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}")
}
