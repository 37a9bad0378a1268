//! The three objectives: loss, responsibilities and exact gradients in one pass over points.
//!
//! Every regime reduces to `G_ij = ∂J/∂E_ij` (MATH.md §3–§5); the gradients of the
//! prototypes, mixing logits and log-scales then follow from the energy alone:
//!
//! - `∂J/∂μ_j = Σ_i G_ij (μ_j − x_i)/s_j` (distance) or `−Σ_i G_ij x_i` (dot product)
//! - `∂J/∂w_j = −T (Σ_i G_ij − π_j Σ_ik G_ik)`
//! - `∂J/∂ρ_j = Σ_i G_ij (V·T·D/2 − d_ij)`
//!
//! The pass accumulates these sums per component and never stores an `N × K` matrix. It also
//! gathers the statistics explicit EM needs at the same state (responsibility mass, first
//! moment and squared deviation around the current prototype).

pub mod lanes;
mod rows;
mod sums;

pub use rows::{Pass, Row, field_row, point_row, quadratic_form, row_kernel, sum_range, sum_range_with};
pub use sums::{EmStats, Evaluation, Gradient, Sums, finish};

use crate::core::model::{ComponentTerms, State};
use crate::core::problem::Problem;

/// One pass over the points: loss, exact gradients and EM statistics at `state`. Uses the
/// fast parallel kernel ([`crate::core::eval::lanes`]); equal to [`evaluate_rows`] to rounding.
#[must_use]
pub fn evaluate(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = lanes::sums(problem, state, &terms);
    finish(problem, state, sums)
}

/// The evaluation explicit EM needs: the loss, EM's objective, the masses and the EM statistics,
/// without the gradient sums (EM uses none; `gradient` is empty). Equal to [`evaluate`] in
/// every other field. For cross-entropy and attention this skips a third to a half of the
/// work per point.
#[must_use]
pub fn evaluate_em(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = lanes::sums_with(problem, state, &terms, &Pass::em_for(problem));
    let mut eval = finish(problem, state, sums);
    eval.gradient = Gradient::default();
    eval
}

/// The same evaluation, written plainly: one thread, one point at a time through
/// [`row_kernel`], the library's `exp`. The reference the fast path is tested against.
#[must_use]
pub fn evaluate_rows(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = sum_range(problem, state, &terms, 0..problem.len());
    finish(problem, state, sums)
}

/// Explicit EM's scatter about the new means (MATH.md §3, §8): from a second pass over the
/// points at the same state, so no moment about the old prototype is subtracted from another.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// `n_j = Σ_i ρ_ij`.
    pub mass: Vec<f64>,
    /// `Σ_i ρ_ij ‖x_i − c_j‖²`.
    pub sq: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − c_j)(x_i − c_j)ᵀ`, `K × D × D` (components with maps; else empty).
    pub second: Vec<f64>,
}

impl Scatter {
    fn of(sums: Sums) -> Self {
        Self {
            mass: sums.em_mass,
            sq: sums.em_sq,
            second: sums.em_second,
        }
    }
}

/// EM's scatter at `state` about `centres` (`K × D`), by the fast kernel.
#[must_use]
pub fn scatter(problem: &Problem, state: &State, centres: &[f64]) -> Scatter {
    let terms = ComponentTerms::new(&problem.spec, state);
    Scatter::of(lanes::sums_with(
        problem,
        state,
        &terms,
        &Pass::scatter(centres.to_vec()),
    ))
}

/// [`scatter`] on the plain path (the reference the fast one is tested against).
#[must_use]
pub fn scatter_rows(problem: &Problem, state: &State, centres: &[f64]) -> Scatter {
    let terms = ComponentTerms::new(&problem.spec, state);
    Scatter::of(sum_range_with(
        problem,
        state,
        &terms,
        0..problem.len(),
        &Pass::scatter(centres.to_vec()),
    ))
}
