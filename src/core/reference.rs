//! An independent, plainly written implementation of every objective, generic over
//! [`Scalar`], used only to check the closed forms.
//!
//! It shares no code with [`crate::core::eval`]: energies are built from the parameters
//! directly, every objective is written out as in MATH.md, and derivatives come from forward-
//! mode dual numbers ([`Derivative::Dual`]) or central finite differences
//! ([`Derivative::FiniteDifference`]), never from a gradient formula.

use crate::core::eval::Gradient;
use crate::core::math::dual::{Duals, Scalar, log_sum_exp_generic};
use crate::core::model::{Form, Regime, Score, State, Structure};
use crate::core::problem::Problem;

/// How the independent derivative is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivative {
    /// Forward-mode dual numbers: exact to rounding (expect ≲ 1e-12).
    Dual,
    /// Central finite differences of `J` (expect ≲ 1e-8).
    FiniteDifference,
}

impl Derivative {
    /// A short name for tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Derivative::Dual => "dual numbers",
            Derivative::FiniteDifference => "central differences",
        }
    }
}

/// The parameters lifted to a [`Scalar`].
#[derive(Clone, Debug)]
pub struct Params<S> {
    /// `μ`, `K × D`.
    pub prototypes: Vec<S>,
    /// `w`.
    pub log_weights: Vec<S>,
    /// `ρ`.
    pub log_scales: Vec<S>,
    /// `v`, `K × P`.
    pub values: Vec<S>,
    /// `W_j`, `K × D × D` (components with maps; empty otherwise).
    pub maps: Vec<S>,
    /// `b_j`, `K × D`: when set, the energies are the neural form's `z = W x + b` and the
    /// prototypes are not read; otherwise `z = W (x − μ)`.
    pub biases: Option<Vec<S>>,
}

impl<S: Scalar> Params<S> {
    /// Every parameter of `state` as a constant.
    #[must_use]
    pub fn constant(state: &State) -> Self {
        let c = |v: &Vec<f64>| v.iter().map(|&x| S::constant(x)).collect();
        Self {
            prototypes: c(&state.prototypes),
            log_weights: c(&state.log_weights),
            log_scales: c(&state.log_scales),
            values: c(&state.values),
            maps: c(&state.maps),
            biases: None,
        }
    }
}

/// `log|det W|` of a `D × D` matrix by Gaussian elimination with partial pivoting (pivots
/// chosen by value), written here apart from [`crate::core::metric`].
pub fn log_abs_det_generic<S: Scalar>(w: &[S], d: usize) -> S {
    let mut a = w.to_vec();
    let mut total = S::constant(0.0);
    for col in 0..d {
        let piv = (col..d)
            .max_by(|&x, &y| a[x * d + col].value().abs().total_cmp(&a[y * d + col].value().abs()))
            .expect("a column");
        if piv != col {
            for c in 0..d {
                a.swap(piv * d + c, col * d + c);
            }
        }
        let p = a[col * d + col];
        let abs = if p.value() < 0.0 { -p } else { p };
        total += abs.ln();
        for r in col + 1..d {
            let f = a[r * d + col] / p;
            for c in col..d {
                let v = a[col * d + c];
                a[r * d + c] = a[r * d + c] - f * v;
            }
        }
    }
    total
}

/// `E_i·` for point `i`, built from the parameters (MATH.md §1).
pub fn energies<S: Scalar>(problem: &Problem, params: &Params<S>, i: usize) -> Vec<S> {
    let spec = &problem.spec;
    let dim = problem.dim;
    let k = params.log_weights.len();
    let t = S::constant(spec.settings.temperature);
    let lse_w = log_sum_exp_generic(&params.log_weights);
    let x = problem.point(i);
    let half_d = S::constant(if spec.settings.volume { dim as f64 / 2.0 } else { 0.0 });
    if !params.maps.is_empty() {
        let v = S::constant(if spec.settings.volume { 1.0 } else { 0.0 });
        return (0..k)
            .map(|j| {
                let w = &params.maps[j * dim * dim..(j + 1) * dim * dim];
                // z = W (x − μ), or W x + b in the neural form.
                let mut sq = S::constant(0.0);
                for r in 0..dim {
                    let mut z = match &params.biases {
                        Some(b) => b[j * dim + r],
                        None => S::constant(0.0),
                    };
                    for c in 0..dim {
                        let u = match &params.biases {
                            Some(_) => S::constant(x[c]),
                            None => S::constant(x[c]) - params.prototypes[j * dim + c],
                        };
                        z += w[r * dim + c] * u;
                    }
                    sq += z * z;
                }
                let log_pi = params.log_weights[j] - lse_w;
                S::constant(0.5) * sq + t * (-v * log_abs_det_generic(w, dim) - log_pi)
            })
            .collect();
    }
    (0..k)
        .map(|j| {
            let mu = &params.prototypes[j * dim..(j + 1) * dim];
            let d = match spec.regime.score() {
                Score::Distance => {
                    let mut sq = S::constant(0.0);
                    for c in 0..dim {
                        let e = S::constant(x[c]) - mu[c];
                        sq += e * e;
                    }
                    sq / (S::constant(2.0) * params.log_scales[j].exp())
                }
                Score::DotProduct => {
                    let mut dot = S::constant(0.0);
                    for c in 0..dim {
                        dot += S::constant(x[c]) * mu[c];
                    }
                    -dot
                }
            };
            let log_pi = params.log_weights[j] - lse_w;
            d + t * (half_d * params.log_scales[j] - log_pi)
        })
        .collect()
}

/// `F_i = −T log (Σ_j exp(−E_ij/T) + exp(−E₀/T))`, the last term only with a background
/// component of energy `background`.
pub fn free_energy<S: Scalar>(temperature: f64, background: Option<f64>, energies: &[S]) -> S {
    let t = S::constant(temperature);
    let mut a: Vec<S> = energies.iter().map(|&e| -e / t).collect();
    if let Some(e0) = background {
        a.push(S::constant(-e0 / temperature));
    }
    -t * log_sum_exp_generic(&a)
}

/// `N·J_i`: point `i`'s term of the regime's loss, from its energies (and the values, for
/// attention).
pub fn point_loss<S: Scalar>(problem: &Problem, values: &[S], energies: &[S], i: usize) -> S {
    let spec = &problem.spec;
    let t = S::constant(spec.settings.temperature);
    let a: Vec<S> = energies.iter().map(|&e| -e / t).collect();
    match spec.regime {
        Regime::Mixture if spec.settings.unnormalised => {
            // A sum of independent kernels, written out: −T Σ_j e^{−E_j/T} (+ the background's).
            let mut total = S::constant(
                spec.settings
                    .reject_energy
                    .map_or(0.0, |e0| (-e0 / spec.settings.temperature).exp()),
            );
            for &aj in &a {
                total += aj.exp();
            }
            -t * total
        }
        Regime::Mixture => free_energy(spec.settings.temperature, spec.settings.reject_energy, energies),
        Regime::CrossEntropy => {
            let y = problem.labels[i].map(|y| y as usize);
            let own = |c: usize| -> S {
                let v: Vec<S> = a
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| spec.classes[*j] == c)
                    .map(|(_, &v)| v)
                    .collect();
                log_sum_exp_generic(&v)
            };
            // Σ_c p_c lse(class c): a soft label's classes, else the label's alone.
            let clamped = match problem.soft_label(i) {
                Some(p) => {
                    let mut total = S::constant(0.0);
                    for (c, &pc) in p.iter().enumerate() {
                        if pc > 0.0 {
                            total += S::constant(pc) * own(c);
                        }
                    }
                    Some(total)
                }
                None => y.map(own),
            };
            if spec.settings.semi_supervised {
                // Generative: F^y (or F^p) for a labelled point, F for an unlabelled one.
                match clamped {
                    Some(lse) => -t * lse,
                    None => -t * log_sum_exp_generic(&a),
                }
            } else {
                // F^y − F = −T lse(own) + T lse(all).
                let lse_own = clamped.expect("cross-entropy counts labelled points only");
                t * (log_sum_exp_generic(&a) - lse_own)
            }
        }
        Regime::Attention { .. } => {
            let p = problem.target_dim;
            let lse = log_sum_exp_generic(&a);
            let target = problem.target(i);
            let mut loss = S::constant(0.0);
            for c in 0..p {
                let mut o = S::constant(0.0);
                for (j, &aj) in a.iter().enumerate() {
                    o += (aj - lse).exp() * values[j * p + c];
                }
                let e = o - S::constant(target[c]);
                loss += S::constant(0.5) * e * e;
            }
            loss
        }
    }
}

/// The regime's loss `J` (a mean over the points that count).
pub fn loss<S: Scalar>(problem: &Problem, params: &Params<S>) -> S {
    let mut total = S::constant(0.0);
    let mut n = 0usize;
    for i in 0..problem.len() {
        if problem.counts_point(i) {
            let e = energies(problem, params, i);
            total += point_loss(problem, &params.values, &e, i);
            n += 1;
        }
    }
    let n = S::constant(n.max(1) as f64);
    let mut j = total / n;
    // The scale prior, written out: (T a / N) Σ_j (ρ_j + s₀ e^{−ρ_j}).
    if let Some(p) = problem.spec.active_scale_prior() {
        let c = S::constant(problem.spec.settings.temperature * p.strength) / n;
        for &rho in &params.log_scales {
            j += c * (rho + S::constant(p.scale) * (-rho).exp());
        }
    }
    j
}

/// How many coordinates one dual evaluation seeds (one direction each).
const SEEDS: usize = 8;

/// The dual numbers of [`gradient_of`]: [`SEEDS`] directions at once.
type Dual = Duals<SEEDS>;

/// Derivatives of `f` at the vector `at` along every coordinate, by the chosen method. `step`
/// gives the finite-difference step of coordinate `j` (ignored for dual numbers). One dual vector
/// is reused, its seeds moved [`SEEDS`] coordinates at a time (coordinate `j0 + k` along
/// direction `k`), so `f` runs `⌈n/8⌉` times instead of `n`, with the same derivatives.
fn gradient_of(
    at: &[f64],
    method: Derivative,
    step: &dyn Fn(usize) -> f64,
    f_dual: &dyn Fn(&[Dual]) -> Dual,
    f_real: &dyn Fn(&[f64]) -> f64,
) -> Vec<f64> {
    match method {
        Derivative::Dual => {
            let mut v: Vec<Dual> = at.iter().map(|&x| Dual::constant(x)).collect();
            let mut out = Vec::with_capacity(at.len());
            for j0 in (0..at.len()).step_by(SEEDS) {
                let n = SEEDS.min(at.len() - j0);
                for k in 0..n {
                    v[j0 + k].eps[k] = 1.0;
                }
                out.extend_from_slice(&f_dual(&v).eps[..n]);
                for k in 0..n {
                    v[j0 + k].eps[k] = 0.0;
                }
            }
            out
        }
        Derivative::FiniteDifference => {
            let mut w = at.to_vec();
            (0..at.len())
                .map(|j| {
                    let h = step(j);
                    w[j] = at[j] + h;
                    let plus = f_real(&w);
                    w[j] = at[j] - h;
                    let minus = f_real(&w);
                    w[j] = at[j];
                    (plus - minus) / (2.0 * h)
                })
                .collect()
        }
    }
}

/// Finite-difference step for derivatives with respect to energies: the curvature scale of a
/// log-sum-exp at temperature `T` is `T`.
fn energy_step(temperature: f64) -> f64 {
    1e-5 * temperature.min(1.0)
}

/// `∂F_i/∂E_ij` for every `j`, independently (the identity says this is `r_ij`).
#[must_use]
pub fn free_energy_gradient(problem: &Problem, state: &State, i: usize, method: Derivative) -> Vec<f64> {
    let e: Vec<f64> = energies(problem, &Params::<f64>::constant(state), i);
    let t = problem.spec.settings.temperature;
    let bg = problem.spec.settings.reject_energy;
    gradient_of(&e, method, &|_| energy_step(t), &|v| free_energy(t, bg, v), &|v| {
        free_energy(t, bg, v)
    })
}

/// `N·∂J/∂E_ij = ∂(N·J_i)/∂E_ij` for every `j`, independently: the derivative of point `i`'s
/// own term of the loss (`J` is a mean; divide by `N` for `∂J/∂E_ij`).
#[must_use]
pub fn point_energy_gradient(problem: &Problem, state: &State, i: usize, method: Derivative) -> Vec<f64> {
    let e: Vec<f64> = energies(problem, &Params::<f64>::constant(state), i);
    let values_d: Vec<Dual> = state.values.iter().map(|&v| Dual::constant(v)).collect();
    let h = energy_step(problem.spec.settings.temperature);
    gradient_of(&e, method, &|_| h, &|v| point_loss(problem, &values_d, v, i), &|v| {
        point_loss(problem, &state.values, v, i)
    })
}

/// `∂J/∂θ` for every parameter, independently: one full evaluation of `J` per parameter
/// (dual numbers) or two (finite differences).
#[must_use]
pub fn parameter_gradient(problem: &Problem, state: &State, method: Derivative) -> Gradient {
    let t = problem.spec.settings.temperature;
    let block = |get: fn(&State) -> &Vec<f64>,
                 set: fn(&mut Params<Dual>, Vec<Dual>),
                 set_f: fn(&mut Params<f64>, Vec<f64>)|
     -> Vec<f64> {
        let at = get(state).clone();
        gradient_of(
            &at,
            method,
            &|j| 1e-5 * at[j].abs().max(1.0) * t.sqrt().min(1.0),
            &|v| {
                let mut p = Params::<Dual>::constant(state);
                set(&mut p, v.to_vec());
                loss(problem, &p)
            },
            &|v| {
                let mut p = Params::<f64>::constant(state);
                set_f(&mut p, v.to_vec());
                loss(problem, &p)
            },
        )
    };
    let s = &problem.spec.settings;
    let neural = s.form == Form::Neural && problem.spec.regime.score() == Score::Distance;
    let (maps, biases) = if (state.has_maps() && s.learn_scales) || neural {
        map_gradient(problem, state, method)
    } else {
        (Vec::new(), Vec::new())
    };
    Gradient {
        maps,
        biases,
        prototypes: block(|s| &s.prototypes, |p, v| p.prototypes = v, |p, v| p.prototypes = v),
        log_weights: block(|s| &s.log_weights, |p, v| p.log_weights = v, |p, v| p.log_weights = v),
        log_scales: block(|s| &s.log_scales, |p, v| p.log_scales = v, |p, v| p.log_scales = v),
        values: block(|s| &s.values, |p, v| p.values = v, |p, v| p.values = v),
    }
}

/// `b_j = −W_j μ_j`, written out.
fn neural_biases(state: &State) -> Vec<f64> {
    let d = state.dim;
    let mut b = vec![0.0; state.k * d];
    for j in 0..state.k {
        for r in 0..d {
            b[j * d + r] = -(0..d)
                .map(|c| state.maps[j * d * d + r * d + c] * state.prototypes[j * d + c])
                .sum::<f64>();
        }
    }
    b
}

/// The structure's free parameters of the maps: the diagonals (`diag`), one shared matrix
/// (`tied`), every entry (`full`), as (component, entry) lists; each coordinate sets every
/// entry in its list.
fn map_coordinates(structure: Structure, k: usize, d: usize) -> Vec<Vec<(usize, usize)>> {
    let dd = d * d;
    match structure {
        Structure::Diag => (0..k).flat_map(|j| (0..d).map(move |r| vec![(j, r * d + r)])).collect(),
        Structure::Tied => (0..dd).map(|e| (0..k).map(|j| (j, e)).collect()).collect(),
        _ => (0..k).flat_map(|j| (0..dd).map(move |e| vec![(j, e)])).collect(),
    }
}

/// `∂J/∂W` on the structure's free parameters (laid out `K × D × D`, zeros off a diagonal,
/// a tied gradient written to every component) and, in the neural form, `∂J/∂b` (with
/// `b = −W μ` held while `W` moves); both through the plain energies above.
fn map_gradient(problem: &Problem, state: &State, method: Derivative) -> (Vec<f64>, Vec<f64>) {
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let neural = problem.spec.settings.form == Form::Neural;
    // Spherical components in the neural form: W_j = w_j I with w_j = s_j^{−1/2}, one coordinate
    // per component setting its whole diagonal.
    let spherical = !state.has_maps();
    let lifted;
    let state = if spherical {
        let mut st = state.clone();
        st.maps = (0..k)
            .flat_map(|j| {
                let w = (-0.5 * state.log_scales[j]).exp();
                (0..dd).map(move |e| if e / d == e % d { w } else { 0.0 })
            })
            .collect();
        lifted = st;
        &lifted
    } else {
        state
    };
    let coords = if spherical {
        (0..k).map(|j| (0..d).map(|r| (j, r * d + r)).collect()).collect()
    } else {
        map_coordinates(problem.spec.structure, k, d)
    };
    let at: Vec<f64> = coords
        .iter()
        .map(|list| state.maps[list[0].0 * dd + list[0].1])
        .collect();
    let biases = neural_biases(state);
    let t = problem.spec.settings.temperature;
    fn lift<S: Scalar>(state: &State, coords: &[Vec<(usize, usize)>], v: &[S], biases: Option<&[f64]>) -> Params<S> {
        let dd = state.dim * state.dim;
        let mut p = Params::<S>::constant(state);
        for (list, &x) in coords.iter().zip(v) {
            for &(j, e) in list {
                p.maps[j * dd + e] = x;
            }
        }
        p.biases = biases.map(|b| b.iter().map(|&x| S::constant(x)).collect());
        p
    }
    let nb = neural.then_some(biases.as_slice());
    let g = gradient_of(
        &at,
        method,
        &|j| 1e-5 * at[j].abs().max(1.0) * t.sqrt().min(1.0),
        &|v| loss(problem, &lift(state, &coords, v, nb)),
        &|v| loss(problem, &lift(state, &coords, v, nb)),
    );
    let maps = if !problem.spec.settings.learn_scales {
        Vec::new()
    } else if spherical {
        g
    } else {
        let mut maps = vec![0.0; k * dd];
        for (list, gv) in coords.iter().zip(&g) {
            for &(j, e) in list {
                maps[j * dd + e] = *gv;
            }
        }
        maps
    };
    if !neural {
        return (maps, Vec::new());
    }
    let gb = gradient_of(
        &biases,
        method,
        &|j| 1e-5 * biases[j].abs().max(1.0) * t.sqrt().min(1.0),
        &|v| {
            let mut p = Params::<Dual>::constant(state);
            p.biases = Some(v.to_vec());
            loss(problem, &p)
        },
        &|v| {
            let mut p = Params::<f64>::constant(state);
            p.biases = Some(v.to_vec());
            loss(problem, &p)
        },
    );
    (maps, gb)
}
