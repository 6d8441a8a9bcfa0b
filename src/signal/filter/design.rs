//! The Butterworth band-pass design. Each step mirrors scipy's `_filter_design.py`; comments
//! name the NumPy operation a line reproduces when its rounding matters.

/// A complex number whose operations round like NumPy's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct C64 {
    pub(super) re: f64,
    pub(super) im: f64,
}

impl C64 {
    pub(super) const fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }

    /// A real scalar promoted to complex, as NumPy does before mixed arithmetic.
    pub(super) const fn real(re: f64) -> Self {
        C64 { re, im: 0.0 }
    }

    pub(super) fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }

    pub(super) fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }

    pub(super) fn neg(self) -> C64 {
        C64::new(-self.re, -self.im)
    }

    pub(super) fn conj(self) -> C64 {
        C64::new(self.re, -self.im)
    }

    /// Element-wise array multiply: NumPy's SIMD loop (AVX2/AVX-512 builds) fuses one
    /// product into each part.
    pub(super) fn mul_simd(self, o: C64) -> C64 {
        C64::new(
            self.re.mul_add(o.re, -(self.im * o.im)),
            self.re.mul_add(o.im, self.im * o.re),
        )
    }

    /// The textbook product, as NumPy's `prod` reduction and OpenBLAS's one-term dot give it.
    pub(super) fn mul_plain(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }

    /// `z ** 2` (NumPy's `square` loop, fused real part).
    pub(super) fn square(self) -> C64 {
        C64::new(
            self.re.mul_add(self.re, -(self.im * self.im)),
            self.re * self.im + self.im * self.re,
        )
    }

    /// NumPy's complex division (Smith's algorithm with a reciprocal).
    pub(super) fn div(self, o: C64) -> C64 {
        let (a, b, c, d) = (self.re, self.im, o.re, o.im);
        if c.abs() >= d.abs() {
            let rat = d / c;
            let scl = 1.0 / (c + d * rat);
            C64::new((a + b * rat) * scl, (b - a * rat) * scl)
        } else {
            let rat = c / d;
            let scl = 1.0 / (d + c * rat);
            C64::new((a * rat + b) * scl, (b * rat - a) * scl)
        }
    }

    pub(super) fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// glibc's `csqrt` (which NumPy calls) for finite arguments.
    pub(super) fn sqrt(self) -> C64 {
        let (x, y) = (self.re, self.im);
        if y == 0.0 {
            return if x < 0.0 {
                C64::new(0.0, (-x).sqrt().copysign(y))
            } else {
                C64::new(x.sqrt().abs(), 0.0_f64.copysign(y))
            };
        }
        if x == 0.0 {
            let r = (0.5 * y.abs()).sqrt();
            return C64::new(r, r.copysign(y));
        }
        let d = x.hypot(y);
        let (r, s) = if x > 0.0 {
            let r = (0.5 * (d + x)).sqrt();
            (r, 0.5 * (y / r))
        } else {
            let s = (0.5 * (d - x)).sqrt();
            ((0.5 * (y / s)).abs(), s)
        };
        C64::new(r, s.copysign(y))
    }

    /// glibc's `cexp` for finite arguments.
    pub(super) fn exp(self) -> C64 {
        let (sin, cos) = if self.im.abs() > f64::MIN_POSITIVE {
            self.im.sin_cos()
        } else {
            (self.im, 1.0)
        };
        let e = self.re.exp();
        C64::new(e * cos, e * sin)
    }

    pub(super) fn is_real(self) -> bool {
        self.im == 0.0
    }
}

/// `buttap(N)`: poles `-exp(1j * pi * arange(-N + 1, N, 2) / (2 * N))`, no zeros, gain 1.
pub(super) fn buttap(order: usize) -> Vec<C64> {
    let j_pi = C64::new(0.0, std::f64::consts::PI); // Python's `1j * pi`
    let two_n = C64::real((2 * order) as f64);
    (0..order)
        .map(|i| {
            let m = (2 * i) as f64 - (order as f64 - 1.0);
            j_pi.mul_simd(C64::real(m)).div(two_n).exp().neg()
        })
        .collect()
}

/// `lp2bp_zpk(z=[], p, k=1, wo, bw)`: zeros `(0,)*N`, poles `p_lp ± sqrt(p_lp² - wo²)`.
pub(super) fn lp2bp_zpk(p: &[C64], wo: f64, bw: f64) -> (Vec<C64>, Vec<C64>, f64) {
    let degree = p.len();
    let p_lp: Vec<C64> = p
        .iter()
        .map(|&p| p.mul_simd(C64::real(bw)).div(C64::real(2.0)))
        .collect();
    let wo2 = C64::real(wo * wo);
    let roots: Vec<C64> = p_lp.iter().map(|p| p.square().sub(wo2).sqrt()).collect();
    let mut p_bp: Vec<C64> = p_lp.iter().zip(&roots).map(|(p, r)| p.add(*r)).collect();
    p_bp.extend(p_lp.iter().zip(&roots).map(|(p, r)| p.sub(*r)));
    let z_bp = vec![C64::real(0.0); degree];
    // `bw ** degree` is C's pow (Rust's powf calls the same libm), not repeated products.
    let k_bp = bw.powf(degree as f64);
    (z_bp, p_bp, k_bp)
}

/// `bilinear_zpk(z, p, k, fs=2)`: `(4 + s) / (4 - s)`, extra zeros at -1.
pub(super) fn bilinear_zpk(z: &[C64], p: &[C64], k: f64) -> (Vec<C64>, Vec<C64>, f64) {
    let fs2 = C64::real(4.0);
    let degree = p.len() - z.len();
    let map = |s: &C64| fs2.add(*s).div(fs2.sub(*s));
    let mut z_z: Vec<C64> = z.iter().map(map).collect();
    z_z.extend(std::iter::repeat_n(C64::real(-1.0), degree));
    let p_z: Vec<C64> = p.iter().map(map).collect();
    // np.prod multiplies left to right with the plain product.
    let prod = |v: &[C64]| {
        v.iter()
            .map(|s| fs2.sub(*s))
            .reduce(C64::mul_plain)
            .unwrap_or(C64::real(1.0))
    };
    let k_z = k * prod(z).div(prod(p)).re;
    (z_z, p_z, k_z)
}

/// `np.poly(roots)` as scipy computes it: repeated `np.convolve(a, [1, -r])`, whose complex
/// dot products OpenBLAS's `zdotu` evaluates with fused accumulation. The imaginary parts are
/// returned too; for conjugate-symmetric roots scipy keeps only the real parts.
pub(super) fn poly(roots: &[C64]) -> Vec<C64> {
    let mut a = vec![C64::real(1.0)];
    for r in roots {
        let q = r.neg();
        let mut next = Vec::with_capacity(a.len() + 1);
        next.push(a[0]);
        for k in 1..a.len() {
            let (x0, x1) = (a[k - 1], a[k]);
            // zdotu over ([x0, x1], [q, 1]): four running sums, each updated with an fma.
            let d0 = x1.re.mul_add(1.0, x0.re * q.re);
            let d1 = x1.im.mul_add(0.0, x0.im * q.im);
            let d2 = x1.re.mul_add(0.0, x0.re * q.im);
            let d3 = x1.im.mul_add(1.0, x0.im * q.re);
            next.push(C64::new(d0 - d1, d2 + d3));
        }
        next.push(a[a.len() - 1].mul_plain(q));
        a = next;
    }
    a
}

/// `_cplxreal`: complex roots merged into one representative per conjugate pair (positive
/// imaginary part, averaged), and the real roots, each sorted as scipy sorts them.
pub(super) fn cplxreal(z: &[C64]) -> (Vec<C64>, Vec<f64>) {
    let tol = 100.0 * f64::EPSILON;
    let mut sorted = z.to_vec();
    // np.lexsort((abs(imag), real)) is stable.
    sorted.sort_by(|a, b| {
        a.re.total_cmp(&b.re)
            .then(a.im.abs().total_cmp(&b.im.abs()))
    });
    let is_real = |c: &C64| c.im.abs() <= tol * c.abs();
    let reals: Vec<f64> = sorted.iter().filter(|c| is_real(c)).map(|c| c.re).collect();
    let complex: Vec<C64> = sorted.iter().filter(|c| !is_real(c)).copied().collect();
    let mut zp: Vec<C64> = complex.iter().filter(|c| c.im > 0.0).copied().collect();
    let mut zn: Vec<C64> = complex.iter().filter(|c| c.im < 0.0).copied().collect();
    // The design produces exact conjugate pairs; a mismatch here would be a bug in this file.
    assert_eq!(zp.len(), zn.len(), "unpaired complex root");
    // Runs of (nearly) equal real parts are re-sorted by |imag| so that pairs line up.
    let mut start = 0;
    while start < zp.len() {
        let mut stop = start;
        while stop + 1 < zp.len() && zp[stop + 1].re - zp[stop].re <= tol * zp[stop].abs() {
            stop += 1;
        }
        if stop > start {
            for chunk in [&mut zp[start..=stop], &mut zn[start..=stop]] {
                chunk.sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
            }
        }
        start = stop + 1;
    }
    let zc = zp
        .iter()
        .zip(&zn)
        .map(|(p, n)| p.add(n.conj()).div(C64::real(2.0)))
        .collect();
    (zc, reals)
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Which {
    Real,
    Complex,
    Any,
}

/// `_nearest_real_complex_idx`: index of the element of `from` nearest to `to` among the
/// real, complex or all elements (first one on ties).
pub(super) fn nearest(from: &[C64], to: C64, which: Which) -> usize {
    let mut order: Vec<usize> = (0..from.len()).collect();
    order.sort_by(|&i, &j| from[i].sub(to).abs().total_cmp(&from[j].sub(to).abs()));
    let wanted = |i: &usize| match which {
        Which::Any => true,
        Which::Real => from[*i].is_real(),
        Which::Complex => !from[*i].is_real(),
    };
    *order
        .iter()
        .find(|i| wanted(i))
        .expect("zpk2sos pairing found no candidate zero")
}

/// Index of the pole nearest the unit circle (`np.argmin(abs(1 - abs(p)))`), optionally among
/// a subset.
pub(super) fn worst(p: &[C64], among: impl Iterator<Item = usize>) -> usize {
    let distance = |i: usize| (1.0 - p[i].abs()).abs();
    among
        .reduce(|best, i| {
            if distance(i) < distance(best) {
                i
            } else {
                best
            }
        })
        .expect("zpk2sos pairing ran out of poles")
}

/// `_single_zpksos`: one section from up to two zeros and poles, right-aligned.
pub(super) fn single_section(z: &[C64], p: &[C64]) -> [f64; 6] {
    let mut section = [0.0; 6];
    let b = poly(z);
    let a = poly(p);
    for (slot, c) in section[3 - b.len()..3].iter_mut().zip(&b) {
        *slot = c.re;
    }
    for (slot, c) in section[6 - a.len()..6].iter_mut().zip(&a) {
        *slot = c.re;
    }
    section
}

/// `zpk2sos(z, p, k, pairing='nearest')` for a digital filter with as many zeros as poles.
pub(super) fn zpk2sos_nearest(z: &[C64], p: &[C64], k: f64) -> Vec<[f64; 6]> {
    assert_eq!(
        z.len(),
        p.len(),
        "band-pass designs have as many zeros as poles"
    );
    let (mut z, mut p) = (z.to_vec(), p.to_vec());
    let n_sections = p.len().div_ceil(2);
    if p.len() % 2 == 1 {
        p.push(C64::real(0.0));
        z.push(C64::real(0.0));
    }
    let flatten = |roots: &[C64]| -> Vec<C64> {
        let (complex, real) = cplxreal(roots);
        complex
            .into_iter()
            .chain(real.into_iter().map(C64::real))
            .collect()
    };
    let mut z = flatten(&z);
    let mut p = flatten(&p);
    let count_real = |v: &[C64]| v.iter().filter(|c| c.is_real()).count();
    let zero = C64::real(0.0);
    let mut sos = vec![[0.0; 6]; n_sections];
    // Sections are built from the last: the poles nearest the unit circle go last.
    for si in (0..n_sections).rev() {
        let p1 = p.remove(worst(&p, 0..p.len()));
        sos[si] = if p1.is_real() && count_real(&p) == 0 {
            let z1 = z.remove(nearest(&z, p1, Which::Real));
            single_section(&[z1, zero], &[p1, zero])
        } else if p.len() + 1 == z.len()
            && !p1.is_real()
            && count_real(&p) == 1
            && count_real(&z) == 1
        {
            // One real pole and one real zero must stay together: pair with a complex zero.
            let z1 = z.remove(nearest(&z, p1, Which::Complex));
            single_section(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                let reals = (0..p.len()).filter(|&i| p[i].is_real());
                p.remove(worst(&p, reals))
            } else {
                p1.conj()
            };
            if z.is_empty() {
                single_section(&[], &[p1, p2])
            } else {
                let z1 = z.remove(nearest(&z, p1, Which::Any));
                if !z1.is_real() {
                    single_section(&[z1, z1.conj()], &[p1, p2])
                } else if !z.is_empty() {
                    let z2 = z.remove(nearest(&z, p1, Which::Real));
                    single_section(&[z1, z2], &[p1, p2])
                } else {
                    single_section(&[z1], &[p1, p2])
                }
            }
        };
    }
    for c in &mut sos[0][..3] {
        *c *= k;
    }
    sos
}
