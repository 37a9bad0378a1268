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

/// Lanes per block: component arrays are padded to a multiple of this, and every loop over
/// components runs over fixed 4-wide blocks (one AVX2 operation; 8-wide blocks left the AVX2
/// build largely scalar, and measured slower), so no loop
/// falls into a scalar remainder. A padding component has exponent argument `−∞` (so it never
/// is the maximum and `e^{−∞} = 0`) and shifted argument 0 (so `r·a = 0·0`).
pub const LANES: usize = 4;

/// What one chunk accumulates, component-minor (`D × Kp`, `P × Kp`) where a block has a
/// dimension; `Kp` is `K` rounded up to [`LANES`].
#[derive(Clone)]
struct Acc {
    n: usize,
    loss: f64,
    clamped: f64,
    /// `Σ_i ln Σ_j e^{a_ij − m_i}`.
    ln_total: f64,
    /// `Σ_i r_ij a_ij` per component, `a` shifted by each point's maximum (the entropy is
    /// `Σ ln_total − Σ_j ra_j`).
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
    fn new(kp: usize, dim: usize, p: usize) -> Self {
        Self {
            n: 0,
            loss: 0.0,
            clamped: 0.0,
            ln_total: 0.0,
            ra: vec![0.0; kp],
            counts: vec![0.0; kp],
            grad_mass: vec![0.0; kp],
            grad_dist: vec![0.0; kp],
            grad_first: vec![0.0; kp * dim],
            grad_values: vec![0.0; kp * p],
            em_mass: vec![0.0; kp],
            em_first: vec![0.0; kp * dim],
            em_sq: vec![0.0; kp],
            em_targets: vec![0.0; kp * p],
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

/// The per-state constants, laid out for the kernel (all component arrays padded to `kp`).
struct Prepared {
    kp: usize,
    dim: usize,
    p: usize,
    /// `μ`, `D × Kp`.
    mu_t: Vec<f64>,
    /// `v`, `P × Kp`.
    values_t: Vec<f64>,
    inv_two_scale: Vec<f64>,
    offset: Vec<f64>,
    /// 1 for real components, 0 for padding.
    real: Vec<f64>,
    neg_inv_t: f64,
    t: f64,
    regime: Regime,
    /// Class of each component (cross-entropy); `usize::MAX` for padding.
    classes: Vec<usize>,
}

/// Scratch rows of length `Kp` (and `D × Kp`), reused across the points of a chunk.
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
    fn new(kp: usize, dim: usize, p: usize) -> Self {
        Self {
            sq: vec![0.0; kp],
            dot: vec![0.0; kp],
            diff: vec![0.0; kp * dim],
            dist: vec![0.0; kp],
            a: vec![0.0; kp],
            r: vec![0.0; kp],
            w: vec![0.0; kp],
            g: vec![0.0; kp],
            out: vec![0.0; p],
        }
    }
}

type Block = [f64; LANES];

/// `f` over matching 8-wide blocks of `out` and `a`.
#[inline(always)]
fn map1(out: &mut [f64], a: &[f64], f: impl Fn(f64) -> f64) {
    for (o, x) in out.chunks_exact_mut(LANES).zip(a.chunks_exact(LANES)) {
        let (o, x): (&mut Block, &Block) = (o.try_into().expect("block"), x.try_into().expect("block"));
        for l in 0..LANES {
            o[l] = f(x[l]);
        }
    }
}

/// `f` over matching 8-wide blocks of `out`, `a` and `b`.
#[inline(always)]
fn map2(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64, f64) -> f64) {
    for ((o, x), y) in out
        .chunks_exact_mut(LANES)
        .zip(a.chunks_exact(LANES))
        .zip(b.chunks_exact(LANES))
    {
        let (o, x, y): (&mut Block, &Block, &Block) = (
            o.try_into().expect("block"),
            x.try_into().expect("block"),
            y.try_into().expect("block"),
        );
        for l in 0..LANES {
            o[l] = f(o[l], x[l], y[l]);
        }
    }
}

/// `dst[j] += a[j] · b[j]` over 8-wide blocks.
#[inline(always)]
fn fma_into<const FMA: bool>(dst: &mut [f64], a: &[f64], b: &[f64]) {
    map2(dst, a, b, |d, x, y| madd::<FMA>(x, y, d));
}

/// `dst[j] += a[j]` over 8-wide blocks.
#[inline(always)]
fn add_into(dst: &mut [f64], a: &[f64]) {
    map2(dst, a, a, |d, x, _| d + x);
}

/// The largest entry, lane-wise over blocks, then across the lanes.
#[inline(always)]
fn max_blocks(a: &[f64]) -> f64 {
    let mut m = [f64::NEG_INFINITY; LANES];
    for c in a.chunks_exact(LANES) {
        for l in 0..LANES {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    m.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The sum, lane-wise over blocks, then across the lanes (a fixed order).
#[inline(always)]
fn sum_blocks(a: &[f64]) -> f64 {
    let mut s = [0.0; LANES];
    for c in a.chunks_exact(LANES) {
        for l in 0..LANES {
            s[l] += c[l];
        }
    }
    s.iter().fold(0.0, |t, &v| t + v)
}

/// The kernel with fused multiply-adds (only called on CPUs with FMA).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sum_chunk_fma(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, acc: &mut Acc, s: &mut Scratch) {
    kernel::<true>(problem, prep, range, acc, s);
}

/// The kernel without fused multiply-adds.
#[multiversion::multiversion(targets("x86_64+avx", "x86_64+sse4.1"))]
fn sum_chunk_plain(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, acc: &mut Acc, s: &mut Scratch) {
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

fn sum_chunk(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, acc: &mut Acc, s: &mut Scratch) {
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
    prep: &Prepared,
    range: std::ops::Range<usize>,
    acc: &mut Acc,
    s: &mut Scratch,
) {
    let (kp, dim, p) = (prep.kp, prep.dim, prep.p);
    let dot_form = problem.spec.regime.score() == Score::DotProduct;
    let neg_inv_t = prep.neg_inv_t;
    for i in range {
        if !problem.counts_point(i) {
            continue;
        }
        let x = problem.point(i);
        s.sq.fill(0.0);
        if dot_form {
            s.dot.fill(0.0);
        }
        for d in 0..dim {
            let xd = x[d];
            let mu = &prep.mu_t[d * kp..(d + 1) * kp];
            map1(&mut s.diff[d * kp..(d + 1) * kp], mu, |m| xd - m);
            map2(&mut s.sq, &s.diff[d * kp..(d + 1) * kp], mu, |q, v, _| {
                madd::<FMA>(v, v, q)
            });
            if dot_form {
                map2(&mut s.dot, mu, mu, |o, m, _| madd::<FMA>(xd, m, o));
            }
        }
        // Distances, then the exponent arguments a_j = −E_j/T; padding lanes get −∞.
        if dot_form {
            map1(&mut s.dist, &s.dot, |o| -o);
        } else {
            map2(&mut s.dist, &s.sq, &prep.inv_two_scale, |_, q, c| q * c);
        }
        map2(&mut s.a, &s.dist, &prep.offset, |_, ds, off| (ds + off) * neg_inv_t);
        map2(&mut s.a, &prep.real, &prep.real, |a, real, _| {
            if real > 0.0 { a } else { f64::NEG_INFINITY }
        });
        // Shift by the maximum: from here on a_j ≤ 0 (the log-sum-exp is m + ln Σ e^{a_j}). If
        // every energy overflowed, m = −∞ and everything turns NaN, as it must (the run pauses).
        let m = max_blocks(&s.a);
        // A plain loop: the loop vectoriser handles the long exp body (the straight-line one
        // does not), and the body is large enough that it is not interleaved past Kp.
        for (r, &a) in s.r.iter_mut().zip(s.a.iter()) {
            *r = exp_with::<FMA>(a - m);
        }
        map2(
            &mut s.a,
            &prep.real,
            &prep.real,
            |a, real, _| if real > 0.0 { a - m } else { 0.0 },
        );
        let total = sum_blocks(&s.r);
        let ln_total = total.ln();
        let lse = m + ln_total;
        let inv = 1.0 / total;
        map2(&mut s.r, &prep.real, &prep.real, |r, _, _| r * inv);
        // Entropy H_i = ln Σ e^{a} − Σ_j r_ij a_ij with the shifted a (no cancellation), summed
        // over points as Σ_i ln_total_i − Σ_j (Σ_i r_ij a_ij): a vector accumulation.
        acc.n += 1;
        acc.ln_total += ln_total;
        fma_into::<FMA>(&mut acc.ra, &s.r, &s.a);
        let free = -prep.t * lse;
        match prep.regime {
            Regime::Mixture => {
                // G = r and the EM weights are r: one set of sums serves both.
                acc.loss += free;
                acc.clamped += free;
                add_into(&mut acc.counts, &s.r);
                fma_into::<FMA>(&mut acc.grad_dist, &s.r, &s.dist);
                fma_into::<FMA>(&mut acc.em_sq, &s.r, &s.sq);
                for d in 0..dim {
                    fma_into::<FMA>(
                        &mut acc.em_first[d * kp..(d + 1) * kp],
                        &s.r,
                        &s.diff[d * kp..(d + 1) * kp],
                    );
                }
                continue;
            }
            Regime::CrossEntropy => {
                let y = problem.labels[i].map_or(usize::MAX - 1, |y| y as usize);
                let mut my = f64::NEG_INFINITY;
                for (&c, &aj) in prep.classes.iter().zip(s.a.iter()) {
                    if c == y {
                        my = my.max(aj);
                    }
                }
                let mut sy = 0.0;
                for ((wj, &c), &aj) in s.w.iter_mut().zip(&prep.classes).zip(s.a.iter()) {
                    let e = if c == y { exp_with::<FMA>(aj - my) } else { 0.0 };
                    *wj = e;
                    sy += e;
                }
                let inv_y = 1.0 / sy;
                for ((gj, wj), &rj) in s.g.iter_mut().zip(s.w.iter_mut()).zip(s.r.iter()) {
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
                for c in 0..p {
                    let v = &prep.values_t[c * kp..(c + 1) * kp];
                    let mut o = 0.0;
                    for (&rj, &vj) in s.r.iter().zip(v) {
                        o += rj * vj;
                    }
                    s.out[c] = o - target[c];
                }
                let loss: f64 = s.out.iter().map(|e| 0.5 * e * e).sum();
                acc.loss += loss;
                acc.clamped += free;
                // a_j = (o − t)·v_j, ā = Σ α a, G = −α (a − ā)/T.
                s.g.fill(0.0);
                for c in 0..p {
                    let e = s.out[c];
                    map2(&mut s.g, &prep.values_t[c * kp..(c + 1) * kp], &prep.real, |g, v, _| {
                        madd::<FMA>(e, v, g)
                    });
                }
                let mut abar = 0.0;
                for (&rj, &gj) in s.r.iter().zip(s.g.iter()) {
                    abar += rj * gj;
                }
                let inv_t = 1.0 / prep.t;
                map2(&mut s.g, &s.r, &prep.real, |g, r, _| -r * (g - abar) * inv_t);
                s.w.copy_from_slice(&s.r);
                for c in 0..p {
                    let (e, tc) = (s.out[c], target[c]);
                    map2(
                        &mut acc.grad_values[c * kp..(c + 1) * kp],
                        &s.r,
                        &prep.real,
                        |gv, r, _| madd::<FMA>(r, e, gv),
                    );
                    map2(
                        &mut acc.em_targets[c * kp..(c + 1) * kp],
                        &s.r,
                        &prep.real,
                        |et, r, _| madd::<FMA>(r, tc, et),
                    );
                }
            }
        }
        add_into(&mut acc.counts, &s.r);
        add_into(&mut acc.grad_mass, &s.g);
        fma_into::<FMA>(&mut acc.grad_dist, &s.g, &s.dist);
        add_into(&mut acc.em_mass, &s.w);
        fma_into::<FMA>(&mut acc.em_sq, &s.w, &s.sq);
        for d in 0..dim {
            let diff = &s.diff[d * kp..(d + 1) * kp];
            fma_into::<FMA>(&mut acc.grad_first[d * kp..(d + 1) * kp], &s.g, diff);
            fma_into::<FMA>(&mut acc.em_first[d * kp..(d + 1) * kp], &s.w, diff);
        }
    }
}

/// `rows` (`K × width`) as `width × Kp`, padded with zeros.
fn transpose_padded(rows: &[f64], k: usize, kp: usize, width: usize) -> Vec<f64> {
    let mut t = vec![0.0; kp * width];
    for j in 0..k {
        for d in 0..width {
            t[d * kp + j] = rows[j * width + d];
        }
    }
    t
}

/// `cols` (`width × Kp`) back to `K × width`, dropping the padding.
fn untranspose(cols: &[f64], k: usize, kp: usize, width: usize) -> Vec<f64> {
    let mut r = vec![0.0; k * width];
    for j in 0..k {
        for d in 0..width {
            r[j * width + d] = cols[d * kp + j];
        }
    }
    r
}

fn padded(v: &[f64], kp: usize) -> Vec<f64> {
    let mut out = v.to_vec();
    out.resize(kp, 0.0);
    out
}

/// The sums over all points at `state`, in parallel over fixed chunks.
#[must_use]
pub fn sums(problem: &Problem, state: &State, terms: &ComponentTerms) -> Sums {
    let (k, dim, p) = (state.k, problem.dim, problem.target_dim);
    let kp = k.div_ceil(LANES) * LANES;
    let mut classes = problem.spec.classes.clone();
    classes.resize(kp, usize::MAX);
    let prep = Prepared {
        kp,
        dim,
        p,
        mu_t: transpose_padded(&state.prototypes, k, kp, dim),
        values_t: transpose_padded(&state.values, k, kp, p),
        inv_two_scale: padded(&terms.inv_two_scale, kp),
        offset: padded(&terms.offset, kp),
        real: (0..kp).map(|j| if j < k { 1.0 } else { 0.0 }).collect(),
        neg_inv_t: -1.0 / problem.spec.temperature,
        t: problem.spec.temperature,
        regime: problem.spec.regime,
        classes,
    };
    let n = problem.len();
    let chunks = n.div_ceil(CHUNK).max(1);
    let run = |c: usize| {
        let mut acc = Acc::new(kp, dim, p);
        let mut scratch = Scratch::new(kp, dim, p);
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
    let mut total = Acc::new(kp, dim, p);
    for part in &parts {
        total.merge(part);
    }
    if problem.spec.regime == Regime::Mixture {
        total.grad_mass.clone_from(&total.counts);
        total.em_mass.clone_from(&total.counts);
        total.grad_first.clone_from(&total.em_first);
    }
    let k_only = |v: &[f64]| v[..k].to_vec();
    Sums {
        n: total.n,
        loss: total.loss,
        clamped_free_energy: total.clamped,
        entropy: total.ln_total - total.ra.iter().sum::<f64>(),
        grad_mass: k_only(&total.grad_mass),
        grad_first: untranspose(&total.grad_first, k, kp, dim),
        grad_dist: k_only(&total.grad_dist),
        grad_values: untranspose(&total.grad_values, k, kp, p),
        counts: k_only(&total.counts),
        em_mass: k_only(&total.em_mass),
        em_first: untranspose(&total.em_first, k, kp, dim),
        em_sq: k_only(&total.em_sq),
        em_targets: untranspose(&total.em_targets, k, kp, p),
    }
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
