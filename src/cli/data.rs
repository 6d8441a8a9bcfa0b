//! `bciops data download`: the real BCI Competition IV 2a files from their public locations.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{args, progress, Global};
use crate::download::{self, Manifest, Outcome, Plan};

/// Get data sets.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download BCI Competition IV 2a: the GDF recordings with the evaluation sessions' true
    /// labels (DEST/gdf/) and the BNCI Horizon `.mat` files (DEST/bnci/).
    ///
    /// Each file goes to `NAME.part` first and is renamed when complete; an interrupted
    /// download resumes where it stopped on the next run (HTTP Range). Sizes and sha256 are
    /// verified when a `--manifest` gives them. Files already present are kept.
    Download(DownloadArgs),
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Destination directory.
    #[arg(long, default_value = "data/2a", value_name = "DIR")]
    pub dest: PathBuf,
    /// Only the GDF set and its true labels (default: both sets).
    #[arg(long)]
    pub gdf: bool,
    /// Only the BNCI Horizon `.mat` files (default: both sets).
    #[arg(long)]
    pub mat: bool,
    /// Subjects of the `.mat` files, e.g. `1,2` or `1-9` (the GDF set is one archive).
    #[arg(long, default_value = "1-9", value_parser = args::subject_list)]
    pub subjects: args::List<u8>,
    /// Base URL of `BCICIV_2a_gdf.zip`.
    #[arg(long, default_value = download::GDF_BASE_URL, value_name = "URL")]
    pub gdf_url: String,
    /// Base URL of `true_labels.zip`.
    #[arg(long, default_value = download::LABELS_BASE_URL, value_name = "URL")]
    pub labels_url: String,
    /// Base URL of the BNCI `A0xS.mat` files.
    #[arg(long, default_value = download::MAT_BASE_URL, value_name = "URL")]
    pub mat_url: String,
    /// JSON file of expected sizes and sha256 by file name:
    /// `{"A01T.mat": {"size": 42, "sha256": "…"}}`.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

pub fn run(args: DataArgs, global: Global) -> Result<()> {
    match args.command {
        DataCommand::Download(a) => download_run(a, global),
    }
}

fn download_run(args: DownloadArgs, global: Global) -> Result<()> {
    let both = !args.gdf && !args.mat;
    let plan = Plan {
        dest: args.dest,
        gdf: args.gdf || both,
        mat: args.mat || both,
        subjects: args.subjects.0,
        gdf_url: args.gdf_url,
        labels_url: args.labels_url,
        mat_url: args.mat_url,
    };
    let manifest = match &args.manifest {
        Some(path) => Manifest::read(path)?,
        None => Manifest::default(),
    };
    let client = download::client()?;
    let items = download::items(&plan, &manifest);
    let (mut fetched, mut present) = (0, 0);
    for item in &items {
        let bar = progress::bytes_bar(global);
        let name = item
            .dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(name.clone());
        let outcome = download::fetch(&client, item, &mut |_, done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        });
        bar.finish_and_clear();
        match outcome? {
            Outcome::Present => {
                present += 1;
                eprintln!("{name}: already present");
            }
            Outcome::Downloaded {
                bytes,
                resumed_from,
            } => {
                fetched += 1;
                if resumed_from > 0 {
                    eprintln!("{name}: {bytes} bytes (resumed at {resumed_from})");
                } else {
                    eprintln!("{name}: {bytes} bytes");
                }
            }
        }
    }
    eprintln!(
        "{fetched} downloaded, {present} already present, in {}",
        plan.dest.display()
    );
    Ok(())
}
