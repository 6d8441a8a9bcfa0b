//! Outputs: a directory is published file by file and then its completion marker (the
//! manifest readers check); a single object `put` is atomic and needs none.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::client::{block_on, store, store_error, upload};
use super::list::{list_under, walk};
use super::uri::{Location, Remote};
use super::{MARKER, PARALLEL};
use crate::error::{Error, Result};

/// What [`MARKER`] holds: every file of the directory with its size and sha256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) bciops_version: String,
    pub(super) files: std::collections::BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FileEntry {
    pub(super) size: u64,
    pub(super) sha256: String,
}

pub(super) const MANIFEST_FORMAT: &str = "bciops-complete-1";

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
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::encode("the marker", e))?;
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
