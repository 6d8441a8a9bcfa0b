//! Where the served model comes from, and how a new one replaces it.
//!
//! A [`ModelSource`] knows a model's current version and how to load it; the [`Slot`] holds the
//! model being served and swaps in a new one atomically. A version is swapped in only after it
//! loaded, verified and answered a warm-up prediction; otherwise the old model keeps serving
//! and a failed reload is counted. The poll loop asks the source for its current version every
//! interval (cheap: one small file hashed for a directory, one or two reads for a registry
//! alias); SIGHUP forces a reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::fsutil::sha256_hex;
use crate::model::artifact::{self, ModelFile, CHECKSUMS};
use crate::registry::{self, ModelRef, RegistryConfig};
use crate::storage::{self, Location, Remote};

/// A verified model ready to serve, with the name and version clients and metrics see.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    pub version: String,
    pub model: ModelFile,
}

impl LoadedModel {
    /// One prediction on a flat trial, so that a model which loads but cannot predict is never
    /// swapped in (and the first client does not pay for lazy initialisation).
    pub fn warm_up(&self) -> Result<()> {
        let (c, s) = self.model.trial_shape();
        // A small deterministic non-constant signal: a constant trial has a singular covariance.
        let trial = Array2::from_shape_fn((c, s), |(i, j)| ((i * 7 + j * 13) % 17) as f64 - 8.0);
        self.model.predict_raw_trial(trial.view()).map(|_| ())
    }
}

/// Where the served model comes from: a model directory ([`DirSource`]), one on a bucket
/// ([`BucketDirSource`]) or the model registry ([`RegistrySource`]: an alias such as
/// `models:/bci@champion`, followed as it moves).
///
/// Both methods block (file or network I/O); the server calls them off the async reactor.
pub trait ModelSource: Send + Sync + 'static {
    /// A short description for logs and errors, e.g. the directory or the registry reference.
    fn describe(&self) -> String;
    /// The version a fresh [`load`](Self::load) would return now, cheaply. The poll loop
    /// reloads when it differs from the version being served.
    fn current_version(&self) -> Result<String>;
    /// Loads and verifies the current model.
    fn load(&self) -> Result<LoadedModel>;
    /// Called once `served` is swapped in, to drop what older versions left behind.
    fn swapped(&self, _served: &LoadedModel) {}
}

/// A plain model directory (from `bciops train`). Its version is the first 12 hex digits of
/// the sha256 of `checksums.sha256`, which covers every file of the model, so replacing the
/// directory's contents with another model changes the version.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
    name: String,
}

impl DirSource {
    /// `name` defaults to the directory's own name.
    pub fn new(dir: &Path, name: Option<String>) -> Result<Self> {
        let name = match name {
            Some(n) => n,
            None => dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "model".to_owned()),
        };
        check_name(&name)?;
        Ok(DirSource {
            dir: dir.to_owned(),
            name,
        })
    }
}

/// Model names appear in URLs (`/v2/models/{name}`) and metric labels.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "model name `{name}` must be 1 to 128 letters, digits, `-`, `_` or `.`"
        )))
    }
}

fn dir_version(dir: &Path) -> Result<String> {
    let path = dir.join(CHECKSUMS);
    let bytes = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::malformed(
                dir,
                format!("not a bciops model directory (no `{CHECKSUMS}`)"),
            )
        } else {
            Error::io("read", &path, e)
        }
    })?;
    Ok(sha256_hex(&bytes)[..12].to_owned())
}

impl ModelSource for DirSource {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn current_version(&self) -> Result<String> {
        dir_version(&self.dir)
    }

    fn load(&self) -> Result<LoadedModel> {
        // The directory may be replaced while it is read: the version read before and after
        // must agree, or the files loaded may belong to two different models.
        let before = dir_version(&self.dir)?;
        let model = artifact::load(&self.dir)?;
        let after = dir_version(&self.dir)?;
        if before != after {
            return Err(Error::Data(format!(
                "model `{}` changed while it was loaded; try again",
                self.dir.display()
            )));
        }
        Ok(LoadedModel {
            name: self.name.clone(),
            version: before,
            model,
        })
    }
}

/// A model directory published on a bucket (`s3://…`, `gs://…`) by `bciops train`. Its version
/// is the one a local copy would have (the sha256 of `checksums.sha256`), read from the
/// directory's completion marker: polling costs one small read. A load downloads the
/// directory into a private temporary directory, checks every file against the marker, loads
/// the model and deletes the copy.
#[derive(Debug)]
pub struct BucketDirSource {
    remote: Remote,
    name: String,
    /// The last version seen with a complete marker: while a new model is being published
    /// (no marker), polls report it, so a publication in progress is not a failed reload.
    last_seen: Mutex<Option<String>>,
}

impl BucketDirSource {
    /// `name` defaults to the last part of the key.
    pub fn new(remote: Remote, name: Option<String>) -> Result<Self> {
        let name = name.unwrap_or_else(|| {
            remote
                .key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("model")
                .to_owned()
        });
        check_name(&name)?;
        Ok(BucketDirSource {
            remote,
            name,
            last_seen: Mutex::new(None),
        })
    }

    /// Why there is no version to read: nothing at all under the key, or no marker yet.
    fn no_model(&self) -> Error {
        let (bucket, key) = (&self.remote.bucket, &self.remote.key);
        match storage::list_prefix(&self.remote) {
            Ok(found) if found.is_empty() => Error::io(
                "read",
                self.remote.to_string(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("nothing under key `{key}` in bucket `{bucket}`"),
                ),
            ),
            Ok(_) => Error::malformed(
                self.remote.to_string(),
                format!(
                    "half-written directory: no completion marker `{}` (bucket `{bucket}`, \
                     key `{key}`); the writer did not finish",
                    storage::MARKER
                ),
            ),
            Err(e) => e,
        }
    }
}

impl ModelSource for BucketDirSource {
    fn describe(&self) -> String {
        self.remote.to_string()
    }

    fn current_version(&self) -> Result<String> {
        let mut last = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        match storage::published_sha256(&self.remote, CHECKSUMS)? {
            Some(sha) => {
                let version = sha[..12.min(sha.len())].to_owned();
                *last = Some(version.clone());
                Ok(version)
            }
            None => last.clone().ok_or_else(|| self.no_model()),
        }
    }

    fn load(&self) -> Result<LoadedModel> {
        let location = Location::Remote(self.remote.clone());
        let fetched = storage::fetch_dir(&location)?;
        // Every file matched the marker read once, so the version and the files agree.
        let version = dir_version(fetched.path()).map_err(|e| fetched.relabel(e))?;
        let model = artifact::load(fetched.path()).map_err(|e| fetched.relabel(e))?;
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(version.clone());
        Ok(LoadedModel {
            name: self.name.clone(),
            version,
            model,
        })
    }
}

/// The model being served. Readers take a cheap `Arc` clone; a reload replaces it whole.
pub struct Slot {
    current: RwLock<Option<Arc<LoadedModel>>>,
    /// Serialises reloads (poll and SIGHUP) and remembers the last version that failed, so a
    /// broken version is counted once rather than at every poll.
    reloading: Mutex<Option<String>>,
}

/// What a reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// A new model (or, when forced, the same version again) is now served.
    Swapped { version: String },
    /// The source's version is the one served, or one that already failed.
    Unchanged,
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

impl Slot {
    pub fn new() -> Self {
        Slot {
            current: RwLock::new(None),
            reloading: Mutex::new(None),
        }
    }

    /// The model being served, if one has loaded.
    pub fn get(&self) -> Option<Arc<LoadedModel>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads from `source`, warms the model up and swaps it in. Unless `force`, does nothing
    /// when the source's version is the one served or the last one that failed. Blocks.
    pub fn reload(&self, source: &dyn ModelSource, force: bool) -> Result<Reload> {
        let mut last_failed = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        if !force {
            let version = source.current_version()?;
            let served = self.get().map(|m| m.version.clone());
            if served.as_deref() == Some(version.as_str())
                || last_failed.as_deref() == Some(version.as_str())
            {
                return Ok(Reload::Unchanged);
            }
            // Remember the version before loading: if the load fails, this is what failed.
            let outcome = load_and_warm(source);
            match outcome {
                Ok(model) => {
                    *last_failed = None;
                    Ok(self.swap(model, source))
                }
                Err(e) => {
                    *last_failed = Some(version);
                    Err(e)
                }
            }
        } else {
            let model = load_and_warm(source).inspect_err(|_| {
                *last_failed = source.current_version().ok();
            })?;
            *last_failed = None;
            Ok(self.swap(model, source))
        }
    }

    fn swap(&self, model: LoadedModel, source: &dyn ModelSource) -> Reload {
        let version = model.version.clone();
        let model = Arc::new(model);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(model.clone());
        source.swapped(&model);
        Reload::Swapped { version }
    }
}

fn load_and_warm(source: &dyn ModelSource) -> Result<LoadedModel> {
    let model = source.load()?;
    model.warm_up().map_err(|e| {
        Error::Data(format!(
            "model `{}` version `{}` failed its warm-up prediction: {e}",
            source.describe(),
            model.version
        ))
    })?;
    Ok(model)
}

/// A registry reference (`models:/NAME@ALIAS` or `models:/NAME/VERSION`).
pub fn is_registry_reference(model: &str) -> bool {
    model.starts_with("models:/")
}

/// A model in the registry, by alias (followed as it moves) or by fixed version. Its version
/// is the registry's version number; polling costs one or two registry reads, and a new
/// version is downloaded, verified by its checksums, then loaded.
///
/// Downloads go to a cache directory of this process (one subdirectory per version, the old
/// ones removed once a newer version is served; the whole cache when the source is dropped).
#[derive(Debug)]
pub struct RegistrySource {
    reference: String,
    registry: RegistryConfig,
    /// The name served; None: the registered model's name.
    name: Option<String>,
    cache: PathBuf,
}

impl RegistrySource {
    /// Checks the reference's syntax and the name, and creates the cache directory under
    /// `cache_parent` (the system's temporary directory in `bciops serve`). Nothing is read
    /// from the registry yet.
    pub fn new(
        reference: &str,
        registry: RegistryConfig,
        name: Option<String>,
        cache_parent: &Path,
    ) -> Result<Self> {
        let parsed: ModelRef = reference.parse()?;
        // Without `--name` the registered name is served; it must fit URLs and labels too.
        check_name(name.as_deref().unwrap_or(&parsed.name)).map_err(|e| {
            Error::setting(
                "name",
                Some("NAME"),
                format!("{e}: serve `{reference}` under another name"),
            )
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let cache = cache_parent.join(format!("bciops-serve-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&cache).map_err(|e| Error::io("create directory", &cache, e))?;
        Ok(RegistrySource {
            reference: reference.to_owned(),
            registry,
            name,
            cache,
        })
    }

    /// Where this source downloads its versions.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }
}

impl ModelSource for RegistrySource {
    fn describe(&self) -> String {
        format!("{} in {}", self.reference, self.registry.display())
    }

    fn current_version(&self) -> Result<String> {
        registry::resolve(&self.reference, &self.registry).map(|(_, v)| v.to_string())
    }

    fn load(&self) -> Result<LoadedModel> {
        // Reloads are serialised by the slot, so one staging name is enough; the version is
        // known only once fetched (an alias may move between `current_version` and here).
        let incoming = self.cache.join("incoming");
        let fetched = registry::fetch_model(&self.reference, &self.registry, &incoming, false)?;
        let dir = self.cache.join(fetched.version.to_string());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        }
        std::fs::rename(&incoming, &dir).map_err(|e| Error::io("rename into", &dir, e))?;
        let model = artifact::load(&dir)?;
        Ok(LoadedModel {
            name: self.name.clone().unwrap_or(fetched.name),
            version: fetched.version.to_string(),
            model,
        })
    }

    fn swapped(&self, served: &LoadedModel) {
        let Ok(entries) = std::fs::read_dir(&self.cache) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy() != served.version {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for RegistrySource {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fails;
    impl ModelSource for Fails {
        fn describe(&self) -> String {
            "nowhere".into()
        }
        fn current_version(&self) -> Result<String> {
            Ok("7".into())
        }
        fn load(&self) -> Result<LoadedModel> {
            Err(Error::Data("broken".into()))
        }
    }

    #[test]
    fn a_failed_version_is_tried_once_unless_forced() {
        let slot = Slot::new();
        assert!(slot.reload(&Fails, false).is_err());
        assert_eq!(slot.reload(&Fails, false).unwrap(), Reload::Unchanged);
        assert!(slot.reload(&Fails, true).is_err());
        assert!(slot.get().is_none());
    }

    #[test]
    fn names_must_fit_urls_and_labels() {
        assert!(check_name("bci-2a_v1.0").is_ok());
        for bad in ["", "a/b", "a b", "é", "x\"y"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
