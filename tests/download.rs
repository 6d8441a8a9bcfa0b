//! `bciops data download` against a local HTTP server (a std TcpListener thread that serves
//! byte ranges and can cut a transfer half-way): resumption, verification, unpacking, offline.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::bciops;

/// A tiny HTTP/1.1 server: GET of known paths, `Range: bytes=N-`, one request per connection.
struct Server {
    url: String,
    /// Request lines with their Range header, in order.
    log: Arc<Mutex<Vec<String>>>,
}

fn serve(files: HashMap<String, Vec<u8>>, cut_first: HashSet<String>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let cut = Arc::new(Mutex::new(cut_first));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut range: Option<u64> = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse().ok();
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            log2.lock().unwrap().push(format!("{path} range={range:?}"));
            let Some(body) = files.get(&path) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let len = body.len() as u64;
            let (head, slice) = match range {
                Some(n) if n >= len => {
                    let _ = stream.write_all(format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
                    continue;
                }
                Some(n) => (
                    format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {n}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", len - 1, len - n),
                    &body[n as usize..],
                ),
                None => (
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"),
                    &body[..],
                ),
            };
            let _ = stream.write_all(head.as_bytes());
            if cut.lock().unwrap().remove(&path) {
                // Half the body, then the connection drops: an interrupted transfer.
                let _ = stream.write_all(&slice[..slice.len() / 2]);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let _ = stream.write_all(slice);
        }
    });
    Server { url, log }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    bciops::fsutil::sha256_hex(bytes)
}

fn manifest(dir: &Path, entries: &[(&str, &[u8], Option<&str>)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(name, bytes, sha)| {
            (
                name.to_string(),
                serde_json::json!({"size": bytes.len(), "sha256": sha.map_or_else(|| sha256(bytes), str::to_owned)}),
            )
        })
        .collect();
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&map).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn an_interrupted_download_resumes_and_is_verified() {
    let (t, e) = (noise(300_000, 1), noise(1000, 2));
    let files = HashMap::from([
        ("/bnci/A01T.mat".to_owned(), t.clone()),
        ("/bnci/A01E.mat".to_owned(), e.clone()),
    ]);
    let server = serve(files, HashSet::from(["/bnci/A01T.mat".to_owned()]));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("2a");
    let m = manifest(
        tmp.path(),
        &[("A01T.mat", &t, None), ("A01E.mat", &e, None)],
    );
    let args = |extra: &[&str]| {
        let mut a = vec![
            "data".to_owned(),
            "download".into(),
            "--mat".into(),
            "--subjects".into(),
            "1".into(),
            "--mat-url".into(),
            format!("{}/bnci/", server.url),
            "--dest".into(),
            dest.to_str().unwrap().into(),
            "--manifest".into(),
            m.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The server drops the connection half-way: a failure (1), and the part is kept.
    let done = bciops(args(&[])).fails(1, "run again to resume");
    assert!(done.stderr.contains("A01T.mat"), "{}", done.stderr);
    let part = dest.join("bnci/A01T.mat.part");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert_eq!(kept, 150_000);
    assert!(!dest.join("bnci/A01T.mat").exists());

    let done = bciops(args(&[])).success();
    assert!(done.stderr.contains("resumed at 150000"), "{}", done.stderr);
    assert_eq!(std::fs::read(dest.join("bnci/A01T.mat")).unwrap(), t);
    assert_eq!(std::fs::read(dest.join("bnci/A01E.mat")).unwrap(), e);
    assert!(!part.exists());
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains(&"/bnci/A01T.mat range=Some(150000)".to_owned()),
        "{log:?}"
    );
    // A third run finds everything (verified) and fetches nothing.
    let before = server.log.lock().unwrap().len();
    let done = bciops(args(&[])).success();
    assert!(
        done.stderr.contains("0 downloaded, 2 already present"),
        "{}",
        done.stderr
    );
    assert_eq!(server.log.lock().unwrap().len(), before);
}

#[test]
fn a_digest_mismatch_is_refused_and_removed() {
    let t = noise(5000, 3);
    let server = serve(
        HashMap::from([("/m/A02T.mat".to_owned(), t.clone())]),
        HashSet::new(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("d");
    let wrong = "0".repeat(64);
    let m = manifest(tmp.path(), &[("A02T.mat", &t, Some(&wrong))]);
    let url = format!("{}/m", server.url);
    bciops([
        "data",
        "download",
        "--mat",
        "--subjects",
        "2",
        "--mat-url",
        &url,
        "--dest",
        dest.to_str().unwrap(),
        "--manifest",
        &m,
    ])
    .fails(
        1,
        &format!("sha256 {} but the manifest says {wrong}", sha256(&t)),
    );
    assert!(!dest.join("bnci/A02T.mat").exists());
    assert!(!dest.join("bnci/A02T.mat.part").exists());
    // A02E.mat is not on the server.
    let m = manifest(tmp.path(), &[("A02T.mat", &t, None)]);
    bciops([
        "data",
        "download",
        "--mat",
        "--subjects",
        "2",
        "--mat-url",
        &url,
        "--dest",
        dest.to_str().unwrap(),
        "--manifest",
        &m,
    ])
    .fails(1, "A02E.mat`: the server answered HTTP 404");
    assert_eq!(std::fs::read(dest.join("bnci/A02T.mat")).unwrap(), t);
}

#[test]
fn the_gdf_archives_are_unpacked_and_preprocess_reads_them() {
    let gdf_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bnci/gdf");
    let read = |n: &str| std::fs::read(gdf_dir.join(n)).unwrap();
    let (t, e, labels) = (read("A01T.gdf"), read("A01E.gdf"), read("A01E.mat"));
    let gdf_zip = bciops::download::write_stored_zip(&[
        ("BCICIV_2a_gdf/A01T.gdf", &t),
        ("BCICIV_2a_gdf/A01E.gdf", &e),
    ]);
    let labels_zip = bciops::download::write_stored_zip(&[("A01E.mat", &labels)]);
    let server = serve(
        HashMap::from([
            ("/comp/BCICIV_2a_gdf.zip".to_owned(), gdf_zip),
            ("/labels/true_labels.zip".to_owned(), labels_zip),
        ]),
        HashSet::new(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("2a");
    bciops([
        "data",
        "download",
        "--gdf",
        "--gdf-url",
        &format!("{}/comp", server.url),
        "--labels-url",
        &format!("{}/labels/", server.url),
        "--dest",
        dest.to_str().unwrap(),
    ])
    .success();
    assert_eq!(std::fs::read(dest.join("gdf/A01T.gdf")).unwrap(), t);
    assert_eq!(std::fs::read(dest.join("gdf/A01E.mat")).unwrap(), labels);
    let out = tmp.path().join("epochs");
    bciops([
        "preprocess",
        "-q",
        "-i",
        dest.join("gdf").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .success();
}

#[test]
fn offline_is_said_plainly() {
    // Nothing listens on port 9 of the loopback (discard is not run here): refused.
    let tmp = tempfile::tempdir().unwrap();
    bciops([
        "data",
        "download",
        "--mat",
        "--subjects",
        "1",
        "--mat-url",
        "http://127.0.0.1:9/x",
        "--dest",
        tmp.path().to_str().unwrap(),
    ])
    .fails(1, "cannot reach `127.0.0.1:9`");
    let done = bciops([
        "data",
        "download",
        "--mat",
        "--mat-url",
        "http://no-such-host.invalid/x",
        "--dest",
        tmp.path().to_str().unwrap(),
    ])
    .fails(1, "cannot reach `no-such-host.invalid`");
    assert!(done.stderr.contains("(offline?)"), "{}", done.stderr);
}
