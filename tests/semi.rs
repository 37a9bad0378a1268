//! Semi-supervision: labelled points clamp (q), unlabelled ones stay latent (r).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Case, assert_paths_agree, random_case};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data;
use implicit_em_lab::core::eval::lanes::CHUNK;
use implicit_em_lab::core::eval::{evaluate, evaluate_rows, point_row};
use implicit_em_lab::core::model::Regime;
use implicit_em_lab::core::reference::Derivative;
use implicit_em_lab::preset::{self, hide_labels, parse};

#[test]
fn semi_supervised_sums_are_checked_and_equal_on_both_paths() {
    for (dim, t) in [(1, 0.7), (2, 1.3), (5, 0.7), (2, 2e-3)] {
        let mut case = Case::new(Regime::CrossEntropy, dim, 300 + dim as u64);
        case.k = 6;
        case.temperature = t;
        case.learn_weights = true;
        case.learn_scales = true;
        case.n = CHUNK + 45;
        let (mut problem, state) = random_case(&case);
        problem.spec.settings.semi_supervised = true;
        let labels = Arc::make_mut(&mut problem.labels);
        for (i, l) in labels.iter_mut().enumerate() {
            if i % 3 == 1 {
                *l = None;
            }
        }
        assert_eq!(problem.effective_n(), problem.len(), "every point counts");
        for row in check(&problem, &state, Derivative::Dual, None) {
            assert!(row.passed(), "D = {dim}, T = {t}: {row:?}");
        }
        let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
        assert_paths_agree(&f, &p, &format!("D = {dim}, T = {t}"));
        // J_S is EM's own objective; an unlabelled point's row is the mixture's, a labelled one's q.
        assert_eq!(f.loss, f.em_objective);
        let latent = point_row(&problem, &state, 1).unwrap();
        assert_eq!(latent.energy_gradient, latent.responsibilities);
        let clamped = point_row(&problem, &state, 0).unwrap();
        assert_eq!(clamped.energy_gradient, clamped.em_weights);
        assert!((clamped.em_weights.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    }
}

#[test]
fn with_one_prototype_per_class_and_every_label_j_s_is_the_mean_own_energy() {
    let mut case = Case::new(Regime::CrossEntropy, 2, 5);
    case.k = 3;
    let (mut problem, state) = random_case(&case);
    problem.spec.settings.semi_supervised = true;
    let mut total = 0.0;
    for i in 0..problem.len() {
        let y = problem.labels[i].unwrap() as usize;
        let j = problem.spec.classes.iter().position(|&c| c == y).unwrap();
        total += point_row(&problem, &state, i).unwrap().energies[j];
    }
    let expected = total / problem.len() as f64;
    let j = evaluate(&problem, &state).loss;
    assert!(
        (j - expected).abs() < 1e-13 * expected.abs().max(1.0),
        "{j} vs {expected}"
    );
}

#[test]
fn few_labels_and_latent_points_find_the_clouds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/semi-supervised.ron");
    let p = preset::load(&path).unwrap();
    let mut exp = p.validate().unwrap().build(Path::new(".")).unwrap().into_experiment();
    let labelled = exp.problem().labels.iter().filter(|l| l.is_some()).count();
    assert!((5..=30).contains(&labelled), "{labelled} labels of 450");
    exp.run(300).unwrap();
    let means = [[-3.0, 0.0], [3.0, 0.0], [0.0, 4.5]];
    for (j, m) in means.iter().enumerate() {
        let mu = exp.em_state().prototype(j);
        let d = ((mu[0] - m[0]).powi(2) + (mu[1] - m[1]).powi(2)).sqrt();
        assert!(d < 0.35, "prototype {j} at {mu:?}, cloud centre {m:?}");
    }
    assert!(
        exp.trace()
            .iter()
            .all(|r| r.warnings.iter().all(|w| !w.contains("rose")))
    );

    // Cross-entropy on the labelled points alone counts only them.
    let mut q = p.clone();
    q.semi_supervised = false;
    let ce = q.validate().unwrap().build(Path::new(".")).unwrap().into_experiment();
    assert_eq!(ce.problem().effective_n(), labelled);
}

#[test]
fn hidden_labels_keep_every_class_and_about_the_fraction() {
    let mut data = data::blobs(4, 4000, 2, 5.0, 1.0, 3);
    hide_labels(&mut data, 0.1, 7);
    let kept = data.labels.iter().filter(|l| l.is_some()).count();
    assert!((320..=480).contains(&kept), "{kept} of 4000 kept at 10%");
    assert_eq!(data.class_count(), 4);
    let mut tiny = data::blobs(3, 300, 2, 5.0, 1.0, 3);
    hide_labels(&mut tiny, 1e-9, 7);
    assert_eq!(
        tiny.labels.iter().filter(|l| l.is_some()).count(),
        3,
        "one per class survives"
    );

    let bad = "(name: \"s\", objective: Mixture, temperature: 1.0, learning_rate: 0.5,
               data: Moons(n: 100, noise: 0.1), prototypes: KMeansPlusPlus(k: 2), semi_supervised: true)";
    assert_eq!(
        parse(bad, "s.ron").unwrap().validate().unwrap_err().field.as_deref(),
        Some("semi_supervised")
    );
    let bad = bad.replace("semi_supervised: true", "labelled_fraction: 0.0");
    let e = parse(&bad, "s.ron").unwrap().validate().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("labelled_fraction"));
    assert!(e.message.contains("(0, 1]"));
}
