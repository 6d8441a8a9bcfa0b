//! Where data lives: plain paths, `file://`, `s3://bucket/prefix` and `gs://bucket/prefix`.
//!
//! The core reads and writes local files only. This module is the edge that moves them: a
//! subcommand fetches its remote inputs into a private temporary directory, runs the core on
//! local paths and publishes its outputs. Everything here is synchronous; each call runs its
//! own small tokio runtime, so no caller needs to know about async.
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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Name of the completion marker object of a published directory.
pub const MARKER: &str = "_COMPLETE";

/// How many objects move at once in a directory upload or download.
const PARALLEL: usize = 4;

/// A cloud store scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
}

impl Scheme {
    fn prefix(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
        }
    }
}

/// An object or prefix in a bucket. `key` has no leading or trailing `/` (empty: the bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub scheme: Scheme,
    pub bucket: String,
    pub key: String,
}

impl Remote {
    /// A child key (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Remote {
        let name = name.trim_matches('/');
        let key = match (self.key.is_empty(), name.is_empty()) {
            (true, _) => name.to_owned(),
            (false, true) => self.key.clone(),
            (false, false) => format!("{}/{name}", self.key),
        };
        Remote {
            key,
            ..self.clone()
        }
    }

    fn object(&self) -> Key {
        Key::from(self.key.as_str())
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme.prefix(), self.bucket, self.key)
    }
}

/// Where an input is read from or an output written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote(Remote),
}

impl Location {
    /// Parses a plain path, `file://PATH`, `s3://BUCKET/KEY` or `gs://BUCKET/KEY`.
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(Error::Invalid(format!("`{text}` names no path")));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        let scheme = if let Some(rest) = text.strip_prefix("s3://") {
            Some((Scheme::S3, rest))
        } else {
            text.strip_prefix("gs://").map(|rest| (Scheme::Gcs, rest))
        };
        let Some((scheme, rest)) = scheme else {
            if let Some((scheme, _)) = text.split_once("://") {
                return Err(Error::Invalid(format!(
                    "`{text}`: scheme `{scheme}` is not one bciops reads (a path, `file://`, \
                     `s3://` or `gs://`)"
                )));
            }
            if text.is_empty() {
                return Err(Error::Invalid("an empty path was given".into()));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_bucket {
            return Err(Error::Invalid(format!(
                "`{text}` names no valid bucket (`{}://BUCKET/KEY`)",
                scheme.prefix()
            )));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|part| part == "." || part == "..") || key.contains("//") {
            return Err(Error::Invalid(format!(
                "`{text}`: key `{key}` has an empty, `.` or `..` part"
            )));
        }
        Ok(Location::Remote(Remote {
            scheme,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }))
    }

    /// A location for a path given on the command line (paths that are not UTF-8 stay local).
    pub fn from_path(path: &Path) -> Result<Location> {
        match path.to_str() {
            Some(text) => Location::parse(text),
            None => Ok(Location::Local(path.to_owned())),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Remote(_))
    }

    /// The local path, when the location is local.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote(_) => None,
        }
    }

    /// A child of this location (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::Remote(r) => Location::Remote(r.join(name)),
        }
    }

    /// The last component (file or directory name), if any.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::Remote(r) => r
                .key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote(r) => r.fmt(f),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location> {
        Location::parse(s)
    }
}

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

/// A local copy of an input: the path itself for a local location, or a temporary download
/// (deleted when this is dropped) for a remote one.
#[derive(Debug)]
pub struct Fetched {
    path: PathBuf,
    /// Downloaded local path → the remote location it came from.
    origins: Vec<(PathBuf, String)>,
    /// The remote location `path` stands for, when it was downloaded.
    root_origin: Option<String>,
    _scratch: Option<Scratch>,
}

impl Fetched {
    /// Where to read the input.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name to record for a local file read from this input: its remote URI when it was
    /// downloaded, its path otherwise.
    pub fn origin_of(&self, local: &Path) -> String {
        self.origins
            .iter()
            .find(|(p, _)| p == local)
            .map_or_else(|| local.display().to_string(), |(_, uri)| uri.clone())
    }

    /// Rewrites an error about the local copy so that it names the remote location instead
    /// of a temporary path the user never saw.
    pub fn relabel(&self, e: Error) -> Error {
        let Some(origin) = self.root_origin.as_deref() else {
            return e;
        };
        let local = self.path.display().to_string();
        let fix = |text: String| text.replace(&local, origin);
        match e {
            Error::Malformed { path, message } => Error::Malformed {
                path: fix(path),
                message: fix(message),
            },
            Error::Io {
                action,
                path,
                cause,
            } => Error::Io {
                action,
                path: fix(path),
                cause,
            },
            Error::Invalid(m) => Error::Invalid(fix(m)),
            Error::Data(m) => Error::Data(fix(m)),
            Error::Numerical(m) => Error::Numerical(fix(m)),
            Error::Problems { summary, details } => Error::Problems {
                summary: fix(summary),
                details: details.into_iter().map(fix).collect(),
            },
            Error::Internal(m) => Error::Internal(fix(m)),
            Error::Setting {
                message,
                setting,
                example,
            } => Error::Setting {
                message: fix(message),
                setting,
                example,
            },
        }
    }
}

/// What [`MARKER`] holds: every file of the directory with its size and sha256.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: String,
    bciops_version: String,
    files: std::collections::BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    size: u64,
    sha256: String,
}

const MANIFEST_FORMAT: &str = "bciops-complete-1";

/// Runs a future on the module's private runtime. One runtime serves the whole process: an
/// object-store client keeps connections and timers bound to the runtime that first used it.
/// Async callers (a server) must call this module from `spawn_blocking`.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    static RUNTIME: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bciops-storage")
            .enable_all()
            .build()
    });
    match runtime {
        Ok(rt) => Ok(rt.block_on(future)),
        Err(e) => Err(Error::io(
            "start the storage runtime for",
            "object storage",
            std::io::Error::new(e.kind(), e.to_string()),
        )),
    }
}

/// The values of secret environment variables, which must never appear in a message.
fn secrets() -> Vec<String> {
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "GOOGLE_BEARER_TOKEN",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .filter(|v| v.len() >= 4)
    .collect()
}

/// One line, with every secret value replaced.
fn scrub(message: &str) -> String {
    scrub_with(message, &secrets())
}

fn scrub_with(message: &str, secrets: &[String]) -> String {
    let mut out = message.replace(['\n', '\r'], " ");
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Maps an object-store failure on `remote` to the library's error, naming bucket and key.
fn store_error(action: &'static str, remote: &Remote, e: object_store::Error) -> Error {
    let text = e.to_string();
    let (kind, cause) = if text.contains("NoSuchBucket") {
        (
            std::io::ErrorKind::NotFound,
            format!("bucket `{}` does not exist", remote.bucket),
        )
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        (
            std::io::ErrorKind::NotFound,
            format!("no object `{}` in bucket `{}`", remote.key, remote.bucket),
        )
    } else {
        (
            std::io::ErrorKind::Other,
            format!(
                "bucket `{}`, key `{}`: {}",
                remote.bucket,
                remote.key,
                scrub(&text)
            ),
        )
    };
    Error::io(action, remote.to_string(), std::io::Error::new(kind, cause))
}

/// A client for the bucket of `remote`, configured from the environment.
fn store(remote: &Remote) -> Result<Arc<dyn ObjectStore>> {
    // A store that does not answer should fail within seconds, not retry for minutes.
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..object_store::RetryConfig::default()
    };
    let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> = match remote.scheme
    {
        Scheme::S3 => object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        Scheme::Gcs => object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
    };
    built.map_err(|e| {
        Error::Invalid(format!(
            "cannot use bucket `{}` ({}://): {}; check the credential environment variables",
            remote.bucket,
            remote.scheme.prefix(),
            scrub(&e.to_string())
        ))
    })
}

/// Streams one object into `dest`, returning its size and sha256.
async fn download(store: &dyn ObjectStore, remote: &Remote, dest: &Path) -> Result<FileEntry> {
    let result = store
        .get(&remote.object())
        .await
        .map_err(|e| store_error("read", remote, e))?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io("create directory", parent, e))?;
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| Error::io("write", dest, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| store_error("read", remote, e))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io("write", dest, e))?;
    }
    file.flush()
        .await
        .map_err(|e| Error::io("write", dest, e))?;
    Ok(FileEntry {
        size,
        sha256: hex(&hasher.finalize()),
    })
}

/// Streams a local file into one object (multipart for large files), returning its entry.
async fn upload(store: Arc<dyn ObjectStore>, src: &Path, remote: &Remote) -> Result<FileEntry> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(src)
        .await
        .map_err(|e| Error::io("read", src, e))?;
    let mut writer = object_store::buffered::BufWriter::new(store, remote.object());
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("read", src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        if let Err(e) = writer.write_all(&buf[..n]).await {
            let _ = writer.abort().await;
            return Err(io_store_error("write", remote, e));
        }
    }
    writer
        .shutdown()
        .await
        .map_err(|e| io_store_error("write", remote, e))?;
    Ok(FileEntry {
        size,
        sha256: hex(&hasher.finalize()),
    })
}

/// The buffered writer reports store errors as I/O errors; keep the bucket and key.
fn io_store_error(action: &'static str, remote: &Remote, e: std::io::Error) -> Error {
    let text = e.to_string();
    let cause = if text.contains("NoSuchBucket") {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("bucket `{}` does not exist", remote.bucket),
        )
    } else {
        std::io::Error::new(
            e.kind(),
            format!(
                "bucket `{}`, key `{}`: {}",
                remote.bucket,
                remote.key,
                scrub(&text)
            ),
        )
    };
    Error::io(action, remote.to_string(), cause)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every object under `prefix/` (recursively), with keys relative to it, sorted.
async fn list_under(store: &dyn ObjectStore, remote: &Remote) -> Result<Vec<(String, u64)>> {
    let prefix = if remote.key.is_empty() {
        None
    } else {
        Some(remote.object())
    };
    let metas: Vec<object_store::ObjectMeta> = store
        .list(prefix.as_ref())
        .try_collect()
        .await
        .map_err(|e| store_error("list", remote, e))?;
    let strip = if remote.key.is_empty() {
        String::new()
    } else {
        format!("{}/", remote.key)
    };
    let mut out: Vec<(String, u64)> = metas
        .into_iter()
        .filter_map(|m| {
            let key = unescape(m.location.as_ref());
            key.strip_prefix(&strip)
                .filter(|rel| !rel.is_empty())
                .map(|rel| (rel.to_owned(), m.size))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Every object under a remote prefix (recursively), relative names with their sizes, sorted;
/// empty when there is none.
pub fn list_prefix(remote: &Remote) -> Result<Vec<(String, u64)>> {
    let s = store(remote)?;
    block_on(list_under(s.as_ref(), remote))?
}

/// A listed key as it was written: `object_store` percent-encodes the characters it does not
/// allow in a path part (`%`, `~`, `#`, …) and lists keys in that form, so decoding gives back
/// the key that [`Remote::join`] was given (a model named `a b/c` is stored as `a%20b%2Fc`).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A digest of what is stored under a remote location, without downloading it: every object
/// under the prefix (or the object itself) with its size and ETag, which the store changes
/// whenever the content changes. A published directory's marker, listing every file's sha256,
/// is among them. For a pipeline's cache key.
pub fn fingerprint(remote: &Remote) -> Result<String> {
    let s = store(remote)?;
    let prefix = (!remote.key.is_empty()).then(|| remote.object());
    let mut metas: Vec<object_store::ObjectMeta> = block_on(
        s.list(prefix.as_ref())
            .try_collect::<Vec<object_store::ObjectMeta>>(),
    )?
    .map_err(|e| store_error("list", remote, e))?;
    if metas.is_empty() && !remote.key.is_empty() {
        metas
            .push(block_on(s.head(&remote.object()))?.map_err(|e| store_error("read", remote, e))?);
    }
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut hasher = sha2::Sha256::new();
    for m in &metas {
        let rel = m
            .location
            .as_ref()
            .strip_prefix(remote.key.as_str())
            .unwrap_or_default();
        hasher.update(
            format!("{rel}\0{}\0{}\n", m.size, m.e_tag.as_deref().unwrap_or("")).as_bytes(),
        );
    }
    Ok(hex(&hasher.finalize()))
}

/// An entry found under a location by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the listed location, `/`-separated.
    pub name: String,
    pub size: u64,
    pub location: Location,
}

/// The files under a location, recursively (a local directory or a remote prefix), sorted by
/// name. A local file or a remote object that is not a prefix lists as itself.
pub fn list(loc: &Location) -> Result<Vec<Entry>> {
    match loc {
        Location::Local(path) => {
            let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
            if meta.is_file() {
                return Ok(vec![Entry {
                    name: loc.file_name().unwrap_or_default(),
                    size: meta.len(),
                    location: loc.clone(),
                }]);
            }
            let mut out = Vec::new();
            walk(path, "", &mut out)?;
            out.sort();
            Ok(out
                .into_iter()
                .map(|(name, size)| Entry {
                    location: loc.join(&name),
                    name,
                    size,
                })
                .collect())
        }
        Location::Remote(remote) => {
            let s = store(remote)?;
            let mut found = block_on(list_under(s.as_ref(), remote))??;
            if found.is_empty() && !remote.key.is_empty() {
                let meta = block_on(s.head(&remote.object()))?
                    .map_err(|e| store_error("read", remote, e))?;
                found.push((loc.file_name().unwrap_or_default(), meta.size));
                return Ok(vec![Entry {
                    name: found[0].0.clone(),
                    size: meta.size,
                    location: loc.clone(),
                }]);
            }
            Ok(found
                .into_iter()
                .map(|(name, size)| Entry {
                    location: loc.join(&name),
                    name,
                    size,
                })
                .collect())
        }
    }
}

/// Files under a local directory, relative names with `/`, skipping hidden (staging) entries.
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, u64)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("read", entry.path(), e))?;
        if meta.is_dir() {
            walk(&entry.path(), &child, out)?;
        } else if meta.is_file() {
            out.push((child, meta.len()));
        }
    }
    Ok(())
}

/// Whether a file or directory exists at `loc` (a remote directory counts when its marker does).
pub fn exists(loc: &Location) -> Result<bool> {
    match loc {
        Location::Local(p) => Ok(p.exists()),
        Location::Remote(remote) => {
            let s = store(remote)?;
            let marker = remote.join(MARKER);
            for r in [remote, &marker] {
                match block_on(s.head(&r.object()))? {
                    Ok(_) => return Ok(true),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_error("read", r, e)),
                }
            }
            Ok(false)
        }
    }
}

/// A local copy of one file: the path itself, or a streamed download into a temporary directory.
pub fn fetch_file(loc: &Location) -> Result<Fetched> {
    match loc {
        Location::Local(p) => Ok(Fetched {
            path: p.clone(),
            origins: Vec::new(),
            root_origin: None,
            _scratch: None,
        }),
        Location::Remote(remote) => {
            let scratch = Scratch::new()?;
            let name = loc.file_name().unwrap_or_else(|| "object".into());
            let dest = scratch.0.join(&name);
            let s = store(remote)?;
            block_on(download(s.as_ref(), remote, &dest))??;
            Ok(Fetched {
                origins: vec![(dest.clone(), loc.to_string())],
                path: dest,
                root_origin: Some(loc.to_string()),
                _scratch: Some(scratch),
            })
        }
    }
}

/// Reads a small file (a parameter file, a registry record) into memory.
pub fn read_file(loc: &Location) -> Result<Vec<u8>> {
    match loc {
        Location::Local(p) => std::fs::read(p).map_err(|e| Error::io("read", p, e)),
        Location::Remote(remote) => {
            let s = store(remote)?;
            block_on(async {
                let got = s
                    .get(&remote.object())
                    .await
                    .map_err(|e| store_error("read", remote, e))?;
                got.bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| store_error("read", remote, e))
            })?
        }
    }
}

/// A local copy of a directory artifact that bciops published (an epochs dataset, a model).
/// A remote one must carry its completion marker; every file is checked against it.
pub fn fetch_dir(loc: &Location) -> Result<Fetched> {
    let Location::Remote(remote) = loc else {
        return fetch_file(loc);
    };
    let s = store(remote)?;
    let marker = remote.join(MARKER);
    let manifest: Manifest = match block_on(s.get(&marker.object()))? {
        Ok(got) => {
            let bytes = block_on(got.bytes())?.map_err(|e| store_error("read", &marker, e))?;
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::malformed(marker.to_string(), format!("not a completion marker: {e}"))
            })?
        }
        Err(object_store::Error::NotFound { .. }) => {
            let any = block_on(list_under(s.as_ref(), remote))??;
            let message = if any.is_empty() {
                return Err(Error::io(
                    "read",
                    loc.to_string(),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "nothing under key `{}` in bucket `{}`",
                            remote.key, remote.bucket
                        ),
                    ),
                ));
            } else {
                format!(
                    "half-written directory: no completion marker `{MARKER}` (bucket `{}`, key `{}`); \
                     the writer did not finish",
                    remote.bucket, remote.key
                )
            };
            return Err(Error::malformed(loc.to_string(), message));
        }
        Err(e) => return Err(store_error("read", &marker, e)),
    };
    if manifest.format != MANIFEST_FORMAT {
        return Err(Error::malformed(
            marker.to_string(),
            format!(
                "marker format `{}` is not `{MANIFEST_FORMAT}`",
                manifest.format
            ),
        ));
    }
    let scratch = Scratch::new()?;
    let root = scratch
        .0
        .join(loc.file_name().unwrap_or_else(|| "dir".into()));
    let mut jobs = Vec::new();
    for (name, entry) in &manifest.files {
        if name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(Error::malformed(
                marker.to_string(),
                format!("lists `{name}` outside the directory"),
            ));
        }
        jobs.push((remote.join(name), root.join(name), entry.clone()));
    }
    let store_ref = s.as_ref();
    block_on(async {
        futures::stream::iter(jobs.iter().map(|(r, dest, want)| async move {
            let got = download(store_ref, r, dest).await?;
            if got.size != want.size || got.sha256 != want.sha256 {
                return Err(Error::malformed(
                    r.to_string(),
                    format!(
                        "does not match the completion marker ({} bytes, sha256 {}; the marker says {} bytes, {}): \
                         the directory was changed after it was written",
                        got.size, got.sha256, want.size, want.sha256
                    ),
                ));
            }
            Ok(())
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await
    })??;
    std::fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
    let origins = jobs
        .iter()
        .map(|(r, dest, _)| (dest.clone(), r.to_string()))
        .collect();
    Ok(Fetched {
        path: root,
        origins,
        root_origin: Some(loc.to_string()),
        _scratch: Some(scratch),
    })
}

/// Local copies of inputs that are raw files or prefixes holding them (recordings, label
/// files), not published artifacts: no marker is needed. A remote prefix is listed one level
/// deep and the objects whose names `accept` are downloaded into one directory per input; a
/// remote object is downloaded alone. Local inputs are returned as they are.
pub fn fetch_inputs(locs: &[Location], accept: impl Fn(&str) -> bool) -> Result<Vec<Fetched>> {
    let mut out = Vec::new();
    for loc in locs {
        let Location::Remote(remote) = loc else {
            out.push(fetch_file(loc)?);
            continue;
        };
        let s = store(remote)?;
        let listed = block_on(list_under(s.as_ref(), remote))??;
        if listed.is_empty() {
            out.push(fetch_file(loc)?);
            continue;
        }
        let scratch = Scratch::new()?;
        let root = scratch
            .0
            .join(loc.file_name().unwrap_or_else(|| "input".into()));
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
        let jobs: Vec<(Remote, PathBuf)> = listed
            .iter()
            .filter(|(name, _)| !name.contains('/') && accept(name))
            .map(|(name, _)| (remote.join(name), root.join(name)))
            .collect();
        let store_ref = s.as_ref();
        block_on(
            futures::stream::iter(
                jobs.iter()
                    .map(|(r, dest)| async move { download(store_ref, r, dest).await }),
            )
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<_>>(),
        )??;
        out.push(Fetched {
            path: root,
            origins: jobs
                .iter()
                .map(|(r, dest)| (dest.clone(), r.to_string()))
                .collect(),
            root_origin: Some(loc.to_string()),
            _scratch: Some(scratch),
        });
    }
    Ok(out)
}

/// Uploads every file of `local` under `dest`, removes objects under `dest` that the new version
/// does not have (as a local directory is replaced whole), and writes the completion marker last. The marker of an older version is
/// deleted first, so a reader never takes a mix of two versions. Local destinations are copied
/// through a staged directory (prefer [`OutputDir`], which writes in place).
pub fn publish_dir(local: &Path, dest: &Location) -> Result<()> {
    let remote = match dest {
        Location::Local(path) => {
            if path == local {
                return Ok(());
            }
            let staged = crate::fsutil::StagedDir::new(
                path,
                crate::fsutil::Replace::only(crate::fsutil::COPY),
            )?;
            let mut files = Vec::new();
            walk(local, "", &mut files)?;
            for (name, _) in files {
                let to = staged.path().join(&name);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("create directory", parent, e))?;
                }
                std::fs::copy(local.join(&name), &to).map_err(|e| Error::io("write", &to, e))?;
            }
            return staged.commit();
        }
        Location::Remote(r) => r,
    };
    // Publishing replaces everything under the prefix; a whole bucket is never replaced.
    if remote.key.is_empty() {
        return Err(Error::Invalid(format!(
            "`{remote}` is the root of bucket `{}`: give a directory under it, e.g. `{}`",
            remote.bucket,
            remote.join("NAME")
        )));
    }
    let mut files = Vec::new();
    walk(local, "", &mut files)?;
    if files.iter().any(|(n, _)| n == MARKER) {
        return Err(Error::Invalid(format!(
            "`{}` holds a file named `{MARKER}`, which bciops reserves for its completion marker",
            local.display()
        )));
    }
    let s = store(remote)?;
    let marker = remote.join(MARKER);
    let store_ref = s.clone();
    block_on(async move {
        match store_ref.delete(&marker.object()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error("delete", &marker, e)),
        }
        let old = list_under(store_ref.as_ref(), remote).await?;
        let entries: Vec<(String, FileEntry)> =
            futures::stream::iter(files.iter().map(|(name, _)| {
                let store = store_ref.clone();
                async move {
                    let entry = upload(store, &local.join(name), &remote.join(name)).await?;
                    Ok::<_, Error>((name.clone(), entry))
                }
            }))
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        for (name, _) in old {
            if !entries.iter().any(|(n, _)| *n == name) {
                let r = remote.join(&name);
                match store_ref.delete(&r.object()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_error("delete", &r, e)),
                }
            }
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            bciops_version: env!("CARGO_PKG_VERSION").to_owned(),
            files: entries.into_iter().collect(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Invalid(format!("cannot encode the marker: {e}")))?;
        store_ref
            .put(&marker.object(), json.into())
            .await
            .map_err(|e| store_error("write", &marker, e))?;
        Ok(())
    })?
}

/// Writes one local file to `dest` (atomic for a reader either way: rename locally, one
/// object `put` remotely).
pub fn publish_file(local: &Path, dest: &Location) -> Result<()> {
    match dest {
        Location::Local(path) => {
            if path == local {
                return Ok(());
            }
            let bytes = std::fs::read(local).map_err(|e| Error::io("read", local, e))?;
            crate::fsutil::write_atomic(path, &bytes)
        }
        Location::Remote(remote) => {
            let s = store(remote)?;
            block_on(upload(s, local, remote))?.map(|_| ())
        }
    }
}

/// Writes small bytes (JSON, a bare-text pipeline output) to `dest` atomically.
pub fn write_file(dest: &Location, bytes: &[u8]) -> Result<()> {
    match dest {
        Location::Local(path) => crate::fsutil::write_atomic(path, bytes),
        Location::Remote(remote) => {
            let s = store(remote)?;
            let payload = bytes.to_vec();
            block_on(s.put(&remote.object(), payload.into()))?
                .map(|_| ())
                .map_err(|e| store_error("write", remote, e))
        }
    }
}

/// The sha256 that the completion marker of the published remote directory `loc` lists for its
/// file `name`: one small read, so a server can poll a model on a bucket cheaply. None when
/// the directory has no marker (absent or half-written); an error when the marker does not
/// list `name`.
pub fn published_sha256(loc: &Remote, name: &str) -> Result<Option<String>> {
    let s = store(loc)?;
    let marker = loc.join(MARKER);
    let bytes = match block_on(async {
        match s.get(&marker.object()).await {
            Ok(got) => got.bytes().await.map(Some),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })? {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => return Err(store_error("read", &marker, e)),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::malformed(marker.to_string(), format!("not a completion marker: {e}"))
    })?;
    match manifest.files.get(name) {
        Some(entry) => Ok(Some(entry.sha256.clone())),
        None => Err(Error::malformed(
            loc.to_string(),
            format!(
                "has no `{name}` (bucket `{}`, key `{}`)",
                loc.bucket,
                loc.join(name).key
            ),
        )),
    }
}

/// What an object held when it was read, for a conditional replace ([`replace_if`]).
#[derive(Debug, Clone)]
pub struct Revision(object_store::UpdateVersion);

/// A small object's bytes and revision; None when there is no such object.
pub fn read_revision(remote: &Remote) -> Result<Option<(Vec<u8>, Revision)>> {
    let s = store(remote)?;
    let got = block_on(async {
        match s.get(&remote.object()).await {
            Ok(got) => {
                let revision = object_store::UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                got.bytes()
                    .await
                    .map(|b| Some((b.to_vec(), Revision(revision))))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })?;
    got.map_err(|e| store_error("read", remote, e))
}

/// Creates an object only if none exists under its key (a conditional put: `If-None-Match: *`
/// on S3, `ifGenerationMatch=0` on GCS), so two writers can never both create it. False when
/// the object already exists.
pub fn create_new(remote: &Remote, bytes: &[u8]) -> Result<bool> {
    let s = store(remote)?;
    let opts = object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    };
    match block_on(s.put_opts(&remote.object(), bytes.to_vec().into(), opts))? {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(conditional_error(remote, e)),
    }
}

/// Replaces an object only if it is still at `revision` (`If-Match` with its ETag on S3, its
/// generation on GCS). False when another writer changed it since it was read.
pub fn replace_if(remote: &Remote, bytes: &[u8], revision: &Revision) -> Result<bool> {
    let s = store(remote)?;
    let opts = object_store::PutOptions {
        mode: object_store::PutMode::Update(revision.0.clone()),
        ..Default::default()
    };
    match block_on(s.put_opts(&remote.object(), bytes.to_vec().into(), opts))? {
        Ok(_) => Ok(true),
        Err(object_store::Error::Precondition { .. }) => Ok(false),
        Err(e) => Err(conditional_error(remote, e)),
    }
}

/// A store without conditional writes cannot host what needs them; say so plainly.
fn conditional_error(remote: &Remote, e: object_store::Error) -> Error {
    if matches!(e, object_store::Error::NotImplemented { .. }) {
        return Error::Invalid(format!(
            "bucket `{}` ({}://): the store does not support conditional writes, which the \
             registry needs to number versions safely",
            remote.bucket,
            remote.scheme.prefix()
        ));
    }
    store_error("write", remote, e)
}

/// An output directory: the core writes into [`OutputDir::path`], then [`OutputDir::publish`]
/// makes it visible at its destination. Locally the path is the destination itself (the core
/// stages and renames); remotely it is a temporary directory that is uploaded.
#[derive(Debug)]
pub struct OutputDir {
    dest: Location,
    path: PathBuf,
    _scratch: Option<Scratch>,
}

impl OutputDir {
    pub fn new(dest: &Location) -> Result<OutputDir> {
        let (path, scratch) = staging(dest)?;
        Ok(OutputDir {
            dest: dest.clone(),
            path,
            _scratch: scratch,
        })
    }

    /// Where the core writes the directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn location(&self) -> &Location {
        &self.dest
    }

    /// Uploads a remote output (files, then the completion marker); a no-op locally.
    pub fn publish(self) -> Result<()> {
        match &self.dest {
            Location::Local(_) => Ok(()),
            Location::Remote(_) => publish_dir(&self.path, &self.dest),
        }
    }
}

/// Where an output is written before it is published: the destination itself when local, a
/// path in a fresh scratch directory (kept alive by the returned guard) when remote.
fn staging(dest: &Location) -> Result<(PathBuf, Option<Scratch>)> {
    match dest {
        Location::Local(p) => Ok((p.clone(), None)),
        Location::Remote(_) => {
            let scratch = Scratch::new()?;
            let path = scratch
                .0
                .join(dest.file_name().unwrap_or_else(|| "out".into()));
            Ok((path, Some(scratch)))
        }
    }
}

/// An output file, as [`OutputDir`] for one file.
#[derive(Debug)]
pub struct OutputFile {
    dest: Location,
    path: PathBuf,
    _scratch: Option<Scratch>,
}

impl OutputFile {
    pub fn new(dest: &Location) -> Result<OutputFile> {
        let (path, scratch) = staging(dest)?;
        Ok(OutputFile {
            dest: dest.clone(),
            path,
            _scratch: scratch,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn publish(self) -> Result<()> {
        match &self.dest {
            Location::Local(_) => Ok(()),
            Location::Remote(_) => publish_file(&self.path, &self.dest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_uris() {
        assert_eq!(
            Location::parse("data/x").unwrap(),
            Location::Local("data/x".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        let s3 = Location::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(
            s3,
            Location::Remote(Remote {
                scheme: Scheme::S3,
                bucket: "bucket".into(),
                key: "a/b".into()
            })
        );
        assert_eq!(s3.to_string(), "s3://bucket/a/b");
        assert_eq!(s3.join("X.npy").to_string(), "s3://bucket/a/b/X.npy");
        assert_eq!(s3.file_name().as_deref(), Some("b"));
        let gs = Location::parse("gs://b").unwrap();
        assert_eq!(gs.join("m").to_string(), "gs://b/m");
        assert_eq!(gs.file_name(), None);
        for bad in [
            "s3://",
            "s3:///k",
            "gs://bad bucket/k",
            "s3://b/a/../c",
            "http://x/y",
            "",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains('`') || bad.is_empty(), "{bad}: {e}");
        }
    }

    #[test]
    fn listed_keys_decode_to_the_keys_written() {
        for key in ["a%20b%2Fc/model.json", "plain/x.npy", "50%/~x#y", "é/ü"] {
            let stored = Key::from(key);
            assert_eq!(unescape(stored.as_ref()), key, "{stored}");
        }
        assert_eq!(unescape("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn secrets_are_scrubbed() {
        let secrets = vec!["tok-very-secret-123".to_owned()];
        assert_eq!(
            scrub_with("bad tok-very-secret-123\nx", &secrets),
            "bad *** x"
        );
    }

    #[test]
    fn local_outputs_and_listing() {
        let root = std::env::temp_dir().join(format!("bciops-storage-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        std::fs::write(root.join("src/sub/b.txt"), "bb").unwrap();
        std::fs::write(root.join("src/.hidden"), "x").unwrap();
        let src = Location::Local(root.join("src"));
        let names: Vec<(String, u64)> = list(&src)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.size))
            .collect();
        assert_eq!(names, vec![("a.txt".into(), 1), ("sub/b.txt".into(), 2)]);
        let dest = Location::Local(root.join("copy"));
        publish_dir(&root.join("src"), &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("copy/sub/b.txt")).unwrap(),
            "bb"
        );
        let fetched = fetch_dir(&dest).unwrap();
        assert_eq!(fetched.path(), root.join("copy"));
        write_file(&Location::Local(root.join("f/x.json")), b"{}").unwrap();
        assert_eq!(
            read_file(&Location::Local(root.join("f/x.json"))).unwrap(),
            b"{}"
        );
        assert!(exists(&Location::Local(root.join("f/x.json"))).unwrap());
        // A directory never replaces a whole bucket.
        let e = publish_dir(&root.join("src"), &Location::parse("s3://b").unwrap()).unwrap_err();
        assert!(e.to_string().contains("root of bucket `b`"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
