//! `bciops serve` under abuse (issue 16, "Server under abuse"): clients trickling bodies or
//! headers, SIGTERM with half-sent requests and under keep-alive load, and requests hyper
//! itself rejects. Every test talks to a live server on 127.0.0.1 over raw sockets, with
//! bounded loops and deadlines.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::serve::Server;
use ndarray::{s, Array3};
use serde_json::Value;

struct Fixture {
    _tmp: tempfile::TempDir,
    model: PathBuf,
    /// One trial as the original's JSON body.
    one_trial: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (epochs, model) = common::small_model(tmp.path());
        let x: Array3<f32> = ndarray_npy::read_npy(epochs.join("X.npy")).unwrap();
        let trial: Vec<Vec<Vec<f32>>> = x
            .slice(s![..1, .., ..])
            .outer_iter()
            .map(|t| t.outer_iter().map(|c| c.to_vec()).collect())
            .collect();
        Fixture {
            one_trial: serde_json::to_vec(&trial).unwrap(),
            model,
            _tmp: tmp,
        }
    })
}

fn start(model: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args([
        "serve",
        "--model",
        model.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ])
    .args(extra);
    Server::spawn(cmd)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(stream)
}

fn post_head(addr: SocketAddr, len: usize) -> String {
    format!(
        "POST /classify HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    }

    fn closes(&self) -> bool {
        self.header("connection").as_deref() == Some("close")
    }

    /// The `error` of a JSON error body (panics with the answer if it is not one).
    fn error(&self) -> String {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        let v: Value =
            serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"));
        let e = v["error"].as_str().unwrap_or_default().to_owned();
        assert!(!e.is_empty(), "{self:?}");
        e
    }
}

/// Reads one answer (head and `content-length` body); `None` when the connection ends
/// (closed, reset or silent past the read timeout) before a whole answer came.
fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                let status = head.get(9..12)?.parse().ok()?;
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + len]).into_owned();
                return Some(Answer { status, head, body });
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Item 9: 48 clients trickle request bodies a byte at a time, more than
/// `--max-concurrency`; clients sending whole requests meanwhile still get every answer,
/// quickly, and the tricklers are cut off with 408 in about a second.
#[test]
fn trickling_bodies_do_not_starve_other_clients() {
    let f = fixture();
    let server = start(&f.model, &["--max-concurrency", "16", "--timeout", "10s"]);
    let addr = server.addr;
    let tricklers = 48;
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        let len = f.one_trial.len();
        std::thread::spawn(move || {
            let mut streams: Vec<TcpStream> = (0..tricklers)
                .filter_map(|_| {
                    let mut s = connect(addr).ok()?;
                    s.write_all(post_head(addr, len).as_bytes()).ok()?;
                    Some(s)
                })
                .collect();
            // A byte per stream every 200 ms, for at most 6 s.
            let until = Instant::now() + Duration::from_secs(6);
            while Instant::now() < until && !stop.load(Ordering::Relaxed) && !streams.is_empty() {
                streams.retain_mut(|s| s.write_all(b" ").is_ok());
                std::thread::sleep(Duration::from_millis(200));
            }
            streams.len()
        })
    };
    // Let every trickler's head reach the server (the old server gave each a slot here).
    std::thread::sleep(Duration::from_millis(500));

    let answered = Arc::new(AtomicUsize::new(0));
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (answered, slowest, body) =
                (answered.clone(), slowest.clone(), f.one_trial.clone());
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for _ in 0..20 {
                    let t0 = Instant::now();
                    let mut s = connect(addr).unwrap();
                    s.write_all(post_head(addr, body.len()).as_bytes()).unwrap();
                    s.write_all(&body).unwrap();
                    let a = read_answer(&mut s);
                    let took = t0.elapsed();
                    let mut m = slowest.lock().unwrap();
                    *m = (*m).max(took);
                    drop(m);
                    match a {
                        Some(a) if a.status == 200 => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(a) => codes.push(a.status),
                        None => codes.push(0),
                    }
                }
                codes
            })
        })
        .collect();
    let failed: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let slowest = *slowest.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} of 80 requests answered 200 while {tricklers} clients trickled; others: {failed:?}",
        answered.load(Ordering::Relaxed)
    );
    assert!(
        slowest < Duration::from_secs(3),
        "slowest answer {slowest:?}"
    );
    // The tricklers are cut off (the writes fail once the server has closed their
    // connections) long before the 6 s they would trickle.
    server.wait_until("every trickler answered 408", |s| {
        s.metric("bciops_requests_total{endpoint=\"/classify\",status=\"408\"}")
            == Some(f64::from(tricklers))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = trickle.join().unwrap();
}

/// Item 9: a body that stops arriving is answered 408 in JSON, by its deadline or its rate,
/// and a request head that stops arriving gets its connection closed at `--header-timeout`.
#[test]
fn stalled_bodies_get_408_and_stalled_heads_are_cut_off() {
    let f = fixture();
    let len = f.one_trial.len();
    let half = &f.one_trial[..len / 2];

    // By the whole-body deadline, the rate check off.
    let server = start(
        &f.model,
        &[
            "--body-timeout",
            "700ms",
            "--min-body-rate",
            "0",
            "--header-timeout",
            "1s",
        ],
    );
    let t0 = Instant::now();
    let mut s = connect(server.addr).unwrap();
    s.write_all(post_head(server.addr, len).as_bytes()).unwrap();
    s.write_all(half).unwrap();
    let a = read_answer(&mut s).expect("an answer to the stalled body");
    assert_eq!(a.status, 408, "{a:?}");
    assert!(a.error().contains("did not arrive within"), "{a:?}");
    assert!(a.closes(), "{a:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // A head that never ends: the connection is closed at the header deadline.
    let t0 = Instant::now();
    let mut s = connect(server.addr).unwrap();
    s.write_all(b"POST /classify HTTP/1.1\r\nhost: x\r\ncontent-le")
        .unwrap();
    assert!(read_answer(&mut s).is_none());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    drop(server);

    // By the minimum rate: a 64 KB/s minimum cuts a stalled half body soon after the grace
    // second, long before the 30 s deadline.
    let server = start(
        &f.model,
        &["--body-timeout", "30s", "--min-body-rate", "65536"],
    );
    let t0 = Instant::now();
    let mut s = connect(server.addr).unwrap();
    s.write_all(post_head(server.addr, len).as_bytes()).unwrap();
    s.write_all(&half[..1000]).unwrap();
    let a = read_answer(&mut s).expect("an answer to the slow body");
    assert_eq!(a.status, 408, "{a:?}");
    assert!(
        a.error().contains("slower than the server's minimum"),
        "{a:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Whole requests are still answered, on the same server.
    let (code, _) = server.post("/classify", "application/json", f.one_trial.clone());
    assert_eq!(code, 200);
}

/// Item 10: SIGTERM with 100 connections holding half-sent request lines or heads (and one
/// request whose body stalls) exits 0 by `--drain-timeout`, even with a long header deadline.
#[test]
fn sigterm_with_slowloris_connections_exits_by_the_drain_deadline() {
    let f = fixture();
    let mut server = start(
        &f.model,
        &[
            "--drain-timeout",
            "3s",
            "--header-timeout",
            "120s",
            "--body-timeout",
            "120s",
            "--min-body-rate",
            "0",
        ],
    );
    let addr = server.addr;
    let mut held: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = connect(addr).unwrap();
            let part: &[u8] = if i % 2 == 0 {
                b"GET /liv"
            } else {
                b"POST /classify HTTP/1.1\r\nhost: x\r\nx-slow: "
            };
            s.write_all(part).unwrap();
            s
        })
        .collect();
    // And a request whose head is in but whose body stalls: in flight, never finishing.
    let mut stalled = connect(addr).unwrap();
    stalled
        .write_all(post_head(addr, f.one_trial.len()).as_bytes())
        .unwrap();
    stalled.write_all(&f.one_trial[..100]).unwrap();
    held.push(stalled);
    std::thread::sleep(Duration::from_millis(300));

    let t0 = Instant::now();
    server.signal("-TERM");
    let code = server.wait_exit();
    let took = t0.elapsed();
    assert_eq!(code, 0, "{}", server.log());
    assert!(
        took < Duration::from_millis(4500),
        "exited {took:?} after SIGTERM (--drain-timeout 3s):\n{}",
        server.log()
    );
    // The stalled request kept it draining until the deadline, which the log names.
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert!(server.log().contains("drain timeout"), "{}", server.log());
    drop(held);

    // Half-sent heads alone do not hold the drain: they are dropped at once after the
    // grace second.
    let mut server = start(
        &f.model,
        &["--drain-timeout", "30s", "--header-timeout", "120s"],
    );
    let held: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect(server.addr).unwrap();
            s.write_all(b"POST /classify HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    server.signal("-TERM");
    assert_eq!(server.wait_exit(), 0, "{}", server.log());
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "exited {took:?} after SIGTERM"
    );
    drop(held);
}

/// What one keep-alive client saw.
#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    /// Requests written in full whose connection then ended without an answer.
    lost: usize,
    /// Requests that could not be written (refused or reset before being sent).
    unsent: usize,
}

/// Item 11: SIGTERM in the middle of keep-alive load from several clients: every request
/// whose bytes were all sent is answered; a client finds the connection closed (after an
/// answer saying `Connection: close`) or refused only before sending.
#[test]
fn sigterm_under_keep_alive_load_answers_every_request_sent() {
    let f = fixture();
    let mut server = start(&f.model, &[]);
    let addr = server.addr;
    let started = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let body = f.one_trial.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let request: Vec<u8> = if i % 2 == 0 {
                    format!("GET /livez HTTP/1.1\r\nhost: {addr}\r\n\r\n").into_bytes()
                } else {
                    let mut r = post_head(addr, body.len()).into_bytes();
                    r.extend_from_slice(&body);
                    r
                };
                let mut tally = Tally::default();
                let until = Instant::now() + Duration::from_secs(20);
                let mut stream: Option<TcpStream> = None;
                while Instant::now() < until && tally.answered < 100_000 {
                    let s = match stream.as_mut() {
                        Some(s) => s,
                        None => match connect(addr) {
                            Ok(s) => stream.insert(s),
                            // The listener is closed: this client is done.
                            Err(_) => break,
                        },
                    };
                    if s.write_all(&request).is_err() {
                        tally.unsent += 1;
                        stream = None;
                        continue;
                    }
                    match read_answer(s) {
                        Some(a) => {
                            assert_eq!(a.status, 200, "{a:?}");
                            tally.answered += 1;
                            started.fetch_add(1, Ordering::Relaxed);
                            if a.closes() {
                                stream = None;
                            }
                        }
                        None => {
                            tally.lost += 1;
                            stream = None;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    // SIGTERM once the load is going.
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::Relaxed) < 300 {
        assert!(Instant::now() < deadline, "no load");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    server.signal("-TERM");
    let tallies: Vec<Tally> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(server.wait_exit(), 0, "{}", server.log());
    let lost: usize = tallies.iter().map(|t| t.lost).sum();
    assert_eq!(lost, 0, "requests sent and never answered: {tallies:?}");
    assert!(tallies.iter().all(|t| t.answered > 0), "{tallies:?}");
}

/// Item 12: requests hyper rejects before any route sees them get the same JSON error body
/// as every other 4xx of the server.
#[test]
fn malformed_requests_get_a_json_error() {
    let f = fixture();
    let server = start(&f.model, &[]);
    let huge_header = format!(
        "GET /livez HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    let many_headers = format!(
        "GET /livez HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("x-h{i}: 1\r\n"))
            .collect::<String>()
    );
    let long_target = format!(
        "GET /livez?{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "q".repeat(70_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a space in the path",
            b"GET /li vez HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a header without a colon",
            b"GET /livez HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_vec(),
            400,
        ),
        (
            "no request line at all",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
        (
            "an unknown HTTP version",
            b"GET /livez HTTP/7.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("a header of 600 KB", huge_header.into_bytes(), 431),
        ("150 headers", many_headers.into_bytes(), 431),
        ("a 70 KB target", long_target.into_bytes(), 414),
    ];
    for (what, bytes, status) in cases {
        let mut s = connect(server.addr).unwrap();
        // The server may answer and close before reading all of a large request.
        let _ = s.write_all(&bytes);
        let a = read_answer(&mut s).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(a.status, status, "{what}: {a:?}");
        let e = a.error();
        assert!(!e.contains('\n'), "{what}: {e}");
    }
    // The server goes on answering.
    assert_eq!(server.get("/livez").0, 200);
}

/// A V2 request of the binary tensor data extension: the JSON header, then `binary`.
fn binary_infer(
    server: &Server,
    json: &Value,
    binary: &[u8],
    header_len: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut body = serde_json::to_vec(json).unwrap();
    body.extend_from_slice(binary);
    let r = server
        .http
        .post(server.url("/v2/models/model/infer"))
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", header_len)
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().unwrap().to_vec())
}

/// Binary extension bodies whose stated lengths disagree with each other or with the body:
/// each a 400 naming the value, none allocating what it claims, and the server goes on; a
/// consistent one is answered in binary, labels prefixed by their length.
#[test]
fn binary_extension_lengths_that_disagree_are_answered_400() {
    let f = fixture();
    let server = start(&f.model, &["--max-body-bytes", "4000000"]);
    let meta = server.get_json("/v2/models/model");
    let (c, s) = (
        meta["inputs"][0]["shape"][1].as_u64().unwrap() as usize,
        meta["inputs"][0]["shape"][2].as_u64().unwrap() as usize,
    );
    let trial: Vec<f32> =
        serde_json::from_slice::<Vec<Vec<Vec<f32>>>>(&f.one_trial).unwrap()[0].concat();
    let bytes: Vec<u8> = trial.iter().flat_map(|v| v.to_le_bytes()).collect();
    let input = |size: Value| {
        serde_json::json!({"inputs": [{"name": "eeg", "shape": [1, c, s], "datatype": "FP32",
            "parameters": {"binary_data_size": size}}]})
    };
    let good = input(bytes.len().into());
    let good_len = serde_json::to_vec(&good).unwrap().len().to_string();
    let huge = 1u64 << 40;
    let cases: Vec<(&str, Value, &[u8], String, String)> = vec![
        (
            "a header length beyond the body",
            good.clone(),
            &bytes[..],
            "99999999".into(),
            format!(
                "`Inference-Header-Content-Length` `99999999` is larger than the body's `{}` bytes",
                good_len.parse::<usize>().unwrap() + bytes.len()
            ),
        ),
        (
            "a negative header length",
            good.clone(),
            &bytes[..],
            "-1".into(),
            "`Inference-Header-Content-Length` `-1` is not a byte count".into(),
        ),
        (
            "a header length past u64",
            good.clone(),
            &bytes[..],
            "99999999999999999999999".into(),
            "`99999999999999999999999` is not a byte count".into(),
        ),
        (
            "a header length cutting the JSON",
            good.clone(),
            &bytes[..],
            "10".into(),
            "not a V2 inference request".into(),
        ),
        (
            "a binary size of 1 TiB",
            input(huge.into()),
            &bytes[..],
            serde_json::to_vec(&input(huge.into()))
                .unwrap()
                .len()
                .to_string(),
            format!("`binary_data_size` `{huge}` does not match shape `[1, {c}, {s}]`"),
        ),
        (
            "a binary size and a shape of 1 TiB",
            serde_json::json!({"inputs": [{"name": "eeg", "shape": [huge / 4 / (c * s) as u64, c, s],
                "datatype": "FP32", "parameters": {"binary_data_size": huge / 4 / (c * s) as u64 * 4 * (c * s) as u64}}]}),
            &bytes[..],
            "0".into(),
            "bytes of binary data follow the JSON header".into(),
        ),
        (
            "a negative binary size",
            input((-4).into()),
            &bytes[..],
            serde_json::to_vec(&input((-4).into()))
                .unwrap()
                .len()
                .to_string(),
            "invalid value: integer `-4`".into(),
        ),
        (
            "binary data cut short",
            good.clone(),
            &bytes[..bytes.len() - 4],
            good_len.clone(),
            format!(
                "`binary_data_size` `{}` but `{}` bytes of binary data follow",
                bytes.len(),
                bytes.len() - 4
            ),
        ),
    ];
    for (what, json, binary, header_len, says) in cases {
        // The JSON length of a case whose header length is "0" is filled in here.
        let header_len = if header_len == "0" {
            serde_json::to_vec(&json).unwrap().len().to_string()
        } else {
            header_len
        };
        let (status, _, body) = binary_infer(&server, &json, binary, &header_len);
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&body)));
        let e = v["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{what}: {v}");
        assert!(e.contains(&says), "{what}: {e}");
        assert!(!e.contains('\n'), "{what}: {e}");
    }

    // The consistent request, answered in binary as asked.
    let mut asked = good.clone();
    asked["parameters"] = serde_json::json!({"binary_data_output": true});
    let asked_len = serde_json::to_vec(&asked).unwrap().len().to_string();
    let (status, headers, body) = binary_infer(&server, &asked, &bytes, &asked_len);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json_len: usize = headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&body[..json_len]).unwrap();
    let labels = &head["outputs"][0];
    assert_eq!(labels["name"], "labels");
    let size = labels["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    let tail = &body[json_len..];
    let n = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize;
    assert_eq!(size, 4 + n);
    let label = std::str::from_utf8(&tail[4..4 + n]).unwrap();
    // The same trial as JSON data gives the same label.
    let (code, out) = server.post_json(
        "/v2/models/model/infer",
        &serde_json::json!({"inputs": [{"name": "eeg", "shape": [1, c, s], "datatype": "FP32", "data": trial}]}),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["outputs"][0]["data"][0], label);
    // Scores follow the labels: one FP64 per trial.
    assert_eq!(head["outputs"][1]["parameters"]["binary_data_size"], 8);
    assert_eq!(tail.len(), size + 8);
    assert_eq!(server.get("/livez").0, 200);
}
