//! `bciops serve` driven through the real binary over HTTP: every endpoint, every error
//! answer, SIGHUP and polling reloads, SIGTERM draining, and a real Prometheus scraping it.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::bciops;
use common::s3::{boto, create_bucket, s3, s3_bciops, s3_env, SECRET};
use common::serve::Server;
use ndarray::{s, Array3};
use serde_json::{json, Value};

/// Two trained models (different seeds and kernels, so different versions) and trials to
/// send, built once for every test in this file.
struct Fixture {
    _tmp: tempfile::TempDir,
    model_a: PathBuf,
    model_b: PathBuf,
    /// The epochs both models were trained on.
    epochs: PathBuf,
    x: Array3<f32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let epochs = common::synth_epochs(
            tmp.path(),
            "epochs",
            &["--trials-per-class", "12", "--runs", "1"],
            &[],
        );
        let train = |name: &str, kernel: &str, seed: &str| {
            let out = tmp.path().join(name);
            bciops([
                "train",
                "--data",
                epochs.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--kernel",
                kernel,
                "--seed",
                seed,
                "--eval",
                "cv:2",
            ])
            .success();
            out
        };
        let model_a = train("model-a", "linear", "1");
        let model_b = train("model-b", "rbf", "2");
        let x: Array3<f32> = ndarray_npy::read_npy(epochs.join("X.npy")).unwrap();
        Fixture {
            model_a,
            model_b,
            epochs,
            x,
            _tmp: tmp,
        }
    })
}

/// A copy of `from` at `to` (replacing what was there, file by file, as an operator would).
fn copy_model(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn version_of(model: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(model.join("checksums.sha256")).unwrap();
    let hex = format!("{:x}", sha2::Sha256::digest(&bytes));
    hex[..12].to_owned()
}

/// `bciops serve --model MODEL --addr 127.0.0.1:0 EXTRA…`, ready.
fn start(model: &Path, extra: &[&str]) -> Server {
    start_env(model, extra, &[])
}

fn start_env(model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args([
        "serve",
        "--model",
        model.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ])
    .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::spawn(cmd)
}

/// `n` trials as the original's JSON payload: trials × channels × samples.
fn trials_json(x: &Array3<f32>, n: usize) -> Value {
    let trials: Vec<Vec<Vec<f32>>> = x
        .slice(s![..n, .., ..])
        .outer_iter()
        .map(|t| t.outer_iter().map(|c| c.to_vec()).collect())
        .collect();
    json!(trials)
}

fn f32_bytes(x: &Array3<f32>, n: usize) -> Vec<u8> {
    x.slice(s![..n, .., ..])
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn npy_bytes(x: &Array3<f32>, n: usize) -> Vec<u8> {
    use ndarray_npy::WriteNpyExt;
    let mut out = Vec::new();
    x.slice(s![..n, .., ..])
        .to_owned()
        .write_npy(&mut out)
        .unwrap();
    out
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` message in {v}"))
}

#[test]
fn every_endpoint_answers() {
    let f = fixture();
    let server = start(&f.model_a, &[]);
    let version = version_of(&f.model_a);
    assert!(server.log().contains("ready"), "{}", server.log());

    assert_eq!(server.get("/livez").0, 200);
    let (code, ready) = server.get("/readyz");
    assert_eq!(code, 200);
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["model"], "model-a");
    assert_eq!(ready["version"], version.as_str());
    assert_eq!(server.get("/v2/health/live").0, 200);
    assert_eq!(server.get("/v2/health/ready").0, 200);
    assert_eq!(server.get("/v2/models/model-a/ready").0, 200);
    let (code, meta) = server.get("/v2");
    assert_eq!(code, 200, "{meta}");
    let (code, meta) = server.get("/v2/models/model-a");
    assert_eq!(code, 200);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["versions"][0], version.as_str());
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 22, 750]));

    // The same three trials in every body format get the same labels.
    let (code, labels) = server.post_json("/classify", &trials_json(&f.x, 3));
    assert_eq!(code, 200, "{labels}");
    let labels = labels.as_array().unwrap().clone();
    assert_eq!(labels.len(), 3);
    assert!(
        labels.iter().all(|l| l == "left" || l == "right"),
        "{labels:?}"
    );
    let (code, npy) = server.post("/classify", "application/x-npy", npy_bytes(&f.x, 3));
    assert_eq!((code, npy.as_array().unwrap()), (200, &labels));
    let (code, raw) = server.post(
        "/classify?shape=3,22,750",
        "application/octet-stream",
        f32_bytes(&f.x, 3),
    );
    assert_eq!((code, raw.as_array().unwrap()), (200, &labels));
    let (code, raw) = server.post("/classify", "application/octet-stream", f32_bytes(&f.x, 3));
    assert_eq!(
        (code, raw.as_array().unwrap()),
        (200, &labels),
        "shape from the model"
    );
    let r = server
        .http
        .post(server.url("/classify"))
        .header("content-type", "application/octet-stream")
        .header("x-tensor-shape", "3,22,750")
        .body(f32_bytes(&f.x, 3))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let timing = r.headers()["server-timing"].to_str().unwrap().to_owned();
    assert!(timing.starts_with("parse;dur="), "{timing}");
    // One trial alone (channels × samples) is one trial.
    let one = trials_json(&f.x, 1)[0].clone();
    let (code, single) = server.post_json("/classify", &one);
    assert_eq!((code, &single[0]), (200, &labels[0]));

    // V2: flat FP32 data, and nested FP64 data.
    let flat: Vec<f32> = f.x.slice(s![..3, .., ..]).iter().copied().collect();
    let request = json!({ "id": "r1", "inputs": [{
        "name": "eeg", "shape": [3, 22, 750], "datatype": "FP32", "data": flat }] });
    let (code, out) = server.post_json("/v2/models/model-a/infer", &request);
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["model_name"], "model-a");
    assert_eq!(out["model_version"], version.as_str());
    assert_eq!(out["id"], "r1");
    assert_eq!(out["outputs"][0]["name"], "labels");
    assert_eq!(out["outputs"][0]["datatype"], "BYTES");
    assert_eq!(out["outputs"][0]["data"].as_array().unwrap(), &labels);
    assert_eq!(out["outputs"][1]["name"], "scores");
    assert_eq!(out["outputs"][1]["shape"], json!([3, 1]));
    // Two classes: a positive decision value means the second class, as scikit-learn's.
    for (score, label) in out["outputs"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&labels)
    {
        let want = if score.as_f64().unwrap() > 0.0 {
            "right"
        } else {
            "left"
        };
        assert_eq!(label, want);
    }
    let nested = json!({ "inputs": [{
        "name": "eeg", "shape": [3, 22, 750], "datatype": "FP64", "data": trials_json(&f.x, 3) }] });
    let (code, out) = server.post_json("/v2/models/model-a/infer", &nested);
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["outputs"][0]["data"].as_array().unwrap(), &labels);

    // The OpenAPI document names every route.
    let (code, doc) = server.get("/openapi.json");
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    for path in [
        "/classify",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }

    // Metrics: every documented name, with the requests just made counted.
    let (code, text) = server.get("/metrics");
    assert_eq!(code, 200);
    for name in [
        "bciops_requests_total",
        "bciops_request_duration_seconds",
        "bciops_inference_duration_seconds",
        "bciops_requests_in_flight",
        "bciops_model_info",
        "bciops_model_ready",
        "bciops_model_reloads_total",
        "bciops_model_reload_failures_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    assert_eq!(
        server.metric("bciops_requests_total{endpoint=\"/classify\",status=\"200\"}"),
        Some(6.0)
    );
    assert!(text.contains(&format!(
        "bciops_model_info{{name=\"model-a\",version=\"{version}\"}} 1"
    )));
    assert_eq!(server.metric("bciops_model_ready "), Some(1.0));
    assert_eq!(
        server.metric("bciops_inference_duration_seconds_count "),
        Some(8.0)
    );

    // A body over 1 MiB is predicted on the blocking pool, a lone smaller one on the runtime
    // worker that read it (`serve::work::Scheduler::blocking`): the labels are the same.
    let many = trials_json(&f.x, 8);
    assert!(serde_json::to_vec(&many).unwrap().len() > 1 << 20);
    let (code, all) = server.post_json("/classify", &many);
    assert_eq!(code, 200, "{all}");
    for (i, trial) in many.as_array().unwrap().iter().enumerate() {
        let (code, one) = server.post_json("/classify", &json!([trial]));
        assert_eq!((code, &one[0]), (200, &all[i]), "trial {i}");
    }
}

#[test]
fn bad_requests_get_a_json_error_and_the_right_status() {
    let f = fixture();
    let server = start_env(
        &f.model_a,
        &["--max-body-bytes", "1000000"],
        &[("BCIOPS_SERVE_PANIC_ROUTE", "1")],
    );
    let one = trials_json(&f.x, 1);
    let check = |(code, body): (u16, Value), want: u16, needle: &str| {
        assert_eq!(code, want, "{body}");
        let msg = error_of(&body);
        assert!(msg.contains(needle), "`{needle}` not in `{msg}`");
    };
    // Shape, channels, length, values.
    let mut short = one.clone();
    short[0][0].as_array_mut().unwrap().pop();
    check(server.post_json("/classify", &short), 400, "ragged");
    let mut fewer = one.clone();
    fewer[0].as_array_mut().unwrap().pop();
    check(server.post_json("/classify", &fewer), 400, "`21` channels");
    let shorter: Vec<Vec<f32>> = vec![vec![0.0; 700]; 22];
    check(
        server.post_json("/classify", &json!([shorter])),
        400,
        "`700` samples",
    );
    check(server.post_json("/classify", &json!([])), 400, "shape");
    check(server.post_json("/classify", &json!({"x": 1})), 400, "JSON");
    check(
        server.post_json("/classify", &json!([[["a"]]])),
        400,
        "JSON",
    );
    check(
        server.post("/classify", "application/json", b"[[[1, 2]".to_vec()),
        400,
        "JSON",
    );
    check(
        server.post("/classify", "application/json", b"[[[1e999]]]".to_vec()),
        400,
        "JSON",
    );
    let mut bytes = f32_bytes(&f.x, 1);
    bytes[400..404].copy_from_slice(&f32::NAN.to_le_bytes());
    check(
        server.post("/classify", "application/octet-stream", bytes),
        400,
        "finite",
    );
    let mut bytes = f32_bytes(&f.x, 1);
    bytes.pop();
    check(
        server.post("/classify", "application/octet-stream", bytes),
        400,
        "whole number",
    );
    check(
        server.post(
            "/classify?shape=2,22,750",
            "application/octet-stream",
            f32_bytes(&f.x, 1),
        ),
        400,
        "does not match",
    );
    check(
        server.post("/classify", "application/x-npy", b"not numpy".to_vec()),
        400,
        ".npy",
    );
    // Size, media type, routes, methods.
    // Too large: refused from the declared length, before the body is sent.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /classify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000001\r\n\r\n"
    )
    .unwrap();
    let (code, text) = read_response(stream);
    check(
        (code, serde_json::from_str(&text).unwrap()),
        413,
        "`1000000` byte",
    );
    check(
        server.post("/classify", "image/png", vec![1, 2, 3]),
        415,
        "image/png",
    );
    let r = server.http.get(server.url("/nowhere")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    check((404, r.json().unwrap()), 404, "/nowhere");
    let r = server.http.get(server.url("/classify")).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    check((405, r.json().unwrap()), 405, "method");
    let (code, body) = server.get("/v2/models/other");
    check((code, serde_json::from_str(&body).unwrap()), 404, "`other`");
    // V2 requests.
    let infer = "/v2/models/model-a/infer";
    check(
        server.post_json("/v2/models/other/infer", &json!({"inputs": []})),
        404,
        "`other`",
    );
    let flat: Vec<f32> = f.x.slice(s![..1, .., ..]).iter().copied().collect();
    let input = |datatype: &str, shape: Value| json!({ "name": "eeg", "shape": shape, "datatype": datatype, "data": flat });
    check(
        server.post_json(
            infer,
            &json!({"inputs": [input("INT8", json!([1, 22, 750]))]}),
        ),
        400,
        "`INT8`",
    );
    check(
        server.post_json(
            infer,
            &json!({"inputs": [input("FP32", json!([1, 22, 750])), input("FP32", json!([1, 22, 750]))]}),
        ),
        400,
        "`2` inputs",
    );
    check(
        server.post_json(
            infer,
            &json!({"inputs": [input("FP32", json!([1, 750, 22]))]}),
        ),
        400,
        "`750` channels",
    );
    check(
        server.post_json(
            infer,
            &json!({"inputs": [input("FP32", json!([2, 22, 750]))]}),
        ),
        400,
        "does not match",
    );
    check(server.post_json(infer, &json!({"outputs": []})), 400, "V2");
    // A panic inside a handler is a 500 with a message, and the server keeps serving.
    check(
        server.post("/debug/panic", "application/json", Vec::new()),
        500,
        "internal error",
    );
    let (code, _) = server.post_json("/classify", &one);
    assert_eq!(code, 200);
    assert_eq!(
        server.metric("bciops_requests_total{endpoint=\"/classify\",status=\"400\"}"),
        Some(12.0)
    );
    assert_eq!(
        server.metric("bciops_requests_in_flight "),
        Some(1.0),
        "this scrape"
    );
}

/// Opens a prediction request and sends all but the last byte of its body, so the server
/// holds it in flight (reading the body) for as long as the test wants.
fn half_sent(addr: SocketAddr, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /classify HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() - 1]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Sends the last byte and reads the whole response: (status, body).
fn finish(mut stream: TcpStream, body: &[u8]) -> (u16, String) {
    stream.write_all(&body[body.len() - 1..]).unwrap();
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    // Read until the headers and the whole declared body are in.
    loop {
        let n = stream.read(&mut buf).unwrap();
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if text.len() >= end + 4 + len || n == 0 {
                let status = text[9..12].parse().unwrap();
                return (status, text[end + 4..].to_owned());
            }
        }
        assert!(n > 0, "connection closed early: {text}");
    }
}

#[test]
fn the_concurrency_limit_answers_503_and_slow_requests_time_out() {
    let f = fixture();
    let body = serde_json::to_vec(&trials_json(&f.x, 1)).unwrap();
    let sleep_route = [("BCIOPS_SERVE_SLEEP_ROUTE", "1")];

    let server = start_env(&f.model_a, &["--max-concurrency", "1"], &sleep_route);
    // A prediction that holds the only slot for 1.5 s (a slot is taken once the body is in,
    // so a slow body would not hold it).
    let held = {
        let (http, url) = (server.http.clone(), server.url("/debug/sleep"));
        std::thread::spawn(move || http.post(url).body("1500").send().unwrap().status())
    };
    server.wait_until("the held request in flight", |s| {
        s.metric("bciops_requests_in_flight ") == Some(2.0)
    });
    let r = server
        .http
        .post(server.url("/classify"))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().unwrap();
    assert!(error_of(&v).contains("the server's limit"), "{v}");
    // Probes are not limited.
    assert_eq!(server.get("/readyz").0, 200);
    assert_eq!(held.join().unwrap().as_u16(), 200);
    let (code, _) = server.post_json("/classify", &trials_json(&f.x, 1));
    assert_eq!(code, 200, "the slot is free again");
    drop(server);

    let server = start_env(&f.model_a, &["--timeout", "200ms"], &sleep_route);
    let (code, v) = server.post("/debug/sleep", "text/plain", b"2000".to_vec());
    assert_eq!(code, 504, "{v}");
    assert!(error_of(&v).contains("the server's limit of"), "{v}");
}

#[test]
fn sighup_and_polling_swap_models_and_a_broken_one_keeps_the_old() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("served");
    copy_model(&f.model_a, &dir);
    let (va, vb) = (version_of(&f.model_a), version_of(&f.model_b));
    assert_ne!(va, vb);
    let one = trials_json(&f.x, 1);

    let server = start(&dir, &["--poll-interval", "0", "--name", "bci"]);
    assert_eq!(server.version(), va);
    copy_model(&f.model_b, &dir);
    server.signal("-HUP");
    server.wait_until("version b after SIGHUP", |s| s.version() == vb);
    assert_eq!(server.metric("bciops_model_reloads_total "), Some(1.0));
    let (_, text) = server.get("/metrics");
    assert!(text.contains(&format!(
        "bciops_model_info{{name=\"bci\",version=\"{vb}\"}} 1"
    )));
    assert_eq!(
        server
            .post_json(
                "/v2/models/bci/infer",
                &json!({"inputs": [{
        "name": "eeg", "shape": [1, 22, 750], "datatype": "FP64", "data": one }]})
            )
            .1["model_version"],
        vb.as_str()
    );

    // A corrupted model: the reload fails, is counted, and b keeps serving.
    let model_json = dir.join("model.json");
    let mut text = std::fs::read_to_string(&model_json).unwrap();
    text.push(' ');
    std::fs::write(&model_json, text).unwrap();
    server.signal("-HUP");
    // The log line is read from the pipe by another thread: wait for it too.
    server.wait_until("a failed reload, logged", |s| {
        s.metric("bciops_model_reload_failures_total ") == Some(1.0)
            && s.log().contains("checksum mismatch")
    });
    assert_eq!(server.version(), vb);
    let (code, _) = server.post_json("/classify", &one);
    assert_eq!(code, 200);
    assert_eq!(server.get("/readyz").0, 200);
    drop(server);

    // Polling: replacing the directory is noticed without a signal; a broken version is
    // counted once, not at every poll.
    copy_model(&f.model_a, &dir);
    let server = start(&dir, &["--poll-interval", "50ms"]);
    assert_eq!(server.version(), va);
    copy_model(&f.model_b, &dir);
    server.wait_until("version b by polling", |s| s.version() == vb);
    std::fs::write(dir.join("metrics.json"), "{}").unwrap();
    let sums = std::fs::read_to_string(dir.join("checksums.sha256")).unwrap();
    std::fs::write(dir.join("checksums.sha256"), format!("{sums}\n")).unwrap();
    server.wait_until("a failed reload by polling", |s| {
        s.metric("bciops_model_reload_failures_total ") == Some(1.0)
    });
    // Several more polls pass: the broken version is not loaded (or counted) again.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.metric("bciops_model_reload_failures_total "),
        Some(1.0)
    );
    assert_eq!(server.version(), vb);
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_0() {
    let f = fixture();
    let body = serde_json::to_vec(&trials_json(&f.x, 1)).unwrap();
    let mut server = start(&f.model_a, &[]);
    let held = half_sent(server.addr, &body);
    server.wait_until("the held request in flight", |s| {
        s.metric("bciops_requests_in_flight ") == Some(2.0)
    });
    server.signal("-TERM");
    // New connections are refused once the server has stopped listening…
    let addr = server.addr;
    server.wait_until("the listener closed", |_| TcpStream::connect(addr).is_err());
    // …but the request in flight still gets its answer.
    let (code, labels) = finish(held, &body);
    assert_eq!(code, 200, "{labels}");
    assert_eq!(server.wait_exit(), 0, "{}", server.log());
    assert!(server.log().contains("SIGTERM"), "{}", server.log());
}

#[test]
fn unusable_models_and_addresses_exit_with_a_message() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    bciops([
        "serve",
        "--model",
        tmp.path().to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ])
    .fails(2, "not a bciops model directory");
    bciops([
        "serve",
        "--model",
        "/does/not/exist",
        "--addr",
        "127.0.0.1:0",
    ])
    .fails(2, "/does/not/exist");
    // An empty registry (tests/serve_registry.rs serves from a filled one).
    let empty = tempfile::tempdir().unwrap();
    bciops([
        "serve",
        "--model",
        "models:/bci@champion",
        "--addr",
        "127.0.0.1:0",
        "--registry-uri",
        empty.path().to_str().unwrap(),
    ])
    .fails(2, "registered model `bci` does not exist");
    bciops([
        "serve",
        "--model",
        f.model_a.to_str().unwrap(),
        "--max-concurrency",
        "0",
    ])
    .fails(2, "--max-concurrency 0");
    bciops([
        "serve",
        "--model",
        f.model_a.to_str().unwrap(),
        "--poll-interval",
        "soon",
    ])
    .fails(2, "soon");
    let server = start(&f.model_a, &[]);
    bciops([
        "serve",
        "--model",
        f.model_a.to_str().unwrap(),
        "--addr",
        &server.addr.to_string(),
    ])
    .fails(1, "listen on");
}

/// `$NAME`, or a skip (None) outside CI and a failure under `CI=true`.
fn service_var(name: &str) -> Option<PathBuf> {
    match std::env::var_os(name) {
        Some(v) => Some(PathBuf::from(v)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{name} is not set under CI: run the tests through scripts/test.sh")
        }
        None => {
            eprintln!("skipping: {name} is not set (scripts/services/30-prometheus.sh sets it)");
            None
        }
    }
}

#[test]
fn promtool_accepts_the_exposition_and_prometheus_scrapes_it() {
    let (Some(promtool), Some(prometheus)) = (
        service_var("BCIOPS_PROMTOOL"),
        service_var("BCIOPS_PROMETHEUS_BIN"),
    ) else {
        return;
    };
    let f = fixture();
    let server = start(&f.model_a, &[]);
    let (code, _) = server.post_json("/classify", &trials_json(&f.x, 1));
    assert_eq!(code, 200);
    server.post_json("/classify", &json!([]));

    let (_, text) = server.get("/metrics");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus on a free loopback port scrapes the server every 200 ms.
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 200ms\nscrape_configs:\n  - job_name: bciops\n    static_configs:\n      - targets: ['{}']\n",
            server.addr
        ),
    )
    .unwrap();
    let out = Command::new(&promtool)
        .args(["check", "config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prometheus");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = prom.stderr.take().unwrap();
    let prom_log = Arc::new(Mutex::new(String::new()));
    {
        let log = prom_log.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            log.lock().unwrap().push_str(&s);
        });
    }
    let _prom = Kill(prom);
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=bciops_requests_total%7Bendpoint%3D%22%2Fclassify%22%2Cstatus%3D%22200%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = server.http.get(&query).send() {
            if let Ok(v) = r.json::<Value>() {
                let result = &v["data"]["result"];
                if result.as_array().is_some_and(|a| !a.is_empty()) {
                    assert_eq!(result[0]["metric"]["job"], "bciops", "{v}");
                    assert_eq!(result[0]["value"][1], "1", "{v}");
                    break;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never returned bciops_requests_total:\n{}",
            prom_log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Trains on the fixture's epochs straight into `uri` (a bucket), as `model-a` or `model-b`.
fn train_to(endpoint: &str, uri: &str, kernel: &str, seed: &str) {
    let f = fixture();
    s3_bciops(
        endpoint,
        [
            "train",
            "--data",
            f.epochs.to_str().unwrap(),
            "--out",
            uri,
            "--kernel",
            kernel,
            "--seed",
            seed,
            "--eval",
            "cv:2",
            "-q",
        ],
    )
    .success();
}

#[test]
fn a_model_on_a_bucket_is_served_and_replaced_on_sighup_and_by_polling() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let bucket = "bciops-serve";
    create_bucket(&endpoint, &python, bucket);
    let uri = format!("s3://{bucket}/served/bci");
    let env = s3_env(&endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The version a local copy would have: the first 12 hex digits of the sha256 of
    // checksums.sha256, read here with an independent client.
    let remote_version = || {
        boto(
            &endpoint,
            &python,
            "import hashlib\n\
             body = s3.get_object(Bucket=sys.argv[1], Key='served/bci/checksums.sha256')['Body'].read()\n\
             print(hashlib.sha256(body).hexdigest()[:12])",
            &[bucket],
        )
        .trim()
        .to_owned()
    };
    let one = trials_json(&fixture().x, 1);

    train_to(&endpoint, &uri, "linear", "1");
    let va = remote_version();
    let server = start_env(Path::new(&uri), &["--poll-interval", "0"], &env);
    assert_eq!(server.version(), va);
    assert!(server.log().contains(&uri), "{}", server.log());
    let (code, labels) = server.post_json("/classify", &one);
    assert_eq!(code, 200, "{labels}");
    // The name defaults to the key's last part.
    assert_eq!(server.get("/v2/models/bci").0, 200);

    train_to(&endpoint, &uri, "rbf", "2");
    let vb = remote_version();
    assert_ne!(va, vb);
    server.signal("-HUP");
    server.wait_until("version b after SIGHUP", |s| s.version() == vb);
    assert_eq!(server.metric("bciops_model_reloads_total "), Some(1.0));
    let (code, _) = server.post_json("/classify", &one);
    assert_eq!(code, 200);

    // A half-written directory (no marker) is refused on SIGHUP; b keeps serving.
    boto(
        &endpoint,
        &python,
        "s3.delete_object(Bucket=sys.argv[1], Key='served/bci/_COMPLETE')",
        &[bucket],
    );
    server.signal("-HUP");
    server.wait_until("a failed reload, logged", |s| {
        s.metric("bciops_model_reload_failures_total ") == Some(1.0)
            && s.log().contains("half-written")
    });
    assert_eq!(server.version(), vb);
    assert!(!server.log().contains(SECRET));
    drop(server);

    // Polling: a new publication is noticed without a signal.
    train_to(&endpoint, &uri, "linear", "1");
    let va2 = remote_version();
    let server = start_env(Path::new(&uri), &["--poll-interval", "100ms"], &env);
    assert_eq!(server.version(), va2);
    train_to(&endpoint, &uri, "rbf", "2");
    let vb2 = remote_version();
    server.wait_until("the new version by polling", |s| s.version() == vb2);
    assert_eq!(
        server.metric("bciops_model_reload_failures_total "),
        Some(0.0),
        "a publication in progress must not count as a failed reload:\n{}",
        server.log()
    );
    drop(server);

    // Nothing at the URI: exit 2 before listening, naming bucket and key.
    let done = s3_bciops(
        &endpoint,
        [
            "serve",
            "--model",
            &format!("s3://{bucket}/served/none"),
            "--addr",
            "127.0.0.1:0",
        ],
    )
    .fails(
        2,
        &format!("nothing under key `served/none` in bucket `{bucket}`"),
    );
    assert!(!done.stderr.contains(SECRET));
    let done = s3_bciops(
        &endpoint,
        [
            "serve",
            "--model",
            "s3://no-such-bucket-s9/m",
            "--addr",
            "127.0.0.1:0",
        ],
    )
    .fails(2, "bucket `no-such-bucket-s9` does not exist");
    assert!(!done.stderr.contains(SECRET));
}

#[test]
fn a_registry_alias_on_a_bucket_is_served_and_followed() {
    let Some((endpoint, python)) = s3() else {
        return;
    };
    let f = fixture();
    let bucket = "bciops-serve-registry";
    create_bucket(&endpoint, &python, bucket);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let registry = format!("s3://{bucket}/store-{nanos}");
    let register = |model: &Path| {
        s3_bciops(
            &endpoint,
            [
                "compare-register",
                "--model",
                model.to_str().unwrap(),
                "--name",
                "bci",
                "--min-delta",
                "-1",
                "--registry-uri",
                &registry,
            ],
        )
        .success();
    };
    register(&f.model_a);
    let env = s3_env(&endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = start_env(
        Path::new("models:/bci@champion"),
        &["--registry-uri", &registry, "--poll-interval", "0"],
        &env,
    );
    assert_eq!(server.version(), "1");
    let (code, _) = server.post_json("/classify", &trials_json(&f.x, 1));
    assert_eq!(code, 200);
    register(&f.model_b);
    server.signal("-HUP");
    server.wait_until("version 2 after SIGHUP", |s| s.version() == "2");
}

/// Triton's own HTTP client (`tritonclient.http`, what KServe users call) with its defaults:
/// `set_data_from_numpy` sends the binary tensor data extension and, with no output named,
/// asks for every output in binary. Then versioned calls, requested outputs (binary and
/// JSON), FP64 and JSON inputs, and the errors it raises for an unknown version, input or
/// output. The trials are the raw EEG of one recording cut by MNE at the cues (as
/// tests/preprocess.rs does), so that the server filters them as `bciops predict` on the
/// recording does for a model trained on per-trial-filtered data. Written out as JSON,
/// checked by the test against `bciops predict`.
const TRITON_CLIENT: &str = r#"
import json, sys
import mne
import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

url, name, version, gdf, out_path = sys.argv[1:6]
raw = mne.io.read_raw_gdf(gdf, preload=True, verbose="error")
eeg = [c for c in raw.ch_names if not c.startswith("EOG")]
data = raw.get_data(picks=eeg) * 1e6
ev = [(int(round(o * 250)), d) for o, d in zip(raw.annotations.onset, raw.annotations.description)]
rejected = {p for p, d in ev if d == "1023"}
starts = sorted(p for p, d in ev if d == "768")
cues = [p for p, d in sorted(ev) if d in ("769", "770")
        and max(s for s in starts if s <= p) not in rejected]
x64 = np.stack([data[:, c:c + 750] for c in cues])
x = x64.astype(np.float32)
client = http.InferenceServerClient(url)
out = {
    "trials": len(x),
    "live": client.is_server_live(),
    "ready": client.is_model_ready(name),
    "ready_version": client.is_model_ready(name, version),
    "ready_other_version": client.is_model_ready(name, "999"),
    "metadata_versions": client.get_model_metadata(name, version)["versions"],
    "extensions": client.get_server_metadata()["extensions"],
}

def infer(batch, outputs=None, model_version="", binary=True, input_name="eeg"):
    datatype = "FP64" if batch.dtype == np.float64 else "FP32"
    tensor = http.InferInput(input_name, list(batch.shape), datatype)
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return client.infer(name, [tensor], model_version=model_version, outputs=outputs)

def labels(result):
    return [b.decode() for b in result.as_numpy("labels").tolist()]

def binary(result):
    return {o["name"]: "binary_data_size" in o.get("parameters", {}) for o in result.get_response()["outputs"]}

r = infer(x)
out["default"] = {"labels": labels(r), "scores": r.as_numpy("scores").tolist(), "binary": binary(r)}
r = infer(x, [http.InferRequestedOutput("labels")], model_version=version)
out["versioned_labels"] = {"labels": labels(r), "binary": binary(r)}
r = infer(x64, [http.InferRequestedOutput("scores", binary_data=False)], model_version=version)
out["fp64_json_scores"] = {"scores": r.as_numpy("scores").tolist(), "binary": binary(r)}
r = infer(x[:3], binary=False)
out["json_input"] = {"labels": labels(r), "binary": binary(r)}

def error(call):
    try:
        call()
    except InferenceServerException as e:
        return [e.status(), e.message()]
    return None

out["errors"] = {
    "version": error(lambda: infer(x[:1], model_version="999")),
    "output": error(lambda: infer(x[:1], [http.InferRequestedOutput("probabilities")])),
    "input": error(lambda: infer(x[:1], input_name="input_0")),
}
json.dump(out, open(out_path, "w"))
"#;

#[test]
fn tritonclient_defaults_versions_and_outputs_agree_with_predict() {
    let Some(python) = common::python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let epochs = common::synth_epochs(
        tmp.path(),
        "epochs",
        &["--trials-per-class", "12", "--runs", "1"],
        &["--filter-per-trial"],
    );
    let model = tmp.path().join("model");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    bciops([
        "train",
        "--data",
        &s(&epochs),
        "--out",
        &s(&model),
        "--eval",
        "cv:2",
    ])
    .success();
    let gdf = std::fs::read_dir(tmp.path().join("raw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("T.gdf"))
        .expect("a training-session recording");
    let server = start(&model, &["--name", "bci"]);
    let version = version_of(&model);
    let out = tmp.path().join("triton.json");
    common::run_python(
        &python,
        TRITON_CLIENT,
        &[
            Path::new(&server.addr.to_string()),
            Path::new("bci"),
            Path::new(&version),
            &gdf,
            &out,
        ],
    );
    let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let predicted = bciops([
        "predict",
        "--model",
        &s(&model),
        "--data",
        &s(&gdf),
        "--decision",
        "--json",
    ])
    .success();
    let predicted: Value = serde_json::from_str(&predicted.stdout).unwrap();
    let labels = &predicted["labels"];
    assert_eq!(
        Some(labels.as_array().unwrap().len()),
        got["trials"].as_u64().map(|n| n as usize)
    );

    for (key, want) in [
        ("live", json!(true)),
        ("ready", json!(true)),
        ("ready_version", json!(true)),
        ("ready_other_version", json!(false)),
        ("metadata_versions", json!([version])),
        ("extensions", json!(["binary_tensor_data"])),
    ] {
        assert_eq!(got[key], want, "{key}: {got}");
    }
    assert_eq!(&got["default"]["labels"], labels);
    assert_eq!(
        got["default"]["binary"],
        json!({"labels": true, "scores": true})
    );
    assert_eq!(&got["versioned_labels"]["labels"], labels);
    assert_eq!(got["versioned_labels"]["binary"], json!({"labels": true}));
    assert_eq!(got["fp64_json_scores"]["binary"], json!({"scores": false}));
    assert_eq!(
        got["json_input"]["labels"],
        json!(labels.as_array().unwrap()[..3])
    );
    // Scores against `bciops predict --decision` on the same recording. `predict` reads a
    // recording through an epochs dataset, stored as float32 (6e-8 relative per value), and
    // the default client sends float32 trials: decision values agree to float32 precision,
    // 1e-6 of the largest (measured: 3.5e-8 for FP64 trials, 3.7e-8 for FP32 ones).
    let decision: Vec<f64> = predicted["decision"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[0].as_f64().unwrap())
        .collect();
    let scale = decision.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for name in ["fp64_json_scores", "default"] {
        let scores = got[name]["scores"].as_array().unwrap();
        assert_eq!(scores.len(), decision.len(), "{name}");
        let mut worst = 0.0_f64;
        for (i, (a, b)) in scores.iter().zip(&decision).enumerate() {
            let a = a[0].as_f64().unwrap();
            worst = worst.max((a - b).abs() / scale);
            assert!(
                (a - b).abs() <= 1e-6 * scale,
                "{name} trial {i}: {a} vs {b} (scale {scale})"
            );
        }
        eprintln!("{name}: scores within {worst:.1e} of the largest decision value");
    }
    let errors = &got["errors"];
    let error = |key: &str, status: &str, says: &str| {
        let e = &errors[key];
        assert_eq!(e[0], status, "{key}: {e}");
        assert!(e[1].as_str().unwrap().contains(says), "{key}: {e}");
    };
    error(
        "version",
        "404",
        &format!("model `bci` has no version `999` here; this server serves version `{version}`"),
    );
    error(
        "output",
        "400",
        "unknown output `probabilities`; the model's outputs are `labels` and `scores`",
    );
    error(
        "input",
        "400",
        "unknown input `input_0`; the model's input is `eeg`",
    );
}
