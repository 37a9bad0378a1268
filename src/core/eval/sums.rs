//! The sums one pass over the points accumulates, and what they turn into: the loss, the exact
//! gradients (MATH.md §3–§5) and explicit EM's statistics ([`Evaluation`]).

use crate::core::model::{Regime, Score, State};
use crate::core::problem::Problem;

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
    /// `Σ_i G_ij (x_i − μ_j)(x_i − μ_j)ᵀ`, `K × D × D` (only in a pass with `second`).
    pub(crate) grad_second: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − c_j)(x_i − c_j)ᵀ` about a scatter pass's centres, `K × D × D` (only in
    /// a scatter pass over components with maps).
    pub(crate) em_second: Vec<f64>,
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
            grad_second: Vec::new(),
            em_second: Vec::new(),
        }
    }

    /// Zero sums with room for what `pass` asks for (`maps`: the components carry maps).
    #[must_use]
    pub fn for_pass(k: usize, dim: usize, p: usize, pass: &crate::core::eval::Pass, maps: bool) -> Self {
        let mut s = Self::zeros(k, dim, p);
        if pass.second && pass.gradient {
            s.grad_second = vec![0.0; k * dim * dim];
        }
        if (pass.centres.is_some() && maps) || pass.em_second {
            s.em_second = vec![0.0; k * dim * dim];
        }
        s
    }

    /// Adds another partial sum (element-wise).
    pub fn merge(&mut self, other: &Sums) {
        fn add(a: &mut Vec<f64>, b: &[f64]) {
            if a.len() < b.len() {
                a.resize(b.len(), 0.0);
            }
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
        add(&mut self.grad_second, &other.grad_second);
        add(&mut self.em_second, &other.em_second);
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
    /// `∂J/∂W`, `K × D × D`, in the form gradient descent uses (prototype or neural) and
    /// projected onto the structure (MATH.md §8); empty unless maps are learned. For spherical
    /// components in the neural form, `∂J/∂w_j` (`K`) of `W_j = w_j I`.
    pub maps: Vec<f64>,
    /// `∂J/∂b`, `K × D` (neural form only; empty otherwise).
    pub biases: Vec<f64>,
}

/// Explicit EM's sufficient statistics at a state, already divided by nothing: masses and
/// moments in data units.
#[derive(Clone, Debug, PartialEq)]
pub struct EmStats {
    /// `n_j = Σ_i ρ_ij` (EM responsibilities: `r`, `α` or clamped `q`).
    pub mass: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − μ_j)`, `K × D`.
    pub first: Vec<f64>,
    /// `Σ_i ρ_ij ||x_i − μ_j||²` (with maps, the Mahalanobis `Σ_i ρ_ij (x_i − μ_j)ᵀ P_j (x_i − μ_j)`).
    /// Explicit EM's scale and metric steps take their scatter from a second pass
    /// ([`crate::core::eval::scatter`]), not from this.
    pub sq_dev: Vec<f64>,
    /// `Σ_i ρ_ij t_i`, `K × P` (attention).
    pub targets: Vec<f64>,
    /// `Σ_i ρ_ij (x_i − μ_j)(x_i − μ_j)ᵀ`, `K × D × D` (an evaluation for EM with learned maps;
    /// empty otherwise).
    pub second: Vec<f64>,
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
        crate::core::math::lse::entropy(&p).exp()
    }
}

/// Turns sums into the loss and exact gradients (MATH.md §3–§5).
#[must_use]
pub fn finish(problem: &Problem, state: &State, sums: Sums) -> Evaluation {
    let spec = &problem.spec;
    let t = spec.settings.temperature;
    let dim = problem.dim;
    let k = state.k;
    let n = sums.n.max(1) as f64;
    let inv_n = 1.0 / n;
    let scales = state.scales();
    let mixing = state.mixing();
    let volume = if spec.settings.volume { 1.0 } else { 0.0 };
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
    let (gm, gb) = if state.has_maps() {
        map_gradients(problem, state, &sums, &mut gp, &mut gr)
    } else if spec.settings.form == crate::core::model::Form::Neural && spec.regime.score() == Score::Distance {
        spherical_neural_gradients(problem, state, &sums)
    } else {
        (Vec::new(), Vec::new())
    };
    let penalty = spec.active_scale_prior().map_or(0.0, |p| p.penalty(t, n, &scales));
    let gv = sums.grad_values.iter().map(|v| v * inv_n).collect();
    Evaluation {
        n: sums.n,
        loss: sums.loss * inv_n + penalty,
        em_objective: penalty
            + match spec.regime {
                Regime::CrossEntropy => sums.clamped_free_energy * inv_n,
                // The EM run keeps the normalised objective (mean free energy).
                Regime::Mixture if spec.settings.unnormalised => sums.clamped_free_energy * inv_n,
                _ => sums.loss * inv_n,
            },
        gradient: Gradient {
            prototypes: gp,
            log_weights: gw,
            log_scales: gr,
            values: gv,
            maps: gm,
            biases: gb,
        },
        counts: sums.counts,
        mean_entropy: sums.entropy * inv_n,
        em: EmStats {
            mass: sums.em_mass,
            first: sums.em_first,
            sq_dev: sums.em_sq,
            targets: sums.em_targets,
            second: sums.em_second,
        },
    }
}

/// The neural form of spherical components (MATH.md §8 with `W_j = w_j I`, `w_j = s_j^{−1/2}`,
/// `z = w_j x + b_j`): `∂J/∂b_j = w_j F_j` and, when the scales are learned,
/// `∂J/∂w_j = tr ∂J/∂W_j = w_j (tr S_j + F_j·μ_j) − V T g_j D / w_j`, returned as
/// (`∂J/∂w`, `K`, or empty; `∂J/∂b`, `K × D`). `tr S_j = 2 s_j Σ_i G_ij d_ij / N`.
fn spherical_neural_gradients(problem: &Problem, state: &State, sums: &Sums) -> (Vec<f64>, Vec<f64>) {
    let spec = &problem.spec;
    let (k, d) = (state.k, state.dim);
    let inv_n = 1.0 / sums.n.max(1) as f64;
    let vt = if spec.settings.volume {
        spec.settings.temperature
    } else {
        0.0
    };
    let mut gw = Vec::with_capacity(k);
    let mut gb = vec![0.0; k * d];
    for j in 0..k {
        let s = state.log_scales[j].exp();
        let w = (-0.5 * state.log_scales[j]).exp();
        let f: Vec<f64> = (0..d).map(|c| sums.grad_first[j * d + c] * inv_n).collect();
        for c in 0..d {
            gb[j * d + c] = w * f[c];
        }
        let tr_s = 2.0 * s * sums.grad_dist[j] * inv_n;
        let f_mu: f64 = (0..d).map(|c| f[c] * state.prototypes[j * d + c]).sum();
        let g0 = sums.grad_mass[j] * inv_n;
        gw.push(w * (tr_s + f_mu) - vt * g0 * d as f64 / w);
    }
    if !spec.settings.learn_scales {
        gw.clear();
    }
    (gw, gb)
}

/// With maps (MATH.md §8): `∂J/∂μ_j = −P_j Σ_i G_ij (x_i − μ_j) / N` into `gp`, no log-scale
/// gradient, in the neural form `∂J/∂b_j = W_j F_j`, and when the maps are learned
/// - prototype form: `∂J/∂W_j = W_j S_j − V T g_j W_j^{−T}`,
/// - neural form: `∂J/∂W_j = W_j (S_j + F_j μ_jᵀ) − V T g_j W_j^{−T}`, `∂J/∂b_j = W_j F_j`,
///
/// with `S_j = Σ_i G_ij (x_i − μ_j)(x_i − μ_j)ᵀ / N`, `F_j = Σ_i G_ij (x_i − μ_j) / N` and
/// `g_j = Σ_i G_ij / N`, projected onto the structure. A singular map gives NaN (the run pauses).
fn map_gradients(
    problem: &Problem,
    state: &State,
    sums: &Sums,
    gp: &mut [f64],
    gr: &mut [f64],
) -> (Vec<f64>, Vec<f64>) {
    use crate::core::metric;
    let spec = &problem.spec;
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let inv_n = 1.0 / sums.n.max(1) as f64;
    let neural = spec.settings.form == crate::core::model::Form::Neural;
    let mut gb = if neural { vec![0.0; k * d] } else { Vec::new() };
    for j in 0..k {
        let p = metric::precision(state.map(j), d);
        let f: Vec<f64> = (0..d).map(|c| sums.grad_first[j * d + c] * inv_n).collect();
        let pf = metric::apply(&p, d, &f);
        for c in 0..d {
            gp[j * d + c] = -pf[c];
        }
        gr[j] = 0.0;
        if neural {
            gb[j * d..(j + 1) * d].copy_from_slice(&metric::apply(state.map(j), d, &f));
        }
    }
    if sums.grad_second.is_empty() {
        // The maps are not learned: ∂J/∂b alone (the neural form's step then keeps W).
        return (Vec::new(), gb);
    }
    let vt = if spec.settings.volume {
        spec.settings.temperature
    } else {
        0.0
    };
    let mut gm = vec![0.0; k * dd];
    for j in 0..k {
        let w = state.map(j);
        let mu = state.prototype(j);
        let f: Vec<f64> = (0..d).map(|c| sums.grad_first[j * d + c] * inv_n).collect();
        let mut m: Vec<f64> = sums.grad_second[j * dd..(j + 1) * dd]
            .iter()
            .map(|v| v * inv_n)
            .collect();
        if neural {
            for r in 0..d {
                for c in 0..d {
                    m[r * d + c] += f[r] * mu[c];
                }
            }
        }
        let g0 = sums.grad_mass[j] * inv_n;
        let winvt = metric::inverse_transpose(w, d).unwrap_or_else(|| vec![f64::NAN; dd]);
        for r in 0..d {
            for c in 0..d {
                let wm: f64 = (0..d).map(|q| w[r * d + q] * m[q * d + c]).sum();
                gm[j * dd + r * d + c] = wm - vt * g0 * winvt[r * d + c];
            }
        }
    }
    metric::project(spec.structure, &mut gm, k, d);
    (gm, gb)
}
