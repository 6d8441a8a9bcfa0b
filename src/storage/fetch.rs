//! Inputs: local copies of remote files and published directories (checked against their
//! completion marker), in scratch directories removed when the copy is dropped.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use super::client::{block_on, download, store, store_error};
use super::list::list_under;
use super::publish::{Manifest, MANIFEST_FORMAT};
use super::uri::{Location, Remote};
use super::{Scratch, MARKER, PARALLEL};
use crate::error::{Error, Result};

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
