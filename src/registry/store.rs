//! Where the embedded registry keeps its files: a directory ([`FsStore`], the run store's
//! `registry/`) or a bucket prefix ([`BucketStore`]). The registry itself ([`super::embedded`])
//! is written once over the few operations both can do safely.
//!
//! Keys are `/`-separated and relative to the registry root (`<model>/model.json`,
//! `<model>/versions/<n>/version.json`).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::storage::{self, Location, Remote};
use crate::tracking::{copy_into, now_ms};

/// The operations the registry needs of its store.
pub trait RegistryStore: Send + Sync {
    /// What an object held when it was read, for [`RegistryStore::replace_if`].
    type Revision;

    /// An object's bytes and revision; None when there is none.
    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, Self::Revision)>>;

    /// Writes an object only if none exists (atomically, whole); false when one does.
    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool>;

    /// Replaces an object only if it is still at `revision`; false when it changed.
    fn replace_if(&self, key: &str, bytes: &[u8], revision: &Self::Revision) -> Result<bool>;

    /// The names directly under `prefix` (files and folders), sorted; empty when none.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Takes version folder `prefix` (`<model>/versions/<n>`) for one registration; false
    /// when another took it. Kept apart from `create` because the two stores mark a taken
    /// number differently (a folder; a `claim.json`), and existing registries do.
    fn claim(&self, prefix: &str) -> Result<bool>;

    /// Copies a local model directory to `prefix`.
    fn put_dir(&self, prefix: &str, local: &Path) -> Result<()>;

    /// Copies the model directory at `prefix` into `dest`.
    fn get_dir(&self, prefix: &str, dest: &Path) -> Result<()>;

    /// How errors name `key` (a path, a bucket URI).
    fn name(&self, key: &str) -> String;

    /// Exclusive use of the registry for a whole decision, where the store has a lock; None
    /// where it has not (a bucket: its races are settled after the fact, see `compare`).
    fn lock(&self) -> Result<Option<RegistryLock>>;
}

/// An exclusive lock on the registry, released when dropped (or when the process dies).
pub struct RegistryLock {
    _file: File,
}

/// The registry in a directory: `STORE/registry/`.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub fn new(root: PathBuf) -> FsStore {
        FsStore { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

impl RegistryStore for FsStore {
    /// The bytes themselves: a file has no version to compare, and registry files are small.
    type Revision = Vec<u8>;

    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((bytes.clone(), bytes))),
            // A stray file where a model's folder would be holds no model (`models` skipped
            // such entries before).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        let path = self.path(key);
        if path.exists() {
            return Ok(false);
        }
        // Written whole beside it, then linked into place: a link fails if the name exists,
        // so of two writers exactly one creates it, and no reader sees it half-written.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_file_name(format!(
            ".{}.new-{}-{n}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id(),
        ));
        write_atomic(&tmp, bytes)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("write", &path, e)),
        }
    }

    fn replace_if(&self, key: &str, bytes: &[u8], revision: &Vec<u8>) -> Result<bool> {
        // Not atomic against another process by itself: decisions that must not interleave
        // hold the registry lock (compare-register), as before.
        match self.read(key)? {
            Some((now, _)) if now == *revision => {
                write_atomic(&self.path(key), bytes)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.path(prefix);
        let mut out: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(list) => list
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                // The lock and files being written are hidden; no model's folder is.
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        out.sort();
        Ok(out)
    }

    fn claim(&self, prefix: &str) -> Result<bool> {
        let dir = self.path(prefix);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        // Creating the directory is atomic: it takes the number.
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("create", &dir, e)),
        }
    }

    fn put_dir(&self, prefix: &str, local: &Path) -> Result<()> {
        copy_into(local, &self.path(prefix)).map(|_| ())
    }

    fn get_dir(&self, prefix: &str, dest: &Path) -> Result<()> {
        copy_into(&self.path(prefix), dest).map(|_| ())
    }

    fn name(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    /// An OS file lock on `.lock`: a crashed holder releases it.
    fn lock(&self) -> Result<Option<RegistryLock>> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io("create", &self.root, e))?;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        lock_exclusive(&file).map_err(|e| Error::io("lock", &path, e))?;
        Ok(Some(RegistryLock { _file: file }))
    }
}

/// Blocks until this process holds an exclusive flock(2) on `file`; closing it releases it.
#[cfg(unix)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).map_err(std::io::Error::from)
}

/// Elsewhere the registry is not locked (bciops ships for Linux; see the README).
#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// The registry on a bucket: `PREFIX/registry/`. A bucket has no locks, so every update is a
/// conditional write (see `storage::cas`).
#[derive(Debug, Clone)]
pub struct BucketStore {
    root: Remote,
}

impl BucketStore {
    pub fn new(root: Remote) -> BucketStore {
        BucketStore { root }
    }
}

impl RegistryStore for BucketStore {
    type Revision = storage::Revision;

    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, storage::Revision)>> {
        storage::read_revision(&self.root.join(key))
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        storage::create_new(&self.root.join(key), bytes)
    }

    fn replace_if(&self, key: &str, bytes: &[u8], revision: &storage::Revision) -> Result<bool> {
        storage::replace_if(&self.root.join(key), bytes, revision)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // A bucket has no folders: the first part of every key under the prefix.
        let mut out: Vec<String> = storage::list_prefix(&self.root.join(prefix))?
            .into_iter()
            .map(|(key, _)| key.split('/').next().unwrap_or_default().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn claim(&self, prefix: &str) -> Result<bool> {
        let claim = serde_json::json!({ "claimed": now_ms() }).to_string();
        storage::create_new(&self.root.join(prefix).join("claim.json"), claim.as_bytes())
    }

    fn put_dir(&self, prefix: &str, local: &Path) -> Result<()> {
        storage::publish_dir(local, &Location::Remote(self.root.join(prefix)))
    }

    fn get_dir(&self, prefix: &str, dest: &Path) -> Result<()> {
        let fetched = storage::fetch_dir(&Location::Remote(self.root.join(prefix)))?;
        copy_into(fetched.path(), dest).map(|_| ())
    }

    fn name(&self, key: &str) -> String {
        self.root.join(key).to_string()
    }

    fn lock(&self) -> Result<Option<RegistryLock>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_store_creates_once_and_replaces_only_what_it_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::new(tmp.path().join("registry"));
        assert!(store.read("m/model.json").unwrap().is_none());
        assert!(store.create("m/model.json", b"one").unwrap());
        assert!(!store.create("m/model.json", b"two").unwrap());
        let (bytes, revision) = store.read("m/model.json").unwrap().unwrap();
        assert_eq!(bytes, b"one");
        assert!(store
            .replace_if("m/model.json", b"three", &revision)
            .unwrap());
        // Stale: the object changed since `revision` was read.
        assert!(!store
            .replace_if("m/model.json", b"four", &revision)
            .unwrap());
        assert_eq!(store.read("m/model.json").unwrap().unwrap().0, b"three");
        assert!(store.claim("m/versions/1").unwrap());
        assert!(!store.claim("m/versions/1").unwrap());
        std::fs::write(tmp.path().join("registry/stray"), b"x").unwrap();
        assert_eq!(store.list("").unwrap(), ["m", "stray"]);
        assert!(store.read("stray/model.json").unwrap().is_none());
        assert_eq!(store.list("m/versions").unwrap(), ["1"]);
        // No temporary file is left beside what was created.
        assert_eq!(
            std::fs::read_dir(tmp.path().join("registry/m"))
                .unwrap()
                .count(),
            2
        );
        assert!(store.lock().unwrap().is_some());
    }
}
