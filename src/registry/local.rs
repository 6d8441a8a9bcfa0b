//! The embedded model registry, inside the run store:
//!
//! ```text
//! STORE/registry/.lock                          held by compare-register while it decides
//! STORE/registry/<name>/model.json              {name, created, aliases: {alias: version}}
//! STORE/registry/<name>/versions/<n>/version.json  {version, source, run_id, tags, created}
//! STORE/registry/<name>/versions/<n>/files/     a copy of the model directory
//! ```
//!
//! Version numbers are taken by creating `versions/<n>` (atomic), so concurrent registrations
//! never share one; `model.json` is replaced atomically.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ModelSummary, Version};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::tracking::{copy_into, now_ms};

#[derive(Debug, Clone)]
pub struct LocalRegistry {
    root: PathBuf,
}

/// `model.json`, shared with the registry on a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ModelJson {
    pub name: String,
    pub created: i64,
    #[serde(default)]
    pub aliases: BTreeMap<String, u64>,
}

/// `version.json`, shared with the registry on a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct VersionJson {
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

/// An exclusive lock on the registry, released when dropped (or when the process dies).
pub struct RegistryLock {
    _file: File,
}

impl LocalRegistry {
    /// The registry of the run store at `store`.
    pub fn new(store: &Path) -> LocalRegistry {
        LocalRegistry {
            root: store.join("registry"),
        }
    }

    /// Waits for exclusive use of the registry (an OS file lock: a crashed holder releases it).
    pub fn lock(&self) -> Result<RegistryLock> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io("create", &self.root, e))?;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        lock_exclusive(&file).map_err(|e| Error::io("lock", &path, e))?;
        Ok(RegistryLock { _file: file })
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(dir_name(name))
    }

    fn version_dir(&self, name: &str, version: u64) -> PathBuf {
        self.model_dir(name)
            .join("versions")
            .join(version.to_string())
    }

    pub fn exists(&self, name: &str) -> bool {
        self.model_dir(name).join("model.json").is_file()
    }

    fn read_model(&self, name: &str) -> Result<Option<ModelJson>> {
        let path = self.model_dir(name).join("model.json");
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| Error::malformed(&path, format!("not a registered model: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    fn write_model(&self, m: &ModelJson) -> Result<()> {
        let text = serde_json::to_string_pretty(m)
            .map_err(|e| Error::Invalid(format!("cannot encode: {e}")))?;
        write_atomic(&self.model_dir(&m.name).join("model.json"), text.as_bytes())
    }

    fn unknown(name: &str) -> Error {
        Error::Invalid(format!("registered model `{name}` does not exist"))
    }

    fn read_version(
        &self,
        name: &str,
        version: u64,
        aliases: &BTreeMap<String, u64>,
    ) -> Result<Version> {
        let path = self.version_dir(name, version).join("version.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Invalid(format!(
                    "registered model `{name}` has no version {version}"
                )))
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let v: VersionJson = serde_json::from_str(&text)
            .map_err(|e| Error::malformed(&path, format!("not a model version: {e}")))?;
        Ok(v.into_version(name, aliases))
    }

    pub fn alias_version(&self, name: &str, alias: &str) -> Result<Option<Version>> {
        let Some(m) = self.read_model(name)? else {
            return Ok(None);
        };
        match m.aliases.get(alias) {
            Some(&v) => self.read_version(name, v, &m.aliases).map(Some),
            None => Ok(None),
        }
    }

    pub fn version(&self, name: &str, version: u64) -> Result<Version> {
        let m = self.read_model(name)?.ok_or_else(|| Self::unknown(name))?;
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
        if self.read_model(name)?.is_none() {
            self.write_model(&ModelJson {
                name: name.to_owned(),
                created: now_ms(),
                aliases: BTreeMap::new(),
            })?;
        }
        let versions = self.model_dir(name).join("versions");
        std::fs::create_dir_all(&versions).map_err(|e| Error::io("create", &versions, e))?;
        let mut n = self.version_numbers(name)?.last().copied().unwrap_or(0) + 1;
        // Creating the directory claims the number; a concurrent claim makes us try the next.
        let dir = loop {
            let dir = versions.join(n.to_string());
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(Error::io("create", &dir, e)),
            }
        };
        copy_into(model_dir, &dir.join("files"))?;
        let v = VersionJson::new(n, model_dir, origin, run_id, tags);
        self.write_version(name, &v)?;
        self.version(name, n)
    }

    fn write_version(&self, name: &str, v: &VersionJson) -> Result<()> {
        let text = serde_json::to_string_pretty(v)
            .map_err(|e| Error::Invalid(format!("cannot encode: {e}")))?;
        write_atomic(
            &self.version_dir(name, v.version).join("version.json"),
            text.as_bytes(),
        )
    }

    fn version_numbers(&self, name: &str) -> Result<Vec<u64>> {
        let dir = self.model_dir(name).join("versions");
        let mut out: Vec<u64> = match std::fs::read_dir(&dir) {
            Ok(list) => list
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        out.sort_unstable();
        Ok(out)
    }

    pub fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        let mut m = self.read_model(name)?.ok_or_else(|| Self::unknown(name))?;
        self.read_version(name, version, &m.aliases)?;
        m.aliases.insert(alias.to_owned(), version);
        self.write_model(&m)
    }

    pub fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        let path = self.version_dir(name, version).join("version.json");
        self.version(name, version)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut v: VersionJson = serde_json::from_str(&text)
            .map_err(|e| Error::malformed(&path, format!("not a model version: {e}")))?;
        v.tags.insert(key.to_owned(), value.to_owned());
        self.write_version(name, &v)
    }

    pub fn versions(&self, name: &str) -> Result<Vec<Version>> {
        let m = self.read_model(name)?.ok_or_else(|| Self::unknown(name))?;
        self.version_numbers(name)?
            .into_iter()
            // A number claimed by a registration still copying files has no version.json yet.
            .filter(|n| self.version_dir(name, *n).join("version.json").is_file())
            .map(|n| self.read_version(name, n, &m.aliases))
            .collect()
    }

    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        let list = match std::fs::read_dir(&self.root) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &self.root, e)),
        };
        let mut out = Vec::new();
        for entry in list.flatten() {
            let path = entry.path().join("model.json");
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            let m: ModelJson = serde_json::from_str(&text)
                .map_err(|e| Error::malformed(&path, format!("not a registered model: {e}")))?;
            out.push(ModelSummary {
                // A number claimed by a registration that never finished is no version.
                latest_version: self
                    .version_numbers(&m.name)?
                    .into_iter()
                    .rfind(|n| self.version_dir(&m.name, *n).join("version.json").is_file()),
                name: m.name,
                aliases: m.aliases,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn download(&self, version: &Version, dest: &Path) -> Result<()> {
        let files = self
            .version_dir(&version.name, version.version)
            .join("files");
        copy_into(&files, dest).map(|_| ())
    }
}

/// Blocks until this process holds an exclusive flock(2) on `file`; closing it releases it.
#[cfg(unix)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).map_err(std::io::Error::from)
}

/// Elsewhere the registry is not locked (bciops ships for Linux; see the README).
#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> std::io::Result<()> {
    Ok(())
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
        let reg = LocalRegistry::new(&tmp.path().join("store"));
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
}
