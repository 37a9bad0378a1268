//! Components with their own metric (MATH.md §8): every gradient against dual numbers through
//! the plain reference, the fast path against the plain one, explicit EM against scikit-learn's
//! M-step written out here, the mean bridge, EM's monotonicity and the author's identities.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Case, assert_paths_agree, random_metric_case};
use implicit_em_lab::core::eval::{evaluate, evaluate_em, evaluate_rows, scatter, scatter_rows};
use implicit_em_lab::core::metric;
use implicit_em_lab::core::model::{Form, RateMode, Regime, Score, State, Structure};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::{self, Derivative};
use implicit_em_lab::core::step::{em_step, gd_step};

const MAP_STRUCTURES: [Structure; 3] = [Structure::Diag, Structure::Full, Structure::Tied];

fn regimes() -> [Regime; 3] {
    [
        Regime::Mixture,
        Regime::CrossEntropy,
        Regime::Attention { score: Score::Distance },
    ]
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y} (scale {scale})");
    }
}

#[test]
fn every_metric_gradient_matches_dual_numbers() {
    let mut checked = 0;
    for regime in regimes() {
        for &dim in &[1usize, 2, 3, 5] {
            for structure in MAP_STRUCTURES {
                for form in [Form::Prototype, Form::Neural] {
                    for volume in [true, false] {
                        let mut case = Case::new(regime, dim, 17 + dim as u64);
                        case.learn_scales = true;
                        case.learn_weights = true;
                        case.volume = volume;
                        case.n = 25;
                        let (problem, state) = random_metric_case(&case, structure, form);
                        let fast = evaluate(&problem, &state);
                        let plain = evaluate_rows(&problem, &state);
                        let what = format!("{regime:?} D={dim} {structure:?} {form:?} V={volume}");
                        assert_paths_agree(&fast, &plain, &what);
                        let dual = reference::parameter_gradient(&problem, &state, Derivative::Dual);
                        assert!(!dual.maps.is_empty(), "{what}: the reference has maps");
                        assert_close(&fast.gradient.maps, &dual.maps, 1e-11, &format!("{what} ∂J/∂W"));
                        assert_close(
                            &fast.gradient.prototypes,
                            &dual.prototypes,
                            1e-11,
                            &format!("{what} ∂J/∂μ"),
                        );
                        assert_close(
                            &fast.gradient.log_weights,
                            &dual.log_weights,
                            1e-11,
                            &format!("{what} ∂J/∂w"),
                        );
                        assert_close(&fast.gradient.values, &dual.values, 1e-11, &format!("{what} ∂J/∂v"));
                        if form == Form::Neural {
                            assert_close(&fast.gradient.biases, &dual.biases, 1e-11, &format!("{what} ∂J/∂b"));
                        } else {
                            assert!(fast.gradient.biases.is_empty());
                        }
                        if structure == Structure::Diag {
                            for j in 0..state.k {
                                for r in 0..dim {
                                    for c in 0..dim {
                                        if r != c {
                                            assert_eq!(fast.gradient.maps[j * dim * dim + r * dim + c], 0.0);
                                        }
                                    }
                                }
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 3 * 2 * 2);
}

#[test]
fn a_full_map_energy_is_the_mahalanobis_distance_plus_the_volume() {
    // One component, one point, T = 0.5: E = ½ (x − μ)ᵀ WᵀW (x − μ) − T log|det W| − T log π.
    let mut case = Case::new(Regime::Mixture, 2, 5);
    case.n = 3;
    case.temperature = 0.5;
    let (problem, mut state) = random_metric_case(&case, Structure::Full, Form::Prototype);
    state.maps[..4].copy_from_slice(&[2.0, 0.5, -0.25, 1.0]);
    let row = implicit_em_lab::core::eval::point_row(&problem, &state, 0).unwrap();
    let x = problem.point(0);
    let mu = state.prototype(0);
    let v = [x[0] - mu[0], x[1] - mu[1]];
    let z = [2.0 * v[0] + 0.5 * v[1], -0.25 * v[0] + v[1]];
    let d = 0.5 * (z[0] * z[0] + z[1] * z[1]);
    let det: f64 = 2.0 * 1.0 + 0.5 * 0.25;
    let want = d + 0.5 * (-det.ln() - state.log_mixing()[0]);
    assert!((row.energies[0] - want).abs() < 1e-14, "{} vs {want}", row.energies[0]);
    assert!((row.distances[0] - d).abs() < 1e-14);
}

#[test]
fn scatter_fast_equals_plain_for_every_structure() {
    for regime in regimes() {
        for structure in Structure::ALL {
            let mut case = Case::new(regime, 3, 9);
            case.n = 5000; // several chunks of the fast path
            case.learn_scales = true;
            let (problem, state) = random_metric_case(&case, structure, Form::Prototype);
            let centres: Vec<f64> = state.prototypes.iter().map(|v| v + 0.3).collect();
            let (a, b) = (
                scatter(&problem, &state, &centres),
                scatter_rows(&problem, &state, &centres),
            );
            let what = format!("{regime:?} {structure:?}");
            assert_close(&a.mass, &b.mass, 1e-12, &format!("{what} mass"));
            assert_close(&a.sq, &b.sq, 1e-12, &format!("{what} sq"));
            assert_close(&a.second, &b.second, 1e-12, &format!("{what} second"));
            assert_eq!(a.second.is_empty(), !structure.has_maps());
            let fast = evaluate(&problem, &state);
            let plain = evaluate_rows(&problem, &state);
            assert_paths_agree(&fast, &plain, &what);
        }
    }
}

/// scikit-learn's M-step for `GaussianMixture`, written out from its source
/// (`_estimate_gaussian_parameters`): `nk = Σ r + 10 ε`, means `rᵀX / nk`, covariances per type
/// plus `reg_covar`; returned as (weights, means, covariances `K × D × D`).
fn sklearn_m_step(
    x: &[f64],
    d: usize,
    resp: &[f64],
    k: usize,
    kind: Structure,
    reg: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let nk: Vec<f64> = (0..k)
        .map(|j| (0..n).map(|i| resp[i * k + j]).sum::<f64>() + 10.0 * f64::EPSILON)
        .collect();
    let mut means = vec![0.0; k * d];
    for j in 0..k {
        for c in 0..d {
            means[j * d + c] = (0..n).map(|i| resp[i * k + j] * x[i * d + c]).sum::<f64>() / nk[j];
        }
    }
    let full = |j: usize| -> Vec<f64> {
        let mut cov = vec![0.0; d * d];
        for i in 0..n {
            for r in 0..d {
                for c in 0..d {
                    cov[r * d + c] +=
                        resp[i * k + j] * (x[i * d + r] - means[j * d + r]) * (x[i * d + c] - means[j * d + c]);
                }
            }
        }
        cov.iter().map(|v| v / nk[j]).collect()
    };
    let mut covs = vec![0.0; k * d * d];
    match kind {
        Structure::Full => {
            for j in 0..k {
                let mut c = full(j);
                for r in 0..d {
                    c[r * d + r] += reg;
                }
                covs[j * d * d..(j + 1) * d * d].copy_from_slice(&c);
            }
        }
        Structure::Diag | Structure::Spherical => {
            for j in 0..k {
                let c = full(j);
                let diag: Vec<f64> = (0..d).map(|r| c[r * d + r] + reg).collect();
                let mean = diag.iter().sum::<f64>() / d as f64;
                for r in 0..d {
                    covs[j * d * d + r * d + r] = if kind == Structure::Spherical { mean } else { diag[r] };
                }
            }
        }
        Structure::Tied => {
            let total: f64 = nk.iter().sum();
            let mut c = vec![0.0; d * d];
            for j in 0..k {
                for (t, v) in c.iter_mut().zip(full(j)) {
                    *t += v * nk[j] / total;
                }
            }
            for r in 0..d {
                c[r * d + r] += reg;
            }
            for j in 0..k {
                covs[j * d * d..(j + 1) * d * d].copy_from_slice(&c);
            }
        }
    }
    let total: f64 = nk.iter().sum();
    (nk.iter().map(|v| v / total).collect(), means, covs)
}

/// The responsibilities of a Gaussian mixture, written out: `log π_j + log N(x; μ_j, Σ_j)`
/// normalised with the maximum subtracted.
fn gaussian_responsibilities(x: &[f64], d: usize, weights: &[f64], means: &[f64], covs: &[f64]) -> Vec<f64> {
    let n = x.len() / d;
    let k = weights.len();
    let mut resp = vec![0.0; n * k];
    for i in 0..n {
        let logs: Vec<f64> = (0..k)
            .map(|j| {
                let c = &covs[j * d * d..(j + 1) * d * d];
                let inv = metric::spd_inverse(c, d).unwrap();
                let v: Vec<f64> = (0..d).map(|r| x[i * d + r] - means[j * d + r]).collect();
                let q: f64 = (0..d)
                    .map(|r| (0..d).map(|s| v[r] * inv[r * d + s] * v[s]).sum::<f64>())
                    .sum();
                let logdet = 2.0 * metric::log_abs_det(&metric::cholesky_upper(c, d).unwrap(), d);
                weights[j].ln() - 0.5 * (q + logdet)
            })
            .collect();
        let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = logs.iter().map(|l| (l - m).exp()).sum();
        for j in 0..k {
            resp[i * k + j] = (logs[j] - m).exp() / s;
        }
    }
    resp
}

#[test]
fn em_is_scikit_learns_em_for_every_covariance_type() {
    for kind in Structure::ALL {
        for dim in [1usize, 2, 3] {
            let mut case = Case::new(Regime::Mixture, dim, 40 + dim as u64);
            case.n = 60;
            case.temperature = 1.0;
            case.learn_scales = true;
            case.learn_weights = true;
            let (mut problem, mut state) = random_metric_case(&case, kind, Form::Prototype);
            problem.spec.settings.reg_covar = 1e-3;
            if kind == Structure::Spherical {
                state.log_scales = (0..state.k).map(|j| 0.2 * j as f64 - 0.3).collect();
            }
            let x = problem.points.to_vec();
            let k = state.k;
            let cov_of = |s: &State| -> Vec<f64> { (0..k).flat_map(|j| s.covariance(j, 1.0).unwrap()).collect() };
            let (mut w, mut m, mut c) = (state.mixing(), state.prototypes.clone(), cov_of(&state));
            for step in 1..=10 {
                let eval = evaluate_em(&problem, &state);
                state = em_step(&problem, &state, &eval);
                let resp = gaussian_responsibilities(&x, dim, &w, &m, &c);
                (w, m, c) = sklearn_m_step(&x, dim, &resp, k, kind, 1e-3);
                let what = format!("{kind:?} D={dim} step {step}");
                assert_close(&state.mixing(), &w, 1e-12, &format!("{what} weights"));
                assert_close(&state.prototypes, &m, 1e-12, &format!("{what} means"));
                assert_close(&cov_of(&state), &c, 1e-12, &format!("{what} covariances"));
            }
        }
    }
}

#[test]
fn em_never_raises_its_objective_with_any_metric() {
    for regime in [Regime::Mixture, Regime::CrossEntropy] {
        for kind in Structure::ALL {
            let mut case = Case::new(regime, 2, 77);
            case.n = 200;
            case.learn_scales = true;
            case.learn_weights = true;
            let (problem, mut state) = random_metric_case(&case, kind, Form::Prototype);
            let mut before = evaluate_em(&problem, &state).em_objective;
            for step in 0..40 {
                let eval = evaluate_em(&problem, &state);
                state = em_step(&problem, &state, &eval);
                let after = evaluate_em(&problem, &state).em_objective;
                assert!(
                    after <= before + 1e-9 * before.abs().max(1.0),
                    "{regime:?} {kind:?} step {step}: {before} → {after}"
                );
                before = after;
            }
        }
    }
}

#[test]
fn the_em_preconditioned_mean_step_lands_on_em_means() {
    for kind in MAP_STRUCTURES {
        let mut case = Case::new(Regime::Mixture, 3, 3);
        case.n = 80;
        let (problem, state) = random_metric_case(&case, kind, Form::Prototype);
        let eval = evaluate(&problem, &state);
        let gd = gd_step(&problem, &state, &eval, 1.0, RateMode::Em);
        let em = em_step(&problem, &state, &evaluate_em(&problem, &state));
        assert_close(&gd.prototypes, &em.prototypes, 1e-12, &format!("{kind:?}"));
        // At η = 0.25 a quarter of the way.
        let quarter = gd_step(&problem, &state, &eval, 0.25, RateMode::Em);
        let want: Vec<f64> = state
            .prototypes
            .iter()
            .zip(&em.prototypes)
            .map(|(a, b)| a + 0.25 * (b - a))
            .collect();
        assert_close(&quarter.prototypes, &want, 1e-12, &format!("{kind:?} η = 0.25"));
    }
}

#[test]
fn neural_and_prototype_forms_share_energies_but_not_paths() {
    let mut case = Case::new(Regime::Mixture, 2, 12);
    case.learn_scales = true;
    let (proto, state) = random_metric_case(&case, Structure::Full, Form::Prototype);
    let (neural, _) = random_metric_case(&case, Structure::Full, Form::Neural);
    let (a, b) = (evaluate(&proto, &state), evaluate(&neural, &state));
    assert_eq!(a.loss, b.loss);
    let (sa, sb) = (
        gd_step(&proto, &state, &a, 0.1, RateMode::Shared),
        gd_step(&neural, &state, &b, 0.1, RateMode::Shared),
    );
    let apart: f64 = sa
        .prototypes
        .iter()
        .zip(&sb.prototypes)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(apart > 1e-4, "the paths differ: {apart}");
    // The neural step is plain gradient descent on (W, b): b' = b − η ∂J/∂b, μ' = −W'⁻¹ b'.
    for j in 0..state.k {
        let w = state.map(j);
        let b: Vec<f64> = metric::apply(w, 2, state.prototype(j)).iter().map(|v| -v).collect();
        let b_new: Vec<f64> = (0..2)
            .map(|c| b[c] - 0.1 * b_grad(&b, j, c, &neural_eval(&neural, &state)))
            .collect();
        let w_new = sb.map(j);
        let b_of_new: Vec<f64> = metric::apply(w_new, 2, sb.prototype(j)).iter().map(|v| -v).collect();
        assert_close(&b_of_new, &b_new, 1e-12, "b");
    }
    // EM's path is the same for both forms.
    let ea = em_step(&proto, &state, &evaluate_em(&proto, &state));
    let eb = em_step(&neural, &state, &evaluate_em(&neural, &state));
    assert_eq!(ea, eb);
}

fn neural_eval(problem: &Problem, state: &State) -> implicit_em_lab::core::eval::Evaluation {
    evaluate(problem, state)
}

fn b_grad(_b: &[f64], j: usize, c: usize, eval: &implicit_em_lab::core::eval::Evaluation) -> f64 {
    eval.gradient.biases[j * 2 + c]
}

#[test]
fn the_authors_volume_identity_and_m_step_direction() {
    // |Σ|^{−1/2} = |det W| for Σ⁻¹ = WᵀW.
    let w = [1.5, 0.4, -0.2, 0.0, 0.8, 0.3, 0.1, -0.5, 1.2];
    let sigma = metric::covariance(&w, 3, 1.0).unwrap();
    let det_sigma = {
        let s = &sigma;
        s[0] * (s[4] * s[8] - s[5] * s[7]) - s[1] * (s[3] * s[8] - s[5] * s[6]) + s[2] * (s[3] * s[7] - s[4] * s[6])
    };
    let det_w =
        w[0] * (w[4] * w[8] - w[5] * w[7]) - w[1] * (w[3] * w[8] - w[5] * w[6]) + w[2] * (w[3] * w[7] - w[4] * w[6]);
    assert!((det_sigma.powf(-0.5) - det_w.abs()).abs() < 1e-13);
    // One point, T = 1, V = 1, neural form: ∂F/∂W_j = r_j (z_j xᵀ − W_j^{−T}).
    let mut case = Case::new(Regime::Mixture, 3, 8);
    case.n = 1;
    case.temperature = 1.0;
    case.learn_scales = true;
    let (problem, state) = random_metric_case(&case, Structure::Full, Form::Neural);
    let eval = evaluate(&problem, &state);
    let row = implicit_em_lab::core::eval::point_row(&problem, &state, 0).unwrap();
    let x = problem.point(0);
    for j in 0..state.k {
        let wj = state.map(j);
        let b: Vec<f64> = metric::apply(wj, 3, state.prototype(j)).iter().map(|v| -v).collect();
        let z: Vec<f64> = metric::apply(wj, 3, x).iter().zip(&b).map(|(a, c)| a + c).collect();
        let winvt = metric::inverse_transpose(wj, 3).unwrap();
        let r = row.responsibilities[j];
        let want: Vec<f64> = (0..9).map(|e| r * (z[e / 3] * x[e % 3] - winvt[e])).collect();
        assert_close(
            &eval.gradient.maps[j * 9..(j + 1) * 9],
            &want,
            1e-12,
            &format!("component {j}"),
        );
    }
}

fn preset_session(name: &str) -> implicit_em_lab::session::Session {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets")
        .join(name);
    let p = implicit_em_lab::preset::load(&path).unwrap();
    p.validate().unwrap().build(path.parent().unwrap()).unwrap()
}

#[test]
fn metric_presets_reach_scikit_learns_likelihoods_and_warn_where_they_should() {
    // Old Faithful: EM from the preset's start reaches scikit-learn's full-covariance optimum;
    // no warning (its axes differ fifteenfold in units, which must not read as a singularity).
    let mut s = preset_session("old-faithful.ron");
    for _ in 0..300 {
        s.step().unwrap().unwrap();
    }
    let e = s.experiment();
    let n = e.problem().len() as f64;
    let ll = -n * (e.latest().em.em_objective + (2.0 * std::f64::consts::PI).ln());
    assert!((ll - -1130.264).abs() < 1e-3, "full log-likelihood {ll}");
    assert!(e.latest().warnings.is_empty(), "{:?}", e.latest().warnings);
    // The twin's spherical components from the same states: scikit-learn's −1709.53.
    let mut twin = e.clone();
    twin.set_structure(Structure::Spherical);
    for _ in 0..300 {
        twin.step().unwrap();
    }
    let ll = -n * (twin.latest().em.em_objective + (2.0 * std::f64::consts::PI).ln());
    assert!((ll - -1709.529).abs() < 1e-2, "spherical log-likelihood {ll}");
    // Collinear points: EM's component on the line is held at reg_covar along its normal, and
    // says so; gradient descent's log|det W| of it keeps rising.
    let mut s = preset_session("collinear.ron");
    let mut volumes = Vec::new();
    for step in 0..400 {
        s.step().unwrap().unwrap();
        if step % 100 == 99 {
            volumes.push(metric::log_abs_det(s.experiment().gd_state().map(0), 2));
        }
    }
    let last = s.experiment().latest();
    assert!(
        last.warnings
            .iter()
            .any(|w| w.starts_with("EM: component 0's covariance is near singular (variance 1.000e-4")),
        "{:?}",
        last.warnings
    );
    assert!(
        volumes.windows(2).all(|w| w[1] > w[0]),
        "GD's log|det W_0| rises: {volumes:?}"
    );
    let em_cov = s.experiment().em_state().covariance(0, 1.0).unwrap();
    let smallest = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(2, 2, &em_cov))
        .eigenvalues
        .min();
    assert!((smallest - 1e-4).abs() < 1e-9, "EM's smallest variance {smallest}");
}

#[test]
fn the_scale_step_loses_no_digits_when_a_prototype_starts_far_away() {
    // Points near 1e4 with spread 1e-2 and a prototype at the origin: Σ r‖x − μ‖² ≈ 1e8 per point
    // against Σ r‖x − m‖² ≈ 1e-4, so the one-pass difference would lose about twelve digits.
    for (offset, prototype) in [(1e4, 0.0), (3.0, 3.0)] {
        let mut case = Case::new(Regime::Mixture, 2, 31);
        case.k = 1;
        case.n = 300;
        case.temperature = 1.0;
        case.learn_scales = true;
        let (mut problem, mut state) = common::random_case(&case);
        let pts: Vec<f64> = problem.points.iter().map(|v| offset + 0.005 * v).collect();
        problem.points = std::sync::Arc::new(pts);
        state.prototypes = vec![prototype; 2];
        state.log_scales = vec![0.0];
        let next = em_step(&problem, &state, &evaluate_em(&problem, &state));
        // Two passes, written out: the mean, then the squared deviations about it.
        let n = problem.len();
        let mean: Vec<f64> = (0..2)
            .map(|d| (0..n).map(|i| problem.point(i)[d]).sum::<f64>() / n as f64)
            .collect();
        let ss: f64 = (0..n)
            .map(|i| (0..2).map(|d| (problem.point(i)[d] - mean[d]).powi(2)).sum::<f64>())
            .sum();
        let want = ss / (2.0 * n as f64) + problem.spec.settings.reg_covar;
        let got = next.log_scales[0].exp();
        assert!((got - want).abs() <= 1e-12 * want, "offset {offset}: {got} vs {want}");
    }
}

#[test]
fn the_full_metric_step_loses_no_digits_when_a_prototype_starts_far_away() {
    for (offset, prototype) in [(1e4, 0.0), (3.0, 3.0)] {
        let mut case = Case::new(Regime::Mixture, 2, 32);
        case.k = 1;
        case.n = 300;
        case.temperature = 1.0;
        case.learn_scales = true;
        let (mut problem, _) = random_metric_case(&case, Structure::Full, Form::Prototype);
        let pts: Vec<f64> = problem
            .points
            .iter()
            .enumerate()
            .map(|(e, v)| offset + 0.005 * v * (1.0 + (e % 2) as f64))
            .collect();
        problem.points = std::sync::Arc::new(pts);
        let (_, mut state) = random_metric_case(&case, Structure::Full, Form::Prototype);
        state.prototypes = vec![prototype; 2];
        state.maps = metric::scaled_identity(2, 1.0);
        // Twice: the first from the experiment's full evaluation, the second from EM's own.
        let mut s = state;
        for _ in 0..2 {
            s = em_step(&problem, &s, &evaluate_em(&problem, &s));
        }
        let n = problem.len();
        let mean: Vec<f64> = (0..2)
            .map(|d| (0..n).map(|i| problem.point(i)[d]).sum::<f64>() / n as f64)
            .collect();
        let mut want = [0.0; 4];
        for i in 0..n {
            let v = [problem.point(i)[0] - mean[0], problem.point(i)[1] - mean[1]];
            for e in 0..4 {
                want[e] += v[e / 2] * v[e % 2] / n as f64;
            }
        }
        want[0] += problem.spec.settings.reg_covar;
        want[3] += problem.spec.settings.reg_covar;
        let got = s.covariance(0, 1.0).unwrap();
        assert_close(&got, &want, 1e-11, &format!("offset {offset}"));
    }
}

#[test]
fn metric_gradients_hold_with_the_reject_option_and_semi_supervision() {
    for structure in [Structure::Full, Structure::Tied] {
        for form in [Form::Prototype, Form::Neural] {
            for (regime, semi, background) in [(Regime::Mixture, false, Some(1.5)), (Regime::CrossEntropy, true, None)]
            {
                let mut case = Case::new(regime, 3, 61);
                case.learn_scales = true;
                case.learn_weights = true;
                case.n = 30;
                let (mut problem, state) = random_metric_case(&case, structure, form);
                problem.spec.settings.semi_supervised = semi;
                problem.spec.settings.reject_energy = background;
                if semi {
                    let mut labels = problem.labels.to_vec();
                    labels.iter_mut().step_by(3).for_each(|l| *l = None);
                    problem.labels = std::sync::Arc::new(labels);
                }
                let fast = evaluate(&problem, &state);
                let what = format!("{structure:?} {form:?} {regime:?} semi={semi} background={background:?}");
                assert_paths_agree(&fast, &evaluate_rows(&problem, &state), &what);
                let dual = reference::parameter_gradient(&problem, &state, Derivative::Dual);
                assert_close(&fast.gradient.maps, &dual.maps, 1e-11, &format!("{what} ∂J/∂W"));
                assert_close(
                    &fast.gradient.prototypes,
                    &dual.prototypes,
                    1e-11,
                    &format!("{what} ∂J/∂μ"),
                );
                if form == Form::Neural {
                    assert_close(&fast.gradient.biases, &dual.biases, 1e-11, &format!("{what} ∂J/∂b"));
                }
            }
        }
    }
}

#[test]
fn without_the_volume_term_the_maps_collapse_and_say_so() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets")
        .join("anisotropic-blobs.ron");
    let mut p = implicit_em_lab::preset::load(&path).unwrap();
    p.learn.volume = false;
    p.twin = None;
    p.rate = implicit_em_lab::core::model::RateMode::Shared;
    p.learning_rate = 0.02;
    let mut s = p.validate().unwrap().build(path.parent().unwrap()).unwrap();
    let start = metric::log_abs_det(s.experiment().gd_state().map(0), 2);
    let mut warned = false;
    for _ in 0..400 {
        s.step().unwrap().unwrap();
        warned |= s
            .experiment()
            .latest()
            .warnings
            .iter()
            .any(|w| w.starts_with("GD: component") && w.contains("metric is collapsing"));
    }
    let end = metric::log_abs_det(s.experiment().gd_state().map(0), 2);
    assert!(end < start - 3.0, "log|det W_0| {start} → {end}");
    assert!(warned, "{:?}", s.experiment().latest().warnings);
    // The responsibilities go uniform: every point's entropy approaches ln K.
    let h = s.experiment().gd_evaluation().mean_entropy;
    assert!(h > 0.9 * 3f64.ln(), "mean entropy {h}");
}

#[test]
fn the_neural_form_with_fixed_maps_steps_the_biases_alone() {
    // W fixed (the metric not learned): b' = b − η ∂J/∂b moves the centre by −W⁻¹Δb = −η P⁻¹ ∂J/∂μ.
    let mut case = Case::new(Regime::Mixture, 2, 14);
    case.learn_scales = false;
    let (problem, state) = random_metric_case(&case, Structure::Full, Form::Neural);
    let eval = evaluate(&problem, &state);
    assert!(eval.gradient.maps.is_empty() && !eval.gradient.biases.is_empty());
    let next = gd_step(&problem, &state, &eval, 0.1, RateMode::Shared);
    assert_eq!(next.maps, state.maps);
    for j in 0..state.k {
        let p = metric::precision(state.map(j), 2);
        let step = metric::apply(
            &metric::spd_inverse(&p, 2).unwrap(),
            2,
            &eval.gradient.prototypes[j * 2..j * 2 + 2],
        );
        let want = [
            state.prototype(j)[0] - 0.1 * step[0],
            state.prototype(j)[1] - 0.1 * step[1],
        ];
        assert_close(next.prototype(j), &want, 1e-12, &format!("component {j}"));
    }
}

#[test]
fn explicit_scales_start_the_maps() {
    let p = implicit_em_lab::preset::parse(
        "(name: \"t\", objective: Mixture, temperature: 1.0, learning_rate: 0.1, metric: Full,
          data: Inline(points: [[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]]),
          prototypes: Explicit(positions: [[0.0, 0.0], [1.0, 1.0]], scales: [4.0, 0.25]))",
        "test",
    )
    .unwrap();
    let s = p.validate().unwrap().build(std::path::Path::new(".")).unwrap();
    let st = s.experiment().gd_state();
    assert_eq!(st.map(0), &[0.5, 0.0, 0.0, 0.5]);
    assert_eq!(st.map(1), &[2.0, 0.0, 0.0, 2.0]);
    assert_eq!(st.log_scales, vec![0.0, 0.0]);
}

#[test]
fn spherical_components_in_the_neural_form_match_dual_numbers_and_step_as_a_linear_layer() {
    for regime in regimes() {
        for dim in [1usize, 2, 3, 5] {
            for volume in [true, false] {
                for learn in [true, false] {
                    let mut case = Case::new(regime, dim, 70 + dim as u64);
                    case.learn_scales = learn;
                    case.learn_weights = true;
                    case.volume = volume;
                    case.n = 25;
                    let (mut problem, state) = common::random_case(&case);
                    problem.spec.settings.form = Form::Neural;
                    let fast = evaluate(&problem, &state);
                    let what = format!("{regime:?} D={dim} V={volume} learn={learn}");
                    assert_paths_agree(&fast, &evaluate_rows(&problem, &state), &what);
                    let dual = reference::parameter_gradient(&problem, &state, Derivative::Dual);
                    assert_close(&fast.gradient.biases, &dual.biases, 1e-11, &format!("{what} ∂J/∂b"));
                    assert_close(&fast.gradient.maps, &dual.maps, 1e-11, &format!("{what} ∂J/∂w"));
                    assert_eq!(fast.gradient.maps.len(), if learn { state.k } else { 0 });
                    // One step: w' = w − η ∂J/∂w, b' = b − η ∂J/∂b, μ' = −b'/w', s' = w'^{−2}.
                    let next = gd_step(&problem, &state, &fast, 0.01, RateMode::Shared);
                    for j in 0..state.k {
                        let w = (-0.5 * state.log_scales[j]).exp();
                        let w1 = w - if learn { 0.01 * fast.gradient.maps[j] } else { 0.0 };
                        assert!((next.log_scales[j] - (-2.0 * w1.abs().ln())).abs() < 1e-12, "{what}");
                        for c in 0..dim {
                            let b1 = -w * state.prototype(j)[c] - 0.01 * fast.gradient.biases[j * dim + c];
                            assert!((next.prototype(j)[c] - -b1 / w1).abs() < 1e-12, "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn em_never_rises_on_any_metric_preset() {
    for name in [
        "old-faithful.ron",
        "anisotropic-blobs.ron",
        "collinear.ron",
        "neural-vs-prototype.ron",
    ] {
        let mut s = preset_session(name);
        let mut before = s.experiment().latest().em.em_objective;
        for step in 1..=200 {
            s.step().unwrap().unwrap();
            let rec = s.experiment().latest();
            let after = rec.em.em_objective;
            assert!(
                after <= before + 1e-9 * before.abs().max(1.0),
                "{name} step {step}: {before} → {after}"
            );
            assert!(
                !rec.warnings.iter().any(|w| w.contains("EM never increases it")),
                "{name}: {:?}",
                rec.warnings
            );
            before = after;
        }
    }
}
