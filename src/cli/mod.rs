//! Command-line front end: argument types and one module per subcommand.
//!
//! Each subcommand module turns raw flags into a validated configuration, calls the library and
//! prints. Data and JSON go to stdout; progress, summaries and errors go to stderr.

mod args;
pub mod compare_register;
pub mod data;
pub mod export;
pub mod model_flags;
pub mod models;
mod output;
pub mod pipeline;
pub mod predict;
pub mod preprocess;
mod progress;
pub mod runs;
pub mod serve;
pub mod synth;
pub mod track;
pub mod train;
pub mod tune;
pub mod wandb;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{exit, Error};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  failure (I/O, a service, a numerical breakdown)
  2  bad input or usage (malformed file, invalid parameter, mismatched model)

Every subcommand reads only its inputs and writes only its outputs, so each can be a pipeline step.";

/// The MLOps loop for EEG motor-imagery brain-computer interfaces, in one binary.
#[derive(Debug, Parser)]
#[command(name = "bciops", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(short, long, global = true, env = "BCIOPS_QUIET")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic BCI Competition IV 2a-like dataset (GDF recordings + true labels).
    #[command(after_help = AFTER_HELP)]
    Synth(synth::SynthArgs),
    /// Read recordings, band-pass them, cut trials and write an epochs dataset.
    #[command(after_help = AFTER_HELP)]
    Preprocess(preprocess::PreprocessArgs),
    /// Train and evaluate CSP + SVM on an epochs dataset; write a verified model directory.
    #[command(after_help = AFTER_HELP)]
    Train(train::TrainArgs),
    /// Apply a model to an epochs dataset or raw recordings.
    #[command(after_help = AFTER_HELP)]
    Predict(predict::PredictArgs),
    /// Search hyper-parameters with a W&B sweep file (grid, random, bayes), locally.
    #[command(after_help = AFTER_HELP)]
    Tune(tune::TuneArgs),
    /// Get data sets: `bciops data download` fetches the real BCI IV 2a files.
    #[command(after_help = AFTER_HELP)]
    Data(data::DataArgs),
    /// Register a trained model and move an alias to it only if it beats the champion.
    #[command(after_help = AFTER_HELP)]
    CompareRegister(compare_register::CompareRegisterArgs),
    /// List, show and sync recorded runs (the embedded store and the journal).
    #[command(after_help = AFTER_HELP)]
    Runs(runs::RunsArgs),
    /// List registered models; resolve or fetch one by `models:/NAME@ALIAS` or `/VERSION`.
    #[command(after_help = AFTER_HELP)]
    Models(models::ModelsArgs),
    /// Serve a model over HTTP: /classify, the Open Inference Protocol (V2), /metrics.
    #[command(after_help = AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Write a model's served pipeline as one ONNX graph (raw trial in, label and scores out).
    #[command(after_help = AFTER_HELP)]
    Export(export::ExportArgs),
    /// Run the whole pipeline locally, or compile it for Kubeflow Pipelines.
    #[command(after_help = AFTER_HELP)]
    Pipeline(pipeline::PipelineArgs),
}

/// Global settings every subcommand sees.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub quiet: bool,
}

/// Parse the command line, run it, and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    crate::pipeline::run::die_with_runner();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0); a usage error becomes one line.
            match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                }
                _ => {
                    let _ = writeln!(std::io::stderr(), "{}", one_line_usage_error(&e));
                }
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let global = Global { quiet: cli.quiet };
    let outcome = match cli.command {
        Command::Synth(args) => synth::run(args, global),
        Command::Preprocess(args) => preprocess::run(args, global),
        Command::Train(args) => train::run(args, global),
        Command::Predict(args) => predict::run(args, global),
        Command::Tune(args) => tune::run(args, global),
        Command::Data(args) => data::run(args, global),
        Command::CompareRegister(args) => compare_register::run(args, global),
        Command::Runs(args) => runs::run(args, global),
        Command::Models(args) => models::run(args, global),
        Command::Serve(args) => serve::run(args, global),
        Command::Export(args) => export::run(args, global),
        Command::Pipeline(args) => pipeline::run(args, global),
    };
    match outcome {
        Ok(()) => ExitCode::from(exit::SUCCESS as u8),
        Err(e) => {
            let code = exit_code(&e);
            // A closed stdout (e.g. `| head`) is not worth an error message.
            if !is_broken_pipe(&e) {
                let _ = write!(std::io::stderr(), "{}", render_error(&e));
            } else {
                return ExitCode::from(exit::SUCCESS as u8);
            }
            ExitCode::from(code as u8)
        }
    }
}

/// clap's usage error as one line: its message and tips, without the usage block, and a
/// pointer to `--help` (the README's one-line error contract).
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message = text.split("\nUsage:").next().unwrap_or_default();
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    format!("{}; see `--help`", parts.join(" "))
}

/// Writes data to stdout. Unlike `println!`, a closed pipe (`bciops … | head`) is an error
/// the caller returns, which `main` treats as success, instead of a panic.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// `error: …` on one line; the details of a list of problems follow it, one per line, and
/// the flag that changes a setting the error names, as `hint: --flag VALUE`.
fn render_error(e: &anyhow::Error) -> String {
    let line = format!("{e:#}");
    let listed = e
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(p @ Error::Problems { summary, details }) => {
                Some((p.to_string(), summary, details))
            }
            _ => None,
        });
    let mut out = match listed {
        Some((full, summary, details)) => {
            let mut out = format!("error: {}\n", line.replacen(&full, summary, 1));
            for d in details {
                out.push_str(&format!("  - {d}\n"));
            }
            out
        }
        None => format!("error: {line}\n"),
    };
    // A setting the core names is changed here with a flag of the same name.
    let setting = e
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::Setting {
                setting, example, ..
            }) => Some((setting, example)),
            _ => None,
        });
    if let Some((setting, example)) = setting {
        let flag = setting.replace('_', "-");
        match example {
            Some(v) => out.push_str(&format!("hint: --{flag} {v}\n")),
            None => out.push_str(&format!("hint: --{flag}\n")),
        }
    }
    out
}

/// The exit code for an error chain: the library's own errors choose; anything else is a failure.
fn exit_code(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(exit::FAILURE, Error::exit_code)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
