//! Fitting: split the classes into binary problems as libsvm does, solve each with our port of
//! libsvm's SMO solver (`smo.rs`), and copy the solution into the model's own types.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::smo::{self, SmoOptions};
use super::{BinaryMachine, CheckedSvmParams, FittedKernel, Kernel, Multiclass, Platt, SvmModel};
use crate::{Error, Result};

/// Folds of the internal cross-validation whose decision values Platt's sigmoid is fitted
/// on (libsvm's choice).
const PLATT_FOLDS: usize = 5;

/// A solved binary problem in the model's terms, support vectors as rows of the problem.
#[derive(Debug, Clone)]
pub(super) struct Solution {
    pub support: Vec<usize>,
    pub dual_coef: Vec<f64>,
    pub intercept: f64,
}

/// One binary problem as libsvm poses it.
pub(super) struct BinaryProblem {
    /// The machine's sides, as [`BinaryMachine`] names them.
    pub positive: usize,
    pub negative: Option<usize>,
    /// Training rows, in libsvm's order.
    pub rows: Vec<usize>,
    /// Per row of `rows`: on libsvm's +1 side.
    pub libsvm_positive: Vec<bool>,
    /// The solution must be negated to be oriented towards `positive`.
    pub flip: bool,
}

impl Solution {
    /// The same machine seen from the other side: every sign flips (exactly).
    fn flipped(mut self) -> Solution {
        self.dual_coef.iter_mut().for_each(|a| *a = -*a);
        self.intercept = -self.intercept;
        self
    }
}

impl CheckedSvmParams {
    /// Fit on `x` (trials × features) and integer labels `y`.
    pub fn fit(&self, x: ArrayView2<f64>, y: ArrayView1<i64>) -> Result<SvmModel> {
        validate(x, y)?;
        let mut classes: Vec<i64> = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(Error::Data(format!(
                "svm needs at least two classes, got only class `{}`",
                classes[0]
            )));
        }
        let class_of: Vec<usize> = y
            .iter()
            .map(|v| classes.binary_search(v).expect("label comes from the data"))
            .collect();
        let kernel = self.fitted_kernel(x)?;

        let n = x.nrows();
        let mut is_support = vec![false; n];
        let problems = self.binary_problems(&class_of, classes.len());
        let mut machines = Vec::with_capacity(problems.len());
        for problem in problems {
            let sub = select_rows(x, &problem.rows);
            let mut solution = self.solve(&kernel, sub.view(), &problem.libsvm_positive)?;
            if problem.flip {
                solution = solution.flipped();
            }
            let platt = if self.0.probability {
                let sides: Vec<bool> = problem
                    .rows
                    .iter()
                    .map(|&r| class_of[r] == problem.positive)
                    .collect();
                Some(self.cross_validated_platt(&kernel, sub.view(), &sides)?)
            } else {
                None
            };
            // Training-row indices for now; remapped to support-vector rows below.
            let support: Vec<usize> = solution.support.iter().map(|&s| problem.rows[s]).collect();
            for &r in &support {
                is_support[r] = true;
            }
            machines.push(BinaryMachine {
                positive: problem.positive,
                negative: problem.negative,
                support,
                dual_coef: solution.dual_coef,
                intercept: solution.intercept,
                platt,
            });
        }

        let sv_rows: Vec<usize> = (0..n).filter(|&r| is_support[r]).collect();
        let mut sv_index = vec![usize::MAX; n];
        for (s, &r) in sv_rows.iter().enumerate() {
            sv_index[r] = s;
        }
        for m in &mut machines {
            m.support.iter_mut().for_each(|s| *s = sv_index[*s]);
        }
        Ok(SvmModel {
            params: self.0.clone(),
            classes,
            n_features: x.ncols(),
            kernel,
            support_vectors: select_rows(x, &sv_rows),
            support_classes: sv_rows.iter().map(|&r| class_of[r]).collect(),
            machines,
        })
    }

    /// The binary problems of `k` classes (`class_of[r]` = class index of training row r), in
    /// the order of [`SvmModel::machines`].
    pub(super) fn binary_problems(&self, class_of: &[usize], k: usize) -> Vec<BinaryProblem> {
        let sides: Vec<(usize, Option<usize>)> = if k == 2 {
            // sklearn's binary orientation: positive decision values mean classes[1].
            vec![(1, Some(0))]
        } else {
            match self.0.multiclass {
                Multiclass::Ovo => (0..k)
                    .flat_map(|i| (i + 1..k).map(move |j| (i, Some(j))))
                    .collect(),
                Multiclass::Ovr => (0..k).map(|c| (c, None)).collect(),
            }
        };
        let n = class_of.len();
        sides
            .into_iter()
            .map(|(positive, negative)| {
                // libsvm's row order (svm_group_classes): the +1 class's rows, then the other
                // side's, each in training order. A binary problem is solved as libsvm solves
                // it, classes[0] as +1, and flipped to our orientation (positive = classes[1]).
                let flip = k == 2;
                let (first, second) = if flip {
                    (0, Some(1))
                } else {
                    (positive, negative)
                };
                let rows: Vec<usize> = (0..n)
                    .filter(|&r| class_of[r] == first)
                    .chain((0..n).filter(|&r| {
                        class_of[r] != first && second.is_none_or(|j| class_of[r] == j)
                    }))
                    .collect();
                let libsvm_positive = rows.iter().map(|&r| class_of[r] == first).collect();
                BinaryProblem {
                    positive,
                    negative,
                    rows,
                    libsvm_positive,
                    flip,
                }
            })
            .collect()
    }

    /// The kernel with `gamma` resolved on the training matrix.
    fn fitted_kernel(&self, x: ArrayView2<f64>) -> Result<FittedKernel> {
        let p = &self.0;
        let gamma = p.gamma.resolve(x);
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(Error::Data(format!(
                "svm gamma `{}` resolves to `{gamma}` on these features: rescale them",
                p.gamma
            )));
        }
        Ok(match p.kernel {
            Kernel::Linear => FittedKernel::Linear,
            Kernel::Rbf => FittedKernel::Rbf { gamma },
            Kernel::Poly => FittedKernel::Poly {
                gamma,
                coef0: p.coef0,
                degree: p.degree,
            },
            Kernel::Sigmoid => FittedKernel::Sigmoid {
                gamma,
                coef0: p.coef0,
            },
        })
    }

    /// Solve one binary problem (`positive[i]` = row i is on the +1 side) with libsvm's
    /// solver, shrinking on, as scikit-learn's `SVC` defaults.
    pub(super) fn solve(
        &self,
        kernel: &FittedKernel,
        x: ArrayView2<f64>,
        positive: &[bool],
    ) -> Result<Solution> {
        self.solve_with(kernel, x, positive, true)
    }

    pub(super) fn solve_with(
        &self,
        kernel: &FittedKernel,
        x: ArrayView2<f64>,
        positive: &[bool],
        shrinking: bool,
    ) -> Result<Solution> {
        let owned;
        let rows = match x.as_slice() {
            Some(s) => s,
            None => {
                owned = x.as_standard_layout().into_owned();
                owned.as_slice().expect("standard layout")
            }
        };
        let options = SmoOptions {
            c: self.0.c,
            eps: self.0.tol,
            shrinking,
            cache_bytes: smo::DEFAULT_CACHE_BYTES,
        };
        let s = smo::solve_c_svc(kernel, rows, x.ncols(), positive, options)?;
        // libsvm keeps every α that is not exactly zero, with coefficient y_i α_i.
        let (support, dual_coef): (Vec<usize>, Vec<f64>) = s
            .alpha
            .iter()
            .zip(positive)
            .enumerate()
            .filter(|(_, (a, _))| **a != 0.0)
            .map(|(i, (&a, &p))| (i, if p { a } else { -a }))
            .unzip();
        if !s.rho.is_finite() || dual_coef.iter().any(|a| !a.is_finite()) {
            return Err(Error::Numerical(format!(
                "svm training diverged (`{}` kernel gave non-finite coefficients): \
                 scale the features or lower `degree`",
                self.0.kernel
            )));
        }
        Ok(Solution {
            support,
            dual_coef,
            intercept: -s.rho,
        })
    }

    /// Platt's sigmoid on out-of-fold decision values, as libsvm's `svm_binary_svc_probability`
    /// but with deterministic stratified folds (the k-th trial of each side goes to fold
    /// k mod 5) instead of a random permutation.
    fn cross_validated_platt(
        &self,
        kernel: &FittedKernel,
        x: ArrayView2<f64>,
        positive: &[bool],
    ) -> Result<Platt> {
        let n = positive.len();
        let (mut n_pos, mut n_neg) = (0, 0);
        let fold: Vec<usize> = positive
            .iter()
            .map(|&p| {
                let counter = if p { &mut n_pos } else { &mut n_neg };
                *counter += 1;
                (*counter - 1) % PLATT_FOLDS
            })
            .collect();

        let mut dec = vec![0.0; n];
        for f in 0..PLATT_FOLDS {
            let (train, test): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold[i] != f);
            if test.is_empty() {
                continue;
            }
            let labels: Vec<bool> = train.iter().map(|&i| positive[i]).collect();
            let n_true = labels.iter().filter(|&&p| p).count();
            if n_true == 0 || n_true == labels.len() {
                // libsvm: a fold trained on one side only says that side with value ±1.
                let v = match (labels.is_empty(), n_true > 0) {
                    (true, _) => 0.0,
                    (false, true) => 1.0,
                    (false, false) => -1.0,
                };
                test.iter().for_each(|&i| dec[i] = v);
                continue;
            }
            let sub = select_rows(x, &train);
            let s = self.solve(kernel, sub.view(), &labels)?;
            let mut buf = Vec::new();
            for &i in &test {
                let row = x.row(i);
                let xi = super::contiguous(&row, &mut buf);
                dec[i] = s
                    .support
                    .iter()
                    .zip(&s.dual_coef)
                    .map(|(&r, &a)| a * kernel.eval(row_slice(&sub, r), xi))
                    .sum::<f64>()
                    + s.intercept;
            }
        }
        Ok(Platt::fit(&dec, positive))
    }
}

/// Empty, non-finite or mismatched input is the caller's data error.
fn validate(x: ArrayView2<f64>, y: ArrayView1<i64>) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::Data("cannot fit an svm on `0` trials".into()));
    }
    if x.ncols() == 0 {
        return Err(Error::Data("cannot fit an svm on `0` features".into()));
    }
    if x.nrows() != y.len() {
        return Err(Error::Data(format!(
            "svm got `{}` trials but `{}` labels",
            x.nrows(),
            y.len()
        )));
    }
    if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Data(format!(
            "feature `{j}` of trial `{i}` is `{v}`: svm features must be finite"
        )));
    }
    Ok(())
}

/// The given rows as a new standard-layout (row-contiguous) matrix.
pub(super) fn select_rows(x: ArrayView2<f64>, rows: &[usize]) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), x.ncols()), |(s, j)| x[(rows[s], j)])
}

/// A row of a matrix made by [`select_rows`].
fn row_slice(x: &Array2<f64>, r: usize) -> &[f64] {
    let n = x.ncols();
    &x.as_slice().expect("select_rows makes standard layout")[r * n..(r + 1) * n]
}
