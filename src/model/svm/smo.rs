//! libsvm's SMO solver for C-SVC, ported line by line from `Solver` in libsvm 3.x `svm.cpp`
//! (the copy scikit-learn's `SVC` runs): second-order working-set selection (WSS3, Fan, Chen &
//! Lin 2005), box-clipped two-variable updates, shrinking with gradient reconstruction, `rho`
//! from the free variables, and a cache of kernel rows.
//!
//! Kept deliberately identical to libsvm where it changes numbers: the kernel matrix is stored
//! in `f32` (libsvm's `Qfloat`), the RBF kernel is computed as `exp(-γ(|x|²+|y|²-2x·y))`, loops
//! run in libsvm's order and shrinking swaps variables exactly as libsvm's `swap_index`, so that
//! ties in the working-set selection break the same way.

use super::FittedKernel;
use crate::{Error, Result};

/// libsvm's `TAU`: the curvature used when `Q_ii + Q_jj - 2 Q_ij` is not positive.
const TAU: f64 = 1e-12;

/// scikit-learn's default `cache_size` (200 MB) for the kernel rows.
pub(super) const DEFAULT_CACHE_BYTES: usize = 200 << 20;

/// Solver settings (the C-SVC subset of libsvm's `svm_parameter`).
#[derive(Debug, Clone, Copy)]
pub(super) struct SmoOptions {
    pub c: f64,
    /// Stopping tolerance on the maximal violating pair (libsvm's `eps`, sklearn's `tol`).
    pub eps: f64,
    pub shrinking: bool,
    pub cache_bytes: usize,
}

/// The solution of one binary C-SVC problem, in the order of the rows given.
#[derive(Debug, Clone)]
pub(super) struct SmoSolution {
    /// `alpha_i` in `[0, C]` (unsigned).
    pub alpha: Vec<f64>,
    pub rho: f64,
    /// Diagnostics, read by the tests (sklearn's `n_iter_`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub iterations: usize,
    /// The smallest active set shrinking reached (`l` without shrinking).
    #[cfg_attr(not(test), allow(dead_code))]
    pub min_active: usize,
}

/// Solve `min ½αᵀQα - eᵀα` s.t. `yᵀα = 0`, `0 ≤ α ≤ C`, with `Q_ij = y_i y_j K(x_i, x_j)`, as
/// libsvm's `solve_c_svc`. `x` is `l × d` row-major; `positive[i]` is `y_i = +1`.
pub(super) fn solve_c_svc(
    kernel: &FittedKernel,
    x: &[f64],
    d: usize,
    positive: &[bool],
    options: SmoOptions,
) -> Result<SmoSolution> {
    let l = positive.len();
    assert_eq!(x.len(), l * d, "one row of `d` features per label");
    let y: Vec<i8> = positive.iter().map(|&p| if p { 1 } else { -1 }).collect();
    let q = KernelRows::new(kernel, x, d, &y, options.cache_bytes);
    let qd: Vec<f64> = (0..l).map(|i| q.kernel_value(i, i)).collect();
    let mut solver = Solver {
        l,
        active_size: l,
        y,
        g: vec![-1.0; l],
        g_bar: vec![0.0; l],
        alpha: vec![0.0; l],
        status: vec![Status::Lower; l],
        p: vec![-1.0; l],
        active_set: (0..l).collect(),
        qd,
        c: options.c,
        eps: options.eps,
        unshrink: false,
        q,
    };
    solver.solve(options.shrinking)
}

/// libsvm's `powi`: square-and-multiply, so that poly kernels round as libsvm's do.
#[inline]
pub(super) fn powi(base: f64, times: u32) -> f64 {
    let (mut tmp, mut ret) = (base, 1.0);
    let mut t = times;
    while t > 0 {
        if t % 2 == 1 {
            ret *= tmp;
        }
        tmp *= tmp;
        t /= 2;
    }
    ret
}

/// Vectors at least this long are summed in four lanes, fused or not.
const SEQUENTIAL_DOT_MAX_LEN: usize = 16;

/// `x·y` for the kernel. scikit-learn's libsvm computes it through BLAS `ddot`, whose OpenBLAS
/// kernels for CPUs with FMA run short vectors as a sequential loop of fused multiply-adds.
/// In a build with FMA enabled (`-C target-cpu=native`, `x86-64-v3`) we do the same, and the
/// solver then takes sklearn's exact path (same SMO iteration counts, intercepts equal to the
/// last bit on the fixtures). In a baseline x86-64 build `mul_add` is a libm call that makes
/// kernel rows 2.5× slower, so we sum unfused as upstream libsvm does: the results differ
/// from sklearn's in the last bits, and now and then a fit stops one SMO step apart.
/// Long vectors, which OpenBLAS sums in SIMD blocks whose order we do not copy, take four
/// lanes.
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < SEQUENTIAL_DOT_MAX_LEN {
        let mut sum = 0.0;
        for (x, y) in a.iter().zip(b) {
            sum = if cfg!(target_feature = "fma") {
                x.mul_add(*y, sum)
            } else {
                sum + x * y
            };
        }
        return sum;
    }
    let mut lanes = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for k in 0..4 {
            lanes[k] += x[k] * y[k];
        }
    }
    let mut sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Rows of `Q` computed on demand and kept up to a byte budget, the least recently used row
/// evicted first (libsvm's `Cache`). As in libsvm, rows and their entries are in the solver's
/// current position order, and [`KernelRows::swap`] permutes every cached row when shrinking
/// swaps two variables, so that the solver's loops read rows contiguously.
struct KernelRows<'a> {
    kernel: FittedKernel,
    x: &'a [f64],
    d: usize,
    /// ±1 by original row.
    y: Vec<i8>,
    /// `|x_i|²` by original row, for the RBF kernel as libsvm computes it.
    x_square: Vec<f64>,
    /// Original row at each position.
    order: Vec<usize>,
    rows: Vec<Option<Box<[f32]>>>,
    last_used: Vec<u64>,
    clock: u64,
    cached: usize,
    capacity: usize,
}

impl<'a> KernelRows<'a> {
    fn new(kernel: &FittedKernel, x: &'a [f64], d: usize, y: &[i8], cache_bytes: usize) -> Self {
        let l = y.len();
        let x_square = (0..l)
            .map(|i| {
                let r = &x[i * d..(i + 1) * d];
                dot(r, r)
            })
            .collect();
        let row_bytes = (l * std::mem::size_of::<f32>()).max(1);
        KernelRows {
            kernel: kernel.clone(),
            x,
            d,
            y: y.to_vec(),
            x_square,
            order: (0..l).collect(),
            rows: vec![None; l],
            last_used: vec![0; l],
            clock: 0,
            cached: 0,
            // Two rows at least: an SMO step needs both of its rows at once.
            capacity: (cache_bytes / row_bytes).max(2),
        }
    }

    fn row_of(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// `K(x_i, x_j)` of original rows i and j, as libsvm's training-side `Kernel::kernel_*`
    /// computes it.
    #[inline]
    fn kernel_value(&self, i: usize, j: usize) -> f64 {
        let (a, b) = (self.row_of(i), self.row_of(j));
        match self.kernel {
            FittedKernel::Linear => dot(a, b),
            FittedKernel::Rbf { gamma } => {
                (-gamma * (self.x_square[i] + self.x_square[j] - 2.0 * dot(a, b))).exp()
            }
            FittedKernel::Poly {
                gamma,
                coef0,
                degree,
            } => powi(gamma * dot(a, b) + coef0, degree),
            FittedKernel::Sigmoid { gamma, coef0 } => (gamma * dot(a, b) + coef0).tanh(),
        }
    }

    /// Make the row at position `i` resident, never evicting the one at position `keep`.
    fn ensure(&mut self, i: usize, keep: Option<usize>) {
        self.clock += 1;
        self.last_used[i] = self.clock;
        if self.rows[i].is_some() {
            return;
        }
        if self.cached >= self.capacity {
            let victim = (0..self.rows.len())
                .filter(|&r| self.rows[r].is_some() && Some(r) != keep && r != i)
                .min_by_key(|&r| self.last_used[r])
                .expect("capacity is at least two rows");
            self.rows[victim] = None;
            self.cached -= 1;
        }
        let oi = self.order[i];
        let yi = f64::from(self.y[oi]);
        let row: Box<[f32]> = (0..self.rows.len())
            .map(|j| {
                // Symmetric and computed identically either way round: reuse a cached row.
                match &self.rows[j] {
                    Some(other) => other[i],
                    None => {
                        let oj = self.order[j];
                        (yi * f64::from(self.y[oj]) * self.kernel_value(oi, oj)) as f32
                    }
                }
            })
            .collect();
        self.rows[i] = Some(row);
        self.cached += 1;
    }

    fn get(&self, i: usize) -> &[f32] {
        self.rows[i]
            .as_deref()
            .expect("row made resident by ensure")
    }

    /// libsvm's `Cache::swap_index`: positions i and j trade places in every cached row.
    fn swap(&mut self, i: usize, j: usize) {
        self.order.swap(i, j);
        self.rows.swap(i, j);
        self.last_used.swap(i, j);
        for row in self.rows.iter_mut().flatten() {
            row.swap(i, j);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Lower,
    Upper,
    Free,
}

/// libsvm's `Solver` state; every per-variable vector is in the current (swapped) position
/// order, `active_set[k]` is the original row at position `k`.
struct Solver<'a> {
    l: usize,
    active_size: usize,
    y: Vec<i8>,
    g: Vec<f64>,
    /// Gradient part from variables at the upper bound: `Σ_{α_j = C} C Q_ij`.
    g_bar: Vec<f64>,
    alpha: Vec<f64>,
    status: Vec<Status>,
    p: Vec<f64>,
    active_set: Vec<usize>,
    qd: Vec<f64>,
    c: f64,
    eps: f64,
    unshrink: bool,
    q: KernelRows<'a>,
}

impl Solver<'_> {
    fn is_upper(&self, i: usize) -> bool {
        self.status[i] == Status::Upper
    }

    fn is_lower(&self, i: usize) -> bool {
        self.status[i] == Status::Lower
    }

    fn is_free(&self, i: usize) -> bool {
        self.status[i] == Status::Free
    }

    fn update_alpha_status(&mut self, i: usize) {
        self.status[i] = if self.alpha[i] >= self.c {
            Status::Upper
        } else if self.alpha[i] <= 0.0 {
            Status::Lower
        } else {
            Status::Free
        };
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.y.swap(i, j);
        self.g.swap(i, j);
        self.status.swap(i, j);
        self.alpha.swap(i, j);
        self.p.swap(i, j);
        self.active_set.swap(i, j);
        self.g_bar.swap(i, j);
        self.qd.swap(i, j);
        self.q.swap(i, j);
    }

    fn solve(&mut self, shrinking: bool) -> Result<SmoSolution> {
        let l = self.l;
        // Every α starts at 0 (libsvm's C-SVC): G = p, no variable at the upper bound.
        for i in 0..l {
            self.update_alpha_status(i);
        }
        // libsvm caps at max(10⁷, 100·l) iterations (scikit-learn's max_iter=-1 then keeps
        // the unconverged solution), which at c = 1e6 ran 45 s before giving up. An iteration
        // costs O(l), so the work is capped instead: 10⁹ / l iterations (a few seconds), at
        // least 10⁵. Measured on one synthetic subject (l = 228–285, 5-fold): c = 1 needs
        // ~150 iterations, c = 100 ~4·10³, c = 1e4 ~1.6·10⁵, c = 1e6 ~9·10⁵.
        let max_iter = (1_000_000_000 / l.max(1)).clamp(100_000, 10_000_000);
        let mut iter = 0;
        let mut counter = l.min(1000) + 1;
        let mut min_active = l;
        while iter < max_iter {
            counter -= 1;
            if counter == 0 {
                counter = l.min(1000);
                if shrinking {
                    self.do_shrinking();
                    min_active = min_active.min(self.active_size);
                }
            }
            let (i, j) = match self.select_working_set() {
                Some(pair) => pair,
                None => {
                    self.reconstruct_gradient();
                    self.active_size = l;
                    match self.select_working_set() {
                        Some(pair) => {
                            counter = 1;
                            pair
                        }
                        None => break,
                    }
                }
            };
            iter += 1;
            self.take_step(i, j);
        }
        if iter >= max_iter {
            return Err(Error::Numerical(format!(
                "svm solver did not converge in `{max_iter}` iterations on {l} trials: lower \
                 `c` (on standardised features c beyond 1e3 rarely changes the model) or raise \
                 `tol`"
            )));
        }
        let rho = self.calculate_rho();
        let mut alpha = vec![0.0; l];
        for (k, &orig) in self.active_set.iter().enumerate() {
            alpha[orig] = self.alpha[k];
        }
        Ok(SmoSolution {
            alpha,
            rho,
            iterations: iter,
            min_active,
        })
    }

    /// Optimise the pair (i, j) analytically, clip to the box, update G and G_bar.
    fn take_step(&mut self, i: usize, j: usize) {
        self.q.ensure(i, None);
        self.q.ensure(j, Some(i));
        let (c_i, c_j) = (self.c, self.c);
        let (old_ai, old_aj) = (self.alpha[i], self.alpha[j]);
        let q_ij = f64::from(self.q.get(i)[j]);
        let alpha = &mut self.alpha;
        if self.y[i] != self.y[j] {
            let mut quad_coef = self.qd[i] + self.qd[j] + 2.0 * q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (-self.g[i] - self.g[j]) / quad_coef;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = diff;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > c_i - c_j {
                if alpha[i] > c_i {
                    alpha[i] = c_i;
                    alpha[j] = c_i - diff;
                }
            } else if alpha[j] > c_j {
                alpha[j] = c_j;
                alpha[i] = c_j + diff;
            }
        } else {
            let mut quad_coef = self.qd[i] + self.qd[j] - 2.0 * q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (self.g[i] - self.g[j]) / quad_coef;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c_i {
                if alpha[i] > c_i {
                    alpha[i] = c_i;
                    alpha[j] = sum - c_i;
                }
            } else if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > c_j {
                if alpha[j] > c_j {
                    alpha[j] = c_j;
                    alpha[i] = sum - c_j;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }

        let delta_ai = self.alpha[i] - old_ai;
        let delta_aj = self.alpha[j] - old_aj;
        let active = self.active_size;
        let (q_i, q_j) = (&self.q.get(i)[..active], &self.q.get(j)[..active]);
        for ((g, &qi), &qj) in self.g[..active].iter_mut().zip(q_i).zip(q_j) {
            *g += f64::from(qi) * delta_ai + f64::from(qj) * delta_aj;
        }

        let (ui, uj) = (self.is_upper(i), self.is_upper(j));
        self.update_alpha_status(i);
        self.update_alpha_status(j);
        for (t, was_upper, c_t) in [(i, ui, c_i), (j, uj, c_j)] {
            if was_upper != self.is_upper(t) {
                let q_t = self.q.get(t);
                // libsvm writes `G_bar[k] -= …` and `+= …`; negating the term is exact.
                let sign = if was_upper { -1.0 } else { 1.0 };
                for (gb, &q) in self.g_bar.iter_mut().zip(q_t) {
                    *gb += sign * (c_t * f64::from(q));
                }
            }
        }
    }

    /// WSS3: i maximises -y∇f over I_up; j minimises the second-order objective decrease.
    // Index loops over several parallel vectors, written as libsvm writes them.
    #[allow(clippy::needless_range_loop)]
    fn select_working_set(&mut self) -> Option<(usize, usize)> {
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;

        for t in 0..self.active_size {
            if self.y[t] == 1 {
                if !self.is_upper(t) && -self.g[t] >= gmax {
                    gmax = -self.g[t];
                    gmax_idx = Some(t);
                }
            } else if !self.is_lower(t) && self.g[t] >= gmax {
                gmax = self.g[t];
                gmax_idx = Some(t);
            }
        }

        let i = gmax_idx?;
        self.q.ensure(i, None);
        let q_i = self.q.get(i);
        let yi = f64::from(self.y[i]);
        for j in 0..self.active_size {
            let (grad_diff, quad_coef) = if self.y[j] == 1 {
                if self.is_lower(j) {
                    continue;
                }
                if self.g[j] >= gmax2 {
                    gmax2 = self.g[j];
                }
                (
                    gmax + self.g[j],
                    self.qd[i] + self.qd[j] - 2.0 * yi * f64::from(q_i[j]),
                )
            } else {
                if self.is_upper(j) {
                    continue;
                }
                if -self.g[j] >= gmax2 {
                    gmax2 = -self.g[j];
                }
                (
                    gmax - self.g[j],
                    self.qd[i] + self.qd[j] + 2.0 * yi * f64::from(q_i[j]),
                )
            };
            if grad_diff > 0.0 {
                let obj_diff = if quad_coef > 0.0 {
                    -(grad_diff * grad_diff) / quad_coef
                } else {
                    -(grad_diff * grad_diff) / TAU
                };
                if obj_diff <= obj_diff_min {
                    gmin_idx = Some(j);
                    obj_diff_min = obj_diff;
                }
            }
        }

        // NaN gradients fail every comparison and end the loop here; rho then says so.
        if gmax + gmax2 < self.eps {
            return None;
        }
        gmin_idx.map(|j| (i, j))
    }

    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        if self.is_upper(i) {
            if self.y[i] == 1 {
                -self.g[i] > gmax1
            } else {
                -self.g[i] > gmax2
            }
        } else if self.is_lower(i) {
            if self.y[i] == 1 {
                self.g[i] > gmax2
            } else {
                self.g[i] > gmax1
            }
        } else {
            false
        }
    }

    fn do_shrinking(&mut self) {
        let mut gmax1 = f64::NEG_INFINITY; // max { -y_i ∇f_i | i ∈ I_up }
        let mut gmax2 = f64::NEG_INFINITY; // max { y_i ∇f_i | i ∈ I_low }
        for i in 0..self.active_size {
            let g = self.g[i];
            if self.y[i] == 1 {
                if !self.is_upper(i) && -g >= gmax1 {
                    gmax1 = -g;
                }
                if !self.is_lower(i) && g >= gmax2 {
                    gmax2 = g;
                }
            } else {
                if !self.is_upper(i) && -g >= gmax2 {
                    gmax2 = -g;
                }
                if !self.is_lower(i) && g >= gmax1 {
                    gmax1 = g;
                }
            }
        }

        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.l;
        }

        let mut i = 0;
        while i < self.active_size {
            if self.be_shrunk(i, gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > i {
                    if !self.be_shrunk(self.active_size, gmax1, gmax2) {
                        self.swap_index(i, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            i += 1;
        }
    }

    /// Recompute G of the shrunk variables from G_bar and the free variables.
    #[allow(clippy::needless_range_loop)]
    fn reconstruct_gradient(&mut self) {
        let (active, l) = (self.active_size, self.l);
        if active == l {
            return;
        }
        for j in active..l {
            self.g[j] = self.g_bar[j] + self.p[j];
        }
        let nr_free = (0..active).filter(|&j| self.is_free(j)).count();
        // libsvm's choice of loop order (by the cost of the rows each needs).
        if nr_free * l > 2 * active * (l - active) {
            for i in active..l {
                self.q.ensure(i, None);
                let q_i = self.q.get(i);
                for j in 0..active {
                    if self.status[j] == Status::Free {
                        self.g[i] += self.alpha[j] * f64::from(q_i[j]);
                    }
                }
            }
        } else {
            for i in 0..active {
                if self.is_free(i) {
                    self.q.ensure(i, None);
                    let q_i = self.q.get(i);
                    let alpha_i = self.alpha[i];
                    for j in active..l {
                        self.g[j] += alpha_i * f64::from(q_i[j]);
                    }
                }
            }
        }
    }

    /// `rho`: the mean of y∇f over free variables, else the middle of the feasible interval.
    fn calculate_rho(&self) -> f64 {
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut nr_free, mut sum_free) = (0usize, 0.0);
        for i in 0..self.active_size {
            let yg = f64::from(self.y[i]) * self.g[i];
            if self.is_upper(i) {
                if self.y[i] == -1 {
                    ub = ub.min(yg);
                } else {
                    lb = lb.max(yg);
                }
            } else if self.is_lower(i) {
                if self.y[i] == 1 {
                    ub = ub.min(yg);
                } else {
                    lb = lb.max(yg);
                }
            } else {
                nr_free += 1;
                sum_free += yg;
            }
        }
        if nr_free > 0 {
            sum_free / nr_free as f64
        } else {
            (ub + lb) / 2.0
        }
    }
}
