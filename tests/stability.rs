//! Extreme inputs: tiny temperatures, huge distances, a single component or point, duplicates.
//! Every number stays finite and exact where the exact answer is known.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::{evaluate, point_row};
use implicit_em_lab::core::experiment::Experiment;
use implicit_em_lab::core::model::Optimiser;
use implicit_em_lab::core::model::RateMode;
use implicit_em_lab::core::model::{ModelSpec, Regime, Score, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::Derivative;

fn problem(points: Vec<f64>, dim: usize, labels: Vec<Option<u32>>, regime: Regime, t: f64) -> Problem {
    let n = labels.len();
    let data = Dataset {
        dim,
        points,
        labels,
        target_dim: 1,
        targets: (0..n).map(|i| i as f64).collect(),
        ..Dataset::default()
    };
    let mut spec = ModelSpec::new(regime, t);
    if regime == Regime::CrossEntropy {
        spec.classes = vec![0, 1];
    }
    Problem::bind(data, spec).unwrap()
}

fn assert_all_finite(exp: &Experiment) {
    let rec = exp.latest();
    assert!(rec.gd.loss.is_finite() && rec.em.loss.is_finite(), "{rec:?}");
    assert!(rec.identity_residual.is_finite());
    assert!(exp.gd_state().non_finite_block().is_none());
    assert!(exp.em_state().non_finite_block().is_none());
}

#[test]
fn tiny_temperature_and_huge_distances() {
    // Two points 1e6 apart, T = 1e-6: exp(−E/T) would be exp(−1e18) unshifted.
    for regime in [
        Regime::Mixture,
        Regime::CrossEntropy,
        Regime::Attention { score: Score::Distance },
    ] {
        let p = problem(vec![-5e5, 5e5], 1, vec![Some(0), Some(1)], regime, 1e-6);
        let state = State::new(1, vec![-5e5 + 1.0, 5e5 - 1.0], p.target_dim);
        let row = point_row(&p, &state, 0).unwrap();
        assert_eq!(row.responsibilities, vec![1.0, 0.0]);
        // F = min_j E_j exactly here (the other term underflows to 0): E_0 = ½ + T log 2.
        assert!(
            (row.free_energy - (0.5 + 1e-6 * 2f64.ln())).abs() < 1e-12,
            "{}",
            row.free_energy
        );
        let rows = check(&p, &state, Derivative::Dual, None);
        assert!(rows.iter().all(|r| r.passed()), "{regime:?}: {rows:?}");
        let mut exp = Experiment::new(
            p,
            state,
            Optimiser {
                learning_rate: 0.5,
                rate: RateMode::Shared,
            },
        )
        .unwrap();
        exp.run(20).unwrap();
        assert_all_finite(&exp);
        // Each prototype converges on its own point: EM in one step; GD takes the fraction
        // α = η N_j/(N s) = 0.5·1/2 = 0.25 of the gap each step, so the gap is 0.75^20.
        if regime == Regime::Mixture {
            assert!((exp.em_state().prototypes[0] + 5e5).abs() < 1e-9);
            let gap = exp.gd_state().prototypes[0] + 5e5;
            assert!((gap - 0.75f64.powi(20)).abs() < 1e-8, "gap {gap}");
        }
    }
}

#[test]
fn distances_of_a_million_with_moderate_temperature() {
    let p = problem(vec![0.0, 0.0, 1e6, 1e6], 2, vec![None, None], Regime::Mixture, 1.0);
    let state = State::new(2, vec![1.0, 1.0, 2.0, 2.0], 0);
    let eval = evaluate(&p, &state);
    assert!(eval.loss.is_finite());
    // The far point's distances are ~1e12: it belongs entirely to the nearer prototype 1.
    let far = point_row(&p, &state, 1).unwrap();
    assert_eq!(far.responsibilities, vec![0.0, 1.0]);
    let mut exp = Experiment::new(
        p,
        state,
        Optimiser {
            learning_rate: 1.0,
            rate: RateMode::Em,
        },
    )
    .unwrap();
    exp.run(5).unwrap();
    assert_all_finite(&exp);
    assert!((exp.em_state().prototypes[2] - 1e6).abs() < 1e-6);
}

#[test]
fn one_component_one_point() {
    let p = problem(vec![3.0, -1.0], 2, vec![Some(0)], Regime::Mixture, 0.25);
    let state = State::new(2, vec![0.0, 0.0], 0);
    let row = point_row(&p, &state, 0).unwrap();
    assert_eq!(row.responsibilities, vec![1.0]);
    assert_eq!(row.entropy, 0.0);
    // K = 1: F = E = ||x − μ||²/2 = 5 (log π = 0, ρ = 0).
    assert!((row.free_energy - 5.0).abs() < 1e-15);
    let mut exp = Experiment::new(
        p,
        state,
        Optimiser {
            learning_rate: 1.0,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    exp.step().unwrap();
    // η = 1, N_j = N = 1, s = 1: one GD step lands on the point, as does EM.
    assert_eq!(exp.gd_state().prototypes, vec![3.0, -1.0]);
    assert_eq!(exp.em_state().prototypes, vec![3.0, -1.0]);
    assert!((exp.latest().effective_components.gd - 1.0).abs() < 1e-15);
}

#[test]
fn duplicate_points_and_coincident_prototypes() {
    let p = problem(vec![1.0; 10], 2, vec![None; 5], Regime::Mixture, 1.0);
    let state = State::new(2, vec![0.0, 0.0, 0.0, 0.0], 0);
    let rows = check(&p, &state, Derivative::Dual, None);
    assert!(rows.iter().all(|r| r.passed()), "{rows:?}");
    let row = point_row(&p, &state, 0).unwrap();
    assert_eq!(row.responsibilities, vec![0.5, 0.5]);
    let mut spec_scales = p.clone();
    spec_scales.spec.settings.learn_scales = true;
    spec_scales.spec.settings.learn_weights = true;
    let mut exp = Experiment::new(
        spec_scales,
        state,
        Optimiser {
            learning_rate: 0.5,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    exp.run(30).unwrap();
    assert_all_finite(&exp);
    // EM puts both prototypes on the duplicates with zero spread: the scale hits its floor.
    let em = exp.em_state();
    assert_eq!(em.prototypes, vec![1.0; 4]);
    assert!((em.scales()[0] - 1e-6).abs() < 1e-18);
    assert!(
        exp.latest()
            .warnings
            .iter()
            .any(|w| w.contains("EM: scale of component 0 is at its floor")),
        "{:?}",
        exp.latest().warnings
    );
}

#[test]
fn dead_component_is_reported_and_stays_finite() {
    let p = problem(vec![0.0, 0.1, -0.1], 1, vec![None; 3], Regime::Mixture, 0.01);
    let state = State::new(1, vec![0.0, 1e3], 0);
    let mut exp = Experiment::new(
        p.clone(),
        state,
        Optimiser {
            learning_rate: 0.5,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    assert!(
        exp.latest().warnings.iter().any(|w| w.contains("component 1 is dead")),
        "{:?}",
        exp.latest().warnings
    );
    let mut with_weights = p;
    with_weights.spec.settings.learn_weights = true;
    exp = Experiment::new(
        with_weights,
        State::new(1, vec![0.0, 1e3], 0),
        Optimiser {
            learning_rate: 0.5,
            rate: RateMode::Em,
        },
    )
    .unwrap();
    exp.run(10).unwrap();
    assert_all_finite(&exp);
    // The dead prototype does not move under EM (no mass) nor under EM-rate GD.
    assert_eq!(exp.em_state().prototypes[1], 1e3);
    assert_eq!(exp.gd_state().prototypes[1], 1e3);
}

#[test]
fn non_finite_step_pauses_and_keeps_the_last_good_state() {
    let p = problem(vec![-1.0, 1.0, 50.0], 1, vec![None; 3], Regime::Mixture, 1.0);
    let state = State::new(1, vec![0.0, 2.0], 0);
    let mut exp = Experiment::new(
        p,
        state,
        Optimiser {
            learning_rate: 1e308,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    let before = exp.gd_state().clone();
    let err = exp.step().unwrap_err();
    assert_eq!(err.step, 1);
    assert!(err.reason.contains("non-finite"), "{}", err.reason);
    assert_eq!(exp.gd_state(), &before);
    assert_eq!(exp.step_count(), 0);
    assert_eq!(exp.trace().len(), 1);
}

#[test]
fn a_bounded_history_stays_bounded_and_spread_over_the_run() {
    let p = problem(vec![-1.0, 1.0, 3.0], 1, vec![None; 3], Regime::Mixture, 1.0);
    let mut exp = Experiment::new(
        p,
        State::new(1, vec![0.0, 2.0], 0),
        Optimiser {
            learning_rate: 0.1,
            rate: RateMode::Shared,
        },
    )
    .unwrap();
    exp.set_history_limit(Some(16));
    exp.run(1000).unwrap();
    let steps: Vec<usize> = exp.trace().iter().map(|r| r.step).collect();
    assert!(steps.len() <= 16, "{steps:?}");
    assert_eq!(steps[0], 0);
    assert_eq!(*steps.last().unwrap(), 1000);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    // Spread: some record from the first half of the run survives besides step 0.
    assert!(steps.iter().any(|&s| s > 0 && s < 500), "{steps:?}");
    // Without a limit (headless runs) every step is kept.
    exp.set_history_limit(None);
    exp.run(10).unwrap();
    assert_eq!(exp.trace().last().unwrap().step, 1010);
}
