//! MLflow's Model Registry over REST: registered models, versions whose source is a run's
//! `model` artifact (uploaded through the artifact proxy), version tags and aliases.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ModelRegistry, ModelSummary, Version};
use crate::error::{Error, Result};
use crate::tracking::mlflow::{MlflowClient, ModelVersionJson};
use crate::tracking::{now_ms, standard_tags, RunStatus, DEFAULT_EXPERIMENT};

pub struct MlflowRegistry {
    client: MlflowClient,
}

impl MlflowRegistry {
    pub fn new(client: MlflowClient) -> MlflowRegistry {
        MlflowRegistry { client }
    }

    pub fn client(&self) -> &MlflowClient {
        &self.client
    }

    fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        let m = self.client.registered_model(name)?;
        Ok(aliases_of(&m["registered_model"]))
    }
}

impl ModelRegistry for MlflowRegistry {
    fn exists(&self, name: &str) -> Result<bool> {
        match self.client.registered_model(name) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn alias_version(&self, name: &str, alias: &str) -> Result<Option<Version>> {
        match self.client.version_by_alias(name, alias) {
            Ok(v) => Ok(v.map(convert)),
            // The model itself does not exist yet.
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn version(&self, name: &str, version: u64) -> Result<Version> {
        match self.client.model_version(name, version) {
            Ok(v) => Ok(convert(v)),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {
                if self.exists(name)? {
                    Err(Error::Invalid(format!(
                        "registered model `{name}` has no version {version}"
                    )))
                } else {
                    Err(Error::Invalid(format!(
                        "registered model `{name}` does not exist"
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The run's `model` artifact is the version's source. Without a run, one is created
    /// (experiment `MLFLOW_EXPERIMENT_NAME` or `bciops`) just to hold the files.
    /// `origin` is not recorded here.
    fn register(
        &self,
        name: &str,
        model_dir: &Path,
        _origin: Option<&str>,
        run_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<Version> {
        let run = match run_id {
            Some(id) => self.client.run_info(id).map_err(|e| match e.code() {
                Some("RESOURCE_DOES_NOT_EXIST") => {
                    Error::Invalid(format!("run `{id}` does not exist on the MLflow server"))
                }
                _ => e.into(),
            })?,
            None => {
                let experiment = std::env::var("MLFLOW_EXPERIMENT_NAME")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| DEFAULT_EXPERIMENT.to_owned());
                let exp = self.client.experiment_id(&experiment)?;
                let mut run_tags = standard_tags();
                run_tags.insert("mlflow.runName".into(), format!("register {name}"));
                let run = self.client.create_run(
                    &exp,
                    &format!("register {name}"),
                    now_ms(),
                    &run_tags,
                )?;
                self.client.upload(&run.artifact_uri, model_dir, "model")?;
                self.client
                    .set_status(&run.run_id, RunStatus::Finished, now_ms())?;
                run
            }
        };
        let source = format!("{}/model", run.artifact_uri.trim_end_matches('/'));
        // A given run that did not log its model yet gets it now.
        if run_id.is_some() && self.client.list_artifacts(&source)?.is_empty() {
            self.client.upload(&run.artifact_uri, model_dir, "model")?;
        }
        self.client.ensure_registered_model(name)?;
        let v = self
            .client
            .create_model_version(name, &source, &run.run_id, tags)?;
        Ok(convert(v))
    }

    fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        Ok(self.client.set_alias(name, alias, version)?)
    }

    fn set_version_tag(&self, name: &str, version: u64, key: &str, value: &str) -> Result<()> {
        Ok(self.client.set_version_tag(name, version, key, value)?)
    }

    fn all_versions(&self, name: &str) -> Result<Vec<Version>> {
        let aliases = self.aliases(name)?;
        let mut out: Vec<Version> = self
            .client
            .search_versions(name)?
            .into_iter()
            .map(convert)
            .map(|mut v| {
                v.aliases = aliases
                    .iter()
                    .filter(|(_, n)| **n == v.version)
                    .map(|(a, _)| a.clone())
                    .collect();
                v
            })
            .collect();
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    fn models(&self) -> Result<Vec<ModelSummary>> {
        let mut out: Vec<ModelSummary> = self
            .client
            .search_models()?
            .iter()
            .map(|m| ModelSummary {
                name: m["name"].as_str().unwrap_or("").to_owned(),
                latest_version: m["latest_versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["version"].as_str().and_then(|s| s.parse().ok()))
                    .max(),
                aliases: aliases_of(m),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn download(&self, version: &Version, dest: &Path) -> Result<()> {
        let uri = self.client.download_uri(&version.name, version.version)?;
        if MlflowClient::proxy_path(&uri).is_none() {
            return Err(Error::Invalid(format!(
                "model `{}` version {} lives at `{uri}`, which bciops cannot read (only MLflow's artifact proxy, `mlflow-artifacts:`)",
                version.name, version.version
            )));
        }
        let n = self.client.download_dir(&uri, dest)?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "model `{}` version {} has no files at `{uri}`",
                version.name, version.version
            )));
        }
        Ok(())
    }
}

fn aliases_of(m: &serde_json::Value) -> BTreeMap<String, u64> {
    m["aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                a["alias"].as_str()?.to_owned(),
                a["version"].as_str()?.parse().ok()?,
            ))
        })
        .collect()
}

fn convert(v: ModelVersionJson) -> Version {
    Version {
        version: v.version.parse().unwrap_or(0),
        name: v.name,
        source: v.source,
        run_id: Some(v.run_id).filter(|r| !r.is_empty()),
        tags: v.tags.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        created: v.creation_timestamp,
        aliases: v.aliases,
    }
}
