//! Tree-structured Parzen Estimator (Bergstra et al. 2011), the model-based search behind
//! hyperopt and Optuna.
//!
//! Observations are split by loss into a good group (the best `gamma` fraction) and a bad one;
//! each group becomes a Parzen estimator, l(x) (good) and g(x) (bad): a mixture of truncated
//! Gaussians, one per observation plus a wide prior component, in the dimension's (log-)space,
//! or smoothed counts for a categorical. Candidates are drawn from l and the one with the
//! largest l(x)/g(x) wins. Bandwidths, the prior component, the "magic clip", the recency
//! weights and the categorical smoothing follow Optuna 5's `TPESampler`; `gamma = 0.25` is
//! hyperopt's fraction. By default every dimension has its own pair of densities (independent
//! TPE, as hyperopt); `multivariate` makes the kernels joint (Optuna's default since 4.0).
//! Both track Optuna 5.0 on the benchmarks in the tests (mean best loss within sampling noise).
//!
//! ```
//! use bciops::tune::tpe::{Dim, Space, Tpe};
//! use rand::SeedableRng;
//!
//! let space = Space::new(vec![
//!     Dim::Continuous { low: 1e-3, high: 1e3, log: true, q: None },
//!     Dim::Categorical { n: 3, weights: None },
//! ])
//! .unwrap();
//! let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
//! let mut history = Vec::new();
//! for _ in 0..20 {
//!     let point = Tpe::default().suggest(&space, &history, &mut rng);
//!     let loss = (point[0].ln() - 1.0).powi(2) + point[1];
//!     history.push((point, loss));
//! }
//! ```

use rand::Rng;
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// One dimension of a search space. Points are `Vec<f64>`: a categorical value is its index,
/// an integer a whole number.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    /// A real in `[low, high]`, uniform or log-uniform a priori; with `q`, restricted to the
    /// grid `low + k·q` (Optuna's `step`) that stays within `high`.
    Continuous {
        low: f64,
        high: f64,
        log: bool,
        q: Option<f64>,
    },
    /// An integer in `[low, high]`, uniform or log-uniform a priori.
    Integer { low: i64, high: i64, log: bool },
    /// One of `n` choices, uniform a priori unless `weights` (relative, non-negative) are given.
    Categorical { n: usize, weights: Option<Vec<f64>> },
}

/// A checked list of dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    dims: Vec<Dim>,
}

impl Space {
    /// Checks every dimension: finite bounds with `low <= high` (equal bounds fix the value),
    /// positive bounds for log dimensions, a positive finite `q`, at least one category and
    /// category weights that are finite, non-negative and not all zero.
    pub fn new(dims: Vec<Dim>) -> Result<Space> {
        for (i, dim) in dims.iter().enumerate() {
            check_dim(i, dim)?;
        }
        Ok(Space { dims })
    }

    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    pub fn len(&self) -> usize {
        self.dims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// Whether `point` is a value of this space: right length, in bounds, on its grid.
    pub fn contains(&self, point: &[f64]) -> bool {
        point.len() == self.dims.len()
            && self.dims.iter().zip(point).all(|(dim, &x)| match dim {
                Dim::Continuous { low, high, q, .. } => {
                    x.is_finite()
                        && *low <= x
                        && x <= *high
                        && q.is_none_or(|q| {
                            let k = (x - low) / q;
                            (k - k.round()).abs() <= 1e-9 * k.abs().max(1.0)
                        })
                }
                Dim::Integer { low, high, .. } => {
                    x.fract() == 0.0 && *low as f64 <= x && x <= *high as f64
                }
                Dim::Categorical { n, .. } => x.fract() == 0.0 && x >= 0.0 && x < *n as f64,
            })
    }
}

fn check_dim(i: usize, dim: &Dim) -> Result<()> {
    let bad = |msg: String| Err(Error::Invalid(format!("search dimension {i}: {msg}")));
    match dim {
        Dim::Continuous { low, high, log, q } => {
            if !low.is_finite() || !high.is_finite() {
                return bad(format!("bounds `{low}`..`{high}` must be finite"));
            }
            if low > high {
                return bad(format!("low `{low}` is above high `{high}`"));
            }
            if !(high - low).is_finite() {
                return bad(format!("range `{low}`..`{high}` is too wide for a float"));
            }
            if *log && *low <= 0.0 {
                return bad(format!("log scale needs a positive low, not `{low}`"));
            }
            if let Some(q) = q {
                if !q.is_finite() || *q <= 0.0 {
                    return bad(format!("step `q` must be positive and finite, not `{q}`"));
                }
            }
        }
        Dim::Integer { low, high, log } => {
            if low > high {
                return bad(format!("low `{low}` is above high `{high}`"));
            }
            if *log && *low < 1 {
                return bad(format!("log scale needs a low of at least 1, not `{low}`"));
            }
        }
        Dim::Categorical { n, weights } => {
            if *n == 0 {
                return bad("a categorical needs at least one choice, not `0`".into());
            }
            if let Some(w) = weights {
                if w.len() != *n {
                    return bad(format!("`{}` weights for `{n}` choices", w.len()));
                }
                if let Some(x) = w.iter().find(|x| !x.is_finite() || **x < 0.0) {
                    return bad(format!("weight `{x}` is not a finite non-negative number"));
                }
                if w.iter().sum::<f64>() <= 0.0 {
                    return bad("weights sum to `0`".into());
                }
            }
        }
    }
    Ok(())
}

/// The TPE suggester. Fields are public so a sweep config can set them; out-of-range values
/// are tamed when used (`gamma` clamped to `[0, 1]`, at least one candidate, a non-finite or
/// negative `prior_weight` taken as 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Tpe {
    /// Fraction of the observations, by loss, that make up the good group (at least one).
    pub gamma: f64,
    /// Number of observations below which points come from the prior.
    pub n_startup: usize,
    /// Number of candidates drawn from l(x) (per dimension, unless `multivariate`).
    pub n_candidates: usize,
    /// Weight of the prior component in each mixture, relative to an observation's.
    pub prior_weight: f64,
    /// Joint densities (Optuna's `multivariate=True`, Falkner et al. 2018): each kernel is a
    /// product over the dimensions centred on one whole observation, so l and g see how
    /// the dimensions interact. Off by default: the independent TPE of hyperopt.
    pub multivariate: bool,
}

impl Default for Tpe {
    fn default() -> Self {
        Tpe {
            gamma: 0.25,
            n_startup: 10,
            n_candidates: 24,
            prior_weight: 1.0,
            multivariate: false,
        }
    }
}

impl Tpe {
    /// The next point to evaluate, given `(point, loss)` pairs where lower loss is better.
    ///
    /// Failed trials may carry `f64::INFINITY` (or NaN): they only ever join the bad group.
    /// Points that do not fit the space (wrong length, non-finite coordinates) are ignored;
    /// out-of-bounds coordinates are clamped. Independent TPE scores candidates per dimension,
    /// which is the same as maximising the product of the ratios over every combination of
    /// candidates.
    pub fn suggest(
        &self,
        space: &Space,
        history: &[(Vec<f64>, f64)],
        rng: &mut impl Rng,
    ) -> Vec<f64> {
        let usable: Vec<(&[f64], f64)> = history
            .iter()
            .filter(|(p, _)| p.len() == space.len() && p.iter().all(|x| x.is_finite()))
            .map(|(p, loss)| {
                let loss = if loss.is_nan() { f64::INFINITY } else { *loss };
                (p.as_slice(), loss)
            })
            .collect();
        if usable.len() < self.n_startup {
            return random_point(space, rng);
        }

        let gamma = if self.gamma.is_finite() {
            self.gamma.clamp(0.0, 1.0)
        } else {
            0.25
        };
        let prior_weight = if self.prior_weight.is_finite() && self.prior_weight >= 0.0 {
            self.prior_weight
        } else {
            1.0
        };
        let n_candidates = self.n_candidates.max(1);

        // Ties in loss go to the earlier trial, so the split is deterministic.
        let mut order: Vec<usize> = (0..usable.len()).collect();
        order.sort_by(|&i, &j| usable[i].1.total_cmp(&usable[j].1).then(i.cmp(&j)));
        let n_finite = usable.iter().filter(|(_, l)| *l < f64::INFINITY).count();
        let n_good = ((gamma * usable.len() as f64).ceil() as usize)
            .max(1)
            .min(n_finite);
        let mut good = order[..n_good].to_vec();
        let mut bad = order[n_good..].to_vec();
        // Recency weights are assigned in trial order.
        good.sort_unstable();
        bad.sort_unstable();
        let good_w = mixture_weights(good.len(), prior_weight);
        let bad_w = mixture_weights(bad.len(), prior_weight);

        let models: Vec<Model> = space
            .dims
            .iter()
            .enumerate()
            .map(|(d, dim)| {
                let good_x: Vec<f64> = good.iter().map(|&t| usable[t].0[d]).collect();
                let bad_x: Vec<f64> = bad.iter().map(|&t| usable[t].0[d]).collect();
                Model::fit(dim, (&good_x, &good_w), (&bad_x, &bad_w), prior_weight)
            })
            .collect();

        if !self.multivariate {
            return models
                .iter()
                .map(|m| {
                    let candidates: Vec<f64> =
                        (0..n_candidates).map(|_| m.sample(None, rng)).collect();
                    best_of(candidates, |x| m.log_l(*x) - m.log_g(*x))
                })
                .collect();
        }
        let cumulative = cumulative(&good_w);
        let candidates: Vec<Vec<f64>> = (0..n_candidates)
            .map(|_| {
                let k = pick(&cumulative, rng);
                models.iter().map(|m| m.sample(Some(k), rng)).collect()
            })
            .collect();
        let joint = |ws: &[f64], good: bool, x: &[f64]| {
            let mut acc: Vec<f64> = ws.iter().map(|w| w.ln()).collect();
            for (m, &xd) in models.iter().zip(x) {
                m.add_component_logs(good, xd, &mut acc);
            }
            log_sum_exp(acc.into_iter())
        };
        best_of(candidates, |x| {
            joint(&good_w, true, x) - joint(&bad_w, false, x)
        })
    }
}

/// A point drawn from the prior: uniform (or log-uniform) per dimension, the weights for a
/// categorical. Random search is this, repeated.
pub fn random_point(space: &Space, rng: &mut impl Rng) -> Vec<f64> {
    space
        .dims
        .iter()
        .map(|dim| match Coder::new(dim) {
            Coder::Fixed(x) => x,
            Coder::Numeric(num) => num.decode(num.a + (num.b - num.a) * rng.gen::<f64>()),
            Coder::Categorical(prior) => sample_categorical(&prior, rng) as f64,
        })
        .collect()
}

/// The candidate with the highest score; the first on ties, and NaN scores never win.
fn best_of<T>(candidates: Vec<T>, score: impl Fn(&T) -> f64) -> T {
    let mut best: Option<(T, f64)> = None;
    for x in candidates {
        let s = score(&x);
        let s = if s.is_nan() { f64::NEG_INFINITY } else { s };
        if best.as_ref().is_none_or(|(_, b)| s > *b) {
            best = Some((x, s));
        }
    }
    best.expect("at least one candidate").0
}

/// Normalised kernel weights of a group of `n` observations: Optuna's `default_weights` (equal,
/// except that beyond 25 observations the older ones fade linearly so the estimator follows
/// the search), then the prior's. Without observations the prior is all there is.
fn mixture_weights(n: usize, prior_weight: f64) -> Vec<f64> {
    let mut w = if n < 25 {
        vec![1.0; n]
    } else {
        let ramp = n - 25;
        let start = 1.0 / n as f64;
        (0..ramp)
            .map(|i| {
                if ramp == 1 {
                    start
                } else {
                    start + (1.0 - start) * i as f64 / (ramp - 1) as f64
                }
            })
            .chain(std::iter::repeat_n(1.0, 25))
            .collect()
    };
    if prior_weight > 0.0 || n == 0 {
        w.push(if prior_weight > 0.0 {
            prior_weight
        } else {
            1.0
        });
    }
    let total: f64 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

/// A kernel index drawn by weight.
fn pick(cumulative: &[f64], rng: &mut impl Rng) -> usize {
    let r = rng.gen::<f64>() * cumulative.last().copied().unwrap_or(1.0);
    cumulative
        .iter()
        .position(|&c| r < c)
        .unwrap_or(cumulative.len().saturating_sub(1))
}

/// l (good) and g (bad) of one dimension. The kernels are the group's observations in trial
/// order, then the prior, with the weights of [`mixture_weights`].
enum Model {
    Fixed(f64),
    Numeric {
        num: Numeric,
        l: Mixture,
        g: Mixture,
    },
    Categorical {
        l: CatMixture,
        g: CatMixture,
    },
}

impl Model {
    fn fit(dim: &Dim, good: (&[f64], &[f64]), bad: (&[f64], &[f64]), prior_weight: f64) -> Model {
        match Coder::new(dim) {
            Coder::Fixed(x) => Model::Fixed(x),
            Coder::Numeric(num) => Model::Numeric {
                l: num.fit(good.0, good.1),
                g: num.fit(bad.0, bad.1),
                num,
            },
            Coder::Categorical(prior) => Model::Categorical {
                l: CatMixture::fit(good.0, good.1, prior_weight, &prior),
                g: CatMixture::fit(bad.0, bad.1, prior_weight, &prior),
            },
        }
    }

    /// A draw from l, from kernel `k` if given.
    fn sample(&self, k: Option<usize>, rng: &mut impl Rng) -> f64 {
        match self {
            Model::Fixed(x) => *x,
            Model::Numeric { num, l, .. } => {
                let k = k.unwrap_or_else(|| pick(&l.cumulative, rng));
                num.decode(l.sample(k, rng))
            }
            Model::Categorical { l, .. } => {
                let k = k.unwrap_or_else(|| pick(&l.cumulative, rng));
                sample_categorical(&l.rows[k], rng) as f64
            }
        }
    }

    fn log_l(&self, x: f64) -> f64 {
        let mut acc = self.log_weights(true);
        self.add_component_logs(true, x, &mut acc);
        log_sum_exp(acc.into_iter())
    }

    fn log_g(&self, x: f64) -> f64 {
        let mut acc = self.log_weights(false);
        self.add_component_logs(false, x, &mut acc);
        log_sum_exp(acc.into_iter())
    }

    fn log_weights(&self, good: bool) -> Vec<f64> {
        let weights = match self {
            Model::Fixed(_) => return vec![0.0],
            Model::Numeric { l, g, .. } => &if good { l } else { g }.weights,
            Model::Categorical { l, g } => &if good { l } else { g }.weights,
        };
        weights.iter().map(|w| w.ln()).collect()
    }

    /// Adds each kernel's log density at `x` (up to a factor shared by l and g) to `acc`.
    fn add_component_logs(&self, good: bool, x: f64, acc: &mut [f64]) {
        match self {
            Model::Fixed(_) => {}
            Model::Numeric { num, l, g } => {
                let m = if good { l } else { g };
                for (k, a) in acc.iter_mut().enumerate() {
                    *a += num.component_log_density(m, k, x);
                }
            }
            Model::Categorical { l, g } => {
                let m = if good { l } else { g };
                let c = x as usize;
                for (a, row) in acc.iter_mut().zip(&m.rows) {
                    *a += row[c].ln();
                }
            }
        }
    }
}

/// How a dimension maps to the space the estimator works in.
enum Coder {
    /// Zero-width range or a single choice.
    Fixed(f64),
    Numeric(Numeric),
    /// Prior probabilities of the choices.
    Categorical(Vec<f64>),
}

/// A numeric dimension: the estimator lives on `[a, b]` in internal coordinates `u` (`ln x` for
/// log dimensions). A discrete dimension's interval reaches half a step past its end points,
/// so that every grid value owns a cell of the same width (in `x`) and the end points are not
/// under-sampled.
struct Numeric {
    low: f64,
    high: f64,
    log: bool,
    /// Grid step and the index of the last grid point.
    step: Option<(f64, f64)>,
    a: f64,
    b: f64,
}

impl Coder {
    fn new(dim: &Dim) -> Coder {
        match dim {
            Dim::Continuous { low, high, log, q } => Numeric::coder(*low, *high, *log, *q),
            Dim::Integer { low, high, log } => {
                Numeric::coder(*low as f64, *high as f64, *log, Some(1.0))
            }
            Dim::Categorical { n, weights } => {
                let w = weights.clone().unwrap_or_else(|| vec![1.0; *n]);
                let total: f64 = w.iter().sum();
                if *n == 1 {
                    Coder::Fixed(0.0)
                } else {
                    Coder::Categorical(w.iter().map(|x| x / total).collect())
                }
            }
        }
    }
}

impl Numeric {
    fn coder(low: f64, high: f64, log: bool, step: Option<f64>) -> Coder {
        let to_u = |x: f64| if log { x.ln() } else { x };
        match step {
            None if low < high => Coder::Numeric(Numeric {
                low,
                high,
                log,
                step: None,
                a: to_u(low),
                b: to_u(high),
            }),
            Some(s) => {
                // The small slack keeps `high` on the grid despite rounding in the division.
                let last = ((high - low) / s + 1e-9).floor();
                if last < 1.0 {
                    return Coder::Fixed(low);
                }
                let high = low + last * s;
                let ext_low = if log && low - s / 2.0 <= 0.0 {
                    low
                } else {
                    low - s / 2.0
                };
                Coder::Numeric(Numeric {
                    low,
                    high,
                    log,
                    step: Some((s, last)),
                    a: to_u(ext_low),
                    b: to_u(high + s / 2.0),
                })
            }
            None => Coder::Fixed(low),
        }
    }

    /// Clamped to `[a, b]`; for log dimensions, non-positive `x` (half a step below a small
    /// `low`) maps to `a` rather than NaN.
    fn to_u(&self, x: f64) -> f64 {
        let u = match (self.log, x > 0.0) {
            (false, _) => x,
            (true, true) => x.ln(),
            (true, false) => self.a,
        };
        u.clamp(self.a, self.b)
    }

    /// The dimension's value at internal coordinate `u`, snapped to the grid and the bounds.
    fn decode(&self, u: f64) -> f64 {
        self.snap(if self.log { u.exp() } else { u })
    }

    fn snap(&self, x: f64) -> f64 {
        match self.step {
            Some((s, last)) => self.low + ((x - self.low) / s).round().clamp(0.0, last) * s,
            None => x.clamp(self.low, self.high),
        }
    }

    /// Parzen estimator of observations `xs` with kernel weights `ws` (one more than `xs` when
    /// the prior is in), Optuna's rules.
    fn fit(&self, xs: &[f64], ws: &[f64]) -> Mixture {
        let width = self.b - self.a;
        let mut mus: Vec<f64> = xs.iter().map(|&x| self.to_u(self.snap(x))).collect();

        // Each kernel is as wide as the larger gap to its neighbours (the interval's ends
        // count as neighbours), except the outermost, which use their inner gap. The prior
        // takes no part (Optuna 4+; hyperopt sorts it in too).
        let mut sorted: Vec<(f64, usize)> = mus.iter().copied().zip(0..).collect();
        sorted.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let n_kernels = sorted.len();
        let max_sigma = width;
        // Optuna's "magic clip", which counts the prior whatever its weight.
        let min_sigma = width / (100f64).min(2.0 + n_kernels as f64);
        let mut sigmas = vec![0.0; mus.len()];
        for (k, &(mu, i)) in sorted.iter().enumerate() {
            let left = mu - if k == 0 { self.a } else { sorted[k - 1].0 };
            let right = if k + 1 == n_kernels {
                self.b
            } else {
                sorted[k + 1].0
            } - mu;
            let sigma = if n_kernels >= 2 && k == 0 {
                right
            } else if n_kernels >= 2 && k + 1 == n_kernels {
                left
            } else {
                left.max(right)
            };
            sigmas[i] = sigma.clamp(min_sigma, max_sigma);
        }
        if ws.len() > xs.len() {
            mus.push(0.5 * (self.a + self.b));
            sigmas.push(width);
        }
        Mixture::new(mus, sigmas, ws.to_vec(), self.a, self.b)
    }

    /// ln of kernel `k`'s density at `x` up to a factor every kernel shares: at `u(x)`, or
    /// for a grid the kernel's mass on `x`'s cell.
    fn component_log_density(&self, m: &Mixture, k: usize, x: f64) -> f64 {
        let (mu, sigma) = (m.mus[k], m.sigmas[k]);
        let log = match self.step {
            None => {
                let z = (self.to_u(x) - mu) / sigma;
                -0.5 * z * z - LN_SQRT_2PI - sigma.ln()
            }
            Some((s, _)) => {
                let (lo, hi) = (self.to_u(x - s / 2.0), self.to_u(x + s / 2.0));
                ln_gauss_mass((lo - mu) / sigma, (hi - mu) / sigma)
            }
        };
        log - m.log_inside[k]
    }
}

/// A mixture of Gaussians, each truncated to `[a, b]`.
struct Mixture {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    weights: Vec<f64>,
    cumulative: Vec<f64>,
    /// ln of each kernel's mass inside `[a, b]`.
    log_inside: Vec<f64>,
    a: f64,
    b: f64,
}

impl Mixture {
    fn new(mus: Vec<f64>, sigmas: Vec<f64>, weights: Vec<f64>, a: f64, b: f64) -> Mixture {
        assert_eq!(mus.len(), weights.len(), "one weight per kernel");
        let log_inside = mus
            .iter()
            .zip(&sigmas)
            .map(|(mu, sigma)| ln_gauss_mass((a - mu) / sigma, (b - mu) / sigma))
            .collect();
        Mixture {
            cumulative: cumulative(&weights),
            mus,
            sigmas,
            weights,
            log_inside,
            a,
            b,
        }
    }

    /// A draw from kernel `k`, truncated to `[a, b]`.
    fn sample(&self, k: usize, rng: &mut impl Rng) -> f64 {
        let (mu, sigma) = (self.mus[k], self.sigmas[k]);
        // Every kernel is centred inside [a, b] and at most as wide as it, so at least about
        // a third of its mass is inside: rejection needs three draws on average.
        let mut x = mu;
        for _ in 0..64 {
            let z: f64 = rng.sample(StandardNormal);
            x = mu + sigma * z;
            if self.a <= x && x <= self.b {
                return x;
            }
        }
        x.clamp(self.a, self.b)
    }
}

/// Smoothed counts as in Optuna: one kernel per observation (its choice plus
/// `prior_weight / n_kernels` spread by the prior), and the prior itself.
struct CatMixture {
    /// Each kernel's probabilities of the choices.
    rows: Vec<Vec<f64>>,
    weights: Vec<f64>,
    cumulative: Vec<f64>,
}

impl CatMixture {
    fn fit(xs: &[f64], ws: &[f64], prior_weight: f64, prior: &[f64]) -> CatMixture {
        let n = prior.len();
        let with_prior = ws.len() > xs.len();
        let fill = prior_weight / ws.len() as f64;
        let mut rows: Vec<Vec<f64>> = xs
            .iter()
            .map(|&x| {
                let choice = x.round().clamp(0.0, (n - 1) as f64) as usize;
                let mut row: Vec<f64> = prior.iter().map(|p| fill * n as f64 * p).collect();
                row[choice] += 1.0;
                let total: f64 = row.iter().sum();
                row.iter().map(|r| r / total).collect()
            })
            .collect();
        if with_prior {
            rows.push(prior.to_vec());
        }
        CatMixture {
            rows,
            cumulative: cumulative(ws),
            weights: ws.to_vec(),
        }
    }
}

fn sample_categorical(probs: &[f64], rng: &mut impl Rng) -> usize {
    let r = rng.gen::<f64>() * probs.iter().sum::<f64>();
    let mut acc = 0.0;
    for (c, p) in probs.iter().enumerate() {
        acc += p;
        if r < acc {
            return c;
        }
    }
    // Rounding left `r` past the sum: the last choice with any mass.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// ln erfc(x) for x ≥ 0 without underflow: Numerical Recipes' `erfcc` (Chebyshev fit,
/// relative error below 1.2e-7 everywhere) kept in log form.
pub(crate) fn ln_erfc_nonneg(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t.ln() - x * x + poly
}

/// ln Φ(z), the standard normal CDF.
fn ln_ndtr(z: f64) -> f64 {
    if z <= 0.0 {
        ln_erfc_nonneg(-z / std::f64::consts::SQRT_2) - std::f64::consts::LN_2
    } else {
        (-0.5 * ln_erfc_nonneg(z / std::f64::consts::SQRT_2).exp()).ln_1p()
    }
}

/// ln(Φ(hi) − Φ(lo)), accurate in both tails.
fn ln_gauss_mass(lo: f64, hi: f64) -> f64 {
    if lo.is_nan() || hi.is_nan() || lo >= hi {
        return f64::NEG_INFINITY;
    }
    if lo >= 0.0 {
        // Upper tail: mirror it into the lower one, where Φ has relative precision.
        return ln_gauss_mass(-hi, -lo);
    }
    let mass = if hi <= 0.0 {
        let (l_hi, l_lo) = (ln_ndtr(hi), ln_ndtr(lo));
        l_hi + (-(l_lo - l_hi).exp()).ln_1p()
    } else {
        let below = (ln_ndtr(lo)).exp();
        let above = (ln_ndtr(-hi)).exp();
        (1.0 - below - above).ln()
    };
    if mass.is_finite() {
        mass
    } else {
        // A cell so narrow that the CDF's precision cannot resolve it: midpoint rule.
        let mid = 0.5 * (lo + hi);
        -0.5 * mid * mid - LN_SQRT_2PI + (hi - lo).ln()
    }
}

#[cfg(test)]
mod tests;
