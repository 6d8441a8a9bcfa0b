//! Which trials a sweep runs: every grid combination, seeded random draws, or TPE suggestions
//! (`bayes`) — and when hyperband stops a trial early.
//!
//! Everything here is a pure function of the sweep, the seed and the results so far, so a sweep
//! is deterministic for a seed, whatever the number of threads: random draw `i` comes from its
//! own generator seeded by `(seed, i)`, and TPE batch `b` from `(seed, b)` and the results of
//! the batches before it.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::tune::sweep::{EarlyTerminate, Goal, Method, Param, Sweep};
use crate::tune::tpe::{Dim, Space, Tpe};

/// One assignment of sweep values.
pub type Assignment = BTreeMap<String, Value>;

/// Trials a random or bayes sweep runs when neither `run_cap` nor `--max-trials` says.
pub const DEFAULT_TRIALS: usize = 50;

/// A seeded generator per `(seed, stream, index)`: independent streams for draws and batches.
pub fn rng(seed: u64, stream: u64, index: u64) -> Xoshiro256PlusPlus {
    let mix = seed
        ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ index.wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(31);
    Xoshiro256PlusPlus::seed_from_u64(mix)
}

/// Random draw number `i` of the sweep.
pub fn random_draw(sweep: &Sweep, seed: u64, i: u64) -> Assignment {
    sweep.sample(&mut rng(seed, 1, i))
}

/// The TPE view of a sweep: one dimension per non-constant parameter. Distributions are
/// searched in their unit (cumulative probability) space, so every W&B distribution, log and
/// normal ones included, becomes a plain interval; categorical values are their indices.
pub struct BayesSpace {
    names: Vec<String>,
    params: Vec<Param>,
    constants: Assignment,
    space: Space,
}

impl BayesSpace {
    pub fn new(sweep: &Sweep) -> Result<BayesSpace> {
        let mut names = Vec::new();
        let mut params = Vec::new();
        let mut dims = Vec::new();
        let mut constants = Assignment::new();
        for (name, p) in &sweep.parameters {
            match p {
                Param::Constant(v) => {
                    constants.insert(name.clone(), v.clone());
                }
                Param::Categorical {
                    values,
                    probabilities,
                } => {
                    names.push(name.clone());
                    params.push(p.clone());
                    dims.push(Dim::Categorical {
                        n: values.len(),
                        weights: probabilities.clone(),
                    });
                }
                Param::Distribution(_) => {
                    names.push(name.clone());
                    params.push(p.clone());
                    dims.push(Dim::Continuous {
                        low: 0.0,
                        high: 1.0,
                        log: false,
                        q: None,
                    });
                }
            }
        }
        Ok(BayesSpace {
            names,
            params,
            constants,
            space: Space::new(dims)?,
        })
    }

    /// The point of an assignment, None if a value is not in the space (e.g. from another
    /// sweep's journal).
    pub fn point(&self, a: &Assignment) -> Option<Vec<f64>> {
        self.names
            .iter()
            .zip(&self.params)
            .map(|(name, p)| {
                let v = a.get(name)?;
                match p {
                    Param::Categorical { values, .. } => {
                        values.iter().position(|x| x == v).map(|i| i as f64)
                    }
                    Param::Distribution(d) => d.to_unit(v),
                    Param::Constant(_) => None,
                }
            })
            .collect()
    }

    pub fn assignment(&self, point: &[f64]) -> Assignment {
        let mut a = self.constants.clone();
        for ((name, p), &u) in self.names.iter().zip(&self.params).zip(point) {
            let v = match p {
                Param::Categorical { values, .. } => {
                    values[(u.round().max(0.0) as usize).min(values.len() - 1)].clone()
                }
                Param::Distribution(d) => d.from_unit(u),
                Param::Constant(v) => v.clone(),
            };
            a.insert(name.clone(), v);
        }
        a
    }

    /// `size` suggestions for batch `batch`, given `(assignment, loss)` of finished trials
    /// (lower loss is better; failed trials carry infinity).
    pub fn suggest(
        &self,
        seed: u64,
        batch: u64,
        size: usize,
        history: &[(Assignment, f64)],
    ) -> Vec<Assignment> {
        let tpe = Tpe {
            multivariate: true,
            ..Tpe::default()
        };
        let mut points: Vec<(Vec<f64>, f64)> = history
            .iter()
            .filter_map(|(a, loss)| Some((self.point(a)?, *loss)))
            .collect();
        let mut rng = rng(seed, 2, batch);
        let mut out = Vec::with_capacity(size);
        for _ in 0..size {
            let p = tpe.suggest(&self.space, &points, &mut rng);
            // Within a batch, later suggestions see earlier ones as pending with the worst
            // loss, so one batch does not propose the same point `size` times.
            points.push((p.clone(), f64::INFINITY));
            out.push(self.assignment(&p));
        }
        out
    }
}

/// The loss TPE minimises for a metric value under `goal`.
pub fn loss(value: Option<f64>, goal: Goal) -> f64 {
    match (value, goal) {
        (Some(v), Goal::Maximize) if v.is_finite() => -v,
        (Some(v), Goal::Minimize) if v.is_finite() => v,
        _ => f64::INFINITY,
    }
}

/// The fold counts after which hyperband looks at a trial: `min_iter·etaᵏ`, or
/// `max_iter/etaᵏ` for `k = s..1`, keeping those below `n_folds` (after the last fold there is
/// nothing left to save).
pub fn rungs(et: &EarlyTerminate, n_folds: usize) -> Vec<usize> {
    let eta = et.eta.max(2) as usize;
    let mut out = Vec::new();
    match (et.min_iter, et.max_iter) {
        (Some(min), _) => {
            let mut r = min.max(1) as usize;
            while r < n_folds {
                out.push(r);
                r = r.saturating_mul(eta);
            }
        }
        (None, Some(max)) => {
            let s = et.s.unwrap_or(1) as u32;
            for k in (1..=s).rev() {
                let r = (max as usize) / eta.saturating_pow(k);
                if r >= 1 && r < n_folds && !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        (None, None) => {}
    }
    out
}

/// Hyperband's rule at a rung: a trial goes on only if its running mean is within the best
/// `1/eta` of the running means other trials had at the same rung. With fewer than `eta` of
/// those to compare with, every trial goes on.
pub fn keep_going(running: f64, peers: &[f64], eta: u64, goal: Goal) -> bool {
    let eta = eta.max(2) as usize;
    if peers.len() < eta {
        return true;
    }
    let mut sorted: Vec<f64> = peers.iter().copied().filter(|v| v.is_finite()).collect();
    match goal {
        Goal::Maximize => sorted.sort_by(|a, b| b.total_cmp(a)),
        Goal::Minimize => sorted.sort_by(|a, b| a.total_cmp(b)),
    }
    if sorted.is_empty() {
        return true;
    }
    let keep = sorted.len().div_ceil(eta).max(1);
    let threshold = sorted[keep - 1];
    match goal {
        Goal::Maximize => running >= threshold,
        Goal::Minimize => running <= threshold,
    }
}

/// How many trials a sweep runs in all: the grid's size for grid sweeps (capped by `run_cap`
/// and `max_trials`), else `max_trials`, `run_cap` or [`DEFAULT_TRIALS`].
pub fn budget(sweep: &Sweep, max_trials: Option<usize>) -> Result<usize> {
    let cap = match (max_trials, sweep.run_cap) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match sweep.method {
        Method::Grid => {
            let n = sweep.grid_len().ok_or_else(|| {
                Error::Invalid("a grid sweep needs `values` for every parameter".into())
            })?;
            Ok(cap.map_or(n, |c| c.min(n)))
        }
        Method::Random | Method::Bayes => Ok(cap.unwrap_or(DEFAULT_TRIALS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::sweep;

    fn et(
        min_iter: Option<u64>,
        max_iter: Option<u64>,
        s: Option<u64>,
        eta: u64,
    ) -> EarlyTerminate {
        EarlyTerminate {
            min_iter,
            max_iter,
            s,
            eta,
            strict: false,
        }
    }

    #[test]
    fn hyperband_rungs_stay_below_the_fold_count() {
        assert_eq!(rungs(&et(Some(1), None, None, 2), 5), vec![1, 2, 4]);
        assert_eq!(rungs(&et(Some(1), None, None, 3), 10), vec![1, 3, 9]);
        assert_eq!(rungs(&et(Some(5), None, None, 3), 5), Vec::<usize>::new());
        assert_eq!(rungs(&et(None, Some(9), Some(2), 3), 10), vec![1, 3]);
    }

    #[test]
    fn hyperband_keeps_the_best_third() {
        let peers = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        assert!(keep_going(0.8, &peers, 3, Goal::Maximize));
        assert!(!keep_going(0.75, &peers, 3, Goal::Maximize));
        assert!(keep_going(0.5, &peers, 3, Goal::Minimize));
        assert!(!keep_going(0.55, &peers, 3, Goal::Minimize));
        // Too few peers to judge: go on.
        assert!(keep_going(0.0, &[0.9, 0.8], 3, Goal::Maximize));
    }

    #[test]
    fn random_draws_depend_on_seed_and_index_only() {
        let s = sweep::parse(
            "method: random\nparameters:\n  c: {min: 0.1, max: 10.0, distribution: log_uniform_values}\n",
            "x",
        )
        .unwrap();
        assert_eq!(random_draw(&s, 7, 3), random_draw(&s, 7, 3));
        assert_ne!(random_draw(&s, 7, 3), random_draw(&s, 7, 4));
        assert_ne!(random_draw(&s, 7, 3), random_draw(&s, 8, 3));
    }

    #[test]
    fn bayes_points_round_trip_and_suggestions_are_in_the_space() {
        let s = sweep::parse(
            "method: bayes\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  c: {min: 0.1, max: 10.0, distribution: log_uniform_values}\n  kernel: {values: [rbf, linear]}\n  log: {value: true}\n",
            "x",
        )
        .unwrap();
        let space = BayesSpace::new(&s).unwrap();
        let a = random_draw(&s, 1, 0);
        let back = space.assignment(&space.point(&a).unwrap());
        assert_eq!(back["kernel"], a["kernel"]);
        let (x, y) = (back["c"].as_f64().unwrap(), a["c"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-9 * y, "{x} vs {y}");
        let history: Vec<(Assignment, f64)> = (0..12)
            .map(|i| {
                let a = random_draw(&s, 1, i);
                let c = a["c"].as_f64().unwrap();
                (a, (c.ln() - 1.0).abs())
            })
            .collect();
        let next = space.suggest(1, 0, 4, &history);
        assert_eq!(next.len(), 4);
        for a in &next {
            let c = a["c"].as_f64().unwrap();
            assert!((0.1..=10.0).contains(&c), "{c}");
            assert_eq!(a["log"], Value::Bool(true));
        }
        assert_eq!(next, space.suggest(1, 0, 4, &history), "deterministic");
    }

    #[test]
    fn budgets() {
        let grid = sweep::read(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sweep.yaml")).unwrap();
        assert_eq!(budget(&grid, None).unwrap(), 640);
        assert_eq!(budget(&grid, Some(10)).unwrap(), 10);
        let random = sweep::parse(
            "method: random\nparameters:\n  c: {min: 0.1, max: 1.0}\n",
            "x",
        )
        .unwrap();
        assert_eq!(budget(&random, None).unwrap(), DEFAULT_TRIALS);
        assert_eq!(budget(&random, Some(7)).unwrap(), 7);
    }
}
