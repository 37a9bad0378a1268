//! The diagnostics of MATH.md §7, computed from evaluations and states.

use rayon::prelude::*;

use crate::core::eval::{Evaluation, point_row};
use crate::core::model::State;
use crate::core::problem::Problem;
use crate::core::reference::{self, Derivative};

/// A component whose mass `N_j` falls below this fraction of `N` is reported dead.
pub const DEAD_FRACTION: f64 = 1e-6;
/// Explicit EM's objective may not rise by more than this (relative) between steps.
pub const EM_RISE_TOLERANCE: f64 = 1e-9;
/// A scale is running away when its kernel variance `s·T` exceeds this multiple of the data's
/// variance per coordinate.
pub const RUNAWAY_FACTOR: f64 = 10.0;
/// How many evenly spaced points the identity residual watches (the `check` command uses all).
pub const RESIDUAL_SAMPLE: usize = 128;
/// The residual of one step checks every `RESIDUAL_ROTATION`-th watched point, starting at a
/// different one each step, so four consecutive steps cover all of them at a quarter of the
/// cost per step (an independent dual-number derivative per point is the costliest diagnostic).
pub const RESIDUAL_ROTATION: usize = 4;

/// Evenly spaced indices of up to `max` points that count in the objective.
#[must_use]
pub fn sample_rows(problem: &Problem, max: usize) -> Vec<usize> {
    let counted: Vec<usize> = (0..problem.len()).filter(|&i| problem.counts_point(i)).collect();
    if counted.len() <= max {
        return counted;
    }
    (0..max).map(|s| counted[s * counted.len() / max]).collect()
}

/// The watched rows that step `step` checks: every [`RESIDUAL_ROTATION`]-th, from `step mod 4`.
#[must_use]
pub fn rotation(rows: &[usize], step: usize) -> Vec<usize> {
    rows.iter()
        .skip(step % RESIDUAL_ROTATION)
        .step_by(RESIDUAL_ROTATION)
        .copied()
        .collect()
}

/// The identity residual over `rows`: `max |N·∂J/∂E_ij (independent) − closed form|`, the
/// closed form being `r_ij` (mixture), `q_ij − r_ij` (cross-entropy) or the attention law.
/// Per-point units, so the number does not shrink with `N`.
#[must_use]
pub fn identity_residual(problem: &Problem, state: &State, rows: &[usize], method: Derivative) -> f64 {
    // The rows are independent: they are checked in parallel (the largest deviation does not
    // depend on the order).
    rows.par_iter()
        .map(|&i| {
            let Some(row) = point_row(problem, state, i) else {
                return 0.0;
            };
            let independent = reference::point_energy_gradient(problem, state, i, method);
            row.energy_gradient
                .iter()
                .zip(independent)
                .fold(0.0, |worst: f64, (closed, ind)| worst.max((closed - ind).abs()))
        })
        .reduce(|| 0.0, f64::max)
}

/// Cosine between two displacement vectors; `None` when either is zero.
#[must_use]
pub fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let aa: f64 = a.iter().map(|x| x * x).sum();
    let bb: f64 = b.iter().map(|x| x * x).sum();
    if aa > 0.0 && bb > 0.0 {
        Some((ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0))
    } else {
        None
    }
}

/// Step fraction `α_j = (Δ^GD·Δ^EM)/||Δ^EM||²`: for the mixture with a shared rate this is
/// `η N_j/(N s_j)`, the fraction of EM's step that gradient descent takes.
#[must_use]
pub fn step_fraction(gd: &[f64], em: &[f64]) -> Option<f64> {
    let ab: f64 = gd.iter().zip(em).map(|(x, y)| x * y).sum();
    let bb: f64 = em.iter().map(|x| x * x).sum();
    (bb > 0.0).then(|| ab / bb)
}

/// `sqrt(Σ_j ||μ^a_j − μ^b_j||²)`.
#[must_use]
pub fn prototype_distance(a: &State, b: &State) -> f64 {
    a.prototypes
        .iter()
        .zip(&b.prototypes)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Warnings about one run's state: dead components, scales at their floor or running away.
/// `spread` is the data's variance per coordinate: a kernel whose variance `s·T` exceeds
/// [`RUNAWAY_FACTOR`] times it is wider than the whole data set and fits no structure.
#[must_use]
pub fn state_warnings(
    problem: &Problem,
    run: &str,
    state: &State,
    eval: &Evaluation,
    spread: f64,
    data_covariance: Option<&[f64]>,
) -> Vec<String> {
    let mut out = Vec::new();
    let n = eval.n as f64;
    for (j, &c) in eval.counts.iter().enumerate() {
        if c < DEAD_FRACTION * n {
            out.push(format!(
                "{run}: component {j} is dead (N_j = {c:.3e}, below {DEAD_FRACTION:e}·N)"
            ));
        }
    }
    let spec = &problem.spec;
    if state.has_maps() {
        out.extend(map_warnings(problem, run, state, data_covariance));
    } else if spec.settings.learn_scales {
        for (j, s) in state.scales().into_iter().enumerate() {
            if s <= spec.settings.scale_floor * (1.0 + 1e-9) {
                out.push(format!(
                    "{run}: scale of component {j} is at its floor {:e} (collapsing onto few points)",
                    spec.settings.scale_floor
                ));
            } else if s * spec.settings.temperature > RUNAWAY_FACTOR * spread {
                out.push(format!(
                    "{run}: scale of component {j} is running away (s = {s:.3e}; metric collapse: responsibilities go uniform)"
                ));
            }
        }
    }
    out
}

/// A component's covariance is near singular when its variance along some direction falls
/// below this fraction of the data's variance along that direction.
pub const SINGULAR_FACTOR: f64 = 1e-3;

/// Warnings about maps `W_j` (MATH.md §8), each variance compared with the data's along the
/// same direction (so axes of different units do not raise false alarms): a covariance
/// `T (W_jᵀW_j)⁻¹` near singular (its points span fewer than `D` directions: explicit EM is held
/// by `reg_covar`, gradient descent by nothing) or wider than the data (the metric collapse,
/// `W_j` shrinking to 0). `data_covariance` is `D × D`; without it nothing is said.
fn map_warnings(problem: &Problem, run: &str, state: &State, data_covariance: Option<&[f64]>) -> Vec<String> {
    let Some(c) = data_covariance else {
        return Vec::new();
    };
    let t = problem.spec.settings.temperature;
    let d = state.dim;
    let mut out = Vec::new();
    let shared = problem.spec.structure == crate::core::model::Structure::Tied;
    for j in 0..if shared { 1.min(state.k) } else { state.k } {
        let p = nalgebra::DMatrix::from_row_slice(d, d, &crate::core::metric::precision(state.map(j), d));
        let eig = nalgebra::SymmetricEigen::new(p);
        let name = if shared {
            "the shared metric".to_string()
        } else {
            format!("component {j}")
        };
        // Along each eigenvector u of P_j: the component's variance T/λ against the data's uᵀCu.
        let mut narrow: Option<(f64, f64)> = None;
        let mut wide: Option<(f64, f64)> = None;
        for (e, &lambda) in eig.eigenvalues.iter().enumerate() {
            let u = eig.eigenvectors.column(e);
            let data: f64 = (0..d)
                .map(|a| (0..d).map(|b| u[a] * c[a * d + b] * u[b]).sum::<f64>())
                .sum();
            let own = t / lambda;
            if data > 0.0 && own < SINGULAR_FACTOR * data && narrow.is_none_or(|(o, _)| own < o) {
                narrow = Some((own, data));
            }
            if data > 0.0 && own > RUNAWAY_FACTOR * data && wide.is_none_or(|(o, _)| own > o) {
                wide = Some((own, data));
            }
        }
        if let Some((own, data)) = narrow {
            out.push(format!(
                "{run}: {name}'s covariance is near singular (variance {own:.3e} along a direction where the data's is {data:.3e}): its points span fewer than D directions; EM is held by reg_covar, gradient descent by nothing"
            ));
        } else if let Some((own, data)) = wide {
            out.push(format!(
                "{run}: {name}'s metric is collapsing (variance {own:.3e} along a direction where the data's is {data:.3e}: W shrinks to 0 and the responsibilities go uniform)"
            ));
        }
    }
    out
}
