//! The normalisation boundary: a sum of independent kernels beside the log-sum-exp objective.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;

use common::{Case, assert_paths_agree, random_case};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::lanes::CHUNK;
use implicit_em_lab::core::eval::{evaluate, evaluate_rows, point_row};
use implicit_em_lab::core::model::{ModelSpec, Regime, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::Derivative;
use implicit_em_lab::preset::{self, parse};

#[test]
fn kernel_sums_are_checked_and_the_fast_path_agrees() {
    for dim in [1, 2, 5] {
        for background in [None, Some(2.0)] {
            let mut case = Case::new(Regime::Mixture, dim, 90 + dim as u64);
            case.learn_weights = true;
            case.learn_scales = true;
            case.n = CHUNK + 21;
            let (mut problem, state) = random_case(&case);
            problem.spec.settings.unnormalised = true;
            problem.spec.settings.reject_energy = background;
            for row in check(&problem, &state, Derivative::Dual, None) {
                assert!(row.passed(), "D = {dim}: {row:?}");
            }
            let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
            assert_paths_agree(&f, &p, &format!("D = {dim}, background {background:?}"));
            // The kernel weights do not sum to one; the EM run's objective is still the free energy.
            let row = point_row(&problem, &state, 0).unwrap();
            let sum: f64 = row.energy_gradient.iter().sum();
            assert!((sum - 1.0).abs() > 1e-3, "Σ_j e^(−E_j/T) = {sum}");
            problem.spec.settings.unnormalised = false;
            let normalised = evaluate(&problem, &state);
            assert!((normalised.em_objective - f.em_objective).abs() < 1e-12 * f.em_objective.abs().max(1.0));
        }
    }
}

#[test]
fn far_points_stop_pulling() {
    // One point at distance d from the only prototype (s = 1, π = 1, V: ρ = 0): E = d²/2.
    // Sum of kernels: ∂J/∂μ = e^{−E/T}(μ − x); log-sum-exp: r = 1, so ∂J/∂μ = μ − x whatever d is.
    for d in [0.5, 3.0, 12.0] {
        let mut data = Dataset {
            dim: 1,
            ..Dataset::default()
        };
        data.push(&[0.0], None, &[]);
        let mut spec = ModelSpec::new(Regime::Mixture, 1.0);
        spec.settings.unnormalised = true;
        let problem = Problem::bind(data.clone(), spec.clone()).unwrap();
        let state = State::new(1, vec![d], 0);
        let g = evaluate(&problem, &state).gradient.prototypes[0];
        let expected = (-d * d / 2.0_f64).exp() * d;
        assert!(
            (g - expected).abs() <= 1e-15 * expected.max(1e-300),
            "d = {d}: {g} vs {expected}"
        );
        spec.settings.unnormalised = false;
        let problem = Problem::bind(data, spec).unwrap();
        let g = evaluate(&problem, &state).gradient.prototypes[0];
        assert!((g - d).abs() < 1e-14, "d = {d}: {g}");
    }
}

#[test]
fn without_normalisation_nothing_competes_and_prototypes_pile_up() {
    let p = preset::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/normalisation-boundary.ron")).unwrap();
    let mut exp = p.validate().unwrap().build(Path::new(".")).unwrap().into_experiment();
    exp.run(300).unwrap();
    let dist = |s: &State, a: usize, b: usize| {
        s.prototype(a)
            .iter()
            .zip(s.prototype(b))
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    // Gradient descent on the sum of kernels: both left prototypes on the same mode.
    assert!(dist(exp.gd_state(), 0, 1) < 1e-6, "{}", dist(exp.gd_state(), 0, 1));
    // EM on the normalised objective: they share the cloud.
    assert!(dist(exp.em_state(), 0, 1) > 0.8, "{}", dist(exp.em_state(), 0, 1));
    // With normalisation gradient descent competes too.
    let mut q = p.clone();
    q.unnormalised = false;
    let mut exp = q.validate().unwrap().build(Path::new(".")).unwrap().into_experiment();
    exp.run(300).unwrap();
    assert!(dist(exp.gd_state(), 0, 1) > 0.8, "{}", dist(exp.gd_state(), 0, 1));
}

#[test]
fn the_sum_of_kernels_is_a_mixture_variant_only() {
    let text = "(name: \"u\", objective: Attention(), temperature: 1.0, learning_rate: 0.5,
                data: Wave(n: 50, noise: 0.1), prototypes: KMeansPlusPlus(k: 2), unnormalised: true)";
    let e = parse(text, "u.ron").unwrap().validate().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("unnormalised"));
}
