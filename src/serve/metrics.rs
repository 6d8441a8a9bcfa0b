//! The Prometheus text exposition (format 0.0.4), written by hand: a few counters, gauges and
//! histograms need no registry crate. Metric names are a contract with the Grafana dashboards
//! and alerts under `configs/monitoring/`; do not rename them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request-duration buckets: 100 µs to 10 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Inference and parsing are sub-millisecond per trial: finer buckets at the low end.
const WORK_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        // Counts are per bucket; the exposition accumulates them.
        if let Some(i) = self.bounds.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// Every metric the server exposes.
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_duration: Mutex<BTreeMap<String, Histogram>>,
    inference: Mutex<Histogram>,
    parse: Mutex<Histogram>,
    in_flight: AtomicI64,
    connections: AtomicI64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    ready: AtomicBool,
    model: Mutex<Option<(String, String)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            request_duration: Mutex::new(BTreeMap::new()),
            inference: Mutex::new(Histogram::new(WORK_BUCKETS)),
            parse: Mutex::new(Histogram::new(WORK_BUCKETS)),
            in_flight: AtomicI64::new(0),
            connections: AtomicI64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            model: Mutex::new(None),
        }
    }

    /// A finished request: `endpoint` is the route template (bounded cardinality).
    pub fn request(&self, endpoint: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((endpoint.to_owned(), status))
            .or_insert(0) += 1;
        lock(&self.request_duration)
            .entry(endpoint.to_owned())
            .or_insert_with(|| Histogram::new(REQUEST_BUCKETS))
            .observe(elapsed.as_secs_f64());
    }

    pub fn inference(&self, elapsed: Duration) {
        lock(&self.inference).observe(elapsed.as_secs_f64());
    }

    pub fn parse(&self, elapsed: Duration) {
        lock(&self.parse).observe(elapsed.as_secs_f64());
    }

    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_model(&self, name: &str, version: &str) {
        *lock(&self.model) = Some((name.to_owned(), version.to_owned()));
    }

    /// The exposition, `text/plain; version=0.0.4`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        header(
            &mut out,
            "bciops_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        );
        for ((endpoint, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "bciops_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                escape(endpoint)
            );
        }
        header(
            &mut out,
            "bciops_request_duration_seconds",
            "histogram",
            "Time from request received to response ready, by route.",
        );
        for (endpoint, h) in lock(&self.request_duration).iter() {
            h.write(
                &mut out,
                "bciops_request_duration_seconds",
                &format!("endpoint=\"{}\"", escape(endpoint)),
            );
        }
        header(
            &mut out,
            "bciops_inference_duration_seconds",
            "histogram",
            "Model time per request: band-pass, CSP and SVM over all its trials.",
        );
        lock(&self.inference).write(&mut out, "bciops_inference_duration_seconds", "");
        header(
            &mut out,
            "bciops_parse_duration_seconds",
            "histogram",
            "Time to decode and check a request body (JSON, binary or .npy).",
        );
        lock(&self.parse).write(&mut out, "bciops_parse_duration_seconds", "");
        single(
            &mut out,
            "bciops_requests_in_flight",
            "gauge",
            "Requests being handled now.",
            self.in_flight.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "bciops_open_connections",
            "gauge",
            "Client connections open now (idle kept-alive ones included).",
            self.connections.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "bciops_model_info",
            "gauge",
            "1 for the model being served, labelled with its name and version.",
        );
        if let Some((name, version)) = lock(&self.model).as_ref() {
            let _ = writeln!(
                out,
                "bciops_model_info{{name=\"{}\",version=\"{}\"}} 1",
                escape(name),
                escape(version)
            );
        }
        single(
            &mut out,
            "bciops_model_ready",
            "gauge",
            "1 once a model is loaded and answered its warm-up prediction.",
            u8::from(self.is_ready()),
        );
        single(
            &mut out,
            "bciops_model_reloads_total",
            "counter",
            "Models swapped in after the first one.",
            self.reloads.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "bciops_model_reload_failures_total",
            "counter",
            "Reloads that failed to load, verify or warm up (the old model kept serving).",
            self.reload_failures.load(Ordering::Relaxed),
        );
        out
    }
}

/// A metric without labels: its header and its one value.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_cumulative_buckets_and_escaped_labels() {
        let m = Metrics::new();
        m.request("/classify", 200, Duration::from_micros(300));
        m.request("/classify", 200, Duration::from_millis(3));
        m.request("/classify", 400, Duration::from_micros(50));
        m.set_model("bci", "v\"1");
        let text = m.render();
        assert!(text.contains("bciops_requests_total{endpoint=\"/classify\",status=\"200\"} 2"));
        assert!(text.contains(
            "bciops_request_duration_seconds_bucket{endpoint=\"/classify\",le=\"0.0005\"} 2"
        ));
        assert!(text.contains(
            "bciops_request_duration_seconds_bucket{endpoint=\"/classify\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("bciops_model_info{name=\"bci\",version=\"v\\\"1\"} 1"));
        assert!(text.contains("bciops_inference_duration_seconds_count 0"));
    }
}
