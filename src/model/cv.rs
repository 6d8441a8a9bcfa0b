//! Honest evaluation: which trials train and which test, in each fold.
//!
//! Three protocols: stratified k-fold within the data (seeded), the original pipeline's random
//! hold-out, and the competition protocol (fit on session `T`, test on session `E`).

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a model is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Evaluation {
    /// Stratified k-fold cross-validation, `cv:K`.
    KFold(usize),
    /// One random hold-out of this fraction of the trials, `holdout:F`.
    Holdout(f64),
    /// Train on session `T`, test on session `E`, `session`.
    Session,
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evaluation::KFold(k) => write!(f, "cv:{k}"),
            Evaluation::Holdout(p) => write!(f, "holdout:{p}"),
            Evaluation::Session => f.write_str("session"),
        }
    }
}

impl FromStr for Evaluation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "evaluation `{s}` is not one of `cv:K` (K ≥ 2), `holdout:F` (0 < F < 1), `session`"
            ))
        };
        match s.split_once(':') {
            None if s == "session" => Ok(Evaluation::Session),
            Some(("cv", k)) => match k.parse::<usize>() {
                Ok(k) if k >= 2 => Ok(Evaluation::KFold(k)),
                _ => Err(bad()),
            },
            Some(("holdout", p)) => match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p < 1.0 => Ok(Evaluation::Holdout(p)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl From<Evaluation> for String {
    fn from(e: Evaluation) -> String {
        e.to_string()
    }
}

impl TryFrom<String> for Evaluation {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// One fold: trial indices to fit on and to test on (both sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// The folds of `evaluation` over trials with class `y` and session `sessions`.
pub fn splits(
    evaluation: Evaluation,
    y: &[usize],
    sessions: &[String],
    seed: u64,
) -> Result<Vec<Split>> {
    assert_eq!(
        y.len(),
        sessions.len(),
        "labels and sessions differ in length"
    );
    let n_classes = y.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; n_classes];
    for &c in y {
        counts[c] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count();
    if present < 2 {
        return Err(Error::Data(format!(
            "the dataset holds {present} class(es) with trials; evaluation needs at least 2"
        )));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    match evaluation {
        Evaluation::KFold(k) => {
            if let Some((class, &count)) = counts.iter().enumerate().find(|(_, &c)| c > 0 && c < k)
            {
                return Err(Error::Data(format!(
                    "class {class} has {count} trials, fewer than the {k} folds of `cv:{k}`"
                )));
            }
            let mut fold_of = vec![0usize; y.len()];
            // Deal each class's shuffled trials round-robin, continuing where the previous class
            // stopped, so every fold gets each class in proportion and folds differ by ≤ 1 trial.
            let mut next = 0usize;
            for class in 0..n_classes {
                let mut members: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
                members.shuffle(&mut rng);
                for i in members {
                    fold_of[i] = next % k;
                    next += 1;
                }
            }
            Ok((0..k)
                .map(|f| Split {
                    train: (0..y.len()).filter(|&i| fold_of[i] != f).collect(),
                    test: (0..y.len()).filter(|&i| fold_of[i] == f).collect(),
                })
                .collect())
        }
        Evaluation::Holdout(fraction) => {
            let mut order: Vec<usize> = (0..y.len()).collect();
            order.shuffle(&mut rng);
            let n_test = ((y.len() as f64) * fraction).ceil() as usize;
            if n_test == 0 || n_test >= y.len() {
                return Err(Error::Data(format!(
                    "`holdout:{fraction}` of {} trials leaves nothing to train or to test",
                    y.len()
                )));
            }
            let mut test = order[..n_test].to_vec();
            let mut train = order[n_test..].to_vec();
            test.sort_unstable();
            train.sort_unstable();
            check_train_classes(&train, y, "holdout")?;
            Ok(vec![Split { train, test }])
        }
        Evaluation::Session => {
            let is = |i: usize, s: &str| sessions[i].eq_ignore_ascii_case(s);
            let train: Vec<usize> = (0..y.len()).filter(|&i| is(i, "T")).collect();
            let test: Vec<usize> = (0..y.len()).filter(|&i| is(i, "E")).collect();
            if train.is_empty() || test.is_empty() {
                return Err(Error::setting(
                    "sessions",
                    Some("T,E"),
                    format!(
                        "`session` evaluation needs trials of both sessions T and E; the \
                         dataset has {} T and {} E: preprocess both sessions",
                        train.len(),
                        test.len()
                    ),
                ));
            }
            check_train_classes(&train, y, "session")?;
            Ok(vec![Split { train, test }])
        }
    }
}

fn check_train_classes(train: &[usize], y: &[usize], what: &str) -> Result<()> {
    let mut seen: Vec<usize> = train.iter().map(|&i| y[i]).collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() < 2 {
        return Err(Error::Data(format!(
            "the `{what}` training set holds a single class; nothing to discriminate"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: usize) -> Vec<String> {
        vec!["T".to_owned(); n]
    }

    #[test]
    fn stratified_folds_partition_and_balance() {
        let y: Vec<usize> = (0..103).map(|i| if i % 3 == 0 { 1 } else { 0 }).collect();
        let folds = splits(Evaluation::KFold(5), &y, &t(103), 1).unwrap();
        assert_eq!(folds.len(), 5);
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..103).collect::<Vec<_>>(),
            "test sets partition the trials"
        );
        for f in &folds {
            assert_eq!(f.train.len() + f.test.len(), 103);
            assert!(
                f.test.iter().all(|i| !f.train.contains(i)),
                "no test trial is trained on"
            );
            let ones = f.test.iter().filter(|&&i| y[i] == 1).count();
            assert!(
                (6..=7).contains(&ones),
                "class 1 (35 trials) spread evenly: {ones}"
            );
            assert!((20..=21).contains(&f.test.len()));
        }
        assert_eq!(
            folds,
            splits(Evaluation::KFold(5), &y, &t(103), 1).unwrap(),
            "seeded"
        );
        assert_ne!(folds, splits(Evaluation::KFold(5), &y, &t(103), 2).unwrap());
    }

    #[test]
    fn holdout_and_session() {
        let y: Vec<usize> = (0..20).map(|i| i % 2).collect();
        let h = splits(Evaluation::Holdout(0.2), &y, &t(20), 3).unwrap();
        assert_eq!(h[0].test.len(), 4);
        let sessions: Vec<String> = (0..20)
            .map(|i| if i < 12 { "T" } else { "E" }.to_owned())
            .collect();
        let s = splits(Evaluation::Session, &y, &sessions, 0).unwrap();
        assert_eq!(s[0].train, (0..12).collect::<Vec<_>>());
        assert_eq!(s[0].test, (12..20).collect::<Vec<_>>());
        let err = splits(Evaluation::Session, &y, &t(20), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0 E"), "{err}");
    }

    #[test]
    fn bad_requests_are_errors() {
        let y = vec![0, 0, 0, 1, 1, 1];
        assert!(splits(Evaluation::KFold(4), &y, &t(6), 0)
            .unwrap_err()
            .to_string()
            .contains("fewer than the 4 folds"));
        assert!(splits(Evaluation::KFold(2), &[0, 0, 0], &t(3), 0)
            .unwrap_err()
            .to_string()
            .contains("1 class"));
        for bad in ["cv:1", "cv:x", "holdout:1.5", "holdout:0", "loo", ""] {
            assert!(bad.parse::<Evaluation>().is_err(), "{bad}");
        }
        assert_eq!("cv:5".parse::<Evaluation>().unwrap(), Evaluation::KFold(5));
        assert_eq!(
            "holdout:0.2".parse::<Evaluation>().unwrap(),
            Evaluation::Holdout(0.2)
        );
        assert_eq!(Evaluation::KFold(5).to_string(), "cv:5");
    }
}
