//! Runs: what a command did, recorded as parameters, metrics (with steps), tags and artifacts.
//!
//! Two backends behind one interface, chosen by a URI: an embedded store (a directory; the
//! default `./bciops-store`) and an MLflow tracking server over REST (`http(s)://…`). When the
//! server cannot be reached, the run is written to a local journal instead and
//! `bciops runs sync` replays it later, so a command never fails for want of a server.
//!
//! ```no_run
//! use bciops::tracking::{self, RunSpec, RunStatus};
//! let tracker = tracking::open(&tracking::TrackingConfig::resolve(None, false).unwrap()).unwrap();
//! let mut run = tracker.start_run(RunSpec::new("bciops", "train")).unwrap();
//! run.log_param("seed", "42");
//! run.log_metric("fold_accuracy", 0.8, 0);
//! run.log_artifact("model_dir", "model");
//! let done = run.finish(RunStatus::Finished).unwrap();
//! eprintln!("{}", done.summary());
//! ```
//!
//! A run buffers what it is given and writes it when it finishes (artifacts are read then, so
//! keep the files until `finish`); only starting a run talks to the backend before that, which
//! gives child runs (a sweep's trials) their parent's id at once.

pub mod journal;
pub mod local;
pub mod mlflow;
pub mod wandb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use mlflow::{Endpoint, MlflowClient};

/// The embedded store's default directory (relative to the working directory).
pub const DEFAULT_STORE: &str = "bciops-store";
/// The experiment runs go to when neither `--experiment` nor `MLFLOW_EXPERIMENT_NAME` says.
pub const DEFAULT_EXPERIMENT: &str = "bciops";
/// MLflow's tag linking a child run to its parent.
pub const PARENT_TAG: &str = "mlflow.parentRunId";

/// Where runs are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store: a directory.
    Local(PathBuf),
    /// An MLflow tracking server.
    Mlflow(Endpoint),
}

impl Backend {
    /// `http(s)://…` ⇒ MLflow; `file://PATH` or a plain path ⇒ the embedded store. Any other
    /// scheme is refused (MLflow's own `mlruns/` file layout is not written).
    pub fn parse(uri: &str) -> Result<Backend> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Err(Error::Invalid("the tracking URI is empty".into()));
        }
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok(Backend::Local(PathBuf::from(path)));
        }
        if uri.starts_with("http://") || uri.starts_with("https://") {
            return Ok(Backend::Mlflow(Endpoint::parse(uri)?));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(Error::Invalid(format!(
                "`{}`: unsupported tracking URI scheme `{scheme}` (use http(s)://, file:// or a directory)",
                mlflow::redact(uri)
            )));
        }
        Ok(Backend::Local(PathBuf::from(uri)))
    }

    /// For messages: the directory or the server's URL, never credentials.
    pub fn display(&self) -> String {
        match self {
            Backend::Local(p) => p.display().to_string(),
            Backend::Mlflow(e) => e.base.clone(),
        }
    }
}

/// Where runs go, or that they go nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingConfig {
    /// None: tracking switched off (`--no-track`).
    pub backend: Option<Backend>,
    /// Where runs wait when the server is unreachable.
    pub journal: PathBuf,
}

impl TrackingConfig {
    /// `uri` (the `--tracking-uri` flag) wins over `MLFLOW_TRACKING_URI`; without either the
    /// embedded store `./bciops-store` is used. The journal is `$BCIOPS_JOURNAL` or
    /// `./bciops-store/journal`.
    pub fn resolve(uri: Option<&str>, off: bool) -> Result<TrackingConfig> {
        let journal = std::env::var_os("BCIOPS_JOURNAL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(DEFAULT_STORE).join("journal"));
        if off {
            return Ok(TrackingConfig {
                backend: None,
                journal,
            });
        }
        let env = std::env::var("MLFLOW_TRACKING_URI")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let backend = match uri.map(str::to_owned).or(env) {
            Some(u) => Backend::parse(&u)?,
            None => Backend::Local(PathBuf::from(DEFAULT_STORE)),
        };
        Ok(TrackingConfig {
            backend: Some(backend),
            journal,
        })
    }
}

/// How a run ended (MLflow's run statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// One value of a metric at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub step: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// Everything about one run: what the embedded store and the journal keep in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub status: RunStatus,
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    pub metrics: Vec<MetricPoint>,
    /// Artifact paths (relative, `/`-separated) stored with the run.
    #[serde(default)]
    pub artifacts: Vec<String>,
}

/// What a new run is.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub experiment: String,
    pub name: String,
    /// The parent run's id, for child runs (e.g. a sweep's trials).
    pub parent: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl RunSpec {
    pub fn new(experiment: impl Into<String>, name: impl Into<String>) -> RunSpec {
        RunSpec {
            experiment: experiment.into(),
            name: name.into(),
            ..RunSpec::default()
        }
    }

    pub fn parent(mut self, id: impl Into<String>) -> RunSpec {
        self.parent = Some(id.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> RunSpec {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// An open tracking backend.
pub enum Tracker {
    Off,
    Local(local::LocalStore),
    Mlflow {
        client: Box<MlflowClient>,
        journal: journal::Journal,
    },
}

/// Opens the backend a configuration names (no network traffic yet).
pub fn open(config: &TrackingConfig) -> Result<Tracker> {
    Ok(match &config.backend {
        None => Tracker::Off,
        Some(Backend::Local(dir)) => Tracker::Local(local::LocalStore::new(dir)),
        Some(Backend::Mlflow(endpoint)) => Tracker::Mlflow {
            client: Box::new(MlflowClient::new(endpoint.clone())?),
            journal: journal::Journal::new(&config.journal),
        },
    })
}

/// Where a started run lives.
enum Sink {
    Off,
    Local(local::LocalStore),
    Mlflow {
        client: Box<MlflowClient>,
        run: mlflow::RunInfo,
        journal: journal::Journal,
    },
    Journal {
        journal: journal::Journal,
        server: String,
        cause: String,
        server_run_id: Option<String>,
    },
}

/// A run being recorded. Logging only buffers (it cannot fail); `finish` writes.
pub struct Run {
    sink: Sink,
    record: RunRecord,
    /// (local file or directory, artifact path it goes to).
    artifacts: Vec<(PathBuf, String)>,
    /// A model directory to log as an MLflow 3 logged model, and its name.
    model: Option<(PathBuf, String)>,
}

/// Where a finished run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Off,
    Local {
        dir: PathBuf,
    },
    Mlflow {
        base: String,
        experiment_id: String,
    },
    /// The server was unreachable: the run waits in the journal for `bciops runs sync`.
    Journal {
        dir: PathBuf,
        server: String,
        cause: String,
    },
}

/// A finished run: its id and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub run_id: String,
    pub recorded: Recorded,
}

impl Finished {
    /// One line for stderr.
    pub fn summary(&self) -> String {
        match &self.recorded {
            Recorded::Off => "tracking is off".into(),
            Recorded::Local { dir } => format!("run {} recorded in {}", self.run_id, dir.display()),
            Recorded::Mlflow {
                base,
                experiment_id,
            } => format!(
                "run {} recorded at {base}/#/experiments/{experiment_id}/runs/{}",
                self.run_id, self.run_id
            ),
            Recorded::Journal { dir, server, cause } => format!(
                "warning: MLflow at {server} is unreachable ({cause}); run {} journaled in {} — replay it with `bciops runs sync`",
                self.run_id,
                dir.display()
            ),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh run id: 32 hex digits, as MLflow's.
pub fn new_run_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Tracker {
    /// True when runs are recorded somewhere.
    pub fn is_on(&self) -> bool {
        !matches!(self, Tracker::Off)
    }

    /// Starts a run. With MLflow, an unreachable server sends the run to the journal (an
    /// authentication failure or a refused request is an error).
    pub fn start_run(&self, spec: RunSpec) -> Result<Run> {
        let mut tags = spec.tags.clone();
        tags.insert("mlflow.runName".into(), spec.name.clone());
        if let Some(p) = &spec.parent {
            tags.insert(PARENT_TAG.into(), p.clone());
        }
        let mut record = RunRecord {
            run_id: new_run_id(),
            experiment: spec.experiment.clone(),
            name: spec.name.clone(),
            parent: spec.parent.clone(),
            status: RunStatus::Running,
            start_time: now_ms(),
            end_time: None,
            tags,
            params: BTreeMap::new(),
            metrics: Vec::new(),
            artifacts: Vec::new(),
        };
        let sink = match self {
            Tracker::Off => Sink::Off,
            Tracker::Local(store) => {
                store.create(&record)?;
                Sink::Local(store.clone())
            }
            Tracker::Mlflow { client, journal } => {
                let created = client.experiment_id(&spec.experiment).and_then(|exp| {
                    client.create_run(&exp, &spec.name, record.start_time, &record.tags)
                });
                match created {
                    Ok(run) => {
                        record.run_id = run.run_id.clone();
                        Sink::Mlflow {
                            client: Box::new(MlflowClient::new(client.endpoint.clone())?),
                            run,
                            journal: journal.clone(),
                        }
                    }
                    Err(e) if e.is_unreachable() => Sink::Journal {
                        journal: journal.clone(),
                        server: client.endpoint.base.clone(),
                        cause: unreachable_cause(&e),
                        server_run_id: None,
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok(Run {
            sink,
            record,
            artifacts: Vec::new(),
            model: None,
        })
    }
}

fn unreachable_cause(e: &mlflow::MlflowError) -> String {
    match e {
        mlflow::MlflowError::Unreachable { cause, .. } => cause.clone(),
        _ => String::new(),
    }
}

impl Run {
    /// The run's id (MLflow's, or a local one of the same form).
    pub fn id(&self) -> &str {
        &self.record.run_id
    }

    /// The run's id where it is recorded already (the embedded store, an MLflow server);
    /// None when it is off or waits in the journal, where it gets its id only when synced.
    pub fn server_id(&self) -> Option<&str> {
        match self.sink {
            Sink::Local(_) | Sink::Mlflow { .. } => Some(&self.record.run_id),
            Sink::Off | Sink::Journal { .. } => None,
        }
    }

    /// True when the run is recorded nowhere (`--no-track`).
    pub fn is_off(&self) -> bool {
        matches!(self.sink, Sink::Off)
    }

    pub fn log_param(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.record.params.insert(key.into(), value.into());
    }

    pub fn log_params(&mut self, params: &BTreeMap<String, String>) {
        for (k, v) in params {
            self.log_param(k.clone(), v.clone());
        }
    }

    /// Logs a metric at a step. Non-finite values are skipped (JSON and MLflow's store cannot
    /// round-trip them) and noted in the tag `bciops.skipped_metrics`.
    pub fn log_metric(&mut self, key: impl Into<String>, value: f64, step: i64) {
        let key = key.into();
        if !value.is_finite() {
            let note = self
                .record
                .tags
                .entry("bciops.skipped_metrics".into())
                .or_default();
            if !note.split(',').any(|k| k == key) {
                if !note.is_empty() {
                    note.push(',');
                }
                note.push_str(&key);
            }
            return;
        }
        self.record.metrics.push(MetricPoint {
            key,
            value,
            step,
            timestamp: now_ms(),
        });
    }

    pub fn set_tag(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.record.tags.insert(key.into(), value.into());
    }

    /// Records a file or a directory (recursively) under `artifact_path` (`""`: the run's
    /// artifact root; a directory `d` logged as `model` becomes `model/…`; a file `f` logged
    /// under `""` keeps its name). The files are read when the run finishes.
    pub fn log_artifact(&mut self, local: impl AsRef<Path>, artifact_path: &str) {
        self.artifacts.push((
            local.as_ref().to_owned(),
            artifact_path.trim_matches('/').to_owned(),
        ));
    }

    /// Logs the model directory `dir` the MLflow 3 way too, when the run goes to an MLflow
    /// server that has logged models: a logged model named `name`, linked to this run and
    /// its metrics, with the directory's files. Elsewhere only the artifacts are recorded.
    /// The files are read when the run finishes.
    pub fn log_model(&mut self, dir: impl AsRef<Path>, name: &str) {
        self.model = Some((dir.as_ref().to_owned(), name.to_owned()));
    }

    /// Everything logged so far.
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// Writes the run with its final status. With MLflow, a server that stops answering sends
    /// the run to the journal (keeping its server id, so `runs sync` completes that run).
    pub fn finish(mut self, status: RunStatus) -> Result<Finished> {
        self.record.status = status;
        self.record.end_time = Some(now_ms());
        let run_id = self.record.run_id.clone();
        let sink = std::mem::replace(&mut self.sink, Sink::Off);
        let recorded = match sink {
            Sink::Off => Recorded::Off,
            Sink::Local(store) => {
                let dir = store.finish(&mut self.record, &self.artifacts)?;
                Recorded::Local { dir }
            }
            Sink::Mlflow {
                client,
                run,
                journal,
            } => match push(
                &client,
                &run,
                &self.record,
                &self.artifacts,
                self.model.as_ref(),
            ) {
                Ok(()) => Recorded::Mlflow {
                    base: client.endpoint.base.clone(),
                    experiment_id: run.experiment_id.clone(),
                },
                Err(e) if e.is_unreachable() => {
                    let cause = unreachable_cause(&e);
                    let dir = journal.write(
                        &self.record,
                        &self.artifacts,
                        &client.endpoint.base,
                        Some(&run.run_id),
                    )?;
                    Recorded::Journal {
                        dir,
                        server: client.endpoint.base.clone(),
                        cause,
                    }
                }
                Err(e) => return Err(e.into()),
            },
            Sink::Journal {
                journal,
                server,
                cause,
                server_run_id,
            } => {
                let dir = journal.write(
                    &self.record,
                    &self.artifacts,
                    &server,
                    server_run_id.as_deref(),
                )?;
                Recorded::Journal { dir, server, cause }
            }
        };
        Ok(Finished { run_id, recorded })
    }
}

impl Drop for Run {
    /// A run dropped without `finish` (an error path) is closed as failed, best effort.
    fn drop(&mut self) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        let sink = std::mem::replace(&mut self.sink, Sink::Off);
        let run = Run {
            sink,
            record: self.record.clone(),
            artifacts: Vec::new(),
            model: None,
        };
        let _ = run.finish(RunStatus::Failed);
    }
}

/// Sends a whole run to MLflow: params, metrics and tags in batches, artifacts, the logged
/// model (MLflow 3 servers), status.
fn push(
    client: &MlflowClient,
    run: &mlflow::RunInfo,
    record: &RunRecord,
    artifacts: &[(PathBuf, String)],
    model: Option<&(PathBuf, String)>,
) -> std::result::Result<(), mlflow::MlflowError> {
    // Created first so that the metrics can name it (a logged model's metrics are those
    // logged with its id).
    let logged = match model {
        Some((_, name)) => {
            client.create_logged_model(&run.experiment_id, name, &run.run_id, &record.params)?
        }
        None => None,
    };
    let model_id = logged.as_ref().map(|m| m.model_id.as_str());
    // `mlflow.runName` and the parent tag were sent when the run was created.
    client.log_batch(
        &run.run_id,
        &record.params,
        &record.metrics,
        &record.tags,
        model_id,
    )?;
    for (local, dest) in artifacts {
        client.upload(&run.artifact_uri, local, dest)?;
    }
    if let (Some(logged), Some((dir, _))) = (&logged, model) {
        let uploaded = client.upload(&logged.artifact_uri, dir, "");
        client.finalize_logged_model(&logged.model_id, uploaded.is_ok())?;
        uploaded?;
        client.log_outputs(&run.run_id, &logged.model_id)?;
    }
    client.set_status(
        &run.run_id,
        record.status,
        record.end_time.unwrap_or_else(now_ms),
    )
}

/// Flattens a JSON value into `a.b.c → value` strings (arrays as JSON text), for parameters.
pub fn flatten_params(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_params(&key, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_owned(), "none".into());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// The tags every bciops run carries: version, host, user, command line (credentials in URLs
/// redacted).
pub fn standard_tags() -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert("bciops.version".into(), env!("CARGO_PKG_VERSION").into());
    tags.insert("bciops.host".into(), hostname());
    let args: Vec<String> = std::env::args().map(|a| mlflow::redact(&a)).collect();
    tags.insert("bciops.command".into(), args.join(" "));
    tags.insert("mlflow.source.name".into(), "bciops".into());
    tags.insert("mlflow.source.type".into(), "LOCAL".into());
    if let Ok(user) = std::env::var("USER").or_else(|_| std::env::var("USERNAME")) {
        tags.insert("mlflow.user".into(), user);
    }
    tags
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Copies a file or a directory tree to `dest` (a file keeps its name under `dest`).
pub(crate) fn copy_into(local: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(local).map_err(|e| Error::io("read", local, e))?;
    let mut written = Vec::new();
    if meta.is_file() {
        std::fs::create_dir_all(dest).map_err(|e| Error::io("create", dest, e))?;
        let to = dest.join(local.file_name().unwrap_or_default());
        std::fs::copy(local, &to).map_err(|e| Error::io("copy", local, e))?;
        written.push(to);
        return Ok(written);
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::io("create", dest, e))?;
    for entry in std::fs::read_dir(local).map_err(|e| Error::io("list", local, e))? {
        let entry = entry.map_err(|e| Error::io("list", local, e))?;
        let path = entry.path();
        if path.is_dir() {
            written.extend(copy_into(&path, &dest.join(entry.file_name()))?);
        } else {
            let to = dest.join(entry.file_name());
            std::fs::copy(&path, &to).map_err(|e| Error::io("copy", &path, e))?;
            written.push(to);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trackers_are_shared_across_threads_and_runs_move() {
        // A sweep starts its trials' child runs from worker threads.
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Tracker>();
        send::<Run>();
    }

    #[test]
    fn uris_choose_the_backend() {
        assert_eq!(
            Backend::parse("file:///tmp/s").unwrap(),
            Backend::Local("/tmp/s".into())
        );
        assert_eq!(
            Backend::parse("./store").unwrap(),
            Backend::Local("./store".into())
        );
        assert!(matches!(
            Backend::parse("http://127.0.0.1:5000").unwrap(),
            Backend::Mlflow(_)
        ));
        let e = Backend::parse("s3://u:pw@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`s3`") && !e.contains("pw"), "{e}");
        assert!(Backend::parse(" ").is_err());
    }

    #[test]
    fn params_flatten() {
        let mut out = BTreeMap::new();
        flatten_params(
            "",
            &serde_json::json!({"a": {"b": 1, "c": "x"}, "d": [1, 2], "e": null}),
            &mut out,
        );
        assert_eq!(out["a.b"], "1");
        assert_eq!(out["a.c"], "x");
        assert_eq!(out["d"], "[1,2]");
        assert_eq!(out["e"], "none");
    }

    #[test]
    fn local_runs_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let tracker = open(&TrackingConfig {
            backend: Some(Backend::Local(store.clone())),
            journal: tmp.path().join("j"),
        })
        .unwrap();
        let file = tmp.path().join("metrics.json");
        std::fs::write(&file, b"{}").unwrap();
        let mut parent = tracker.start_run(RunSpec::new("e", "sweep")).unwrap();
        let child = tracker
            .start_run(RunSpec::new("e", "trial 0").parent(parent.id()))
            .unwrap();
        child.finish(RunStatus::Finished).unwrap();
        parent.log_param("seed", "1");
        parent.log_metric("acc", 0.5, 0);
        parent.log_metric("acc", f64::NAN, 1);
        parent.log_artifact(&file, "");
        let id = parent.id().to_owned();
        parent.finish(RunStatus::Finished).unwrap();
        let runs = local::LocalStore::new(&store).list().unwrap();
        assert_eq!(runs.len(), 2);
        let r = local::LocalStore::new(&store).get(&id).unwrap();
        assert_eq!(r.params["seed"], "1");
        assert_eq!(r.metrics.len(), 1);
        assert_eq!(r.tags["bciops.skipped_metrics"], "acc");
        assert_eq!(r.artifacts, vec!["metrics.json".to_owned()]);
        let child = runs.iter().find(|r| r.run_id != id).unwrap();
        assert_eq!(child.tags[PARENT_TAG], id);
    }
}
