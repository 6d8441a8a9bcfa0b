//! Output paths checked before any work: `--out` never replaces a file, the current directory,
//! or (without `--force`) a directory holding anything bciops did not write there; with
//! `--force` still never a directory that holds one of the command's inputs.

use crate::error::{Error, Result};
use crate::fsutil::Replace;
use crate::storage::Location;

/// Fails when `out` may not be written with `replace` (the final check repeats when the
/// output is committed; this one saves the work of a run that could not be kept).
pub fn check(out: &Location, replace: Replace, inputs: &[&Location]) -> Result<()> {
    let Location::Local(dest) = out else {
        return Ok(());
    };
    replace.check(dest)?;
    if !replace.force {
        return Ok(());
    }
    let Ok(dest_abs) = std::fs::canonicalize(dest) else {
        return Ok(());
    };
    for input in inputs {
        let Location::Local(path) = input else {
            continue;
        };
        let Ok(input_abs) = std::fs::canonicalize(path) else {
            continue;
        };
        if input_abs.starts_with(&dest_abs) {
            return Err(Error::Invalid(format!(
                "output `{}` holds the input `{}`: it is never replaced, not even with --force",
                dest.display(),
                path.display()
            )));
        }
    }
    Ok(())
}
