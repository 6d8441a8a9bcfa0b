//! The monitoring files against the real thing: a `bciops serve` under load, scraped by a real
//! Prometheus (Debian package) with configs/monitoring/alerts.yml loaded; every dashboard
//! query and every alert expression (without its threshold) must return data.
//!
//! Needs `bciops serve` (issue 6) and `prometheus` (`$BCIOPS_PROMETHEUS_BIN` or on PATH).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bciops;

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn prometheus_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BCIOPS_PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    if Command::new("prometheus").arg("--version").output().is_ok() {
        return Some(PathBuf::from("prometheus"));
    }
    if under_ci() {
        panic!("BCIOPS_PROMETHEUS_BIN is not set and `prometheus` is not on PATH under CI");
    }
    eprintln!("skipping: no Prometheus (BCIOPS_PROMETHEUS_BIN or `prometheus` on PATH)");
    None
}

/// Kills a child process when dropped, so a failing assertion leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ok(client: &reqwest::blocking::Client, url: &str, seconds: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        if client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer 200 within {seconds} s");
}

/// The queries of the dashboard and the alert rules, with Grafana's variables filled in and
/// the alerts' thresholds removed (a quiet system must still return the measured value).
fn queries(root: &Path) -> Vec<(String, String)> {
    let mon = root.join("configs/monitoring");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mon.join("grafana-dashboard.json")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m");
            out.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    let rules: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(mon.join("alerts.yml")).unwrap()).unwrap();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let expr = rule["expr"].as_str().unwrap().trim();
        let cut = expr
            .rfind(['>', '<'])
            .expect("alerts compare with a threshold");
        out.push((
            rule["alert"].as_str().unwrap().to_owned(),
            expr[..cut].trim().to_owned(),
        ));
    }
    out
}

#[test]
fn every_dashboard_and_alert_query_returns_data_from_a_served_model() {
    let Some(prometheus) = prometheus_bin() else {
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_epochs(dir.path());
    let model = dir.path().join("model");
    bciops([
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "cv:3",
    ])
    .success();

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let port = free_port();
    let _serve = Guard(
        Command::new(env!("CARGO_BIN_EXE_bciops"))
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start bciops serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&client, &format!("{base}/readyz"), 30);

    // Prometheus: the shipped alert rules, scraping every second.
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    std::fs::copy(
        root.join("configs/monitoring/alerts.yml"),
        prom_dir.join("alerts.yml"),
    )
    .unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [alerts.yml]\n\
             scrape_configs:\n  - job_name: bciops\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom = Guard(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ok(&client, &format!("{prom}/-/ready"), 60);

    // Load: good trials (22 channels × 750 samples of raw EEG-like values) and bad requests.
    let trial: Vec<Vec<f64>> = (0..22)
        .map(|c| {
            (0..750)
                .map(|t| 10.0 * ((t as f64) * 0.06 * (c as f64 + 1.0)).sin())
                .collect()
        })
        .collect();
    let body = serde_json::to_string(&vec![trial]).unwrap();
    let load_until = Instant::now() + Duration::from_secs(8);
    let mut answered = 0;
    while Instant::now() < load_until {
        let r = client
            .post(format!("{base}/classify"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "/classify answered {}", r.status());
        answered += 1;
        if answered % 10 == 0 {
            let bad = client
                .post(format!("{base}/classify"))
                .header("content-type", "application/json")
                .body("[[1]]")
                .send()
                .unwrap();
            assert!(bad.status().is_client_error());
        }
    }

    // Every query returns at least one series (rates need a few scrapes: poll).
    for (title, expr) in queries(&root) {
        let start = Instant::now();
        loop {
            let v: serde_json::Value = client
                .get(format!("{prom}/api/v1/query"))
                .query(&[("query", expr.as_str())])
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert_eq!(v["status"], "success", "{title}: `{expr}`: {v}");
            if v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{title}: `{expr}` returned no data: {v}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
