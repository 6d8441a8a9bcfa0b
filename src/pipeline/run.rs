//! The local runner: executes the graph on this machine, each step as the same bciops
//! subcommand a container would run (this executable, spawned with the step's arguments), with
//! every output in `RUN_DIR/<step>/`. A step whose inputs' content, arguments and binary are
//! unchanged since its last success is not run again.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{Mode, PipelineConfig, DEFAULT_SWEEP, DEFAULT_SWEEP_YAML};
use super::dag::{Arg, ArtifactRef, Condition, Dag, Node, Step, IMPORTED};
use crate::error::{Error, Result};
use crate::storage::{self, Location};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_dir: PathBuf,
    /// Run every step even when its cached result is valid.
    pub no_cache: bool,
    /// Stop after this step.
    pub until: Option<String>,
    /// The bciops executable the steps run (normally `std::env::current_exe()`).
    pub exe: PathBuf,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    Ran,
    Cached,
    Skipped(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
    /// The command line, as a container would run it.
    pub command: Vec<String>,
}

/// The run's summary.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub mode: String,
    pub run_dir: String,
    pub steps: Vec<StepReport>,
    pub seconds: f64,
    pub cache_hits: usize,
    /// compare-register's decision, when it ran.
    pub decision: Option<String>,
    /// The version holding the alias after compare-register (what a server following
    /// `models:/NAME@ALIAS` serves).
    pub champion_version: Option<u64>,
    /// The version compare-register registered for this run's model (None: not registered).
    pub registered_version: Option<u64>,
    /// The registry's answer (`compare-register --json`), when it ran.
    pub registry: Option<serde_json::Value>,
    /// Where the final artifacts are: the model, best.json, the dataset.
    pub outputs: BTreeMap<String, String>,
}

/// What a successful step leaves beside its outputs, to recognise an unchanged step.
#[derive(Debug, Serialize, Deserialize)]
struct CacheRecord {
    key: String,
    /// Each output's content hash: an output changed since (or deleted) means run again.
    outputs: BTreeMap<String, String>,
}

const RECORD: &str = ".bciops-step.json";

/// Set by the runner in each step's environment: the runner's pid.
pub const RUNNER_PID_ENV: &str = "BCIOPS_RUNNER_PID";

/// In a step started by the runner: asks the kernel to kill this process when the runner
/// dies (however it dies, `kill -9` included), so that a stopped `pipeline run` leaves no step
/// writing into its run directory. Steps are spawned and waited for on one thread, which the
/// kernel's parent-death signal requires.
pub fn die_with_runner() {
    let Some(runner) = std::env::var(RUNNER_PID_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getppid, set_parent_process_death_signal, Signal};
        if set_parent_process_death_signal(Some(Signal::KILL)).is_ok() {
            // The runner may have died before the signal was armed.
            if getppid().map(|p| p.as_raw_nonzero().get()) != Some(runner) {
                std::process::exit(crate::error::exit::FAILURE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = runner;
}

struct Runner<'a> {
    config: &'a PipelineConfig,
    opts: &'a RunOptions,
    binary: String,
    params: BTreeMap<String, String>,
    artifacts: BTreeMap<ArtifactRef, Vec<PathBuf>>,
    decisions: BTreeMap<String, String>,
    stdout: BTreeMap<String, String>,
    reports: Vec<StepReport>,
    stopped: bool,
}

/// Runs the pipeline; a failing step ends the run with its error.
pub fn run(dag: &Dag, config: &PipelineConfig, opts: &RunOptions) -> Result<RunSummary> {
    let start = Instant::now();
    std::fs::create_dir_all(&opts.run_dir)
        .map_err(|e| Error::io("create directory", &opts.run_dir, e))?;
    let mut runner = Runner {
        config,
        opts,
        binary: binary_identity(&opts.exe),
        params: dag
            .params
            .iter()
            .map(|p| (p.name.clone(), p.default.to_string()))
            .collect(),
        artifacts: BTreeMap::new(),
        decisions: BTreeMap::new(),
        stdout: BTreeMap::new(),
        reports: Vec::new(),
        stopped: false,
    };
    if let Some(until) = &opts.until {
        if !dag.steps().iter().any(|s| &s.name == until) {
            let names: Vec<_> = dag.steps().iter().map(|s| s.name.clone()).collect();
            return Err(Error::Invalid(format!(
                "`--until {until}` is not a step (steps: {})",
                names.join(", ")
            )));
        }
    }
    runner.nodes(&dag.nodes, None)?;

    let registry: Option<serde_json::Value> = runner
        .stdout
        .get("compare-register")
        .and_then(|s| serde_json::from_str(s).ok());
    // Keys of `compare-register --json` (registry::compare::Decision).
    let version_of = |key: &str| registry.as_ref().and_then(|v| v.get(key)?.as_u64());
    let champion_version = version_of("alias_version");
    let registered_version = version_of("version");
    let mut outputs = BTreeMap::new();
    for (r, paths) in &runner.artifacts {
        if let [one] = paths.as_slice() {
            outputs.insert(
                format!("{}.{}", r.step, r.output),
                one.display().to_string(),
            );
        }
    }
    Ok(RunSummary {
        mode: config.mode.as_str().to_owned(),
        run_dir: opts.run_dir.display().to_string(),
        cache_hits: runner
            .reports
            .iter()
            .filter(|r| r.outcome == Outcome::Cached)
            .count(),
        steps: runner.reports,
        seconds: start.elapsed().as_secs_f64(),
        decision: runner.decisions.get("compare-register").cloned(),
        champion_version,
        registered_version,
        registry,
        outputs,
    })
}

impl Runner<'_> {
    fn nodes(&mut self, nodes: &[Node], shard: Option<(u32, u32)>) -> Result<()> {
        for node in nodes {
            match node {
                Node::Import {
                    name, uri_param, ..
                } => {
                    let mut path = PathBuf::from(&self.params[uri_param]);
                    if uri_param == "sweep_uri"
                        && path == Path::new(DEFAULT_SWEEP)
                        && !path.exists()
                        && self.config.mode == Mode::Tune
                    {
                        path = self.embedded_sweep()?;
                    }
                    let r = ArtifactRef {
                        step: name.clone(),
                        output: IMPORTED.into(),
                    };
                    self.artifacts.insert(r, vec![path]);
                }
                Node::Step(step) => {
                    if self.stopped {
                        self.skip(step, "stopped by --until");
                    } else {
                        self.step(step, shard)?;
                        if self.opts.until.as_deref() == Some(step.name.as_str()) {
                            self.stopped = true;
                        }
                    }
                }
                Node::If { condition, body } => {
                    let (holds, why) = match condition {
                        Condition::Mode(m) => (
                            self.config.mode == *m,
                            format!("mode is `{}`", self.config.mode.as_str()),
                        ),
                        Condition::Promoted { step } => match self.decisions.get(step) {
                            Some(d)
                                if d != "promoted" && self.interrupted_promotion(step, body) =>
                            {
                                eprintln!(
                                    "{step}: the champion is this run's model, promoted by an \
                                     earlier run that stopped before finishing; continuing it"
                                );
                                self.decisions.insert(step.clone(), "promoted".into());
                                (true, String::new())
                            }
                            Some(d) => (d == "promoted", format!("{step} decided `{d}`")),
                            None => (false, format!("{step} did not run")),
                        },
                    };
                    if holds {
                        self.nodes(body, shard)?;
                    } else {
                        self.skip_all(body, &why);
                    }
                }
                Node::ForShards { shards, body } => {
                    // Shards count from 1, as `tune --shard I/N` does. One after the other:
                    // each tune already uses every core.
                    for i in 1..=*shards {
                        self.nodes(body, Some((i, *shards)))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Outside a checkout `configs/sweep.yaml` is not there: the binary's copy is used.
    fn embedded_sweep(&self) -> Result<PathBuf> {
        let dir = self.opts.run_dir.join("import-sweep");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let path = dir.join("sweep.yaml");
        std::fs::write(&path, DEFAULT_SWEEP_YAML).map_err(|e| Error::io("write", &path, e))?;
        eprintln!(
            "import-sweep: no {DEFAULT_SWEEP} here, using the embedded copy ({})",
            path.display()
        );
        Ok(path)
    }

    fn skip(&mut self, step: &Step, why: &str) {
        self.reports.push(StepReport {
            step: step.name.clone(),
            outcome: Outcome::Skipped(why.to_owned()),
            seconds: 0.0,
            command: Vec::new(),
        });
    }

    fn skip_all(&mut self, nodes: &[Node], why: &str) {
        for node in nodes {
            match node {
                Node::Step(s) => self.skip(s, why),
                Node::Import { .. } => {}
                Node::If { body, .. } | Node::ForShards { body, .. } => self.skip_all(body, why),
            }
        }
    }

    fn inputs_of(&self, step: &Step, name: &str) -> Result<Vec<PathBuf>> {
        let input = step
            .inputs
            .iter()
            .find(|i| i.name == name)
            .expect("every input argument is declared");
        self.artifacts.get(&input.from).cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "step `{}` needs `{}.{}`, which no earlier step produced",
                step.name, input.from.step, input.from.output
            ))
        })
    }

    /// The step's directory, arguments and cache key.
    fn plan(
        &self,
        step: &Step,
        shard: Option<(u32, u32)>,
    ) -> Result<(PathBuf, Vec<String>, String)> {
        let mut dir = self.opts.run_dir.join(&step.name);
        if let Some((i, _)) = shard {
            dir = dir.join(format!("shard-{i}"));
        }

        // The arguments, and the same arguments with every input path replaced by the hash of
        // its content (so the cache key does not depend on where the run directory is).
        let mut args: Vec<String> = Vec::new();
        let mut hasher = Sha256::new();
        hasher.update(self.binary.as_bytes());
        for part in &step.command {
            hasher.update(b"\0cmd:");
            hasher.update(part.as_bytes());
        }
        for arg in &step.args {
            match arg {
                Arg::Lit(s) => {
                    hasher.update(b"\0lit:");
                    hasher.update(s.as_bytes());
                    args.push(s.clone());
                }
                Arg::Param(p) => {
                    let v = &self.params[p];
                    hasher.update(b"\0param:");
                    hasher.update(v.as_bytes());
                    args.push(v.clone());
                }
                Arg::Input(name) | Arg::InputList(name) => {
                    for path in self.inputs_of(step, name)? {
                        hasher.update(b"\0input:");
                        hasher.update(content_hash(&path)?.as_bytes());
                        args.push(path.display().to_string());
                    }
                }
                Arg::Output(name) | Arg::OutputParam(name) => {
                    hasher.update(b"\0output:");
                    hasher.update(name.as_bytes());
                    args.push(dir.join(name).display().to_string());
                }
                Arg::Shard => {
                    let (i, n) = shard.ok_or_else(|| {
                        Error::Invalid(format!("step `{}` takes a shard outside a loop", step.name))
                    })?;
                    let s = format!("{i}/{n}");
                    hasher.update(b"\0shard:");
                    hasher.update(s.as_bytes());
                    args.push(s);
                }
            }
        }
        Ok((dir, args, format!("{:x}", hasher.finalize())))
    }

    /// The step's outputs: artifacts, then output parameters.
    fn outputs_of(step: &Step) -> Vec<String> {
        step.outputs
            .iter()
            .map(|(n, _)| n.clone())
            .chain(step.output_params.iter().cloned())
            .collect()
    }

    /// The step last succeeded with this key and its outputs are unchanged since.
    fn completed(step: &Step, dir: &Path, key: &str) -> bool {
        read_record(&dir.join(RECORD)).is_some_and(|r| {
            r.key == key
                && Self::outputs_of(step).iter().all(|o| {
                    r.outputs
                        .get(o)
                        .is_some_and(|h| content_hash(&dir.join(o)).is_ok_and(|now| &now == h))
                })
        })
    }

    /// compare-register rejected the model because the champion already is this model, and
    /// what is conditional on its promotion (deploy) never completed for it: a run stopped
    /// after the promotion and before the deployment. The promotion stands, so the rest runs.
    fn interrupted_promotion(&self, step: &str, body: &[Node]) -> bool {
        let is_champion = self
            .stdout
            .get(step)
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| v.get("champion_is_candidate")?.as_bool())
            == Some(true);
        is_champion
            && body.iter().any(|node| match node {
                Node::Step(s) => self
                    .plan(s, None)
                    .map_or(true, |(dir, _, key)| !Self::completed(s, &dir, &key)),
                _ => false,
            })
    }

    fn step(&mut self, step: &Step, shard: Option<(u32, u32)>) -> Result<()> {
        let start = Instant::now();
        let label = match shard {
            Some((i, n)) => format!("{}[{i}/{n}]", step.name),
            None => step.name.clone(),
        };
        let (dir, args, key) = self.plan(step, shard)?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let mut command = vec!["bciops".to_owned()];
        command.extend(step.command.iter().cloned());
        command.extend(args.iter().cloned());

        let outputs = Self::outputs_of(step);
        let record_path = dir.join(RECORD);
        let cached = !self.opts.no_cache
            && self.config.cache_enabled(&step.name)
            && Self::completed(step, &dir, &key);
        let outcome = if cached {
            eprintln!("{label}: unchanged, cached result reused");
            Outcome::Cached
        } else {
            let _ = std::fs::remove_file(&record_path);
            eprintln!("{label}: {}", command.join(" "));
            let stdout = self.spawn(&label, step, &args)?;
            std::fs::write(dir.join("stdout.txt"), &stdout)
                .map_err(|e| Error::io("write", dir.join("stdout.txt"), e))?;
            let mut hashes = BTreeMap::new();
            for o in &outputs {
                if !dir.join(o).exists() {
                    return Err(Error::Invalid(format!(
                        "step `{label}` succeeded but did not write its output `{o}`"
                    )));
                }
                hashes.insert(o.clone(), content_hash(&dir.join(o))?);
            }
            let record = CacheRecord {
                key,
                outputs: hashes,
            };
            let text = serde_json::to_string_pretty(&record).expect("plain struct");
            std::fs::write(&record_path, text).map_err(|e| Error::io("write", &record_path, e))?;
            Outcome::Ran
        };

        for (name, _) in &step.outputs {
            let r = ArtifactRef {
                step: step.name.clone(),
                output: name.clone(),
            };
            self.artifacts.entry(r).or_default().push(dir.join(name));
        }
        for name in &step.output_params {
            let path = dir.join(name);
            let value = std::fs::read_to_string(&path)
                .map_err(|e| Error::io("read", &path, e))?
                .trim()
                .to_owned();
            self.decisions.insert(step.name.clone(), value);
        }
        if let Ok(out) = std::fs::read_to_string(dir.join("stdout.txt")) {
            self.stdout.insert(step.name.clone(), out);
        }
        self.reports.push(StepReport {
            step: label,
            outcome,
            seconds: start.elapsed().as_secs_f64(),
            command,
        });
        Ok(())
    }

    /// Runs a step's subcommand; its stderr (progress, summaries) goes to ours, its stdout is
    /// returned.
    fn spawn(&self, label: &str, step: &Step, args: &[String]) -> Result<Vec<u8>> {
        let mut child = Command::new(&self.opts.exe)
            .args(&step.command)
            .args(args)
            // The step stops when the runner does (see `die_with_runner`).
            .env(RUNNER_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io("run", &self.opts.exe, e))?;
        let mut stdout = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            out.read_to_end(&mut stdout)
                .map_err(|e| Error::io("read the output of", &self.opts.exe, e))?;
        }
        let status = child
            .wait()
            .map_err(|e| Error::io("wait for", &self.opts.exe, e))?;
        match status.code() {
            Some(0) => Ok(stdout),
            // The step's own message (on stderr above) says what was wrong with its input.
            Some(2) => Err(Error::Invalid(format!(
                "step `{label}` failed on its input (exit code 2)"
            ))),
            code => Err(Error::io(
                "run step",
                label,
                std::io::Error::other(format!(
                    "exit code {}",
                    code.map_or("none (killed)".to_owned(), |c| c.to_string())
                )),
            )),
        }
    }
}

/// The version and build of the executable: a rebuilt binary invalidates every cached step.
fn binary_identity(exe: &Path) -> String {
    let build = std::fs::metadata(exe)
        .ok()
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{modified}", m.len())
        })
        .unwrap_or_default();
    format!("bciops {} {build}", env!("CARGO_PKG_VERSION"))
}

fn read_record(path: &Path) -> Option<CacheRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// SHA-256 of a file, or of a directory's relative paths and file contents in sorted order
/// (the step's own cache record and stdout excluded).
pub fn content_hash(path: &Path) -> Result<String> {
    // An imported input on a bucket (`data.uri=s3://…`) is fingerprinted by its objects' sizes
    // and ETags rather than downloaded twice; the step itself fetches what it reads.
    if let Location::Remote(remote) = Location::from_path(path)? {
        return storage::fingerprint(&remote);
    }
    let mut hasher = Sha256::new();
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        files.sort();
        for rel in files {
            hasher.update(rel.as_bytes());
            hasher.update(b"\0");
            hash_file(&path.join(&rel), &mut hasher)?;
        }
    } else {
        hash_file(path, &mut hasher)?;
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        if name == RECORD || name == "stdout.txt" {
            continue;
        }
        if path.is_dir() {
            walk(base, &path, out)?;
        } else {
            let rel = path.strip_prefix(base).expect("walked from base");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

fn hash_file(path: &Path, hasher: &mut Sha256) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// The summary, for people (stderr).
pub fn describe(summary: &RunSummary, config: &PipelineConfig) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "pipeline `{}` (mode {}) in {:.1} s, run directory {}\n",
        config.name, summary.mode, summary.seconds, summary.run_dir
    ));
    for r in &summary.steps {
        let status = match &r.outcome {
            Outcome::Ran => format!("ran      {:>7.1} s", r.seconds),
            Outcome::Cached => "cached".to_owned(),
            Outcome::Skipped(why) => format!("skipped  ({why})"),
        };
        out.push_str(&format!("  {:<22} {status}\n", r.step));
    }
    out.push_str(&format!("cache hits: {}\n", summary.cache_hits));
    if let Some(d) = &summary.decision {
        let reg = &config.registry;
        out.push_str(&format!(
            "decision: {d} (registry `{}`, alias `{}`)\n",
            reg.name, reg.alias
        ));
        if let Some(v) = summary.registered_version {
            out.push_str(&format!("registered version: {v}\n"));
        }
        if let Some(v) = summary.champion_version {
            out.push_str(&format!("champion version: {v}\n"));
        }
        let registry = reg.uri.as_deref().map_or_else(
            || "the default registry (./bciops-store unless $MLFLOW_REGISTRY_URI or $MLFLOW_TRACKING_URI is set)".to_owned(),
            |u| format!("`{u}`"),
        );
        if d == "promoted" {
            out.push_str(&format!(
                "deploy: `{}` now points at the new model in {registry}; a server started with `bciops serve --model models:/{}@{}` picks it up\n",
                reg.alias, reg.name, reg.alias
            ));
        } else {
            out.push_str(&format!(
                "deploy: nothing to do, `{}` is unchanged in {registry}\n",
                reg.alias
            ));
        }
    }
    match summary.mode.as_str() {
        m if m == Mode::Tune.as_str() => {
            if let Some(p) = summary.outputs.get("tune-merge.sweep") {
                out.push_str(&format!(
                    "best parameters: {p}/best.json (train with `--set train.params_file={p}/best.json`)\n"
                ));
            }
        }
        _ => {
            if let Some(p) = summary.outputs.get("train.model") {
                out.push_str(&format!("model: {p}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_sees_content_and_names_not_the_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("sub/x.npy"), b"123").unwrap();
            std::fs::write(d.join("meta.json"), b"{}").unwrap();
        }
        std::fs::write(b.path().join(RECORD), b"ignored").unwrap();
        let ha = content_hash(a.path()).unwrap();
        assert_eq!(ha, content_hash(b.path()).unwrap());
        std::fs::write(b.path().join("sub/x.npy"), b"124").unwrap();
        assert_ne!(ha, content_hash(b.path()).unwrap());
        std::fs::rename(a.path().join("meta.json"), a.path().join("meta2.json")).unwrap();
        assert_ne!(ha, content_hash(a.path()).unwrap());
    }
}
