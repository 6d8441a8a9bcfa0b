//! The model registry: registered models, integer versions, version tags and aliases, as
//! MLflow's Model Registry has them (no deprecated stages). One interface, [`ModelRegistry`],
//! with two implementations: the embedded registry ([`embedded`], one layout over a directory
//! or a bucket prefix, see [`store`]) and MLflow's registry REST API ([`mlflow`]).
//!
//! The server and other steps fetch a model by reference:
//! `models:/NAME@ALIAS` (e.g. `models:/bci@champion`) or `models:/NAME/VERSION`.
//!
//! ```no_run
//! use bciops::registry::{self, RegistryConfig};
//! let config = RegistryConfig::resolve(None, None).unwrap();
//! let (name, version) = registry::resolve("models:/bci@champion", &config).unwrap();
//! let fetched = registry::fetch_model("models:/bci@champion", &config, "model".as_ref(), false).unwrap();
//! assert_eq!((fetched.name, fetched.version), (name, version));
//! ```

pub mod compare;
pub mod embedded;
pub mod mlflow;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::storage::{Location, Remote};
use crate::tracking::mlflow::MlflowClient;
use crate::tracking::{Backend, DEFAULT_STORE};

/// The default alias `compare-register` moves and the server follows.
pub const CHAMPION: &str = "champion";

/// Which registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pub backend: RegistryBackend,
}

/// Where the registry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryBackend {
    /// The embedded store (a directory) or an MLflow server, as for tracking.
    Store(Backend),
    /// The embedded store's registry on a bucket (`s3://BUCKET/PREFIX`, `gs://…`).
    Bucket(Remote),
}

impl RegistryConfig {
    /// `registry_uri` (`--registry-uri`) wins, then `MLFLOW_REGISTRY_URI`, then the tracking
    /// URI (`tracking_uri`, i.e. `--tracking-uri`, then `MLFLOW_TRACKING_URI`), then the
    /// embedded store `./bciops-store`.
    pub fn resolve(
        registry_uri: Option<&str>,
        tracking_uri: Option<&str>,
    ) -> Result<RegistryConfig> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let uri = registry_uri
            .map(str::to_owned)
            .or_else(|| env("MLFLOW_REGISTRY_URI"))
            .or_else(|| tracking_uri.map(str::to_owned))
            .or_else(|| env("MLFLOW_TRACKING_URI"));
        let backend = match uri {
            Some(u) if u.starts_with("s3://") || u.starts_with("gs://") => {
                match Location::parse(u.trim())? {
                    Location::Remote(r) => RegistryBackend::Bucket(r),
                    Location::Local(p) => RegistryBackend::Store(Backend::Local(p)),
                }
            }
            Some(u) => RegistryBackend::Store(Backend::parse(&u)?),
            None => RegistryBackend::Store(Backend::Local(PathBuf::from(DEFAULT_STORE))),
        };
        Ok(RegistryConfig { backend })
    }

    pub fn open(&self) -> Result<Registry> {
        Ok(match &self.backend {
            RegistryBackend::Store(Backend::Local(dir)) => {
                Box::new(embedded::StoreRegistry::local(dir))
            }
            RegistryBackend::Store(Backend::Mlflow(e)) => {
                Box::new(mlflow::MlflowRegistry::new(MlflowClient::new(e.clone())?))
            }
            RegistryBackend::Bucket(r) => Box::new(embedded::StoreRegistry::bucket(r)),
        })
    }

    /// For messages (no credentials).
    pub fn display(&self) -> String {
        match &self.backend {
            RegistryBackend::Store(b) => b.display(),
            RegistryBackend::Bucket(r) => r.to_string(),
        }
    }
}

/// One model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub name: String,
    pub version: u64,
    /// Where the version's files came from: the run's model artifact
    /// (`runs:/<run_id>/model`, an `mlflow-artifacts:` URI) or a directory.
    pub source: String,
    pub run_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch.
    pub created: Option<i64>,
    pub aliases: Vec<String>,
}

/// A registered model with its aliases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub latest_version: Option<u64>,
    pub aliases: BTreeMap<String, u64>,
}

/// A model reference: `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Alias(String),
    Version(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub selector: Selector,
}

impl std::str::FromStr for ModelRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<ModelRef> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "`{s}` is not a model reference ({why}; use models:/NAME@ALIAS or models:/NAME/VERSION)"
            ))
        };
        let rest = s
            .strip_prefix("models:/")
            .ok_or_else(|| bad("no `models:/` prefix"))?;
        if let Some((name, alias)) = rest.rsplit_once('@') {
            if name.is_empty() || alias.is_empty() || alias.contains('/') {
                return Err(bad("empty name or alias"));
            }
            return Ok(ModelRef {
                name: name.to_owned(),
                selector: Selector::Alias(alias.to_owned()),
            });
        }
        let (name, version) = rest
            .rsplit_once('/')
            .ok_or_else(|| bad("no `@ALIAS` or `/VERSION`"))?;
        let version: u64 = version
            .parse()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| bad("the version is not a positive integer"))?;
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        Ok(ModelRef {
            name: name.to_owned(),
            selector: Selector::Version(version),
        })
    }
}

/// A model fetched into a local directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchedModel {
    pub name: String,
    pub version: u64,
    pub dir: PathBuf,
}

/// An open registry.
pub type Registry = Box<dyn ModelRegistry>;

/// What every registry does. Implemented by the embedded registry (over a directory or a
/// bucket) and by MLflow's.
pub trait ModelRegistry {
    /// Whether a registered model of that name exists.
    fn exists(&self, name: &str) -> Result<bool>;

    /// The version an alias points to; None when the alias is unset or the model does not
    /// exist yet (compare-register's first model).
    fn alias_version(&self, name: &str, alias: &str) -> Result<Option<Version>>;

    /// A version; an unknown model or version is an error naming it.
    fn version(&self, name: &str, version: u64) -> Result<Version>;

    /// Registers a model directory as a new version (the model is created if missing).
    /// `run_id`: the run whose `model` artifact the version comes from (with MLflow, a run
    /// is created for it when None). `origin`: where `model_dir` was fetched from (a bucket
    /// URI), recorded as the version's source in the embedded store when there is no run.
    fn register(
        &self,
        name: &str,
        model_dir: &Path,
        origin: Option<&str>,
        run_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<Version>;

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()>;

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()>;

    /// Every complete version of an existing model, oldest first ([`ModelRegistry::versions`]
    /// checks the model exists first).
    fn all_versions(&self, name: &str) -> Result<Vec<Version>>;

    fn models(&self) -> Result<Vec<ModelSummary>>;

    /// Copies a version's files into `dest` (created; must not hold a model already).
    fn download(&self, version: &Version, dest: &Path) -> Result<()>;

    /// Exclusive use of the registry for a whole compare-register decision, where it has a
    /// lock (the directory registry); None where it has not (a bucket, MLflow), whose races
    /// compare-register settles after moving the alias.
    fn lock(&self) -> Result<Option<store::RegistryLock>> {
        Ok(None)
    }

    /// Resolves a reference to its version; an unknown model or alias is an error.
    fn resolve(&self, reference: &ModelRef) -> Result<Version> {
        match &reference.selector {
            Selector::Version(v) => self.version(&reference.name, *v),
            Selector::Alias(a) => {
                self.require_model(&reference.name)?;
                self.alias_version(&reference.name, a)?.ok_or_else(|| {
                    Error::Invalid(format!(
                        "registered model `{}` has no alias `{a}`",
                        reference.name
                    ))
                })
            }
        }
    }

    /// An error naming the model when it does not exist.
    fn require_model(&self, name: &str) -> Result<()> {
        if self.exists(name)? {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "registered model `{name}` does not exist"
            )))
        }
    }

    /// Every version of a model, oldest first.
    fn versions(&self, name: &str) -> Result<Vec<Version>> {
        self.require_model(name)?;
        self.all_versions(name)
    }
}

/// The name and version a reference points to now. Cheap: one or two registry reads, no
/// download; a server polls this and calls `fetch_model` when the version changes.
pub fn resolve(reference: &str, registry: &RegistryConfig) -> Result<(String, u64)> {
    let reference: ModelRef = reference.parse()?;
    let v = registry.open()?.resolve(&reference)?;
    Ok((v.name, v.version))
}

/// Fetches the model a reference points to into `dest` and verifies it (checksums, format).
/// `dest` is replaced only once the download is complete and verified.
pub fn fetch_model(
    reference: &str,
    registry: &RegistryConfig,
    dest: &Path,
    force: bool,
) -> Result<FetchedModel> {
    let replace = crate::fsutil::Replace {
        kind: crate::model::artifact::MODEL_DIR,
        force,
    };
    let parsed: ModelRef = reference.parse()?;
    let reg = registry.open()?;
    let v = reg.resolve(&parsed)?;
    // `dest` is checked here, before anything is downloaded.
    let staged = crate::fsutil::StagedDir::new(dest, replace)?;
    reg.download(&v, staged.path())?;
    crate::model::artifact::load(staged.path()).map_err(|e| {
        Error::Invalid(format!(
            "model `{}` version {} from `{}` is not a usable model: {e}",
            v.name,
            v.version,
            registry.display()
        ))
    })?;
    staged.commit()?;
    Ok(FetchedModel {
        name: v.name,
        version: v.version,
        dir: dest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            "models:/bci@champion".parse::<ModelRef>().unwrap(),
            ModelRef {
                name: "bci".into(),
                selector: Selector::Alias("champion".into())
            }
        );
        assert_eq!(
            "models:/a/b/3".parse::<ModelRef>().unwrap(),
            ModelRef {
                name: "a/b".into(),
                selector: Selector::Version(3)
            }
        );
        for bad in [
            "bci@champion",
            "models:/bci",
            "models:/bci/0",
            "models:/@x",
            "models:/x/y",
        ] {
            let e = bad.parse::<ModelRef>().unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
