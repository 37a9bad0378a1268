//! The identity and every gradient of MATH.md against independent computations: dual numbers,
//! central finite differences, and closed-form cases written out by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Case, all_regimes, random_case};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::{evaluate, point_row};
use implicit_em_lab::core::experiment::Experiment;
use implicit_em_lab::core::math::dual::{Dual, Scalar, log_sum_exp_generic};
use implicit_em_lab::core::model::Optimiser;
use implicit_em_lab::core::model::RateMode;
use implicit_em_lab::core::model::{ModelSpec, Regime, Score, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::{self, Derivative};
use implicit_em_lab::core::step::{em_step, gd_step};

/// Every check row passes, and the largest deviation is below `bound` (absolute, on values of
/// order one).
fn assert_checks(case: &Case, method: Derivative, bound: f64) {
    let (problem, state) = random_case(case);
    let rows = check(&problem, &state, method, None);
    assert!(rows.len() >= 6, "{rows:?}");
    for row in &rows {
        assert!(row.passed(), "{case:?} {method:?}: {row:?}");
        let scale = row.closed_form.abs().max(1.0);
        assert!(row.deviation <= bound * scale, "{case:?} {method:?}: {row:?}");
        assert!(row.entries > 0);
    }
}

#[test]
fn identity_and_gradients_match_dual_numbers_in_every_regime_and_dimension() {
    let mut cases = 0;
    for regime in all_regimes() {
        for dim in [1, 2, 5] {
            for (weights, scales, volume) in [
                (false, false, true),
                (true, true, true),
                (true, true, false),
                (false, true, false),
            ] {
                if scales
                    && regime
                        == (Regime::Attention {
                            score: Score::DotProduct,
                        })
                {
                    continue;
                }
                let mut case = Case::new(regime, dim, 100 + cases);
                case.learn_weights = weights;
                case.learn_scales = scales;
                case.volume = volume;
                assert_checks(&case, Derivative::Dual, 1e-12);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 39);
}

#[test]
fn identity_and_gradients_match_finite_differences() {
    for (s, regime) in all_regimes().into_iter().enumerate() {
        for dim in [1, 2, 5] {
            let mut case = Case::new(regime, dim, 7 + s as u64);
            case.learn_weights = true;
            assert_checks(&case, Derivative::FiniteDifference, 1e-7);
        }
    }
}

#[test]
fn theorem_one_holds_at_extreme_temperatures() {
    for t in [1e-3, 1e-1, 10.0, 100.0] {
        let mut case = Case::new(Regime::Mixture, 2, 42);
        case.temperature = t;
        let (problem, state) = random_case(&case);
        for i in 0..problem.len() {
            let row = point_row(&problem, &state, i).unwrap();
            let dual = reference::free_energy_gradient(&problem, &state, i, Derivative::Dual);
            for (r, d) in row.responsibilities.iter().zip(&dual) {
                assert!((r - d).abs() < 1e-13, "T = {t}: r = {r}, ∂F/∂E = {d}");
            }
            let sum: f64 = row.responsibilities.iter().sum();
            assert!((sum - 1.0).abs() < 1e-14);
        }
    }
}

#[test]
fn paper_convention_dl_dd_is_minus_r() {
    // T = 1, L = log Σ_j exp(−d_j): ∂L/∂d_j = −r_j with r = softmax(−d).
    let d = [0.3, 1.7, 0.9, 2.4];
    let z: f64 = d.iter().map(|v: &f64| (-v).exp()).sum();
    for j in 0..d.len() {
        let v: Vec<Dual> = d
            .iter()
            .enumerate()
            .map(|(c, &x)| if c == j { Dual::variable(x) } else { Dual::constant(x) })
            .collect();
        let neg: Vec<Dual> = v.iter().map(|&x| -x).collect();
        let l = log_sum_exp_generic(&neg);
        let r = (-d[j]).exp() / z;
        assert!((l.eps[0] + r).abs() < 1e-15, "∂L/∂d_{j} = {} vs −r = {}", l.eps[0], -r);
    }
}

#[test]
fn closed_form_two_components_one_point() {
    // x = 0, μ = ±1 at unit scale, T = 0.5, uniform weights: both distances 1/2, r = (½, ½).
    // F = −T log(½ e^{−1} + ½ e^{−1}) − the mixing term cancels: E_j = ½ + T log 2.
    let data = Dataset {
        dim: 1,
        points: vec![0.0],
        labels: vec![None],
        ..Dataset::default()
    };
    let spec = ModelSpec::new(Regime::Mixture, 0.5);
    let problem = Problem::bind(data, spec).unwrap();
    let state = State::new(1, vec![-1.0, 1.0], 0);
    let row = point_row(&problem, &state, 0).unwrap();
    let e = 0.5 + 0.5 * 2f64.ln();
    assert!((row.energies[0] - e).abs() < 1e-15 && (row.energies[1] - e).abs() < 1e-15);
    assert_eq!(row.responsibilities, vec![0.5, 0.5]);
    // F = E − T log 2 = 0.5.
    assert!((row.free_energy - 0.5).abs() < 1e-15);
    let eval = evaluate(&problem, &state);
    // ∂J/∂μ_j = r_j (μ_j − x)/s: (−0.5, +0.5).
    assert!((eval.gradient.prototypes[0] + 0.5).abs() < 1e-15);
    assert!((eval.gradient.prototypes[1] - 0.5).abs() < 1e-15);
    // ∂J/∂ρ_j = r_j (V T D/2 − d_j) = 0.5 (0.25 − 0.5).
    assert!((eval.gradient.log_scales[0] + 0.125).abs() < 1e-15);
}

#[test]
fn mixture_gradients_match_the_formulas_of_math_md_section_3() {
    let mut case = Case::new(Regime::Mixture, 3, 5);
    case.learn_weights = true;
    case.learn_scales = true;
    let (problem, state) = random_case(&case);
    let eval = evaluate(&problem, &state);
    let (n, k, dim, t) = (
        problem.len() as f64,
        state.k,
        problem.dim,
        problem.spec.settings.temperature,
    );
    // N_j, m_j and the scale sum written out from the responsibilities.
    let mut nj = vec![0.0; k];
    let mut sum_x = vec![0.0; k * dim];
    let mut sum_sq = vec![0.0; k];
    let scales = state.scales();
    for i in 0..problem.len() {
        let row = point_row(&problem, &state, i).unwrap();
        let x = problem.point(i);
        for j in 0..k {
            let r = row.responsibilities[j];
            nj[j] += r;
            let mu = state.prototype(j);
            let sq: f64 = (0..dim).map(|d| (x[d] - mu[d]).powi(2)).sum();
            sum_sq[j] += r * (t * dim as f64 / 2.0 - sq / (2.0 * scales[j]));
            for d in 0..dim {
                sum_x[j * dim + d] += r * x[d];
            }
        }
    }
    let pi = state.mixing();
    for j in 0..k {
        for d in 0..dim {
            let m = sum_x[j * dim + d] / nj[j];
            let expected = nj[j] / (n * scales[j]) * (state.prototype(j)[d] - m);
            assert!((eval.gradient.prototypes[j * dim + d] - expected).abs() < 1e-14);
        }
        assert!((eval.gradient.log_weights[j] - t * (pi[j] - nj[j] / n)).abs() < 1e-15);
        assert!((eval.gradient.log_scales[j] - sum_sq[j] / n).abs() < 1e-14);
        assert!((eval.counts[j] - nj[j]).abs() < 1e-12);
    }
}

#[test]
fn cross_entropy_with_one_prototype_per_class_is_t_times_the_usual_cross_entropy() {
    let case = Case::new(Regime::CrossEntropy, 2, 9);
    let (problem, state) = random_case(&case);
    assert_eq!(state.k, 3);
    let t = problem.spec.settings.temperature;
    let mut ce = 0.0;
    for i in 0..problem.len() {
        let row = point_row(&problem, &state, i).unwrap();
        // Usual cross-entropy of logits z = −E/T, written naively.
        let z: Vec<f64> = row.energies.iter().map(|e| -e / t).collect();
        let y = problem.labels[i].unwrap() as usize;
        let norm: f64 = z.iter().map(|v| v.exp()).sum();
        ce += -(z[y].exp() / norm).ln();
        // q = onehot(y) when M = 1; ∂J/∂E = q − r (times N).
        for j in 0..3 {
            let q = if j == y { 1.0 } else { 0.0 };
            assert!((row.energy_gradient[j] - (q - row.responsibilities[j])).abs() < 1e-15);
        }
    }
    let eval = evaluate(&problem, &state);
    assert!(
        (eval.loss - t * ce / problem.len() as f64).abs() < 1e-13,
        "{} vs {}",
        eval.loss,
        t * ce / 40.0
    );
}

#[test]
fn em_preconditioned_gd_reproduces_explicit_em_over_50_steps() {
    for dim in [1, 2, 5] {
        let mut case = Case::new(Regime::Mixture, dim, 77);
        case.n = 120;
        let (problem, state) = random_case(&case);
        let settings = Optimiser {
            learning_rate: 1.0,
            rate: RateMode::Em,
        };
        let mut exp = Experiment::new(problem, state, settings).unwrap();
        exp.run(50).unwrap();
        let (gd, em) = (exp.gd_state(), exp.em_state());
        let mut worst: f64 = 0.0;
        for (a, b) in gd.prototypes.iter().zip(&em.prototypes) {
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
        }
        assert!(worst < 1e-12, "D = {dim}: GD and EM differ by {worst:e} after 50 steps");
        // The runs actually moved (the comparison is not between two start states).
        let start = &exp.trace()[0].gd.prototypes;
        let moved: f64 = start
            .iter()
            .flatten()
            .zip(&gd.prototypes)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 0.1, "prototypes barely moved: {moved}");
        assert!(exp.latest().prototype_distance < 1e-12);
    }
}

#[test]
fn shared_rate_gd_step_is_a_fraction_of_the_em_step() {
    // MATH.md §3: with one shared η the GD step is α_j = η N_j/(N s_j) of the EM step, along
    // exactly the same direction.
    let mut case = Case::new(Regime::Mixture, 2, 3);
    case.learn_scales = true;
    let (problem, state) = random_case(&case);
    let eta = 0.3;
    let exp = Experiment::new(
        problem,
        state.clone(),
        Optimiser {
            learning_rate: eta,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    let rec = exp.latest();
    let n = exp.problem().len() as f64;
    let scales = state.scales();
    for j in 0..state.k {
        let expected = eta * rec.gd.counts[j] / (n * scales[j]);
        let got = rec.step_fraction[j].unwrap();
        assert!(
            (got - expected).abs() < 1e-13 * expected.max(1.0),
            "α_{j}: {got} vs {expected}"
        );
        assert!((rec.alignment[j].unwrap() - 1.0).abs() < 1e-12);
    }
}

/// Spherical Gaussian-mixture EM written out independently: γ_ij ∝ π_j (2π s_j)^{−D/2}
/// exp(−||x_i − μ_j||²/(2 s_j)); N_j = Σγ; μ = Σγx/N_j; s = Σγ||x − μ_new||²/(D N_j); π = N_j/N.
struct Gmm {
    mu: Vec<Vec<f64>>,
    s: Vec<f64>,
    pi: Vec<f64>,
}

impl Gmm {
    fn log_density(&self, x: &[f64], j: usize) -> f64 {
        let d = x.len() as f64;
        let sq: f64 = x.iter().zip(&self.mu[j]).map(|(a, b)| (a - b).powi(2)).sum();
        self.pi[j].ln() - 0.5 * d * (2.0 * std::f64::consts::PI * self.s[j]).ln() - sq / (2.0 * self.s[j])
    }

    fn log_likelihood(&self, xs: &[Vec<f64>]) -> f64 {
        xs.iter()
            .map(|x| {
                let l: Vec<f64> = (0..self.pi.len()).map(|j| self.log_density(x, j)).collect();
                let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
            })
            .sum()
    }

    fn em_step(&mut self, xs: &[Vec<f64>]) {
        let k = self.pi.len();
        let d = xs[0].len();
        let gamma: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| {
                let l: Vec<f64> = (0..k).map(|j| self.log_density(x, j)).collect();
                let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = l.iter().map(|v| (v - m).exp()).sum();
                l.iter().map(|v| (v - m).exp() / z).collect()
            })
            .collect();
        for j in 0..k {
            let nj: f64 = gamma.iter().map(|g| g[j]).sum();
            let mu: Vec<f64> = (0..d)
                .map(|c| xs.iter().zip(&gamma).map(|(x, g)| g[j] * x[c]).sum::<f64>() / nj)
                .collect();
            let ss: f64 = xs
                .iter()
                .zip(&gamma)
                .map(|(x, g)| g[j] * x.iter().zip(&mu).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
                .sum();
            // scikit-learn's spherical variance with its default reg_covar (the lab's too).
            self.s[j] = ss / (d as f64 * nj) + 1e-6;
            self.mu[j] = mu;
            self.pi[j] = nj / xs.len() as f64;
        }
    }
}

#[test]
fn em_at_unit_temperature_is_spherical_gaussian_mixture_em() {
    for dim in [1, 2, 5] {
        let mut case = Case::new(Regime::Mixture, dim, 21);
        case.temperature = 1.0;
        case.learn_weights = true;
        case.learn_scales = true;
        case.n = 90;
        let (mut problem, mut state) = random_case(&case);
        problem.spec.settings.scale_floor = 1e-12;
        state.log_weights = state.log_mixing(); // normalised logits: w = log π
        let xs: Vec<Vec<f64>> = (0..problem.len()).map(|i| problem.point(i).to_vec()).collect();
        let mut gmm = Gmm {
            mu: (0..state.k).map(|j| state.prototype(j).to_vec()).collect(),
            s: state.scales(),
            pi: state.mixing(),
        };
        let mut ours = state;
        for step in 0..10 {
            let eval = evaluate(&problem, &ours);
            // J_U = −(1/N) log-likelihood − (D/2) log 2π (the Gaussian constant).
            let ll = gmm.log_likelihood(&xs);
            let expected = -ll / xs.len() as f64 - 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln();
            assert!(
                (eval.loss - expected).abs() < 1e-12 * expected.abs().max(1.0),
                "D = {dim}, step {step}: {} vs {expected}",
                eval.loss
            );
            ours = em_step(&problem, &ours, &eval);
            gmm.em_step(&xs);
            let (pi, s) = (ours.mixing(), ours.scales());
            for j in 0..ours.k {
                for (a, b) in ours.prototype(j).iter().zip(&gmm.mu[j]) {
                    assert!((a - b).abs() < 1e-12, "D = {dim}, step {step}: μ {a} vs {b}");
                }
                assert!(
                    (s[j] - gmm.s[j]).abs() < 1e-12 * gmm.s[j],
                    "D = {dim}, step {step}: s {} vs {}",
                    s[j],
                    gmm.s[j]
                );
                assert!((pi[j] - gmm.pi[j]).abs() < 1e-13, "π {} vs {}", pi[j], gmm.pi[j]);
            }
        }
    }
}

#[test]
fn attention_value_steps_of_gd_and_em_agree_as_temperature_falls() {
    // GD's value step points along Σ α(t − o), EM's along Σ α(t − v): as T → 0 attention is
    // hard, o_i = v_{j(i)}, and the two directions coincide.
    let mut cosines = Vec::new();
    for t in [1.0, 0.1, 1e-3] {
        let mut case = Case::new(Regime::Attention { score: Score::Distance }, 2, 13);
        case.temperature = t;
        let (problem, state) = random_case(&case);
        let eval = evaluate(&problem, &state);
        let p = problem.target_dim;
        let mut worst: f64 = 1.0;
        for j in 0..state.k {
            let gd: Vec<f64> = (0..p).map(|c| -eval.gradient.values[j * p + c]).collect();
            let em: Vec<f64> = (0..p)
                .map(|c| eval.em.targets[j * p + c] / eval.em.mass[j] - state.value(j)[c])
                .collect();
            if eval.em.mass[j] > 1e-9 {
                let cos = implicit_em_lab::core::diagnostics::cosine(&gd, &em).unwrap();
                worst = worst.min(cos);
            }
        }
        cosines.push(worst);
    }
    assert!(cosines[2] > 1.0 - 1e-9, "{cosines:?}");
    assert!(cosines[0] < cosines[2], "{cosines:?}");
    // The trace reports the same cosines per value.
    let mut case = Case::new(Regime::Attention { score: Score::Distance }, 2, 13);
    case.temperature = 1e-3;
    let (problem, state) = random_case(&case);
    let exp = Experiment::new(
        problem,
        state,
        Optimiser {
            learning_rate: 0.5,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    let va = &exp.latest().value_alignment;
    assert_eq!(va.len(), 4);
    assert!(va.iter().flatten().all(|c| *c > 1.0 - 1e-9), "{va:?}");
}

#[test]
fn em_never_increases_its_objective_with_learned_weights_and_scales() {
    for regime in [Regime::Mixture, Regime::CrossEntropy] {
        let mut case = Case::new(regime, 2, 31);
        case.learn_weights = true;
        case.learn_scales = true;
        case.temperature = 1.0;
        case.n = 150;
        let (problem, state) = random_case(&case);
        let mut s = state;
        let mut prev = evaluate(&problem, &s).em_objective;
        for step in 0..200 {
            let eval = evaluate(&problem, &s);
            s = em_step(&problem, &s, &eval);
            let now = evaluate(&problem, &s).em_objective;
            assert!(
                now <= prev + 1e-9 * prev.abs().max(1.0),
                "{regime:?} step {step}: {prev} → {now}"
            );
            prev = now;
        }
    }
}

#[test]
fn gd_step_moves_against_the_gradient() {
    let case = Case::new(Regime::Mixture, 2, 1);
    let (problem, state) = random_case(&case);
    let eval = evaluate(&problem, &state);
    let next = gd_step(&problem, &state, &eval, 0.01, RateMode::Shared);
    for (i, (a, b)) in next.prototypes.iter().zip(&state.prototypes).enumerate() {
        assert!((a - (b - 0.01 * eval.gradient.prototypes[i])).abs() < 1e-16);
    }
    // A small step lowers the loss by about η ||∇||².
    let g2: f64 = eval.gradient.prototypes.iter().map(|g| g * g).sum();
    let drop = eval.loss - evaluate(&problem, &next).loss;
    assert!(
        (drop - 0.01 * g2).abs() < 0.05 * 0.01 * g2,
        "drop {drop}, η||g||² {}",
        0.01 * g2
    );
}

#[test]
fn dual_and_real_reference_losses_agree() {
    let case = Case::new(Regime::Attention { score: Score::Distance }, 2, 4);
    let (problem, state) = random_case(&case);
    let real: f64 = reference::loss(&problem, &reference::Params::<f64>::constant(&state));
    let dual: Dual = reference::loss(&problem, &reference::Params::<Dual>::constant(&state));
    assert_eq!(real, dual.value());
    assert_eq!(dual.eps, [0.0]);
    assert!((evaluate(&problem, &state).loss - real).abs() < 1e-14);
}

/// The reference seeds eight coordinates per dual evaluation; each derivative must equal, bit
/// for bit, the one a single seeded dual number gives (K = 11 leaves a partial group of three).
#[test]
fn eight_seeded_duals_equal_one_seed_at_a_time() {
    for regime in all_regimes() {
        let mut case = Case::new(regime, 3, 41);
        case.k = 11;
        case.learn_weights = true;
        case.learn_scales = true;
        let (problem, state) = random_case(&case);
        let params = reference::Params::<Dual>::constant(&state);
        let values: Vec<Dual> = state.values.iter().map(|&v| Dual::constant(v)).collect();
        for i in [0, 7, 23] {
            let e = reference::energies(&problem, &params, i);
            let seeded = reference::point_energy_gradient(&problem, &state, i, Derivative::Dual);
            assert_eq!(seeded.len(), e.len(), "{regime:?}");
            for (j, &d) in seeded.iter().enumerate() {
                let mut v: Vec<Dual> = e.iter().map(|x| Dual::constant(x.re)).collect();
                v[j] = Dual::variable(e[j].re);
                let one = reference::point_loss(&problem, &values, &v, i).eps[0];
                assert_eq!(
                    d.to_bits(),
                    one.to_bits(),
                    "{regime:?} point {i} energy {j}: {d} vs {one}"
                );
            }
        }
        // Every parameter's derivative of the loss (33 prototype coordinates: groups of 8 and 1).
        let grad = reference::parameter_gradient(&problem, &state, Derivative::Dual);
        for (j, &d) in grad.prototypes.iter().enumerate() {
            let mut p = reference::Params::<Dual>::constant(&state);
            p.prototypes[j] = Dual::variable(state.prototypes[j]);
            let one = reference::loss(&problem, &p).eps[0];
            assert_eq!(d.to_bits(), one.to_bits(), "{regime:?} ∂J/∂μ[{j}]: {d} vs {one}");
        }
        assert!(
            grad.prototypes.iter().any(|d| d.abs() > 1e-6),
            "{regime:?}: a real gradient"
        );
    }
}

#[test]
fn dual_division_survives_extreme_denominators() {
    // d(x/b)/dx = 1/b and d(a/x)/dx = −a/x²: the quotient rule written as (a' b − a b')/b²
    // overflowed b² for |b| > 1e154 (derivative 0) and underflowed it below 1e-154 (NaN).
    for b in [1e-300, 1e-160, 1.0, 1e155, 1e300] {
        let x = Dual::variable(2.0);
        let q = x / Dual::constant(b);
        assert!((q.eps[0] - 1.0 / b).abs() <= 1e-15 * (1.0 / b), "b = {b}: {}", q.eps[0]);
        let y = Dual::variable(b);
        let r = Dual::constant(3.0) / y;
        let exact = -3.0 / b / b;
        assert!(
            r.eps[0] == exact || (r.eps[0] - exact).abs() <= 1e-15 * exact.abs(),
            "b = {b}: {} vs {exact}",
            r.eps[0]
        );
    }
}
