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
