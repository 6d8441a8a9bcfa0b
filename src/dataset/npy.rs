//! A streaming writer for 3-D float32 `.npy` files, so a dataset larger than memory can be
//! written trial by trial. The header is reserved at a fixed size and rewritten with the final
//! trial count when the file is finished (NumPy format 1.0, C order, little-endian).
//!
//! And [`NpyHeader`], the check every `.npy` read goes through first: ndarray-npy's
//! `read_npy` allocates the whole array from the header's shape before it reads a byte of
//! data (and the header itself from its length field), so a 192-byte file claiming shape
//! `(100000000000, 22, 750)` made it ask for 6.6 PB and abort the process.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The header is padded to this many bytes, enough for any shape we write.
const HEADER_BYTES: usize = 128;

pub struct NpyF32Writer {
    path: PathBuf,
    out: BufWriter<File>,
    /// Shape of one item (e.g. channels × samples).
    item: Vec<usize>,
    items: usize,
    buf: Vec<u8>,
}

fn header(items: usize, item: &[usize]) -> Result<Vec<u8>> {
    let mut shape = format!("({items}");
    for d in item {
        shape.push_str(&format!(", {d}"));
    }
    if item.is_empty() {
        shape.push(',');
    }
    shape.push(')');
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n'
    let used = 10 + dict.len() + 1;
    if used > HEADER_BYTES {
        return Err(Error::Invalid(format!(
            "array shape `{shape}` is too large for the .npy header"
        )));
    }
    let mut bytes = Vec::with_capacity(HEADER_BYTES);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&((HEADER_BYTES - 10) as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(HEADER_BYTES - 1, b' ');
    bytes.push(b'\n');
    Ok(bytes)
}

impl NpyF32Writer {
    /// Creates `path` for items of shape `item`; the leading dimension grows as items are added.
    pub fn create(path: &Path, item: &[usize]) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(0, item)?)
            .map_err(|e| Error::io("write", path, e))?;
        Ok(NpyF32Writer {
            path: path.to_owned(),
            out,
            item: item.to_vec(),
            items: 0,
            buf: Vec::new(),
        })
    }

    /// Appends one item, given in C order as f64 and stored as f32.
    pub fn push(&mut self, values: impl ExactSizeIterator<Item = f64>) -> Result<()> {
        let expected: usize = self.item.iter().product();
        assert_eq!(values.len(), expected, "npy item size");
        self.buf.clear();
        self.buf.reserve(expected * 4);
        for v in values {
            self.buf.extend_from_slice(&(v as f32).to_le_bytes());
        }
        self.write_buf()
    }

    /// [`push`](Self::push) for values already in float32.
    pub fn push_f32(&mut self, values: &[f32]) -> Result<()> {
        let expected: usize = self.item.iter().product();
        assert_eq!(values.len(), expected, "npy item size");
        self.buf.clear();
        self.buf.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        self.write_buf()
    }

    fn write_buf(&mut self) -> Result<()> {
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.items += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Writes the final shape into the header and flushes the file to disk.
    pub fn finish(self) -> Result<usize> {
        let path = self.path;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &path, e.into_error()))?;
        let io = |e| Error::io("write", &path, e);
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header(self.items, &self.item)?)
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(self.items)
    }
}

/// NumPy's own limit on the header it parses (`max_header_size` of `numpy.lib.format`); the
/// length field is a u32 in format 2.0 and ndarray-npy allocates that many bytes to read it.
const MAX_HEADER_BYTES: usize = 10_000;

/// Brackets nested deeper than this in the header are refused: the literal parser recurses
/// once per level, and a real header nests at most a few (a structured dtype's fields).
const MAX_HEADER_NESTING: usize = 16;

/// An `.npy` header, parsed and checked before the array is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype, e.g. `<f4`.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Bytes from the start of the file to the data: magic, version, length field, dict.
    pub header_len: usize,
    /// Bytes of data that the shape and dtype call for.
    pub data_len: u64,
}

impl NpyHeader {
    /// Reads the header at the start of `reader`; returns it and its bytes (to hand to
    /// ndarray-npy together with the rest of the reader once [`check_len`](Self::check_len)
    /// has passed). Errors are one line, without the file's name.
    pub fn read(reader: &mut impl Read) -> std::result::Result<(Self, Vec<u8>), String> {
        let eof = |e: std::io::Error, what: &str| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => format!("the file ends inside the {what}"),
            _ => format!("cannot read the {what}: {e}"),
        };
        let mut raw = vec![0u8; 8];
        reader
            .read_exact(&mut raw)
            .map_err(|e| eof(e, ".npy magic string"))?;
        if &raw[..6] != b"\x93NUMPY" {
            return Err("no .npy magic string (`\\x93NUMPY`)".into());
        }
        let field = match raw[6] {
            1 => 2,
            2 | 3 => 4,
            major => {
                return Err(format!(
                    "unsupported .npy format version `{major}.{}`",
                    raw[7]
                ))
            }
        };
        raw.resize(8 + field, 0);
        reader
            .read_exact(&mut raw[8..])
            .map_err(|e| eof(e, "header length"))?;
        let len = raw[8..]
            .iter()
            .rev()
            .fold(0usize, |n, &b| n << 8 | usize::from(b));
        if len > MAX_HEADER_BYTES {
            return Err(format!(
                "header length `{len}` is over the `{MAX_HEADER_BYTES}` bytes NumPy reads"
            ));
        }
        let start = raw.len();
        raw.resize(start + len, 0);
        reader
            .read_exact(&mut raw[start..])
            .map_err(|e| eof(e, "header"))?;
        let header = Self::parse_dict(&raw[start..], raw[6], raw.len())?;
        Ok((header, raw))
    }

    /// [`read`](Self::read) from bytes in memory; the data follows at `header_len`.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        Self::read(&mut &bytes[..]).map(|(h, _)| h)
    }

    fn parse_dict(text: &[u8], major: u8, header_len: usize) -> std::result::Result<Self, String> {
        let Some((b'\n', text)) = text.split_last() else {
            return Err("the header does not end with a newline".into());
        };
        // Formats 1 and 2 are ASCII (NumPy writes Latin-1 only for field names); 3 is UTF-8.
        let text = std::str::from_utf8(text)
            .ok()
            .filter(|t| major == 3 || t.is_ascii())
            .ok_or("the header is not text")?;
        let mut depth = 0usize;
        for c in text.bytes() {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_HEADER_NESTING {
                return Err(format!(
                    "the header nests brackets deeper than `{MAX_HEADER_NESTING}`"
                ));
            }
        }
        let value: py_literal::Value = text
            .parse()
            .map_err(|_| format!("the header `{}` is not a Python literal", text.trim()))?;
        let dict = value
            .as_dict()
            .ok_or_else(|| format!("the header `{}` is not a dict", text.trim()))?;
        let get = |key: &str| {
            dict.iter()
                .find(|(k, _)| k.as_string().is_some_and(|k| k == key))
                .map(|(_, v)| v)
                .ok_or_else(|| format!("the header has no `{key}`"))
        };
        let descr = get("descr")?
            .as_string()
            .ok_or("the header's `descr` is not a simple dtype string")?
            .clone();
        let fortran_order = get("fortran_order")?
            .as_boolean()
            .ok_or("the header's `fortran_order` is not True or False")?;
        let shape = get("shape")?
            .as_tuple()
            .and_then(|t| {
                t.iter()
                    .map(|d| d.as_integer().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or("the header's `shape` is not a tuple of sizes")?;
        let shape_text = python_tuple(&shape);
        let item = item_size(&descr)?;
        let data_len = shape
            .iter()
            .try_fold(item, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(|| {
                format!("shape `{shape_text}` of `{descr}` overflows a 64-bit byte count")
            })?;
        // ndarray refuses (by panicking, inside ndarray-npy) a shape whose non-zero lengths
        // multiply past isize::MAX elements, even when another length is 0 and the array
        // holds no data at all, e.g. `(0, 18446744073709551615)`.
        shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| isize::try_from(n).is_ok())
            .ok_or_else(|| format!("shape `{shape_text}` has more elements than an array can"))?;
        Ok(NpyHeader {
            descr,
            fortran_order,
            shape,
            header_len,
            data_len,
        })
    }

    /// Refuses a header whose data is not exactly the `available` bytes after it: the check
    /// that bounds what ndarray-npy allocates by what the file or body really holds.
    pub fn check_len(&self, available: u64) -> std::result::Result<(), String> {
        if self.data_len != available {
            return Err(format!(
                "shape `{}` of `{}` needs `{}` bytes of data but `{available}` follow the header",
                python_tuple(&self.shape),
                self.descr,
                self.data_len
            ));
        }
        Ok(())
    }
}

/// Reads an array from `reader`, which holds `len` bytes in all, checking the header against
/// `len` before ndarray-npy allocates anything from it.
pub fn read_checked<A: ndarray_npy::ReadNpyExt>(
    reader: &mut impl Read,
    len: u64,
) -> std::result::Result<A, String> {
    let (header, raw) = NpyHeader::read(reader)?;
    header.check_len(len.saturating_sub(raw.len() as u64))?;
    // ndarray-npy parses the header again, from the bytes already read.
    A::read_npy(raw.as_slice().chain(reader)).map_err(|e| e.to_string())
}

/// A shape as Python writes it: `(3, 22)`, `(5,)`, `()`.
fn python_tuple(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Bytes per element of a numeric dtype string (`<f4`, `|u1`, `>c16`, `|b1`): the kind letter
/// after the byte order, then the size. Other dtypes (strings, objects, dates) are refused:
/// no reader here takes them.
fn item_size(descr: &str) -> std::result::Result<u64, String> {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = code.chars();
    let size = match chars.next() {
        Some('b' | 'i' | 'u' | 'f' | 'c') => chars.as_str().parse::<u64>().ok(),
        _ => None,
    };
    size.filter(|&n| n > 0)
        .ok_or_else(|| format!("dtype `{descr}` is not a numeric type"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn ndarray_npy_reads_what_we_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("X.npy");
        let mut w = NpyF32Writer::create(&path, &[2, 3]).unwrap();
        for t in 0..4 {
            w.push((0..6).map(|i| (t * 10 + i) as f64 + 0.5)).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 4);
        let x: Array3<f32> = ndarray_npy::read_npy(&path).unwrap();
        assert_eq!(x.dim(), (4, 2, 3));
        assert_eq!(x[[3, 1, 2]], 35.5);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 128 + 4 * 6 * 4);
    }
}

/// `.npy` bytes with the header dict `dict` (format `major`.0, padded as NumPy pads it),
/// followed by `data`; for tests of readers fed hostile headers.
#[cfg(test)]
pub(crate) fn npy_with_header(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let field = if major == 1 { 2 } else { 4 };
    let unpadded = 8 + field + dict.len() + 1;
    let len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    out.extend_from_slice(&(len as u32).to_le_bytes()[..field]);
    out.extend_from_slice(dict.as_bytes());
    out.resize(8 + field + len - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// `.npy` bytes whose header claims shape `dims` of `descr` (sizes as Python integers, so a
/// claim beyond usize reads as such), followed by `data` zero bytes; for hostile-header tests.
#[cfg(test)]
pub(crate) fn npy_claim(major: u8, descr: &str, dims: &[u64], data: usize) -> Vec<u8> {
    let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    npy_with_header(major, &dict, &vec![0; data])
}

#[cfg(test)]
mod reading_tests {
    use super::*;
    use crate::testutil::{hostile_size, quick};
    use ndarray::{Array1, Array3, ArrayD};
    use proptest::prelude::*;

    fn dict(descr: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    }

    /// The probe of issue 16: 192 bytes whose header claims 6.6 PB of float32.
    fn probe() -> Vec<u8> {
        npy_with_header(1, &dict("<f4", "(100000000000, 22, 750)"), &[0; 64])
    }

    #[test]
    fn the_probe_is_refused_by_its_length_before_any_allocation() {
        let bytes = probe();
        assert_eq!(bytes.len(), 192);
        let header = NpyHeader::parse(&bytes).unwrap();
        assert_eq!(header.shape, vec![100_000_000_000, 22, 750]);
        assert_eq!(header.data_len, 6_600_000_000_000_000);
        let e = read_checked::<Array3<f32>>(&mut bytes.as_slice(), 192).unwrap_err();
        assert_eq!(
            e,
            "shape `(100000000000, 22, 750)` of `<f4` needs `6600000000000000` bytes of data \
             but `64` follow the header"
        );
    }

    /// Found by the property test below: no data, so the byte count is 0, but ndarray-npy
    /// panicked on the element count of the non-zero lengths.
    #[test]
    fn an_empty_shape_with_a_huge_length_is_refused() {
        for (shape, why) in [
            (
                "(0, 18446744073709551615)",
                "more elements than an array can",
            ),
            (
                "(18446744073709551615, 0, 2)",
                "overflows a 64-bit byte count",
            ),
        ] {
            let bytes = npy_with_header(1, &dict("<f4", shape), &[]);
            let e =
                read_checked::<ArrayD<f32>>(&mut bytes.as_slice(), bytes.len() as u64).unwrap_err();
            assert!(e.contains(why), "{shape}: {e}");
        }
    }

    #[test]
    fn what_numpy_and_the_writer_write_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("X.npy");
        let mut w = NpyF32Writer::create(&path, &[2, 3]).unwrap();
        w.push((0..6).map(f64::from)).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let x: Array3<f32> = read_checked(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
        assert_eq!((x.dim(), x[[0, 1, 2]]), ((1, 2, 3), 5.0));
        // Formats 2 and 3, a 1-D shape, Fortran order, a scalar, an empty array.
        for major in [1, 2, 3] {
            let data: Vec<u8> = [1i64, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
            let b = npy_with_header(major, &dict("<i8", "(3,)"), &data);
            let y: Array1<i64> = read_checked(&mut b.as_slice(), b.len() as u64).unwrap();
            assert_eq!(y.to_vec(), vec![1, -2, 3]);
        }
        let f = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 1, 2), }";
        let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let b = npy_with_header(1, f, &data);
        let x: Array3<f64> = read_checked(&mut b.as_slice(), b.len() as u64).unwrap();
        assert_eq!(x[[1, 0, 0]], 2.0);
        let b = npy_with_header(1, &dict("<f4", "()"), &1.5f32.to_le_bytes());
        let x: ArrayD<f32> = read_checked(&mut b.as_slice(), b.len() as u64).unwrap();
        assert_eq!(x.first(), Some(&1.5));
        let b = npy_with_header(1, &dict("<f4", "(0, 22, 750)"), &[]);
        let x: Array3<f32> = read_checked(&mut b.as_slice(), b.len() as u64).unwrap();
        assert_eq!(x.dim(), (0, 22, 750));
    }

    #[test]
    fn malformed_headers_are_refused_naming_the_problem() {
        let v1 = |d: &str, data: &[u8]| npy_with_header(1, d, data);
        let deep = format!("{}{}", "(".repeat(40), ")".repeat(40));
        let mut huge_len = b"\x93NUMPY\x02\x00".to_vec();
        huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "ends inside the .npy magic string"),
            (
                "magic",
                b"\x93NUMPX\x01\x00\x00\x00".to_vec(),
                "no .npy magic",
            ),
            (
                "version",
                b"\x93NUMPY\x04\x00\x00\x00".to_vec(),
                "version `4.0`",
            ),
            ("length", huge_len, "header length `4294967295` is over"),
            ("short", probe()[..100].to_vec(), "ends inside the header"),
            (
                "newline",
                probe()[..128]
                    .iter()
                    .map(|&c| if c == b'\n' { b' ' } else { c })
                    .collect(),
                "newline",
            ),
            ("literal", v1("{'descr': <f4}", &[]), "not a Python literal"),
            ("dict", v1("[1, 2]", &[]), "not a dict"),
            (
                "no-shape",
                v1("{'descr': '<f4', 'fortran_order': False}", &[]),
                "no `shape`",
            ),
            (
                "negative",
                v1(&dict("<f4", "(-1, 22)"), &[]),
                "not a tuple of sizes",
            ),
            (
                "float-dim",
                v1(&dict("<f4", "(1.5,)"), &[]),
                "not a tuple of sizes",
            ),
            (
                "beyond-usize",
                v1(&dict("<f4", "(18446744073709551616,)"), &[]),
                "not a tuple of sizes",
            ),
            (
                "object",
                v1(&dict("|O", "(1,)"), &[0; 8]),
                "dtype `|O` is not a numeric type",
            ),
            ("zero-size", v1(&dict("<f0", "(1,)"), &[]), "dtype `<f0`"),
            (
                "structured",
                v1(
                    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                    &[0; 4],
                ),
                "not a simple dtype",
            ),
            (
                "nesting",
                v1(&dict("<f4", &deep), &[]),
                "nests brackets deeper",
            ),
            (
                "overflow",
                v1(&dict("<f8", "(4611686018427387904, 4)"), &[]),
                "overflows a 64-bit byte count",
            ),
            (
                "short-data",
                v1(&dict("<f4", "(2, 2)"), &[0; 12]),
                "needs `16` bytes of data but `12`",
            ),
            (
                "long-data",
                v1(&dict("<f4", "(2, 2)"), &[0; 20]),
                "needs `16` bytes of data but `20`",
            ),
            (
                "zero-dim-with-data",
                v1(&dict("<f4", "(0, 22, 750)"), &[0; 4]),
                "needs `0` bytes",
            ),
        ];
        for (name, bytes, needle) in cases {
            let e =
                read_checked::<Array3<f32>>(&mut bytes.as_slice(), bytes.len() as u64).unwrap_err();
            assert!(e.contains(needle), "{name}: `{e}` lacks `{needle}`");
            assert!(!e.contains('\n'), "{name}: `{e}` is not one line");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Huge, zero and overflowing shapes, any dtype size, any amount of data: an error,
        /// or an array of exactly the bytes present. Never a panic, and (the old failure)
        /// never an allocation from the header: `read_npy` aborted on the first huge claim.
        #[test]
        fn hostile_shapes_give_an_error_or_the_bytes_present(
            major in 1u8..=3,
            descr in prop::sample::select(vec!["<f4", "<f8", "<i8", "|u1", ">f4", "<c16"]),
            dims in prop::collection::vec(hostile_size(), 0..5),
            data in 0usize..512,
        ) {
            let bytes = npy_claim(major, descr, &dims, data);
            let len = bytes.len() as u64;
            let got = quick("read_checked", || {
                (
                    read_checked::<ArrayD<f32>>(&mut bytes.as_slice(), len),
                    read_checked::<ArrayD<i64>>(&mut bytes.as_slice(), len),
                )
            });
            if let Ok(a) = got.0 {
                prop_assert_eq!(a.len() * 4, data);
            }
            if let Ok(a) = got.1 {
                prop_assert_eq!(a.len() * 8, data);
            }
        }

        /// Random corruption of a valid file, and random bytes after the magic.
        #[test]
        fn corrupted_files_never_panic(
            edits in prop::collection::vec((0usize..256, any::<u8>()), 1..12),
            cut in 0usize..300,
            tail in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = npy_claim(1, "<f4", &[2, 3, 4], 96);
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut.max(1));
            let len = bytes.len() as u64;
            let _ = quick("corrupted", || read_checked::<Array3<f32>>(&mut bytes.as_slice(), len));
            let mut random = b"\x93NUMPY".to_vec();
            random.extend_from_slice(&tail);
            let len = random.len() as u64;
            let _ = quick("random", || read_checked::<Array3<f32>>(&mut random.as_slice(), len));
        }
    }
}
