//! What is stored under a location: listings, existence, and a fingerprint for cache keys.

use std::path::Path;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Digest;

use super::client::{block_on, store, store_error};
use super::uri::{Location, Remote};
use super::MARKER;
use crate::error::{Error, Result};

/// Every object under `prefix/` (recursively), with keys relative to it, sorted.
pub(super) async fn list_under(
    store: &dyn ObjectStore,
    remote: &Remote,
) -> Result<Vec<(String, u64)>> {
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
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned()
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
    Ok(format!("{:x}", hasher.finalize()))
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
            let found = block_on(list_under(s.as_ref(), remote))??;
            if found.is_empty() && !remote.key.is_empty() {
                let meta = block_on(s.head(&remote.object()))?
                    .map_err(|e| store_error("read", remote, e))?;
                return Ok(vec![Entry {
                    name: loc.file_name().unwrap_or_default(),
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
pub(super) fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, u64)>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path as Key;

    #[test]
    fn listed_keys_decode_to_the_keys_written() {
        for key in ["a%20b%2Fc/model.json", "plain/x.npy", "50%/~x#y", "é/ü"] {
            let stored = Key::from(key);
            assert_eq!(unescape(stored.as_ref()), key, "{stored}");
        }
        assert_eq!(unescape("bad%zz%4"), "bad%zz%4");
    }
}
