//! The embedded model registry on object storage (`--registry-uri s3://BUCKET/PREFIX` or
//! `gs://…`), with the local registry's layout under the prefix:
//!
//! ```text
//! PREFIX/registry/<name>/model.json                     {name, created, aliases}
//! PREFIX/registry/<name>/versions/<n>/claim.json        created once: takes the number n
//! PREFIX/registry/<name>/versions/<n>/version.json      {version, source, run_id, tags, created}
//! PREFIX/registry/<name>/versions/<n>/files/            the model, a published directory
//! ```
//!
//! A bucket has no locks, so every update is a conditional write: a version number is taken
//! by creating its `claim.json` only if absent (two registrations can never take the same
//! number; the loser tries the next), and `model.json` (aliases) and `version.json` (tags)
//! are replaced only if unchanged since read, re-read and retried on conflict. The
//! compare-and-promote decision settles races as with MLflow (see `compare`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::local::{dir_name, ModelJson, VersionJson};
use super::{ModelSummary, Version};
use crate::error::{Error, Result};
use crate::storage::{self, Location, Remote, Revision};
use crate::tracking::{copy_into, now_ms};

/// How often a conditional update is retried before giving up (each attempt re-reads).
const ATTEMPTS: usize = 50;

#[derive(Debug, Clone)]
pub struct BucketRegistry {
    root: Remote,
}

impl BucketRegistry {
    /// The registry under `prefix` (its `registry/` child, as in the local store).
    pub fn new(prefix: &Remote) -> BucketRegistry {
        BucketRegistry {
            root: prefix.join("registry"),
        }
    }

    fn model_key(&self, name: &str) -> Remote {
        self.root.join(&dir_name(name))
    }

    fn version_key(&self, name: &str, version: u64) -> Remote {
        self.model_key(name)
            .join("versions")
            .join(&version.to_string())
    }

    fn read_json<T: DeserializeOwned>(
        remote: &Remote,
        what: &str,
    ) -> Result<Option<(T, Revision)>> {
        let Some((bytes, revision)) = storage::read_revision(remote)? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(remote.to_string(), format!("not {what}: {e}")))?;
        Ok(Some((value, revision)))
    }

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(value).map_err(|e| Error::Invalid(format!("cannot encode: {e}")))
    }

    fn read_model(&self, name: &str) -> Result<Option<(ModelJson, Revision)>> {
        Self::read_json(
            &self.model_key(name).join("model.json"),
            "a registered model",
        )
    }

    fn unknown(name: &str) -> Error {
        Error::Invalid(format!("registered model `{name}` does not exist"))
    }

    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.read_model(name)?.is_some())
    }

    fn read_version(
        &self,
        name: &str,
        version: u64,
        aliases: &BTreeMap<String, u64>,
    ) -> Result<Version> {
        let key = self.version_key(name, version).join("version.json");
        let (v, _): (VersionJson, _) =
            Self::read_json(&key, "a model version")?.ok_or_else(|| {
                Error::Invalid(format!(
                    "registered model `{name}` has no version {version}"
                ))
            })?;
        Ok(v.into_version(name, aliases))
    }

    pub fn alias_version(&self, name: &str, alias: &str) -> Result<Option<Version>> {
        let Some((m, _)) = self.read_model(name)? else {
            return Ok(None);
        };
        match m.aliases.get(alias) {
            Some(&v) => self.read_version(name, v, &m.aliases).map(Some),
            None => Ok(None),
        }
    }

    pub fn version(&self, name: &str, version: u64) -> Result<Version> {
        let (m, _) = self.read_model(name)?.ok_or_else(|| Self::unknown(name))?;
        self.read_version(name, version, &m.aliases)
    }

    pub fn register(
        &self,
        name: &str,
        model_dir: &Path,
        origin: Option<&str>,
        run_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<Version> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("the model name is empty".into()));
        }
        let model = ModelJson {
            name: name.to_owned(),
            created: now_ms(),
            aliases: BTreeMap::new(),
        };
        // Whoever creates model.json first wins; the others keep theirs unwritten.
        storage::create_new(
            &self.model_key(name).join("model.json"),
            &Self::encode(&model)?,
        )?;
        let mut n = self.claimed_numbers(name)?.last().copied().unwrap_or(0) + 1;
        let claim = serde_json::json!({ "claimed": now_ms() }).to_string();
        while !storage::create_new(
            &self.version_key(name, n).join("claim.json"),
            claim.as_bytes(),
        )? {
            n += 1;
        }
        storage::publish_dir(
            model_dir,
            &Location::Remote(self.version_key(name, n).join("files")),
        )?;
        let v = VersionJson::new(n, model_dir, origin, run_id, tags);
        // The version exists for readers once version.json does, after its files.
        storage::write_file(
            &Location::Remote(self.version_key(name, n).join("version.json")),
            &Self::encode(&v)?,
        )?;
        self.version(name, n)
    }

    /// Version numbers taken so far (some may still be uploading), ascending.
    fn claimed_numbers(&self, name: &str) -> Result<Vec<u64>> {
        self.numbers_with(name, "claim.json")
    }

    fn numbers_with(&self, name: &str, file: &str) -> Result<Vec<u64>> {
        let listed = storage::list_prefix(&self.model_key(name).join("versions"))?;
        let mut out: Vec<u64> = listed
            .iter()
            .filter_map(|(entry, _)| {
                let (n, rest) = entry.split_once('/')?;
                (rest == file).then(|| n.parse().ok()).flatten()
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Re-reads `key`, applies `change` and replaces it only if nobody wrote it in between;
    /// retried on conflict.
    fn update<T: Serialize + DeserializeOwned>(
        key: &Remote,
        what: &str,
        missing: impl Fn() -> Error,
        change: impl Fn(&mut T) -> Result<()>,
    ) -> Result<()> {
        for attempt in 0..ATTEMPTS {
            let (mut value, revision): (T, _) = Self::read_json(key, what)?.ok_or_else(&missing)?;
            change(&mut value)?;
            if storage::replace_if(key, &Self::encode(&value)?, &revision)? {
                return Ok(());
            }
            // Another writer got there first: back off a little (jittered) and re-read.
            let jitter = (now_ms() as u64 ^ (attempt as u64 * 7919)) % 50;
            std::thread::sleep(std::time::Duration::from_millis(10 + jitter));
        }
        Err(Error::Data(format!(
            "`{key}` kept changing under {ATTEMPTS} attempts to update it; try again"
        )))
    }

    pub fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        self.version(name, version)?;
        Self::update(
            &self.model_key(name).join("model.json"),
            "a registered model",
            || Self::unknown(name),
            |m: &mut ModelJson| {
                m.aliases.insert(alias.to_owned(), version);
                Ok(())
            },
        )
    }

    pub fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        self.version(name, version)?;
        Self::update(
            &self.version_key(name, version).join("version.json"),
            "a model version",
            || {
                Error::Invalid(format!(
                    "registered model `{name}` has no version {version}"
                ))
            },
            |v: &mut VersionJson| {
                v.tags.insert(key.to_owned(), value.to_owned());
                Ok(())
            },
        )
    }

    pub fn versions(&self, name: &str) -> Result<Vec<Version>> {
        let (m, _) = self.read_model(name)?.ok_or_else(|| Self::unknown(name))?;
        // A number claimed by a registration still uploading has no version.json yet.
        self.numbers_with(name, "version.json")?
            .into_iter()
            .map(|n| self.read_version(name, n, &m.aliases))
            .collect()
    }

    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        let mut out = Vec::new();
        for (entry, _) in storage::list_prefix(&self.root)? {
            let Some(dir) = entry.strip_suffix("/model.json") else {
                continue;
            };
            if dir.contains('/') {
                continue;
            }
            let key = self.root.join(dir).join("model.json");
            let Some((m, _)) = Self::read_json::<ModelJson>(&key, "a registered model")? else {
                continue;
            };
            out.push(ModelSummary {
                // A claim whose upload never finished is no version.
                latest_version: self.numbers_with(&m.name, "version.json")?.last().copied(),
                name: m.name,
                aliases: m.aliases,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn download(&self, version: &Version, dest: &Path) -> Result<()> {
        let files = Location::Remote(
            self.version_key(&version.name, version.version)
                .join("files"),
        );
        let fetched = storage::fetch_dir(&files)?;
        copy_into(fetched.path(), dest).map(|_| ())
    }
}
