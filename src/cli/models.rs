//! `bciops models list|resolve|fetch`: what the registry holds, and fetching a model by
//! reference (`models:/NAME@ALIAS`, `models:/NAME/VERSION`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::compare_register::RegistryArgs;
use super::Global;
use crate::registry;

/// Browse the model registry and fetch models from it.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models (or, with a name, that model's versions and tags).
    List {
        /// A registered model name.
        name: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the name and version a reference points to now.
    Resolve {
        /// `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a model by reference into a directory and verify it.
    Fetch {
        /// `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
        reference: String,
        /// Destination directory (replaced only once complete and verified).
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
        /// Replace an existing output directory even when it holds files bciops did not write
        /// (without it such a directory is refused). Never the current directory or one that holds
        /// an input.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ModelsArgs, _global: Global) -> Result<()> {
    match args.command {
        ModelsCommand::List {
            name,
            registry,
            json,
        } => {
            let reg = registry.config()?.open()?;
            match name {
                None => {
                    let models = reg.models()?;
                    if json {
                        return Ok(super::emit(&serde_json::to_string_pretty(&models)?)?);
                    }
                    let mut out = String::new();
                    for m in &models {
                        let aliases: Vec<String> =
                            m.aliases.iter().map(|(a, v)| format!("@{a}={v}")).collect();
                        out.push_str(&format!(
                            "{}  latest={}  {}\n",
                            m.name,
                            m.latest_version.map_or("-".into(), |v| v.to_string()),
                            aliases.join(" ")
                        ));
                    }
                    if models.is_empty() {
                        eprintln!("no registered models");
                        return Ok(());
                    }
                    Ok(super::emit(&out)?)
                }
                Some(name) => {
                    let versions = reg.versions(&name)?;
                    if json {
                        return Ok(super::emit(&serde_json::to_string_pretty(&versions)?)?);
                    }
                    let mut out = String::new();
                    for v in &versions {
                        let aliases: Vec<String> =
                            v.aliases.iter().map(|a| format!("@{a}")).collect();
                        out.push_str(&format!(
                            "{} version {} {} source={}\n",
                            v.name,
                            v.version,
                            aliases.join(" "),
                            v.source
                        ));
                        for (k, val) in &v.tags {
                            out.push_str(&format!("    {k} = {val}\n"));
                        }
                    }
                    Ok(super::emit(&out)?)
                }
            }
        }
        ModelsCommand::Resolve {
            reference,
            registry,
            json,
        } => {
            let (name, version) = registry::resolve(&reference, &registry.config()?)?;
            if json {
                return Ok(super::emit(
                    &serde_json::json!({"name": name, "version": version}).to_string(),
                )?);
            }
            Ok(super::emit(&format!("{name} {version}"))?)
        }
        ModelsCommand::Fetch {
            reference,
            out,
            registry,
            json,
            force,
        } => {
            let fetched = registry::fetch_model(&reference, &registry.config()?, &out, force)?;
            eprintln!(
                "fetched `{}` version {} into {}",
                fetched.name,
                fetched.version,
                fetched.dir.display()
            );
            if json {
                super::emit(&serde_json::to_string_pretty(&fetched)?)?;
            }
            Ok(())
        }
    }
}
