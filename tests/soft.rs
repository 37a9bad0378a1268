//! Soft labels read from data: `F^p = Σ_c p_c F^c`, `q_ij = p_c softmax_{j∈c}`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;

use common::{Case, assert_paths_agree, random_data};
use implicit_em_lab::core::check::check;
use implicit_em_lab::core::data::Dataset;
use implicit_em_lab::core::eval::lanes::CHUNK;
use implicit_em_lab::core::eval::{evaluate, evaluate_rows, point_row};
use implicit_em_lab::core::model::{ModelSpec, Regime, Score, State};
use implicit_em_lab::core::problem::Problem;
use implicit_em_lab::core::reference::Derivative;
use implicit_em_lab::core::step::em_step;
use implicit_em_lab::preset::csv::parse_csv;
use implicit_em_lab::preset::{self, DataSpec, hide_labels, parse};

/// A soft label for point `i` over 3 classes (some with a zero entry), deterministic.
fn soft_row(i: usize) -> [f64; 3] {
    let a = 0.15 + 0.7 * ((i * 37 % 101) as f64 / 101.0);
    let b = (1.0 - a) * ((i * 13 % 7) as f64 / 6.0);
    let row = [a, b, 1.0 - a - b];
    // Rotate so that every class is the most probable one somewhere.
    let r = i % 3;
    [row[r], row[(r + 1) % 3], row[(r + 2) % 3]]
}

/// The random case's data with every `every`-th point soft-labelled (and, semi-supervised,
/// every point with `i % 4 == 1` unlabelled), bound to a cross-entropy model with `k`
/// prototypes (classes `j % 3`), and a random state.
fn soft_case(dim: usize, k: usize, t: f64, n: usize, semi: bool, seed: u64) -> (Problem, State) {
    let mut case = Case::new(Regime::CrossEntropy, dim, seed);
    case.n = n;
    let base = random_data(&case);
    let mut data = Dataset {
        dim,
        ..Dataset::default()
    };
    for i in 0..n {
        let x = base.point(i);
        if i % 3 == 0 {
            data.push_soft(x, &soft_row(i), &[]);
        } else if semi && i % 4 == 1 {
            data.push(x, None, &[]);
        } else {
            data.push(x, base.labels[i], &[]);
        }
    }
    let mut spec = ModelSpec::new(Regime::CrossEntropy, t);
    spec.settings.learn_weights = true;
    spec.settings.learn_scales = true;
    spec.settings.semi_supervised = semi;
    spec.classes = (0..k).map(|j| j % 3).collect();
    let problem = Problem::bind(data, spec).unwrap();
    let mut rng = implicit_em_lab::core::data::rng(seed ^ 0x50f7);
    use rand::RngExt;
    let positions: Vec<f64> = (0..k * dim).map(|_| rng.random_range(-2.0..2.0)).collect();
    let mut state = State::new(dim, positions, 0);
    state.log_weights = (0..k).map(|_| rng.random_range(-1.0..1.0)).collect();
    state.log_scales = (0..k).map(|_| rng.random_range(-0.5..0.8)).collect();
    (problem, state)
}

/// `Σ_i p_ic x_i / Σ_i p_ic` in 2-D, with `p` one-hot for a hard label, written out.
fn class_mean(problem: &Problem, c: usize) -> [f64; 2] {
    let (mut mass, mut first) = (0.0, [0.0; 2]);
    for i in 0..problem.len() {
        let pc = match problem.soft_label(i) {
            Some(p) => p[c],
            None => f64::from(u8::from(problem.labels[i] == Some(c as u32))),
        };
        mass += pc;
        for d in 0..2 {
            first[d] += pc * problem.point(i)[d];
        }
    }
    [first[0] / mass, first[1] / mass]
}

#[test]
fn soft_labels_are_checked_by_dual_numbers_and_equal_on_both_paths() {
    for semi in [false, true] {
        for (dim, k, t) in [(1, 3, 0.7), (2, 6, 1.3), (5, 9, 0.7), (2, 6, 2e-3)] {
            let context = format!("semi {semi}, D = {dim}, K = {k}, T = {t}");
            let (problem, state) = soft_case(dim, k, t, CHUNK + 45, semi, 40 + dim as u64);
            assert_eq!(problem.soft.count(), (CHUNK + 45).div_ceil(3), "{context}");
            for row in check(&problem, &state, Derivative::Dual, None) {
                assert!(row.passed(), "{context}: {row:?}");
            }
            let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
            assert_paths_agree(&f, &p, &context);
            // A soft row's q sums to 1 over the components, and p_c over each class.
            let row = point_row(&problem, &state, 0).unwrap();
            let p0 = soft_row(0);
            for (c, pc) in p0.iter().enumerate() {
                let mass: f64 = (0..k).filter(|j| j % 3 == c).map(|j| row.em_weights[j]).sum();
                assert!((mass - pc).abs() < 1e-15, "{context}: class {c}: {mass} vs {pc}");
            }
        }
    }
}

#[test]
fn with_one_prototype_per_class_q_is_the_soft_label_and_em_takes_weighted_means() {
    let (problem, mut state) = soft_case(2, 3, 0.9, 300, false, 7);
    state.log_weights = vec![0.0; 3];
    state.log_scales = vec![0.0; 3];
    let mut spec = problem.spec.clone();
    spec.settings.learn_weights = false;
    spec.settings.learn_scales = false;
    let problem = Problem { spec, ..problem };
    // q_ij = p_{i,c(j)} exactly; the loss is Σ_c p_c E_ic − F written out.
    let mut loss = 0.0;
    for i in 0..problem.len() {
        let row = point_row(&problem, &state, i).unwrap();
        let p: Vec<f64> = match problem.soft_label(i) {
            Some(p) => p.to_vec(),
            None => (0..3)
                .map(|c| f64::from(u8::from(problem.labels[i] == Some(c))))
                .collect(),
        };
        for c in 0..3 {
            assert!((row.em_weights[c] - p[c]).abs() < 1e-15, "point {i}");
        }
        let own: f64 = (0..3).map(|c| p[c] * row.energies[c]).sum();
        let a: Vec<f64> = row.energies.iter().map(|e| -e / 0.9).collect();
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + a.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        loss += own + 0.9 * lse;
    }
    let eval = evaluate(&problem, &state);
    let expected = loss / problem.len() as f64;
    assert!(
        (eval.loss - expected).abs() < 1e-13 * expected.abs(),
        "{} vs {expected}",
        eval.loss
    );
    // One EM step moves prototype c to Σ_i p_ic x_i / Σ_i p_ic.
    let next = em_step(&problem, &state, &eval);
    for c in 0..3 {
        let mean = class_mean(&problem, c);
        for d in 0..2 {
            let want = mean[d];
            let got = next.prototype(c)[d];
            assert!((got - want).abs() < 1e-13, "prototype {c}, axis {d}: {got} vs {want}");
        }
    }
}

#[test]
fn one_hot_soft_labels_are_hard_labels() {
    let (hard, state) = common::random_case(&{
        let mut c = Case::new(Regime::CrossEntropy, 2, 11);
        c.k = 6;
        c.n = 2 * CHUNK + 3;
        c
    });
    for semi in [false, true] {
        let mut spec = hard.spec.clone();
        spec.settings.semi_supervised = semi;
        let mut data = Dataset {
            dim: 2,
            ..Dataset::default()
        };
        for i in 0..hard.len() {
            let y = hard.labels[i].unwrap() as usize;
            let mut p = [0.0; 3];
            p[y] = 1.0;
            data.push_soft(hard.point(i), &p, &[]);
        }
        let soft = Problem::bind(data, spec.clone()).unwrap();
        let hard = Problem { spec, ..hard.clone() };
        assert_eq!(soft.labels, hard.labels);
        let (a, b) = (evaluate(&soft, &state), evaluate(&hard, &state));
        assert_paths_agree(&a, &b, &format!("semi {semi}"));
        assert!(
            (a.loss - b.loss).abs() <= 1e-14 * b.loss.abs(),
            "{} vs {}",
            a.loss,
            b.loss
        );
    }
}

#[test]
fn em_on_soft_labels_never_raises_its_objective() {
    for semi in [false, true] {
        let (problem, state) = soft_case(2, 6, 0.8, 400, semi, 3);
        let mut s = state;
        let mut last = f64::INFINITY;
        for step in 0..60 {
            let eval = evaluate(&problem, &s);
            assert!(
                eval.em_objective <= last + 1e-9 * last.abs(),
                "semi {semi}, step {step}: {} after {last}",
                eval.em_objective
            );
            last = eval.em_objective;
            s = em_step(&problem, &s, &eval);
        }
    }
}

#[test]
fn csv_soft_columns_are_read_and_checked() {
    let d = parse_csv(
        "x,y,label,soft0,soft1\n0,0,,0.25,0.75\n1,1,0,,\n2,2,,1,0\n3,3,,0.4999999,0.5\n",
        "s.csv",
    )
    .unwrap();
    assert_eq!(d.dim, 2);
    assert_eq!(d.soft.classes, 2);
    assert_eq!(d.soft.count(), 3);
    assert_eq!(d.soft.get(0), Some(&[0.25, 0.75][..]));
    assert_eq!(d.soft.get(1), None);
    assert_eq!(d.labels, vec![Some(1), Some(0), Some(0), Some(1)]);
    // Stored divided by its sum.
    let p = d.soft.get(3).unwrap();
    assert!((p[0] + p[1] - 1.0).abs() < 1e-16 && (p[1] - 0.5 / 0.9999999).abs() < 1e-15);

    let bad = |text: &str, wants: &[&str]| {
        let e = parse_csv(text, "s.csv").unwrap_err();
        for w in wants {
            assert!(e.contains(w), "{e} should mention {w}");
        }
    };
    bad(
        "x,soft0,soft1\n0,0.5,0.6\n",
        &["line 2", "sum to 1.1", "within 0.000001"],
    );
    bad(
        "x,soft0,soft1\n0,0.5,0.5\n1,-0.5,1.5\n",
        &["line 3", "class 0 has -0.5", "[0, 1]"],
    );
    bad("x,soft0,soft1\n0,0.5,\n", &["line 2", "all 2 soft columns, 1 given"]);
    bad(
        "x,label,soft0,soft1\n0,1,0.5,0.5\n",
        &["line 2", "both a `label` and soft labels"],
    );
    bad("x,soft0,soft2\n0,0.5,0.5\n", &["soft0 … soft1", "`soft1` is missing"]);
    bad(
        "x,soft0,soft1\n0,abc,0.5\n",
        &["line 2", "column `soft0`", "`abc` is not a probability"],
    );
    bad("x,soft0,soft1\n0,NaN,0.5\n", &["line 2", "`NaN` is not a probability"]);
}

fn inline_preset(soft: &str, labels: &str) -> String {
    format!(
        r#"(name: "soft", objective: CrossEntropy(per_class: 1), temperature: 1.0, learning_rate: 0.1,
            data: Inline(points: [[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [5.0, 0.0]], labels: {labels}, soft: {soft}),
            prototypes: KMeansPlusPlus(k: 2))"#
    )
}

#[test]
fn inline_soft_labels_build_and_bad_ones_name_the_field() {
    let text = inline_preset(
        "Some([Some([0.9, 0.1]), None, Some([0.2, 0.8]), None])",
        "Some([None, Some(0), None, Some(1)])",
    );
    let built = parse(&text, "soft.ron")
        .unwrap()
        .validate()
        .unwrap()
        .build(Path::new("."))
        .unwrap();
    let problem = built.experiment().problem();
    assert_eq!(problem.soft.count(), 2);
    assert_eq!(problem.soft_label(2), Some(&[0.2, 0.8][..]));
    assert_eq!(problem.labels.as_slice(), &[Some(0), Some(0), Some(1), Some(1)]);
    // The data round-trip through the window's dataset keeps the soft labels.
    assert_eq!(built.experiment().problem().to_dataset().soft, *problem.soft);

    let refuse = |soft: &str, labels: &str, wants: &[&str]| {
        let e = parse(&inline_preset(soft, labels), "soft.ron")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        for w in wants {
            assert!(e.contains(w), "{e} should mention {w}");
        }
    };
    let none = "None";
    refuse(
        "Some([Some([0.9, 0.1])])",
        none,
        &["data.soft", "one entry per point (4), got 1"],
    );
    refuse(
        "Some([Some([0.9, 0.1]), None, Some([0.2, 0.3, 0.5]), None])",
        none,
        &["data.soft", "point 2", "3 classes", "the first has 2"],
    );
    refuse(
        "Some([Some([0.9, 0.2]), None, None, None])",
        none,
        &["data.soft", "point 0", "sum to 1.1"],
    );
    refuse(
        "Some([Some([0.9, 0.1]), None, None, None])",
        "Some([Some(0), Some(0), Some(1), Some(1)])",
        &["data.soft", "point 0 has both a label and a soft label"],
    );
}

#[test]
fn a_soft_label_on_a_class_without_prototypes_is_refused() {
    let mut data = Dataset {
        dim: 1,
        ..Dataset::default()
    };
    data.push(&[0.0], Some(0), &[]);
    data.push(&[1.0], Some(1), &[]);
    data.push_soft(&[2.0], &[0.5, 0.3, 0.2], &[]);
    let mut spec = ModelSpec::new(Regime::CrossEntropy, 1.0);
    spec.classes = vec![0, 1];
    let e = Problem::bind(data, spec).unwrap_err().0;
    assert!(e.contains("point 2") && e.contains("class 2 probability 0.2"), "{e}");
}

#[test]
fn hidden_labels_drop_soft_labels_too() {
    let (problem, _) = soft_case(2, 3, 1.0, 600, false, 9);
    let mut data = Dataset {
        dim: 2,
        points: problem.points.to_vec(),
        labels: problem.labels.to_vec(),
        soft: (*problem.soft).clone(),
        ..Dataset::default()
    };
    hide_labels(&mut data, 0.25, 5);
    let kept = data.labels.iter().filter(|l| l.is_some()).count();
    assert!((100..=200).contains(&kept), "{kept} of 600 kept");
    for i in 0..600 {
        if data.labels[i].is_none() {
            assert_eq!(data.soft.get(i), None, "point {i}");
        } else if let Some(p) = problem.soft_label(i) {
            assert_eq!(data.soft.get(i), Some(p), "point {i}");
        }
    }
    // Compacted: one row per remaining soft point.
    let remaining = (0..600).filter(|&i| data.soft.get(i).is_some()).count();
    assert_eq!(data.soft.count(), remaining);
    assert!(remaining > 20);
}

#[test]
fn removing_a_point_keeps_the_other_soft_labels() {
    let mut data = Dataset {
        dim: 1,
        ..Dataset::default()
    };
    data.push_soft(&[0.0], &[0.6, 0.4], &[]);
    data.push(&[1.0], Some(1), &[]);
    data.push_soft(&[2.0], &[0.1, 0.9], &[]);
    data.remove(0);
    assert_eq!(data.points, vec![1.0, 2.0]);
    assert_eq!(data.soft.get(0), None);
    assert_eq!(data.soft.get(1), Some(&[0.1, 0.9][..]));
    assert_eq!(data.soft.count(), 1);
    data.remove(1);
    assert!(data.soft.is_empty() && data.soft.index.is_empty());
}

#[test]
fn attention_takes_soft_labels_as_targets() {
    let mut data = Dataset {
        dim: 1,
        ..Dataset::default()
    };
    data.push(&[0.0], Some(2), &[]);
    data.push_soft(&[1.0], &[0.3, 0.7], &[]);
    let spec = ModelSpec::new(Regime::Attention { score: Score::Distance }, 1.0);
    let problem = Problem::bind(data, spec).unwrap();
    assert_eq!(problem.target_dim, 3);
    assert_eq!(problem.targets.as_slice(), &[0.0, 0.0, 1.0, 0.3, 0.7, 0.0]);
}

#[test]
fn the_bundled_soft_label_preset_learns_from_its_csv() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/soft-labels.ron");
    let p = preset::load(&path).unwrap();
    assert!(matches!(p.data, DataSpec::Csv { .. }));
    let mut exp = p
        .validate()
        .unwrap()
        .build(path.parent().unwrap())
        .unwrap()
        .into_experiment();
    assert!(
        exp.problem().soft.count() > 100,
        "{} soft labels",
        exp.problem().soft.count()
    );
    for row in check(exp.problem(), exp.gd_state(), Derivative::Dual, None) {
        assert!(row.passed(), "{row:?}");
    }
    exp.run(200).unwrap();
    // EM's three prototypes end at the soft-label-weighted means of the data.
    let problem = exp.problem().clone();
    for c in 0..3 {
        let mean = class_mean(&problem, c);
        for d in 0..2 {
            let got = exp.em_state().prototype(c)[d];
            let want = mean[d];
            assert!((got - want).abs() < 1e-9, "class {c}, axis {d}: {got} vs {want}");
        }
    }
}
