//! The sweep journal: one JSON line per finished trial, appended and flushed as each finishes,
//! so a killed sweep resumes where it stopped.
//!
//! The first line describes the sweep (sweep file digest, dataset digest, evaluation, seed,
//! shard); a journal written for anything else is refused rather than mixed in. A last line
//! cut short by a kill is dropped (that trial simply runs again).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::family::Params;
use crate::tune::space::PrepOverrides;

pub const FILE: &str = "journal.jsonl";
const FORMAT: &str = "bciops-tune-journal";

/// What a trial came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every fold ran.
    Ok,
    /// Stopped early by `early_terminate`; its metric is the mean of the folds that ran.
    Pruned,
    /// Could not be evaluated; `error` says why. Resuming runs it again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Pruned => "pruned",
            Status::Failed => "failed",
        }
    }
}

/// One finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable id: a hash of `values`.
    pub id: String,
    /// Position in the sweep's order (grid index, random draw, bayes suggestion).
    pub index: usize,
    pub status: Status,
    /// The sweep's values for this trial, as the file names them.
    pub values: BTreeMap<String, Value>,
    /// The full model parameters the values resolved to (None if they did not resolve).
    pub params: Option<Params>,
    #[serde(default, skip_serializing_if = "PrepOverrides::is_empty")]
    pub preprocess: PrepOverrides,
    pub accuracy: Option<f64>,
    pub kappa: Option<f64>,
    pub fold_accuracy: Vec<f64>,
    pub fold_kappa: Vec<f64>,
    pub seconds: f64,
    pub error: Option<String>,
}

impl Record {
    /// The value of metric `name` (`accuracy` or `kappa`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "kappa" => self.kappa,
            _ => self.accuracy,
        }
    }

    /// Fold scores of metric `name`.
    pub fn folds(&self, name: &str) -> &[f64] {
        match name {
            "kappa" => &self.fold_kappa,
            _ => &self.fold_accuracy,
        }
    }
}

/// What the journal belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub sweep_sha256: String,
    pub dataset_sha256: String,
    pub evaluation: String,
    pub seed: u64,
    pub shard: Option<(usize, usize)>,
}

impl Header {
    pub fn new(
        sweep_sha256: String,
        dataset_sha256: String,
        evaluation: String,
        seed: u64,
        shard: Option<(usize, usize)>,
    ) -> Header {
        Header {
            format: FORMAT.to_owned(),
            sweep_sha256,
            dataset_sha256,
            evaluation,
            seed,
            shard,
        }
    }
}

/// An open journal, appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens `dir/journal.jsonl` for `header`, creating it, and returns the trials already
    /// recorded there (the last record of an id wins). `restart` discards an existing journal.
    pub fn open(dir: &Path, header: &Header, restart: bool) -> Result<(Journal, Vec<Record>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let path = dir.join(FILE);
        let mut records = Vec::new();
        let exists = path.exists() && !restart;
        if exists {
            let mut bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            // A kill in the middle of a line leaves it without its newline: drop that torn
            // tail (its trial simply runs again) so later appends start on a fresh line.
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if complete < bytes.len() {
                bytes.truncate(complete);
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::io("open", &path, e))?;
                f.set_len(complete as u64)
                    .map_err(|e| Error::io("truncate", &path, e))?;
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::malformed(&path, "is not UTF-8 text"))?;
            records = parse(&path, &text, header)?;
        }
        let file = if exists {
            OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?
        } else {
            let mut f = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
            let line =
                serde_json::to_string(header).map_err(|e| Error::encode("a journal header", e))?;
            writeln!(f, "{line}").map_err(|e| Error::io("write", &path, e))?;
            f
        };
        Ok((Journal { file, path }, records))
    }

    /// Appends one record and flushes it to the file system.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|e| Error::encode("a trial", e))?;
        writeln!(self.file, "{line}").map_err(|e| Error::io("write", &self.path, e))?;
        self.file
            .flush()
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

fn parse(path: &Path, text: &str, header: &Header) -> Result<Vec<Record>> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let found: Header = serde_json::from_str(first)
        .map_err(|e| Error::malformed(path, format!("first line is not a journal header: {e}")))?;
    if found.format != FORMAT {
        return Err(Error::malformed(
            path,
            format!("format `{}` is not `{FORMAT}`", found.format),
        ));
    }
    let differs = [
        ("sweep file", found.sweep_sha256 != header.sweep_sha256),
        ("dataset", found.dataset_sha256 != header.dataset_sha256),
        ("evaluation", found.evaluation != header.evaluation),
        ("seed", found.seed != header.seed),
        ("shard", found.shard != header.shard),
    ];
    if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
        return Err(Error::setting(
            "restart",
            None,
            format!(
                "`{}` belongs to another sweep (its {what} differs): write to another output \
                 directory, or discard it",
                path.display()
            ),
        ));
    }
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for (i, line) in rest.iter().enumerate() {
        match serde_json::from_str::<Record>(line) {
            Ok(r) => {
                by_id.insert(r.id.clone(), r);
            }
            Err(e) => {
                return Err(Error::malformed(
                    path,
                    format!("line {} is not a trial record: {e}", i + 2),
                ))
            }
        }
    }
    let mut records: Vec<Record> = by_id.into_values().collect();
    records.sort_by_key(|r| r.index);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, index: usize, status: Status) -> Record {
        Record {
            id: id.into(),
            index,
            status,
            values: BTreeMap::from([("c".to_owned(), Value::from(index))]),
            params: Some(Params::default()),
            preprocess: PrepOverrides::default(),
            accuracy: Some(0.5),
            kappa: Some(0.0),
            fold_accuracy: vec![0.5],
            fold_kappa: vec![0.0],
            seconds: 0.1,
            error: None,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let header = Header::new("s".into(), "d".into(), "cv:5".into(), 1, None);
        let (mut j, old) = Journal::open(dir.path(), &header, false).unwrap();
        assert!(old.is_empty());
        j.append(&record("a", 0, Status::Ok)).unwrap();
        j.append(&record("b", 1, Status::Failed)).unwrap();
        drop(j);
        // A kill in the middle of a line.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"id\":\"c\",\"ind").unwrap();
        drop(f);
        let (mut j, old) = Journal::open(dir.path(), &header, false).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[1].status, Status::Failed);
        j.append(&record("b", 1, Status::Ok)).unwrap();
        drop(j);
        let (_, old) = Journal::open(dir.path(), &header, false).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[1].status, Status::Ok, "the last record of an id wins");
    }

    #[test]
    fn another_sweeps_journal_is_refused_unless_restarting() {
        let dir = tempfile::tempdir().unwrap();
        let header = Header::new("s".into(), "d".into(), "cv:5".into(), 1, None);
        let (mut j, _) = Journal::open(dir.path(), &header, false).unwrap();
        j.append(&record("a", 0, Status::Ok)).unwrap();
        drop(j);
        let other = Header::new("s".into(), "d".into(), "cv:5".into(), 2, None);
        let e = Journal::open(dir.path(), &other, false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("its seed differs"), "{e}");
        let (_, old) = Journal::open(dir.path(), &other, true).unwrap();
        assert!(old.is_empty());
    }
}
