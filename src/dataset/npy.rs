//! A streaming writer for 3-D float32 `.npy` files, so a dataset larger than memory can be
//! written trial by trial. The header is reserved at a fixed size and rewritten with the final
//! trial count when the file is finished (NumPy format 1.0, C order, little-endian).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
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
