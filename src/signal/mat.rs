//! MATLAB MAT-file level 5 (v5, v6, v7: not the HDF5-based v7.3): a reader of numeric, char,
//! cell and struct arrays, and a writer of the `classlabel` files that carry BCI Competition
//! true labels.
//!
//! A level-5 file is a 128-byte header (text, subsystem offset, version 0x0100, endianness
//! indicator `IM` little / `MI` big) followed by data elements: an 8-byte tag (type, byte
//! count) and the data padded to 8 bytes, or a 4-byte "small element" when the data fit in 4
//! bytes. A variable is an `miMATRIX` element, possibly wrapped in a zlib `miCOMPRESSED` one.
//! Reference: MathWorks, "MAT-File Format", R2024a (matfile_format.pdf); scipy.io.matlab.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// A MATLAB value this reader decodes.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    Numeric(NumericArray),
    Char(CharArray),
    Cell(CellArray),
    Struct(StructArray),
    /// A class this reader does not decode (sparse, object, function handle, opaque); kept so
    /// that the file's other variables stay readable.
    Unsupported {
        class: u8,
    },
}

/// MATLAB's numeric classes; every value is held as `f64` (64-bit integers above 2⁵³ round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericClass {
    Double,
    Single,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumericArray {
    pub class: NumericClass,
    /// MATLAB `logical` (stored as uint8).
    pub logical: bool,
    pub dims: Vec<usize>,
    /// Column-major values.
    pub real: Vec<f64>,
    pub imag: Option<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CharArray {
    pub dims: Vec<usize>,
    /// Column-major characters (UTF-16 code units that are not characters become U+FFFD).
    pub chars: Vec<char>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CellArray {
    pub dims: Vec<usize>,
    /// Column-major cells.
    pub items: Vec<MatValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructArray {
    pub dims: Vec<usize>,
    pub fields: Vec<String>,
    /// `values[f][e]`: field `fields[f]` of element `e` (column-major).
    pub values: Vec<Vec<MatValue>>,
}

/// A parsed MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    /// The header's descriptive text, e.g. `MATLAB 5.0 MAT-file, Platform: …`.
    pub description: String,
    /// Variables in file order.
    pub variables: Vec<(String, MatValue)>,
}

impl MatFile {
    pub fn get(&self, name: &str) -> Option<&MatValue> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

impl MatValue {
    pub fn dims(&self) -> &[usize] {
        match self {
            MatValue::Numeric(a) => &a.dims,
            MatValue::Char(a) => &a.dims,
            MatValue::Cell(a) => &a.dims,
            MatValue::Struct(a) => &a.dims,
            MatValue::Unsupported { .. } => &[],
        }
    }

    pub fn as_numeric(&self) -> Option<&NumericArray> {
        match self {
            MatValue::Numeric(a) => Some(a),
            _ => None,
        }
    }

    /// A one-row char array as a string (a column or empty array too).
    pub fn as_string(&self) -> Option<String> {
        match self {
            MatValue::Char(a) if a.dims.iter().filter(|&&d| d != 1).count() <= 1 => {
                Some(a.chars.iter().collect())
            }
            _ => None,
        }
    }

    /// The only value of a 1×1 numeric array.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            MatValue::Numeric(a) if a.real.len() == 1 => Some(a.real[0]),
            _ => None,
        }
    }

    /// Field `name` of element `index` of a struct array.
    pub fn field(&self, name: &str, index: usize) -> Option<&MatValue> {
        match self {
            MatValue::Struct(s) => {
                let f = s.fields.iter().position(|f| f == name)?;
                s.values[f].get(index)
            }
            _ => None,
        }
    }
}

impl CharArray {
    /// Rows of a 2-D char array as strings (MATLAB's `cellstr` without trimming). An array
    /// without characters has no rows: its row count (up to 2³¹ from a file that holds none of
    /// them) would otherwise become as many strings.
    pub fn rows(&self) -> Vec<String> {
        let rows = self.dims.first().copied().unwrap_or(0);
        if rows == 0 || self.chars.is_empty() {
            return Vec::new();
        }
        let cols = self.chars.len() / rows;
        (0..rows)
            .map(|r| (0..cols).map(|c| self.chars[c * rows + r]).collect())
            .collect()
    }
}

/// Reads every variable of a MAT-file.
pub fn read(path: &Path) -> Result<MatFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse(&bytes, &path.display().to_string())
}

/// Reads one variable of a MAT-file, decoding only that one.
pub fn read_variable(path: &Path, variable: &str) -> Result<MatValue> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_variable(&bytes, &path.display().to_string(), variable)
}

/// Reads a real numeric variable: its dimensions and its values in column-major order.
pub fn read_numeric(path: &Path, variable: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_numeric(&bytes, &path.display().to_string(), variable)
}

/// Parses every variable of a MAT-file held in memory; `name` identifies it in errors.
pub fn parse(bytes: &[u8], name: &str) -> Result<MatFile> {
    let (ctx, description) = header(bytes, name)?;
    let mut variables = Vec::new();
    for_each_variable(&ctx, bytes, |matrix| {
        let (var, value) = matrix.decode(&ctx, 0)?;
        variables.push((var, value));
        Ok(false)
    })?;
    Ok(MatFile {
        description,
        variables,
    })
}

/// Parses one variable of a MAT-file held in memory.
pub fn parse_variable(bytes: &[u8], name: &str, variable: &str) -> Result<MatValue> {
    let (ctx, _) = header(bytes, name)?;
    let mut found = None;
    for_each_variable(&ctx, bytes, |matrix| {
        if matrix.name != variable {
            return Ok(false);
        }
        found = Some(matrix.decode(&ctx, 0)?.1);
        Ok(true)
    })?;
    found.ok_or_else(|| ctx.err(format!("no variable `{variable}`")))
}

/// Parses a real numeric variable of a MAT-file held in memory.
pub fn parse_numeric(bytes: &[u8], name: &str, variable: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    match parse_variable(bytes, name, variable)? {
        MatValue::Numeric(a) if a.imag.is_none() => Ok((a.dims, a.real)),
        MatValue::Numeric(_) => Err(Error::malformed(
            name,
            format!("variable `{variable}` is complex, a real array was expected"),
        )),
        other => Err(Error::malformed(
            name,
            format!(
                "variable `{variable}` is a {}, a numeric array was expected",
                kind(&other)
            ),
        )),
    }
}

fn kind(value: &MatValue) -> String {
    match value {
        MatValue::Numeric(_) => "numeric array".into(),
        MatValue::Char(_) => "char array".into(),
        MatValue::Cell(_) => "cell array".into(),
        MatValue::Struct(_) => "struct array".into(),
        MatValue::Unsupported { class } => format!("MATLAB class `{class}` array"),
    }
}

// ----- reading --------------------------------------------------------------------------------

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;
const MX_DOUBLE: u8 = 6;
const MX_OPAQUE: u8 = 17;

/// Nesting of cells and structs deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;
/// Largest decompressed variable accepted (a zlib stream can expand ~1000-fold).
const MAX_INFLATED: u64 = 1 << 30;

struct Ctx<'a> {
    name: &'a str,
    big_endian: bool,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::malformed(self.name, message)
    }

    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// An unsigned integer of `b.len()` ≤ 8 bytes in the file's byte order.
    fn uint(&self, b: &[u8]) -> u64 {
        let fold = |acc: u64, &byte: &u8| (acc << 8) | u64::from(byte);
        if self.big_endian {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        }
    }

    fn u32_at(&self, buf: &[u8], at: usize) -> Result<u32> {
        at.checked_add(4)
            .and_then(|end| buf.get(at..end))
            .map(|s| self.u32([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| self.err(format!("data element tag at byte `{at}` is truncated")))
    }
}

fn header<'a>(bytes: &[u8], name: &'a str) -> Result<(Ctx<'a>, String)> {
    if bytes.len() < 128 {
        return Err(Error::malformed(
            name,
            format!(
                "file of `{}` bytes is shorter than the 128-byte MAT header",
                bytes.len()
            ),
        ));
    }
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => {
            return Err(Error::malformed(
                name,
                format!(
                    "not a MAT-file level 5 (endianness indicator `{}`)",
                    String::from_utf8_lossy(other).escape_debug()
                ),
            ))
        }
    };
    let ctx = Ctx { name, big_endian };
    let version = if big_endian {
        u16::from_be_bytes([bytes[124], bytes[125]])
    } else {
        u16::from_le_bytes([bytes[124], bytes[125]])
    };
    if version != 0x0100 {
        // 0x0200 is v7.3, an HDF5 file with a MAT-like header.
        return Err(ctx.err(format!(
            "unsupported MAT-file version `{version:#06x}` (v7.3 HDF5 files are not read; save with -v7)"
        )));
    }
    let text_end = bytes[..116].iter().position(|&c| c == 0).unwrap_or(116);
    let description = String::from_utf8_lossy(&bytes[..text_end])
        .trim_end()
        .to_string();
    Ok((ctx, description))
}

/// One data element: its type and its data (without padding).
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
}

/// Reads the element at `at` in `buf`; returns it and where the next one starts.
fn element<'a>(ctx: &Ctx, buf: &'a [u8], at: usize) -> Result<(Element<'a>, usize)> {
    let first = ctx.u32_at(buf, at)?;
    if first >> 16 != 0 {
        // Small element: byte count in the upper 16 bits, data in the tag's second word.
        let (ty, len) = (first & 0xFFFF, (first >> 16) as usize);
        if len > 4 {
            return Err(ctx.err(format!(
                "small data element at byte `{at}` claims `{len}` bytes (at most 4)"
            )));
        }
        let data = buf
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| ctx.err(format!("small data element at byte `{at}` is truncated")))?;
        return Ok((Element { ty, data }, (at + 8).min(buf.len())));
    }
    let len = ctx.u32_at(buf, at + 4)? as usize;
    let start = at + 8;
    let data = start
        .checked_add(len)
        .and_then(|end| buf.get(start..end))
        .ok_or_else(|| {
            ctx.err(format!(
                "data element at byte `{at}` of `{len}` bytes runs past the end (`{}` bytes)",
                buf.len()
            ))
        })?;
    // Compressed elements are not padded; the others are, to 8 bytes (a file may end without
    // its last padding).
    let end = start + len;
    let next = if first == MI_COMPRESSED {
        end
    } else {
        end.next_multiple_of(8).min(buf.len())
    };
    Ok((Element { ty: first, data }, next))
}

/// Calls `visit` with each top-level variable's header until it returns `Ok(true)`.
fn for_each_variable(
    ctx: &Ctx,
    bytes: &[u8],
    mut visit: impl FnMut(Matrix) -> Result<bool>,
) -> Result<()> {
    let mut at = 128;
    while at < bytes.len() {
        let (el, next) = element(ctx, bytes, at)?;
        let stop = match el.ty {
            MI_MATRIX => visit(Matrix::header(ctx, el.data)?)?,
            MI_COMPRESSED => {
                let inflated = inflate(ctx, el.data, at)?;
                let (inner, _) = element(ctx, &inflated, 0)?;
                if inner.ty != MI_MATRIX {
                    return Err(ctx.err(format!(
                        "compressed element at byte `{at}` holds data type `{}`, not a matrix",
                        inner.ty
                    )));
                }
                visit(Matrix::header(ctx, inner.data)?)?
            }
            // Other top-level types carry no variable; skip them as MATLAB does.
            _ => false,
        };
        if stop {
            break;
        }
        at = next;
    }
    Ok(())
}

/// The most zlib expands: 258 bytes from a 2-bit code, about 1032 to 1.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Inflates a compressed element: exactly the one element it holds, whose length its tag
/// declares. The declaration is checked before inflating (at most [`MAX_INFLATED`], and no
/// more than the compressed bytes can expand to) and bounds the output, so a zlib bomb
/// behind a small tag stops where the tag says, not at a gigabyte.
fn inflate(ctx: &Ctx, data: &[u8], at: usize) -> Result<Vec<u8>> {
    let broken = |e: std::io::Error| {
        ctx.err(format!(
            "compressed element at byte `{at}` does not decompress: {e}"
        ))
    };
    let mut z = flate2::read::ZlibDecoder::new(data);
    let mut out = vec![0u8; 8];
    z.read_exact(&mut out).map_err(broken)?;
    let first = ctx.u32([out[0], out[1], out[2], out[3]]);
    // A small element is all in its 8-byte tag.
    let len = if first >> 16 != 0 {
        0
    } else {
        u64::from(ctx.u32([out[4], out[5], out[6], out[7]]))
    };
    let limit = MAX_INFLATED.min((data.len() as u64).saturating_mul(MAX_DEFLATE_RATIO));
    if len > limit {
        return Err(ctx.err(format!(
            "compressed element at byte `{at}` declares `{len}` bytes, more than `{limit}` \
             (its `{}` compressed bytes expand to at most {MAX_DEFLATE_RATIO} times that, and \
             at most `{MAX_INFLATED}` are read)",
            data.len()
        )));
    }
    // Anything after the element (and the stream's checksum, which some writers leave
    // out) is not read: a complete element is all the reader needs.
    z.take(len).read_to_end(&mut out).map_err(broken)?;
    if (out.len() as u64) < 8 + len {
        return Err(ctx.err(format!(
            "compressed element at byte `{at}` does not decompress: it ends after `{}` of the `{}` bytes its element declares",
            out.len(),
            8 + len
        )));
    }
    Ok(out)
}

/// An `miMATRIX` element whose flags, dimensions and name have been read.
struct Matrix<'a> {
    class: u8,
    complex: bool,
    logical: bool,
    dims: Vec<usize>,
    name: String,
    /// The sub-elements after the name.
    rest: &'a [u8],
}

impl<'a> Matrix<'a> {
    fn header(ctx: &Ctx, data: &'a [u8]) -> Result<Self> {
        if data.is_empty() {
            // MATLAB writes empty cells as matrix elements without content: a 0×0 double.
            return Ok(Matrix {
                class: MX_DOUBLE,
                complex: false,
                logical: false,
                dims: vec![0, 0],
                name: String::new(),
                rest: data,
            });
        }
        let (flags, at) = element(ctx, data, 0)?;
        if flags.ty != MI_UINT32 || flags.data.len() != 8 {
            return Err(ctx.err(format!(
                "array flags have type `{}` and `{}` bytes (uint32, 8 expected)",
                flags.ty,
                flags.data.len()
            )));
        }
        let word = ctx.u32([flags.data[0], flags.data[1], flags.data[2], flags.data[3]]);
        let class = (word & 0xFF) as u8;
        let (dims, at) = if class == MX_OPAQUE {
            // Opaque objects (MATLAB strings, tables) have no dimensions element.
            (Vec::new(), at)
        } else {
            let (el, next) = element(ctx, data, at)?;
            if el.ty != MI_INT32 || el.data.len() % 4 != 0 || el.data.is_empty() {
                return Err(ctx.err(format!(
                    "array dimensions have type `{}` and `{}` bytes (int32 expected)",
                    el.ty,
                    el.data.len()
                )));
            }
            let dims = el
                .data
                .chunks_exact(4)
                .map(|c| {
                    let d = ctx.u32([c[0], c[1], c[2], c[3]]) as i32;
                    usize::try_from(d)
                        .map_err(|_| ctx.err(format!("negative array dimension `{d}`")))
                })
                .collect::<Result<Vec<_>>>()?;
            (dims, next)
        };
        let (el, at) = element(ctx, data, at)?;
        if !matches!(el.ty, MI_INT8 | MI_UINT8) {
            return Err(ctx.err(format!(
                "array name has data type `{}` (int8 expected)",
                el.ty
            )));
        }
        Ok(Matrix {
            class,
            complex: word & 0x800 != 0,
            logical: word & 0x200 != 0,
            dims,
            name: String::from_utf8_lossy(el.data).into_owned(),
            rest: data.get(at..).unwrap_or(&[]),
        })
    }

    fn count(&self, ctx: &Ctx) -> Result<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| {
                ctx.err(format!(
                    "array `{}` dimensions `{:?}` overflow",
                    self.name, self.dims
                ))
            })
    }

    fn decode(self, ctx: &Ctx, depth: usize) -> Result<(String, MatValue)> {
        if depth > MAX_DEPTH {
            return Err(ctx.err(format!(
                "cells or structs nest deeper than `{MAX_DEPTH}` levels"
            )));
        }
        let value = match self.class {
            MX_CELL => self.cell(ctx, depth)?,
            MX_STRUCT => self.structure(ctx, depth)?,
            MX_CHAR => self.chars(ctx)?,
            6..=15 => self.numeric(ctx)?,
            class => MatValue::Unsupported { class },
        };
        Ok((self.name, value))
    }

    fn numeric(&self, ctx: &Ctx) -> Result<MatValue> {
        let class = match self.class {
            6 => NumericClass::Double,
            7 => NumericClass::Single,
            8 => NumericClass::Int8,
            9 => NumericClass::UInt8,
            10 => NumericClass::Int16,
            11 => NumericClass::UInt16,
            12 => NumericClass::Int32,
            13 => NumericClass::UInt32,
            14 => NumericClass::Int64,
            _ => NumericClass::UInt64,
        };
        let count = self.count(ctx)?;
        if count == 0 && self.rest.is_empty() {
            return Ok(MatValue::Numeric(NumericArray {
                class,
                logical: self.logical,
                dims: self.dims.clone(),
                real: Vec::new(),
                imag: self.complex.then(Vec::new),
            }));
        }
        let (re, at) = self.part(ctx, 0, "real part")?;
        let real = self.values(ctx, &re, count)?;
        let imag = if self.complex {
            let (im, _) = self.part(ctx, at, "imaginary part")?;
            Some(self.values(ctx, &im, count)?)
        } else {
            None
        };
        Ok(MatValue::Numeric(NumericArray {
            class,
            logical: self.logical,
            dims: self.dims.clone(),
            real,
            imag,
        }))
    }

    fn part(&self, ctx: &Ctx, at: usize, what: &str) -> Result<(Element<'a>, usize)> {
        if at >= self.rest.len() {
            return Err(ctx.err(format!("array `{}` lacks its {what}", self.name)));
        }
        element(ctx, self.rest, at)
    }

    /// Numeric data stored as any numeric type (MATLAB narrows it to save space).
    fn values(&self, ctx: &Ctx, el: &Element, count: usize) -> Result<Vec<f64>> {
        let size = match el.ty {
            MI_INT8 | MI_UINT8 => 1,
            MI_INT16 | MI_UINT16 => 2,
            MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
            MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
            ty => {
                return Err(ctx.err(format!(
                    "array `{}` stores numbers as data type `{ty}`",
                    self.name
                )))
            }
        };
        if el.data.len() % size != 0 || el.data.len() / size != count {
            return Err(ctx.err(format!(
                "array `{}` of dimensions `{:?}` holds `{}` bytes of data type `{}`",
                self.name,
                self.dims,
                el.data.len(),
                el.ty
            )));
        }
        let to_f64 = |c: &[u8]| -> f64 {
            let u = ctx.uint(c);
            // Truncating casts reinterpret the stored width's bits.
            match el.ty {
                MI_INT8 => f64::from(u as u8 as i8),
                MI_UINT8 => u as f64,
                MI_INT16 => f64::from(u as u16 as i16),
                MI_UINT16 => u as f64,
                MI_INT32 => f64::from(u as u32 as i32),
                MI_UINT32 => u as f64,
                MI_SINGLE => f64::from(f32::from_bits(u as u32)),
                MI_DOUBLE => f64::from_bits(u),
                MI_INT64 => u as i64 as f64,
                _ => u as f64,
            }
        };
        Ok(el.data.chunks_exact(size).map(to_f64).collect())
    }

    fn chars(&self, ctx: &Ctx) -> Result<MatValue> {
        let count = self.count(ctx)?;
        let chars: Vec<char> = if self.rest.is_empty() && count == 0 {
            Vec::new()
        } else {
            let (el, _) = self.part(ctx, 0, "characters")?;
            let units = |size: usize| -> Vec<u32> {
                el.data
                    .chunks_exact(size)
                    .map(|c| ctx.uint(c) as u32)
                    .collect()
            };
            let to_char = |u: u32| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER);
            match el.ty {
                MI_UTF8 => String::from_utf8_lossy(el.data).chars().collect(),
                // Latin-1, as MATLAB writes 8-bit text.
                MI_INT8 | MI_UINT8 => el.data.iter().map(|&c| char::from(c)).collect(),
                MI_UINT16 | MI_UTF16 => units(2).into_iter().map(to_char).collect(),
                MI_UINT32 | MI_UTF32 | MI_INT32 => units(4).into_iter().map(to_char).collect(),
                ty => {
                    return Err(ctx.err(format!(
                        "char array `{}` stores characters as data type `{ty}`",
                        self.name
                    )))
                }
            }
        };
        if chars.len() != count {
            return Err(ctx.err(format!(
                "char array `{}` of dimensions `{:?}` holds `{}` characters",
                self.name,
                self.dims,
                chars.len()
            )));
        }
        Ok(MatValue::Char(CharArray {
            dims: self.dims.clone(),
            chars,
        }))
    }

    fn cell(&self, ctx: &Ctx, depth: usize) -> Result<MatValue> {
        let count = self.count(ctx)?;
        let mut items = Vec::new();
        let mut at = 0;
        for k in 0..count {
            let (value, next) = self.child(ctx, at, depth, || format!("cell `{k}`"))?;
            items.push(value);
            at = next;
        }
        Ok(MatValue::Cell(CellArray {
            dims: self.dims.clone(),
            items,
        }))
    }

    fn structure(&self, ctx: &Ctx, depth: usize) -> Result<MatValue> {
        let count = self.count(ctx)?;
        let (len_el, at) = self.part(ctx, 0, "field name length")?;
        if len_el.ty != MI_INT32 || len_el.data.len() != 4 {
            return Err(ctx.err(format!(
                "struct `{}` field name length has type `{}`",
                self.name, len_el.ty
            )));
        }
        let d = len_el.data;
        let name_len = ctx.u32([d[0], d[1], d[2], d[3]]) as usize;
        let (names_el, mut at) = self.part(ctx, at, "field names")?;
        let fields: Vec<String> = if names_el.data.is_empty() {
            Vec::new()
        } else if name_len == 0 || names_el.data.len() % name_len != 0 {
            return Err(ctx.err(format!(
                "struct `{}` has `{}` bytes of field names of length `{name_len}`",
                self.name,
                names_el.data.len()
            )));
        } else {
            names_el
                .data
                .chunks_exact(name_len)
                .map(|c| {
                    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..end]).into_owned()
                })
                .collect()
        };
        let mut values: Vec<Vec<MatValue>> = vec![Vec::new(); fields.len()];
        if !fields.is_empty() {
            for e in 0..count {
                for (f, field) in fields.iter().enumerate() {
                    let (value, next) =
                        self.child(ctx, at, depth, || format!("element `{e}` field `{field}`"))?;
                    values[f].push(value);
                    at = next;
                }
            }
        }
        Ok(MatValue::Struct(StructArray {
            dims: self.dims.clone(),
            fields,
            values,
        }))
    }

    fn child(
        &self,
        ctx: &Ctx,
        at: usize,
        depth: usize,
        what: impl Fn() -> String,
    ) -> Result<(MatValue, usize)> {
        if at >= self.rest.len() {
            return Err(ctx.err(format!("`{}` lacks {}", self.name, what())));
        }
        let (el, next) = element(ctx, self.rest, at)?;
        if el.ty != MI_MATRIX {
            return Err(ctx.err(format!(
                "`{}` {} has data type `{}`, not a matrix",
                self.name,
                what(),
                el.ty
            )));
        }
        let (_, value) = Matrix::header(ctx, el.data)?.decode(ctx, depth + 1)?;
        Ok((value, next))
    }
}

// ----- writing --------------------------------------------------------------------------------

/// Writes `labels` as a MAT-file level 5 (uncompressed) holding `classlabel`, an N×1 double
/// matrix, as the BCI Competition `A0xE.mat` files do. Written to a temporary name and renamed.
pub fn write_classlabel(path: &Path, labels: &[u8]) -> Result<()> {
    let values: Vec<f64> = labels.iter().map(|&l| f64::from(l)).collect();
    let bytes = encode_double_column("classlabel", &values)?;
    write_atomic(path, &bytes)
}

/// A little-endian MAT-file with one real double N×1 variable.
fn encode_double_column(name: &str, values: &[f64]) -> Result<Vec<u8>> {
    // The matrix element's byte count is a u32: 8 bytes per value plus 64 of sub-element tags.
    let n = i32::try_from(values.len())
        .ok()
        .filter(|&n| (n as u64) * 8 + 64 <= u64::from(u32::MAX))
        .ok_or_else(|| {
            Error::Invalid(format!("`{}` values do not fit a MAT-file", values.len()))
        })?;
    let mut out = Vec::with_capacity(256 + 8 * values.len());
    let mut text = b"MATLAB 5.0 MAT-file, written by bciops".to_vec();
    text.resize(116, b' ');
    out.extend_from_slice(&text);
    out.extend_from_slice(&[0; 8]); // no subsystem data
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");

    let mut body = Vec::new();
    tag(&mut body, MI_UINT32, 8);
    body.extend_from_slice(&u32::from(MX_DOUBLE).to_le_bytes());
    body.extend_from_slice(&[0; 4]);
    tag(&mut body, MI_INT32, 8);
    body.extend_from_slice(&n.to_le_bytes());
    body.extend_from_slice(&1i32.to_le_bytes());
    tag(&mut body, MI_INT8, name.len());
    body.extend_from_slice(name.as_bytes());
    body.resize(body.len().next_multiple_of(8), 0);
    tag(&mut body, MI_DOUBLE, 8 * values.len());
    for v in values {
        body.extend_from_slice(&v.to_le_bytes());
    }
    tag(&mut out, MI_MATRIX, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

fn tag(out: &mut Vec<u8>, ty: u32, len: usize) {
    out.extend_from_slice(&ty.to_le_bytes());
    // Callers pass sizes bounded by the element count check.
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

#[cfg(test)]
mod tests;
