//! Helpers shared by the unit tests: where the reference fixtures are, and the Python peer.

use std::path::{Path, PathBuf};

/// `../shared/fixtures` next to the crate, else `$BCIOPS_FIXTURES`. Missing fixtures fail the
/// test, never skip it: they are part of the project's contract.
pub fn shared_fixtures() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if beside.is_dir() {
        return beside;
    }
    match std::env::var_os("BCIOPS_FIXTURES").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => dir,
        _ => panic!(
            "reference fixtures not found: neither `{}` nor $BCIOPS_FIXTURES is a directory",
            beside.display()
        ),
    }
}

/// The Python with NumPy, scipy and MNE named by `BCIOPS_PYTHON` (scripts/test.sh sets it).
/// Without it the test is skipped with a message, except under `CI=true`, where it fails.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    match std::env::var_os("BCIOPS_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: CI=true requires BCIOPS_PYTHON (a Python with numpy, scipy and mne)")
        }
        None => {
            eprintln!("{test}: skipped, BCIOPS_PYTHON is not set");
            None
        }
    }
}
