//! Where data lives, parsed: a plain path, `file://PATH`, `s3://BUCKET/KEY` or `gs://BUCKET/KEY`.

use std::fmt;
use std::path::{Path, PathBuf};

use object_store::path::Path as Key;

use crate::error::{Error, Result};

/// A cloud store scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
}

impl Scheme {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
        }
    }
}

/// An object or prefix in a bucket. `key` has no leading or trailing `/` (empty: the bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub scheme: Scheme,
    pub bucket: String,
    pub key: String,
}

impl Remote {
    /// A child key (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Remote {
        let name = name.trim_matches('/');
        let key = match (self.key.is_empty(), name.is_empty()) {
            (true, _) => name.to_owned(),
            (false, true) => self.key.clone(),
            (false, false) => format!("{}/{name}", self.key),
        };
        Remote {
            key,
            ..self.clone()
        }
    }

    pub(super) fn object(&self) -> Key {
        Key::from(self.key.as_str())
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme.prefix(), self.bucket, self.key)
    }
}

/// Where an input is read from or an output written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote(Remote),
}

impl Location {
    /// Parses a plain path, `file://PATH`, `s3://BUCKET/KEY` or `gs://BUCKET/KEY`.
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(Error::Invalid(format!("`{text}` names no path")));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        let scheme = if let Some(rest) = text.strip_prefix("s3://") {
            Some((Scheme::S3, rest))
        } else {
            text.strip_prefix("gs://").map(|rest| (Scheme::Gcs, rest))
        };
        let Some((scheme, rest)) = scheme else {
            if let Some((scheme, _)) = text.split_once("://") {
                return Err(Error::Invalid(format!(
                    "`{text}`: scheme `{scheme}` is not one bciops reads (a path, `file://`, \
                     `s3://` or `gs://`)"
                )));
            }
            if text.is_empty() {
                return Err(Error::Invalid("an empty path was given".into()));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_bucket {
            return Err(Error::Invalid(format!(
                "`{text}` names no valid bucket (`{}://BUCKET/KEY`)",
                scheme.prefix()
            )));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|part| part == "." || part == "..") || key.contains("//") {
            return Err(Error::Invalid(format!(
                "`{text}`: key `{key}` has an empty, `.` or `..` part"
            )));
        }
        Ok(Location::Remote(Remote {
            scheme,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }))
    }

    /// A location for a path given on the command line (paths that are not UTF-8 stay local).
    pub fn from_path(path: &Path) -> Result<Location> {
        match path.to_str() {
            Some(text) => Location::parse(text),
            None => Ok(Location::Local(path.to_owned())),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Remote(_))
    }

    /// The local path, when the location is local.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote(_) => None,
        }
    }

    /// A child of this location (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::Remote(r) => Location::Remote(r.join(name)),
        }
    }

    /// The last component (file or directory name), if any.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::Remote(r) => r
                .key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote(r) => r.fmt(f),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location> {
        Location::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_uris() {
        assert_eq!(
            Location::parse("data/x").unwrap(),
            Location::Local("data/x".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        let s3 = Location::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(
            s3,
            Location::Remote(Remote {
                scheme: Scheme::S3,
                bucket: "bucket".into(),
                key: "a/b".into()
            })
        );
        assert_eq!(s3.to_string(), "s3://bucket/a/b");
        assert_eq!(s3.join("X.npy").to_string(), "s3://bucket/a/b/X.npy");
        assert_eq!(s3.file_name().as_deref(), Some("b"));
        let gs = Location::parse("gs://b").unwrap();
        assert_eq!(gs.join("m").to_string(), "gs://b/m");
        assert_eq!(gs.file_name(), None);
        for bad in [
            "s3://",
            "s3:///k",
            "gs://bad bucket/k",
            "s3://b/a/../c",
            "http://x/y",
            "",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains('`') || bad.is_empty(), "{bad}: {e}");
        }
    }
}
