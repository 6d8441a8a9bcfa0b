//! A small blocking client for MLflow's REST API (tracking, model registry, artifact proxy).
//!
//! No maintained MLflow crate exists, and the API is plain JSON over HTTP. What makes it a
//! real client: batches are cut to the server's limits, list calls follow page tokens, 5xx
//! answers and connection failures are retried with exponential backoff, every call has a
//! timeout, and credentials (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD`) are sent but never printed.
//!
//! Uses `reqwest::blocking`, which runs its own small runtime: call it from plain threads (in
//! an async server, from `spawn_blocking`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{MetricPoint, RunStatus};
use crate::error::Error;

/// MLflow's `log-batch` limits per call.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
pub const MAX_TAGS_PER_BATCH: usize = 100;

/// How the client proves who it is. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

impl Auth {
    /// Credentials from MLflow's own environment variables (a token wins).
    pub fn from_env() -> Auth {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            return Auth::Bearer(token);
        }
        match (
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(user), Some(password)) => Auth::Basic { user, password },
            _ => Auth::None,
        }
    }
}

/// An MLflow server: its base URL (without credentials) and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base: String,
    pub auth: Auth,
}

impl Endpoint {
    /// Parses `http(s)://[user:password@]host[:port][/prefix]`; credentials in the URL are
    /// taken out of it (so the URL can be printed) and used as Basic auth.
    pub fn parse(uri: &str) -> Result<Endpoint, Error> {
        let mut url = reqwest::Url::parse(uri)
            .map_err(|e| Error::Invalid(format!("`{}` is not a URL: {e}", redact(uri))))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Invalid(format!(
                "`{}` is not an http(s) MLflow URL",
                redact(uri)
            )));
        }
        let mut auth = Auth::from_env();
        if !url.username().is_empty() {
            auth = Auth::Basic {
                user: url.username().to_owned(),
                password: url.password().unwrap_or("").to_owned(),
            };
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(Endpoint {
            base: url.as_str().trim_end_matches('/').to_owned(),
            auth,
        })
    }
}

/// Hides the credentials of a URL (`http://u:p@h` → `http://***@h`) for messages and records.
pub fn redact(text: &str) -> String {
    match (text.find("://"), text.find('@')) {
        (Some(s), Some(at)) if at > s && !text[s + 3..at].contains('/') => {
            format!("{}***{}", &text[..s + 3], &text[at..])
        }
        _ => text.to_owned(),
    }
}

/// What went wrong talking to MLflow, in the terms the callers act on.
#[derive(Debug)]
pub enum MlflowError {
    /// No answer: connection refused, DNS, timeout, or 5xx after every retry.
    Unreachable { base: String, cause: String },
    /// 401 or 403.
    Auth { base: String, status: u16 },
    /// Any other non-success answer, with MLflow's `error_code` when it sent one.
    Api {
        base: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// Local trouble (reading a file to upload, writing a download).
    Local(Error),
}

impl MlflowError {
    /// True when the server could not be reached at all: the caller may journal instead.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, MlflowError::Unreachable { .. })
    }

    /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, …), if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<MlflowError> for Error {
    fn from(e: MlflowError) -> Error {
        match e {
            // The issue asks for exit code 2: a server that is down or a wrong address is a
            // setting to fix, not a failure of this machine.
            MlflowError::Unreachable { base, cause } => {
                Error::Invalid(format!("cannot reach MLflow at `{base}`: {cause}"))
            }
            MlflowError::Auth { base, status } => Error::Invalid(format!(
                "authentication failed at `{base}` (HTTP {status}): check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )),
            MlflowError::Api {
                base,
                what,
                status,
                code,
                message,
            } => {
                let msg = format!("MLflow at `{base}` refused {what} (HTTP {status} {code}): {message}");
                if status >= 500 {
                    Error::io("use", base, std::io::Error::other(msg))
                } else {
                    Error::Invalid(msg)
                }
            }
            MlflowError::Local(e) => e,
        }
    }
}

type MResult<T> = Result<T, MlflowError>;

/// A run as MLflow describes it (the parts bciops reads).
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
    pub status: String,
}

/// A model version as the registry describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelVersionJson {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub creation_timestamp: Option<i64>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// An MLflow 3 logged model: its id (`m-…`) and where its files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedModel {
    pub model_id: String,
    pub artifact_uri: String,
}

/// The blocking REST client.
pub struct MlflowClient {
    pub endpoint: Endpoint,
    http: Client,
    attempts: u32,
    backoff: Duration,
}

impl MlflowClient {
    /// A client with timeouts (connect 5 s, whole call 120 s) and 4 attempts per call
    /// (backoff 0.25, 0.5, 1 s). `BCIOPS_MLFLOW_ATTEMPTS` overrides the attempts.
    pub fn new(endpoint: Endpoint) -> Result<MlflowClient, Error> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("bciops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build an HTTP client: {e}")))?;
        let attempts = std::env::var("BCIOPS_MLFLOW_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(4);
        Ok(MlflowClient {
            endpoint,
            http,
            attempts,
            backoff: Duration::from_millis(250),
        })
    }

    fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.endpoint.auth {
            Auth::None => rb,
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::Basic { user, password } => rb.basic_auth(user, Some(password)),
        }
    }

    /// Sends a request built by `make` (called again for each retry); retries connection
    /// failures and 5xx with exponential backoff; maps 401/403 and other failures.
    fn send(&self, what: &str, make: &dyn Fn() -> MResult<RequestBuilder>) -> MResult<Response> {
        let base = self.endpoint.base.clone();
        let mut delay = self.backoff;
        let mut last_cause = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                std::thread::sleep(delay);
                delay *= 2;
            }
            let response = self.authed(make()?).send();
            match response {
                Err(e) => {
                    // reqwest's message may hold the URL, never the credentials (they are
                    // sent as a header, not in the URL).
                    last_cause = if e.is_timeout() {
                        "timed out".to_owned()
                    } else if e.is_connect() {
                        "connection failed".to_owned()
                    } else {
                        format!("request failed ({})", e.without_url())
                    };
                }
                Ok(r) if r.status().is_server_error() => {
                    last_cause = format!("HTTP {} on {what}", r.status().as_u16());
                }
                Ok(r)
                    if r.status() == StatusCode::UNAUTHORIZED
                        || r.status() == StatusCode::FORBIDDEN =>
                {
                    return Err(MlflowError::Auth {
                        base,
                        status: r.status().as_u16(),
                    })
                }
                Ok(r) if !r.status().is_success() => {
                    let status = r.status().as_u16();
                    let body: Value = r.json().unwrap_or(Value::Null);
                    let code = body["error_code"].as_str().unwrap_or("").to_owned();
                    let mut message = body["message"].as_str().unwrap_or("").to_owned();
                    if code.is_empty() && message.is_empty() {
                        message =
                            "the answer is not MLflow's: is this an MLflow server URL?".to_owned();
                    }
                    return Err(MlflowError::Api {
                        base,
                        what: what.to_owned(),
                        status,
                        code,
                        message: message.chars().take(300).collect(),
                    });
                }
                Ok(r) => return Ok(r),
            }
        }
        Err(MlflowError::Unreachable {
            base,
            cause: format!("{last_cause} after {} attempt(s)", self.attempts),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/2.0/{path}", self.endpoint.base)
    }

    fn json_of(&self, what: &str, r: Response) -> MResult<Value> {
        r.json::<Value>().map_err(|_| MlflowError::Api {
            base: self.endpoint.base.clone(),
            what: what.to_owned(),
            status: 200,
            code: String::new(),
            message: "the answer is not JSON: is this an MLflow server URL?".to_owned(),
        })
    }

    /// `POST api/2.0/mlflow/<path>` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> MResult<Value> {
        let url = self.url(&format!("mlflow/{path}"));
        let r = self.send(path, &|| Ok(self.http.post(&url).json(body)))?;
        self.json_of(path, r)
    }

    /// `PATCH api/2.0/mlflow/<path>` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> MResult<Value> {
        let url = self.url(&format!("mlflow/{path}"));
        let r = self.send(path, &|| Ok(self.http.patch(&url).json(body)))?;
        self.json_of(path, r)
    }

    /// `GET api/2.0/mlflow/<path>?query`.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> MResult<Value> {
        let url = self.url(&format!("mlflow/{path}"));
        let r = self.send(path, &|| Ok(self.http.get(&url).query(query)))?;
        self.json_of(path, r)
    }

    // ---- tracking ----

    /// The id of experiment `name`, created if missing.
    pub fn experiment_id(&self, name: &str) -> MResult<String> {
        match self.get(
            "experiments/get-by-name",
            &[("experiment_name", name.to_owned())],
        ) {
            Ok(v) => return Ok(str_of(&v["experiment"]["experiment_id"])),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            Err(e) => return Err(e),
        }
        match self.post("experiments/create", &json!({ "name": name })) {
            Ok(v) => Ok(str_of(&v["experiment_id"])),
            // Another process created it in between.
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {
                let v = self.get(
                    "experiments/get-by-name",
                    &[("experiment_name", name.to_owned())],
                )?;
                Ok(str_of(&v["experiment"]["experiment_id"]))
            }
            Err(e) => Err(e),
        }
    }

    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        start_time: i64,
        tags: &BTreeMap<String, String>,
    ) -> MResult<RunInfo> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let v = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": start_time,
                "tags": tags,
            }),
        )?;
        Ok(run_info(&v["run"]["info"]))
    }

    pub fn get_run(&self, run_id: &str) -> MResult<Value> {
        self.get("runs/get", &[("run_id", run_id.to_owned())])
    }

    pub fn run_info(&self, run_id: &str) -> MResult<RunInfo> {
        Ok(run_info(&self.get_run(run_id)?["run"]["info"]))
    }

    /// Logs everything in as few `log-batch` calls as MLflow's limits allow.
    /// With `model_id` (an MLflow 3 logged model), the metrics are linked to that model too.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &BTreeMap<String, String>,
        metrics: &[MetricPoint],
        tags: &BTreeMap<String, String>,
        model_id: Option<&str>,
    ) -> MResult<usize> {
        let mut batches = batches(params, metrics, tags);
        if let Some(id) = model_id {
            for m in batches.iter_mut().flat_map(|(_, m, _)| m.iter_mut()) {
                m["model_id"] = json!(id);
            }
        }
        for (p, m, t) in &batches {
            self.post(
                "runs/log-batch",
                &json!({"run_id": run_id, "params": p, "metrics": m, "tags": t}),
            )?;
        }
        Ok(batches.len())
    }

    pub fn set_status(&self, run_id: &str, status: RunStatus, end_time: i64) -> MResult<()> {
        self.post(
            "runs/update",
            &json!({"run_id": run_id, "status": status.as_str(), "end_time": end_time}),
        )?;
        Ok(())
    }

    /// Every run of the experiments matching `filter`, following page tokens.
    pub fn search_runs(&self, experiment_ids: &[String], filter: &str) -> MResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "experiment_ids": experiment_ids,
                "filter": filter,
                "max_results": 1000,
            });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let v = self.post("runs/search", &body)?;
            out.extend(v["runs"].as_array().cloned().unwrap_or_default());
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    // ---- logged models (MLflow 3) ----

    /// Creates an MLflow 3 logged model produced by run `source_run_id`, status pending.
    /// None from a server that has no logged models (MLflow 2.x answers the route 404): the
    /// run, its artifacts and registration work without one.
    pub fn create_logged_model(
        &self,
        experiment_id: &str,
        name: &str,
        source_run_id: &str,
        params: &BTreeMap<String, String>,
    ) -> MResult<Option<LoggedModel>> {
        // The create call carries at most 100 params (MLflow's own client sends the rest
        // with log-params); bciops' models have fewer.
        let params: Vec<Value> = params
            .iter()
            .take(MAX_PARAMS_PER_BATCH)
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let body = json!({
            "experiment_id": experiment_id,
            "name": name,
            "model_type": "bciops",
            "source_run_id": source_run_id,
            "params": params,
        });
        match self.post("logged-models", &body) {
            Ok(v) => {
                let info = &v["model"]["info"];
                Ok(Some(LoggedModel {
                    model_id: str_of(&info["model_id"]),
                    artifact_uri: str_of(&info["artifact_uri"]),
                }))
            }
            Err(MlflowError::Api {
                status: 404,
                ref code,
                ..
            }) if code != "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Marks a logged model's files complete (`LOGGED_MODEL_READY`) or failed.
    pub fn finalize_logged_model(&self, model_id: &str, ready: bool) -> MResult<()> {
        let status = if ready {
            "LOGGED_MODEL_READY"
        } else {
            "LOGGED_MODEL_UPLOAD_FAILED"
        };
        self.patch(
            &format!("logged-models/{}", percent_encode(model_id)),
            &json!({"model_id": model_id, "status": status}),
        )?;
        Ok(())
    }

    /// Records a logged model as an output of a run (what the run page lists).
    pub fn log_outputs(&self, run_id: &str, model_id: &str) -> MResult<()> {
        self.post(
            "runs/outputs",
            &json!({"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}),
        )?;
        Ok(())
    }

    // ---- artifacts (through the server's proxy) ----

    /// The proxy path of an `mlflow-artifacts:/…` URI (with or without a host part).
    pub fn proxy_path(artifact_uri: &str) -> Option<String> {
        let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
        let rest = rest.trim_start_matches('/');
        // `mlflow-artifacts://host:port/path` carries a host before the path.
        let rest = if artifact_uri.starts_with("mlflow-artifacts://") {
            rest.split_once('/').map_or("", |(_, p)| p)
        } else {
            rest
        };
        Some(rest.trim_end_matches('/').to_owned())
    }

    fn artifact_url(&self, path: &str) -> String {
        let encoded: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_encode)
            .collect();
        self.url(&format!("mlflow-artifacts/artifacts/{}", encoded.join("/")))
    }

    /// Uploads a file or (recursively) a directory to `artifact_root/dest`.
    pub fn upload(&self, artifact_root: &str, local: &Path, dest: &str) -> MResult<usize> {
        let root = Self::proxy_path(artifact_root).ok_or_else(|| {
            MlflowError::Local(Error::Invalid(format!(
                "run artifact location `{artifact_root}` is not served by MLflow's artifact proxy (start the server with --artifacts-destination)"
            )))
        })?;
        let mut files = Vec::new();
        collect_files(local, dest, &mut files).map_err(MlflowError::Local)?;
        for (path, rel) in &files {
            let url = self.artifact_url(&format!("{root}/{rel}"));
            let bytes =
                std::fs::read(path).map_err(|e| MlflowError::Local(Error::io("read", path, e)))?;
            self.send("artifact upload", &|| {
                Ok(self.http.request(Method::PUT, &url).body(bytes.clone()))
            })?;
        }
        Ok(files.len())
    }

    /// Lists the files under a proxied artifact directory, recursively (paths relative to it).
    pub fn list_artifacts(&self, artifact_dir: &str) -> MResult<Vec<(String, u64)>> {
        let root = Self::proxy_path(artifact_dir).ok_or_else(|| {
            MlflowError::Local(Error::Invalid(format!(
                "artifact location `{artifact_dir}` is not served by MLflow's artifact proxy"
            )))
        })?;
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(rel) = pending.pop() {
            let path = if rel.is_empty() {
                root.clone()
            } else {
                format!("{root}/{rel}")
            };
            let url = self.url("mlflow-artifacts/artifacts");
            let r = self.send("artifact list", &|| {
                Ok(self.http.get(&url).query(&[("path", path.as_str())]))
            })?;
            let v = self.json_of("artifact list", r)?;
            for f in v["files"].as_array().cloned().unwrap_or_default() {
                let name = f["path"].as_str().unwrap_or("").to_owned();
                // The proxy answers names relative to the listed directory.
                let name = name.rsplit('/').next().unwrap_or("").to_owned();
                if name.is_empty() {
                    continue;
                }
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if f["is_dir"].as_bool().unwrap_or(false) {
                    pending.push(child);
                } else {
                    let size = f["file_size"]
                        .as_u64()
                        .or_else(|| f["file_size"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap_or(0);
                    out.push((child, size));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Downloads every file under a proxied artifact directory into `dest`.
    pub fn download_dir(&self, artifact_dir: &str, dest: &Path) -> MResult<usize> {
        let files = self.list_artifacts(artifact_dir)?;
        let root = Self::proxy_path(artifact_dir).unwrap_or_default();
        for (rel, _) in &files {
            if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                continue;
            }
            let url = self.artifact_url(&format!("{root}/{rel}"));
            let r = self.send("artifact download", &|| Ok(self.http.get(&url)))?;
            let bytes = r.bytes().map_err(|e| MlflowError::Unreachable {
                base: self.endpoint.base.clone(),
                cause: format!("download interrupted ({})", e.without_url()),
            })?;
            let path = dest.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| MlflowError::Local(Error::io("create", parent, e)))?;
            }
            std::fs::write(&path, &bytes)
                .map_err(|e| MlflowError::Local(Error::io("write", &path, e)))?;
        }
        Ok(files.len())
    }

    // ---- model registry ----

    /// Creates a registered model; an existing one is fine.
    pub fn ensure_registered_model(&self, name: &str) -> MResult<()> {
        match self.post("registered-models/create", &json!({ "name": name })) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn registered_model(&self, name: &str) -> MResult<Value> {
        self.get("registered-models/get", &[("name", name.to_owned())])
    }

    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> MResult<ModelVersionJson> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let v = self.post(
            "model-versions/create",
            &json!({"name": name, "source": source, "run_id": run_id, "tags": tags}),
        )?;
        self.version_of(&v["model_version"])
    }

    fn version_of(&self, v: &Value) -> MResult<ModelVersionJson> {
        serde_json::from_value(v.clone()).map_err(|e| MlflowError::Api {
            base: self.endpoint.base.clone(),
            what: "model version".into(),
            status: 200,
            code: String::new(),
            message: format!("unexpected answer: {e}"),
        })
    }

    pub fn model_version(&self, name: &str, version: u64) -> MResult<ModelVersionJson> {
        let v = self.get(
            "model-versions/get",
            &[("name", name.to_owned()), ("version", version.to_string())],
        )?;
        self.version_of(&v["model_version"])
    }

    /// The version behind `alias`, or None when the alias is not set (MLflow answers 400 or
    /// 404 for an unknown alias).
    pub fn version_by_alias(&self, name: &str, alias: &str) -> MResult<Option<ModelVersionJson>> {
        match self.get(
            "registered-models/alias",
            &[("name", name.to_owned()), ("alias", alias.to_owned())],
        ) {
            Ok(v) => Ok(Some(self.version_of(&v["model_version"])?)),
            Err(MlflowError::Api { status, code, .. })
                if (status == 400 || status == 404) && code != "RESOURCE_DOES_NOT_EXIST" =>
            {
                Ok(None)
            }
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {
                // Either the model or the alias is missing: tell them apart.
                self.registered_model(name)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Points `alias` at `version`. Two concurrent first settings of an alias make MLflow's
    /// SQL store fail one of them on its unique key (HTTP 400, `IntegrityError`); setting an
    /// alias is idempotent, so that answer is retried.
    pub fn set_alias(&self, name: &str, alias: &str, version: u64) -> MResult<()> {
        let body = json!({"name": name, "alias": alias, "version": version.to_string()});
        let mut tries = 0;
        loop {
            match self.post("registered-models/alias", &body) {
                Ok(_) => return Ok(()),
                Err(MlflowError::Api { ref message, .. })
                    if tries < 4
                        && (message.contains("IntegrityError") || message.contains("UNIQUE")) =>
                {
                    tries += 1;
                    std::thread::sleep(self.backoff * tries);
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> MResult<()> {
        self.post(
            "model-versions/set-tag",
            &json!({"name": name, "version": version.to_string(), "key": key, "value": value}),
        )?;
        Ok(())
    }

    /// Every version of a model (`model-versions/search` is GET only and carries no aliases).
    pub fn search_versions(&self, name: &str) -> MResult<Vec<ModelVersionJson>> {
        let filter = format!("name='{}'", name.replace('\'', "\\'"));
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("filter", filter.clone()), ("max_results", "200".into())];
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let v = self.get("model-versions/search", &q)?;
            for mv in v["model_versions"].as_array().cloned().unwrap_or_default() {
                out.push(self.version_of(&mv)?);
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// Every registered model's name and aliases, following page tokens.
    pub fn search_models(&self) -> MResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("max_results", "200".to_owned())];
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let v = self.get("registered-models/search", &q)?;
            out.extend(
                v["registered_models"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// Where a version's files are, as the server resolves its source.
    pub fn download_uri(&self, name: &str, version: u64) -> MResult<String> {
        let v = self.get(
            "model-versions/get-download-uri",
            &[("name", name.to_owned()), ("version", version.to_string())],
        )?;
        Ok(str_of(&v["artifact_uri"]))
    }
}

fn run_info(v: &Value) -> RunInfo {
    RunInfo {
        run_id: str_of(&v["run_id"]),
        experiment_id: str_of(&v["experiment_id"]),
        artifact_uri: str_of(&v["artifact_uri"]),
        status: str_of(&v["status"]),
    }
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits params, metrics and tags into `log-batch` bodies within MLflow's limits (also at
/// most 1000 entries in all per call).
#[allow(clippy::type_complexity)]
pub fn batches(
    params: &BTreeMap<String, String>,
    metrics: &[MetricPoint],
    tags: &BTreeMap<String, String>,
) -> Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> {
    let kv = |(k, v): (&String, &String)| json!({"key": k, "value": v});
    let params: Vec<Value> = params.iter().map(kv).collect();
    let tags: Vec<Value> = tags.iter().map(kv).collect();
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}))
        .collect();
    let mut out = Vec::new();
    let (mut p, mut m, mut t) = (&params[..], &metrics[..], &tags[..]);
    while !(p.is_empty() && m.is_empty() && t.is_empty()) {
        let np = p.len().min(MAX_PARAMS_PER_BATCH);
        let nt = t.len().min(MAX_TAGS_PER_BATCH);
        let nm = m.len().min(MAX_METRICS_PER_BATCH - np - nt);
        out.push((p[..np].to_vec(), m[..nm].to_vec(), t[..nt].to_vec()));
        (p, m, t) = (&p[np..], &m[nm..], &t[nt..]);
    }
    out
}

/// Lists `(file, relative artifact path)` for a file or a directory tree.
fn collect_files(
    local: &Path,
    dest: &str,
    out: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<(), Error> {
    let meta = std::fs::metadata(local).map_err(|e| Error::io("read", local, e))?;
    if meta.is_file() {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = if dest.is_empty() {
            name
        } else {
            format!("{}/{name}", dest.trim_end_matches('/'))
        };
        out.push((local.to_owned(), rel));
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(local)
        .map_err(|e| Error::io("list", local, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let sub = if dest.is_empty() {
            name
        } else {
            format!("{}/{name}", dest.trim_end_matches('/'))
        };
        if path.is_dir() {
            collect_files(&path, &sub, out)?;
        } else {
            out.push((path, sub));
        }
    }
    Ok(())
}

/// RFC 3986's unreserved characters, which a path segment keeps as they are.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL path segment (unreserved characters pass).
fn percent_encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server answering each of `n` requests with `status` and `body` (what a
    /// server without a route answers), then stopping.
    fn answering(status: &'static str, body: &'static str, n: usize) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn a_server_without_logged_models_is_not_an_error() {
        // MLflow 2.x has no `logged-models` route: Flask answers 404 with an HTML page.
        let base = answering(
            "404 NOT FOUND",
            "<!doctype html><title>404 Not Found</title>",
            1,
        );
        let client = MlflowClient::new(Endpoint::parse(&base).unwrap()).unwrap();
        let created = client.create_logged_model("1", "model", "r", &BTreeMap::new());
        assert_eq!(created.unwrap(), None);
        // MLflow's own 404 for a missing experiment stays an error.
        let base = answering(
            "404 NOT FOUND",
            r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no experiment 1"}"#,
            1,
        );
        let client = MlflowClient::new(Endpoint::parse(&base).unwrap()).unwrap();
        let e = client
            .create_logged_model("1", "model", "r", &BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.code(), Some("RESOURCE_DOES_NOT_EXIST"));
    }

    #[test]
    fn batches_respect_mlflow_limits() {
        let params: BTreeMap<String, String> =
            (0..250).map(|i| (format!("p{i}"), "v".into())).collect();
        let tags: BTreeMap<String, String> =
            (0..30).map(|i| (format!("t{i}"), "v".into())).collect();
        let metrics: Vec<MetricPoint> = (0..2500)
            .map(|i| MetricPoint {
                key: "m".into(),
                value: 1.0,
                step: i,
                timestamp: 0,
            })
            .collect();
        let b = batches(&params, &metrics, &tags);
        assert!(b.iter().all(|(p, m, t)| p.len() <= 100
            && t.len() <= 100
            && m.len() <= 1000
            && p.len() + m.len() + t.len() <= 1000));
        assert_eq!(b.iter().map(|x| x.0.len()).sum::<usize>(), 250);
        assert_eq!(b.iter().map(|x| x.1.len()).sum::<usize>(), 2500);
        assert_eq!(b.iter().map(|x| x.2.len()).sum::<usize>(), 30);
        assert!(batches(&BTreeMap::new(), &[], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn urls_keep_no_credentials() {
        let e = Endpoint::parse("http://alice:s3cret@127.0.0.1:5000/").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:5000");
        assert!(!format!("{e:?}").contains("s3cret"));
        assert_eq!(redact("http://alice:s3cret@h/x"), "http://***@h/x");
        assert_eq!(redact("/tmp/a@b"), "/tmp/a@b");
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn proxy_paths() {
        assert_eq!(
            MlflowClient::proxy_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            MlflowClient::proxy_path("mlflow-artifacts://h:5000/1/abc/artifacts/").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(MlflowClient::proxy_path("s3://b/x"), None);
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
