//! The fast one-pass evaluation: the same sums as [`super::objective::sum_range`], computed with
//! prototypes stored component-minor (`D × K`, so the loop over components vectorises), a
//! branch-free exponential, regime-specialised accumulation, and fixed chunks of points summed
//! in parallel and merged in order (so the result does not depend on thread scheduling).
//!
//! Speed never changes a reported number beyond rounding: tests compare every output with the
//! straightforward path to `1e-12` relative.

use rayon::prelude::*;

use super::model::{ComponentTerms, Regime, Score, State};
use super::objective::{Problem, Sums};

/// Points per parallel chunk. Fixed, so the order of floating-point sums is fixed.
pub const CHUNK: usize = 2048;

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split for Cody–Waite reduction (fdlibm's `ln2_hi`, whose low 32 bits are zero so
/// `n·LN2_HI` is exact, and `ln2_lo = ln 2 − ln2_hi`).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1.5·2^52`: adding it rounds to an integer held in the low mantissa bits.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^x` without branches or library calls, so loops over it vectorise. Accurate to about one
/// unit in the last place for `x ≥ −708` (Cody–Waite reduction `x = n ln 2 + r`, `|r| ≤ ln2/2`,
/// and a degree-12 Taylor polynomial whose remainder is below `2e-16`); `0` below `−708`
/// (where `e^x < 3e-308`); the arguments here are always `≤ 0` (maximum subtracted).
#[inline(always)]
#[must_use]
pub fn exp(x: f64) -> f64 {
    exp_with::<false>(x)
}

/// `a·b + c`, fused on CPUs with FMA (`FMA = true`; only instantiated where the CPU has it,
/// elsewhere `mul_add` would be a slow library call).
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn exp_with<const FMA: bool>(x: f64) -> f64 {
    let xc = x.clamp(-708.0, 709.0);
    let t = madd::<FMA>(xc, LOG2E, ROUND);
    let n = t - ROUND;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, xc));
    // Horner form of Σ_{k≤12} r^k / k!.
    let mut p = 1.0 / 479_001_600.0;
    p = madd::<FMA>(p, r, 1.0 / 39_916_800.0);
    p = madd::<FMA>(p, r, 1.0 / 3_628_800.0);
    p = madd::<FMA>(p, r, 1.0 / 362_880.0);
    p = madd::<FMA>(p, r, 1.0 / 40_320.0);
    p = madd::<FMA>(p, r, 1.0 / 5_040.0);
    p = madd::<FMA>(p, r, 1.0 / 720.0);
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // 2^n from the integer in t's low bits: (n + 1023) << 52.
    let bits = (t.to_bits().wrapping_add(1023)) << 52;
    let v = p * f64::from_bits(bits);
    if x < -708.0 { 0.0 } else { v }
}

/// The largest entry, over four independent lanes (so the comparison vectorises).
#[inline(always)]
fn max_of(a: &[f64]) -> f64 {
    let mut m = [f64::NEG_INFINITY; 4];
    let mut chunks = a.chunks_exact(4);
    for c in &mut chunks {
        for l in 0..4 {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let mut best = m[0].max(m[1]).max(m[2].max(m[3]));
    for &v in chunks.remainder() {
        best = best.max(v);
    }
    best
}

/// The sum, over four independent lanes.
#[inline(always)]
fn sum_of(a: &[f64]) -> f64 {
    let mut s = [0.0; 4];
    let mut chunks = a.chunks_exact(4);
    for c in &mut chunks {
        for l in 0..4 {
            s[l] += c[l];
        }
    }
    let mut total = (s[0] + s[1]) + (s[2] + s[3]);
    for &v in chunks.remainder() {
        total += v;
    }
    total
}

/// What one chunk accumulates, component-minor (`D × K`) where a block has a dimension.
#[derive(Clone)]
struct Acc {
    n: usize,
    loss: f64,
    clamped: f64,
    /// `Σ_i ln Σ_j e^{a_ij − m_i}`.
    ln_total: f64,
    /// `Σ_i r_ij a_ij` per component (the entropy is `Σ lse − Σ_j ra_j`).
    ra: Vec<f64>,
    counts: Vec<f64>,
    grad_mass: Vec<f64>,
    grad_dist: Vec<f64>,
    grad_first: Vec<f64>,
    grad_values: Vec<f64>,
    em_mass: Vec<f64>,
    em_first: Vec<f64>,
    em_sq: Vec<f64>,
    em_targets: Vec<f64>,
}

impl Acc {
    fn new(k: usize, dim: usize, p: usize) -> Self {
        Self {
            n: 0,
            loss: 0.0,
            clamped: 0.0,
            ln_total: 0.0,
            ra: vec![0.0; k],
            counts: vec![0.0; k],
            grad_mass: vec![0.0; k],
            grad_dist: vec![0.0; k],
            grad_first: vec![0.0; k * dim],
            grad_values: vec![0.0; k * p],
            em_mass: vec![0.0; k],
            em_first: vec![0.0; k * dim],
            em_sq: vec![0.0; k],
            em_targets: vec![0.0; k * p],
        }
    }

    fn merge(&mut self, o: &Acc) {
        fn add(a: &mut [f64], b: &[f64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.n += o.n;
        self.loss += o.loss;
        self.clamped += o.clamped;
        self.ln_total += o.ln_total;
        add(&mut self.ra, &o.ra);
        add(&mut self.counts, &o.counts);
        add(&mut self.grad_mass, &o.grad_mass);
        add(&mut self.grad_dist, &o.grad_dist);
        add(&mut self.grad_first, &o.grad_first);
        add(&mut self.grad_values, &o.grad_values);
        add(&mut self.em_mass, &o.em_mass);
        add(&mut self.em_first, &o.em_first);
        add(&mut self.em_sq, &o.em_sq);
        add(&mut self.em_targets, &o.em_targets);
    }
}

/// The per-state constants, laid out for the kernel.
struct Prepared<'a> {
    k: usize,
    dim: usize,
    p: usize,
    /// `μ`, `D × K`.
    mu_t: Vec<f64>,
    /// `v`, `P × K`.
    values_t: Vec<f64>,
    inv_two_scale: &'a [f64],
    offset: &'a [f64],
    neg_inv_t: f64,
    t: f64,
    regime: Regime,
    /// `classes[j]` as f64-free indices (cross-entropy).
    classes: &'a [usize],
}

/// Scratch rows of length `K` (and `D × K`), reused across the points of a chunk.
struct Scratch {
    sq: Vec<f64>,
    dot: Vec<f64>,
    diff: Vec<f64>,
    dist: Vec<f64>,
    a: Vec<f64>,
    r: Vec<f64>,
    w: Vec<f64>,
    g: Vec<f64>,
    out: Vec<f64>,
}

impl Scratch {
    fn new(k: usize, dim: usize, p: usize) -> Self {
        Self {
            sq: vec![0.0; k],
            dot: vec![0.0; k],
            diff: vec![0.0; k * dim],
            dist: vec![0.0; k],
            a: vec![0.0; k],
            r: vec![0.0; k],
            w: vec![0.0; k],
            g: vec![0.0; k],
            out: vec![0.0; p],
        }
    }
}

/// `dst[j] += a[j] * b[j]`.
#[inline(always)]
fn fma_into<const FMA: bool>(dst: &mut [f64], a: &[f64], b: &[f64]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = madd::<FMA>(x, y, *d);
    }
}

/// `dst[j] += a[j]`.
#[inline(always)]
fn add_into(dst: &mut [f64], a: &[f64]) {
    for (d, &x) in dst.iter_mut().zip(a) {
        *d += x;
    }
}

/// The kernel with fused multiply-adds (only called on CPUs with FMA).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sum_chunk_fma<'a>(
    problem: &Problem,
    prep: &Prepared<'a>,
    range: std::ops::Range<usize>,
    acc: &mut Acc,
    s: &mut Scratch,
) {
    kernel::<true>(problem, prep, range, acc, s);
}

/// The kernel without fused multiply-adds.
#[multiversion::multiversion(targets("x86_64+avx", "x86_64+sse4.1"))]
fn sum_chunk_plain<'a>(
    problem: &Problem,
    prep: &Prepared<'a>,
    range: std::ops::Range<usize>,
    acc: &mut Acc,
    s: &mut Scratch,
) {
    kernel::<false>(problem, prep, range, acc, s);
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn sum_chunk(problem: &Problem, prep: &Prepared<'_>, range: std::ops::Range<usize>, acc: &mut Acc, s: &mut Scratch) {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *FMA.get_or_init(has_fma) {
        sum_chunk_fma(problem, prep, range, acc, s);
    } else {
        sum_chunk_plain(problem, prep, range, acc, s);
    }
}

#[inline(always)]
fn kernel<const FMA: bool>(
    problem: &Problem,
    prep: &Prepared<'_>,
    range: std::ops::Range<usize>,
    acc: &mut Acc,
    s: &mut Scratch,
) {
    let (k, dim, p) = (prep.k, prep.dim, prep.p);
    let dot_form = problem.spec.regime.score() == Score::DotProduct;
    let inv2s = &prep.inv_two_scale[..k];
    let offset = &prep.offset[..k];
    let neg_inv_t = prep.neg_inv_t;
    for i in range {
        if !problem.counts_point(i) {
            continue;
        }
        let x = problem.point(i);
        let sq = &mut s.sq[..k];
        sq.fill(0.0);
        let dot = &mut s.dot[..k];
        if dot_form {
            dot.fill(0.0);
        }
        for d in 0..dim {
            let xd = x[d];
            let mu = &prep.mu_t[d * k..(d + 1) * k];
            let diff = &mut s.diff[d * k..(d + 1) * k];
            for ((df, q), &m) in diff.iter_mut().zip(sq.iter_mut()).zip(mu) {
                let v = xd - m;
                *df = v;
                *q = madd::<FMA>(v, v, *q);
            }
            if dot_form {
                for (o, &m) in dot.iter_mut().zip(mu) {
                    *o += xd * m;
                }
            }
        }
        // Distances, then the exponent arguments a_j = −E_j/T (element-wise: vectorises).
        let dist = &mut s.dist[..k];
        let a = &mut s.a[..k];
        if dot_form {
            for (ds, &o) in dist.iter_mut().zip(dot.iter()) {
                *ds = -o;
            }
        } else {
            for ((ds, &q), &c) in dist.iter_mut().zip(sq.iter()).zip(inv2s) {
                *ds = q * c;
            }
        }
        for ((aj, &ds), &off) in a.iter_mut().zip(dist.iter()).zip(offset) {
            *aj = (ds + off) * neg_inv_t;
        }
        // Shift by the maximum: from here on a_j ≤ 0 (the log-sum-exp is m + ln Σ e^{a_j}).
        let m = max_of(a);
        for aj in a.iter_mut() {
            *aj -= m;
        }
        let r = &mut s.r[..k];
        for (rj, &aj) in r.iter_mut().zip(a.iter()) {
            *rj = exp_with::<FMA>(aj);
        }
        let total = sum_of(r);
        let ln_total = total.ln();
        let lse = m + ln_total;
        let inv = 1.0 / total;
        for rj in r.iter_mut() {
            *rj *= inv;
        }
        // Entropy H_i = ln Σ e^{a} − Σ_j r_ij a_ij with the shifted a (no cancellation), summed
        // over points as Σ_i ln_total_i − Σ_j (Σ_i r_ij a_ij): a vector accumulation.
        acc.n += 1;
        acc.ln_total += ln_total;
        fma_into::<FMA>(&mut acc.ra[..k], r, a);
        let free = -prep.t * lse;
        let (g, w) = (&mut s.g[..k], &mut s.w[..k]);
        match prep.regime {
            Regime::Mixture => {
                // G = r and the EM weights are r: one set of sums serves both.
                acc.loss += free;
                acc.clamped += free;
                add_into(&mut acc.counts[..k], r);
                fma_into::<FMA>(&mut acc.grad_dist[..k], r, dist);
                fma_into::<FMA>(&mut acc.em_sq[..k], r, sq);
                for d in 0..dim {
                    fma_into::<FMA>(&mut acc.em_first[d * k..(d + 1) * k], r, &s.diff[d * k..(d + 1) * k]);
                }
                continue;
            }
            Regime::CrossEntropy => {
                let y = problem.labels[i].map(|y| y as usize);
                let classes = &prep.classes[..k];
                let mut my = f64::NEG_INFINITY;
                for (&c, &aj) in classes.iter().zip(a.iter()) {
                    if Some(c) == y {
                        my = my.max(aj);
                    }
                }
                let mut sy = 0.0;
                for ((wj, &c), &aj) in w.iter_mut().zip(classes).zip(a.iter()) {
                    let e = if Some(c) == y { exp_with::<FMA>(aj - my) } else { 0.0 };
                    *wj = e;
                    sy += e;
                }
                let inv_y = 1.0 / sy;
                for ((gj, wj), &rj) in g.iter_mut().zip(w.iter_mut()).zip(r.iter()) {
                    *wj *= inv_y;
                    *gj = *wj - rj;
                }
                // a is shifted by m: lse_y = m + my + ln sy, and lse − lse_y = ln_total − my − ln sy.
                let ln_sy = sy.ln();
                acc.loss += prep.t * ((ln_total - my) - ln_sy);
                acc.clamped += -prep.t * (m + my + ln_sy);
            }
            Regime::Attention { .. } => {
                let target = problem.target(i);
                let out = &mut s.out[..p];
                for c in 0..p {
                    let v = &prep.values_t[c * k..(c + 1) * k];
                    let mut o = 0.0;
                    for (&rj, &vj) in r.iter().zip(v) {
                        o += rj * vj;
                    }
                    out[c] = o - target[c];
                }
                let loss: f64 = out.iter().map(|e| 0.5 * e * e).sum();
                acc.loss += loss;
                acc.clamped += free;
                // a_j = (o − t)·v_j, ā = Σ α a, G = −α (a − ā)/T.
                g.fill(0.0);
                for c in 0..p {
                    let v = &prep.values_t[c * k..(c + 1) * k];
                    let e = out[c];
                    for (gj, &vj) in g.iter_mut().zip(v) {
                        *gj += e * vj;
                    }
                }
                let mut abar = 0.0;
                for (&rj, &gj) in r.iter().zip(g.iter()) {
                    abar += rj * gj;
                }
                let inv_t = 1.0 / prep.t;
                for ((gj, wj), &rj) in g.iter_mut().zip(w.iter_mut()).zip(r.iter()) {
                    *gj = -rj * (*gj - abar) * inv_t;
                    *wj = rj;
                }
                for c in 0..p {
                    let (e, tc) = (out[c], target[c]);
                    for (gv, &rj) in acc.grad_values[c * k..(c + 1) * k].iter_mut().zip(r.iter()) {
                        *gv += rj * e;
                    }
                    for (et, &rj) in acc.em_targets[c * k..(c + 1) * k].iter_mut().zip(r.iter()) {
                        *et += rj * tc;
                    }
                }
            }
        }
        add_into(&mut acc.counts[..k], r);
        add_into(&mut acc.grad_mass[..k], g);
        fma_into::<FMA>(&mut acc.grad_dist[..k], g, dist);
        add_into(&mut acc.em_mass[..k], w);
        fma_into::<FMA>(&mut acc.em_sq[..k], w, sq);
        for d in 0..dim {
            let diff = &s.diff[d * k..(d + 1) * k];
            fma_into::<FMA>(&mut acc.grad_first[d * k..(d + 1) * k], g, diff);
            fma_into::<FMA>(&mut acc.em_first[d * k..(d + 1) * k], w, diff);
        }
    }
}

fn transpose(rows: &[f64], k: usize, width: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows.len()];
    for j in 0..k {
        for d in 0..width {
            t[d * k + j] = rows[j * width + d];
        }
    }
    t
}

/// The sums over all points at `state`, in parallel over fixed chunks.
#[must_use]
pub fn sums(problem: &Problem, state: &State, terms: &ComponentTerms) -> Sums {
    let (k, dim, p) = (state.k, problem.dim, problem.target_dim);
    let prep = Prepared {
        k,
        dim,
        p,
        mu_t: transpose(&state.prototypes, k, dim),
        values_t: transpose(&state.values, k, p),
        inv_two_scale: &terms.inv_two_scale,
        offset: &terms.offset,
        neg_inv_t: -1.0 / problem.spec.temperature,
        t: problem.spec.temperature,
        regime: problem.spec.regime,
        classes: &problem.spec.classes,
    };
    let n = problem.len();
    let chunks = n.div_ceil(CHUNK).max(1);
    let run = |c: usize| {
        let mut acc = Acc::new(k, dim, p);
        let mut scratch = Scratch::new(k, dim, p);
        sum_chunk(
            problem,
            &prep,
            c * CHUNK..((c + 1) * CHUNK).min(n),
            &mut acc,
            &mut scratch,
        );
        acc
    };
    let parts: Vec<Acc> = if chunks > 1 {
        (0..chunks).into_par_iter().map(run).collect()
    } else {
        vec![run(0)]
    };
    let mut total = Acc::new(k, dim, p);
    for part in &parts {
        total.merge(part);
    }
    if problem.spec.regime == Regime::Mixture {
        total.grad_mass.clone_from(&total.counts);
        total.em_mass.clone_from(&total.counts);
        total.grad_first.clone_from(&total.em_first);
    }
    Sums::from_parts(
        total.n,
        total.loss,
        total.clamped,
        total.ln_total - total.ra.iter().sum::<f64>(),
        total.grad_mass,
        transpose(&total.grad_first, dim, k),
        total.grad_dist,
        transpose(&total.grad_values, p, k),
        total.counts,
        total.em_mass,
        transpose(&total.em_first, dim, k),
        total.em_sq,
        transpose(&total.em_targets, p, k),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_library_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = -708.0;
        while x <= 0.0 {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        for x in [
            0.0,
            -1e-300,
            -0.5 * std::f64::consts::LN_2,
            -1.0,
            -30.0,
            -700.0,
            1.0,
            5.0,
            700.0,
        ] {
            let (a, b) = (exp(x), f64::exp(x));
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 4.5e-16, "worst relative error {worst:e}");
        assert_eq!(exp(-709.0), 0.0);
        assert_eq!(exp(-1e6), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn fused_exp_is_as_accurate() {
        if !has_fma() {
            return;
        }
        let mut worst: f64 = 0.0;
        let mut x = -708.0;
        while x <= 0.0 {
            worst = worst.max(((exp_with::<true>(x) - x.exp()) / x.exp()).abs());
            x += 0.0137;
        }
        assert!(worst < 4.5e-16, "worst relative error {worst:e}");
    }
}
