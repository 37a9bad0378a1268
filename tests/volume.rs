//! Volume collapse and its remedies: the metric collapse without the volume term, the
//! single-point singularity with it, the scale floor, and the scale prior (a MAP objective
//! whose gradient and EM step are checked here).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Case, random_case};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::{evaluate, point_row};
use implicit_em_lab::core::experiment::Experiment;
use implicit_em_lab::core::model::Optimiser;
use implicit_em_lab::core::model::RateMode;
use implicit_em_lab::core::model::{ModelSpec, Regime, ScalePrior, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::Derivative;
use implicit_em_lab::core::step::em_step;

const PRIOR: ScalePrior = ScalePrior {
    strength: 3.0,
    scale: 0.8,
};

#[test]
fn the_prior_gradient_and_loss_match_dual_numbers() {
    for regime in [Regime::Mixture, Regime::CrossEntropy] {
        for volume in [true, false] {
            for dim in [1, 2, 5] {
                let mut case = Case::new(regime, dim, 40 + dim as u64);
                case.learn_scales = true;
                case.learn_weights = true;
                case.volume = volume;
                let (mut problem, state) = random_case(&case);
                problem.spec.settings.scale_prior = Some(PRIOR);
                for row in check(&problem, &state, Derivative::Dual, None) {
                    assert!(row.passed(), "{regime:?} V = {volume} D = {dim}: {row:?}");
                }
                // The penalty is in the loss: (T a / N) Σ (ln s + s₀/s) more than without it.
                let with = evaluate(&problem, &state).loss;
                problem.spec.settings.scale_prior = None;
                let without = evaluate(&problem, &state).loss;
                let n = problem.effective_n() as f64;
                let expected: f64 = state
                    .scales()
                    .iter()
                    .map(|s| case.temperature * 3.0 / n * (s.ln() + 0.8 / s))
                    .sum();
                assert!(
                    (with - without - expected).abs() < 1e-14,
                    "{} vs {expected}",
                    with - without
                );
            }
        }
    }
}

#[test]
fn the_em_scale_step_with_the_prior_is_the_map_step() {
    // Q(s) = Σ_i r_ij (‖x_i − m_j‖²/(2s) + V T (D/2) ln s) + T a (ln s + s₀/s): its derivative in s
    // vanishes at the new scale (r from the E-step, m the new prototype), with and without V.
    for volume in [true, false] {
        let mut case = Case::new(Regime::Mixture, 2, 7);
        case.learn_scales = true;
        case.volume = volume;
        let (mut problem, state) = random_case(&case);
        problem.spec.settings.scale_prior = Some(PRIOR);
        let eval = evaluate(&problem, &state);
        let next = em_step(&problem, &state, &eval);
        let t = problem.spec.settings.temperature;
        let v = if volume { 1.0 } else { 0.0 };
        for j in 0..state.k {
            let (mut sq, mut mass) = (0.0, 0.0);
            for i in 0..problem.len() {
                let r = point_row(&problem, &state, i).unwrap().responsibilities[j];
                let d2: f64 = problem
                    .point(i)
                    .iter()
                    .zip(next.prototype(j))
                    .map(|(x, m)| (x - m) * (x - m))
                    .sum();
                sq += r * d2;
                mass += r;
            }
            let dq = |s: f64| -sq / (2.0 * s * s) + v * t * mass / s + t * 3.0 * (1.0 / s - 0.8 / (s * s));
            let s = next.scales()[j];
            assert!(s.is_finite() && s > 0.0);
            assert!(
                dq(s).abs() < 1e-10 * (sq / (s * s)).max(1.0),
                "V = {volume}, j = {j}: dQ/ds = {}",
                dq(s)
            );
        }
    }
}

/// Two well-separated clouds and one isolated point, K = 3 components with learned scales, one
/// of them started on the isolated point.
fn singularity(volume: bool, prior: Option<ScalePrior>, floor: f64) -> Experiment {
    let mut data = Dataset {
        dim: 2,
        ..Dataset::default()
    };
    for i in 0..60 {
        let a = i as f64 * 0.7;
        data.push(&[-4.0 + a.cos(), a.sin()], None, &[]);
        data.push(&[4.0 + a.sin(), a.cos()], None, &[]);
    }
    data.push(&[0.0, 9.0], None, &[]);
    let mut spec = ModelSpec::new(Regime::Mixture, 1.0);
    spec.settings.learn_scales = true;
    spec.settings.volume = volume;
    spec.settings.scale_floor = floor;
    spec.settings.scale_prior = prior;
    let problem = Problem::bind(data, spec).unwrap();
    let state = State::new(2, vec![-4.0, 0.0, 4.0, 0.0, 0.0, 8.5], 0);
    Experiment::new(
        problem,
        state,
        Optimiser {
            learning_rate: 0.2,
            rate: RateMode::Shared,
        },
    )
    .unwrap()
}

#[test]
fn with_the_volume_term_a_component_collapses_onto_one_point_until_the_floor() {
    let mut e = singularity(true, None, 1e-6);
    e.run(400).unwrap();
    // EM puts the third component on the isolated point with a vanishing scale: the singularity.
    let s_em = e.em_state().scales()[2];
    assert!(s_em <= 1e-6 * (1.0 + 1e-9), "EM scale {s_em}");
    assert!(
        e.latest()
            .warnings
            .iter()
            .any(|w| w.contains("EM: scale of component 2 is at its floor"))
    );
    // It has taken the isolated point alone.
    let n = e.problem().len();
    let r = point_row(e.problem(), e.em_state(), n - 1).unwrap().responsibilities;
    assert!(r[2] > 1.0 - 1e-12, "{r:?}");
    assert!(e.latest().em.counts[2] < 1.0 + 1e-9);

    // A prior stops it at a finite scale, for both runs.
    let mut e = singularity(true, Some(PRIOR), 1e-6);
    e.run(400).unwrap();
    for s in [e.em_state().scales()[2], e.gd_state().scales()[2]] {
        assert!(s > 1e-2, "scale {s}");
    }
    assert!(e.latest().warnings.is_empty(), "{:?}", e.latest().warnings);
}

#[test]
fn without_the_volume_term_scales_run_away_unless_a_prior_holds_them() {
    let mut e = singularity(false, None, 1e-6);
    e.run(300).unwrap();
    let runaway = e.gd_state().scales().into_iter().fold(0.0, f64::max);
    assert!(runaway > 50.0, "largest GD scale {runaway}");
    assert!(e.latest().warnings.iter().any(|w| w.contains("running away")));

    // Growing without bound: still 40% larger 100 steps later.
    e.run(100).unwrap();
    assert!(e.gd_state().scales().into_iter().fold(0.0, f64::max) > 1.4 * runaway);

    // A prior carrying as much evidence as the data (a = 60 for 121 points) holds them: both runs
    // settle at finite scales (EM at once: its MAP step has a finite optimum without V).
    let strong = ScalePrior {
        strength: 60.0,
        scale: 0.8,
    };
    let mut e = singularity(false, Some(strong), 1e-6);
    e.run(600).unwrap();
    let before = (e.gd_state().scales(), e.em_state().scales());
    e.run(100).unwrap();
    for (a, b) in before
        .0
        .iter()
        .chain(&before.1)
        .zip(e.gd_state().scales().iter().chain(&e.em_state().scales()))
    {
        assert!(*b < 50.0 && (b - a).abs() < 0.01 * a, "scale {a} then {b}");
    }
    assert!(e.latest().warnings.is_empty(), "{:?}", e.latest().warnings);
    // EM with the prior now has a finite optimum without V: it moves the scales and never
    // raises its (penalised) objective.
    assert_ne!(e.em_state().scales(), vec![1.0; 3]);
    let objective: Vec<f64> = e.trace().iter().map(|r| r.em.em_objective).collect();
    for w in objective.windows(2) {
        assert!(w[1] <= w[0] + 1e-12 * w[0].abs().max(1.0), "{w:?}");
    }
}
