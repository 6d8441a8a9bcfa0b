//! The embedded model registry, written once over a [`RegistryStore`]: in the run store's
//! directory or on a bucket prefix (`--registry-uri s3://BUCKET/PREFIX` or `gs://…`), with
//! the same layout:
//!
//! ```text
//! ROOT/.lock                                 (directory) held by compare-register while it decides
//! ROOT/<name>/model.json                     {name, created, aliases: {alias: version}}
//! ROOT/<name>/versions/<n>/                  (directory) taken by creating it: number n is ours
//! ROOT/<name>/versions/<n>/claim.json        (bucket) created once: takes the number n
//! ROOT/<name>/versions/<n>/version.json      {version, source, run_id, tags, created}
//! ROOT/<name>/versions/<n>/files/            the model (on a bucket, a published directory)
//! ```
//!
//! ROOT is `STORE/registry` or `PREFIX/registry`. A version number is taken atomically
//! ([`RegistryStore::claim`]), so two registrations never share one (the loser tries the
//! next); a version exists for readers once its `version.json` does, after its files.
//! `model.json` (aliases) and `version.json` (tags) are replaced only if unchanged since
//! read, re-read and retried on conflict. A directory registry is also locked for a whole
//! compare-register decision; on a bucket, the decision settles races as with MLflow (see
//! `compare`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::store::{BucketStore, FsStore, RegistryLock, RegistryStore};
use super::{ModelRegistry, ModelSummary, Version};
use crate::error::{Error, Result};
use crate::storage::Remote;
use crate::tracking::now_ms;

/// How often a conditional update is retried before giving up (each attempt re-reads).
const ATTEMPTS: usize = 50;

/// The embedded registry over a store.
#[derive(Debug, Clone)]
pub struct StoreRegistry<S> {
    store: S,
}

impl StoreRegistry<FsStore> {
    /// The registry of the run store at `store` (its `registry/` directory).
    pub fn local(store: &Path) -> Self {
        StoreRegistry {
            store: FsStore::new(store.join("registry")),
        }
    }
}

impl StoreRegistry<BucketStore> {
    /// The registry under `prefix` (its `registry/` child, as in the local store).
    pub fn bucket(prefix: &Remote) -> Self {
        StoreRegistry {
            store: BucketStore::new(prefix.join("registry")),
        }
    }
}

fn model_key(name: &str) -> String {
    format!("{}/model.json", dir_name(name))
}

fn versions_key(name: &str) -> String {
    format!("{}/versions", dir_name(name))
}

fn version_key(name: &str, version: u64) -> String {
    format!("{}/{version}", versions_key(name))
}

fn unknown(name: &str) -> Error {
    Error::Invalid(format!("registered model `{name}` does not exist"))
}

fn no_version(name: &str, version: u64) -> Error {
    Error::Invalid(format!(
        "registered model `{name}` has no version {version}"
    ))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::encode("a registry record", e))
}

impl<S: RegistryStore> StoreRegistry<S> {
    fn read_json<T: DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<(T, S::Revision)>> {
        let Some((bytes, revision)) = self.store.read(key)? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(self.store.name(key), format!("not {what}: {e}")))?;
        Ok(Some((value, revision)))
    }

    fn read_model(&self, name: &str) -> Result<Option<ModelJson>> {
        Ok(self
            .read_json(&model_key(name), "a registered model")?
            .map(|(m, _)| m))
    }

    /// Version `version`, None while it has no `version.json` (a registration still copying
    /// its files, or one that died doing so: no version anywhere).
    fn read_version(&self, name: &str, version: u64) -> Result<Option<VersionJson>> {
        Ok(self
            .read_json(
                &format!("{}/version.json", version_key(name, version)),
                "a model version",
            )?
            .map(|(v, _)| v))
    }

    fn version_with(
        &self,
        name: &str,
        version: u64,
        aliases: &BTreeMap<String, u64>,
    ) -> Result<Version> {
        let v = self
            .read_version(name, version)?
            .ok_or_else(|| no_version(name, version))?;
        Ok(v.into_version(name, aliases))
    }

    /// Version numbers taken so far (some may still be copying), ascending.
    fn claimed_numbers(&self, name: &str) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = self
            .store
            .list(&versions_key(name))?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Re-reads `key`, applies `change` and replaces it only if nobody wrote it in between;
    /// retried on conflict.
    fn update<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
        missing: impl Fn() -> Error,
        change: impl Fn(&mut T),
    ) -> Result<()> {
        for attempt in 0..ATTEMPTS {
            let (mut value, revision): (T, _) = self.read_json(key, what)?.ok_or_else(&missing)?;
            change(&mut value);
            if self.store.replace_if(key, &encode(&value)?, &revision)? {
                return Ok(());
            }
            // Another writer got there first: back off a little (jittered) and re-read.
            let jitter = (now_ms() as u64 ^ (attempt as u64 * 7919)) % 50;
            std::thread::sleep(std::time::Duration::from_millis(10 + jitter));
        }
        Err(Error::Data(format!(
            "`{}` kept changing under {ATTEMPTS} attempts to update it; try again",
            self.store.name(key)
        )))
    }
}

impl<S: RegistryStore> ModelRegistry for StoreRegistry<S> {
    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.read_model(name)?.is_some())
    }

    fn alias_version(&self, name: &str, alias: &str) -> Result<Option<Version>> {
        let Some(m) = self.read_model(name)? else {
            return Ok(None);
        };
        match m.aliases.get(alias) {
            Some(&v) => self.version_with(name, v, &m.aliases).map(Some),
            None => Ok(None),
        }
    }

    fn version(&self, name: &str, version: u64) -> Result<Version> {
        let m = self.read_model(name)?.ok_or_else(|| unknown(name))?;
        self.version_with(name, version, &m.aliases)
    }

    fn register(
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
        self.store.create(&model_key(name), &encode(&model)?)?;
        let mut n = self.claimed_numbers(name)?.last().copied().unwrap_or(0) + 1;
        while !self.store.claim(&version_key(name, n))? {
            n += 1;
        }
        self.store
            .put_dir(&format!("{}/files", version_key(name, n)), model_dir)?;
        let v = VersionJson::new(n, model_dir, origin, run_id, tags);
        // The version exists for readers once version.json does, after its files. Only the
        // claimer of n writes it.
        let key = format!("{}/version.json", version_key(name, n));
        if !self.store.create(&key, &encode(&v)?)? {
            return Err(Error::Data(format!(
                "`{}` was written by another registration of the same number",
                self.store.name(&key)
            )));
        }
        self.version(name, n)
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        self.version(name, version)?;
        self.update(
            &model_key(name),
            "a registered model",
            || unknown(name),
            |m: &mut ModelJson| {
                m.aliases.insert(alias.to_owned(), version);
            },
        )
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        self.version(name, version)?;
        self.update(
            &format!("{}/version.json", version_key(name, version)),
            "a model version",
            || no_version(name, version),
            |v: &mut VersionJson| {
                v.tags.insert(key.to_owned(), value.to_owned());
            },
        )
    }

    fn all_versions(&self, name: &str) -> Result<Vec<Version>> {
        let m = self.read_model(name)?.ok_or_else(|| unknown(name))?;
        let mut out = Vec::new();
        for n in self.claimed_numbers(name)? {
            // A number claimed by a registration still copying has no version.json yet.
            if let Some(v) = self.read_version(name, n)? {
                out.push(v.into_version(name, &m.aliases));
            }
        }
        Ok(out)
    }

    fn models(&self) -> Result<Vec<ModelSummary>> {
        let mut out = Vec::new();
        for dir in self.store.list("")? {
            let key = format!("{dir}/model.json");
            let Some((m, _)) = self.read_json::<ModelJson>(&key, "a registered model")? else {
                continue;
            };
            // A number claimed by a registration that never finished is no version.
            let mut latest = None;
            for n in self.claimed_numbers(&m.name)?.into_iter().rev() {
                if self.read_version(&m.name, n)?.is_some() {
                    latest = Some(n);
                    break;
                }
            }
            out.push(ModelSummary {
                latest_version: latest,
                name: m.name,
                aliases: m.aliases,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn download(&self, version: &Version, dest: &Path) -> Result<()> {
        self.store.get_dir(
            &format!("{}/files", version_key(&version.name, version.version)),
            dest,
        )
    }

    fn lock(&self) -> Result<Option<RegistryLock>> {
        self.store.lock()
    }
}

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelJson {
    pub name: String,
    pub created: i64,
    #[serde(default)]
    pub aliases: BTreeMap<String, u64>,
}

/// `version.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionJson {
    pub version: u64,
    pub source: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created: i64,
}

impl VersionJson {
    /// Version `n` of a model registered from `model_dir`: its source is the run's `model`
    /// artifact, else the URI it was fetched from, else the directory.
    pub(super) fn new(
        n: u64,
        model_dir: &Path,
        origin: Option<&str>,
        run_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Self {
        let source = match (run_id, origin) {
            (Some(id), _) => format!("runs:/{id}/model"),
            (None, Some(uri)) => uri.to_owned(),
            (None, None) => std::fs::canonicalize(model_dir)
                .unwrap_or_else(|_| model_dir.to_owned())
                .display()
                .to_string(),
        };
        VersionJson {
            version: n,
            source,
            run_id: run_id.map(str::to_owned),
            tags: tags.clone(),
            created: now_ms(),
        }
    }

    /// The version as the registry reports it, with the aliases pointing at it.
    pub(super) fn into_version(self, name: &str, aliases: &BTreeMap<String, u64>) -> Version {
        Version {
            name: name.to_owned(),
            version: self.version,
            source: self.source,
            run_id: self.run_id,
            tags: self.tags,
            created: Some(self.created),
            aliases: aliases
                .iter()
                .filter(|(_, n)| **n == self.version)
                .map(|(a, _)| a.clone())
                .collect(),
        }
    }
}

/// What a model's directory name keeps as it is: letters, digits, `-`, `_` and `.` (a leading
/// `.` is encoded, so no name makes a hidden or `..` directory).
const DIR_NAME_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

/// A directory name for any model name: unreserved characters pass, others are %XX.
pub(super) fn dir_name(name: &str) -> String {
    let encode = |s| percent_encoding::utf8_percent_encode(s, DIR_NAME_KEEPS).to_string();
    match name.strip_prefix('.') {
        Some(rest) => format!("%2E{}", encode(rest)),
        None => encode(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_directories() {
        assert_eq!(dir_name("bci-2a_v1.0"), "bci-2a_v1.0");
        assert_eq!(dir_name("../x"), "%2E.%2Fx");
        assert_eq!(dir_name("a/b c"), "a%2Fb%20c");
        assert_eq!(dir_name(".x.y"), "%2Ex.y");
        assert_eq!(dir_name(""), "");
    }

    proptest::proptest! {
        /// Existing registries keep loading: the crate gives the directory names the
        /// hand-written encoder it replaced gave.
        #[test]
        fn dir_names_are_those_of_the_hand_written_encoder(name in "\\PC{0,12}") {
            let mut want = String::new();
            for b in name.bytes() {
                if b.is_ascii_alphanumeric() || b"-_".contains(&b) || (b == b'.' && !want.is_empty()) {
                    want.push(b as char);
                } else {
                    want.push_str(&format!("%{b:02X}"));
                }
            }
            proptest::prop_assert_eq!(dir_name(&name), want);
        }
    }

    #[test]
    fn versions_aliases_and_tags() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("a.txt"), b"x").unwrap();
        let reg = StoreRegistry::local(&tmp.path().join("store"));
        assert!(reg.alias_version("m", "champion").unwrap().is_none());
        let v1 = reg
            .register("m", &model, None, Some("abc"), &BTreeMap::new())
            .unwrap();
        let v2 = reg
            .register("m", &model, Some("s3://b/m"), None, &BTreeMap::new())
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(v1.source, "runs:/abc/model");
        assert_eq!(v2.source, "s3://b/m");
        reg.set_alias("m", "champion", 2).unwrap();
        reg.set_version_tag("m", 2, "k", "v").unwrap();
        let c = reg.alias_version("m", "champion").unwrap().unwrap();
        assert_eq!((c.version, c.tags["k"].as_str()), (2, "v"));
        assert_eq!(c.aliases, vec!["champion".to_owned()]);
        assert!(reg
            .set_alias("m", "champion", 9)
            .unwrap_err()
            .to_string()
            .contains("no version 9"));
        let out = tmp.path().join("out");
        reg.download(&c, &out).unwrap();
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"x");
        assert_eq!(reg.models().unwrap()[0].latest_version, Some(2));

        // A registration killed while copying claimed version 3 but never wrote version.json:
        // it is no version anywhere (issue 16: `models list` said latest=3, resolve said no).
        std::fs::create_dir_all(tmp.path().join("store/registry/m/versions/3/files")).unwrap();
        assert_eq!(reg.models().unwrap()[0].latest_version, Some(2));
        assert_eq!(reg.versions("m").unwrap().len(), 2);
        let v4 = reg
            .register("m", &model, None, None, &BTreeMap::new())
            .unwrap();
        assert_eq!(v4.version, 4);
        assert_eq!(reg.models().unwrap()[0].latest_version, Some(4));
    }

    /// A registry written before the one implementation (by the directory-only code) loads
    /// as it was, and a new version is laid out the same way (no `claim.json` locally).
    #[test]
    fn an_existing_directory_registry_keeps_loading() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store/registry/a%20b");
        std::fs::create_dir_all(root.join("versions/1/files")).unwrap();
        std::fs::write(root.join("versions/1/files/x.txt"), b"x").unwrap();
        std::fs::write(
            root.join("model.json"),
            r#"{"name": "a b", "created": 1, "aliases": {"champion": 1}}"#,
        )
        .unwrap();
        std::fs::write(
            root.join("versions/1/version.json"),
            r#"{"version": 1, "source": "/m", "run_id": null, "tags": {"k": "v"}, "created": 2}"#,
        )
        .unwrap();
        let reg = StoreRegistry::local(&tmp.path().join("store"));
        let c = reg.alias_version("a b", "champion").unwrap().unwrap();
        assert_eq!(
            (c.version, c.source.as_str(), c.created),
            (1, "/m", Some(2))
        );
        assert_eq!(c.tags["k"], "v");
        assert_eq!(reg.models().unwrap()[0].latest_version, Some(1));
        let model = tmp.path().join("m");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("y.txt"), b"y").unwrap();
        let v2 = reg
            .register("a b", &model, None, None, &BTreeMap::new())
            .unwrap();
        assert_eq!(v2.version, 2);
        let mut names: Vec<String> = std::fs::read_dir(root.join("versions/2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["files", "version.json"]);
        assert_eq!(
            std::fs::read(root.join("versions/2/files/y.txt")).unwrap(),
            b"y"
        );
    }
}
