//! Writing files and directories so that a reader never sees half of one: everything is
//! written under a temporary name beside its destination and renamed into place.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// What an output directory holds, and how to tell one that bciops wrote: an existing
/// directory at an output path is replaced only when it is empty or of the same kind and holds
/// nothing else, so that `--out` never deletes a user's files.
#[derive(Debug, Clone, Copy)]
pub struct DirKind {
    /// For messages: "model directory", "epochs dataset".
    pub name: &'static str,
    /// The first entry of the directory that a directory of this kind written by bciops would
    /// not hold (a relative path), or `None` when everything in it is bciops' own.
    pub foreign: fn(&Path) -> Option<String>,
}

/// A plain copy of a directory: bciops recognises nothing in one, so only an empty directory
/// is replaced without `force`.
pub const COPY: DirKind = DirKind {
    name: "directory copy",
    foreign: first_entry,
};

/// The names in `dir`, sorted (None when it cannot be listed).
pub fn sorted_names(dir: &Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Some(names)
}

/// The first entry of `dir`, by name.
pub fn first_entry(dir: &Path) -> Option<String> {
    sorted_names(dir)?.into_iter().next()
}

/// Whether an output may replace what is at its path.
#[derive(Debug, Clone, Copy)]
pub struct Replace {
    pub kind: DirKind,
    /// Replace a directory of another kind or with foreign files too (`--force`); never the
    /// current directory or one that holds it.
    pub force: bool,
}

impl Replace {
    /// Replace only an empty directory or one of `kind` that bciops wrote.
    pub fn only(kind: DirKind) -> Replace {
        Replace { kind, force: false }
    }

    /// Checks that `dest` may be replaced (or is free): refuses a file, a symbolic link, the
    /// current directory or one of its parents, and (without `force`) a directory holding
    /// anything that is not bciops' own output of this kind.
    pub fn check(&self, dest: &Path) -> Result<()> {
        let meta = match std::fs::symlink_metadata(dest) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("inspect", dest, e)),
        };
        let kind = self.kind.name;
        if meta.file_type().is_symlink() {
            return Err(Error::Invalid(format!(
                "output `{}` is a symbolic link: give the {kind}'s own path",
                dest.display()
            )));
        }
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "output `{}` is a file, not a directory: a {kind} is a directory; give a new path",
                dest.display()
            )));
        }
        if holds_current_dir(dest) {
            return Err(Error::Invalid(format!(
                "output `{}` is the current directory or holds it: it is never replaced, not \
                 even by force; give a new path",
                dest.display()
            )));
        }
        let empty = std::fs::read_dir(dest)
            .map_err(|e| Error::io("list", dest, e))?
            .next()
            .is_none();
        if empty || self.force {
            return Ok(());
        }
        match (self.kind.foreign)(dest) {
            None => Ok(()),
            Some(entry) => Err(Error::setting(
                "force",
                None,
                format!(
                    "output `{}` holds `{entry}`, which is not part of a bciops {kind}: \
                     refusing to replace it; give a new path, or replace the whole directory \
                     by force",
                    dest.display()
                ),
            )),
        }
    }
}

/// `dir` is the working directory or one of its parents (replacing it would pull the ground
/// from under the caller's shell).
fn holds_current_dir(dir: &Path) -> bool {
    let (Ok(dir), Ok(cwd)) = (std::fs::canonicalize(dir), std::env::current_dir()) else {
        return false;
    };
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    cwd.starts_with(&dir)
}

/// A directory being built under a temporary name beside its destination; `commit` moves it
/// into place, dropping it without `commit` deletes it.
///
/// The swap is crash-safe and serialised: committers of one parent directory take an flock on
/// it, and an existing destination is exchanged with the new directory in one
/// `renameat2(RENAME_EXCHANGE)`, so a kill at any instant leaves either the old or the new
/// directory at the path. Where the filesystem cannot exchange, the old directory is first
/// renamed to a unique aside name; a run killed between the two renames is rolled back by the
/// next commit or staging in that directory, which also removes staging directories of
/// processes that no longer exist.
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    replace: Replace,
    committed: bool,
}

impl StagedDir {
    /// Starts a directory that will replace `dest` when committed (its parents are created);
    /// fails at once when `dest` may not be replaced (see [`Replace::check`]).
    pub fn new(dest: &Path, replace: Replace) -> Result<Self> {
        let name = dir_name(dest)?;
        replace.check(dest)?;
        let parent = parent_of(dest);
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
        {
            let _lock = DirLock::take(&parent)?;
            recover(&parent, &name, dest);
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io("create directory", &tmp, e))?;
        Ok(StagedDir {
            tmp,
            dest: dest.to_owned(),
            replace,
            committed: false,
        })
    }

    /// Where to write the directory's files until it is committed.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory into place, replacing an older one (checked again: it
    /// may have changed while this one was built).
    pub fn commit(mut self) -> Result<()> {
        let parent = parent_of(&self.dest);
        let name = dir_name(&self.dest)?;
        let _lock = DirLock::take(&parent)?;
        recover(&parent, &name, &self.dest);
        self.replace.check(&self.dest)?;
        if std::fs::symlink_metadata(&self.dest).is_err() {
            std::fs::rename(&self.tmp, &self.dest)
                .map_err(|e| Error::io("rename into", &self.dest, e))?;
            self.committed = true;
            return Ok(());
        }
        match exchange(&self.tmp, &self.dest) {
            Ok(()) => {
                // `tmp` now holds the old directory.
                self.committed = true;
                let _ = std::fs::remove_dir_all(&self.tmp);
                Ok(())
            }
            Err(_) => {
                let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let old = parent.join(format!(".{name}.old-{}-{n}", std::process::id()));
                std::fs::rename(&self.dest, &old)
                    .map_err(|e| Error::io("move aside", &self.dest, e))?;
                #[cfg(test)]
                fault::hit("between-renames");
                if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
                    let _ = std::fs::rename(&old, &self.dest);
                    return Err(Error::io("rename into", &self.dest, e));
                }
                self.committed = true;
                let _ = std::fs::remove_dir_all(&old);
                Ok(())
            }
        }
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn dir_name(dest: &Path) -> Result<String> {
    Ok(dest
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("`{}` is not a directory name", dest.display())))?
        .to_string_lossy()
        .into_owned())
}

/// Finishes what a killed commit of `.NAME` left in `parent`: an aside copy with nothing at
/// the destination is put back (the old output survives), an aside copy beside a destination
/// is removed, and staging directories of processes that are gone are removed. Called with
/// the parent's lock held. Best effort: what cannot be cleaned is left for the next run.
fn recover(parent: &Path, name: &str, dest: &Path) {
    let Ok(list) = std::fs::read_dir(parent) else {
        return;
    };
    let tmp_prefix = format!(".{name}.tmp-");
    let old_prefix = format!(".{name}.old-");
    let mut asides = Vec::new();
    for entry in list.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(rest) = file_name.strip_prefix(&tmp_prefix) {
            if let Some(pid) = owner_pid(rest) {
                if pid != std::process::id() && !process_alive(pid) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        } else if let Some(rest) = file_name.strip_prefix(&old_prefix) {
            if owner_pid(rest).is_some() {
                asides.push(entry.path());
            }
        }
    }
    // Newest first: with nothing at the destination, the last aside copy is the last output.
    asides.sort_by_key(|p| {
        std::cmp::Reverse(std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok())
    });
    for aside in asides {
        if std::fs::symlink_metadata(dest).is_err() && std::fs::rename(&aside, dest).is_ok() {
            continue;
        }
        let _ = std::fs::remove_dir_all(&aside);
    }
}

/// The pid in a `PID-N` suffix of a temporary name.
fn owner_pid(suffix: &str) -> Option<u32> {
    let (pid, n) = suffix.split_once('-').unwrap_or((suffix, "0"));
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM means it exists but is not ours to signal: alive.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Swaps two directories in one step (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    if fault::hit("no-exchange") {
        return Err(std::io::Error::from(std::io::ErrorKind::Unsupported));
    }
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// An exclusive flock(2) on a directory, released when dropped or when the process dies.
struct DirLock {
    _file: Option<File>,
}

impl DirLock {
    fn take(dir: &Path) -> Result<DirLock> {
        #[cfg(unix)]
        {
            let file = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::io("lock", dir, e.into()))?;
            Ok(DirLock { _file: Some(file) })
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(DirLock { _file: None })
        }
    }
}

/// Fault injection for the tests: a named point panics (as a kill would stop the process
/// there) when the test armed it in this thread.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::RefCell;

    thread_local! {
        static ARMED: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }

    pub fn arm(point: &'static str) {
        ARMED.with(|a| a.borrow_mut().push(point));
    }

    pub fn disarm() {
        ARMED.with(|a| a.borrow_mut().clear());
    }

    /// `between-renames` panics; other points answer whether they are armed.
    pub fn hit(point: &'static str) -> bool {
        let armed = ARMED.with(|a| a.borrow().contains(&point));
        if armed && point == "between-renames" {
            panic!("fault injected at {point}");
        }
        armed
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
    write_atomic_with(path, |file, tmp| {
        file.write_all(bytes)
            .map_err(|e| Error::io("write", tmp, e))
    })
}

/// [`write_atomic`] for content that is streamed: `fill` writes into the temporary file
/// (named by the path it is given); the file is renamed into place only when `fill`
/// succeeds, and removed otherwise.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<()>,
) -> Result<()> {
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
    let mut file = File::create_new(&tmp).map_err(|e| Error::io("write", &tmp, e))?;
    let written = fill(&mut file, &tmp)
        .and_then(|()| file.sync_all().map_err(|e| Error::io("write", &tmp, e)));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("rename into place", path, e)
    })
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind whose own directories hold only `a` and `f*` files.
    const OURS: DirKind = DirKind {
        name: "test output",
        foreign: |dir| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
                .into_iter()
                .find(|n| !(n == "a" || n.starts_with('f')))
        },
    };

    fn write_staged(dest: &Path, file: &str, text: &str) -> Result<()> {
        let staged = StagedDir::new(dest, Replace::only(OURS))?;
        std::fs::write(staged.path().join(file), text).unwrap();
        staged.commit()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn staged_dir_replaces_only_on_commit() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("a/b/out");
        let staged = StagedDir::new(&dest, Replace::only(OURS)).unwrap();
        std::fs::write(staged.path().join("f"), "1").unwrap();
        assert!(!dest.exists());
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "1");

        let staged = StagedDir::new(&dest, Replace::only(OURS)).unwrap();
        std::fs::write(staged.path().join("f"), "2").unwrap();
        drop(staged); // a failure before commit leaves the old directory untouched
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "1");
        let leftovers = std::fs::read_dir(dest.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);

        write_staged(&dest, "f2", "3").unwrap();
        assert!(!dest.join("f").exists());
        assert!(dest.join("f2").exists());
        assert_eq!(names(dest.parent().unwrap()), vec!["out"]);
    }

    /// Issue 16: `--out` at a directory holding a user's files deleted them.
    #[test]
    fn foreign_directories_files_and_the_current_directory_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious.txt"), "thesis").unwrap();
        let err = write_staged(&victim, "f", "1").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT);
        assert!(err.to_string().contains("precious.txt"), "{err}");
        assert_eq!(names(&victim), vec!["precious.txt"]);
        assert_eq!(names(root.path()), vec!["victim"], "no staging left behind");

        // An output of our kind with a user's file added is not ours either.
        let out = root.path().join("out");
        write_staged(&out, "f", "1").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        assert!(write_staged(&out, "f", "2").is_err());
        assert_eq!(
            std::fs::read_to_string(out.join("notes.txt")).unwrap(),
            "mine"
        );

        // --force replaces it.
        let staged = StagedDir::new(
            &victim,
            Replace {
                kind: OURS,
                force: true,
            },
        )
        .unwrap();
        std::fs::write(staged.path().join("f"), "1").unwrap();
        staged.commit().unwrap();
        assert_eq!(names(&victim), vec!["f"]);

        // A file at the path is kept and refused.
        let file = root.path().join("file");
        std::fs::write(&file, "keep").unwrap();
        let err = write_staged(&file, "f", "1").unwrap_err();
        assert!(err.to_string().contains("is a file"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");

        // Never the current directory or a parent of it, even with --force (checked without
        // changing this process's directory: the working directory's parents qualify too).
        let cwd = std::env::current_dir().unwrap();
        for dir in [cwd.as_path(), cwd.parent().unwrap()] {
            let err = Replace {
                kind: OURS,
                force: true,
            }
            .check(dir)
            .unwrap_err();
            assert!(err.to_string().contains("current directory"), "{err}");
        }
        // An empty directory is free.
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write_staged(&empty, "f", "1").unwrap();
    }

    /// Issue 16: a kill between moving the old output aside and moving the new one in took the
    /// output off its path and failed every later write. Here the fallback path (no
    /// RENAME_EXCHANGE) is forced and stopped between its renames.
    #[test]
    fn a_commit_stopped_between_renames_is_rolled_back_by_the_next_run() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        write_staged(&dest, "f", "old").unwrap();

        let staged = StagedDir::new(&dest, Replace::only(OURS)).unwrap();
        std::fs::write(staged.path().join("f"), "new").unwrap();
        fault::arm("no-exchange");
        fault::arm("between-renames");
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| staged.commit()));
        fault::disarm();
        assert!(stopped.is_err(), "the fault point was reached");
        assert!(!dest.exists(), "the old output is aside, as after a kill");

        // A new staging (the next run) puts the old output back before anything else.
        let next = StagedDir::new(&dest, Replace::only(OURS)).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "old");
        std::fs::write(next.path().join("f"), "newer").unwrap();
        next.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "newer");
        assert_eq!(
            names(root.path()),
            vec!["out"],
            "no aside copy or staging left"
        );

        // The fallback path without a fault works as the exchange does.
        fault::arm("no-exchange");
        write_staged(&dest, "f", "fallback").unwrap();
        fault::disarm();
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "fallback");
        assert_eq!(names(root.path()), vec!["out"]);
    }

    #[test]
    fn staging_of_a_dead_process_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        // A pid no process has: above the kernel's pid_max (at most 2^22).
        let dead = root.path().join(".out.tmp-99999999-0");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("X.npy"), "half").unwrap();
        // A live process's staging (this one's parent, the test harness) is left alone.
        let live = root.path().join(format!(
            ".out.tmp-{}-7",
            std::os::unix::process::parent_id()
        ));
        std::fs::create_dir(&live).unwrap();
        write_staged(&dest, "f", "1").unwrap();
        assert!(!dead.exists());
        assert!(live.exists());
    }

    #[test]
    fn concurrent_writers_serialise() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        std::thread::scope(|s| {
            for t in 0..4 {
                let dest = &dest;
                s.spawn(move || {
                    for i in 0..5 {
                        write_staged(dest, &format!("f{t}"), &i.to_string()).unwrap();
                    }
                });
            }
        });
        // Exactly one writer's last directory, whole, and nothing else.
        let files = names(&dest);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(std::fs::read_to_string(dest.join(&files[0])).unwrap(), "4");
        assert_eq!(names(root.path()), vec!["out"]);
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
