//! Writing files and directories so that a reader never sees half of one: everything is
//! written under a temporary name beside its destination and renamed into place.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A directory being built under a temporary name; `commit` moves it to its destination,
/// dropping it without `commit` deletes it.
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Starts a directory that will replace `dest` when committed (its parents are created).
    pub fn new(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("`{}` is not a directory name", dest.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = parent_of(dest);
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io("create directory", &tmp, e))?;
        Ok(StagedDir {
            tmp,
            dest: dest.to_owned(),
            committed: false,
        })
    }

    /// Where to write the directory's files until it is committed.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory into place, replacing an older one.
    pub fn commit(mut self) -> Result<()> {
        let old = self.tmp.with_extension("old");
        let had_old = self.dest.exists();
        if had_old {
            std::fs::rename(&self.dest, &old)
                .map_err(|e| Error::io("move aside", &self.dest, e))?;
        }
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| Error::io("rename into", &self.dest, e))?;
        self.committed = true;
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Distinguishes temporary names of concurrent writes from the same process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed to disk,
/// and a rename (atomic on one filesystem). Parent directories are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = parent_of(path);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
    let file_name = path.file_name().ok_or_else(|| {
        Error::Invalid(format!("output path `{}` has no file name", path.display()))
    })?;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}-{n}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = File::create_new(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("rename into place", path, e)
    })
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_dir_replaces_only_on_commit() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("a/b/out");
        let staged = StagedDir::new(&dest).unwrap();
        std::fs::write(staged.path().join("f"), "1").unwrap();
        assert!(!dest.exists());
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "1");

        let staged = StagedDir::new(&dest).unwrap();
        std::fs::write(staged.path().join("f"), "2").unwrap();
        drop(staged); // a failure before commit leaves the old directory untouched
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "1");
        let leftovers = std::fs::read_dir(dest.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);

        let staged = StagedDir::new(&dest).unwrap();
        std::fs::write(staged.path().join("g"), "3").unwrap();
        staged.commit().unwrap();
        assert!(!dest.join("f").exists());
        assert!(dest.join("g").exists());
    }

    #[test]
    fn atomic_file_and_hash() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("x/y.txt");
        write_atomic(&p, b"abc").unwrap();
        write_atomic(&p, b"abcd").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("y.txt")],
            "no temporary file is left"
        );
        // sha256("abc"), FIPS 180-2 test vector
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
