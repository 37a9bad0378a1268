//! The plain path: one point at a time, the library's `exp`. What a point contributes
//! ([`Row`], [`row_kernel`]), the background fields at any position ([`field_row`]), and the
//! sums over a range of points ([`sum_range`]). The reference the lane path is tested against.

use crate::core::eval::sums::Sums;
use crate::core::model::{ComponentTerms, ModelSpec, Regime, Score, State};
use crate::core::problem::Problem;

/// What one point contributes, computed by [`row_kernel`]. Used by the streaming pass and by
/// the per-point views and checks, so both read the same numbers.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// `E_ij`.
    pub energies: Vec<f64>,
    /// `d_ij` (base distance or dot score).
    pub distances: Vec<f64>,
    /// `r_ij = softmax_j(−E_ij/T)`.
    pub responsibilities: Vec<f64>,
    /// The responsibilities explicit EM uses: `r` (mixture), `α = r` (attention), clamped `q`
    /// (cross-entropy).
    pub em_weights: Vec<f64>,
    /// `N·∂J/∂E_ij`: `r` (mixture), `q − r` (cross-entropy), `−α(a − ā)/T` with unscaled `a`
    /// (attention).
    pub energy_gradient: Vec<f64>,
    /// `x_i − μ_j`, `K × D`.
    pub diff: Vec<f64>,
    /// `o_i = Σ_j α_ij v_j` (attention).
    pub output: Vec<f64>,
    /// `N·J_i`: this point's term of the loss.
    pub loss: f64,
    /// `F_i = −T log Σ_j exp(−E_ij/T)`.
    pub free_energy: f64,
    /// `r_i0`, the background component's responsibility (0 without one).
    pub background: f64,
    /// `F^y_i` (cross-entropy), else `F_i`.
    pub clamped_free_energy: f64,
    /// `−Σ_j r_ij log r_ij`.
    pub entropy: f64,
    /// Whether the distances are Mahalanobis (`d = ½ (x − μ)ᵀ P (x − μ)`, components with maps).
    pub mahalanobis: bool,
    scratch: Vec<f64>,
}

impl Row {
    /// A row sized for `k` components, dimension `dim`, value dimension `p`.
    #[must_use]
    pub fn new(k: usize, dim: usize, p: usize) -> Self {
        Self {
            energies: vec![0.0; k],
            distances: vec![0.0; k],
            responsibilities: vec![0.0; k],
            em_weights: vec![0.0; k],
            energy_gradient: vec![0.0; k],
            diff: vec![0.0; k * dim],
            output: vec![0.0; p],
            scratch: vec![0.0; k],
            ..Self::default()
        }
    }
}

/// Fills `row.diff`, `row.distances`, `row.energies` and `row.responsibilities` for an
/// arbitrary position `x`, and returns `log Σ_j exp(−E_j/T)`. `row.scratch` holds `−E_j/T`.
fn energies_at(spec: &ModelSpec, state: &State, terms: &ComponentTerms, x: &[f64], row: &mut Row) -> f64 {
    let t = spec.settings.temperature;
    let dim = state.dim;
    let score = spec.regime.score();
    for j in 0..state.k {
        let mu = state.prototype(j);
        let diff = &mut row.diff[j * dim..(j + 1) * dim];
        let mut sq = 0.0;
        let mut dot = 0.0;
        for d in 0..dim {
            let dd = x[d] - mu[d];
            diff[d] = dd;
            sq += dd * dd;
            dot += x[d] * mu[d];
        }
        row.mahalanobis = !terms.precision.is_empty();
        if row.mahalanobis {
            sq = quadratic_form(&terms.precision[j * dim * dim..(j + 1) * dim * dim], diff);
        }
        let dist = match score {
            Score::Distance => sq * terms.inv_two_scale[j],
            Score::DotProduct => -dot,
        };
        row.distances[j] = dist;
        row.energies[j] = dist + terms.offset[j];
        row.scratch[j] = -row.energies[j] / t;
    }
    // Softmax with the maximum subtracted; the entropy from the shifted arguments,
    // H = ln Σ e^{a−m} − Σ r (a − m), which has no cancellation however large |a| is.
    // A background component (the reject option) joins the sum with its fixed argument.
    let a0 = spec.background_arg();
    let m = row.scratch.iter().copied().fold(a0, f64::max);
    let e0 = if spec.settings.reject_energy.is_some() {
        (a0 - m).exp()
    } else {
        0.0
    };
    let mut total = e0;
    for (r, &a) in row.responsibilities.iter_mut().zip(&row.scratch) {
        let e = (a - m).exp();
        *r = e;
        total += e;
    }
    let ln_total = total.ln();
    let inv = 1.0 / total;
    let mut shifted = 0.0;
    for (r, &a) in row.responsibilities.iter_mut().zip(&row.scratch) {
        *r *= inv;
        shifted += *r * (a - m);
    }
    row.background = e0 * inv;
    if spec.settings.reject_energy.is_some() {
        shifted += row.background * (a0 - m);
    }
    let lse = m + ln_total;
    row.free_energy = -t * lse;
    row.entropy = ln_total - shifted;
    lse
}

/// `vᵀ P v` for a symmetric `P` (`D × D`, row-major): `Σ_r P_rr v_r² + 2 Σ_{r<c} P_rc v_r v_c`,
/// summed row by row in the order the lane kernel uses.
#[must_use]
pub fn quadratic_form(p: &[f64], v: &[f64]) -> f64 {
    let d = v.len();
    let mut q = 0.0;
    for r in 0..d {
        let mut acc = p[r * d + r] * v[r];
        for c in r + 1..d {
            acc += 2.0 * p[r * d + c] * v[c];
        }
        q += acc * v[r];
    }
    q
}

/// What a pass over the points sums besides the loss and explicit EM's masses and moments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pass {
    /// The gradient sums (`Σ G`, `Σ G d`, `Σ G (x − μ)`, `Σ α (o − t)`).
    pub gradient: bool,
    /// `Σ_i G_ij (x_i − μ_j)(x_i − μ_j)ᵀ`, for the gradient of learned maps `W_j`.
    pub second: bool,
    /// EM's second moments about the prototypes, `Σ_i ρ_ij (x_i − μ_j)(x_i − μ_j)ᵀ` (learned maps:
    /// the M-step's covariance from one pass where that loses no digits).
    pub em_second: bool,
    /// A scatter pass: EM's moments are taken about these centres (`K × D`, explicit EM's new
    /// means `m_j`), with `Σ w (x − c)(x − c)ᵀ` when the components have maps; no gradient.
    /// The covariance of the M-step without the cancellation of `Σ w ‖x − μ‖² − n ‖m − μ‖²`.
    pub centres: Option<Vec<f64>>,
}

impl Pass {
    /// The pass gradient descent needs at `problem` (second moments when maps are learned).
    #[must_use]
    pub fn gradient(problem: &Problem) -> Self {
        Self {
            gradient: true,
            second: problem.spec.structure.has_maps() && problem.spec.settings.learn_scales,
            em_second: false,
            centres: None,
        }
    }

    /// The pass explicit EM's E-step needs (masses and first moments).
    #[must_use]
    pub fn em() -> Self {
        Self::default()
    }

    /// The pass explicit EM's E-step needs at `problem`: with learned maps and the volume term
    /// also EM's second moments about the prototypes.
    #[must_use]
    pub fn em_for(problem: &Problem) -> Self {
        let s = &problem.spec.settings;
        Self {
            em_second: problem.spec.structure.has_maps() && s.learn_scales && s.volume,
            ..Self::default()
        }
    }

    /// A scatter pass about `centres`.
    #[must_use]
    pub fn scatter(centres: Vec<f64>) -> Self {
        Self {
            centres: Some(centres),
            ..Self::default()
        }
    }
}

/// Energies, responsibilities and free energy at any position `x` (not necessarily a data
/// point): what the window's background fields show. `row` must be sized by [`Row::new`].
pub fn field_row(spec: &ModelSpec, state: &State, terms: &ComponentTerms, x: &[f64], row: &mut Row) {
    energies_at(spec, state, terms, x, row);
}

/// Computes point `i`'s energies, responsibilities and gradient row under `state`.
///
/// The caller must only pass points that [`Problem::counts_point`] accepts.
pub fn row_kernel(problem: &Problem, state: &State, terms: &ComponentTerms, i: usize, row: &mut Row) {
    let spec = &problem.spec;
    let t = spec.settings.temperature;
    let k = state.k;
    let lse = energies_at(spec, state, terms, problem.point(i), row);
    match spec.regime {
        Regime::Mixture if spec.settings.unnormalised => {
            // J_i = −T Σ_j e^{−E_ij/T} = −T e^{lse}; its ∂/∂E_ij = e^{−E_ij/T} = r_ij e^{lse}.
            let scale = lse.exp();
            row.em_weights.copy_from_slice(&row.responsibilities);
            for (g, r) in row.energy_gradient.iter_mut().zip(&row.responsibilities) {
                *g = r * scale;
            }
            row.loss = -t * scale;
            row.clamped_free_energy = row.free_energy;
        }
        Regime::Mixture => {
            row.em_weights.copy_from_slice(&row.responsibilities);
            row.energy_gradient.copy_from_slice(&row.responsibilities);
            row.loss = row.free_energy;
            row.clamped_free_energy = row.free_energy;
        }
        Regime::CrossEntropy if spec.settings.semi_supervised && problem.labels[i].is_none() => {
            // Semi-supervised, unlabelled: latent, as in the mixture.
            row.em_weights.copy_from_slice(&row.responsibilities);
            row.energy_gradient.copy_from_slice(&row.responsibilities);
            row.loss = row.free_energy;
            row.clamped_free_energy = row.free_energy;
        }
        Regime::CrossEntropy => {
            // The point's class distribution p_c: its soft label, or one-hot at its label. For
            // each class with p_c > 0 the restricted log-sum-exp lse_c (max subtracted) and
            // q_ij = p_c softmax_{j∈c}(−E_ij/T); F^p = −T Σ_c p_c lse_c.
            let lse_p = clamp(
                &spec.classes,
                &row.scratch,
                problem.soft_label(i),
                problem.labels[i],
                &mut row.em_weights,
            );
            row.clamped_free_energy = -t * lse_p;
            if spec.settings.semi_supervised {
                // Semi-supervised, labelled: the clamped free energy F^p itself, ∂/∂E = q.
                row.loss = row.clamped_free_energy;
                row.energy_gradient.copy_from_slice(&row.em_weights);
            } else {
                // F^p − F = T (lse − Σ_c p_c lse_c), ∂/∂E = q − r.
                row.loss = t * (lse - lse_p);
                for j in 0..k {
                    row.energy_gradient[j] = row.em_weights[j] - row.responsibilities[j];
                }
            }
        }
        Regime::Attention { .. } => {
            let p = problem.target_dim;
            let target = problem.target(i);
            row.output.fill(0.0);
            for j in 0..k {
                let a = row.responsibilities[j];
                for (o, v) in row.output.iter_mut().zip(state.value(j)) {
                    *o += a * v;
                }
            }
            let mut loss = 0.0;
            for c in 0..p {
                let e = row.output[c] - target[c];
                loss += 0.5 * e * e;
            }
            row.loss = loss;
            row.free_energy = -t * lse;
            row.clamped_free_energy = row.free_energy;
            // a_j = (o − t)·v_j, ā = Σ α a; N·∂J/∂E_ij = −α_j (a_j − ā)/T.
            let mut abar = 0.0;
            for j in 0..k {
                let v = state.value(j);
                let a: f64 = (0..p).map(|c| (row.output[c] - target[c]) * v[c]).sum();
                row.scratch[j] = a;
                abar += row.responsibilities[j] * a;
            }
            for j in 0..k {
                row.energy_gradient[j] = -row.responsibilities[j] * (row.scratch[j] - abar) / t;
            }
            row.em_weights.copy_from_slice(&row.responsibilities);
        }
    }
}

/// The clamped responsibilities of one point with exponent arguments `a` (`−E_j/T`): for its
/// class distribution `p` (its soft label, or one-hot at its `label`), `q_j = p_c softmax_{j∈c}`
/// into `q` (zero elsewhere); returns `Σ_c p_c lse_c`, so `F^p = −T` times it. Shared by the
/// plain path and the fast kernel's per-lane fallback.
pub(crate) fn clamp(classes: &[usize], a: &[f64], soft: Option<&[f64]>, label: Option<u32>, q: &mut [f64]) -> f64 {
    q.fill(0.0);
    match soft {
        Some(p) => p
            .iter()
            .enumerate()
            .filter(|&(_, &pc)| pc > 0.0)
            .map(|(c, &pc)| pc * clamp_class(classes, a, c, pc, q))
            .sum(),
        None => clamp_class(classes, a, label.map_or(usize::MAX, |y| y as usize), 1.0, q),
    }
}

/// `lse_c = log Σ_{j∈c} e^{a_j}` over the components of class `c` (max subtracted), writing
/// `weight · e^{a_j − lse_c}` into `q_j` for those components.
fn clamp_class(classes: &[usize], a: &[f64], c: usize, weight: f64, q: &mut [f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for (j, &aj) in a.iter().enumerate() {
        if classes[j] == c {
            m = m.max(aj);
        }
    }
    let mut s = 0.0;
    for (j, &aj) in a.iter().enumerate() {
        if classes[j] == c {
            let e = (aj - m).exp();
            q[j] = e;
            s += e;
        }
    }
    for (j, qj) in q.iter_mut().enumerate() {
        if classes[j] == c {
            *qj = *qj / s * weight;
        }
    }
    m + s.ln()
}

impl Sums {
    /// Adds one point's row to a scatter pass: EM's moments about `centres`.
    /// `v` is scratch (reused across points).
    fn add_scatter_row(&mut self, problem: &Problem, centres: &[f64], i: usize, row: &Row, v: &mut Vec<f64>) {
        let dim = problem.dim;
        let x = problem.point(i);
        self.n += 1;
        self.loss += row.loss;
        self.clamped_free_energy += row.clamped_free_energy;
        self.entropy += row.entropy;
        let second = !self.em_second.is_empty();
        v.resize(dim, 0.0);
        for j in 0..self.counts.len() {
            let w = row.em_weights[j];
            self.counts[j] += row.responsibilities[j];
            self.em_mass[j] += w;
            let mut sq = 0.0;
            for d in 0..dim {
                v[d] = x[d] - centres[j * dim + d];
                sq += v[d] * v[d];
                self.em_first[j * dim + d] += w * v[d];
            }
            self.em_sq[j] += w * sq;
            if second {
                add_outer(&mut self.em_second[j * dim * dim..(j + 1) * dim * dim], w, v);
            }
        }
    }

    /// Adds one point's row.
    pub fn add_row(&mut self, problem: &Problem, i: usize, row: &Row) {
        let dim = problem.dim;
        let p = problem.target_dim;
        self.n += 1;
        self.loss += row.loss;
        self.clamped_free_energy += row.clamped_free_energy;
        self.entropy += row.entropy;
        let attention = matches!(problem.spec.regime, Regime::Attention { .. });
        let target = problem.target(i);
        for j in 0..self.counts.len() {
            let g = row.energy_gradient[j];
            let w = row.em_weights[j];
            let r = row.responsibilities[j];
            let diff = &row.diff[j * dim..(j + 1) * dim];
            // ‖x − μ‖², or (x − μ)ᵀ P (x − μ) = 2 d with maps.
            let sq: f64 = if row.mahalanobis {
                2.0 * row.distances[j]
            } else {
                diff.iter().map(|v| v * v).sum()
            };
            self.grad_mass[j] += g;
            self.grad_dist[j] += g * row.distances[j];
            self.counts[j] += r;
            self.em_mass[j] += w;
            self.em_sq[j] += w * sq;
            for d in 0..dim {
                self.grad_first[j * dim + d] += g * diff[d];
                self.em_first[j * dim + d] += w * diff[d];
            }
            if !self.grad_second.is_empty() {
                add_outer(&mut self.grad_second[j * dim * dim..(j + 1) * dim * dim], g, diff);
            }
            if !self.em_second.is_empty() {
                add_outer(&mut self.em_second[j * dim * dim..(j + 1) * dim * dim], w, diff);
            }
            if attention {
                for c in 0..p {
                    self.grad_values[j * p + c] += r * (row.output[c] - target[c]);
                    self.em_targets[j * p + c] += w * target[c];
                }
            }
        }
    }
}

/// `m += w v vᵀ` (`D × D`, row-major; both triangles).
fn add_outer(m: &mut [f64], w: f64, v: &[f64]) {
    let d = v.len();
    for r in 0..d {
        let wv = w * v[r];
        for c in 0..d {
            m[r * d + c] += wv * v[c];
        }
    }
}

/// The sums over the points in `range`, for gradient descent ([`Pass::gradient`]).
#[must_use]
pub fn sum_range(problem: &Problem, state: &State, terms: &ComponentTerms, range: std::ops::Range<usize>) -> Sums {
    sum_range_with(problem, state, terms, range, &Pass::gradient(problem))
}

/// The sums over the points in `range` that `pass` asks for, one point at a time.
#[must_use]
pub fn sum_range_with(
    problem: &Problem,
    state: &State,
    terms: &ComponentTerms,
    range: std::ops::Range<usize>,
    pass: &Pass,
) -> Sums {
    let mut sums = Sums::for_pass(state.k, problem.dim, problem.target_dim, pass, state.has_maps());
    let mut row = Row::new(state.k, problem.dim, problem.target_dim);
    let mut v = Vec::with_capacity(problem.dim);
    for i in range {
        if problem.counts_point(i) {
            row_kernel(problem, state, terms, i, &mut row);
            match &pass.centres {
                Some(c) => sums.add_scatter_row(problem, c, i, &row, &mut v),
                None => sums.add_row(problem, i, &row),
            }
        }
    }
    sums
}

/// Point `i`'s row at `state` (for views and checks). `None` if the point does not count.
#[must_use]
pub fn point_row(problem: &Problem, state: &State, i: usize) -> Option<Row> {
    if i >= problem.len() || !problem.counts_point(i) {
        return None;
    }
    let terms = ComponentTerms::new(&problem.spec, state);
    let mut row = Row::new(state.k, problem.dim, problem.target_dim);
    row_kernel(problem, state, &terms, i, &mut row);
    Some(row)
}
