//! Output handles: where the core writes, and how that becomes visible at the destination.

use std::path::{Path, PathBuf};

use super::publish::{publish_dir, publish_file};
use super::uri::Location;
use super::Scratch;
use crate::error::Result;

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
    use crate::storage::*;

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
