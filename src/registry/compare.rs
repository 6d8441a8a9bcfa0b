//! `compare-register`: promote a candidate model only if it beats the champion.
//!
//! The candidate's metric comes from its `metrics.json`; the champion's from its version tag
//! `metric.<name>` (or its own `metrics.json` when the tag is missing). A candidate better by
//! more than `min_delta` (or the first model of a name) is registered and the alias moved to
//! it; a worse one is not registered at all.
//!
//! Audit trail, as version tags: the promoted version records `bciops.replaced_version`,
//! `bciops.replaced_metric`, `metric.<name>`, `bciops.promoted_at`; the replaced one records
//! `bciops.replaced_by` and `bciops.replaced_at`. So "what was champion when" is answered by
//! the versions' tags alone.
//!
//! Concurrency: the local registry is locked for the whole decision. MLflow and a registry on
//! a bucket have no locks, so
//! after moving the alias the registry is read again: among the versions promoted since the
//! champion we compared with, the best one must hold the alias; if it is not ours, we lost a
//! race, put the alias on that better version, and report it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{Registry, Version};
use crate::error::{Error, Result};

pub const DECISION_TAG: &str = "bciops.decision";
/// SHA-256 of the model directory's `checksums.sha256`: the same digest means the same files.
pub const MODEL_DIGEST_TAG: &str = "bciops.model_sha256";

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub name: String,
    /// A top-level number of `metrics.json`; higher is better.
    pub metric: String,
    pub min_delta: f64,
    pub alias: String,
    /// The run whose `model` artifact the new version comes from.
    pub run_id: Option<String>,
    /// Where the model directory was fetched from (a bucket URI), recorded as the version's
    /// source and tag `bciops.model_uri`; None: the directory itself.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Promoted,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub decision: Outcome,
    pub name: String,
    pub alias: String,
    pub metric: String,
    pub candidate: f64,
    /// The champion compared with (None: the first model of this name).
    pub champion: Option<f64>,
    pub champion_version: Option<u64>,
    pub min_delta: f64,
    /// The version registered for the candidate (None when rejected outright).
    pub version: Option<u64>,
    /// The version holding the alias afterwards.
    pub alias_version: Option<u64>,
    /// Another compare-register promoted a better model at the same time.
    pub lost_race: bool,
    /// The champion holds exactly the candidate's files (a rerun of an earlier promotion,
    /// perhaps one that was interrupted before its deployment).
    pub champion_is_candidate: bool,
    pub reason: String,
}

/// Reads a top-level number from a model directory's `metrics.json`.
pub fn read_metric(model_dir: &Path, metric: &str) -> Result<f64> {
    let path = model_dir.join("metrics.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "`{}` has no metrics.json: not a model directory from `bciops train`",
                model_dir.display()
            )))
        }
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(&path, format!("not JSON: {e}")))?;
    v.get(metric)
        .and_then(serde_json::Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| Error::malformed(&path, format!("has no numeric metric `{metric}`")))
}

fn metric_tag(metric: &str) -> String {
    format!("metric.{metric}")
}

/// The champion's metric: its tag, else its files' `metrics.json`.
fn champion_metric(registry: &Registry, v: &Version, metric: &str) -> Result<f64> {
    if let Some(x) = v
        .tags
        .get(&metric_tag(metric))
        .and_then(|s| s.parse::<f64>().ok())
    {
        return Ok(x);
    }
    let tmp = tempdir()?;
    registry.download(v, &tmp)?;
    let x = read_metric(&tmp, metric);
    let _ = std::fs::remove_dir_all(&tmp);
    x.map_err(|e| {
        Error::Invalid(format!(
            "cannot compare with `{}` version {}: {e}",
            v.name, v.version
        ))
    })
}

/// The digest recorded as [`MODEL_DIGEST_TAG`].
pub fn model_digest(model_dir: &Path) -> Result<String> {
    let path = model_dir.join(crate::model::artifact::CHECKSUMS);
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    Ok(crate::fsutil::sha256_hex(&bytes))
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("bciops-champion-{}", crate::tracking::new_run_id()));
    Ok(dir)
}

/// Compares, registers and promotes (see the module docs).
pub fn compare_register(
    registry: &Registry,
    model_dir: &Path,
    opts: &CompareOptions,
) -> Result<Decision> {
    if !opts.min_delta.is_finite() {
        return Err(Error::Invalid(format!(
            "`{}` is not a finite --min-delta",
            opts.min_delta
        )));
    }
    if opts.name.trim().is_empty() || opts.alias.trim().is_empty() {
        return Err(Error::Invalid(
            "the model name and alias must not be empty".into(),
        ));
    }
    let candidate = read_metric(model_dir, &opts.metric)?;
    // Only verified models are registered: a changed file or a foreign directory is refused.
    let model = crate::model::artifact::load(model_dir)?;
    let digest = model_digest(model_dir)?;

    let lock = registry.lock()?;
    let champion = registry.alias_version(&opts.name, &opts.alias)?;
    let champion_value = match &champion {
        Some(v) => Some(champion_metric(registry, v, &opts.metric)?),
        None => None,
    };
    let mut decision = Decision {
        decision: Outcome::Rejected,
        name: opts.name.clone(),
        alias: opts.alias.clone(),
        metric: opts.metric.clone(),
        candidate,
        champion: champion_value,
        champion_version: champion.as_ref().map(|v| v.version),
        min_delta: opts.min_delta,
        version: None,
        alias_version: champion.as_ref().map(|v| v.version),
        lost_race: false,
        champion_is_candidate: champion
            .as_ref()
            .is_some_and(|v| v.tags.get(MODEL_DIGEST_TAG) == Some(&digest)),
        reason: String::new(),
    };
    if let (Some(c), Some(v)) = (champion_value, &champion) {
        if candidate <= c + opts.min_delta {
            decision.reason = if decision.champion_is_candidate {
                // An earlier run moved the alias here but was stopped before it recorded the
                // decision: record it now.
                if v.tags.get(DECISION_TAG).map(String::as_str) != Some("promoted") {
                    registry.set_version_tag(&opts.name, v.version, DECISION_TAG, "promoted")?;
                }
                format!(
                    "the champion (version {}) already is this model: champion unchanged",
                    v.version
                )
            } else {
                format!(
                    "{} {candidate:.4} is not better than the champion's {c:.4} by more than {}",
                    opts.metric, opts.min_delta
                )
            };
            return Ok(decision);
        }
    }

    let now = crate::model::artifact::utc_now();
    let mut tags = BTreeMap::new();
    tags.insert(metric_tag(&opts.metric), candidate.to_string());
    // `promoted` only once the alias has moved: a run stopped in between leaves a candidate.
    tags.insert(DECISION_TAG.into(), "candidate".into());
    tags.insert(MODEL_DIGEST_TAG.into(), digest.clone());
    tags.insert("bciops.promoted_at".into(), now.clone());
    tags.insert("bciops.alias".into(), opts.alias.clone());
    tags.insert("bciops.dataset_sha256".into(), model.dataset.sha256.clone());
    tags.insert("bciops.min_delta".into(), opts.min_delta.to_string());
    if let Some(uri) = &opts.origin {
        tags.insert("bciops.model_uri".into(), uri.clone());
    }
    tags.insert(
        "bciops.replaced_version".into(),
        champion
            .as_ref()
            .map_or("none".into(), |v| v.version.to_string()),
    );
    tags.insert(
        "bciops.replaced_metric".into(),
        champion_value.map_or("none".into(), |c| c.to_string()),
    );
    let registered = registry.register(
        &opts.name,
        model_dir,
        opts.origin.as_deref(),
        opts.run_id.as_deref(),
        &tags,
    )?;
    let mine = registered.version;
    decision.version = Some(mine);

    registry.set_alias(&opts.name, &opts.alias, mine)?;
    registry.set_version_tag(&opts.name, mine, DECISION_TAG, "promoted")?;
    // Under the lock nobody else decided in between; without one, settle the race.
    let holder = match &lock {
        Some(_) => mine,
        None => settle_race(registry, opts, champion.as_ref().map(|v| v.version))?,
    };
    decision.alias_version = Some(holder);
    if holder == mine {
        decision.decision = Outcome::Promoted;
        decision.reason = match champion_value {
            Some(c) => format!(
                "{} {candidate:.4} beats the champion's {c:.4} by more than {}",
                opts.metric, opts.min_delta
            ),
            None => format!("the first `{}` model", opts.name),
        };
        if let Some(old) = &champion {
            // Best effort: the promotion itself is already recorded on the new version.
            let _ = registry.set_version_tag(
                &opts.name,
                old.version,
                "bciops.replaced_by",
                &mine.to_string(),
            );
            let _ = registry.set_version_tag(&opts.name, old.version, "bciops.replaced_at", &now);
        }
    } else {
        decision.lost_race = true;
        decision.reason = format!(
            "lost a race: version {holder} was promoted at the same time with a better {}",
            opts.metric
        );
        let _ = registry.set_version_tag(&opts.name, mine, DECISION_TAG, "lost-race");
    }
    Ok(decision)
}

/// After moving the alias in a registry without locks: the best of the versions promoted since
/// `since` (the champion we compared with) must hold the alias. Returns the holder.
fn settle_race(registry: &Registry, opts: &CompareOptions, since: Option<u64>) -> Result<u64> {
    let tag = metric_tag(&opts.metric);
    let mut holder = 0;
    for _ in 0..3 {
        let versions = registry.versions(&opts.name)?;
        let best = versions
            .iter()
            .filter(|v| since.is_none_or(|s| v.version > s))
            .filter(|v| v.tags.get(DECISION_TAG).map(String::as_str) == Some("promoted"))
            .filter_map(|v| Some((v.tags.get(&tag)?.parse::<f64>().ok()?, v.version)))
            // Highest metric; among equals the earliest version.
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        let current = registry
            .alias_version(&opts.name, &opts.alias)?
            .map(|v| v.version);
        match (best, current) {
            (Some((_, b)), Some(c)) if b == c => return Ok(c),
            (Some((_, b)), _) => {
                registry.set_alias(&opts.name, &opts.alias, b)?;
                holder = b;
            }
            (None, Some(c)) => return Ok(c),
            (None, None) => return Ok(holder),
        }
    }
    Ok(holder)
}
