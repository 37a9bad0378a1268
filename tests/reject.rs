//! The reject option: a background component of fixed energy in every log-sum-exp.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Case, assert_paths_agree, random_case};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::lanes::CHUNK;
use implicit_em_lab::core::eval::{evaluate, evaluate_rows, point_row};
use implicit_em_lab::core::experiment::Experiment;
use implicit_em_lab::core::hopfield::{FixedPoint, retrieve};
use implicit_em_lab::core::model::Optimiser;
use implicit_em_lab::core::model::RateMode;
use implicit_em_lab::core::model::{ModelSpec, Regime, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::Derivative;
use implicit_em_lab::preset::parse;

#[test]
fn one_component_and_the_background_in_closed_form() {
    // x = 0, μ = (d, 0), s = 1, π = 1, V = 1 (ρ = 0): E₁ = d²/2; r₁ = 1/(1 + e^{(E₁ − E₀)/T}).
    for (d, e0, t) in [(1.0, 2.0, 1.0), (3.0, 1.0, 0.5), (0.0, 50.0, 2.0), (40.0, 3.0, 1.0)] {
        let mut data = Dataset {
            dim: 2,
            ..Dataset::default()
        };
        data.push(&[0.0, 0.0], None, &[]);
        let mut spec = ModelSpec::new(Regime::Mixture, t);
        spec.settings.reject_energy = Some(e0);
        let problem = Problem::bind(data, spec).unwrap();
        let state = State::new(2, vec![d, 0.0], 0);
        let row = point_row(&problem, &state, 0).unwrap();
        let e1: f64 = d * d / 2.0;
        let r1 = 1.0 / (1.0 + ((e1 - e0) / t).exp());
        assert!(
            (row.responsibilities[0] - r1).abs() < 1e-15,
            "{} vs {r1}",
            row.responsibilities[0]
        );
        assert!((row.background - (1.0 - r1)).abs() < 1e-15);
        // F = −T log(e^{−E₁/T} + e^{−E₀/T}), written with the larger term factored out.
        let (lo, hi) = if e1 < e0 { (e1, e0) } else { (e0, e1) };
        let f = lo - t * (-(hi - lo) / t).exp().ln_1p();
        assert!(
            (row.free_energy - f).abs() < 1e-13 * f.abs().max(1.0),
            "{} vs {f}",
            row.free_energy
        );
        // The loss is that free energy, on both paths.
        assert!((evaluate(&problem, &state).loss - f).abs() < 1e-13 * f.abs().max(1.0));
    }
}

#[test]
fn the_identity_holds_and_the_fast_path_agrees_with_a_background() {
    for dim in [1, 2, 5] {
        for e0 in [-2.0, 1.5, 40.0] {
            let mut case = Case::new(Regime::Mixture, dim, 70 + dim as u64);
            case.learn_weights = true;
            case.learn_scales = true;
            case.n = CHUNK + 33;
            let (mut problem, state) = random_case(&case);
            problem.spec.settings.reject_energy = Some(e0);
            for row in check(&problem, &state, Derivative::Dual, None) {
                assert!(row.passed(), "D = {dim}, E₀ = {e0}: {row:?}");
            }
            let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
            assert_paths_agree(&f, &p, &format!("D = {dim}, E₀ = {e0}"));
            // The prototypes' responsibilities no longer sum to one: N − Σ_j N_j is the background's.
            let taken: f64 = f.counts.iter().sum();
            if e0 < 10.0 {
                assert!(taken < case.n as f64 - 1e-6, "{taken}");
            }
        }
    }
}

/// A blob of 100 points at the origin and 5 outliers at (30, 30), one component.
fn robust(background: Option<f64>) -> Experiment {
    let mut data = Dataset {
        dim: 2,
        ..Dataset::default()
    };
    for i in 0..100 {
        let a = i as f64 * 2.399;
        let r = (i as f64 / 100.0).sqrt();
        data.push(&[r * a.cos(), r * a.sin()], None, &[]);
    }
    for q in 0..5 {
        data.push(&[30.0 + q as f64 * 0.1, 30.0], None, &[]);
    }
    let mut spec = ModelSpec::new(Regime::Mixture, 1.0);
    spec.settings.reject_energy = background;
    let problem = Problem::bind(data, spec).unwrap();
    Experiment::new(
        problem,
        State::new(2, vec![1.0, 1.0], 0),
        Optimiser {
            learning_rate: 1.0,
            rate: RateMode::Em,
        },
    )
    .unwrap()
}

#[test]
fn the_background_takes_the_outliers_and_the_prototype_stays_on_the_blob() {
    let mean_of = |range: std::ops::Range<usize>| {
        let e = robust(None);
        let p = e.problem();
        let n = range.len() as f64;
        let mut m = [0.0; 2];
        for i in range {
            m[0] += p.point(i)[0] / n;
            m[1] += p.point(i)[1] / n;
        }
        m
    };
    let (blob_mean, all_mean) = (mean_of(0..100), mean_of(0..105));
    let mut closed = robust(None);
    closed.run(20).unwrap();
    let mut open = robust(Some(10.0));
    open.run(20).unwrap();
    // Closed world: the only prototype is the mean of everything, outliers included (≈ 1.43 off).
    let c = closed.em_state().prototype(0).to_vec();
    assert!(
        (c[0] - all_mean[0]).abs() < 1e-9 && (c[1] - all_mean[1]).abs() < 1e-9,
        "{c:?} vs {all_mean:?}"
    );
    assert!(c[0] - blob_mean[0] > 1.4);
    // With the reject option it stays on the blob, and the outliers belong to the background.
    let o = open.em_state().prototype(0).to_vec();
    assert!(
        (o[0] - blob_mean[0]).abs() < 1e-3 && (o[1] - blob_mean[1]).abs() < 1e-3,
        "{o:?} vs {blob_mean:?}"
    );
    assert_eq!(open.gd_state(), open.em_state(), "GD with the EM rate follows EM");
    for i in 100..105 {
        let row = point_row(open.problem(), open.em_state(), i).unwrap();
        assert!(row.background > 1.0 - 1e-12, "outlier {i}: r₀ = {}", row.background);
    }
    // A probe out there is rejected, not retrieved; one inside retrieves the key.
    let spec = &open.problem().spec;
    assert_eq!(
        retrieve(spec, open.em_state(), &[25.0, 20.0]).kind,
        FixedPoint::Rejected
    );
    assert_eq!(
        retrieve(spec, open.em_state(), &[0.5, 0.3]).kind,
        FixedPoint::Pattern(0)
    );
}

#[test]
fn the_reject_option_is_for_the_mixture_only() {
    let text = "(name: \"r\", objective: CrossEntropy(), temperature: 1.0, learning_rate: 0.5,
                data: Moons(n: 100, noise: 0.1), prototypes: KMeansPlusPlus(k: 2), background: 3.0)";
    let e = parse(text, "r.ron").unwrap().validate().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("background"));
    assert!(e.message.contains("Mixture objective only"), "{}", e.message);
    let text = text.replace("CrossEntropy()", "Mixture").replace("3.0)", "inf)");
    assert!(parse(&text, "r.ron").is_err() || parse(&text, "r.ron").unwrap().validate().is_err());
}
