//! The model: what competes (components, energies) and its validated settings.
//!
//! Notation (MATH.md §1): prototypes `μ_j` ([`State::prototypes`]), mixing logits `w_j`
//! ([`State::log_weights`], `π = softmax(w)`), log-scales `ρ_j` ([`State::log_scales`],
//! `s_j = exp ρ_j`), attention values `v_j` ([`State::values`]). Energies
//! `E_ij = d_ij + T·(V·(D/2)·ρ_j − log π_j)`.

use serde::{Deserialize, Serialize};

/// How a point is compared with a prototype (MATH.md §1, §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Score {
    /// `d_ij = ||x_i − μ_j||² / (2 s_j)`.
    #[default]
    Distance,
    /// `d_ij = −x_i·μ_j` (attention only; scales do not enter).
    DotProduct,
}

/// The three regimes of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Unsupervised mixture: responsibilities latent (MATH.md §3).
    Mixture,
    /// Attention: responsibilities conditioned on queries (MATH.md §4).
    Attention {
        /// Distance or dot-product scores.
        score: Score,
    },
    /// Cross-entropy: supervision clamps responsibilities (MATH.md §5).
    CrossEntropy,
}

impl Regime {
    /// The score form in use (the mixture and cross-entropy always use distances).
    #[must_use]
    pub fn score(self) -> Score {
        match self {
            Regime::Attention { score } => score,
            _ => Score::Distance,
        }
    }

    /// A short name: `mixture`, `attention` or `cross-entropy`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Regime::Mixture => "mixture",
            Regime::Attention { .. } => "attention",
            Regime::CrossEntropy => "cross-entropy",
        }
    }
}

pub use crate::core::metric::{Form, Structure};

/// The model: what forces a rebuild (the regime, each component's class, the metric's
/// structure) and the run settings that may change between steps ([`RunSettings`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Which objective.
    pub regime: Regime,
    /// Each component's metric structure.
    pub structure: Structure,
    /// Class of each component (cross-entropy); empty for the other regimes.
    pub classes: Vec<usize>,
    /// What may change live.
    pub settings: RunSettings,
}

/// Everything that may change between steps without rebuilding the experiment: the one
/// settings type, mapped from a preset by `Preset::run_settings` and applied by
/// `Experiment::set_settings`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunSettings {
    /// `T > 0`.
    pub temperature: f64,
    /// How gradient descent steps (explicit EM ignores it).
    pub optimiser: Optimiser,
    /// Learn the mixing logits `w`.
    pub learn_weights: bool,
    /// Learn the log-scales `ρ`.
    pub learn_scales: bool,
    /// `V`: include the volume term `T·(D/2)·ρ_j` in the energy.
    pub volume: bool,
    /// Smallest scale a step may leave (`s_j ≥ scale_floor`), `> 0`.
    pub scale_floor: f64,
    /// A prior on the scales (MAP), the remedy for both volume failures.
    pub scale_prior: Option<ScalePrior>,
    /// The reject option (mixture only): a background component of fixed energy `E₀` ("none
    /// of the above"); every log-sum-exp also runs over `−E₀/T`, so `Σ_j r_ij = 1 − r_i0`.
    pub reject_energy: Option<f64>,
    /// The normalisation boundary (mixture only): `J = −(T/N) Σ_i Σ_j e^{−E_ij/T}`, a sum of
    /// independent kernels instead of `(1/N) Σ_i F_i`. Its `∂J/∂E_ij = e^{−E_ij/T}/N` are no
    /// responsibilities; the EM run keeps the normalised (log-sum-exp) objective beside it.
    pub unnormalised: bool,
    /// Semi-supervision (cross-entropy's classes): labelled points clamp their responsibilities
    /// to their class, unlabelled ones stay latent, and the objective is the generative
    /// `J_S = (1/N)(Σ_labelled F^y_i + Σ_unlabelled F_i)` (MATH.md §5), EM-able with E-step `q` or `r`.
    pub semi_supervised: bool,
    /// How gradient descent parametrises the energies (explicit EM does not depend on it).
    pub form: Form,
    /// scikit-learn's `reg_covar` `λ > 0`: explicit EM's covariances are `C_j + λ I`.
    pub reg_covar: f64,
}

/// scikit-learn's default `reg_covar`.
pub const DEFAULT_REG_COVAR: f64 = 1e-6;

impl RunSettings {
    /// Only the prototypes learned, volume term on, scale floor `1e-6`, the default optimiser.
    #[must_use]
    pub fn new(temperature: f64) -> Self {
        Self {
            temperature,
            optimiser: Optimiser::default(),
            learn_weights: false,
            learn_scales: false,
            volume: true,
            scale_floor: 1e-6,
            scale_prior: None,
            reject_energy: None,
            unnormalised: false,
            semi_supervised: false,
            form: Form::Prototype,
            reg_covar: DEFAULT_REG_COVAR,
        }
    }

    /// Whether going from `self` to `other` changes what an evaluation computes: everything
    /// but the optimiser, which only the next gradient step reads.
    #[must_use]
    pub fn changes_evaluation(&self, other: &RunSettings) -> bool {
        let same_optimiser = RunSettings {
            optimiser: other.optimiser,
            ..*self
        };
        same_optimiser != *other
    }
}

/// Gradient descent's step rule: `θ ← θ − η ∂J/∂θ`, with one rate or EM-preconditioned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimiser {
    /// `η > 0`.
    pub learning_rate: f64,
    /// Shared or EM-preconditioned rate.
    pub rate: RateMode,
}

impl Default for Optimiser {
    /// `η = 0.1`, shared.
    fn default() -> Self {
        Self {
            learning_rate: 0.1,
            rate: RateMode::Shared,
        }
    }
}

/// How gradient descent scales its steps (MATH.md §3, "the exact bridge").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RateMode {
    /// One learning rate `η` for every parameter.
    #[default]
    Shared,
    /// Per-component rate `η_j = η·N·s_j/n_j` on prototypes (and `η·N/n_j` on attention
    /// values), `n_j` the EM responsibility mass. At `η = 1` a mixture prototype step lands
    /// exactly on EM's `m_j`. Weights and scales keep the shared `η`.
    Em,
}

impl RateMode {
    /// `shared` or `em`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RateMode::Shared => "shared",
            RateMode::Em => "em",
        }
    }
}

/// An inverse-gamma-type prior on each scale: the objective gains
/// `P = (T a / N) Σ_j (ln s_j + s₀ / s_j)` (`a` = `strength`, `s₀` = `scale`, its minimum). It
/// keeps scales from running away without the volume term (metric collapse) and from shrinking
/// onto one point with it (the singularity). Explicit EM's scale step becomes the MAP step
/// `s_j ← (S_j + 2 T a s₀) / (T (V D N_j + 2a))`, finite even without the volume term.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalePrior {
    /// `a > 0`: how many points' worth of evidence the prior carries.
    pub strength: f64,
    /// `s₀ > 0`: the scale the prior favours.
    pub scale: f64,
}

impl ScalePrior {
    /// `P` per point: `(T a / N) Σ_j (ln s_j + s₀/s_j)`.
    #[must_use]
    pub fn penalty(&self, t: f64, n: f64, scales: &[f64]) -> f64 {
        t * self.strength / n * scales.iter().map(|s| s.ln() + self.scale / s).sum::<f64>()
    }

    /// `∂P/∂ρ_j = (T a / N)(1 − s₀/s_j)`.
    #[must_use]
    pub fn gradient(&self, t: f64, n: f64, s: f64) -> f64 {
        t * self.strength / n * (1.0 - self.scale / s)
    }
}

impl ModelSpec {
    /// The scale prior when the scales are learned (otherwise it has nothing to act on and is
    /// left out of the objective).
    #[must_use]
    pub fn active_scale_prior(&self) -> Option<ScalePrior> {
        self.settings
            .scale_prior
            .filter(|_| self.settings.learn_scales && !self.structure.has_maps())
    }

    /// `−E₀/T` of the background component, `−∞` without one.
    #[must_use]
    pub fn background_arg(&self) -> f64 {
        let s = &self.settings;
        s.reject_energy.map_or(f64::NEG_INFINITY, |e0| -e0 / s.temperature)
    }

    /// A spec with [`RunSettings::new`] and no component classes.
    #[must_use]
    pub fn new(regime: Regime, temperature: f64) -> Self {
        Self {
            regime,
            structure: Structure::Spherical,
            classes: Vec::new(),
            settings: RunSettings::new(temperature),
        }
    }
}

/// The learned parameters of one run. Flat, row-major arrays (`K × D`, `K × P`).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// `D`.
    pub dim: usize,
    /// `K`.
    pub k: usize,
    /// `P`: value dimension (attention), 0 otherwise.
    pub value_dim: usize,
    /// `μ`, `K × D`.
    pub prototypes: Vec<f64>,
    /// `w`, `K` (uniform weights when all equal).
    pub log_weights: Vec<f64>,
    /// `ρ`, `K`.
    pub log_scales: Vec<f64>,
    /// `v`, `K × P`.
    pub values: Vec<f64>,
    /// `W_j`, `K × D × D` row-major (MATH.md §8), for structures with maps
    /// ([`Structure::has_maps`]); empty for spherical components, which use `ρ`.
    pub maps: Vec<f64>,
}

impl State {
    /// Prototypes at the given positions (`K × D`, row-major), uniform weights, unit scales,
    /// zero values of dimension `value_dim`.
    #[must_use]
    pub fn new(dim: usize, prototypes: Vec<f64>, value_dim: usize) -> Self {
        let k = prototypes.len() / dim.max(1);
        Self {
            dim,
            k,
            value_dim,
            prototypes,
            log_weights: vec![0.0; k],
            log_scales: vec![0.0; k],
            values: vec![0.0; k * value_dim],
            maps: Vec::new(),
        }
    }

    /// Gives every component the map `W_j = s^{−1/2} I` (scale `s`) when `structure` has maps,
    /// and removes the maps otherwise.
    #[must_use]
    pub fn with_structure(mut self, structure: Structure, scale: f64) -> Self {
        self.maps = if structure.has_maps() {
            let w = crate::core::metric::scaled_identity(self.dim, scale.powf(-0.5));
            w.repeat(self.k)
        } else {
            Vec::new()
        };
        self
    }

    /// Whether the components carry maps `W_j`.
    #[must_use]
    pub fn has_maps(&self) -> bool {
        !self.maps.is_empty()
    }

    /// `W_j` (`D × D`, row-major); only when [`State::has_maps`].
    #[must_use]
    pub fn map(&self, j: usize) -> &[f64] {
        let dd = self.dim * self.dim;
        &self.maps[j * dd..(j + 1) * dd]
    }

    /// `Σ_j = T (W_jᵀW_j)⁻¹` for a component with a map, `T s_j I` for a spherical one;
    /// `None` for a singular map.
    #[must_use]
    pub fn covariance(&self, j: usize, t: f64) -> Option<Vec<f64>> {
        if self.has_maps() {
            crate::core::metric::covariance(self.map(j), self.dim, t)
        } else {
            Some(crate::core::metric::scaled_identity(
                self.dim,
                t * self.log_scales[j].exp(),
            ))
        }
    }

    /// `μ_j`.
    #[must_use]
    pub fn prototype(&self, j: usize) -> &[f64] {
        &self.prototypes[j * self.dim..(j + 1) * self.dim]
    }

    /// `v_j`.
    #[must_use]
    pub fn value(&self, j: usize) -> &[f64] {
        &self.values[j * self.value_dim..(j + 1) * self.value_dim]
    }

    /// `s_j = exp ρ_j`.
    #[must_use]
    pub fn scales(&self) -> Vec<f64> {
        self.log_scales.iter().map(|r| r.exp()).collect()
    }

    /// `log π = w − lse(w)`.
    #[must_use]
    pub fn log_mixing(&self) -> Vec<f64> {
        let l = crate::core::math::lse::log_sum_exp(&self.log_weights);
        self.log_weights.iter().map(|w| w - l).collect()
    }

    /// `π = softmax(w)`.
    #[must_use]
    pub fn mixing(&self) -> Vec<f64> {
        self.log_mixing().iter().map(|l| l.exp()).collect()
    }

    /// The name of the first non-finite parameter block, if any.
    #[must_use]
    pub fn non_finite_block(&self) -> Option<&'static str> {
        let bad = |v: &[f64]| v.iter().any(|x| !x.is_finite());
        if bad(&self.prototypes) {
            Some("prototypes")
        } else if bad(&self.log_weights) {
            Some("mixing logits")
        } else if bad(&self.log_scales) {
            Some("log-scales")
        } else if bad(&self.values) {
            Some("values")
        } else if bad(&self.maps) {
            Some("metric maps W")
        } else {
            None
        }
    }
}

/// Per-component constants of the energy at one state:
/// `E_ij = d_ij + offset_j` with `d_ij = q_ij · inv_two_scale_j` (distance form), where
/// `q_ij = ||x_i − μ_j||²` for spherical components and `(x_i − μ_j)ᵀ P_j (x_i − μ_j)` for
/// components with maps (then `inv_two_scale = ½`).
#[derive(Clone, Debug)]
pub struct ComponentTerms {
    /// `1 / (2 s_j)` (`½` with maps).
    pub inv_two_scale: Vec<f64>,
    /// `T·(V·(D/2)·ρ_j − log π_j)`, or `T·(−V·log|det W_j| − log π_j)` with maps.
    pub offset: Vec<f64>,
    /// `log π_j`.
    pub log_mixing: Vec<f64>,
    /// `P_j = W_jᵀ W_j`, `K × D × D` (empty without maps).
    pub precision: Vec<f64>,
}

impl ComponentTerms {
    /// The constants for `state` under `spec`.
    #[must_use]
    pub fn new(spec: &ModelSpec, state: &State) -> Self {
        let t = spec.settings.temperature;
        let v = if spec.settings.volume { 1.0 } else { 0.0 };
        let half_d = state.dim as f64 / 2.0;
        let log_mixing = state.log_mixing();
        if state.has_maps() {
            let d = state.dim;
            let mut precision = Vec::with_capacity(state.k * d * d);
            let mut offset = Vec::with_capacity(state.k);
            for (j, lp) in log_mixing.iter().enumerate() {
                let w = state.map(j);
                precision.extend(crate::core::metric::precision(w, d));
                offset.push(t * (-v * crate::core::metric::log_abs_det(w, d) - lp));
            }
            return Self {
                inv_two_scale: vec![0.5; state.k],
                offset,
                log_mixing,
                precision,
            };
        }
        let offset = state
            .log_scales
            .iter()
            .zip(&log_mixing)
            .map(|(rho, lp)| t * (v * half_d * rho - lp))
            .collect();
        let inv_two_scale = state.log_scales.iter().map(|rho| 0.5 * (-rho).exp()).collect();
        Self {
            inv_two_scale,
            offset,
            log_mixing,
            precision: Vec::new(),
        }
    }
}

/// Lowest temperature accepted: below, `E/T` overflows for ordinary energies.
pub const MIN_TEMPERATURE: f64 = 1e-300;
/// Highest temperature accepted: above, `T ln K` and `T·ρ` overflow `f64`.
pub const MAX_TEMPERATURE: f64 = 1e300;
