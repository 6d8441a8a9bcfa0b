//! The library's one error type. Every message is one line, lowercase, and names the offending
//! value in backticks; `exit_code` decides what the process returns (see the README).

use std::path::Path;

/// Process exit codes, documented in `--help` and the README.
pub mod exit {
    /// Everything worked.
    pub const SUCCESS: i32 = 0;
    /// Something failed that is not the caller's input: I/O, a service, a numerical breakdown.
    pub const FAILURE: i32 = 1;
    /// Bad input or usage: a malformed file, an invalid parameter, a mismatched model.
    pub const BAD_INPUT: i32 = 2;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file whose content is not what its format requires.
    #[error("`{path}`: {message}")]
    Malformed { path: String, message: String },
    /// A parameter, option or combination of them that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// Data that is well formed but unusable for the requested computation
    /// (too few trials, a single class, non-finite values).
    #[error("{0}")]
    Data(String),
    /// The operating system refused a read or write. The cause is part of the message (and
    /// deliberately not an error `source`, so a printed chain does not repeat it).
    #[error("cannot {action} `{path}`: {cause}")]
    Io {
        action: &'static str,
        path: String,
        cause: std::io::Error,
    },
    /// A numerical method that did not converge or met a singular matrix.
    #[error("{0}")]
    Numerical(String),
    /// Several problems with one input (every violation of a sweep file): `summary` is the
    /// error's line, and the command line lists `details` below it. Displayed on one line,
    /// details joined by `; `, wherever there is no room for a list (an HTTP answer, a log).
    #[error("{summary}: {}", details.join("; "))]
    Problems {
        summary: String,
        details: Vec<String>,
    },
    /// A setting to change: the message says what is wrong; `setting` names the setting as
    /// the configuration and the command line know it (`event`, `sessions`, `restart`) and
    /// `example` a value for it, so that each front end says how to change it in its own
    /// words (the command line: `hint: --sessions T,E`). The core never names a flag.
    #[error("{message}")]
    Setting {
        message: String,
        setting: &'static str,
        example: Option<String>,
    },
    /// A fault of bciops itself, not of its input or its machine: a serializer failing on
    /// bciops' own values, a worker thread that panicked.
    #[error("internal error: {0} (a bug in bciops; please report it)")]
    Internal(String),
}

impl Error {
    pub fn malformed(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Malformed {
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }

    /// A [`Error::Setting`].
    pub fn setting(
        setting: &'static str,
        example: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Setting {
            message: message.into(),
            setting,
            example: example.map(str::to_owned),
        }
    }

    /// bciops' own value could not be encoded (JSON, YAML): a bug, not bad input.
    pub fn encode(what: &str, e: impl std::fmt::Display) -> Self {
        Error::Internal(format!("cannot encode {what}: {e}"))
    }

    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().display().to_string(),
            cause: source,
        }
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Malformed { .. }
            | Error::Invalid(_)
            | Error::Data(_)
            | Error::Problems { .. }
            | Error::Setting { .. } => exit::BAD_INPUT,
            // A missing input file is the caller's mistake, not a failure of the machine.
            Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                exit::BAD_INPUT
            }
            Error::Io { .. } | Error::Numerical(_) | Error::Internal(_) => exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
