//! W&B offline runs: what `wandb` writes with `WANDB_MODE=offline`, so that `wandb sync`
//! uploads bciops' runs later.
//!
//! A run is a directory `WANDB_DIR/wandb/offline-run-YYYYMMDD_HHMMSS-<id>/` holding
//! `run-<id>.wandb`, the record log ([`log`]) of protobuf records ([`records`]): a header, the
//! run (id, project, entity, name, job type, group, tags, sweep id, start time, config), one
//! history row per step, the summary, the exit code and the final marker. Nothing is sent
//! anywhere; the directory is built under a hidden name and renamed into place, so a reader
//! never sees half a run.

pub mod log;
pub mod records;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use prost::Message;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use records::{record::RecordType, Item, Record};

/// Where offline runs go and whom they belong to when synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WandbConfig {
    /// The `wandb` directory: `$WANDB_DIR/wandb`, or `./wandb`.
    pub dir: PathBuf,
    /// `WANDB_PROJECT`, else `bciops`.
    pub project: String,
    /// `WANDB_ENTITY`, else empty (`wandb sync` then uses the account's default entity).
    pub entity: String,
}

impl WandbConfig {
    /// Offline runs are written when `flag` (`--wandb`) is given or `WANDB_MODE=offline`, and
    /// never when `WANDB_MODE=disabled`. bciops never uploads: `WANDB_MODE=online` with
    /// `--wandb` still writes offline runs, for `wandb sync`.
    pub fn resolve(flag: bool) -> Option<WandbConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mode = var("WANDB_MODE").unwrap_or_default();
        let on = match mode.trim() {
            "disabled" => false,
            "offline" | "dryrun" => true,
            _ => flag,
        };
        if !on {
            return None;
        }
        let base = var("WANDB_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
        Some(WandbConfig {
            dir: base.join("wandb"),
            project: var("WANDB_PROJECT").unwrap_or_else(|| "bciops".to_owned()),
            entity: var("WANDB_ENTITY").unwrap_or_default(),
        })
    }

    /// The directory of an already written run with this id, if any.
    pub fn existing(&self, id: &str) -> Option<PathBuf> {
        let suffix = format!("-{id}");
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("offline-run-") && n.ends_with(&suffix))
            })
    }
}

/// One run, as W&B would have recorded it.
#[derive(Debug, Clone)]
pub struct OfflineRun {
    /// 8 characters of `[a-z0-9]`, as W&B's run ids.
    pub id: String,
    pub name: String,
    pub job_type: String,
    pub group: String,
    pub tags: Vec<String>,
    /// The sweep the run belongs to (empty: none).
    pub sweep_id: String,
    /// `wandb.config`: top-level keys, values any JSON (nested parameters stay nested).
    pub config: serde_json::Map<String, Value>,
    /// `wandb.log` calls, one per step from 0.
    pub history: Vec<BTreeMap<String, Value>>,
    /// `wandb.summary`.
    pub summary: serde_json::Map<String, Value>,
    pub exit_code: i32,
    pub start: DateTime<Utc>,
    pub runtime_seconds: f64,
}

/// An id of W&B's shape derived from `seed` (the same seed gives the same id).
pub fn id_from(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(8).map(|b| base36(*b)).collect()
}

/// A fresh random id of W&B's shape.
pub fn random_id() -> String {
    let mut rng = rand::thread_rng();
    (0..8).map(|_| base36(rng.gen())).collect()
}

fn base36(b: u8) -> char {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    ALPHABET[usize::from(b) % 36] as char
}

impl OfflineRun {
    /// The run's record log, as the bytes of `run-<id>.wandb`; `owner` gives its project
    /// and entity.
    pub fn encode(&self, owner: &WandbConfig) -> Result<Vec<u8>> {
        let json = |v: &Value| {
            serde_json::to_string(v).map_err(|e| Error::encode("a W&B record value", e))
        };
        let items = |m: &serde_json::Map<String, Value>| -> Result<Vec<Item>> {
            m.iter()
                .map(|(k, v)| {
                    Ok(Item {
                        key: k.clone(),
                        value_json: json(v)?,
                    })
                })
                .collect()
        };
        let start_ms = self.start.timestamp_millis() as f64 / 1000.0;
        let mut body = vec![
            RecordType::Header(records::HeaderRecord {
                version_info: Some(records::VersionInfo {
                    producer: concat!("bciops-", env!("CARGO_PKG_VERSION")).to_owned(),
                    min_consumer: String::new(),
                }),
            }),
            RecordType::Run(records::RunRecord {
                run_id: self.id.clone(),
                entity: owner.entity.clone(),
                project: owner.project.clone(),
                config: Some(records::ConfigRecord {
                    update: items(&self.config)?,
                }),
                run_group: self.group.clone(),
                job_type: self.job_type.clone(),
                display_name: self.name.clone(),
                tags: self.tags.clone(),
                sweep_id: self.sweep_id.clone(),
                host: String::new(),
                start_time: Some(records::Timestamp {
                    seconds: self.start.timestamp(),
                    nanos: self.start.timestamp_subsec_nanos() as i32,
                }),
            }),
        ];
        let steps = self.history.len().max(1) as f64;
        for (step, row) in self.history.iter().enumerate() {
            // W&B adds `_step`, `_runtime` and `_timestamp` to every row; steps are spread
            // evenly over the run's time, which is all bciops knows of when each happened.
            let runtime = self.runtime_seconds * (step + 1) as f64 / steps;
            let mut row: serde_json::Map<String, Value> =
                row.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            row.insert("_step".into(), Value::from(step as i64));
            row.insert("_runtime".into(), number(runtime));
            row.insert("_timestamp".into(), number(start_ms + runtime));
            body.push(RecordType::History(records::HistoryRecord {
                item: items(&row)?,
                step: Some(records::HistoryStep { num: step as i64 }),
            }));
        }
        body.push(RecordType::Summary(records::SummaryRecord {
            update: items(&self.summary)?,
        }));
        body.push(RecordType::Exit(records::RunExitRecord {
            exit_code: self.exit_code,
            runtime: self.runtime_seconds.round().clamp(0.0, i32::MAX as f64) as i32,
        }));
        body.push(RecordType::Final(records::FinalRecord {}));

        let mut log = log::RecordLog::new();
        for (i, r) in body.into_iter().enumerate() {
            let r = Record {
                num: i as i64 + 1,
                record_type: Some(r),
            };
            log.append(&r.encode_to_vec());
        }
        Ok(log.into_bytes())
    }

    /// Writes the run under `config.dir` and returns its directory.
    pub fn write(&self, config: &WandbConfig) -> Result<PathBuf> {
        let bytes = self.encode(config)?;
        let name = format!(
            "offline-run-{}-{}",
            self.start.format("%Y%m%d_%H%M%S"),
            self.id
        );
        let dir = config.dir.join(&name);
        if dir.exists() {
            return Err(Error::Invalid(format!(
                "W&B run directory `{}` already exists",
                dir.display()
            )));
        }
        let staging = config.dir.join(format!(".{name}.partial"));
        let _ = std::fs::remove_dir_all(&staging);
        let stage = || -> Result<()> {
            for sub in ["files", "logs"] {
                let d = staging.join(sub);
                std::fs::create_dir_all(&d).map_err(|e| Error::io("create", &d, e))?;
            }
            let file = log_path(&staging, &self.id);
            std::fs::write(&file, &bytes).map_err(|e| Error::io("write", &file, e))?;
            std::fs::rename(&staging, &dir).map_err(|e| Error::io("rename", &staging, e))
        };
        if let Err(e) = stage() {
            // Nothing half-written stays behind.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        Ok(dir)
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The path of a run's record log inside its directory.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("run-{id}.wandb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str) -> OfflineRun {
        OfflineRun {
            id: id.to_owned(),
            name: "t".into(),
            job_type: "train".into(),
            group: String::new(),
            tags: Vec::new(),
            sweep_id: String::new(),
            config: serde_json::Map::new(),
            history: vec![BTreeMap::from([("x".to_owned(), Value::from(1))])],
            summary: serde_json::Map::new(),
            exit_code: 0,
            start: Utc::now(),
            runtime_seconds: 1.0,
        }
    }

    #[test]
    fn a_run_is_written_whole_once_and_found_again() {
        let tmp = tempfile::tempdir().unwrap();
        let config = WandbConfig {
            dir: tmp.path().join("wandb"),
            project: "p".into(),
            entity: String::new(),
        };
        let id = id_from("seed");
        assert_eq!(id, id_from("seed"));
        assert!(
            id.len() == 8
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let dir = run(&id).write(&config).unwrap();
        assert!(log_path(&dir, &id).is_file());
        assert_eq!(config.existing(&id), Some(dir.clone()));
        assert_eq!(config.existing("other000"), None);
        // Only the finished directory is left: no staging name.
        let names = crate::fsutil::sorted_names(&config.dir).unwrap();
        assert_eq!(names, [dir.file_name().unwrap().to_str().unwrap()]);
    }

    #[test]
    fn an_unwritable_directory_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("wandb");
        std::fs::write(&file, b"not a directory").unwrap();
        let config = WandbConfig {
            dir: file.clone(),
            project: "p".into(),
            entity: String::new(),
        };
        let e = run("abcd1234").write(&config).unwrap_err().to_string();
        assert!(e.contains("wandb"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    }
}
