//! The identity and every exact gradient checked against an independent derivative
//! (MATH.md §2, §7). The command line prints the table; the window shows it.

use crate::core::eval::{evaluate, point_row};
use crate::core::model::RateMode;
use crate::core::model::{Regime, Score, State};
use crate::core::problem::Problem;
use crate::core::reference::{self, Derivative, Params};
use crate::core::step::{em_prototype_step, gd_prototype_step};

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// What is compared.
    pub quantity: String,
    /// How many numbers were compared.
    pub entries: usize,
    /// The closed form at the entry of largest deviation.
    pub closed_form: f64,
    /// The independent value at that entry.
    pub independent: f64,
    /// `max |closed − independent|`.
    pub deviation: f64,
    /// The largest deviation allowed.
    pub tolerance: f64,
}

impl CheckRow {
    /// Within tolerance.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.deviation <= self.tolerance
    }

    fn compare(quantity: &str, closed: &[f64], independent: &[f64], rel_tol: f64) -> Self {
        Self::compare_at(quantity, closed, independent, rel_tol, 1.0)
    }

    /// As [`CheckRow::compare`], the tolerance relative to `max(magnitude, max |closed|)`:
    /// `magnitude` is the size of the terms the quantity is computed from, when they are larger
    /// than the result (a cancellation neither side can avoid).
    fn compare_at(quantity: &str, closed: &[f64], independent: &[f64], rel_tol: f64, magnitude: f64) -> Self {
        let scale = closed.iter().fold(magnitude.max(1.0), |m, v| m.max(v.abs()));
        let mut row = Self {
            quantity: quantity.into(),
            entries: closed.len(),
            closed_form: closed.first().copied().unwrap_or(0.0),
            independent: independent.first().copied().unwrap_or(0.0),
            deviation: 0.0,
            tolerance: rel_tol * scale,
        };
        for (&c, &i) in closed.iter().zip(independent) {
            let dev = (c - i).abs();
            // A NaN deviation must fail: it replaces any finite one and fails `passed`.
            if dev.is_nan() || dev > row.deviation {
                row.deviation = dev;
                row.closed_form = c;
                row.independent = i;
            }
        }
        row
    }
}

/// The size of the terms `J` is computed from: `max_ij |E_ij| + T ln(K + 1)`. `F_i = −T log Σ_j
/// e^{−E_ij/T}` cancels terms of this size (the energies hold `−T log π_j`, the log-sum-exp gives
/// back about `T ln K`), so any computation of `J`, the one-pass and the reference alike, is only
/// determined to `ε` times it: at `T = 1e100` about `1e84` absolute, whatever `J` itself is.
#[must_use]
pub fn loss_magnitude(problem: &Problem, state: &State) -> f64 {
    let params = Params::<f64>::constant(state);
    let largest = (0..problem.len())
        .filter(|&i| problem.counts_point(i))
        .flat_map(|i| reference::energies(problem, &params, i))
        .fold(0.0f64, |m, e| m.max(e.abs()));
    largest + problem.spec.settings.temperature * ((state.k + 1) as f64).ln()
}

/// Relative tolerance for derivatives by `method`.
#[must_use]
pub fn tolerance(method: Derivative) -> f64 {
    match method {
        Derivative::Dual => 1e-10,
        Derivative::FiniteDifference => 1e-6,
    }
}

/// Checks, at `state`: Theorem 1 (`∂F_i/∂E_ij = r_ij`), the regime's `∂J/∂E`, every parameter
/// gradient, the loss itself, and (mixture) the exact EM bridge. `relative_tolerance`
/// overrides [`tolerance`] for the derivative rows.
#[must_use]
pub fn check(problem: &Problem, state: &State, method: Derivative, relative_tolerance: Option<f64>) -> Vec<CheckRow> {
    let tol = relative_tolerance.unwrap_or_else(|| tolerance(method));
    let n = problem.effective_n().max(1) as f64;
    let mut r_closed = Vec::new();
    let mut r_ind = Vec::new();
    let mut g_closed = Vec::new();
    let mut g_ind = Vec::new();
    for i in 0..problem.len() {
        let Some(row) = point_row(problem, state, i) else {
            continue;
        };
        r_closed.extend_from_slice(&row.responsibilities);
        r_ind.extend(reference::free_energy_gradient(problem, state, i, method));
        g_closed.extend(row.energy_gradient.iter().map(|g| g / n));
        g_ind.extend(
            reference::point_energy_gradient(problem, state, i, method)
                .into_iter()
                .map(|g| g / n),
        );
    }
    let law = match problem.spec.regime {
        Regime::Mixture if problem.spec.settings.unnormalised => "∂J/∂E_ij = e^{−E_ij/T}/N (no normalisation: not r)",
        Regime::Mixture => "∂J/∂E_ij = r_ij/N (mixture)",
        Regime::CrossEntropy if problem.spec.settings.semi_supervised && !problem.soft.is_empty() => {
            "∂J/∂E_ij = q_ij/N or r_ij/N (semi, soft labels)"
        }
        Regime::CrossEntropy if problem.spec.settings.semi_supervised => {
            "∂J/∂E_ij = q_ij/N or r_ij/N (semi-supervised)"
        }
        Regime::CrossEntropy if !problem.soft.is_empty() => "∂J/∂E_ij = (q_ij − r_ij)/N (soft labels)",
        Regime::CrossEntropy => "∂J/∂E_ij = (q_ij − r_ij)/N (cross-entropy)",
        Regime::Attention { .. } => "∂J/∂E_ij = −α_ij(a_ij − ā_i)/T (attention)",
    };
    let eval = evaluate(problem, state);
    let independent = reference::parameter_gradient(problem, state, method);
    let mut rows = vec![
        CheckRow::compare("Theorem 1: ∂F_i/∂E_ij = r_ij", &r_closed, &r_ind, tol),
        CheckRow::compare(law, &g_closed, &g_ind, tol),
        CheckRow::compare(
            "∂J/∂μ (prototypes)",
            &eval.gradient.prototypes,
            &independent.prototypes,
            tol,
        ),
        // ∂J/∂w_j = T (π_j − r̄_j) (mixture): terms of size T cancel, so both sides carry
        // rounding of order ε·T (at T = 1e100 about 1e84, whatever the true value).
        CheckRow::compare_at(
            "∂J/∂w (mixing logits)",
            &eval.gradient.log_weights,
            &independent.log_weights,
            tol,
            problem.spec.settings.temperature,
        ),
        CheckRow::compare(
            "∂J/∂ρ (log-scales)",
            &eval.gradient.log_scales,
            &independent.log_scales,
            tol,
        ),
    ];
    metric_and_form_rows(problem, state, &eval, &independent, tol, &mut rows);
    if matches!(problem.spec.regime, Regime::Attention { .. }) {
        rows.push(CheckRow::compare(
            "∂J/∂v (values)",
            &eval.gradient.values,
            &independent.values,
            tol,
        ));
    }
    let reference_loss: f64 = reference::loss(problem, &Params::<f64>::constant(state));
    rows.push(CheckRow::compare_at(
        "J (one-pass vs reference)",
        &[eval.loss],
        &[reference_loss],
        1e-12,
        loss_magnitude(problem, state),
    ));
    if problem.spec.regime == Regime::Mixture
        && !problem.spec.settings.unnormalised
        && problem.spec.regime.score() == Score::Distance
    {
        let gd = gd_prototype_step(problem, state, &eval, 1.0, RateMode::Em);
        let em = em_prototype_step(problem, state, &eval);
        rows.push(CheckRow::compare(
            if state.has_maps() {
                "bridge: GD at η (N/N_j) P_j⁻¹ lands on EM's m_j"
            } else {
                "bridge: GD at η_j = N s_j/N_j lands on EM's m_j"
            },
            &gd,
            &em,
            1e-12,
        ));
    }
    rows
}

/// The rows a metric with maps or the neural form adds (and the log-scale row maps replace).
fn metric_and_form_rows(
    problem: &Problem,
    state: &State,
    eval: &crate::core::eval::Evaluation,
    independent: &crate::core::eval::Gradient,
    tol: f64,
    rows: &mut Vec<CheckRow>,
) {
    if state.has_maps() {
        rows.retain(|r| r.quantity != "∂J/∂ρ (log-scales)");
        rows.extend(metric_rows(problem, state, eval, independent, tol));
    } else if !eval.gradient.biases.is_empty() {
        // Spherical components in the neural form z = w x + b.
        if problem.spec.settings.learn_scales {
            rows.push(CheckRow::compare(
                "∂J/∂w (neural form, W_j = w_j I)",
                &eval.gradient.maps,
                &independent.maps,
                tol,
            ));
        }
        rows.push(CheckRow::compare(
            "∂J/∂b (neural form)",
            &eval.gradient.biases,
            &independent.biases,
            tol,
        ));
    }
}

/// The rows of a metric with maps (MATH.md §8): `∂J/∂W` (and `∂J/∂b` in the neural form)
/// against the independent derivative when the maps are learned, the volume identity
/// `|Σ_j|^{−1/2} = |det W_j|` (with `Σ_j⁻¹ = W_jᵀW_j`, from a determinant by cofactors or LU
/// elsewhere), and at `T = 1`, `V = 1` the author's one-point M-step direction
/// `∂F/∂W_j = r_j (z_j xᵀ − W_j^{−T})` of the neural form, from dual numbers.
fn metric_rows(
    problem: &Problem,
    state: &State,
    eval: &crate::core::eval::Evaluation,
    independent: &crate::core::eval::Gradient,
    tol: f64,
) -> Vec<CheckRow> {
    use crate::core::metric;
    let d = state.dim;
    let mut rows = Vec::new();
    if problem.spec.settings.learn_scales {
        rows.push(CheckRow::compare(
            &format!(
                "∂J/∂W ({} maps, {} form)",
                problem.spec.structure.name(),
                problem.spec.settings.form.name()
            ),
            &eval.gradient.maps,
            &independent.maps,
            tol,
        ));
        if !eval.gradient.biases.is_empty() {
            rows.push(CheckRow::compare(
                "∂J/∂b (neural form)",
                &eval.gradient.biases,
                &independent.biases,
                tol,
            ));
        }
    }
    // |Σ|^{−1/2} from Σ = (WᵀW)⁻¹ (T = 1) by nalgebra's determinant, against |det W| by the
    // reference's elimination.
    let (lhs, rhs): (Vec<f64>, Vec<f64>) = (0..state.k)
        .filter_map(|j| {
            let sigma = metric::covariance(state.map(j), d, 1.0)?;
            let det = nalgebra::DMatrix::from_row_slice(d, d, &sigma).determinant();
            Some((det.powf(-0.5), reference::log_abs_det_generic(state.map(j), d).exp()))
        })
        .unzip();
    rows.push(CheckRow::compare(
        "volume identity |Σ_j|^{−1/2} = |det W_j|",
        &lhs,
        &rhs,
        1e-12,
    ));
    let s = &problem.spec.settings;
    if s.temperature == 1.0
        && s.volume
        && s.reject_energy.is_none()
        && !s.unnormalised
        && problem.spec.regime == Regime::Mixture
    {
        let (closed, dual) = one_point_direction(problem, state);
        rows.push(CheckRow::compare(
            "one point, T = 1: ∂F/∂W_j = r_j (z_j xᵀ − W_j^{−T})",
            &closed,
            &dual,
            tol,
        ));
    }
    rows
}

/// For the first counted point, the neural form's `r_j (z_j xᵀ − W_j^{−T})` (closed) and
/// `∂F/∂W_j` by dual numbers through the reference energies (independent).
fn one_point_direction(problem: &Problem, state: &State) -> (Vec<f64>, Vec<f64>) {
    use crate::core::math::dual::{Duals, Scalar};
    use crate::core::metric;
    let d = state.dim;
    let dd = d * d;
    let Some(i) = (0..problem.len()).find(|&i| problem.counts_point(i)) else {
        return (Vec::new(), Vec::new());
    };
    let x = problem.point(i);
    let Some(row) = point_row(problem, state, i) else {
        return (Vec::new(), Vec::new());
    };
    let mut closed = Vec::with_capacity(state.k * dd);
    let mut dual = Vec::with_capacity(state.k * dd);
    let biases: Vec<f64> = (0..state.k)
        .flat_map(|j| {
            metric::apply(state.map(j), d, state.prototype(j))
                .into_iter()
                .map(|v| -v)
        })
        .collect();
    for j in 0..state.k {
        let w = state.map(j);
        let b = &biases[j * d..(j + 1) * d];
        let z: Vec<f64> = metric::apply(w, d, x).iter().zip(b).map(|(a, c)| a + c).collect();
        let winvt = metric::inverse_transpose(w, d).unwrap_or_else(|| vec![f64::NAN; dd]);
        let r = row.responsibilities[j];
        closed.extend((0..dd).map(|e| r * (z[e / d] * x[e % d] - winvt[e])));
        for e in 0..dd {
            let mut params = Params::<Duals<1>>::constant(state);
            params.maps[j * dd + e].eps[0] = 1.0;
            params.biases = Some(biases.iter().map(|&v| Duals::<1>::constant(v)).collect());
            let energies = reference::energies(problem, &params, i);
            let f = reference::free_energy(1.0, None, &energies);
            dual.push(f.eps[0]);
        }
    }
    (closed, dual)
}
