//! `bciops runs list|show|sync`: browse the embedded run store; replay the journal.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Global;
use crate::error::Error;
use crate::tracking::journal::Journal;
use crate::tracking::local::LocalStore;
use crate::tracking::mlflow::Endpoint;
use crate::tracking::{Backend, RunRecord, DEFAULT_STORE};

/// Browse the runs of the embedded store, or replay runs that waited in the journal for an
/// unreachable MLflow server.
#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the runs of the embedded store, newest first.
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Only runs of this experiment.
        #[arg(long)]
        experiment: Option<String>,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one run (id or a unique prefix): params, metrics, tags, artifacts.
    Show {
        run_id: String,
        #[command(flatten)]
        store: StoreArg,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay journaled runs into MLflow (each into the server it was meant for, or into
    /// `--tracking-uri`); replayed runs leave the journal.
    Sync {
        /// The journal (default: $BCIOPS_JOURNAL or ./bciops-store/journal).
        #[arg(long, env = "BCIOPS_JOURNAL", value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Replay into this MLflow server instead of the one each run was meant for.
        #[arg(long, value_name = "URI")]
        tracking_uri: Option<String>,
        /// Print what was replayed as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct StoreArg {
    /// The embedded store (a directory or `file://…`).
    #[arg(long = "store", visible_alias = "tracking-uri", value_name = "DIR", default_value = DEFAULT_STORE)]
    pub store: String,
}

impl StoreArg {
    fn open(&self) -> Result<LocalStore, Error> {
        match Backend::parse(&self.store)? {
            Backend::Local(dir) => Ok(LocalStore::new(dir)),
            Backend::Mlflow(e) => Err(Error::Invalid(format!(
                "`{}` is an MLflow server: browse its runs in its UI; `runs list` reads the embedded store",
                e.base
            ))),
        }
    }
}

pub fn run(args: RunsArgs, _global: Global) -> Result<()> {
    match args.command {
        RunsCommand::List {
            store,
            experiment,
            json,
        } => {
            let runs: Vec<RunRecord> = store
                .open()?
                .list()?
                .into_iter()
                .filter(|r| experiment.as_ref().is_none_or(|e| &r.experiment == e))
                .collect();
            if json {
                return Ok(super::emit(&serde_json::to_string_pretty(&runs)?)?);
            }
            let mut out = String::new();
            for r in &runs {
                let acc = r
                    .metrics
                    .iter()
                    .rfind(|m| m.key == "accuracy")
                    .map(|m| format!("  accuracy={:.4}", m.value))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}  {:<8}  {}  {}  {}{acc}\n",
                    r.run_id,
                    r.status.as_str(),
                    utc(r.start_time),
                    r.experiment,
                    r.name
                ));
            }
            if runs.is_empty() {
                eprintln!("no runs in `{}`", store.store);
                return Ok(());
            }
            Ok(super::emit(&out)?)
        }
        RunsCommand::Show {
            run_id,
            store,
            json,
        } => {
            let store = store.open()?;
            let r = store.get(&run_id)?;
            if json {
                return Ok(super::emit(&serde_json::to_string_pretty(&r)?)?);
            }
            let mut out = format!(
                "run {}\n  experiment {}\n  name {}\n  status {}\n  started {}\n",
                r.run_id,
                r.experiment,
                r.name,
                r.status.as_str(),
                utc(r.start_time)
            );
            if let Some(p) = &r.parent {
                out.push_str(&format!("  parent {p}\n"));
            }
            out.push_str("params:\n");
            for (k, v) in &r.params {
                out.push_str(&format!("  {k} = {v}\n"));
            }
            out.push_str("metrics:\n");
            for m in &r.metrics {
                out.push_str(&format!("  {} [step {}] = {}\n", m.key, m.step, m.value));
            }
            out.push_str("tags:\n");
            for (k, v) in &r.tags {
                out.push_str(&format!("  {k} = {v}\n"));
            }
            out.push_str(&format!(
                "artifacts ({}):\n",
                store.run_dir(&r.run_id).join("artifacts").display()
            ));
            for a in &r.artifacts {
                out.push_str(&format!("  {a}\n"));
            }
            Ok(super::emit(&out)?)
        }
        RunsCommand::Sync {
            journal,
            tracking_uri,
            json,
        } => {
            let dir = journal.unwrap_or_else(|| PathBuf::from(DEFAULT_STORE).join("journal"));
            let target = match tracking_uri.as_deref().map(Backend::parse).transpose()? {
                Some(Backend::Mlflow(e)) => Some(e),
                Some(Backend::Local(p)) => {
                    return Err(Error::Invalid(format!(
                        "`{}` is not an MLflow server: runs sync replays into http(s):// URIs",
                        p.display()
                    ))
                    .into())
                }
                None => None::<Endpoint>,
            };
            let journal = Journal::new(&dir);
            let pending = journal.entries()?.len();
            let report = journal.sync(target.as_ref())?;
            for s in &report.synced {
                eprintln!(
                    "replayed {} ({}) as run {} at {}",
                    s.journal_id, s.name, s.run_id, s.server
                );
            }
            for f in &report.failed {
                eprintln!(
                    "not replayed {} ({}) to {}: {}",
                    f.journal_id, f.name, f.server, f.error
                );
            }
            if pending == 0 {
                eprintln!("nothing to replay in `{}`", dir.display());
            }
            if json {
                super::emit(&serde_json::to_string_pretty(&report)?)?;
            }
            if !report.failed.is_empty() {
                return Err(Error::Io {
                    action: "replay",
                    path: dir.display().to_string(),
                    cause: std::io::Error::other(format!(
                        "{} of {pending} journaled runs failed; they stay in the journal for the next sync",
                        report.failed.len()
                    )),
                }
                .into());
            }
            Ok(())
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` UTC of milliseconds since the epoch (MLflow's run times). A time
/// outside chrono's range (±262,000 years, only from a corrupt record) shows as the number.
pub fn utc(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        // 2026-11-27 08:00:00 UTC
        assert_eq!(super::utc(1_795_766_400_000), "2026-11-27 08:00:00");
    }
}
