//! `bciops serve --model models:/NAME@ALIAS`: the server follows a registry alias as
//! `compare-register` moves it, on the embedded registry and on a real MLflow server.

mod common;
mod tracking_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracking_support::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `compare-register` of `model` as `name`; returns the JSON decision.
fn compare_register(dir: &Path, model: &Path, name: &str, registry: &str) -> Value {
    let out = ok(bciops_in(
        dir,
        &[
            "compare-register",
            "--model",
            s(model),
            "--name",
            name,
            "--registry-uri",
            registry,
            "--json",
        ],
        &[],
    ))
    .stdout;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A running `bciops serve` whose temporary directory is `tmpdir` (so its download cache can
/// be inspected); killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    http: reqwest::blocking::Client,
}

impl Server {
    fn start(args: &[&str], tmpdir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("TMPDIR", tmpdir)
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_REGISTRY_URI")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start bciops serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `listening on` line:\n{}", log.lock().unwrap()));
        let server = Server {
            child,
            addr,
            log,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        server.wait_until("ready", |s| s.get("/readyz").0 == 200);
        server
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    fn get_json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn metrics(&self) -> String {
        self.get("/metrics").1
    }

    fn reloads(&self) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("bciops_model_reloads_total "))
            .and_then(|v| v.parse().ok())
            .expect("bciops_model_reloads_total")
    }

    fn wait_until(&self, what: &str, ok: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; server log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit code.
    fn stop(&mut self) -> i32 {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The version subdirectories of the server's download cache under `tmpdir`.
fn cached_versions(tmpdir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for cache in std::fs::read_dir(tmpdir).unwrap() {
        let cache = cache.unwrap();
        if !cache
            .file_name()
            .to_string_lossy()
            .starts_with("bciops-serve-")
        {
            continue;
        }
        for v in std::fs::read_dir(cache.path()).unwrap() {
            out.push(v.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// Registers a first model, serves the alias, promotes a better one and waits for the server
/// to follow: the flow on any registry.
fn follows_the_alias(registry: &str, name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    variant(&trained().model, &first, 0.70);
    variant(&trained().model, &second, 0.80);
    let d = compare_register(tmp.path(), &first, name, registry);
    assert_eq!(
        (&d["decision"], &d["version"]),
        (&"promoted".into(), &1.into())
    );

    let reference = format!("models:/{name}@champion");
    let mut server = Server::start(
        &[
            "--model",
            &reference,
            "--registry-uri",
            registry,
            "--poll-interval",
            "200ms",
        ],
        &tmpdir,
    );
    let meta = server.get_json(&format!("/v2/models/{name}"));
    assert_eq!(meta["versions"], serde_json::json!(["1"]), "{meta}");
    assert_eq!(server.get_json("/readyz")["version"], "1");
    assert!(
        server.metrics().contains(&format!(
            "bciops_model_info{{name=\"{name}\",version=\"1\"}} 1"
        )),
        "{}",
        server.metrics()
    );
    let reloads = server.reloads();
    assert_eq!(cached_versions(&tmpdir), ["1"]);

    let d = compare_register(tmp.path(), &second, name, registry);
    assert_eq!(
        (&d["decision"], &d["version"]),
        (&"promoted".into(), &2.into())
    );
    server.wait_until("version 2", |s| s.get_json("/readyz")["version"] == "2");
    let meta = server.get_json(&format!("/v2/models/{name}"));
    assert_eq!(meta["versions"], serde_json::json!(["2"]), "{meta}");
    let metrics = server.metrics();
    assert!(
        metrics.contains(&format!(
            "bciops_model_info{{name=\"{name}\",version=\"2\"}} 1"
        )),
        "{metrics}"
    );
    assert!(server.reloads() > reloads, "{metrics}");
    // The old version's download is removed once the new one serves; the cache at exit.
    assert_eq!(cached_versions(&tmpdir), ["2"]);
    assert_eq!(server.stop(), 0);
    assert_eq!(cached_versions(&tmpdir), Vec::<String>::new());

    // A fixed version stays where it is.
    let pinned = Server::start(
        &[
            "--model",
            &format!("models:/{name}/1"),
            "--registry-uri",
            registry,
            "--name",
            "pinned",
        ],
        &tmpdir,
    );
    assert_eq!(server_version(&pinned), "1");
    assert_eq!(pinned.get_json("/readyz")["model"], "pinned");
}

fn server_version(server: &Server) -> String {
    server.get_json("/readyz")["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn serve_follows_a_local_registry_alias() {
    let tmp = tempfile::tempdir().unwrap();
    let store: PathBuf = tmp.path().join("store");
    follows_the_alias(s(&store), "bci");
}

#[test]
fn serve_follows_an_mlflow_registry_alias() {
    let Some((uri, _python)) = mlflow() else {
        return;
    };
    let start = Instant::now();
    follows_the_alias(&uri, &unique("serve"));
    eprintln!(
        "MLflow: register, serve, promote, follow, pinned serve: {:.2} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn unknown_references_exit_2_before_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let model = tmp.path().join("m");
    variant(&trained().model, &model, 0.7);
    compare_register(tmp.path(), &model, "bci", s(&store));
    let serve = |reference: &str, extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--model",
            reference,
            "--addr",
            "127.0.0.1:0",
            "--registry-uri",
            s(&store),
        ];
        args.extend_from_slice(extra);
        bciops_in(tmp.path(), &args, &[])
    };
    let done = fails(
        serve("models:/bci@nosuch", &[]),
        2,
        &format!(
            "models:/bci@nosuch in {}: registered model `bci` has no alias `nosuch`",
            store.display()
        ),
    );
    assert!(!done.stderr.contains("listening on"), "{}", done.stderr);
    fails(
        serve("models:/other@champion", &[]),
        2,
        "registered model `other` does not exist",
    );
    fails(serve("models:/bci/9", &[]), 2, "`bci`");
    fails(serve("models:/bci", &[]), 2, "is not a model reference");
    fails(
        serve("models:/a b@champion", &[]),
        2,
        "pass `--name` to serve",
    );
    // Registry flags with a model directory are a mistake, not silently ignored.
    fails(
        serve(s(&model), &[]),
        2,
        "`--registry-uri` applies only to a `models:/` reference",
    );
}
