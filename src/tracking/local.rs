//! The embedded run store: a directory anyone can read with `cat` and `jq`.
//!
//! ```text
//! STORE/runs/<run_id>/run.json     the RunRecord: experiment, name, parent, status, times,
//!                                  tags, params, metrics (key, value, step, timestamp)
//! STORE/runs/<run_id>/artifacts/   the logged files, under their artifact paths
//! STORE/registry/…                 the model registry (see registry::embedded)
//! STORE/journal/…                  runs waiting for an unreachable MLflow server
//! ```

use std::path::{Path, PathBuf};

use super::{copy_into, RunRecord};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// The directory of a run.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs().join(run_id)
    }

    /// Writes a started run (status RUNNING), so a crash still leaves a trace.
    pub fn create(&self, record: &RunRecord) -> Result<()> {
        self.write(record)
    }

    fn write(&self, record: &RunRecord) -> Result<()> {
        let path = self.run_dir(&record.run_id).join("run.json");
        let text = serde_json::to_string_pretty(record).map_err(|e| Error::encode("a run", e))?;
        write_atomic(&path, text.as_bytes())
    }

    /// Copies the artifacts in and writes the finished record; returns the run's directory.
    pub fn finish(
        &self,
        record: &mut RunRecord,
        artifacts: &[(PathBuf, String)],
    ) -> Result<PathBuf> {
        let dir = self.run_dir(&record.run_id);
        let root = dir.join("artifacts");
        for (local, dest) in artifacts {
            let target = if dest.is_empty() {
                root.clone()
            } else {
                root.join(dest)
            };
            for written in copy_into(local, &target)? {
                if let Ok(rel) = written.strip_prefix(&root) {
                    let rel = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if !record.artifacts.contains(&rel) {
                        record.artifacts.push(rel);
                    }
                }
            }
        }
        record.artifacts.sort();
        self.write(record)?;
        Ok(dir)
    }

    /// A run by id (or by a unique prefix of it).
    pub fn get(&self, run_id: &str) -> Result<RunRecord> {
        let exact = self.run_dir(run_id).join("run.json");
        if run_id.len() == 32 && exact.is_file() {
            return read_record(&exact);
        }
        let matches: Vec<RunRecord> = self
            .list()?
            .into_iter()
            .filter(|r| r.run_id.starts_with(run_id))
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().unwrap_or_else(|| unreachable!())),
            0 => Err(Error::Invalid(format!(
                "no run `{run_id}` in `{}`",
                self.root.display()
            ))),
            n => Err(Error::Invalid(format!(
                "`{run_id}` matches {n} runs in `{}`: give more of the id",
                self.root.display()
            ))),
        }
    }

    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<RunRecord>> {
        let dir = self.runs();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("run.json");
            if path.is_file() {
                out.push(read_record(&path)?);
            }
        }
        out.sort_by(|a, b| {
            b.start_time
                .cmp(&a.start_time)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }
}

pub(crate) fn read_record(path: &Path) -> Result<RunRecord> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::malformed(path, format!("not a run record: {e}")))
}
