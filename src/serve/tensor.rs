//! Request bodies decoded into one flat batch of trials: nested JSON arrays (the original's
//! `/classify` payload and V2 `data`), little-endian f32 bytes, and `.npy` files. Decoding
//! only: the shape is checked against the model by [`Trials::check`], and the model
//! predicts ([`crate::model::artifact::ModelFile::predict_raw_batch`]).
//!
//! Number parsing dominates a JSON request (the original's payload is 16 500 numbers of up to
//! 17 digits, 330 KB), so `/classify` bodies go through [`scan`], a scanner for exactly this
//! shape of JSON that reads each number with [`number`] (lexical-core: the JSON grammar
//! checked and the value converted in one pass, correctly rounded); V2 bodies, a JSON object around the tensor, go
//! through serde_json with a visitor that writes numbers straight into one flat `Vec<f64>`
//! and checks that the nesting is rectangular as it goes. Both give the same bits (tested).
//! Every decoder refuses non-finite values, once (see [`Trials::finite`]).

use std::fmt;

use bytes::Bytes;
use ndarray::{ArrayView2, ArrayView3};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::dataset::npy::NpyHeader;
use crate::error::{Error, Result};
use crate::model::artifact::ModelFile;

/// A batch of trials, trials × channels × samples, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Trials {
    pub n: usize,
    pub channels: usize,
    pub samples: usize,
    pub data: Vec<f64>,
}

impl Trials {
    /// From a flat buffer and a shape of rank 3, or rank 2 for a single trial.
    pub fn from_shape(shape: &[usize], data: Vec<f64>) -> Result<Self> {
        let (n, channels, samples) = match *shape {
            [n, c, s] => (n, c, s),
            [c, s] => (1, c, s),
            _ => {
                return Err(Error::Data(format!(
                    "shape `{shape:?}` is not trials × channels × samples"
                )))
            }
        };
        if n.checked_mul(channels).and_then(|x| x.checked_mul(samples)) != Some(data.len()) {
            return Err(Error::Data(format!(
                "shape `{shape:?}` does not match the {} values given",
                data.len()
            )));
        }
        Ok(Trials {
            n,
            channels,
            samples,
            data,
        })
    }

    pub fn trial(&self, i: usize) -> ArrayView2<'_, f64> {
        let per = self.channels * self.samples;
        ArrayView2::from_shape((self.channels, self.samples), &self.data[i * per..][..per])
            .expect("a slice of channels × samples")
    }

    /// The batch as trials × channels × samples, for the model.
    pub fn view(&self) -> ArrayView3<'_, f64> {
        ArrayView3::from_shape((self.n, self.channels, self.samples), &self.data)
            .expect("n × channels × samples values, checked by `from_shape`")
    }

    /// Refuses a batch the model cannot take, naming the first problem. The values are not
    /// looked at: each decoder has refused non-finite ones already (see [`Trials::finite`]).
    pub fn check(&self, model: &ModelFile) -> Result<()> {
        let (c, s) = model.trial_shape();
        if self.n == 0 {
            return Err(Error::Data("no trials in the request".into()));
        }
        if self.channels != c {
            return Err(Error::Data(format!(
                "trials have `{}` channels but the model takes {c}",
                self.channels
            )));
        }
        if self.samples != s {
            return Err(Error::Data(format!(
                "trials have `{}` samples but the model takes {s}",
                self.samples
            )));
        }
        Ok(())
    }

    /// Refuses a non-finite value, naming where it is. The one finiteness check of a request:
    /// the binary, `.npy` and V2 decoders end with it (a float32 can be NaN or infinite, and
    /// so can a V2 FP32 value once narrowed), and the `/classify` JSON scanner refuses an
    /// out-of-range number as it parses it. The model then trusts the values
    /// ([`ModelFile::predict_raw_batch`]).
    pub fn finite(self) -> Result<Self> {
        if let Some(i) = self.data.iter().position(|v| !v.is_finite()) {
            let per = self.channels * self.samples;
            return Err(Error::Data(format!(
                "trial {} channel {} sample {} is `{}`: values must be finite",
                i / per,
                i % per / self.samples,
                i % self.samples,
                self.data[i]
            )));
        }
        Ok(self)
    }
}

/// A nested JSON array of numbers, flattened: `data` in row-major order and its `shape`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Nested {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Nested {
    /// The `/classify` body, read by [`scan`]: strict JSON whose value must be nested arrays
    /// of numbers.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        replay(bytes, vec![tokenize(bytes, 0, bytes.len())]).map_err(not_json)
    }

    /// [`Nested::from_json`], reading a large body in `threads` pieces at once: all but the
    /// first are handed to `spawn`, which runs them on other threads.
    pub fn from_json_on(bytes: &Bytes, threads: usize, spawn: Spawn) -> Result<Self> {
        scan(bytes, threads, spawn).map_err(not_json)
    }

    pub fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut b = Builder::default();
        Level {
            b: &mut b,
            depth: 0,
        }
        .deserialize(d)?;
        Ok(b.finish())
    }
}

fn not_json(e: String) -> Error {
    Error::Data(format!("the body is not a JSON array of numbers: {e}"))
}

/// Runs a job on another thread: the server's blocking pool, or a new thread.
pub type Spawn<'a> = &'a (dyn Fn(Box<dyn FnOnce() + Send>) + Sync);

impl<'de> serde::Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Nested::deserialize_from(d)
    }
}

/// Deepest nesting the scanner accepts (a trial batch needs 3); bounds its stack.
const MAX_DEPTH: usize = 32;

/// Bodies smaller than this are never split across threads: the hand-off would cost more.
const SPLIT_MIN_BYTES: usize = 64 * 1024;

/// A JSON scanner for nested arrays of numbers, nothing else, in two steps. First the bytes
/// become a tape: numbers parsed straight into a flat buffer ([`number`], correctly
/// rounded) and, between runs of numbers, the brackets and commas. Then the tape is replayed
/// through the grammar, checking that the nesting is rectangular and finding the shape.
/// The first step is almost all of the cost and needs no context, so with `threads` > 1 a
/// large body is cut at commas into that many pieces read at once; the replay joins them.
/// Iterative, so deep nesting cannot overflow the stack.
///
/// On the original's payload (16 500 numbers of up to 17 digits) one thread takes about
/// 400 µs, against 581 µs with the standard library's float parser on each token and 662 µs
/// for serde_json with the flattening visitor (`cargo bench --bench serve_json`; measured with
/// the hand-written number parser that lexical-core replaced at equal speed, see [`number`]).
pub fn scan(bytes: &Bytes, threads: usize, spawn: Spawn) -> std::result::Result<Nested, String> {
    if threads > 1 && bytes.len() >= SPLIT_MIN_BYTES {
        scan_pieces(bytes, &cut_at_commas(bytes, threads), spawn)
    } else {
        replay(bytes, vec![tokenize(bytes, 0, bytes.len())])
    }
}

/// Tokenizes `bytes[cuts[i]..cuts[i + 1]]` for each `i`, the first on this thread and the
/// others through `spawn`, then replays the tapes in order. A piece whose job never reports
/// back (dropped, or panicked) is read here instead.
fn scan_pieces(bytes: &Bytes, cuts: &[usize], spawn: Spawn) -> std::result::Result<Nested, String> {
    let pieces = cuts.len() - 1;
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, w) in cuts.windows(2).enumerate().skip(1) {
        let (tx, bytes, a, b) = (tx.clone(), bytes.clone(), w[0], w[1]);
        spawn(Box::new(move || {
            let _ = tx.send((i, tokenize(&bytes, a, b)));
        }));
    }
    drop(tx);
    let mut tapes: Vec<Option<Tape>> = (0..pieces).map(|_| None).collect();
    tapes[0] = Some(tokenize(bytes, cuts[0], cuts[1]));
    for (i, tape) in rx {
        tapes[i] = Some(tape);
    }
    let tapes = tapes
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|| tokenize(bytes, cuts[i], cuts[i + 1])))
        .collect();
    replay(bytes, tapes)
}

/// `0`, up to `pieces - 1` positions of commas near equal fractions of the body, and its
/// length. Outside strings (which this grammar has none of) a comma never sits inside a token.
fn cut_at_commas(s: &[u8], pieces: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for k in 1..pieces {
        let from = (s.len() * k / pieces).max(*cuts.last().unwrap_or(&0) + 1);
        if let Some(at) = s
            .get(from..)
            .and_then(|r| r.iter().position(|&c| c == b','))
        {
            cuts.push(from + at);
        }
    }
    cuts.push(s.len());
    cuts
}

/// What the tokenizer found, in order; positions are byte offsets in the whole body.
#[derive(Debug)]
enum Token {
    Open(usize),
    Close(usize),
    Comma(usize),
    /// A run of `count` numbers separated by commas, starting at the position.
    Numbers(usize, usize),
    /// A byte no token starts with: the replay says what it expected there.
    Unexpected(usize),
    /// A malformed or out-of-range number, at the position.
    Bad(usize, String),
}

/// One piece of the body, tokenized: `tokens`, and the numbers of its runs in `data`.
struct Tape {
    tokens: Vec<Token>,
    data: Vec<f64>,
}

/// The number format of lexical-core that is JSON's, `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`
/// (Rust's own parser would also take `+1`, `.5`, `1.`, `inf` and `NaN`).
const JSON_NUMBER: u128 = lexical_core::format::JSON;
const NUMBER_OPTIONS: lexical_core::ParseFloatOptions = lexical_core::ParseFloatOptions::new();

/// The JSON number starting at `start`, correctly rounded, and the byte after it.
///
/// Number parsing dominates a `/classify` request. lexical-core checks the grammar and
/// converts (Clinger's fast path, then Eisel-Lemire) in one pass. It replaced a hand-written
/// parser of the same design (`decimal.rs` and a generated 660-line table of powers of five)
/// when `cargo bench --bench serve_json -- numbers` measured the two equal on the
/// original's payload (16 500 numbers: 875.6 vs 880.3 µs, then 895.1 vs 895.4 µs, on a
/// loaded 2-core VM). fast-float2 was 12-26 % faster (646.1, 779.8 µs) but is not a JSON
/// parser: it takes `inf`, `+1`, `.5` and `01`, so a second pass over each token would have
/// to check the grammar; the standard library on the token took 1.49-1.62 ms.
fn number(s: &[u8], start: usize) -> std::result::Result<(f64, usize), String> {
    match lexical_core::parse_partial_with_options::<f64, JSON_NUMBER>(&s[start..], &NUMBER_OPTIONS)
    {
        Ok((v, n)) => Ok((v, start + n)),
        Err(_) => {
            // The bytes a number could be made of, not lexical-core's error position: that
            // can be the byte after the token, which a piece of a body cut at a comma lacks,
            // and a body must fail the same whole or in pieces.
            let len = s[start..]
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            let token = String::from_utf8_lossy(&s[start..start + len]);
            Err(format!("bad number `{token}` at byte {start}"))
        }
    }
}

/// Tokens of `s[start..end]`; stops at the first byte that cannot start one.
fn tokenize(s: &[u8], start: usize, end: usize) -> Tape {
    let s = &s[..end];
    // Each number is at least two bytes with its separator.
    let mut tape = Tape {
        tokens: Vec::new(),
        data: Vec::with_capacity((end - start) / 2 / 8),
    };
    let mut pos = skip_ws(s, start);
    while let Some(&c) = s.get(pos) {
        let token = match c {
            b'[' => Token::Open(pos),
            b']' => Token::Close(pos),
            b',' => Token::Comma(pos),
            b'-' | b'0'..=b'9' => {
                // A run of numbers in this inner loop: `,` and the next number without a
                // token each.
                let first = pos;
                let mut count = 0;
                loop {
                    let (v, end) = match number(s, pos) {
                        Ok((v, end)) if v.is_finite() => (v, end),
                        Ok((_, end)) => {
                            let text = String::from_utf8_lossy(&s[pos..end]);
                            let message = format!("number `{text}` is out of range");
                            bad(&mut tape, first, count, pos, message);
                            return tape;
                        }
                        Err(e) => {
                            bad(&mut tape, first, count, pos, e);
                            return tape;
                        }
                    };
                    tape.data.push(v);
                    count += 1;
                    pos = skip_ws(s, end);
                    if s.get(pos) != Some(&b',') {
                        break;
                    }
                    let next = skip_ws(s, pos + 1);
                    match s.get(next) {
                        Some(b'-' | b'0'..=b'9') => pos = next,
                        _ => break,
                    }
                }
                tape.tokens.push(Token::Numbers(first, count));
                continue;
            }
            _ => {
                tape.tokens.push(Token::Unexpected(pos));
                return tape;
            }
        };
        tape.tokens.push(token);
        pos = skip_ws(s, pos + 1);
    }
    tape
}

/// Ends a tape at a bad number: the run so far, then the error.
fn bad(tape: &mut Tape, first: usize, count: usize, at: usize, message: String) {
    if count > 0 {
        tape.tokens.push(Token::Numbers(first, count));
    }
    tape.tokens.push(Token::Bad(at, message));
}

/// The grammar over the tokens of every piece in order: nested arrays of numbers, the same
/// extent for every array at one depth, numbers at one depth only.
fn replay(s: &[u8], tapes: Vec<Tape>) -> std::result::Result<Nested, String> {
    let mut b = Builder::default();
    let total: usize = tapes.iter().map(|t| t.data.len()).sum();
    // Elements seen so far in each open array; its length is the current depth.
    let mut open: Vec<usize> = Vec::new();
    // After `[` a value or `]`; after a value `,` or `]`; after `,` a value.
    #[derive(PartialEq)]
    enum Want {
        ValueOrClose,
        CommaOrClose,
        Value,
    }
    let mut want = Want::Value;
    let mut closed = false;
    let found = |pos: usize| String::from_utf8_lossy(&s[pos..(pos + 12).min(s.len())]).into_owned();
    for tape in tapes {
        for token in tape.tokens {
            if closed {
                let pos = match token {
                    Token::Open(p)
                    | Token::Close(p)
                    | Token::Comma(p)
                    | Token::Unexpected(p)
                    | Token::Numbers(p, _)
                    | Token::Bad(p, _) => p,
                };
                return Err(format!("trailing characters at byte {pos}"));
            }
            match token {
                Token::Close(_) if want != Want::Value => {
                    let n = open.pop().unwrap_or_default();
                    let depth = open.len();
                    match b.dims[depth] {
                        None => b.dims[depth] = Some(n),
                        Some(m) if m != n => {
                            return Err(format!(
                            "ragged array: {n} elements at depth {depth} where another array has {m}"
                        ))
                        }
                        Some(_) => {}
                    }
                    match open.last_mut() {
                        Some(count) => *count += 1,
                        None => closed = true,
                    }
                    want = Want::CommaOrClose;
                }
                Token::Comma(_) if want == Want::CommaOrClose => want = Want::Value,
                Token::Open(_) if want != Want::CommaOrClose => {
                    let depth = open.len();
                    if let Some(leaf) = b.leaf.filter(|&leaf| depth >= leaf) {
                        return Err(format!(
                            "ragged array: an array at depth {depth} where numbers sit at depth {leaf}"
                        ));
                    }
                    if depth >= MAX_DEPTH {
                        return Err(format!("arrays nested deeper than {MAX_DEPTH}"));
                    }
                    if b.dims.len() <= depth {
                        b.dims.resize(depth + 1, None);
                    }
                    open.push(0);
                    want = Want::ValueOrClose;
                }
                Token::Numbers(_, count) if want != Want::CommaOrClose => {
                    let depth = open.len();
                    if depth == 0 {
                        return Err("expected an array, found a number".to_owned());
                    }
                    match b.leaf {
                        None => b.leaf = Some(depth),
                        Some(leaf) if leaf != depth => {
                            return Err(format!(
                            "ragged array: a number at depth {depth} where numbers sit at depth {leaf}"
                        ))
                        }
                        Some(_) => {}
                    }
                    if let Some(open) = open.last_mut() {
                        *open += count;
                    }
                    want = Want::CommaOrClose;
                }
                Token::Bad(_, message) => return Err(message),
                Token::Open(pos)
                | Token::Close(pos)
                | Token::Comma(pos)
                | Token::Numbers(pos, _)
                | Token::Unexpected(pos) => {
                    let what = match want {
                        Want::CommaOrClose => "`,` or `]`",
                        Want::ValueOrClose => "a number, `[` or `]`",
                        Want::Value if open.is_empty() => "an array",
                        Want::Value => "a number or `[`",
                    };
                    return Err(format!(
                        "expected {what} at byte {pos}, found `{}`",
                        found(pos)
                    ));
                }
            }
        }
        if b.data.is_empty() {
            // The first piece's buffer becomes the result: one copy fewer.
            b.data = tape.data;
            b.data.reserve_exact(total - b.data.len());
        } else {
            b.data.extend_from_slice(&tape.data);
        }
    }
    if !closed {
        return Err(if open.is_empty() {
            "empty body".to_owned()
        } else {
            format!(
                "unexpected end after {} bytes: {} array(s) not closed",
                s.len(),
                open.len()
            )
        });
    }
    Ok(b.finish())
}

fn skip_ws(s: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = s.get(pos) {
        pos += 1;
    }
    pos
}

#[derive(Default)]
struct Builder {
    data: Vec<f64>,
    /// The extent of each nesting level, fixed by the first array that closes at that level.
    dims: Vec<Option<usize>>,
    /// The depth numbers sit at, fixed by the first number.
    leaf: Option<usize>,
}

impl Builder {
    fn finish(self) -> Nested {
        let shape = self.dims.iter().map(|d| d.unwrap_or(0)).collect();
        if self.dims.iter().any(|d| d.is_none()) || self.leaf.is_none() && !self.dims.is_empty() {
            // Only empty arrays somewhere: the inner extent is unknown.
            return Nested {
                shape,
                data: Vec::new(),
            };
        }
        Nested {
            shape,
            data: self.data,
        }
    }
}

struct Level<'a> {
    b: &'a mut Builder,
    depth: usize,
}

impl Level<'_> {
    fn number<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.b.leaf {
            None => self.b.leaf = Some(self.depth),
            Some(d) if d != self.depth => {
                return Err(E::custom(format!(
                    "ragged array: a number at depth {} where numbers sit at depth {d}",
                    self.depth
                )))
            }
            Some(_) => {}
        }
        if self.depth == 0 {
            return Err(E::custom("expected an array, found a number"));
        }
        self.b.data.push(v);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an array of numbers")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth;
        if let Some(leaf) = self.b.leaf {
            if depth >= leaf {
                return Err(de::Error::custom(format!(
                    "ragged array: an array at depth {depth} where numbers sit at depth {leaf}"
                )));
            }
        }
        if self.b.dims.len() <= depth {
            self.b.dims.resize(depth + 1, None);
        }
        // Reserve once the inner extent is known: avoids regrowing the flat buffer.
        if let Some(hint) = seq.size_hint() {
            self.b.data.reserve(hint);
        }
        let mut n = 0usize;
        while seq
            .next_element_seed(Level {
                b: &mut *self.b,
                depth: depth + 1,
            })?
            .is_some()
        {
            n += 1;
        }
        match self.b.dims[depth] {
            None => self.b.dims[depth] = Some(n),
            Some(m) if m != n => {
                return Err(de::Error::custom(format!(
                    "ragged array: {n} elements at depth {depth} where another array has {m}"
                )))
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// Little-endian f32 values (`application/octet-stream`). `shape` may be omitted, or give
/// only channels × samples: the trial count then follows from the length.
pub fn from_f32_le(bytes: &[u8], shape: Option<&[usize]>, model: &ModelFile) -> Result<Trials> {
    if bytes.len() % 4 != 0 {
        return Err(Error::Data(format!(
            "a body of `{}` bytes is not a whole number of f32 values",
            bytes.len()
        )));
    }
    let data: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let (c, s) = model.trial_shape();
    let shape = match shape {
        Some(sh) if sh.len() == 3 => sh.to_vec(),
        Some(sh) if sh.len() == 2 => {
            let per = sh[0].saturating_mul(sh[1]).max(1);
            vec![data.len() / per, sh[0], sh[1]]
        }
        Some(sh) => {
            return Err(Error::Data(format!(
                "shape `{sh:?}` is not trials × channels × samples"
            )))
        }
        None => vec![data.len() / (c * s).max(1), c, s],
    };
    Trials::from_shape(&shape, data)?.finite()
}

/// Parses `N,C,S` (or `C,S`) from a header or query value.
pub fn parse_shape(text: &str) -> Result<Vec<usize>> {
    text.split([',', 'x', '×'])
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| Error::Data(format!("shape `{text}` is not like `1,22,750`")))
        })
        .collect()
}

/// A NumPy `.npy` file (`application/x-npy`) of float32 or float64, rank 3 or 2.
///
/// The header's shape must account for exactly the bytes of the body before anything is
/// allocated from it ([`NpyHeader::check_len`]): ndarray-npy allocates the array from the
/// header alone, and an allocation of petabytes aborts the server.
pub fn from_npy(bytes: &[u8]) -> Result<Trials> {
    use ndarray::ArrayD;
    use ndarray_npy::ReadNpyExt;
    let bad = |e: String| {
        Error::Data(format!(
            "the body is not a float32 or float64 .npy array: {e}"
        ))
    };
    let header = NpyHeader::parse(bytes).map_err(bad)?;
    header
        .check_len((bytes.len() - header.header_len) as u64)
        .map_err(bad)?;
    let wide = match header.descr.trim_start_matches(['<', '>', '=']) {
        "f4" => false,
        "f8" => true,
        other => return Err(bad(format!("dtype `{other}` is not float32 or float64"))),
    };
    let read = |e: ndarray_npy::ReadNpyError| bad(e.to_string());
    let (shape, data) = if wide {
        let a = ArrayD::<f64>::read_npy(bytes).map_err(read)?;
        (a.shape().to_vec(), a.iter().copied().collect())
    } else {
        let a = ArrayD::<f32>::read_npy(bytes).map_err(read)?;
        let data = a.iter().map(|&v| f64::from(v)).collect();
        (a.shape().to_vec(), data)
    };
    Trials::from_shape(&shape, data)?.finite()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_is_flattened_with_its_shape() {
        let n =
            Nested::from_json(b"[[[1, 2.5, -3], [4, 5, 6]], [[7, 8, 9], [1e3, 0, 0]]]").unwrap();
        assert_eq!(n.shape, vec![2, 2, 3]);
        assert_eq!(n.data[1], 2.5);
        assert_eq!(n.data[9], 1000.0);
        let flat = Nested::from_json(b"[1, 2, 3]").unwrap();
        assert_eq!(flat.shape, vec![3]);
    }

    #[test]
    fn ragged_or_mistyped_json_is_refused() {
        for bad in [
            &b"[[[1, 2], [3]]]"[..],
            b"[[1, 2], 3]",
            b"[1, [2]]",
            b"[[\"a\"]]",
            b"3",
            b"[[1, 2]] x",
            b"[[1, NaN]]",
            b"[[1e999]]",
        ] {
            let e = Nested::from_json(bad).unwrap_err();
            assert!(
                e.to_string().contains("JSON"),
                "{}: {e}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn scanner_is_strict_json() {
        for bad in [
            &b""[..],
            b"[1,]",
            b"[,1]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[+1]",
            b"[-]",
            b"[1e]",
            b"[1e+]",
            b"[[1] [2]]",
            b"[1",
            b"[1]]",
            b"[Infinity]",
            b"[-1e400]",
            b"[true]",
            b"[[1, 2], [3, 4]],",
            b"\xff[1]",
        ] {
            let e = Nested::from_json(bad).unwrap_err().to_string();
            assert!(e.contains("JSON"), "{}: {e}", String::from_utf8_lossy(bad));
        }
        // Deep nesting is an error, not a stack overflow.
        let deep = "[".repeat(100_000);
        let e = Nested::from_json(deep.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("deeper than 32"), "{e}");
        // Whitespace anywhere JSON allows it, exponents, negative zero, empty arrays.
        let n = Nested::from_json(b" \n[ [ -0.0 ,1E2,\t2e-3 , 5 ] ]\r\n").unwrap();
        assert_eq!(
            (n.shape, n.data),
            (vec![1, 4], vec![-0.0, 100.0, 0.002, 5.0])
        );
        assert!(n_is_sign_negative(&Nested::from_json(b"[-0.0]").unwrap()));
        let empty = Nested::from_json(b"[[], []]").unwrap();
        assert_eq!((empty.shape, empty.data.len()), (vec![2, 0], 0));
    }

    #[test]
    fn a_body_cut_at_any_commas_reads_the_same_as_whole() {
        let bodies: &[&[u8]] = &[
            b"[[[1, 2.5, -3], [4, 5, 6]], [[7, 8, 9], [1e3, 0, 0]]]",
            b" [ [ -0.0 ,1E2,\t2e-3 , 5 ] , [1,2,3,4]]\r\n",
            b"[[1, 2], [3]]",
            b"[[1, 2], 3]",
            b"[1, [2]]",
            b"[[1, 2]], [3]",
            b"[[1,2],[3,x]]",
            b"[[1,2],[3,1e999]]",
            b"[[1,2],[3,01]]",
            b"[[1,2],,[3,4]]",
            b"[[1,2],[3,4],]",
            b"[[1,2] [3,4]]",
            b"[[1,2],[3,4]",
            b"[[],[],[]]",
            b"[[1,2],[3,4]],",
            b"[[1.,2],[3,4]]",
        ];
        let outcome = |r: std::result::Result<Nested, String>| {
            r.map(|n| {
                (
                    n.shape,
                    n.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
        };
        let threads: Spawn = &|job| {
            std::thread::spawn(job);
        };
        for body in bodies {
            let body = &Bytes::copy_from_slice(body);
            let whole = outcome(Nested::from_json(body).map_err(|e| e.to_string()));
            let commas: Vec<usize> = (0..body.len()).filter(|&i| body[i] == b',').collect();
            for (i, &a) in commas.iter().enumerate() {
                let two = outcome(
                    scan_pieces(body, &[0, a, body.len()], threads)
                        .map_err(not_json)
                        .map_err(|e| e.to_string()),
                );
                assert_eq!(two, whole, "{} cut at {a}", String::from_utf8_lossy(body));
                for &b in &commas[i + 1..] {
                    let three = outcome(
                        scan_pieces(body, &[0, a, b, body.len()], threads)
                            .map_err(not_json)
                            .map_err(|e| e.to_string()),
                    );
                    assert_eq!(
                        three,
                        whole,
                        "{} cut at {a}, {b}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
        }
        // A large body really is cut, at commas only, and reads the same on 1 to 5 threads.
        let row = (0..750).map(|i| format!("{}", f64::from(i as f32 * 0.37 - 99.1)));
        let row = format!("[{}]", row.collect::<Vec<_>>().join(", "));
        let body = Bytes::from(format!("[[{}]]", vec![row; 22].join(",\n")));
        let whole = outcome(scan(&body, 1, threads));
        for n in 2..=5 {
            let cuts = cut_at_commas(&body, n);
            assert_eq!(cuts.len(), n + 1, "{cuts:?}");
            assert!(cuts[1..n].iter().all(|&c| body[c] == b','));
            assert_eq!(outcome(scan(&body, n, threads)), whole);
        }
        // A spawner that drops its jobs: the pieces are read on the calling thread.
        assert_eq!(outcome(scan(&body, 3, &|_job| {})), whole);
        assert_eq!(whole.unwrap().0, vec![1, 22, 750]);
    }

    fn n_is_sign_negative(n: &Nested) -> bool {
        n.data[0].is_sign_negative()
    }

    #[test]
    fn scanner_and_serde_json_agree_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        // Numbers as Python writes float32 data (shortest repr of the float64), and harder
        // ones: 17+ digits, tiny and huge exponents, halfway cases of random mantissas.
        let mut texts = Vec::new();
        for i in 0..20_000 {
            let v: f64 = match i % 4 {
                0 => f64::from(rng.gen_range(-200.0f32..200.0)),
                1 => rng.gen_range(-1.0..1.0) * 10f64.powi(rng.gen_range(-300..300)),
                2 => f64::from_bits(rng.gen::<u64>() >> 2),
                _ => rng.gen_range(-1e6..1e6),
            };
            texts.push(if i % 8 == 7 {
                format!("{v:e}")
            } else {
                format!("{v}")
            });
            texts.push(format!(
                "{}{}",
                rng.gen_range(1..10),
                rng.gen_range(0..u64::MAX)
            ));
            texts.push(format!(
                "0.{:019}",
                rng.gen::<u64>() % 10_000_000_000_000_000_000
            ));
        }
        let body = format!("[[{}]]", texts.join(","));
        let scanned = Nested::from_json(body.as_bytes()).unwrap();
        let mut de = serde_json::Deserializer::from_slice(body.as_bytes());
        let visited = Nested::deserialize_from(&mut de).unwrap();
        assert_eq!(scanned.shape, visited.shape);
        let bits = |n: &Nested| n.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&scanned), bits(&visited));
    }

    #[test]
    fn shapes_parse_and_must_match() {
        assert_eq!(parse_shape("2, 22,750").unwrap(), vec![2, 22, 750]);
        assert!(parse_shape("2;3").is_err());
        assert!(Trials::from_shape(&[2, 2, 2], vec![0.0; 7]).is_err());
        assert!(Trials::from_shape(&[usize::MAX, 2, 2], vec![0.0; 8]).is_err());
        assert_eq!(Trials::from_shape(&[2, 3], vec![0.0; 6]).unwrap().n, 1);
    }
}

/// Bodies whose headers or shapes claim huge, zero or overflowing sizes (issue 16).
#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::testutil::{hostile_size, quick};
    use proptest::prelude::*;

    fn npy(descr: &str, dims: &[u64], data: usize) -> Vec<u8> {
        crate::dataset::npy::npy_claim(1, descr, dims, data)
    }

    #[test]
    fn the_192_byte_probe_is_a_data_error() {
        let body = npy("<f4", &[100_000_000_000, 22, 750], 64);
        assert_eq!(body.len(), 192);
        let e = from_npy(&body).unwrap_err();
        assert!(matches!(e, Error::Data(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the body is not a float32 or float64 .npy array: shape `(100000000000, 22, 750)` \
             of `<f4` needs `6600000000000000` bytes of data but `64` follow the header"
        );
        // float64 and big-endian bodies still read; other dtypes are named.
        let mut ok = npy(">f8", &[1, 2, 3], 0);
        ok.extend((0..6).flat_map(|v| f64::from(v).to_be_bytes()));
        assert_eq!(from_npy(&ok).unwrap().data[5], 5.0);
        let e = from_npy(&npy("<i8", &[1, 2, 3], 48))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype `i8` is not float32 or float64"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// An `.npy` body: an error, or trials of exactly the values the body holds.
        #[test]
        fn npy_bodies_with_hostile_shapes_are_errors_or_the_bytes_present(
            descr in prop::sample::select(vec!["<f4", "<f8", ">f4", "<i8"]),
            dims in prop::collection::vec(hostile_size(), 0..5),
            data in 0usize..1024,
        ) {
            let body = npy(descr, &dims, data);
            if let Ok(t) = quick("from_npy", || from_npy(&body)) {
                let item = if descr.ends_with('8') { 8 } else { 4 };
                prop_assert_eq!(t.data.len() * item, data);
                prop_assert_eq!(t.n * t.channels * t.samples, t.data.len());
            }
        }

        /// A shape given beside the values (V2 `shape`, `X-Tensor-Shape`) is checked with
        /// checked arithmetic against the values present.
        #[test]
        fn claimed_shapes_must_match_the_values_present(
            dims in prop::collection::vec(hostile_size(), 0..5),
            values in 0usize..64,
        ) {
            let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            if let Ok(t) = Trials::from_shape(&shape, vec![0.0; values]) {
                prop_assert_eq!(t.n.checked_mul(t.channels).and_then(|x| x.checked_mul(t.samples)), Some(values));
            }
            let text = dims.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            let _ = parse_shape(&text);
        }

        /// JSON bodies carry no sizes: whatever the bytes, an error or a rectangular array.
        #[test]
        fn json_bodies_never_panic(
            body in prop::collection::vec(prop::sample::select(b"[[[],,,0123456789.-e ".to_vec()), 0..400),
            threads in 1usize..4,
        ) {
            let body = Bytes::from(body);
            let spawn: Spawn = &|job| job();
            if let Ok(n) = quick("scan", || scan(&body, threads, spawn)) {
                let count = n.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                prop_assert!(count == Some(n.data.len()) || n.data.is_empty());
            }
        }
    }
}

/// The number parser, against the standard library bit for bit, and its grammar (kept from
/// the hand-written parser it replaced).
#[cfg(test)]
mod number_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn value(text: &str) -> Result<f64, String> {
        let s = text.as_bytes();
        let (v, end) = number(s, 0)?;
        assert_eq!(end, s.len(), "{text}: stopped at {end}");
        Ok(v)
    }

    fn same_as_std(text: &str) {
        let want: f64 = text.parse().unwrap();
        let got = value(text).unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text}: {got:e} vs {want:e}");
    }

    #[test]
    fn edge_cases_match_the_standard_library() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "0.0000000000000000000000000000001",
            "1",
            "9007199254740993",
            "9007199254740992.5",
            "16.117979049682617",
            "-0.17875055968761444",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9e-324",
            "1e-400",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
            "0.30000000000000004",
            "7.3177701707893310e15",
            "1e23",
            "8.988465674311579e307",
            "1E+2",
            "1e-0",
            "12345678901234567890",
            "1234567890123456789",
            "0.000000000000000000001234567890123456789",
            "1e99999999999",
            "1e-99999999999",
        ] {
            same_as_std(text);
        }
        // Halfway between two doubles: ties to even, both ways.
        same_as_std("9007199254740993"); // 2^53 + 1 → 2^53
        same_as_std("9007199254740995"); // 2^53 + 3 → 2^53 + 4
    }

    #[test]
    fn random_numbers_match_the_standard_library_bit_for_bit() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let mut texts = Vec::new();
        for _ in 0..100_000 {
            // Shortest reprs of float32 and float64 values, as Python and serde write them.
            texts.push(format!("{}", f64::from(rng.gen_range(-200.0f32..200.0))));
            let any = f64::from_bits(rng.gen::<u64>());
            if any.is_finite() {
                texts.push(format!("{any:e}"));
            }
            // Every exponent the table covers, with 1 to 19 random digits.
            let digits = rng.gen_range(1..=19u32);
            let m = rng.gen::<u64>() % 10u64.pow(digits);
            texts.push(format!("{m}e{}", rng.gen_range(-360..330)));
            // 17 significant digits (what `repr` of a float64 needs at most), and 26, which
            // only the slow path takes.
            let d = f64::from_bits(rng.gen_range(0x3000_0000_0000_0000u64..0x4800_0000_0000_0000));
            texts.push(format!("{d:.16e}"));
            texts.push(format!("{d:.25e}"));
        }
        for t in &texts {
            same_as_std(t);
            if !t.starts_with('-') {
                same_as_std(&format!("-{t}"));
            }
        }
    }

    #[test]
    fn exact_halfway_decimals_round_to_even() {
        // x.5 ulp written with all its digits: between 2^53 and 2^54 an ulp is 2, so odd
        // integers there are exact halfway points.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(6);
        for _ in 0..10_000 {
            let n = (1u64 << 53) + 2 * rng.gen_range(0..1u64 << 52) + 1;
            let k = rng.gen_range(0..10);
            same_as_std(&n.to_string());
            same_as_std(&(n << k).to_string());
            same_as_std(&format!("{}.{}e{}", n / 10, n % 10, 1));
        }
    }

    #[test]
    fn grammar_is_strict() {
        for bad in [
            "", "-", "+1", ".5", "1.", "1e", "1e+", "-.5", "inf", "NaN", "1.e3",
        ] {
            let s = bad.as_bytes();
            let whole = number(s, 0).map(|(_, end)| end == s.len());
            assert!(matches!(whole, Err(_) | Ok(false)), "{bad}: {whole:?}");
        }
        // A leading zero is refused (the hand-written parser stopped after it, and the scanner
        // then refused what followed).
        assert_eq!(number(b"01", 0), Err("bad number `01` at byte 0".into()));
        assert_eq!(number(b"[1.,", 1), Err("bad number `1.` at byte 1".into()));
        assert_eq!(number(b"[12.5e1]", 1), Ok((125.0, 7)));
    }
}
