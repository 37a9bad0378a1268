//! Speed never changes a number: the fast parallel kernel equals the straightforward
//! single-threaded evaluation to 1e-12 relative (per block, against the block's largest
//! entry), in every regime, for sizes below and above the parallel chunk.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Case, all_regimes, random_case};
use implicit_em_lab::core::eval::lanes::CHUNK;
use implicit_em_lab::core::eval::{Evaluation, evaluate, evaluate_rows};
use implicit_em_lab::core::workload::{Workload, workload};

fn close(name: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{name}");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-12 * scale.max(1e-300),
            "{name}: {x} vs {y} (scale {scale})"
        );
    }
}

fn assert_same(fast: &Evaluation, plain: &Evaluation) {
    assert_eq!(fast.n, plain.n);
    close("loss", &[fast.loss], &[plain.loss]);
    close("em_objective", &[fast.em_objective], &[plain.em_objective]);
    close("mean_entropy", &[fast.mean_entropy], &[plain.mean_entropy]);
    close("∂J/∂μ", &fast.gradient.prototypes, &plain.gradient.prototypes);
    close("∂J/∂w", &fast.gradient.log_weights, &plain.gradient.log_weights);
    close("∂J/∂ρ", &fast.gradient.log_scales, &plain.gradient.log_scales);
    close("∂J/∂v", &fast.gradient.values, &plain.gradient.values);
    close("counts", &fast.counts, &plain.counts);
    close("em mass", &fast.em.mass, &plain.em.mass);
    close("em first", &fast.em.first, &plain.em.first);
    close("em sq", &fast.em.sq_dev, &plain.em.sq_dev);
    close("em targets", &fast.em.targets, &plain.em.targets);
}

#[test]
fn fast_equals_straightforward_on_random_cases() {
    // Every width of the fixed-width block transposes (1 to 4) and a wider one.
    for regime in all_regimes() {
        for dim in [1, 2, 3, 4, 5] {
            for n in [1, 7, CHUNK + 3, 3 * CHUNK + 17] {
                let mut case = Case::new(regime, dim, 500 + n as u64);
                case.n = n.max(3);
                case.k = 7;
                case.learn_weights = true;
                let (problem, state) = random_case(&case);
                assert_same(&evaluate(&problem, &state), &evaluate_rows(&problem, &state));
            }
        }
    }
}

#[test]
fn fast_equals_straightforward_on_the_benchmark_workloads() {
    for objective in [
        Workload::Mixture,
        Workload::Attention,
        Workload::AttentionRegression,
        Workload::CrossEntropy,
    ] {
        for k in [4, 16, 64] {
            let exp = workload(objective, 20_000, k, 2, 3);
            assert_same(
                &evaluate(exp.problem(), exp.gd_state()),
                &evaluate_rows(exp.problem(), exp.gd_state()),
            );
        }
    }
}

#[test]
fn fast_path_is_deterministic() {
    let exp = workload(Workload::Mixture, 50_000, 16, 2, 9);
    let a = evaluate(exp.problem(), exp.gd_state());
    for _ in 0..3 {
        assert_eq!(evaluate(exp.problem(), exp.gd_state()), a);
    }
}

#[test]
fn extreme_inputs_agree() {
    // T = 1e-6 and distances of 1e6 on the fast path too.
    let mut case = Case::new(implicit_em_lab::core::model::Regime::Mixture, 2, 1);
    case.temperature = 1e-6;
    case.n = CHUNK + 5;
    let (mut problem, state) = random_case(&case);
    let pts = std::sync::Arc::make_mut(&mut problem.points);
    for v in pts.iter_mut() {
        *v *= 1e5;
    }
    let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
    assert!(f.loss.is_finite());
    assert_same(&f, &p);
}

#[test]
fn entropy_is_exact_with_huge_energies_and_soft_assignments() {
    // Energies ~1e12 (points 1e6 from the prototypes) but equidistant from two of them: each
    // point's responsibilities are soft (1/2, 1/2), its entropy ln 2, although |E/T| is huge.
    use implicit_em_lab::core::data::Dataset;
    use implicit_em_lab::core::model::{ModelSpec, Regime, State};
    use implicit_em_lab::core::problem::Problem;
    let n = CHUNK + 9;
    let mut data = Dataset {
        dim: 2,
        ..Dataset::default()
    };
    for i in 0..n {
        data.push(&[0.0, 1e6 + i as f64 * 1e-3], None, &[]);
    }
    let problem = Problem::bind(data, ModelSpec::new(Regime::Mixture, 1.0)).unwrap();
    let state = State::new(2, vec![-1.0, 0.0, 1.0, 0.0], 0);
    let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
    assert!((p.mean_entropy - 2f64.ln()).abs() < 1e-12, "{}", p.mean_entropy);
    assert!((f.mean_entropy - 2f64.ln()).abs() < 1e-12, "{}", f.mean_entropy);
    assert_same(&f, &p);
}

#[test]
fn overflowing_energies_are_non_finite_on_both_paths() {
    // Prototypes near 1e300: every distance overflows, the loss must be non-finite (so the run
    // pauses), never a finite value made up by the padding lanes.
    use implicit_em_lab::core::model::Regime;
    for k in [3, 8, 9] {
        let mut case = Case::new(Regime::Mixture, 2, 77);
        case.k = k;
        let (problem, mut state) = random_case(&case);
        for v in &mut state.prototypes {
            *v = 1e300;
        }
        let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
        assert!(!p.loss.is_finite(), "straightforward: {}", p.loss);
        assert!(!f.loss.is_finite(), "fast, K = {k}: {}", f.loss);
    }
}

#[test]
fn the_lab_state_at_a_million_points_stays_under_200_bytes_per_point() {
    // D = 2, K = 16: the points (16 B), the labels (8 B) and nothing per point besides; the
    // trace keeps per-prototype history only, so 20 steps add no per-point memory.
    // N = 1M in optimised builds (`cargo test --release`); the bound is per point, so debug
    // builds, where our crate is unoptimised, check it at 100k.
    let n = if cfg!(debug_assertions) { 100_000 } else { 1_000_000 };
    let mut exp = workload(Workload::Mixture, n, 16, 2, 5);
    exp.run(20).unwrap();
    let per_point = exp.heap_bytes() as f64 / n as f64;
    assert!(per_point < 200.0, "{per_point} bytes per point");
    assert!(per_point > 24.0, "{per_point}: the data alone need 24 bytes per point");
    // Steps add per-prototype records only.
    let before = exp.heap_bytes();
    exp.run(10).unwrap();
    let growth = (exp.heap_bytes() - before) as f64 / 10.0;
    assert!(growth < 10_000.0, "{growth} bytes per step");
}

#[test]
fn cross_entropy_agrees_when_the_own_class_is_far_below_the_best() {
    use implicit_em_lab::core::model::Regime;
    // Random labels and T small enough that many points' own class lies e^{-1000} or further
    // below their best component (the kernel then takes the class sums apart), mixed in the
    // same blocks with points whose own class is near (the one-exponential path).
    for (temperature, seed) in [(1e-3, 5), (2e-3, 6), (0.05, 7), (10.0, 8)] {
        let mut case = Case::new(Regime::CrossEntropy, 2, seed);
        case.temperature = temperature;
        case.k = 6;
        case.n = CHUNK + 77;
        let (problem, state) = random_case(&case);
        let (f, p) = (evaluate(&problem, &state), evaluate_rows(&problem, &state));
        assert!(f.loss.is_finite() && f.loss > 0.0, "T = {temperature}: {}", f.loss);
        assert_same(&f, &p);
    }
}

#[test]
fn a_detached_copy_steps_and_is_adopted_only_if_nothing_changed() {
    let exp = workload(Workload::CrossEntropy, 5_000, 8, 2, 9);
    let mut sequential = exp.clone();
    sequential.run(4).unwrap();

    let mut window = exp.clone();
    window.set_history_limit(Some(100));
    let mut copy = window.detached();
    assert!(copy.trace().is_empty());
    copy.run(4).unwrap();
    assert!(window.adopt(copy.clone()));
    assert_eq!(window.step_count(), 4);
    assert_eq!(window.trace(), sequential.trace());
    assert_eq!(window.gd_state(), sequential.gd_state());
    // The same steps again no longer follow on.
    assert!(!window.adopt(copy));
    assert_eq!(window.step_count(), 4);

    // An edit after the copy was made: its steps are dropped.
    let mut copy = window.detached();
    copy.run(2).unwrap();
    window.set_temperature(0.5);
    assert!(!window.adopt(copy));
    assert_eq!(window.step_count(), 4);
    // A reset, then a copy of another experiment at the same step: dropped too.
    let mut other = exp.clone().detached();
    other.run(1).unwrap();
    window.reset();
    assert!(!window.adopt(other));
    assert_eq!(window.step_count(), 0);

    // A copy edited on the way (as annealing cools between steps) is adopted with its
    // temperature, equal to the same edit and steps made in place; the copy's revision then
    // becomes the window's, so a later copy of the window follows on.
    let mut in_place = window.clone();
    in_place.run(2).unwrap();
    in_place.set_temperature(0.7);
    in_place.run(1).unwrap();
    let mut copy = window.detached();
    copy.run(2).unwrap();
    copy.set_temperature(0.7);
    copy.run(1).unwrap();
    assert!(window.adopt(copy));
    assert_eq!(window.problem().spec.settings.temperature, 0.7);
    assert_eq!(window.trace(), in_place.trace());
    assert_eq!(window.gd_state(), in_place.gd_state());
    assert_eq!(window.em_state(), in_place.em_state());
    let mut next = window.detached();
    next.run(1).unwrap();
    assert!(window.adopt(next));
    assert_eq!(window.step_count(), 4);
}

#[test]
fn lane_parallel_fields_equal_the_plain_field_rows() {
    use implicit_em_lab::core::eval::lanes::{Colouring, field_colours};
    use implicit_em_lab::core::eval::{Row, field_row};
    use implicit_em_lab::core::model::ComponentTerms;
    for regime in all_regimes() {
        for (dim, structure) in [1, 2, 5]
            .into_iter()
            .flat_map(|d| implicit_em_lab::core::model::Structure::ALL.map(|s| (d, s)))
        {
            // Components with maps (MATH.md §8) take distance scores only.
            if structure.has_maps() && regime.score() == implicit_em_lab::core::model::Score::DotProduct {
                continue;
            }
            let mut case = Case::new(regime, dim, 900 + dim as u64);
            case.k = 7;
            case.learn_weights = true;
            let (problem, state) =
                common::random_metric_case(&case, structure, implicit_em_lab::core::model::Form::Prototype);
            let terms = ComponentTerms::new(&problem.spec, &state);
            // 75 positions: two full lane blocks and a partial one; spread beyond the data.
            let n = 75;
            let xs: Vec<f64> = (0..n * dim).map(|q| ((q * 37 % 101) as f64 - 50.0) * 0.09).collect();
            // Channels (1, j, j²): the blend is then the moments Σ r_j, Σ j r_j, Σ j² r_j.
            let k = state.k;
            let palette: Vec<[f64; 3]> = (0..k).map(|j| [1.0, j as f64, (j * j) as f64]).collect();
            let group: Vec<usize> = (0..k).collect();
            let colouring = Colouring {
                palette: &palette,
                group: &group,
                rest: [0.0; 3],
            };
            let (mut rgb, mut winner, mut free) = (vec![[0.0; 3]; n], vec![0; n], vec![0.0; n]);
            field_colours(
                &problem.spec,
                &state,
                &terms,
                &xs,
                &colouring,
                &mut rgb,
                &mut winner,
                &mut free,
            );
            let mut row = Row::new(k, dim, problem.target_dim);
            for i in 0..n {
                field_row(&problem.spec, &state, &terms, &xs[i * dim..(i + 1) * dim], &mut row);
                let r = &row.responsibilities;
                let moment = |p: u32| (0..k).map(|j| (j as f64).powi(p as i32) * r[j]).sum::<f64>();
                close("Σ r, Σ j r, Σ j² r", &rgb[i], &[moment(0), moment(1), moment(2)]);
                close("F(x)", &[free[i]], &[row.free_energy]);
                let best = (0..k).fold(0, |b, j| if r[j] > r[b] { j } else { b });
                assert_eq!(winner[i], best);
            }
        }
    }
}

#[test]
fn the_evaluation_for_em_equals_the_full_one_without_a_gradient() {
    use implicit_em_lab::core::eval::{Gradient, evaluate_em};
    let mut cases = Vec::new();
    for regime in common::all_regimes() {
        for dim in [1, 2, 5] {
            let mut case = Case::new(regime, dim, 90 + dim as u64);
            case.k = 6;
            case.n = 2 * CHUNK + 77;
            case.learn_weights = true;
            case.learn_scales = true;
            cases.push(common::random_case(&case));
        }
    }
    // Cross-entropy semi-supervised, and with its own class far below the best (the fallback).
    let (mut semi, state) = cases[3].clone();
    semi.spec.settings.semi_supervised = true;
    cases.push((semi, state));
    let (far, mut state) = cases[4].clone();
    state.prototypes.iter_mut().step_by(3).for_each(|x| *x += 80.0);
    cases.push((far, state));
    for (problem, state) in &cases {
        let full = evaluate(problem, state);
        let em = evaluate_em(problem, state);
        let plain = evaluate_rows(problem, state);
        assert_eq!(em.gradient, Gradient::default());
        let context = format!("{:?}, D = {}", problem.spec.regime, problem.dim);
        for (name, a, b) in [
            (
                "loss",
                vec![em.loss, em.em_objective, em.mean_entropy],
                vec![full.loss, full.em_objective, full.mean_entropy],
            ),
            ("counts", em.counts.clone(), full.counts.clone()),
            ("mass", em.em.mass.clone(), full.em.mass.clone()),
            ("first", em.em.first.clone(), full.em.first.clone()),
            ("sq", em.em.sq_dev.clone(), full.em.sq_dev.clone()),
            ("targets", em.em.targets.clone(), full.em.targets.clone()),
        ] {
            // The same kernel with fewer sums: the same numbers, bit for bit.
            assert_eq!(a, b, "{context}: {name}");
        }
        assert!(
            (em.loss - plain.loss).abs() <= 1e-12 * plain.loss.abs().max(1e-300),
            "{context}"
        );
    }
}

#[test]
fn attention_with_many_value_coordinates_agrees() {
    // P = 6 and 9: the value sums run in chunks of four coordinates and a remainder.
    use implicit_em_lab::core::data::{Dataset, rng};
    use implicit_em_lab::core::model::{ModelSpec, Regime, Score, State};
    use implicit_em_lab::core::problem::Problem;
    use rand::RngExt;
    for (p, score) in [(6, Score::Distance), (9, Score::DotProduct)] {
        let mut r = rng(61 + p as u64);
        let mut data = Dataset {
            dim: 2,
            target_dim: p,
            ..Dataset::default()
        };
        for _ in 0..CHUNK + 40 {
            let x = [r.random_range(-3.0..3.0), r.random_range(-3.0..3.0)];
            let t: Vec<f64> = (0..p).map(|_| r.random_range(-1.0..1.0)).collect();
            data.push(&x, None, &t);
        }
        let problem = Problem::bind(data, ModelSpec::new(Regime::Attention { score }, 0.8)).unwrap();
        let k = 5;
        let mut state = State::new(2, (0..2 * k).map(|_| r.random_range(-2.0..2.0)).collect(), p);
        state.values = (0..k * p).map(|_| r.random_range(-1.0..1.0)).collect();
        assert_same(&evaluate(&problem, &state), &evaluate_rows(&problem, &state));
    }
}
