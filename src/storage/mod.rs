//! Where data lives: plain paths, `file://`, `s3://bucket/prefix` and `gs://bucket/prefix`.
//!
//! The core reads and writes local files only. This module is the edge that moves them: a
//! subcommand fetches its remote inputs into a private temporary directory, runs the core on
//! local paths and publishes its outputs. Everything here is synchronous: the calls block on
//! one tokio runtime private to this module and shared by the whole process (see
//! `client::block_on`), so no caller needs to know about async; async callers (the server)
//! call in from `spawn_blocking`.
//!
//! The parts: `uri` (what a location is), `client` (object_store set-up, errors, streamed
//! transfers), `list` (listings, existence, fingerprints), `fetch` (inputs), `publish` (outputs
//! and the completion marker), `cas` (conditional writes), `output` (output handles).
//!
//! - Credentials and endpoints come from the conventional environment variables, read by
//!   `object_store`'s `from_env` builders: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_REGION`, `AWS_ENDPOINT_URL` (+ `AWS_ALLOW_HTTP=true`) for S3 and S3-compatible
//!   stores; `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT` (or
//!   `GOOGLE_SERVICE_ACCOUNT_KEY`) and `GOOGLE_BASE_URL` for GCS. Errors name the bucket and the
//!   key; the values of secret variables are scrubbed from every message.
//! - Downloads stream to disk in chunks (never the whole object in memory); uploads go through
//!   a buffered multipart writer for large files.
//! - A directory artifact (epochs dataset, model) is published by uploading every file and then
//!   a completion marker, [`MARKER`], listing each file's size and sha256. Readers refuse a
//!   remote directory without it ("half-written") and verify every file against it. A single
//!   object `put` is atomic, so single files need no marker. Local outputs keep the core's
//!   write-to-temporary-and-rename.
mod cas;
mod client;
mod fetch;
mod list;
mod output;
mod publish;
mod uri;

use std::path::PathBuf;

use crate::error::{Error, Result};

pub use cas::{create_new, read_revision, replace_if, Revision};
pub use fetch::{fetch_dir, fetch_file, fetch_inputs, read_file, Fetched};
pub use list::{exists, fingerprint, list, list_prefix, Entry};
pub use output::{OutputDir, OutputFile};
pub use publish::{publish_dir, publish_file, published_sha256, write_file};
pub use uri::{Location, Remote, Scheme};

/// Name of the completion marker object of a published directory.
pub const MARKER: &str = "_COMPLETE";

/// How many objects move at once in a directory upload or download.
const PARALLEL: usize = 4;

/// A directory removed when dropped: where remote inputs are fetched and remote outputs staged.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("bciops-storage-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
