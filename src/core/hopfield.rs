//! Attention as retrieval (modern Hopfield networks, Ramsauer et al. 2020; MATH.md §4): a query
//! `ξ` is read out as `Σ_j r_j(ξ) μ_j`, the responsibility-weighted mean of the keys (the
//! prototypes), which is one mean-shift step of `ξ` on the keys — an EM step for the mode of the
//! kernel density the keys define. Iterating it converges to a fixed point whose kind depends on
//! the temperature: the average of all keys (high `T`), a metastable average of a few of them, or a
//! single key (low `T`: the pattern is retrieved).

use serde::Serialize;

use crate::core::eval::{Row, field_row};
use crate::core::model::{ComponentTerms, ModelSpec, State};

/// Fixed-point iterations before giving up.
pub const MAX_ITERATIONS: usize = 500;
/// Converged when a step moves the query less than this times the keys' spread.
pub const TOLERANCE: f64 = 1e-10;
/// A fixed point retrieves key `j` when `r_j` exceeds this.
pub const RETRIEVED: f64 = 0.99;
/// A fixed point is the global average when its effective number of keys `exp H(r)` exceeds this
/// fraction of `K` and it lies within this fraction of the keys' spread from their mean.
pub const GLOBAL: f64 = 0.9;

/// What a query converged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FixedPoint {
    /// One key retrieved (`r_j > 0.99`).
    Pattern(usize),
    /// An average over about this many keys (`exp H(r)`, rounded).
    Metastable(usize),
    /// The average of all keys.
    GlobalAverage,
    /// Claimed by the background component (`r₀ > ½`): none of the keys.
    Rejected,
}

impl FixedPoint {
    /// A short description.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            FixedPoint::Pattern(j) => format!("retrieves key {j}"),
            FixedPoint::Metastable(m) => format!("metastable average of ~{m} keys"),
            FixedPoint::GlobalAverage => "global average of all keys".into(),
            FixedPoint::Rejected => "rejected: none of the keys (background)".into(),
        }
    }

    /// A label short enough for the scene: `key 2`, `metastable (~3 keys)`, `global average`,
    /// `rejected`.
    #[must_use]
    pub fn short(self) -> String {
        match self {
            FixedPoint::Pattern(j) => format!("key {j}"),
            FixedPoint::Metastable(m) => format!("metastable (~{m} keys)"),
            FixedPoint::GlobalAverage => "global average".into(),
            FixedPoint::Rejected => "rejected".into(),
        }
    }
}

/// One query's iteration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retrieval {
    /// `ξ₀, ξ₁, …` up to the fixed point.
    pub path: Vec<Vec<f64>>,
    /// Whether the last step moved less than the tolerance.
    pub converged: bool,
    /// `r(ξ*)` at the last point.
    pub responsibilities: Vec<f64>,
    /// Its kind.
    pub kind: FixedPoint,
}

/// The keys' mean and root-mean-square distance from it (the length scale of the tolerances).
fn spread(state: &State) -> (Vec<f64>, f64) {
    let (k, dim) = (state.k, state.dim);
    let mut mean = vec![0.0; dim];
    for j in 0..k {
        for (m, x) in mean.iter_mut().zip(state.prototype(j)) {
            *m += x / k as f64;
        }
    }
    let ms = (0..k)
        .map(|j| {
            state
                .prototype(j)
                .iter()
                .zip(&mean)
                .map(|(x, m)| (x - m) * (x - m))
                .sum::<f64>()
        })
        .sum::<f64>()
        / k.max(1) as f64;
    (mean, ms.sqrt().max(1e-300))
}

/// One retrieval update `ξ ← Σ_j r_j(ξ) μ_j` under the lab's energies (scales, weights and score
/// form included); also returns `r(ξ)`. With a background component (the reject option) its
/// share stays where the query is: `ξ ← Σ_j r_j μ_j + r₀ ξ`.
#[must_use]
pub fn update(spec: &ModelSpec, state: &State, terms: &ComponentTerms, xi: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut row = Row::new(state.k, state.dim, 0);
    field_row(spec, state, terms, xi, &mut row);
    let mut out = vec![0.0; state.dim];
    for (j, r) in row.responsibilities.iter().enumerate() {
        for (o, m) in out.iter_mut().zip(state.prototype(j)) {
            *o += r * m;
        }
    }
    for (o, x) in out.iter_mut().zip(xi) {
        *o += row.background * x;
    }
    (out, row.responsibilities)
}

/// Iterates [`update`] from `xi` to a fixed point (or [`MAX_ITERATIONS`]) and classifies it.
#[must_use]
pub fn retrieve(spec: &ModelSpec, state: &State, xi: &[f64]) -> Retrieval {
    let terms = ComponentTerms::new(spec, state);
    let (mean, scale) = spread(state);
    let mut path = vec![xi.to_vec()];
    let mut converged = false;
    let mut r = Vec::new();
    for _ in 0..MAX_ITERATIONS {
        let last = path.last().expect("the path starts with ξ₀");
        let (next, resp) = update(spec, state, &terms, last);
        r = resp;
        let moved = next
            .iter()
            .zip(last)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        if !moved.is_finite() {
            break;
        }
        path.push(next);
        if moved < TOLERANCE * scale {
            converged = true;
            break;
        }
    }
    let fixed = path.last().expect("non-empty");
    let (_, resp) = update(spec, state, &terms, fixed);
    if !resp.is_empty() {
        r = resp;
    }
    let k = state.k;
    let entropy: f64 = -r.iter().filter(|&&p| p > 0.0).map(|p| p * p.ln()).sum::<f64>();
    let effective = entropy.exp();
    let from_mean = fixed
        .iter()
        .zip(&mean)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let (best, top) = r
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |b, (j, &p)| if p > b.1 { (j, p) } else { b });
    let rejected = 1.0 - r.iter().sum::<f64>();
    let kind = if rejected > 0.5 {
        FixedPoint::Rejected
    } else if top > RETRIEVED {
        FixedPoint::Pattern(best)
    } else if effective > GLOBAL * k as f64 && from_mean < (1.0 - GLOBAL) * scale {
        FixedPoint::GlobalAverage
    } else {
        FixedPoint::Metastable(effective.round().max(2.0) as usize)
    };
    Retrieval {
        path,
        converged,
        responsibilities: r,
        kind,
    }
}
