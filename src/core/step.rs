//! One gradient-descent step and one explicit EM step, each from a state and the
//! [`Evaluation`] at that state (the E-step is the forward pass).

use crate::core::eval::{Evaluation, scatter};
use crate::core::metric;
use crate::core::model::{Form, RateMode, Regime, Score, State, Structure};
use crate::core::problem::Problem;

/// The displacement gradient descent gives prototype `j`'s block, `K × D`:
/// `−η_j ∂J/∂μ_j` in the prototype form. With [`RateMode::Em`] the rate is `η N s_j / n_j`
/// for spherical distance scores, `η N / n_j` times `P_j⁻¹` for components with maps, and
/// `η N / n_j` for dot-product keys (`n_j` EM's responsibility mass: `Σ r`, `Σ α` or the clamped
/// `Σ q`). Zero for a component with no EM mass in [`RateMode::Em`].
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
        let g = &eval.gradient.prototypes[j * dim..(j + 1) * dim];
        if state.has_maps() && mode == RateMode::Em {
            // −η (N/n_j) P_j⁻¹ ∂J/∂μ_j = −η (μ_j − m_j) (MATH.md §8).
            let p = metric::precision(state.map(j), dim);
            let pg =
                metric::spd_inverse(&p, dim).map_or_else(|| vec![f64::NAN; dim], |inv| metric::apply(&inv, dim, g));
            for d in 0..dim {
                step[j * dim + d] = -rate * pg[d];
            }
        } else {
            for d in 0..dim {
                step[j * dim + d] = -rate * g[d];
            }
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
    let neural = spec.settings.form == Form::Neural && !eval.gradient.biases.is_empty();
    if neural && state.has_maps() {
        neural_step(state, eval, learning_rate, mode, &mut next);
    } else if neural {
        spherical_neural_step(state, eval, learning_rate, mode, spec.settings.scale_floor, &mut next);
    } else {
        for (m, s) in next
            .prototypes
            .iter_mut()
            .zip(gd_prototype_step(problem, state, eval, learning_rate, mode))
        {
            *m += s;
        }
        if state.has_maps() && !eval.gradient.maps.is_empty() {
            for (w, g) in next.maps.iter_mut().zip(&eval.gradient.maps) {
                *w -= learning_rate * g;
            }
        }
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
    if spec.settings.learn_scales && !state.has_maps() && !neural {
        let floor = spec.settings.scale_floor.ln();
        for (r, g) in next.log_scales.iter_mut().zip(&eval.gradient.log_scales) {
            *r = (*r - learning_rate * g).max(floor);
        }
    }
    next
}

/// The neural form's step (MATH.md §8): `W ← W − η ∂J/∂W`, `b ← b − η_b ∂J/∂b` with
/// `b = −W μ` and `η_b = η` (shared) or `η N / n_j` (EM-preconditioned: the `b` step that moves
/// `μ` to `m_j` at `η = 1` when `W` stays), then `μ = −W⁻¹ b` from the new `W` (NaN when it is
/// singular: the run pauses).
fn neural_step(state: &State, eval: &Evaluation, learning_rate: f64, mode: RateMode, next: &mut State) {
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let n = eval.n as f64;
    for j in 0..k {
        let w = state.map(j);
        let mut b = metric::apply(w, d, state.prototype(j));
        let rate = match mode {
            RateMode::Shared => learning_rate,
            RateMode::Em if eval.em.mass[j] > 0.0 => learning_rate * n / eval.em.mass[j],
            RateMode::Em => 0.0,
        };
        for (c, bc) in b.iter_mut().enumerate() {
            // b = −W μ.
            *bc = -*bc - rate * eval.gradient.biases[j * d + c];
        }
        // W moves only when the maps are learned.
        let new_w: Vec<f64> = (0..dd)
            .map(|e| w[e] - learning_rate * eval.gradient.maps.get(j * dd + e).copied().unwrap_or(0.0))
            .collect();
        let mu = metric::solve(&new_w, d, &b).map_or_else(|| vec![f64::NAN; d], |v| v.iter().map(|x| -x).collect());
        next.prototypes[j * d..(j + 1) * d].copy_from_slice(&mu);
        next.maps[j * dd..(j + 1) * dd].copy_from_slice(&new_w);
    }
}

/// The neural form's step for spherical components `W_j = w_j I` (`w_j = s_j^{−1/2}`):
/// `w ← w − η ∂J/∂w` (when the scales are learned), `b ← b − η_b ∂J/∂b` with `b = −w μ` and
/// `η_b` as in [`neural_step`], then `μ = −b/w` and `s = w^{−2}`, kept at or above the floor.
fn spherical_neural_step(
    state: &State,
    eval: &Evaluation,
    learning_rate: f64,
    mode: RateMode,
    floor: f64,
    next: &mut State,
) {
    let (k, d) = (state.k, state.dim);
    let n = eval.n as f64;
    for j in 0..k {
        let w = (-0.5 * state.log_scales[j]).exp();
        let rate = match mode {
            RateMode::Shared => learning_rate,
            RateMode::Em if eval.em.mass[j] > 0.0 => learning_rate * n / eval.em.mass[j],
            RateMode::Em => 0.0,
        };
        let mut new_w = w - learning_rate * eval.gradient.maps.get(j).copied().unwrap_or(0.0);
        // s = w^{−2} ≥ floor, i.e. |w| ≤ floor^{−1/2} (the sign of w is the map's, s its square).
        let most = floor.powf(-0.5);
        if new_w.abs() > most {
            new_w = most.copysign(new_w);
        }
        for c in 0..d {
            let b = -w * state.prototypes[j * d + c] - rate * eval.gradient.biases[j * d + c];
            next.prototypes[j * d + c] = -b / new_w;
        }
        next.log_scales[j] = -2.0 * new_w.abs().ln();
    }
}

/// `Σ ρ ‖x − m_j‖²` per component, without cancellation. From the E-step's moments about the
/// old prototype, `Σ ρ ‖x − μ‖² − n ‖m − μ‖²`, only where the subtracted part is at most half of
/// the whole (the difference is then at least half of it, so it carries a few rounding errors,
/// as a second pass would); if any component's is larger (a prototype far from its points, where
/// the difference would lose digits), from a second pass about the new means.
fn scale_scatter(problem: &crate::core::problem::Problem, state: &State, eval: &Evaluation, means: &[f64]) -> Vec<f64> {
    let dim = state.dim;
    let mass = &eval.em.mass;
    let mut sq = Vec::with_capacity(state.k);
    for j in 0..state.k {
        if mass[j] <= 0.0 {
            sq.push(0.0);
            continue;
        }
        let shift: f64 = (0..dim).map(|d| (eval.em.first[j * dim + d] / mass[j]).powi(2)).sum();
        let whole = eval.em.sq_dev[j];
        if mass[j] * shift > 0.5 * whole || !whole.is_finite() {
            return scatter(problem, state, means).sq;
        }
        sq.push(whole - mass[j] * shift);
    }
    sq
}

/// `Σ ρ (x − m_j)(x − m_j)ᵀ` per component (`K × D × D`), without cancellation: from the
/// E-step's second moments about the old prototype, `S_j − n_j δ_j δ_jᵀ` with `δ_j = m_j − μ_j`,
/// only where `n_j δ_jᵀ S_j⁻¹ δ_j ≤ ½` (then along every direction `u` the subtracted
/// `n_j (u·δ_j)²` is at most half of `uᵀ S_j u`, so no digits are lost); otherwise (or without
/// those moments) from a second pass about the new means.
fn metric_scatter(
    problem: &crate::core::problem::Problem,
    state: &State,
    eval: &Evaluation,
    means: &[f64],
) -> Vec<f64> {
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let mass = &eval.em.mass;
    let second = &eval.em.second;
    let two_pass = || scatter(problem, state, means).second;
    if second.len() != k * dd {
        return two_pass();
    }
    let mut out = vec![0.0; k * dd];
    for j in 0..k {
        if mass[j] <= 0.0 {
            continue;
        }
        let s = &second[j * dd..(j + 1) * dd];
        let delta: Vec<f64> = (0..d).map(|c| eval.em.first[j * d + c] / mass[j]).collect();
        let Some(inv) = metric::spd_inverse(s, d) else {
            return two_pass();
        };
        let sd = metric::apply(&inv, d, &delta);
        let q: f64 = (0..d).map(|r| delta[r] * sd[r]).sum();
        if (mass[j] * q).is_nan() || mass[j] * q > 0.5 {
            return two_pass();
        }
        for r in 0..d {
            for c in 0..d {
                out[j * dd + r * d + c] = s[r * d + c] - mass[j] * delta[r] * delta[c];
            }
        }
    }
    out
}

/// Explicit EM's metric step (MATH.md §8, scikit-learn's M-step at `T = 1`):
/// `C_j = Σ ρ (x − m)(x − m)ᵀ / n_j + λ I` (diag keeps its diagonal; tied pools
/// `Σ_j n_j C_j / Σ n`), `P_j = T C_j⁻¹`, `W_j` its upper Cholesky factor. A component without
/// mass keeps its map; a covariance that is not positive definite leaves NaN (the run pauses).
fn em_metric_step(problem: &crate::core::problem::Problem, state: &State, eval: &Evaluation, next: &mut State) {
    let spec = &problem.spec;
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let t = spec.settings.temperature;
    let lambda = spec.settings.reg_covar;
    // next.prototypes already holds EM's new means m_j.
    let second = metric_scatter(problem, state, eval, &next.prototypes);
    let sc = crate::core::eval::Scatter {
        mass: eval.em.mass.clone(),
        sq: Vec::new(),
        second,
    };
    let mut covs: Vec<Option<Vec<f64>>> = (0..k)
        .map(|j| (sc.mass[j] > 0.0).then(|| sc.second[j * dd..(j + 1) * dd].iter().map(|v| v / sc.mass[j]).collect()))
        .collect();
    if spec.structure == Structure::Tied {
        let total: f64 = sc.mass.iter().sum();
        let mut pooled = vec![0.0; dd];
        for j in 0..k {
            for (p, v) in pooled.iter_mut().zip(&sc.second[j * dd..(j + 1) * dd]) {
                *p += v / total;
            }
        }
        covs = vec![Some(pooled); k];
    }
    for (j, cov) in covs.into_iter().enumerate() {
        let Some(mut c) = cov else { continue };
        for r in 0..d {
            for col in 0..d {
                if r == col {
                    c[r * d + col] += lambda;
                } else if spec.structure == Structure::Diag {
                    c[r * d + col] = 0.0;
                }
            }
        }
        let w = metric::spd_inverse(&c, d)
            .and_then(|inv| metric::cholesky_upper(&inv.iter().map(|v| v * t).collect::<Vec<_>>(), d))
            .unwrap_or_else(|| vec![f64::NAN; dd]);
        next.maps[j * dd..(j + 1) * dd].copy_from_slice(&w);
    }
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
    let metric_step = spec.settings.learn_scales && spec.regime.score() == Score::Distance;
    if metric_step && state.has_maps() {
        if spec.settings.volume {
            em_metric_step(problem, state, eval, &mut next);
        }
    } else if metric_step && (spec.settings.volume || spec.active_scale_prior().is_some()) {
        let sq = scale_scatter(problem, state, eval, &next.prototypes);
        let t = spec.settings.temperature;
        let v = if spec.settings.volume { 1.0 } else { 0.0 };
        for j in 0..state.k {
            if mass[j] > 0.0 || spec.active_scale_prior().is_some() {
                let sq = sq[j];
                let s = match spec.active_scale_prior() {
                    Some(p) => {
                        (sq + 2.0 * t * p.strength * p.scale) / (t * (v * dim as f64 * mass[j] + 2.0 * p.strength))
                    }
                    // scikit-learn's spherical variance: tr(C)/D + λ, at temperature T.
                    None => (sq / (dim as f64 * mass[j]) + spec.settings.reg_covar) / t,
                };
                next.log_scales[j] = s.max(spec.settings.scale_floor).ln();
            }
        }
    }
    next
}
