//! Runs that could not reach their MLflow server wait here until `bciops runs sync`.
//!
//! ```text
//! JOURNAL/<run_id>/entry.json   {server, server_run_id, record}
//! JOURNAL/<run_id>/artifacts/   the run's files, under their artifact paths
//! JOURNAL/synced.json           journal id → server run id of replayed runs (for children)
//! ```
//!
//! The server URL is stored without credentials; sync authenticates from the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mlflow::{Endpoint, MlflowClient};
use super::{copy_into, RunRecord, PARENT_TAG};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The MLflow base URL the run was meant for.
    pub server: String,
    /// The run's id on the server, when it was created there before the server went away.
    pub server_run_id: Option<String>,
    pub record: RunRecord,
}

/// One replayed run.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    pub journal_id: String,
    pub run_id: String,
    pub server: String,
    pub name: String,
}

/// A journaled run that could not be replayed this time; it stays in the journal.
#[derive(Debug, Clone, Serialize)]
pub struct NotSynced {
    pub journal_id: String,
    pub server: String,
    pub name: String,
    pub error: String,
}

/// What one `sync` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub synced: Vec<Synced>,
    pub failed: Vec<NotSynced>,
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a run and copies its artifacts; returns the entry's directory.
    pub fn write(
        &self,
        record: &RunRecord,
        artifacts: &[(PathBuf, String)],
        server: &str,
        server_run_id: Option<&str>,
    ) -> Result<PathBuf> {
        let dir = self.dir.join(&record.run_id);
        let root = dir.join("artifacts");
        for (local, dest) in artifacts {
            let target = if dest.is_empty() {
                root.clone()
            } else {
                root.join(dest)
            };
            copy_into(local, &target)?;
        }
        let entry = Entry {
            server: server.to_owned(),
            server_run_id: server_run_id.map(str::to_owned),
            record: record.clone(),
        };
        let text = serde_json::to_string_pretty(&entry).map_err(|e| Error::encode("a run", e))?;
        write_atomic(&dir.join("entry.json"), text.as_bytes())?;
        Ok(dir)
    }

    /// The waiting runs, oldest first (so parents come before their children).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let list = match std::fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for item in list.flatten() {
            let path = item.path().join("entry.json");
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            let entry: Entry = serde_json::from_str(&text)
                .map_err(|e| Error::malformed(&path, format!("not a journal entry: {e}")))?;
            out.push(entry);
        }
        out.sort_by(|a, b| {
            a.record
                .start_time
                .cmp(&b.record.start_time)
                .then(a.record.run_id.cmp(&b.record.run_id))
        });
        Ok(out)
    }

    fn synced_map(&self) -> Result<BTreeMap<String, String>> {
        let path = self.dir.join("synced.json");
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::malformed(&path, format!("not a JSON object: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Replays every waiting run into its server (or into `target`, when given), oldest first,
    /// and removes each entry once the server has all of it. A run that fails (its server is
    /// down, say) stays in the journal and the others are still replayed, except the children
    /// of a run that failed, which wait for their parent.
    pub fn sync(&self, target: Option<&Endpoint>) -> Result<SyncReport> {
        let mut ids = self.synced_map()?;
        let mut report = SyncReport::default();
        for entry in self.entries()? {
            let journal_id = entry.record.run_id.clone();
            let failed = |error: String| NotSynced {
                journal_id: journal_id.clone(),
                server: target.map_or_else(|| entry.server.clone(), |t| t.base.clone()),
                name: entry.record.name.clone(),
                error,
            };
            if let Some(parent) = &entry.record.parent {
                if report.failed.iter().any(|f| &f.journal_id == parent) {
                    report.failed.push(failed(format!(
                        "its parent run `{parent}` was not replayed"
                    )));
                    continue;
                }
            }
            let replayed = match target {
                Some(t) => Ok(t.clone()),
                None => Endpoint::parse(&entry.server),
            }
            .and_then(MlflowClient::new)
            .and_then(|client| {
                let artifacts = self.artifacts_of(&entry.record.run_id);
                let run_id = replay(&client, &entry, &artifacts, &ids)?;
                Ok((client, run_id))
            });
            let (client, run_id) = match replayed {
                Ok(done) => done,
                Err(e) => {
                    report.failed.push(failed(e.to_string()));
                    continue;
                }
            };
            ids.insert(entry.record.run_id.clone(), run_id.clone());
            let text = serde_json::to_string_pretty(&ids)
                .map_err(|e| Error::encode("the synced ids", e))?;
            write_atomic(&self.dir.join("synced.json"), text.as_bytes())?;
            let dir = self.dir.join(&entry.record.run_id);
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
            report.synced.push(Synced {
                journal_id: entry.record.run_id.clone(),
                run_id,
                server: client.endpoint.base.clone(),
                name: entry.record.name.clone(),
            });
        }
        Ok(report)
    }

    fn artifacts_of(&self, run_id: &str) -> PathBuf {
        self.dir.join(run_id).join("artifacts")
    }
}

fn replay(
    client: &MlflowClient,
    entry: &Entry,
    artifacts: &Path,
    ids: &BTreeMap<String, String>,
) -> Result<String> {
    let record = &entry.record;
    let mut tags = record.tags.clone();
    // A parent that waited in the journal too has a new id on the server now.
    if let Some(parent) = &record.parent {
        let mapped = ids.get(parent).unwrap_or(parent).clone();
        tags.insert(PARENT_TAG.into(), mapped);
    }
    tags.insert("bciops.synced_from_journal".into(), record.run_id.clone());
    let existing = match &entry.server_run_id {
        Some(id) => match client.run_info(id) {
            Ok(info) => Some(info),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let run = match existing {
        Some(info) => info,
        None => {
            let exp = client.experiment_id(&record.experiment)?;
            client.create_run(&exp, &record.name, record.start_time, &tags)?
        }
    };
    client.log_batch(&run.run_id, &record.params, &record.metrics, &tags, None)?;
    if artifacts.is_dir() {
        client.upload(&run.artifact_uri, artifacts, "")?;
    }
    client.set_status(
        &run.run_id,
        record.status,
        record.end_time.unwrap_or(record.start_time),
    )?;
    Ok(run.run_id)
}
