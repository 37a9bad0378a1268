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

use std::sync::Arc;

use super::dataset::SoftLabels;
use super::model::{ComponentTerms, ModelSpec, Regime, Score, State};

/// Data bound to a model: the points, their labels and the attention targets `t_i`.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The validated model settings.
    pub spec: ModelSpec,
    /// `D`.
    pub dim: usize,
    /// Points, `N × D` (shared: cloning a problem does not copy the data).
    pub points: Arc<Vec<f64>>,
    /// `y_i`, `None` for an unlabelled point.
    pub labels: Arc<Vec<Option<u32>>>,
    /// `P` (attention), 0 otherwise.
    pub target_dim: usize,
    /// `t_i`, `N × P` (attention), empty otherwise.
    pub targets: Arc<Vec<f64>>,
    /// Soft labels `p_ic` of some points (cross-entropy clamps them; empty when none).
    pub soft: Arc<SoftLabels>,
}

impl Problem {
    /// `N`, all points (including unlabelled ones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no points.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `x_i`.
    #[must_use]
    pub fn point(&self, i: usize) -> &[f64] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }

    /// `t_i` (empty slice outside attention).
    #[must_use]
    pub fn target(&self, i: usize) -> &[f64] {
        &self.targets[i * self.target_dim..(i + 1) * self.target_dim]
    }

    /// Point `i`'s soft label `p_i·` (cross-entropy), if it has one.
    #[must_use]
    pub fn soft_label(&self, i: usize) -> Option<&[f64]> {
        self.soft.get(i)
    }

    /// Whether point `i` enters the objective (cross-entropy counts labelled points only).
    #[must_use]
    pub fn counts_point(&self, i: usize) -> bool {
        !matches!(self.spec.regime, Regime::CrossEntropy) || self.spec.semi_supervised || self.labels[i].is_some()
    }

    /// The `N` of the `1/N` in the objective: labelled points for cross-entropy, else all.
    #[must_use]
    pub fn effective_n(&self) -> usize {
        (0..self.len()).filter(|&i| self.counts_point(i)).count()
    }
}

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
    let t = spec.temperature;
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
    let e0 = if spec.background.is_some() { (a0 - m).exp() } else { 0.0 };
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
    if spec.background.is_some() {
        shifted += row.background * (a0 - m);
    }
    let lse = m + ln_total;
    row.free_energy = -t * lse;
    row.entropy = ln_total - shifted;
    lse
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
    let t = spec.temperature;
    let k = state.k;
    let lse = energies_at(spec, state, terms, problem.point(i), row);
    match spec.regime {
        Regime::Mixture if spec.unnormalised => {
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
        Regime::CrossEntropy if spec.semi_supervised && problem.labels[i].is_none() => {
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
            if spec.semi_supervised {
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

/// Per-component sums over points, before division by `N`. Mergeable, so the pass can be split
/// across threads.
#[derive(Clone, Debug)]
pub struct Sums {
    pub(crate) n: usize,
    pub(crate) loss: f64,
    pub(crate) clamped_free_energy: f64,
    pub(crate) entropy: f64,
    /// `Σ_i G_ij`.
    pub(crate) grad_mass: Vec<f64>,
    /// `Σ_i G_ij (x_i − μ_j)`.
    pub(crate) grad_first: Vec<f64>,
    /// `Σ_i G_ij d_ij`.
    pub(crate) grad_dist: Vec<f64>,
    /// `Σ_i α_ij (o_i − t_i)` (attention).
    pub(crate) grad_values: Vec<f64>,
    /// `Σ_i r_ij`.
    pub(crate) counts: Vec<f64>,
    /// `Σ_i ρ_ij` for the EM responsibilities.
    pub(crate) em_mass: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − μ_j)`.
    pub(crate) em_first: Vec<f64>,
    /// `Σ_i ρ_ij ||x_i − μ_j||²`.
    pub(crate) em_sq: Vec<f64>,
    /// `Σ_i ρ_ij t_i` (attention).
    pub(crate) em_targets: Vec<f64>,
}

impl Sums {
    /// Zero sums for `k` components, dimension `dim`, value dimension `p`.
    #[must_use]
    pub fn zeros(k: usize, dim: usize, p: usize) -> Self {
        Self {
            n: 0,
            loss: 0.0,
            clamped_free_energy: 0.0,
            entropy: 0.0,
            grad_mass: vec![0.0; k],
            grad_first: vec![0.0; k * dim],
            grad_dist: vec![0.0; k],
            grad_values: vec![0.0; k * p],
            counts: vec![0.0; k],
            em_mass: vec![0.0; k],
            em_first: vec![0.0; k * dim],
            em_sq: vec![0.0; k],
            em_targets: vec![0.0; k * p],
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
            let sq: f64 = diff.iter().map(|v| v * v).sum();
            self.grad_mass[j] += g;
            self.grad_dist[j] += g * row.distances[j];
            self.counts[j] += r;
            self.em_mass[j] += w;
            self.em_sq[j] += w * sq;
            for d in 0..dim {
                self.grad_first[j * dim + d] += g * diff[d];
                self.em_first[j * dim + d] += w * diff[d];
            }
            if attention {
                for c in 0..p {
                    self.grad_values[j * p + c] += r * (row.output[c] - target[c]);
                    self.em_targets[j * p + c] += w * target[c];
                }
            }
        }
    }

    /// Adds another partial sum (element-wise).
    pub fn merge(&mut self, other: &Sums) {
        fn add(a: &mut [f64], b: &[f64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.n += other.n;
        self.loss += other.loss;
        self.clamped_free_energy += other.clamped_free_energy;
        self.entropy += other.entropy;
        add(&mut self.grad_mass, &other.grad_mass);
        add(&mut self.grad_first, &other.grad_first);
        add(&mut self.grad_dist, &other.grad_dist);
        add(&mut self.grad_values, &other.grad_values);
        add(&mut self.counts, &other.counts);
        add(&mut self.em_mass, &other.em_mass);
        add(&mut self.em_first, &other.em_first);
        add(&mut self.em_sq, &other.em_sq);
        add(&mut self.em_targets, &other.em_targets);
    }
}

/// `∂J/∂θ` for every parameter block (zeros where a block does not exist; every block empty in
/// an evaluation for explicit EM, which uses no gradient: [`evaluate_em`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Gradient {
    /// `∂J/∂μ`, `K × D`.
    pub prototypes: Vec<f64>,
    /// `∂J/∂w`, `K`.
    pub log_weights: Vec<f64>,
    /// `∂J/∂ρ`, `K`.
    pub log_scales: Vec<f64>,
    /// `∂J/∂v`, `K × P`.
    pub values: Vec<f64>,
}

/// Explicit EM's sufficient statistics at a state, already divided by nothing: masses and
/// moments in data units.
#[derive(Clone, Debug, PartialEq)]
pub struct EmStats {
    /// `n_j = Σ_i ρ_ij` (EM responsibilities: `r`, `α` or clamped `q`).
    pub mass: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − μ_j)`, `K × D`.
    pub first: Vec<f64>,
    /// `Σ_i ρ_ij ||x_i − μ_j||²`.
    pub sq_dev: Vec<f64>,
    /// `Σ_i ρ_ij t_i`, `K × P` (attention).
    pub targets: Vec<f64>,
}

/// Everything one pass over the data yields at one state.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// `N` of the objective (labelled points for cross-entropy).
    pub n: usize,
    /// The regime's loss `J`.
    pub loss: f64,
    /// The quantity explicit EM never increases: `J_U` (mixture), the mean clamped free
    /// energy `(1/N) Σ F^y_i` (cross-entropy); `J_A` for attention, where EM has no such
    /// guarantee.
    pub em_objective: f64,
    /// Exact gradients.
    pub gradient: Gradient,
    /// `N_j = Σ_i r_ij` (free responsibilities).
    pub counts: Vec<f64>,
    /// Mean over points of the entropy of `r_i`.
    pub mean_entropy: f64,
    /// Statistics for the explicit EM step from this state.
    pub em: EmStats,
}

impl Evaluation {
    /// Effective number of components `exp(H(N_j/N))`.
    #[must_use]
    pub fn effective_components(&self) -> f64 {
        let total: f64 = self.counts.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let p: Vec<f64> = self.counts.iter().map(|c| c / total).collect();
        super::lse::entropy(&p).exp()
    }
}

/// Turns sums into the loss and exact gradients (MATH.md §3–§5).
#[must_use]
pub fn finish(problem: &Problem, state: &State, sums: Sums) -> Evaluation {
    let spec = &problem.spec;
    let t = spec.temperature;
    let dim = problem.dim;
    let k = state.k;
    let n = sums.n.max(1) as f64;
    let inv_n = 1.0 / n;
    let scales = state.scales();
    let mixing = state.mixing();
    let volume = if spec.volume { 1.0 } else { 0.0 };
    let half_d = dim as f64 / 2.0;
    let total_mass: f64 = sums.grad_mass.iter().sum::<f64>() * inv_n;
    let mut gp = vec![0.0; k * dim];
    let mut gw = vec![0.0; k];
    let mut gr = vec![0.0; k];
    for j in 0..k {
        let s0 = sums.grad_mass[j] * inv_n;
        for d in 0..dim {
            let s1 = sums.grad_first[j * dim + d] * inv_n;
            gp[j * dim + d] = match spec.regime.score() {
                Score::Distance => -s1 / scales[j],
                // Σ G x = Σ G (x − μ) + μ Σ G.
                Score::DotProduct => -(s1 + state.prototypes[j * dim + d] * s0),
            };
        }
        gw[j] = -t * (s0 - mixing[j] * total_mass);
        let sd = match spec.regime.score() {
            Score::Distance => sums.grad_dist[j] * inv_n,
            Score::DotProduct => 0.0,
        };
        gr[j] = volume * t * half_d * s0 - sd;
        if let Some(prior) = spec.active_scale_prior() {
            gr[j] += prior.gradient(t, n, scales[j]);
        }
    }
    let penalty = spec.active_scale_prior().map_or(0.0, |p| p.penalty(t, n, &scales));
    let gv = sums.grad_values.iter().map(|v| v * inv_n).collect();
    Evaluation {
        n: sums.n,
        loss: sums.loss * inv_n + penalty,
        em_objective: penalty
            + match spec.regime {
                Regime::CrossEntropy => sums.clamped_free_energy * inv_n,
                // The EM run keeps the normalised objective (mean free energy).
                Regime::Mixture if spec.unnormalised => sums.clamped_free_energy * inv_n,
                _ => sums.loss * inv_n,
            },
        gradient: Gradient {
            prototypes: gp,
            log_weights: gw,
            log_scales: gr,
            values: gv,
        },
        counts: sums.counts,
        mean_entropy: sums.entropy * inv_n,
        em: EmStats {
            mass: sums.em_mass,
            first: sums.em_first,
            sq_dev: sums.em_sq,
            targets: sums.em_targets,
        },
    }
}

/// One pass over the points: loss, exact gradients and EM statistics at `state`. Uses the
/// fast parallel kernel ([`super::fast`]); equal to [`evaluate_straightforward`] to rounding.
#[must_use]
pub fn evaluate(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = super::fast::sums(problem, state, &terms);
    finish(problem, state, sums)
}

/// The evaluation explicit EM needs: the loss, EM's objective, the masses and the EM statistics,
/// without the gradient sums (EM uses none; `gradient` is empty). Equal to [`evaluate`] in
/// every other field. For cross-entropy and attention this skips a third to a half of the
/// work per point.
#[must_use]
pub fn evaluate_em(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = super::fast::sums_for(problem, state, &terms, false);
    let mut eval = finish(problem, state, sums);
    eval.gradient = Gradient::default();
    eval
}

/// The same evaluation, written plainly: one thread, one point at a time through
/// [`row_kernel`], the library's `exp`. The reference the fast path is tested against.
#[must_use]
pub fn evaluate_straightforward(problem: &Problem, state: &State) -> Evaluation {
    let terms = ComponentTerms::new(&problem.spec, state);
    let sums = sum_range(problem, state, &terms, 0..problem.len());
    finish(problem, state, sums)
}

/// The sums over the points in `range`.
#[must_use]
pub fn sum_range(problem: &Problem, state: &State, terms: &ComponentTerms, range: std::ops::Range<usize>) -> Sums {
    let mut sums = Sums::zeros(state.k, problem.dim, problem.target_dim);
    let mut row = Row::new(state.k, problem.dim, problem.target_dim);
    for i in range {
        if problem.counts_point(i) {
            row_kernel(problem, state, terms, i, &mut row);
            sums.add_row(problem, i, &row);
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
