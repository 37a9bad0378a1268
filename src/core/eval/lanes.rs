//! The fast one-pass evaluation: the same sums as [`crate::core::eval::sum_range`], computed
//! with points as vector lanes (blocks of [`B`], every loop over one component and all lanes),
//! a branch-free exponential and logarithm, regime-specialised accumulation into sums folded
//! to `W` lanes, and fixed chunks of points summed in parallel and merged in order (so the
//! result does not depend on thread scheduling).
//!
//! Speed never changes a reported number beyond rounding: tests compare every output with the
//! straightforward path to `1e-12` relative.

use rayon::prelude::*;

use crate::core::data::SoftLabels;
use crate::core::eval::rows::{Pass, clamp};
use crate::core::eval::sums::Sums;
use crate::core::model::{ComponentTerms, ModelSpec, Regime, Score, State};
use crate::core::problem::Problem;

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
/// unit in the last place for `−708 ≤ x ≤ 709` (Cody–Waite reduction `x = n ln 2 + r`,
/// `|r| ≤ ln2/2`, and a degree-12 Taylor polynomial whose remainder is below `2e-16`); `0`
/// below `−708` (where `e^x < 3e-308`). Above 709 the result is meaningless (the arguments
/// here are always `≤ 0`, the maximum subtracted, or discarded by a select).
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
    // Only the lower end needs a clamp; written as a comparison so that a NaN passes through.
    let xc = if x < -708.0 { -708.0 } else { x };
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

/// Points per block: the kernel works on `B` points at once, one point per vector lane, so
/// every inner loop is a fixed-length loop over points that the loop vectoriser turns into
/// full-width operations (the exponential included), with no padding components and no
/// horizontal reductions: sums are kept per lane and added across lanes once per chunk.
pub const B: usize = 32;

type Lanes = [f64; B];

/// One 64-byte cache line of values: the unit of the kernel's buffers ([`Buf`]).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([f64; 8]);

/// A zeroed buffer of values that starts on a cache line, used as a `[f64]` slice. Every row
/// of lanes (`B` values) and every folded accumulator row (`W`) then lies on whole lines: a
/// vector load or store never straddles two (with `Vec<f64>` they mostly did).
struct Buf(Vec<Line>);

impl Buf {
    /// `len` zeros (`len` a multiple of 8).
    fn zeros(len: usize) -> Self {
        debug_assert_eq!(len % 8, 0);
        Self(vec![Line([0.0; 8]); len / 8])
    }
}

impl std::ops::Deref for Buf {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        bytemuck::cast_slice(&self.0)
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f64] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
}

/// Per-lane sums of one chunk: `[j][lane]` (and `[d][j][lane]`, `[c][j][lane]`).
struct LaneAcc {
    loss: Lanes,
    clamped: Lanes,
    /// `H_i = ln Σ_j e^{a_ij} − Σ_j r_ij a_ij` per lane.
    entropy: Lanes,
    n: usize,
    counts: Buf,
    grad_mass: Buf,
    grad_dist: Buf,
    grad_first: Buf,
    grad_values: Buf,
    em_mass: Buf,
    em_first: Buf,
    em_sq: Buf,
    em_targets: Buf,
    /// `Σ G (x − μ)_r (x − μ)_c`, `[(r, c) upper][j][W]` (only with `Prepared::second`).
    grad_second: Buf,
    /// `Σ w (x − c)_r (x − c)_c` about the scatter centres, as `grad_second` (scatter passes
    /// over components with maps only).
    em_second: Buf,
}

/// Scratch for one block: `[j][lane]` rows and per-lane values.
struct Scratch {
    xs: Buf,
    ts: Buf,
    live: Lanes,
    labels: [usize; B],
    /// Each lane's row in the soft labels ([`SoftLabels::NONE`] for none).
    soft: [u32; B],
    sq: Buf,
    dist: Buf,
    a: Buf,
    r: Buf,
    w: Buf,
    g: Buf,
    out: Buf,
    /// `x − μ_j` (or `x − c_j` in a scatter pass) per coordinate, `[d][lane]`.
    dif: Buf,
}

/// Both buffers of a worker, reused across the chunks it takes.
struct Work {
    acc: LaneAcc,
    s: Scratch,
}

impl Work {
    fn new(k: usize, dim: usize, p: usize, prep: &Prepared) -> Self {
        let tri = dim * (dim + 1) / 2;
        let z = |len: usize| Buf::zeros(len * B);
        let w = |len: usize| Buf::zeros(len * W);
        Self {
            acc: LaneAcc {
                loss: [0.0; B],
                clamped: [0.0; B],
                entropy: [0.0; B],
                n: 0,
                counts: w(k),
                grad_mass: w(k),
                grad_dist: w(k),
                grad_first: w(k * dim),
                grad_values: w(k * p),
                em_mass: w(k),
                em_first: w(k * dim),
                em_sq: w(k),
                em_targets: w(k * p),
                grad_second: w(if prep.second { k * tri } else { 0 }),
                em_second: w(
                    if (prep.centre.is_some() && !prep.precision.is_empty()) || prep.em_second {
                        k * tri
                    } else {
                        0
                    },
                ),
            },
            s: Scratch {
                xs: z(dim),
                ts: z(p),
                live: [0.0; B],
                labels: [0; B],
                soft: [SoftLabels::NONE; B],
                sq: z(k),
                dist: z(k),
                a: z(k),
                r: z(k),
                w: z(k),
                g: z(k),
                out: z(p),
                dif: z(dim),
            },
        }
    }

    fn clear(&mut self) {
        let a = &mut self.acc;
        a.loss = [0.0; B];
        a.clamped = [0.0; B];
        a.entropy = [0.0; B];
        a.n = 0;
        for v in [
            &mut a.counts,
            &mut a.grad_mass,
            &mut a.grad_dist,
            &mut a.grad_first,
            &mut a.grad_values,
            &mut a.em_mass,
            &mut a.em_first,
            &mut a.em_sq,
            &mut a.em_targets,
            &mut a.grad_second,
            &mut a.em_second,
        ] {
            v.fill(0.0);
        }
    }
}

/// The row `j` of a `[j][lane]` array as one block of lanes.
#[inline(always)]
fn row(v: &[f64], j: usize) -> &Lanes {
    v[j * B..(j + 1) * B].try_into().expect("a row of B lanes")
}

#[inline(always)]
fn row_mut(v: &mut [f64], j: usize) -> &mut Lanes {
    (&mut v[j * B..(j + 1) * B]).try_into().expect("a row of B lanes")
}

// The kernel works on lane blocks by value: rows are copied into local arrays, combined lane by
// lane, and stored back whole. Locals cannot alias the buffers, so the compiler vectorises every
// such loop at full width (operating on the buffers in place left many of them scalar).

/// Row `j` as a value.
#[inline(always)]
fn get(v: &[f64], j: usize) -> Lanes {
    *row(v, j)
}

/// Store `x` as row `j`.
#[inline(always)]
fn put(v: &mut [f64], j: usize, x: &Lanes) {
    *row_mut(v, j) = *x;
}

/// The lanes `f(0), …, f(B − 1)`.
#[inline(always)]
fn lanes(f: impl Fn(usize) -> f64) -> Lanes {
    let mut out = [0.0; B];
    for (l, o) in out.iter_mut().enumerate() {
        *o = f(l);
    }
    out
}

/// Lanes per accumulator row: a block's `B` lanes are folded into `W` before they are added
/// to the chunk's sums (`B/W` times fewer loads and stores of accumulators, which bound the
/// kernel otherwise), in a fixed order.
const W: usize = 8;

/// Row `j` (of `W` lanes) of the accumulator `v` += `x` folded: lane `l` takes
/// `x[l] + x[W + l] + …`.
#[inline(always)]
fn add_acc(v: &mut [f64], j: usize, x: &Lanes) {
    let row: &mut [f64; W] = (&mut v[j * W..(j + 1) * W]).try_into().expect("a row of W lanes");
    let mut t = *row;
    for q in 0..B / W {
        for l in 0..W {
            t[l] += x[q * W + l];
        }
    }
    *row = t;
}

/// Row `j` (of `W` lanes) of the accumulator `v` += `a · b` folded, as [`add_acc`].
#[inline(always)]
fn fma_acc<const FMA: bool>(v: &mut [f64], j: usize, a: &Lanes, b: &Lanes) {
    let row: &mut [f64; W] = (&mut v[j * W..(j + 1) * W]).try_into().expect("a row of W lanes");
    let mut t = *row;
    for q in 0..B / W {
        for l in 0..W {
            t[l] = madd::<FMA>(a[q * W + l], b[q * W + l], t[l]);
        }
    }
    *row = t;
}

const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
/// The bits of `√½`.
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;

#[inline(always)]
fn ln_with<const FMA: bool>(x: f64) -> f64 {
    let bits = x.to_bits();
    // Exponent, rebased so that the mantissa lies in [√½, √2): add the offset of √½'s mantissa.
    let shifted = bits.wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let e = ((shifted >> 52) as i64 - 1023) as f64;
    let f = f64::from_bits((shifted & MANTISSA) + SQRT_HALF_BITS);
    let s = (f - 1.0) / (f + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 25.0;
    p = madd::<FMA>(p, s2, 1.0 / 23.0);
    p = madd::<FMA>(p, s2, 1.0 / 21.0);
    p = madd::<FMA>(p, s2, 1.0 / 19.0);
    p = madd::<FMA>(p, s2, 1.0 / 17.0);
    p = madd::<FMA>(p, s2, 1.0 / 15.0);
    p = madd::<FMA>(p, s2, 1.0 / 13.0);
    p = madd::<FMA>(p, s2, 1.0 / 11.0);
    p = madd::<FMA>(p, s2, 1.0 / 9.0);
    p = madd::<FMA>(p, s2, 1.0 / 7.0);
    p = madd::<FMA>(p, s2, 1.0 / 5.0);
    p = madd::<FMA>(p, s2, 1.0 / 3.0);
    // 2 s (1 + s² p) with the leading term kept exact: 2s + 2s·s²p.
    let two_s = 2.0 * s;
    let lnf = madd::<FMA>(two_s * s2, p, two_s);
    let v = madd::<FMA>(e, LN2_LO, lnf) + e * LN2_HI;
    if x.is_finite() { v } else { x }
}

/// The per-state constants the kernel reads (component-major, `K × D`, `K × P`).
struct Prepared {
    k: usize,
    dim: usize,
    p: usize,
    mu: Vec<f64>,
    values: Vec<f64>,
    inv_two_scale: Vec<f64>,
    t: f64,
    regime: Regime,
    dot_form: bool,
    /// `−E₀/T` of the background component (`−∞` without one).
    a_bg: f64,
    /// The sum-of-kernels objective (mixture): `G = e^{−E/T}`, not `r`.
    unnormalised: bool,
    /// Semi-supervised cross-entropy classes: generative `F^y` / `F`, `G = q` / `r`.
    semi: bool,
    /// Class of each component (cross-entropy).
    classes: Vec<usize>,
    /// Whether the gradient sums are wanted (not for an evaluation for explicit EM).
    gradient: bool,
    /// `(α, β)` per component ([`arg_terms`]).
    terms: Vec<(f64, f64)>,
    /// `P_j`, `K × D × D` (components with maps; empty for spherical ones).
    precision: Vec<f64>,
    /// Sum `Σ G (x − μ)(x − μ)ᵀ` (learned maps).
    second: bool,
    /// A scatter pass: EM's moments about these centres (`K × D`), no gradient.
    centre: Option<Vec<f64>>,
    /// Sum EM's `Σ w (x − μ)(x − μ)ᵀ`.
    em_second: bool,
}

impl Prepared {
    /// Whether the mixture's gradient sums are EM's (`G = r`, moments about `μ`): not in a
    /// pass with second moments or a scatter pass.
    fn shared_mixture_sums(&self) -> bool {
        self.regime == Regime::Mixture && !self.unnormalised && !self.second && !self.em_second && self.centre.is_none()
    }

    /// What `a_j` is computed from: `‖x − μ_j‖²`, or `d_j = −x·μ_j` for dot-product scores.
    #[inline(always)]
    fn base(&self, s: &Scratch, j: usize) -> Lanes {
        if self.dot_form { get(&s.dist, j) } else { get(&s.sq, j) }
    }
}

/// The sum over the `W` folded lanes of each row of a `[row][W]` accumulator, in lane order.
fn lane_sums(v: &[f64], rows: usize) -> Vec<f64> {
    (0..rows)
        .map(|j| v[j * W..(j + 1) * W].iter().fold(0.0, |s, x| s + x))
        .collect()
}

/// A `[(r, c) upper][j][W]` accumulator summed over lanes, as full symmetric `K × D × D`
/// (empty for an empty accumulator).
fn upper_sums(v: &[f64], k: usize, dim: usize) -> Vec<f64> {
    if v.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; k * dim * dim];
    let mut e = 0;
    for r in 0..dim {
        for c in r..dim {
            for j in 0..k {
                let row = e * k + j;
                let s = v[row * W..(row + 1) * W].iter().fold(0.0, |s, x| s + x);
                out[j * dim * dim + r * dim + c] = s;
                out[j * dim * dim + c * dim + r] = s;
            }
            e += 1;
        }
    }
    out
}

/// A `[d][j][W]` accumulator summed over lanes, as `K × width` (`[j][d]`).
fn lane_sums_t(v: &[f64], k: usize, width: usize) -> Vec<f64> {
    let mut out = vec![0.0; k * width];
    for d in 0..width {
        for j in 0..k {
            let r = d * k + j;
            out[j * width + d] = v[r * W..(r + 1) * W].iter().fold(0.0, |s, x| s + x);
        }
    }
    out
}

impl LaneAcc {
    /// What the chunk contributes, summed over its lanes in lane order: a [`Sums`] (`K`,
    /// `K × D`, `K × P`), its entropy `Σ_i ln Σ_j e^{a_ij} − Σ_j Σ_i r_ij a_ij`.
    fn sums(&self, prep: &Prepared) -> Sums {
        let a = self;
        let (k, dim, p) = (prep.k, prep.dim, prep.p);
        let total = |v: &Lanes| v.iter().fold(0.0, |s, x| s + x);
        let counts = lane_sums(&a.counts, k);
        let em_sq = lane_sums(&a.em_sq, k);
        let em_first = lane_sums_t(&a.em_first, k, dim);
        let entropy = total(&a.entropy);
        let (grad_second, em_second) = (upper_sums(&a.grad_second, k, dim), upper_sums(&a.em_second, k, dim));
        if prep.shared_mixture_sums() {
            // G = ρ = r, and d = c_j ‖x − μ‖², so Σ r d = c_j Σ r ‖x − μ‖².
            let grad_dist = em_sq.iter().zip(&prep.inv_two_scale).map(|(s, c)| s * c).collect();
            return Sums {
                n: a.n,
                loss: total(&a.loss),
                clamped_free_energy: total(&a.clamped),
                entropy,
                grad_mass: counts.clone(),
                em_mass: counts.clone(),
                counts,
                grad_dist,
                grad_first: em_first.clone(),
                grad_values: Vec::new(),
                em_first,
                em_sq,
                em_targets: Vec::new(),
                grad_second,
                em_second,
            };
        }
        let mut grad_dist = lane_sums(&a.grad_dist, k);
        if !prep.dot_form {
            // Accumulated as Σ G ‖x − μ‖²; d = c_j ‖x − μ‖².
            for (g, c) in grad_dist.iter_mut().zip(&prep.inv_two_scale) {
                *g *= c;
            }
        }
        // Cross-entropy's EM weights are q; elsewhere they are r and Σ w = Σ r.
        let em_mass = if prep.regime == Regime::CrossEntropy {
            lane_sums(&a.em_mass, k)
        } else {
            counts.clone()
        };
        Sums {
            n: a.n,
            loss: total(&a.loss),
            clamped_free_energy: total(&a.clamped),
            entropy,
            counts,
            grad_mass: lane_sums(&a.grad_mass, k),
            grad_dist,
            grad_first: lane_sums_t(&a.grad_first, k, dim),
            grad_values: lane_sums_t(&a.grad_values, k, p),
            em_mass,
            em_first,
            em_sq,
            em_targets: lane_sums_t(&a.em_targets, k, p),
            grad_second,
            em_second,
        }
    }
}

/// The kernel with fused multiply-adds (only called on CPUs with FMA).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn sum_chunk_fma(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, w: &mut Work) {
    kernel::<true>(problem, prep, range, w);
}

/// The kernel without fused multiply-adds.
#[multiversion::multiversion(targets("x86_64+avx", "x86_64+sse4.1"))]
fn sum_chunk_plain(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, w: &mut Work) {
    kernel::<false>(problem, prep, range, w);
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

/// Whether the CPU has FMA and AVX2 (checked once).
fn fma_available() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(has_fma)
}

fn sum_chunk(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, w: &mut Work) {
    if fma_available() {
        sum_chunk_fma(problem, prep, range, w);
    } else {
        sum_chunk_plain(problem, prep, range, w);
    }
}

/// For one component (prototype `mu`) over the lanes `xs` (`D × B`): the squared distances
/// `‖x − μ‖²`, what the exponent arguments are computed from (`‖x − μ‖²` itself, or the score
/// `d = −x·μ` for dot-product scores) and the exponent arguments `a = −(d + offset)/T` from
/// [`exponent_args`]. `terms` is `(α, β)` from [`arg_terms`].
#[inline(always)]
fn component_args<const FMA: bool>(mu: &[f64], xs: &[f64], terms: (f64, f64), dot_form: bool) -> (Lanes, Lanes, Lanes) {
    let (alpha, beta) = terms;
    let mut sq = [0.0; B];
    let mut dot = [0.0; B];
    for (d, &m) in mu.iter().enumerate() {
        let xd = get(xs, d);
        sq = lanes(|l| {
            let v = xd[l] - m;
            madd::<FMA>(v, v, sq[l])
        });
        if dot_form {
            dot = lanes(|l| madd::<FMA>(xd[l], m, dot[l]));
        }
    }
    let base = if dot_form { lanes(|l| -dot[l]) } else { sq };
    (sq, base, exponent_args::<FMA>(&base, alpha, beta))
}

/// [`component_args`] for a component with a map: `q = (x − μ)ᵀ P (x − μ)` (row by row, as
/// [`crate::core::eval::rows::quadratic_form`]) in place of `‖x − μ‖²`; `dif` is scratch.
#[inline(always)]
fn metric_args<const FMA: bool>(
    mu: &[f64],
    p: &[f64],
    xs: &[f64],
    dif: &mut [f64],
    terms: (f64, f64),
) -> (Lanes, Lanes, Lanes) {
    let dim = mu.len();
    for (d, &m) in mu.iter().enumerate() {
        let xd = get(xs, d);
        put(dif, d, &lanes(|l| xd[l] - m));
    }
    let mut q = [0.0; B];
    for r in 0..dim {
        let vr = get(dif, r);
        let prr = p[r * dim + r];
        let mut acc = lanes(|l| prr * vr[l]);
        for c in r + 1..dim {
            let (vc, prc) = (get(dif, c), 2.0 * p[r * dim + c]);
            acc = lanes(|l| madd::<FMA>(prc, vc[l], acc[l]));
        }
        q = lanes(|l| madd::<FMA>(acc[l], vr[l], q[l]));
    }
    (q, q, exponent_args::<FMA>(&q, terms.0, terms.1))
}

/// `a = α·base + β`: with `base = ‖x − μ‖²`, `α = −1/(2sT)` (or `base = d = −x·μ`,
/// `α = −1/T`) and `β = −offset/T` this is `−(d + offset)/T` in one rounding. The same
/// function recomputes `a` from the stored base wherever it is needed, so every pass sees the
/// same bits.
#[inline(always)]
fn exponent_args<const FMA: bool>(base: &Lanes, alpha: f64, beta: f64) -> Lanes {
    lanes(|l| madd::<FMA>(base[l], alpha, beta))
}

/// `(α, β)` of a component for [`component_args`] and [`exponent_args`].
#[inline(always)]
fn arg_terms(inv_two_scale: f64, offset: f64, t: f64, dot_form: bool) -> (f64, f64) {
    let neg_inv_t = -1.0 / t;
    let alpha = if dot_form { neg_inv_t } else { inv_two_scale * neg_inv_t };
    (alpha, offset * neg_inv_t)
}

/// `x` on live lanes, 0 on the others (a select, so a NaN on a dead lane cannot leak).
#[inline(always)]
fn live_or_zero(live: f64, x: f64) -> f64 {
    if live > 0.0 { x } else { 0.0 }
}

/// The lane label of an unlabelled point.
const NO_LABEL: usize = usize::MAX - 1;

/// Below this own-class mass `R_y` a block's class sums are taken apart (see the kernel).
const MIN_CLASS_MASS: f64 = 1e-250;

/// Cross-entropy's class-restricted sums for a block whose own class lies far below its best
/// component: subtract the class's own maximum `m_y` and take its exponentials again, so
/// `S_y = Σ_{j∈y} e^{a_j − m_y} ≥ 1` never underflows.
#[inline(always)]
fn class_sums_apart<const FMA: bool>(
    prep: &Prepared,
    s: &mut Scratch,
    acc: &mut LaneAcc,
    m: &Lanes,
    ln_total: &Lanes,
    latent: &Lanes,
) {
    let (k, live, labels) = (prep.k, s.live, s.labels);
    let mut my = [f64::NEG_INFINITY; B];
    for j in 0..k {
        let (cj, a) = (prep.classes[j], get(&s.a, j));
        my = lanes(|l| if cj == labels[l] && a[l] > my[l] { a[l] } else { my[l] });
    }
    let mut sy = [0.0; B];
    for j in 0..k {
        let (cj, a) = (prep.classes[j], get(&s.a, j));
        let e = lanes(|l| {
            let e = exp_with::<FMA>(a[l] - my[l]);
            if cj == labels[l] { e } else { 0.0 }
        });
        sy = lanes(|l| sy[l] + e[l]);
        put(&mut s.w, j, &e);
    }
    let inv_y = lanes(|l| 1.0 / sy[l]);
    // a is not shifted: lse_y = my + ln sy, lse − lse_y = (m − my) + ln_total − ln sy.
    let ln_sy = lanes(|l| ln_with::<FMA>(sy[l]));
    let clamped = lanes(|l| {
        if latent[l] > 0.0 {
            -prep.t * (m[l] + ln_total[l])
        } else {
            -prep.t * (my[l] + ln_sy[l])
        }
    });
    let loss = if prep.semi {
        clamped
    } else {
        lanes(|l| prep.t * (((m[l] - my[l]) + ln_total[l]) - ln_sy[l]))
    };
    acc.loss = lanes(|l| acc.loss[l] + live_or_zero(live[l], loss[l]));
    acc.clamped = lanes(|l| acc.clamped[l] + live_or_zero(live[l], clamped[l]));
    for j in 0..k {
        let (r, e) = (get(&s.r, j), get(&s.w, j));
        let wr = lanes(|l| {
            if latent[l] > 0.0 {
                r[l]
            } else {
                live_or_zero(live[l], e[l] * inv_y[l])
            }
        });
        put(&mut s.w, j, &wr);
        let g = if prep.semi { wr } else { lanes(|l| wr[l] - r[l]) };
        put(&mut s.g, j, &g);
    }
}

/// `len ≤ B` rows of `width` contiguous values (row-major) into `width` rows of `B` lanes;
/// lanes past `len` repeat the last row. Full blocks of the common widths take a transpose
/// with the width known at compile time, which vectorises into shuffles.
#[inline(always)]
fn transpose(rows: &[f64], width: usize, len: usize, out: &mut [f64]) {
    #[inline(always)]
    fn fixed<const W: usize>(rows: &[f64], out: &mut [f64]) {
        let rows = &rows[..W * B];
        let out = &mut out[..W * B];
        for l in 0..B {
            let row: &[f64; W] = rows[l * W..(l + 1) * W].try_into().expect("a row of W values");
            for c in 0..W {
                out[c * B + l] = row[c];
            }
        }
    }
    match (len == B, width) {
        (true, 1) => out[..B].copy_from_slice(rows),
        (true, 2) => fixed::<2>(rows, out),
        (true, 3) => fixed::<3>(rows, out),
        (true, 4) => fixed::<4>(rows, out),
        _ => {
            for c in 0..width {
                let col = row_mut(out, c);
                for (l, x) in col.iter_mut().enumerate() {
                    *x = rows[l.min(len - 1) * width + c];
                }
            }
        }
    }
}

/// Cross-entropy's class sums for a block with soft labels, lane by lane with the plain path's
/// [`clamp`]: for each class `c` with `p_c > 0` its own maximum and exponentials,
/// `q_j = p_c e^{a_j − lse_c}` and `F^p = −T Σ_c p_c lse_c`. Hard-labelled lanes take `p`
/// one-hot, latent lanes (semi-supervised, unlabelled) keep `r`.
fn class_sums_soft(
    soft: &SoftLabels,
    prep: &Prepared,
    s: &mut Scratch,
    acc: &mut LaneAcc,
    m: &Lanes,
    ln_total: &Lanes,
) {
    let k = prep.k;
    let t = prep.t;
    let mut loss = [0.0; B];
    let mut clamped = [0.0; B];
    // One lane's a and q, contiguous for the plain path's `clamp`.
    let (mut a_row, mut q) = (vec![0.0; k], vec![0.0; k]);
    for l in 0..B {
        for j in 0..k {
            s.w[j * B + l] = 0.0;
            s.g[j * B + l] = 0.0;
        }
        if s.live[l] == 0.0 {
            continue;
        }
        // a is not shifted: lse = m + ln_total.
        let lse = m[l] + ln_total[l];
        if prep.semi && s.labels[l] == NO_LABEL {
            for j in 0..k {
                s.w[j * B + l] = s.r[j * B + l];
                s.g[j * B + l] = s.r[j * B + l];
            }
            clamped[l] = -t * lse;
            loss[l] = clamped[l];
            continue;
        }
        for (j, aj) in a_row.iter_mut().enumerate() {
            *aj = s.a[j * B + l];
        }
        let label = (s.labels[l] != NO_LABEL).then(|| s.labels[l] as u32);
        let lse_p = clamp(&prep.classes, &a_row, soft.row(s.soft[l]), label, &mut q);
        clamped[l] = -t * lse_p;
        loss[l] = if prep.semi { clamped[l] } else { t * (lse - lse_p) };
        for (j, &qj) in q.iter().enumerate() {
            s.w[j * B + l] = qj;
            s.g[j * B + l] = if prep.semi { qj } else { qj - s.r[j * B + l] };
        }
    }
    acc.loss = lanes(|l| acc.loss[l] + live_or_zero(s.live[l], loss[l]));
    acc.clamped = lanes(|l| acc.clamped[l] + live_or_zero(s.live[l], clamped[l]));
}

#[inline(always)]
// The one function over 100 lines: one pass per lane block keeps the distances, the exponentials
// and the four regimes' tails on the same registers. Splitting the tails into inlined functions
// may cost nothing, but that wants its own benchmark run (the kernel's speed is the product).
#[allow(clippy::too_many_lines)]
fn kernel<const FMA: bool>(problem: &Problem, prep: &Prepared, range: std::ops::Range<usize>, w: &mut Work) {
    let (k, dim, p) = (prep.k, prep.dim, prep.p);
    let Work { acc, s } = w;
    let mut start = range.start;
    while start < range.end {
        let len = (range.end - start).min(B);
        // Gather B points as lanes; lanes past the end repeat the last point and are dead. The
        // block's coordinates are one contiguous run of the row-major points, transposed here.
        let last = start + len - 1;
        transpose(&problem.points[start * dim..(last + 1) * dim], dim, len, &mut s.xs);
        if p > 0 {
            transpose(&problem.targets[start * p..(last + 1) * p], p, len, &mut s.ts);
        }
        // Read one value per cache line of the next block now, so its loads from memory overlap
        // this block's arithmetic instead of stalling its transpose.
        // (Eight values make a 64-byte line.)
        let ahead = (last + 1).min(range.end)..(last + 1 + B).min(range.end);
        let mut touched = 0.0;
        for v in problem.points[ahead.start * dim..ahead.end * dim].iter().step_by(8) {
            touched += v;
        }
        for v in problem.targets[ahead.start * p..ahead.end * p].iter().step_by(8) {
            touched += v;
        }
        std::hint::black_box(touched);
        if prep.regime == Regime::CrossEntropy {
            for l in 0..B {
                let i = start + l.min(len - 1);
                let live = l < len && problem.counts_point(i);
                s.live[l] = if live { 1.0 } else { 0.0 };
                s.labels[l] = problem.labels[i].map_or(NO_LABEL, |y| y as usize);
                s.soft[l] = if live {
                    problem.soft.index.get(i).copied().unwrap_or(SoftLabels::NONE)
                } else {
                    SoftLabels::NONE
                };
            }
            acc.n += s.live.iter().filter(|&&v| v > 0.0).count();
        } else {
            // Every point counts outside cross-entropy.
            s.live = lanes(|l| if l < len { 1.0 } else { 0.0 });
            acc.n += len;
        }
        start += len;
        let live = s.live;

        // Squared distances, scores and exponent arguments a_j = −E_j/T, one component at a
        // time over all lanes; the running maximum per lane alongside.
        // The background component (the reject option) takes part in the maximum and the sum.
        let mut m = [prep.a_bg; B];
        // With distance scores d = ‖x − μ‖²/(2s) is not kept: Σ G d = Σ G ‖x − μ‖² / (2s).
        let mixture_sums = prep.shared_mixture_sums();
        // a is not stored: the next pass recomputes it from ‖x − μ‖² (or d) in one rounding.
        for j in 0..k {
            let mu = &prep.mu[j * dim..(j + 1) * dim];
            let (sq, base, a) = if prep.precision.is_empty() {
                component_args::<FMA>(mu, &s.xs, prep.terms[j], prep.dot_form)
            } else {
                let p = &prep.precision[j * dim * dim..(j + 1) * dim * dim];
                metric_args::<FMA>(mu, p, &s.xs, &mut s.dif, prep.terms[j])
            };
            m = lanes(|l| if a[l] > m[l] { a[l] } else { m[l] });
            put(&mut s.sq, j, &sq);
            if prep.dot_form {
                put(&mut s.dist, j, &base);
            }
        }
        // Shift by the maximum: from here on a_j ≤ 0 (the log-sum-exp is m + ln Σ e^{a_j}).
        // If every energy overflowed, m = −∞ and everything turns NaN, as it must.
        let background = prep.a_bg > f64::NEG_INFINITY;
        let a_bg = lanes(|l| prep.a_bg - m[l]);
        let e_bg = if background {
            lanes(|l| exp_with::<FMA>(a_bg[l]))
        } else {
            [0.0; B]
        };
        let mut total = e_bg;
        // Σ_j e^{a_j} a_j with the shifted a: the entropy's Σ_j r_j a_j is this over the total.
        let mut ea = if background {
            lanes(|l| e_bg[l] * a_bg[l])
        } else {
            [0.0; B]
        };
        for j in 0..k {
            let a = exponent_args::<FMA>(&prep.base(s, j), prep.terms[j].0, prep.terms[j].1);
            let a = lanes(|l| a[l] - m[l]);
            let e = lanes(|l| exp_with::<FMA>(a[l]));
            total = lanes(|l| total[l] + e[l]);
            ea = lanes(|l| madd::<FMA>(e[l], a[l], ea[l]));
            put(&mut s.r, j, &e);
        }
        let ln_total = lanes(|l| ln_with::<FMA>(total[l]));
        let inv = lanes(|l| 1.0 / total[l]);
        // r = e^{a}/Σ (0 on dead lanes). Entropy H_i = ln Σ e^{a} − Σ_j r_ij a_ij with the
        // shifted a (no cancellation), the background included.
        acc.entropy = lanes(|l| acc.entropy[l] + live_or_zero(live[l], ln_total[l] - ea[l] * inv[l]));
        let free = lanes(|l| -prep.t * (m[l] + ln_total[l]));
        if mixture_sums {
            // G = r and the EM weights are r: one set of sums serves both, accumulated in the
            // same pass that normalises r.
            let f = lanes(|l| live_or_zero(live[l], free[l]));
            acc.loss = lanes(|l| acc.loss[l] + f[l]);
            acc.clamped = lanes(|l| acc.clamped[l] + f[l]);
            for j in 0..k {
                let (e, sq) = (get(&s.r, j), get(&s.sq, j));
                let r = lanes(|l| live_or_zero(live[l], e[l] * inv[l]));
                add_acc(&mut acc.counts, j, &r);
                fma_acc::<FMA>(&mut acc.em_sq, j, &r, &sq);
                for d in 0..dim {
                    let (mu, xd) = (prep.mu[j * dim + d], get(&s.xs, d));
                    let diff = lanes(|l| xd[l] - mu);
                    fma_acc::<FMA>(&mut acc.em_first, d * k + j, &r, &diff);
                }
            }
            continue;
        }
        if prep.regime == Regime::CrossEntropy {
            // The class-restricted log-sum-exp from the same exponentials: with R_y = Σ_{j∈y} r_j,
            // lse_y = lse + ln R_y, the loss is −T ln R_y and q_j = r_j / R_y. Only if the
            // own class lies so far below the best that R_y leaves the normal range (by e^{−575}
            // or more), or a lane holds a soft label, does the block take its own maxima and
            // exponentials (`class_sums_apart`, `class_sums_soft`).
            let labels = s.labels;
            let mut ey = [0.0; B];
            for j in 0..k {
                let (cj, e) = (prep.classes[j], get(&s.r, j));
                ey = lanes(|l| if cj == labels[l] { ey[l] + e[l] } else { ey[l] });
            }
            let ry = lanes(|l| ey[l] * inv[l]);
            // Semi-supervised: unlabelled lanes are latent (F, and r for G and the EM weights).
            let latent = lanes(|l| if prep.semi && labels[l] == NO_LABEL { 1.0 } else { 0.0 });
            let soft = s.soft.iter().any(|&r| r != SoftLabels::NONE);
            if !soft && (0..B).all(|l| live[l] == 0.0 || latent[l] > 0.0 || ry[l] >= MIN_CLASS_MASS) {
                let ln_ry = lanes(|l| ln_with::<FMA>(ry[l]));
                // F^y = −T (lse + ln R_y); cross-entropy's loss is F^y − F = −T ln R_y.
                let clamped = lanes(|l| {
                    if latent[l] > 0.0 {
                        free[l]
                    } else {
                        -prep.t * ((m[l] + ln_total[l]) + ln_ry[l])
                    }
                });
                let loss = if prep.semi {
                    clamped
                } else {
                    lanes(|l| -prep.t * ln_ry[l])
                };
                acc.loss = lanes(|l| acc.loss[l] + live_or_zero(live[l], loss[l]));
                acc.clamped = lanes(|l| acc.clamped[l] + live_or_zero(live[l], clamped[l]));
                // r = e/Σ; q = e/Σ_{j∈y} e on the own class (r on latent lanes), 0 elsewhere;
                // computed here and accumulated at once (nothing stored).
                let q_scale = lanes(|l| {
                    let s = if latent[l] > 0.0 { inv[l] } else { 1.0 / ey[l] };
                    live_or_zero(live[l], s)
                });
                for j in 0..k {
                    let (cj, e, sq) = (prep.classes[j], get(&s.r, j), get(&s.sq, j));
                    let r = lanes(|l| live_or_zero(live[l], e[l] * inv[l]));
                    let wr = lanes(|l| {
                        if latent[l] > 0.0 || cj == labels[l] {
                            e[l] * q_scale[l]
                        } else {
                            0.0
                        }
                    });
                    let g = if prep.semi || !prep.gradient {
                        wr
                    } else {
                        lanes(|l| wr[l] - r[l])
                    };
                    accumulate::<FMA>(prep, acc, &s.xs, &mut s.dif, j, &r, &g, Some(&wr), &sq);
                }
                continue;
            }
            // The fallbacks read a and r and leave q in s.w and G in s.g.
            for j in 0..k {
                let a = exponent_args::<FMA>(&prep.base(s, j), prep.terms[j].0, prep.terms[j].1);
                put(&mut s.a, j, &a);
            }
            normalise(s, k, &live, &inv);
            if soft {
                class_sums_soft(&problem.soft, prep, s, acc, &m, &ln_total);
            } else {
                class_sums_apart::<FMA>(prep, s, acc, &m, &ln_total, &latent);
            }
            for j in 0..k {
                let (r, g, wr, sq) = (get(&s.r, j), get(&s.g, j), get(&s.w, j), get(&s.sq, j));
                accumulate::<FMA>(prep, acc, &s.xs, &mut s.dif, j, &r, &g, Some(&wr), &sq);
            }
        } else if prep.regime == Regime::Mixture {
            // The sum of kernels (no normalisation): J_i = −T Σ_j e^{a_j} = −T e^{lse}, and
            // G_j = e^{a_j} = r_j e^{lse}; the EM run keeps the normalised r and free energy.
            // The normalised mixture comes here only for second moments or a scatter pass:
            // then G = r (scale 1) and J_i = F_i.
            let scale = if prep.unnormalised {
                lanes(|l| (m[l] + ln_total[l]).exp())
            } else {
                [1.0; B]
            };
            let loss = if prep.unnormalised {
                lanes(|l| -prep.t * scale[l])
            } else {
                free
            };
            acc.loss = lanes(|l| acc.loss[l] + live_or_zero(live[l], loss[l]));
            acc.clamped = lanes(|l| acc.clamped[l] + live_or_zero(live[l], free[l]));
            for j in 0..k {
                let (e, sq) = (get(&s.r, j), get(&s.sq, j));
                let r = lanes(|l| live_or_zero(live[l], e[l] * inv[l]));
                let g = lanes(|l| r[l] * scale[l]);
                accumulate::<FMA>(prep, acc, &s.xs, &mut s.dif, j, &r, &g, None, &sq);
            }
        } else {
            // Attention: α = e · scale with scale = 1/Σ on live lanes and 0 on dead ones,
            // written over e in the first pass; o = Σ_j α_j v_j, o − t per lane and value
            // coordinate.
            let scale = lanes(|l| live_or_zero(live[l], inv[l]));
            let mut loss = [0.0; B];
            // (o − t)·o, which is ā = Σ_j α_j a_j with a_j = (o − t)·v_j.
            let mut abar = [0.0; B];
            for (c0, n) in value_chunks(p) {
                match n {
                    4 => outputs::<FMA, 4>(prep, s, c0, &scale, &mut loss, &mut abar),
                    3 => outputs::<FMA, 3>(prep, s, c0, &scale, &mut loss, &mut abar),
                    2 => outputs::<FMA, 2>(prep, s, c0, &scale, &mut loss, &mut abar),
                    _ => outputs::<FMA, 1>(prep, s, c0, &scale, &mut loss, &mut abar),
                }
            }
            acc.loss = lanes(|l| acc.loss[l] + live_or_zero(live[l], loss[l]));
            acc.clamped = lanes(|l| acc.clamped[l] + live_or_zero(live[l], free[l]));
            // Σ α t (EM) and Σ α (o − t) (the gradient of the values), a few value
            // coordinates at a time held in registers.
            for (c0, n) in value_chunks(p) {
                value_sums_of::<FMA>(n, prep, s, &s.ts, &mut acc.em_targets, c0);
                if prep.gradient {
                    value_sums_of::<FMA>(n, prep, s, &s.out, &mut acc.grad_values, c0);
                }
            }
            if !prep.gradient {
                // EM needs Σ α, Σ α t and the moments only.
                for j in 0..k {
                    let (r, sq) = (get(&s.r, j), get(&s.sq, j));
                    accumulate::<FMA>(prep, acc, &s.xs, &mut s.dif, j, &r, &r, None, &sq);
                }
                continue;
            }
            // With the scores a_j = (o − t)·v_j: b_j = −a_j/T, formed here from −v_j/T,
            // b̄ = Σ α b = −ā/T, and G = −α (a − ā)/T = α (b − b̄).
            let minus_inv_t = -1.0 / prep.t;
            let bbar = lanes(|l| abar[l] * minus_inv_t);
            for j in 0..k {
                let (r, sq) = (get(&s.r, j), get(&s.sq, j));
                let mut bj = [0.0; B];
                for c in 0..p {
                    let (v, out) = (prep.values[j * p + c] * minus_inv_t, get(&s.out, c));
                    bj = lanes(|l| madd::<FMA>(out[l], v, bj[l]));
                }
                let g = lanes(|l| r[l] * (bj[l] - bbar[l]));
                if prep.dot_form {
                    // Σ G d with the score d = −x·μ (the distance form takes Σ G ‖x − μ‖²).
                    fma_acc::<FMA>(&mut acc.grad_dist, j, &g, &get(&s.dist, j));
                }
                accumulate::<FMA>(prep, acc, &s.xs, &mut s.dif, j, &r, &g, None, &sq);
            }
        }
    }
}

/// The value coordinates in chunks of up to four: `(first, count)`.
fn value_chunks(p: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..p).step_by(4).map(move |c0| (c0, (p - c0).min(4)))
}

/// Attention's outputs for value coordinates `c0 … c0 + N − 1`: `o_c − t_c` with
/// `o_c = Σ_j α_j v_jc` into `s.out`, and `½ (o − t)²` added to `loss`. The `N` sums stay in
/// registers while the loop reads each `α_j` once. The first chunk (`c0 = 0`) forms
/// `α = e · scale` and writes it over `e` in `s.r`. Adds `(o − t)·o` to `abar`: that is
/// `ā = Σ_j α_j (o − t)·v_j`, so the per-component scores need no second pass for it.
#[inline(always)]
fn outputs<const FMA: bool, const N: usize>(
    prep: &Prepared,
    s: &mut Scratch,
    c0: usize,
    scale: &Lanes,
    loss: &mut Lanes,
    abar: &mut Lanes,
) {
    let (k, p) = (prep.k, prep.p);
    let mut out = [[0.0; B]; N];
    for j in 0..k {
        let r = if c0 == 0 {
            let e = get(&s.r, j);
            let r = lanes(|l| e[l] * scale[l]);
            put(&mut s.r, j, &r);
            r
        } else {
            get(&s.r, j)
        };
        for (q, o) in out.iter_mut().enumerate() {
            let v = prep.values[j * p + c0 + q];
            *o = lanes(|l| madd::<FMA>(r[l], v, o[l]));
        }
    }
    for (q, o) in out.iter().enumerate() {
        let t = get(&s.ts, c0 + q);
        let ot = lanes(|l| o[l] - t[l]);
        *abar = lanes(|l| madd::<FMA>(ot[l], o[l], abar[l]));
        *loss = lanes(|l| madd::<FMA>(0.5 * ot[l], ot[l], loss[l]));
        put(&mut s.out, c0 + q, &ot);
    }
}

/// `Σ_i α_ij row_c(i)` for `c = c0 … c0 + N − 1` into `target` (`[c][j]` accumulator rows):
/// the `N` rows (`o − t` or `t`) stay in registers while the loop runs over the components.
#[inline(always)]
fn value_sums<const FMA: bool, const N: usize>(
    prep: &Prepared,
    s: &Scratch,
    rows: &[f64],
    target: &mut [f64],
    c0: usize,
) {
    let k = prep.k;
    let rows: [Lanes; N] = std::array::from_fn(|q| get(rows, c0 + q));
    for j in 0..k {
        let r = get(&s.r, j);
        for (q, row) in rows.iter().enumerate() {
            fma_acc::<FMA>(target, (c0 + q) * k + j, &r, row);
        }
    }
}

/// [`value_sums`] for a chunk of `n ≤ 4` coordinates (the count chosen at run time).
#[inline(always)]
fn value_sums_of<const FMA: bool>(n: usize, prep: &Prepared, s: &Scratch, rows: &[f64], target: &mut [f64], c0: usize) {
    match n {
        4 => value_sums::<FMA, 4>(prep, s, rows, target, c0),
        3 => value_sums::<FMA, 3>(prep, s, rows, target, c0),
        2 => value_sums::<FMA, 2>(prep, s, rows, target, c0),
        _ => value_sums::<FMA, 1>(prep, s, rows, target, c0),
    }
}

/// `r = e^{a}/Σ` in place of the exponentials (0 on dead lanes).
#[inline(always)]
fn normalise(s: &mut Scratch, k: usize, live: &Lanes, inv: &Lanes) {
    for j in 0..k {
        let e = get(&s.r, j);
        put(&mut s.r, j, &lanes(|l| live_or_zero(live[l], e[l] * inv[l])));
    }
}

/// Adds component `j`'s lanes to the sums: `Σ r`, `Σ w` (only when the EM weights `w` are not
/// `r`: otherwise `Σ w = Σ r`), `Σ w ‖x − μ‖²`, `Σ w (x − μ)`, and when the gradient is wanted
/// `Σ G`, `Σ G ‖x − μ‖²` (distance scores; `Σ G d` is this times `1/(2s)`), `Σ G (x − μ)`, and
/// with second moments `Σ G (x − μ)(x − μ)ᵀ`. A scatter pass takes EM's moments about its
/// centres instead ([`scatter_moments`]). `dif` is scratch (`D` rows of lanes).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn accumulate<const FMA: bool>(
    prep: &Prepared,
    acc: &mut LaneAcc,
    xs: &[f64],
    dif: &mut [f64],
    j: usize,
    r: &Lanes,
    g: &Lanes,
    wr: Option<&Lanes>,
    sq: &Lanes,
) {
    let (k, dim) = (prep.k, prep.dim);
    let w = wr.unwrap_or(r);
    add_acc(&mut acc.counts, j, r);
    if wr.is_some() {
        add_acc(&mut acc.em_mass, j, w);
    }
    if let Some(centre) = &prep.centre {
        scatter_moments::<FMA>(prep, acc, xs, dif, &centre[j * dim..(j + 1) * dim], j, w);
        return;
    }
    fma_acc::<FMA>(&mut acc.em_sq, j, w, sq);
    if prep.gradient {
        add_acc(&mut acc.grad_mass, j, g);
        if !prep.dot_form {
            fma_acc::<FMA>(&mut acc.grad_dist, j, g, sq);
        }
    }
    for d in 0..dim {
        let (mu, xd) = (prep.mu[j * dim + d], get(xs, d));
        let diff = lanes(|l| xd[l] - mu);
        if prep.gradient {
            fma_acc::<FMA>(&mut acc.grad_first, d * k + j, g, &diff);
        }
        fma_acc::<FMA>(&mut acc.em_first, d * k + j, w, &diff);
        if prep.second || prep.em_second {
            put(dif, d, &diff);
        }
    }
    if prep.second && prep.gradient {
        outer_acc::<FMA>(&mut acc.grad_second, dif, k, dim, j, g);
    }
    if prep.em_second {
        outer_acc::<FMA>(&mut acc.em_second, dif, k, dim, j, w);
    }
}

/// A scatter pass's moments of component `j` about its centre `c`: `Σ w (x − c)`,
/// `Σ w ‖x − c‖²` and, with maps, `Σ w (x − c)(x − c)ᵀ`.
#[inline(always)]
fn scatter_moments<const FMA: bool>(
    prep: &Prepared,
    acc: &mut LaneAcc,
    xs: &[f64],
    dif: &mut [f64],
    c: &[f64],
    j: usize,
    w: &Lanes,
) {
    let (k, dim) = (prep.k, prep.dim);
    let mut sq = [0.0; B];
    for (d, &cd) in c.iter().enumerate() {
        let xd = get(xs, d);
        let v = lanes(|l| xd[l] - cd);
        sq = lanes(|l| madd::<FMA>(v[l], v[l], sq[l]));
        fma_acc::<FMA>(&mut acc.em_first, d * k + j, w, &v);
        put(dif, d, &v);
    }
    fma_acc::<FMA>(&mut acc.em_sq, j, w, &sq);
    if !acc.em_second.is_empty() {
        outer_acc::<FMA>(&mut acc.em_second, dif, k, dim, j, w);
    }
}

/// `target[(r, c)][j] += Σ_lanes weight · v_r v_c` over the upper triangle `r ≤ c` of the rows
/// `v` (`dif`, `D × B`).
#[inline(always)]
fn outer_acc<const FMA: bool>(target: &mut [f64], dif: &[f64], k: usize, dim: usize, j: usize, weight: &Lanes) {
    let mut e = 0;
    for r in 0..dim {
        let vr = get(dif, r);
        let wv = lanes(|l| weight[l] * vr[l]);
        for c in r..dim {
            fma_acc::<FMA>(target, e * k + j, &wv, &get(dif, c));
            e += 1;
        }
    }
}

/// What [`field_colours`] needs of the state.
struct Fields<'a> {
    k: usize,
    dim: usize,
    mu: &'a [f64],
    inv_two_scale: &'a [f64],
    offset: &'a [f64],
    t: f64,
    dot_form: bool,
    /// `−E₀/T` of the background component (`−∞` without one).
    a_bg: f64,
    /// `P_j` (components with maps; empty otherwise).
    precision: &'a [f64],
}

impl<'a> Fields<'a> {
    fn new(spec: &ModelSpec, state: &'a State, terms: &'a ComponentTerms) -> Self {
        Self {
            k: state.k,
            dim: state.dim,
            mu: &state.prototypes,
            inv_two_scale: &terms.inv_two_scale,
            offset: &terms.offset,
            t: spec.settings.temperature,
            dot_form: spec.regime.score() == Score::DotProduct,
            a_bg: spec.background_arg(),
            precision: &terms.precision,
        }
    }
}

/// The exponentials of one block of positions: `a_rows` (`K × B`) receives `e^{a_j − m}`;
/// returns the per-lane maximum `m` and `Σ_j e^{a_j − m}`. Lanes past `len` repeat the last
/// position.
#[inline(always)]
fn block_exps<const FMA: bool>(
    f: &Fields,
    xs: &[f64],
    start: usize,
    len: usize,
    lane_x: &mut [f64],
    a_rows: &mut [f64],
    dif: &mut [f64],
) -> (Lanes, Lanes) {
    let (k, dim) = (f.k, f.dim);
    for l in 0..B {
        let i = start + l.min(len - 1);
        for d in 0..dim {
            lane_x[d * B + l] = xs[i * dim + d];
        }
    }
    let mut m = [f.a_bg; B];
    for j in 0..k {
        let mu = &f.mu[j * dim..(j + 1) * dim];
        let terms = arg_terms(f.inv_two_scale[j], f.offset[j], f.t, f.dot_form);
        let (_, _, a) = if f.precision.is_empty() {
            component_args::<FMA>(mu, lane_x, terms, f.dot_form)
        } else {
            metric_args::<FMA>(mu, &f.precision[j * dim * dim..(j + 1) * dim * dim], lane_x, dif, terms)
        };
        m = lanes(|l| if a[l] > m[l] { a[l] } else { m[l] });
        put(a_rows, j, &a);
    }
    // The background component counts in the sum (so the blend darkens where it takes over).
    let mut total = if f.a_bg > f64::NEG_INFINITY {
        lanes(|l| exp_with::<FMA>(f.a_bg - m[l]))
    } else {
        [0.0; B]
    };
    for j in 0..k {
        let a = get(a_rows, j);
        let e = lanes(|l| exp_with::<FMA>(a[l] - m[l]));
        total = lanes(|l| total[l] + e[l]);
        put(a_rows, j, &e);
    }
    (m, total)
}

/// How [`field_colours`] colours a position: component `j` belongs to group `group[j]` (its
/// class for cross-entropy, else itself) and the colour is `Σ_j r_j palette[group[j]]`; the
/// winner is the group with the largest summed responsibility. With the reject option the
/// background component's share `r_0` adds `r_0 rest`.
pub struct Colouring<'a> {
    /// Channel values per group.
    pub palette: &'a [[f64; 3]],
    /// The group of each component.
    pub group: &'a [usize],
    /// Channel values of the background component (reject option); black darkens.
    pub rest: [f64; 3],
}

/// Blended colours (`rgb`, channel values), winning groups and free energies at many positions:
/// the first half of the kernel, lane-parallel like it, with the blend taken inside (no `n × K`
/// responsibilities are stored). `xs` holds `n` positions (`n × D`, row-major); `free` receives
/// `F(x) = −T ln Σ_j e^{−E_j(x)/T}`. Single-threaded: callers split the positions.
///
/// # Panics
/// If the buffers do not have matching sizes or a group has no palette entry.
#[allow(clippy::too_many_arguments)]
pub fn field_colours(
    spec: &ModelSpec,
    state: &State,
    terms: &ComponentTerms,
    xs: &[f64],
    colouring: &Colouring,
    rgb: &mut [[f64; 3]],
    winner: &mut [usize],
    free: &mut [f64],
) {
    let (k, dim, n) = (state.k, state.dim, free.len());
    assert!(
        xs.len() == n * dim && rgb.len() == n && winner.len() == n && colouring.group.len() == k,
        "field_colours: buffer sizes"
    );
    assert!(
        colouring.group.iter().all(|&g| g < colouring.palette.len()),
        "field_colours: groups"
    );
    let fields = Fields::new(spec, state, terms);
    if fma_available() {
        field_colours_fma(&fields, xs, colouring, rgb, winner, free);
    } else {
        field_colours_plain(&fields, xs, colouring, rgb, winner, free);
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn field_colours_fma(
    f: &Fields,
    xs: &[f64],
    c: &Colouring,
    rgb: &mut [[f64; 3]],
    winner: &mut [usize],
    free: &mut [f64],
) {
    colour_kernel::<true>(f, xs, c, rgb, winner, free);
}

#[multiversion::multiversion(targets("x86_64+avx", "x86_64+sse4.1"))]
fn field_colours_plain(
    f: &Fields,
    xs: &[f64],
    c: &Colouring,
    rgb: &mut [[f64; 3]],
    winner: &mut [usize],
    free: &mut [f64],
) {
    colour_kernel::<false>(f, xs, c, rgb, winner, free);
}

#[inline(always)]
fn colour_kernel<const FMA: bool>(
    f: &Fields,
    xs: &[f64],
    c: &Colouring,
    rgb: &mut [[f64; 3]],
    winner: &mut [usize],
    free: &mut [f64],
) {
    let (k, n, groups) = (f.k, free.len(), c.palette.len());
    let mut lane_x = vec![0.0; f.dim * B];
    let mut dif = vec![0.0; f.dim * B];
    let mut a_rows = vec![0.0; k * B];
    let mut mass = vec![0.0; groups * B];
    let mut start = 0;
    while start < n {
        let len = (n - start).min(B);
        let (m, total) = block_exps::<FMA>(f, xs, start, len, &mut lane_x, &mut a_rows, &mut dif);
        let (mut r, mut g, mut b) = ([0.0; B], [0.0; B], [0.0; B]);
        mass.fill(0.0);
        for j in 0..k {
            let (e, grp) = (get(&a_rows, j), c.group[j]);
            let p = c.palette[grp];
            r = lanes(|l| madd::<FMA>(e[l], p[0], r[l]));
            g = lanes(|l| madd::<FMA>(e[l], p[1], g[l]));
            b = lanes(|l| madd::<FMA>(e[l], p[2], b[l]));
            let acc = get(&mass, grp);
            put(&mut mass, grp, &lanes(|l| acc[l] + e[l]));
        }
        let mut best = [f64::MIN; B];
        let mut win = [0usize; B];
        for grp in 0..groups {
            let v = get(&mass, grp);
            for l in 0..B {
                if v[l] > best[l] {
                    (best[l], win[l]) = (v[l], grp);
                }
            }
        }
        if f.a_bg > f64::NEG_INFINITY && c.rest != [0.0; 3] {
            // The background's exponential is what the components leave of the total.
            let mut comp = [0.0; B];
            for grp in 0..groups {
                let v = get(&mass, grp);
                comp = lanes(|l| comp[l] + v[l]);
            }
            let bg = lanes(|l| (total[l] - comp[l]).max(0.0));
            r = lanes(|l| madd::<FMA>(bg[l], c.rest[0], r[l]));
            g = lanes(|l| madd::<FMA>(bg[l], c.rest[1], g[l]));
            b = lanes(|l| madd::<FMA>(bg[l], c.rest[2], b[l]));
        }
        let inv = lanes(|l| 1.0 / total[l]);
        let ln_total = lanes(|l| ln_with::<FMA>(total[l]));
        for l in 0..len {
            free[start + l] = -f.t * (m[l] + ln_total[l]);
            rgb[start + l] = [r[l] * inv[l], g[l] * inv[l], b[l] * inv[l]];
            winner[start + l] = win[l];
        }
        start += len;
    }
}

/// The sums over all points at `state`, in parallel over fixed chunks, each summed over its
/// lanes and then merged in chunk order (so the result does not depend on thread scheduling).
#[must_use]
pub fn sums(problem: &Problem, state: &State, terms: &ComponentTerms) -> Sums {
    sums_with(problem, state, terms, &Pass::gradient(problem))
}

/// [`sums`], with the gradient sums (`Σ G`, `Σ G d`, `Σ G (x − μ)`, `Σ α (o − t)`) only when
/// `gradient` is set (they stay zero otherwise; the mixture's are shared with EM's anyway).
#[must_use]
pub fn sums_for(problem: &Problem, state: &State, terms: &ComponentTerms, gradient: bool) -> Sums {
    let pass = if gradient { Pass::gradient(problem) } else { Pass::em() };
    sums_with(problem, state, terms, &pass)
}

/// The sums `pass` asks for, as [`sums`] computes them (a scatter pass takes EM's moments about
/// its centres, and with maps their outer products).
#[must_use]
pub fn sums_with(problem: &Problem, state: &State, terms: &ComponentTerms, pass: &Pass) -> Sums {
    let gradient = pass.gradient && pass.centres.is_none();
    let (k, dim, p) = (state.k, problem.dim, problem.target_dim);
    let (t, dot_form) = (
        problem.spec.settings.temperature,
        problem.spec.regime.score() == Score::DotProduct,
    );
    let prep = Prepared {
        k,
        dim,
        p,
        mu: state.prototypes.clone(),
        values: state.values.clone(),
        inv_two_scale: terms.inv_two_scale.clone(),
        t,
        regime: problem.spec.regime,
        dot_form,
        a_bg: problem.spec.background_arg(),
        unnormalised: problem.spec.settings.unnormalised,
        semi: problem.spec.settings.semi_supervised,
        classes: problem.spec.classes.clone(),
        gradient,
        terms: (0..k)
            .map(|j| arg_terms(terms.inv_two_scale[j], terms.offset[j], t, dot_form))
            .collect(),
        precision: terms.precision.clone(),
        second: pass.second && gradient,
        centre: pass.centres.clone(),
        em_second: pass.em_second && pass.centres.is_none(),
    };
    let n = problem.len();
    let chunks = n.div_ceil(CHUNK).max(1);
    let run = |w: &mut Work, c: usize| {
        w.clear();
        sum_chunk(problem, &prep, c * CHUNK..((c + 1) * CHUNK).min(n), w);
        w.acc.sums(&prep)
    };
    let parts: Vec<Sums> = if chunks > 1 {
        (0..chunks)
            .into_par_iter()
            .map_init(|| Work::new(k, dim, p, &prep), run)
            .collect()
    } else {
        vec![run(&mut Work::new(k, dim, p, &prep), 0)]
    };
    let mut total = Sums::for_pass(k, dim, p, pass, state.has_maps());
    for part in &parts {
        total.merge(part);
    }
    total
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
    fn ln_matches_the_library_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x: f64 = 1e-250;
        while x < 1e300 {
            for y in [x, x * 1.37, x * 0.71, x * 1.999] {
                let (a, b) = (ln_with::<false>(y), y.ln());
                worst = worst.max(((a - b) / b.abs().max(1e-300)).abs());
            }
            x *= 1.9;
        }
        // Near 1, where ln x → 0, the error is relative to x − 1.
        for d in [1e-12, 1e-6, 0.01, 0.2, 0.414, -0.29, -1e-9] {
            let y: f64 = 1.0 + d;
            worst = worst.max(((ln_with::<false>(y) - y.ln()) / y.ln()).abs());
        }
        assert!(worst < 4e-16, "worst relative error {worst:e}");
        assert_eq!(ln_with::<false>(1.0), 0.0);
        assert_eq!(ln_with::<false>(f64::INFINITY), f64::INFINITY);
        assert!(ln_with::<false>(f64::NAN).is_nan());
        if has_fma() {
            for y in [1.0, 1.5, 2.0, 16.0, 1e-200, 3e250] {
                assert!(((ln_with::<true>(y) - y.ln()) / y.ln().abs().max(1e-300)).abs() < 4e-16);
            }
        }
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
