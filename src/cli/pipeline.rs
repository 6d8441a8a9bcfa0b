//! `bciops pipeline`: run the whole DAG on this machine, or compile it for Kubeflow Pipelines.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{emit, Global, AFTER_HELP};
use crate::pipeline::{dag, kfp, run, PipelineConfig};

#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run the pipeline here: every step as the subcommand a container would run, cached by
    /// the content of its inputs; ends with a summary (steps, times, cache hits, decision).
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Write the pipeline as Kubeflow Pipelines v2 IR YAML, for upload to a KFP cluster.
    #[command(after_help = AFTER_HELP)]
    Compile(CompileArgs),
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Pipeline config (default: the embedded `configs/pipeline.yaml`).
    #[arg(long, short, value_name = "FILE", env = "BCIOPS_PIPELINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set mode=tune` or `--set train.params.c=1.2` (repeatable;
    /// the value is read as YAML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    fn load(&self) -> Result<PipelineConfig> {
        Ok(PipelineConfig::load(self.config.as_deref(), &self.set)?)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run directory (default: the config's `run_dir`).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Run every step even if an unchanged result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Stop after this step (e.g. `train`).
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The container image every step runs (it must provide `bciops`).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// Where to write the pipeline YAML (`-` for stdout).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: PipelineArgs, _global: Global) -> Result<()> {
    match args.command {
        PipelineCommand::Run(a) => run_local(a),
        PipelineCommand::Compile(a) => compile(a),
    }
}

fn run_local(args: RunArgs) -> Result<()> {
    let config = args.config.load()?;
    let graph = dag::build(&config);
    let opts = run::RunOptions {
        run_dir: args
            .run_dir
            .unwrap_or_else(|| PathBuf::from(&config.run_dir)),
        no_cache: args.no_cache,
        until: args.until,
        exe: std::env::current_exe().context("cannot find the bciops executable")?,
    };
    let summary = run::run(&graph, &config, &opts)?;
    eprint!("{}", run::describe(&summary, &config));
    if args.json {
        emit(&serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(())
}

fn compile(args: CompileArgs) -> Result<()> {
    if args.image.trim().is_empty() {
        return Err(crate::Error::Invalid("`--image` must name an image".into()).into());
    }
    let config = args.config.load()?;
    let yaml = kfp::emit(&dag::build(&config), &config, &args.image)?;
    if args.out.as_os_str() == "-" {
        emit(&yaml)?;
        return Ok(());
    }
    crate::fsutil::write_atomic(&args.out, yaml.as_bytes())?;
    eprintln!(
        "wrote {} ({} steps, image {})",
        args.out.display(),
        dag::build(&config).steps().len(),
        args.image
    );
    Ok(())
}
