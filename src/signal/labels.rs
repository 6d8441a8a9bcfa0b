//! True class labels of an evaluation session: BCI Competition `A0xE.mat` files (variable
//! `classlabel`, values 1–4) or plain text with one label per line.

use std::path::Path;

use crate::error::{Error, Result};
use crate::signal::mat;

/// Reads class labels: a `.mat` file's `classlabel` vector, or else a text file with one
/// integer per line (blank lines and `#` comments ignored). Labels are integers in 1..=255.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let is_mat = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mat"));
    if is_mat {
        let (dims, values) = mat::read_numeric(path, "classlabel")?;
        labels_from_mat(&name, &dims, &values)
    } else {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::malformed(&name, format!("label file is not UTF-8 text: {e}")))?;
        parse_text(text, &name)
    }
}

fn labels_from_mat(name: &str, dims: &[usize], values: &[f64]) -> Result<Vec<u8>> {
    if dims.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(Error::malformed(
            name,
            format!("`classlabel` has dimensions `{dims:?}`, a vector was expected"),
        ));
    }
    if values.is_empty() {
        return Err(Error::malformed(name, "`classlabel` is empty"));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && (1.0..=255.0).contains(&v) {
                Ok(v as u8)
            } else {
                Err(Error::malformed(
                    name,
                    format!("`classlabel` value `{v}` at index `{i}` is not a label in 1..=255"),
                ))
            }
        })
        .collect()
}

/// Parses label text; `name` identifies the file in errors.
pub fn parse_text(text: &str, name: &str) -> Result<Vec<u8>> {
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match content.parse::<u8>() {
            Ok(label) if label >= 1 => labels.push(label),
            _ => {
                return Err(Error::malformed(
                    name,
                    format!(
                        "line `{}`: `{}` is not a label in 1..=255",
                        i + 1,
                        content.escape_debug()
                    ),
                ))
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::malformed(name, "no labels in the file"));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat_fixture(name: &str) -> std::path::PathBuf {
        // Written by scipy.io.savemat (scripts/fixtures/make_mat_fixtures.py).
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/mat")
            .join(name)
    }

    #[test]
    fn reads_classlabel_from_scipy_mat_files() {
        for file in ["classlabel_uint8.mat", "classlabel_double_compressed.mat"] {
            let labels = read_labels(&mat_fixture(file)).unwrap();
            assert_eq!(labels, [1, 2, 3, 4, 4, 3, 2, 1, 1, 3, 2, 4], "{file}");
        }
    }

    #[test]
    fn reads_what_write_classlabel_writes_even_with_an_upper_case_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("A01E.MAT");
        mat::write_classlabel(&path, &[4, 3, 2, 1]).unwrap();
        assert_eq!(read_labels(&path).unwrap(), [4, 3, 2, 1]);
    }

    #[test]
    fn mat_values_must_be_labels() {
        let err = labels_from_mat("a.mat", &[3, 1], &[1.0, 2.5, 3.0]).unwrap_err();
        assert!(
            err.to_string().contains("value `2.5` at index `1`"),
            "{err}"
        );
        let err = labels_from_mat("a.mat", &[2, 1], &[1.0, 0.0]).unwrap_err();
        assert!(err.to_string().contains("value `0` at index `1`"), "{err}");
        let err = labels_from_mat("a.mat", &[1, 1], &[256.0]).unwrap_err();
        assert!(err.to_string().contains("`256`"), "{err}");
        let err = labels_from_mat("a.mat", &[1, 1], &[f64::NAN]).unwrap_err();
        assert!(err.to_string().contains("`NaN`"), "{err}");
        let err = labels_from_mat("a.mat", &[2, 2], &[1.0; 4]).unwrap_err();
        assert!(err.to_string().contains("`[2, 2]`"), "{err}");
        assert!(labels_from_mat("a.mat", &[0, 1], &[]).is_err());
        // Another variable name: the error names the missing `classlabel`.
        let err = read_labels(&mat_fixture("numeric_classes.mat")).unwrap_err();
        assert!(
            err.to_string().contains("no variable `classlabel`"),
            "{err}"
        );
    }

    #[test]
    fn text_labels_skip_blank_lines_and_comments() {
        let text = "# true labels of A01E\n1\n\n  2  \n3 # tongue? no, feet\n4\r\n";
        assert_eq!(parse_text(text, "l.txt").unwrap(), [1, 2, 3, 4]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.txt");
        std::fs::write(&path, text).unwrap();
        assert_eq!(read_labels(&path).unwrap(), [1, 2, 3, 4]);
    }

    #[test]
    fn text_errors_name_the_line() {
        for (text, expected) in [
            ("1\n2\nleft\n", "line `3`: `left`"),
            ("1\n0\n", "line `2`: `0`"),
            ("1\n\n256\n", "line `3`: `256`"),
            ("1.0\n", "line `1`: `1.0`"),
            ("-1\n", "line `1`: `-1`"),
            ("1 2\n", "line `1`: `1 2`"),
            ("# nothing\n\n", "no labels"),
        ] {
            let err = parse_text(text, "l.txt").unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }));
            assert!(err.to_string().contains(expected), "{text:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.txt");
        std::fs::write(&path, [0xFF, b'\n']).unwrap();
        assert!(read_labels(&path)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
        let missing = read_labels(&dir.path().join("missing.txt")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
    }
}
