//! What a sweep leaves behind: `trials.json` and `trials.csv` (one row per trial),
//! `best.json` (which `train --params` reads) and `report.html` (the metric against each
//! parameter). Also the merge of several shards' outputs into one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::family::Params;
use crate::model::report::esc;
use crate::tune::journal::{Record, Status};
use crate::tune::space::PrepOverrides;
use crate::tune::sweep::Goal;

/// What the trials were run for; the same in every shard of one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    pub name: Option<String>,
    pub method: String,
    pub metric: String,
    /// `maximize` or `minimize`.
    pub goal: String,
    pub evaluation: String,
    pub seed: u64,
    pub dataset_sha256: String,
    /// Parameter names in the sweep file's spelling.
    pub parameters: Vec<String>,
    /// `[i, n]` when these trials are shard i of n (1-based).
    pub shard: Option<(usize, usize)>,
}

impl SweepInfo {
    pub fn goal(&self) -> Goal {
        if self.goal == "minimize" {
            Goal::Minimize
        } else {
            Goal::Maximize
        }
    }
}

/// `trials.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialsFile {
    pub format: String,
    pub sweep: SweepInfo,
    pub trials: Vec<Record>,
}

/// `best.json`: the parameters under `params`, so `train --params best.json` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub params: Params,
    /// Preprocessing that differs from the dataset's (apply it with `preprocess` flags).
    #[serde(default, skip_serializing_if = "PrepOverrides::is_empty")]
    pub preprocess: PrepOverrides,
    pub trial_id: String,
    pub values: BTreeMap<String, Value>,
    pub metric: String,
    pub goal: String,
    pub value: f64,
    pub accuracy: Option<f64>,
    pub kappa: Option<f64>,
    pub fold_accuracy: Vec<f64>,
    pub evaluation: String,
    pub seed: u64,
    pub dataset_sha256: String,
    pub sweep: Option<String>,
}

const TRIALS_FORMAT: &str = "bciops-tune-trials 1";

/// Whether `a` is better than `b` under `goal`.
pub fn better(a: f64, b: f64, goal: Goal) -> bool {
    match goal {
        Goal::Maximize => a > b,
        Goal::Minimize => a < b,
    }
}

/// The best complete trial: every fold ran (pruned trials have partial means), ties to the
/// earliest.
pub fn best<'r>(records: &'r [Record], metric: &str, goal: Goal) -> Option<&'r Record> {
    let mut best: Option<(&Record, f64)> = None;
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        let Some(v) = r.metric(metric).filter(|v| v.is_finite()) else {
            continue;
        };
        if best.is_none_or(|(b, bv)| better(v, bv, goal) || (v == bv && r.index < b.index)) {
            best = Some((r, v));
        }
    }
    best.map(|(r, _)| r)
}

/// Records sorted best first (failed last), for tables.
pub fn ranked<'r>(records: &'r [Record], metric: &str, goal: Goal) -> Vec<&'r Record> {
    let mut v: Vec<&Record> = records.iter().collect();
    v.sort_by(|a, b| {
        let key = |r: &Record| match (r.status, r.metric(metric)) {
            (Status::Failed, _) | (_, None) => (2, 0.0),
            (Status::Pruned, Some(m)) => (1, if goal == Goal::Maximize { -m } else { m }),
            (Status::Ok, Some(m)) => (0, if goal == Goal::Maximize { -m } else { m }),
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(a.index.cmp(&b.index))
    });
    v
}

/// Writes trials.json, trials.csv, best.json (when a trial succeeded) and report.html into
/// `dir`, each atomically.
pub fn write_all(dir: &Path, info: &SweepInfo, records: &[Record]) -> Result<Option<Best>> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| r.index);
    let file = TrialsFile {
        format: TRIALS_FORMAT.to_owned(),
        sweep: info.clone(),
        trials: sorted,
    };
    let json = serde_json::to_string_pretty(&file).map_err(|e| Error::encode("the trials", e))?;
    write_atomic(&dir.join("trials.json"), json.as_bytes())?;
    write_atomic(&dir.join("trials.csv"), csv(info, &file.trials).as_bytes())?;
    let best = best(&file.trials, &info.metric, info.goal()).and_then(|r| {
        Some(Best {
            params: r.params.clone()?,
            preprocess: r.preprocess.clone(),
            trial_id: r.id.clone(),
            values: r.values.clone(),
            metric: info.metric.clone(),
            goal: info.goal.clone(),
            value: r.metric(&info.metric)?,
            accuracy: r.accuracy,
            kappa: r.kappa,
            fold_accuracy: r.fold_accuracy.clone(),
            evaluation: info.evaluation.clone(),
            seed: info.seed,
            dataset_sha256: info.dataset_sha256.clone(),
            sweep: info.name.clone(),
        })
    });
    let best_path = dir.join("best.json");
    match &best {
        Some(b) => {
            let text =
                serde_json::to_string_pretty(b).map_err(|e| Error::encode("best.json", e))?;
            write_atomic(&best_path, format!("{text}\n").as_bytes())?;
        }
        // No trial succeeded: a stale best.json from an earlier sweep must not stay.
        None if best_path.exists() => {
            std::fs::remove_file(&best_path).map_err(|e| Error::io("remove", &best_path, e))?
        }
        None => {}
    }
    write_atomic(
        &dir.join("report.html"),
        report(info, &file.trials).as_bytes(),
    )?;
    Ok(best)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v}"))
}

/// One row per trial: id, status, the metric, accuracy, kappa, each fold's metric, seconds,
/// the error, then one column per sweep parameter.
pub fn csv(info: &SweepInfo, records: &[Record]) -> String {
    let folds = records
        .iter()
        .map(|r| r.fold_accuracy.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("trial_id,index,status,metric,accuracy,kappa");
    for f in 1..=folds {
        let _ = write!(out, ",fold_{f}_{}", info.metric);
    }
    out.push_str(",seconds,error");
    for p in &info.parameters {
        let _ = write!(out, ",{}", csv_field(p));
    }
    out.push('\n');
    for r in records {
        let _ = write!(
            out,
            "{},{},{},{},{},{}",
            r.id,
            r.index,
            r.status.as_str(),
            opt(r.metric(&info.metric)),
            opt(r.accuracy),
            opt(r.kappa)
        );
        let fs = r.folds(&info.metric);
        for f in 0..folds {
            let _ = write!(out, ",{}", opt(fs.get(f).copied()));
        }
        let _ = write!(
            out,
            ",{:.4},{}",
            r.seconds,
            csv_field(r.error.as_deref().unwrap_or(""))
        );
        for p in &info.parameters {
            let _ = write!(
                out,
                ",{}",
                csv_field(&r.values.get(p).map(value_text).unwrap_or_default())
            );
        }
        out.push('\n');
    }
    out
}

/// Reads a sweep output directory's trials.json.
pub fn read_trials(dir: &Path) -> Result<TrialsFile> {
    let path = dir.join("trials.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let file: TrialsFile = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(&path, format!("not a sweep's trials table: {e}")))?;
    if file.format != TRIALS_FORMAT {
        return Err(Error::malformed(
            &path,
            format!("format `{}` is not `{TRIALS_FORMAT}`", file.format),
        ));
    }
    Ok(file)
}

/// Combines shard outputs: the sweeps must agree on everything but the shard; a trial present
/// in several keeps its best status (ok over pruned over failed).
pub fn merge(dirs: &[&Path]) -> Result<(SweepInfo, Vec<Record>)> {
    let Some((first_dir, rest)) = dirs.split_first() else {
        return Err(Error::Invalid(
            "`tune merge` needs at least one directory".into(),
        ));
    };
    let first = read_trials(first_dir)?;
    let mut info = first.sweep.clone();
    info.shard = None;
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    let mut add = |records: Vec<Record>| {
        for r in records {
            let rank = |s: Status| match s {
                Status::Ok => 0,
                Status::Pruned => 1,
                Status::Failed => 2,
            };
            match by_id.get(&r.id) {
                Some(old) if rank(old.status) <= rank(r.status) => {}
                _ => {
                    by_id.insert(r.id.clone(), r);
                }
            }
        }
    };
    add(first.trials);
    let mut parameters: BTreeSet<String> = info.parameters.iter().cloned().collect();
    for dir in rest {
        let other = read_trials(dir)?;
        let s = &other.sweep;
        let clash = [
            ("metric", s.metric != info.metric || s.goal != info.goal),
            ("evaluation", s.evaluation != info.evaluation),
            ("dataset", s.dataset_sha256 != info.dataset_sha256),
            ("method", s.method != info.method),
        ];
        if let Some((what, _)) = clash.iter().find(|(_, c)| *c) {
            return Err(Error::Invalid(format!(
                "`{}` and `{}` are not shards of one sweep: their {what} differs",
                first_dir.display(),
                dir.display()
            )));
        }
        parameters.extend(s.parameters.iter().cloned());
        add(other.trials);
    }
    info.parameters = parameters.into_iter().collect();
    let mut records: Vec<Record> = by_id.into_values().collect();
    records.sort_by(|a, b| a.index.cmp(&b.index).then(a.id.cmp(&b.id)));
    Ok((info, records))
}

/// The top `n` trials as a plain-text table (for the terminal).
pub fn top_table(info: &SweepInfo, records: &[Record], n: usize) -> String {
    let mut out = format!(
        "{:<4} {:<12} {:<7} {:>9}  parameters\n",
        "rank", "trial", "status", info.metric
    );
    for (i, r) in ranked(records, &info.metric, info.goal())
        .into_iter()
        .take(n)
        .enumerate()
    {
        let params: Vec<String> = r
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        let metric = r
            .metric(&info.metric)
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
        let _ = writeln!(
            out,
            "{:<4} {:<12} {:<7} {:>9}  {}",
            i + 1,
            r.id,
            r.status.as_str(),
            metric,
            params.join(" ")
        );
    }
    out
}

/// Self-contained HTML: facts, the top trials, and the metric against each parameter (one
/// SVG scatter each; categories side by side, numbers on a linear or log axis).
pub fn report(info: &SweepInfo, records: &[Record]) -> String {
    let mut h = String::new();
    let title = format!("Sweep {}", info.name.as_deref().unwrap_or("(unnamed)"));
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
         td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}section{{margin:1.5em 0}}\
         .plots svg{{margin:0 12px 12px 0}}</style></head><body><h1>{}</h1><table>",
        esc(&title),
        esc(&title)
    );
    let count = |s: Status| records.iter().filter(|r| r.status == s).count();
    let facts = [
        ("method", info.method.clone()),
        ("metric", format!("{} ({})", info.metric, info.goal)),
        ("evaluation", info.evaluation.clone()),
        ("seed", info.seed.to_string()),
        ("dataset sha256", info.dataset_sha256.clone()),
        (
            "trials",
            format!(
                "{} ({} complete, {} stopped early, {} failed)",
                records.len(),
                count(Status::Ok),
                count(Status::Pruned),
                count(Status::Failed)
            ),
        ),
    ];
    for (k, v) in facts {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str(
        "</table><section><h2>Top trials</h2><table><tr><th>rank</th><th>trial</th><th>status</th>",
    );
    let _ = write!(h, "<th>{}</th>", esc(&info.metric));
    for p in &info.parameters {
        let _ = write!(h, "<th>{}</th>", esc(p));
    }
    h.push_str("</tr>");
    for (i, r) in ranked(records, &info.metric, info.goal())
        .into_iter()
        .take(15)
        .enumerate()
    {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            i + 1,
            esc(&r.id),
            r.status.as_str(),
            r.metric(&info.metric)
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
        );
        for p in &info.parameters {
            let v = r.values.get(p).map(value_text).unwrap_or_default();
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></section>");
    let failures: BTreeMap<&str, usize> =
        records
            .iter()
            .filter_map(|r| r.error.as_deref())
            .fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e).or_default() += 1;
                m
            });
    if !failures.is_empty() {
        h.push_str("<section><h2>Failures</h2><table><tr><th>trials</th><th>reason</th></tr>");
        for (reason, n) in failures {
            let _ = write!(h, "<tr><td>{n}</td><td>{}</td></tr>", esc(reason));
        }
        h.push_str("</table></section>");
    }
    let _ = write!(
        h,
        "<section class=\"plots\"><h2>{} against each parameter</h2><p>One dot per trial that ran \
         (grey: stopped early); categories are spread sideways so equal values stay visible.</p>",
        esc(&info.metric)
    );
    for p in &info.parameters {
        h.push_str(&scatter_svg(p, &info.metric, records));
    }
    h.push_str("</section></body></html>\n");
    h
}

/// Where a value goes on the x axis (`k` spreads equal categories sideways).
type XPosition = Box<dyn Fn(&Value, usize) -> f64>;

/// The metric (y) against one parameter (x).
fn scatter_svg(param: &str, metric: &str, records: &[Record]) -> String {
    const W: f64 = 320.0;
    const H: f64 = 220.0;
    const L: f64 = 48.0;
    const B: f64 = 34.0;
    let points: Vec<(&Value, f64, bool)> = records
        .iter()
        .filter(|r| r.status != Status::Failed)
        .filter_map(|r| {
            Some((
                r.values.get(param)?,
                r.metric(metric).filter(|v| v.is_finite())?,
                r.status == Status::Pruned,
            ))
        })
        .collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{} against {}\"><text x=\"{}\" y=\"14\" font-size=\"13\" text-anchor=\"middle\">{}</text>",
        esc(metric),
        esc(param),
        W / 2.0,
        esc(param)
    );
    if points.is_empty() {
        s.push_str("<text x=\"20\" y=\"100\" font-size=\"12\">no trial ran</text></svg>");
        return s;
    }
    let (ymin, ymax) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = ((ymax - ymin) * 0.05).max(1e-3);
    let (ymin, ymax) = (ymin - pad, ymax + pad);
    let y_of = |v: f64| 24.0 + (H - B - 24.0) * (1.0 - (v - ymin) / (ymax - ymin));
    let x0 = L;
    let x1 = W - 10.0;
    let numeric = points.iter().all(|p| p.0.is_number());
    let mut labels: Vec<(f64, String)> = Vec::new();
    let x_of: XPosition = if numeric {
        let xs: Vec<f64> = points.iter().filter_map(|p| p.0.as_f64()).collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let log = lo > 0.0 && hi / lo > 20.0;
        let t = move |v: f64| if log { v.ln() } else { v };
        let (tl, th) = (t(lo), t(hi));
        let span = if th > tl { th - tl } else { 1.0 };
        let f = move |v: &Value, _: usize| {
            let u = if th > tl {
                (t(v.as_f64().unwrap_or(lo)) - tl) / span
            } else {
                0.5
            };
            x0 + 8.0 + u * (x1 - x0 - 16.0)
        };
        for v in [lo, hi] {
            labels.push((f(&Value::from(v), 0), format!("{v:.3}")));
        }
        if log {
            labels.push(((x0 + x1) / 2.0, "(log scale)".to_owned()));
        }
        Box::new(f)
    } else {
        let mut cats: Vec<String> = Vec::new();
        for p in &points {
            let t = value_text(p.0);
            if !cats.contains(&t) {
                cats.push(t);
            }
        }
        let n = cats.len() as f64;
        let cats2 = cats.clone();
        let f = move |v: &Value, k: usize| {
            let i = cats2.iter().position(|c| *c == value_text(v)).unwrap_or(0) as f64;
            let cell = (x1 - x0) / n;
            // Deterministic sideways spread inside the category's cell.
            let jitter = ((k as f64 * 0.618_034) % 1.0 - 0.5) * cell * 0.5;
            x0 + cell * (i + 0.5) + jitter
        };
        for (i, c) in cats.iter().enumerate() {
            labels.push((x0 + (x1 - x0) / n * (i as f64 + 0.5), c.clone()));
        }
        Box::new(f)
    };
    let _ = write!(
        s,
        "<line x1=\"{x0}\" y1=\"{}\" x2=\"{x1}\" y2=\"{}\" stroke=\"#999\"/><line x1=\"{x0}\" y1=\"24\" x2=\"{x0}\" y2=\"{}\" stroke=\"#999\"/>",
        H - B,
        H - B,
        H - B
    );
    for v in [ymin + pad, ymax - pad] {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{v:.3}</text>",
            x0 - 4.0,
            y_of(v) + 3.0
        );
    }
    for (x, t) in labels {
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            H - B + 14.0,
            esc(&t)
        );
    }
    for (k, (v, m, pruned)) in points.iter().enumerate() {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.6\"/>",
            x_of(v, k),
            y_of(*m),
            if *pruned { "#aaa" } else { "#2563eb" }
        );
    }
    s.push_str("</svg>");
    s
}
