//! Request bodies decoded into one flat batch of trials: nested JSON arrays (the original's
//! `/classify` payload and V2 `data`), little-endian f32 bytes, and `.npy` files.
//!
//! JSON is read by a visitor that writes numbers straight into one flat `Vec<f64>` and checks
//! that the nesting is rectangular as it goes, instead of building `Vec<Vec<Vec<f64>>>` and
//! copying it. Measured (`cargo bench --bench serve_json`), number parsing dominates: the
//! visitor saves the per-row allocations and the copy but not much time, and a hand-written
//! byte scanner using the standard library's float parser was slower than serde_json's.

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
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let nested = Nested::deserialize_from(&mut de)
            .and_then(|n| de.end().map(|()| n))
            .map_err(|e| Error::Data(format!("the body is not a JSON array of numbers: {e}")))?;
        Ok(nested)
    }

    pub fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut b = Builder::default();
        Level {
            b: &mut b,
            depth: 0,
        }
        .deserialize(d)?;
        if b.dims.iter().any(|d| d.is_none()) || b.leaf.is_none() && !b.dims.is_empty() {
            // Only empty arrays somewhere: the inner extent is unknown.
            return Ok(Nested {
                shape: b.dims.iter().map(|d| d.unwrap_or(0)).collect(),
                data: Vec::new(),
            });
        }
        Ok(Nested {
            shape: b.dims.into_iter().map(|d| d.unwrap_or(0)).collect(),
            data: b.data,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Nested::deserialize_from(d)
    }
}

#[derive(Default)]
struct Builder {
    data: Vec<f64>,
    /// The extent of each nesting level, fixed by the first array that closes at that level.
    dims: Vec<Option<usize>>,
    /// The depth numbers sit at, fixed by the first number.
    leaf: Option<usize>,
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
    fn shapes_parse_and_must_match() {
        assert_eq!(parse_shape("2, 22,750").unwrap(), vec![2, 22, 750]);
        assert!(parse_shape("2;3").is_err());
        assert!(Trials::from_shape(&[2, 2, 2], vec![0.0; 7]).is_err());
        assert!(Trials::from_shape(&[usize::MAX, 2, 2], vec![0.0; 8]).is_err());
        assert_eq!(Trials::from_shape(&[2, 3], vec![0.0; 6]).unwrap().n, 1);
    }
}
