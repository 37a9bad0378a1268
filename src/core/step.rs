//! One gradient-descent step and one explicit EM step, each from a state and the
//! [`Evaluation`] at that state (the E-step is the forward pass).

use crate::core::eval::Evaluation;
use crate::core::model::{RateMode, Regime, Score, State};
use crate::core::problem::Problem;

/// The displacement gradient descent gives prototype `j`'s block, `K × D`:
/// `−η_j ∂J/∂μ_j`. Zero for a component with no EM mass in [`RateMode::Em`].
#[must_use]
pub fn gd_prototype_step(
    problem: &Problem,
    state: &State,
    eval: &Evaluation,
    learning_rate: f64,
    mode: RateMode,
) -> Vec<f64> {
    let dim = state.dim;
    let scales = state.scales();
    let n = eval.n as f64;
    let distance = problem.spec.regime.score() == Score::Distance;
    let mut step = vec![0.0; state.k * dim];
    for j in 0..state.k {
        let rate = match mode {
            RateMode::Shared => learning_rate,
            RateMode::Em => {
                let mass = eval.em.mass[j];
                if mass > 0.0 {
                    learning_rate * n * if distance { scales[j] } else { 1.0 } / mass
                } else {
                    0.0
                }
            }
        };
        for d in 0..dim {
            step[j * dim + d] = -rate * eval.gradient.prototypes[j * dim + d];
        }
    }
    step
}

/// The displacement explicit EM gives prototype `j`, `m_j − μ_j` (zero for a dead component and
/// for dot-product keys, which have no closed-form M-step).
#[must_use]
pub fn em_prototype_step(problem: &Problem, state: &State, eval: &Evaluation) -> Vec<f64> {
    let dim = state.dim;
    let mut step = vec![0.0; state.k * dim];
    if problem.spec.regime.score() == Score::DotProduct {
        return step;
    }
    for j in 0..state.k {
        let mass = eval.em.mass[j];
        if mass > 0.0 {
            for d in 0..dim {
                step[j * dim + d] = eval.em.first[j * dim + d] / mass;
            }
        }
    }
    step
}

/// `θ ← θ − η ∂J/∂θ` on every learned parameter (MATH.md §3). Scales are kept at or above the
/// floor.
#[must_use]
pub fn gd_step(problem: &Problem, state: &State, eval: &Evaluation, learning_rate: f64, mode: RateMode) -> State {
    let spec = &problem.spec;
    let mut next = state.clone();
    for (m, s) in next
        .prototypes
        .iter_mut()
        .zip(gd_prototype_step(problem, state, eval, learning_rate, mode))
    {
        *m += s;
    }
    if matches!(spec.regime, Regime::Attention { .. }) {
        let p = state.value_dim;
        let n = eval.n as f64;
        for j in 0..state.k {
            let rate = match mode {
                RateMode::Shared => learning_rate,
                RateMode::Em if eval.em.mass[j] > 0.0 => learning_rate * n / eval.em.mass[j],
                RateMode::Em => 0.0,
            };
            for c in 0..p {
                next.values[j * p + c] -= rate * eval.gradient.values[j * p + c];
            }
        }
    }
    if spec.settings.learn_weights {
        for (w, g) in next.log_weights.iter_mut().zip(&eval.gradient.log_weights) {
            *w -= learning_rate * g;
        }
    }
    if spec.settings.learn_scales {
        let floor = spec.settings.scale_floor.ln();
        for (r, g) in next.log_scales.iter_mut().zip(&eval.gradient.log_scales) {
            *r = (*r - learning_rate * g).max(floor);
        }
    }
    next
}

/// Explicit EM's M-step from the E-step statistics in `eval` (MATH.md §3–§5): prototypes to
/// their responsibility-weighted means, weights to the mass fractions, scales to
/// `Σ ρ||x − m||² / (D n_j T)` (only with the volume term: without it the objective has no
/// finite optimum in `s`), attention values to the weighted mean target.
#[must_use]
pub fn em_step(problem: &Problem, state: &State, eval: &Evaluation) -> State {
    let spec = &problem.spec;
    let dim = state.dim;
    let mut next = state.clone();
    let step = em_prototype_step(problem, state, eval);
    for (m, s) in next.prototypes.iter_mut().zip(&step) {
        *m += s;
    }
    let mass = &eval.em.mass;
    if matches!(spec.regime, Regime::Attention { .. }) {
        let p = state.value_dim;
        for j in 0..state.k {
            if mass[j] > 0.0 {
                for c in 0..p {
                    next.values[j * p + c] = eval.em.targets[j * p + c] / mass[j];
                }
            }
        }
    }
    if spec.settings.learn_weights {
        let total: f64 = mass.iter().sum();
        for (w, m) in next.log_weights.iter_mut().zip(mass) {
            // A dead component keeps a tiny positive weight so every energy stays finite.
            *w = (m / total).max(1e-300).ln();
        }
    }
    // The scale step: the complete-data optimum Σ ρ||x − m||²/(D n_j T), or with a prior the MAP
    // step (S + 2Ta s₀)/(T(V D n_j + 2a)); without the volume term and without a prior there is
    // no finite optimum and the scales stay.
    if spec.settings.learn_scales
        && (spec.settings.volume || spec.active_scale_prior().is_some())
        && spec.regime.score() == Score::Distance
    {
        let t = spec.settings.temperature;
        let v = if spec.settings.volume { 1.0 } else { 0.0 };
        for j in 0..state.k {
            if mass[j] > 0.0 || spec.active_scale_prior().is_some() {
                let shift: f64 = step[j * dim..(j + 1) * dim].iter().map(|v| v * v).sum();
                // Σ ρ||x − m||² = Σ ρ||x − μ||² − n_j ||m − μ||² (parallel axes).
                let sq = (eval.em.sq_dev[j] - mass[j] * shift).max(0.0);
                let s = match spec.active_scale_prior() {
                    Some(p) => {
                        (sq + 2.0 * t * p.strength * p.scale) / (t * (v * dim as f64 * mass[j] + 2.0 * p.strength))
                    }
                    None => sq / (dim as f64 * mass[j] * t),
                };
                next.log_scales[j] = s.max(spec.settings.scale_floor).ln();
            }
        }
    }
    next
}
