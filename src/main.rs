//! The `bciops` binary: parse, dispatch, map errors to exit codes. Nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    bciops::cli::main()
}
