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

/// Sizes a hostile header claims, for the readers' property tests: zero, one, small, the
/// edges of the 16-, 32- and 64-bit fields formats use, and more than any machine holds.
pub fn hostile_size() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        Just(0u64),
        Just(1),
        2u64..64,
        Just(u64::from(u16::MAX)),
        Just(i32::MAX as u64),
        Just(u64::from(u32::MAX)),
        Just(1 << 32),
        Just(100_000_000_000),
        Just(i64::MAX as u64),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

/// Runs `f` and fails the test if it took longer than two seconds: a reader that allocates or
/// loops per claimed element rather than per byte present shows up here (an allocation of
/// petabytes aborts the test binary before that).
pub fn quick<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_secs(2),
        "{what} took {took:?}"
    );
    out
}
