//! Request bodies decoded into one flat batch of trials: nested JSON arrays (the original's
//! `/classify` payload and V2 `data`), little-endian f32 bytes, and `.npy` files.
//!
//! Number parsing dominates a JSON request (the original's payload is 16 500 numbers of up to
//! 17 digits, 330 KB), so `/classify` bodies go through [`scan`], a scanner for exactly this
//! shape of JSON that hands each number to the standard library's correctly rounded parser;
//! V2 bodies, a JSON object around the tensor, go through serde_json with a visitor that
//! writes numbers straight into one flat `Vec<f64>` and checks that the nesting is
//! rectangular as it goes. Both give the same bits (tested).

use std::fmt;

use ndarray::{Array2, Array3, ArrayView2};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::model::artifact::ModelFile;
use crate::signal::filter::{self, FilterMode};

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

    /// Refuses a batch the model cannot take, naming the first problem.
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
        if let Some(i) = self.data.iter().position(|v| !v.is_finite()) {
            let per = c * s;
            return Err(Error::Data(format!(
                "trial {} channel {} sample {} is `{}`: values must be finite",
                i / per,
                i % per / s,
                i % s,
                self.data[i]
            )));
        }
        Ok(())
    }
}

/// Class indices, and decision values (trials × machines) when `scores`.
pub fn infer(
    model: &ModelFile,
    trials: &Trials,
    scores: bool,
) -> Result<(Vec<usize>, Option<Array2<f64>>)> {
    trials.check(model)?;
    if !scores {
        let labels = (0..trials.n)
            .map(|i| model.predict_raw_trial(trials.trial(i)))
            .collect::<Result<Vec<_>>>()?;
        return Ok((labels, None));
    }
    // The same steps as `predict_raw_trial`, on the whole batch, to get decision values too.
    let mode: FilterMode = model.preprocessing.filter.mode.parse()?;
    let mut filtered = Array3::<f64>::zeros((trials.n, trials.channels, trials.samples));
    for (i, mut out) in filtered.outer_iter_mut().enumerate() {
        let mut t = trials.trial(i).to_owned();
        filter::filter_rows(&model.preprocessing.filter.sos, mode, &mut t)?;
        out.assign(&t);
    }
    let labels = model.fitted.predict(filtered.view())?;
    let decision = model.fitted.decision_function(filtered.view())?;
    Ok((labels, Some(decision)))
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
        scan(bytes)
            .map_err(|e| Error::Data(format!("the body is not a JSON array of numbers: {e}")))
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

impl<'de> serde::Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Nested::deserialize_from(d)
    }
}

/// Deepest nesting the scanner accepts (a trial batch needs 3); bounds its stack.
const MAX_DEPTH: usize = 32;

/// A JSON scanner for nested arrays of numbers, nothing else: one pass over the bytes, numbers
/// written straight into the flat buffer, the shape checked as arrays close, and each number
/// token handed to the standard library's float parser (correctly rounded, Eisel-Lemire).
/// On the original's payload (16 500 numbers of up to 17 digits) it takes 581 µs against
/// 662 µs for serde_json with the flattening visitor; the float parser alone is 395 µs of it
/// (`cargo bench --bench serve_json`). Iterative, so deep nesting cannot overflow the stack.
pub fn scan(bytes: &[u8]) -> std::result::Result<Nested, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    let s = text.as_bytes();
    let mut b = Builder::default();
    // Elements seen so far in each open array; its length is the current depth.
    let mut open: Vec<usize> = Vec::new();
    let mut pos = skip_ws(s, 0);
    // After `[` a value or `]`; after a value `,` or `]`; after `,` a value.
    #[derive(PartialEq)]
    enum Want {
        ValueOrClose,
        CommaOrClose,
        Value,
    }
    let mut want = Want::Value;
    loop {
        let Some(&c) = s.get(pos) else {
            return Err(if open.is_empty() {
                "empty body".to_owned()
            } else {
                format!(
                    "unexpected end after {pos} bytes: {} array(s) not closed",
                    open.len()
                )
            });
        };
        match c {
            b']' if want != Want::Value => {
                pos += 1;
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
                    None => break,
                }
                want = Want::CommaOrClose;
            }
            b',' if want == Want::CommaOrClose => {
                pos += 1;
                want = Want::Value;
            }
            b'[' if want != Want::CommaOrClose => {
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
                pos += 1;
                want = Want::ValueOrClose;
            }
            b'-' | b'0'..=b'9' if want != Want::CommaOrClose => {
                let depth = open.len();
                if depth == 0 {
                    return Err("expected an array, found a number".to_owned());
                }
                match b.leaf {
                    None => {
                        b.leaf = Some(depth);
                        // The first row's length is known once it closes; reserve for a
                        // 22 × 750 trial meanwhile so the buffer does not regrow.
                        b.data.reserve(16_384);
                    }
                    Some(leaf) if leaf != depth => {
                        return Err(format!(
                        "ragged array: a number at depth {depth} where numbers sit at depth {leaf}"
                    ))
                    }
                    Some(_) => {}
                }
                // A row of numbers is read in this inner loop: `,` and the next number
                // without a trip through the state machine.
                let mut count = 0;
                loop {
                    let end = number_end(s, pos)?;
                    let token = &text[pos..end];
                    let v: f64 = token
                        .parse()
                        .map_err(|e| format!("bad number `{token}` ({e})"))?;
                    if !v.is_finite() {
                        return Err(format!("number `{token}` is out of range"));
                    }
                    b.data.push(v);
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
                if let Some(open) = open.last_mut() {
                    *open += count;
                }
                want = Want::CommaOrClose;
                continue;
            }
            _ => {
                let what = match want {
                    Want::CommaOrClose => "`,` or `]`",
                    Want::ValueOrClose => "a number, `[` or `]`",
                    Want::Value if open.is_empty() => "an array",
                    Want::Value => "a number or `[`",
                };
                let found: String = text[pos..].chars().take(12).collect();
                return Err(format!("expected {what} at byte {pos}, found `{found}`"));
            }
        }
        pos = skip_ws(s, pos);
    }
    let pos = skip_ws(s, pos);
    if pos != s.len() {
        return Err(format!("trailing characters at byte {pos}"));
    }
    Ok(b.finish())
}

fn skip_ws(s: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = s.get(pos) {
        pos += 1;
    }
    pos
}

/// The end of the JSON number starting at `start`, which must follow the grammar exactly
/// (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`): Rust's parser alone would also take
/// `+1`, `.5`, `1.`, `inf` and `NaN`.
fn number_end(s: &[u8], start: usize) -> std::result::Result<usize, String> {
    let digits = |p: usize| {
        p + s[p.min(s.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let bad = |p: usize| {
        let token = String::from_utf8_lossy(&s[start..(p + 1).min(s.len())]).into_owned();
        Err(format!("bad number `{token}` at byte {start}"))
    };
    let mut p = start;
    if s.get(p) == Some(&b'-') {
        p += 1;
    }
    match s.get(p) {
        Some(b'0') => p += 1,
        Some(b'1'..=b'9') => p = digits(p),
        _ => return bad(p),
    }
    if s.get(p) == Some(&b'.') {
        let q = digits(p + 1);
        if q == p + 1 {
            return bad(p);
        }
        p = q;
    }
    if let Some(b'e' | b'E') = s.get(p) {
        p += 1;
        if let Some(b'+' | b'-') = s.get(p) {
            p += 1;
        }
        let q = digits(p);
        if q == p {
            return bad(p);
        }
        p = q;
    }
    Ok(p)
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
    Trials::from_shape(&shape, data)
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
pub fn from_npy(bytes: &[u8]) -> Result<Trials> {
    use ndarray::ArrayD;
    use ndarray_npy::ReadNpyExt;
    let (shape, data) = match ArrayD::<f32>::read_npy(bytes) {
        Ok(a) => (
            a.shape().to_vec(),
            a.iter().map(|&v| f64::from(v)).collect(),
        ),
        Err(_) => match ArrayD::<f64>::read_npy(bytes) {
            Ok(a) => (a.shape().to_vec(), a.iter().copied().collect()),
            Err(e) => {
                return Err(Error::Data(format!(
                    "the body is not a float32 or float64 .npy array: {e}"
                )))
            }
        },
    };
    Trials::from_shape(&shape, data)
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
