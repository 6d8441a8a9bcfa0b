//! `bciops serve --model models:/NAME@ALIAS`: the server follows a registry alias as
//! `compare-register` moves it, on the embedded registry and on a real MLflow server.

mod common;
mod tracking_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::serve::Server;
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

/// `bciops serve --addr 127.0.0.1:0 ARGS…` with its temporary files under `tmpdir` and no
/// MLflow from the environment, ready.
fn start(args: &[&str], tmpdir: &Path) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("TMPDIR", tmpdir)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_REGISTRY_URI");
    Server::spawn(cmd)
}

/// `bciops_model_reloads_total`.
fn reload_count(server: &Server) -> f64 {
    server
        .metric("bciops_model_reloads_total ")
        .expect("bciops_model_reloads_total")
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
    let mut server = start(
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
    // The versioned routes know the one version served: the registry's number.
    let versioned = |v: &str| server.get(&format!("/v2/models/{name}/versions/{v}/ready"));
    assert_eq!(versioned("1").0, 200);
    let (code, body) = versioned("2");
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("has no version `2` here; this server serves version `1`"),
        "{body}"
    );
    assert_eq!(server.get_json("/readyz")["version"], "1");
    assert!(
        server.get("/metrics").1.contains(&format!(
            "bciops_model_info{{name=\"{name}\",version=\"1\"}} 1"
        )),
        "{}",
        server.get("/metrics").1
    );
    let reloads = reload_count(&server);
    assert_eq!(cached_versions(&tmpdir), ["1"]);

    let d = compare_register(tmp.path(), &second, name, registry);
    assert_eq!(
        (&d["decision"], &d["version"]),
        (&"promoted".into(), &2.into())
    );
    server.wait_until("version 2", |s| s.get_json("/readyz")["version"] == "2");
    // The reload finishes a moment after the new model answers: it removes the old download,
    // then counts the reload and relabels the metrics. Wait for that end, not only the swap.
    let info = format!("bciops_model_info{{name=\"{name}\",version=\"2\"}} 1");
    server.wait_until("the metrics of version 2", |s| {
        s.get("/metrics").1.contains(&info) && reload_count(s) > reloads
    });
    let meta = server.get_json(&format!("/v2/models/{name}"));
    assert_eq!(meta["versions"], serde_json::json!(["2"]), "{meta}");
    assert_eq!(versioned("2").0, 200);
    assert_eq!(versioned("1").0, 404);
    let meta = server.get_json(&format!("/v2/models/{name}/versions/2"));
    assert_eq!(meta["versions"], serde_json::json!(["2"]), "{meta}");
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(&format!(
            "bciops_model_info{{name=\"{name}\",version=\"2\"}} 1"
        )),
        "{metrics}"
    );
    assert!(reload_count(&server) > reloads, "{metrics}");
    // The old version's download is removed once the new one serves; the cache at exit.
    assert_eq!(cached_versions(&tmpdir), ["2"]);
    assert_eq!(server.stop(), 0);
    assert_eq!(cached_versions(&tmpdir), Vec::<String>::new());

    // A fixed version stays where it is.
    let pinned = start(
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
    fails(serve("models:/a b@champion", &[]), 2, "hint: --name NAME");
    // Registry flags with a model directory are a mistake, not silently ignored.
    fails(
        serve(s(&model), &[]),
        2,
        "`--registry-uri` applies only to a `models:/` reference",
    );
}
