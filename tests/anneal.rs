//! Deterministic annealing: settling, cooling, split detection and critical temperatures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use implicit_em_lab::preset::{self, parse};
use implicit_em_lab::session::anneal::{Annealer, Schedule, group_critical_temperatures, groups};

fn two_anisotropic_blobs(schedule: &str, k: usize, rate: &str) -> preset::Preset {
    let positions = vec!["[0.0, 0.0]"; k].join(", ");
    parse(
        &format!(
            "(name: \"t\", objective: Mixture, temperature: 1.0, learning_rate: 1.0, rate: {rate}, seed: 3,
              learn: (weights: false, scales: false, volume: true),
              data: Gaussians(clouds: [
                (mean: [-3.0, 0.5], std: [1.0, 0.4], count: 200, label: 0),
                (mean: [3.0, -0.5], std: [1.0, 0.4], count: 200, label: 1)]),
              prototypes: Explicit(positions: [{positions}]),
              anneal: {schedule})"
        ),
        "test",
    )
    .unwrap()
}

fn anneal(p: &preset::Preset) -> (implicit_em_lab::core::experiment::Experiment, Annealer, f64) {
    // Building an annealing preset starts its schedule; the session takes the schedule's steps.
    let mut session = p.validate().unwrap().build(Path::new(".")).unwrap();
    let mut steps = 0;
    while !session.finished() {
        session.step().expect("not finished").unwrap();
        steps += 1;
        assert!(steps < 400_000, "annealing did not finish");
    }
    let annealer = session.annealer().expect("annealing").clone();
    let lambda = session.critical_temperature();
    (session.into_experiment(), annealer, lambda)
}

#[test]
fn the_first_split_lies_within_five_percent_of_lambda_max() {
    for rate in ["Shared", "Em"] {
        let p = two_anisotropic_blobs("(t0: 15.0, gamma: 0.97, t_min: 4.0)", 2, rate);
        let (_, a, lambda) = anneal(&p);
        // λ_max ≈ 3² + 1 + the offsets' share; the exact value comes from the sample.
        assert!((lambda - 10.2).abs() < 1.0, "λ_max = {lambda}");
        for run in ["gd", "em"] {
            let first = a.splits.iter().find(|s| s.run == run).expect("a split");
            let rel = (first.temperature - lambda) / lambda;
            assert!(
                rel <= 0.0 && rel > -0.05,
                "{rate} {run}: split at T = {} vs λ_max = {lambda}",
                first.temperature
            );
            assert_eq!((first.previous, first.components), (1, 2));
        }
        // Above T_c nothing splits: every settled temperature above it has one position.
        for s in a.settled.iter().filter(|s| s.temperature > lambda) {
            assert_eq!((s.groups_gd, s.groups_em), (1, 1), "T = {}", s.temperature);
            // One group holding every point: its critical temperature is λ_max itself.
            assert!(
                (s.critical[0] - lambda).abs() < 1e-9 * lambda,
                "{} vs {lambda}",
                s.critical[0]
            );
        }
        // Cooled geometrically, settled at each temperature, and stopped at T_min.
        let temps: Vec<f64> = a.settled.iter().map(|s| s.temperature).collect();
        for w in temps.windows(2) {
            assert!((w[1] - (0.97 * w[0]).max(4.0)).abs() < 1e-12, "{w:?}");
        }
        assert_eq!(*temps.last().unwrap(), 4.0);
        assert!(a.settled.iter().all(|s| s.converged));
    }
}

#[test]
fn with_the_em_rate_gradient_descent_and_em_split_together() {
    let p = two_anisotropic_blobs("(t0: 15.0, gamma: 0.9, t_min: 2.0)", 2, "Em");
    let (exp, a, _) = anneal(&p);
    let gd: Vec<_> = a
        .splits
        .iter()
        .filter(|s| s.run == "gd")
        .map(|s| (s.step, s.temperature))
        .collect();
    let em: Vec<_> = a
        .splits
        .iter()
        .filter(|s| s.run == "em")
        .map(|s| (s.step, s.temperature))
        .collect();
    assert_eq!(gd, em);
    assert!(
        exp.latest().prototype_distance < 1e-9,
        "{}",
        exp.latest().prototype_distance
    );
}

#[test]
fn after_the_split_each_half_has_its_own_lower_critical_temperature() {
    let p = two_anisotropic_blobs("(t0: 15.0, gamma: 0.9, t_min: 2.0)", 2, "Em");
    let (exp, _, lambda) = anneal(&p);
    let g = groups(exp.gd_state(), 0.1);
    assert_eq!(g.iter().max(), Some(&1), "two groups");
    let crit = group_critical_temperatures(&exp, &g);
    // Each cloud's long-axis variance is 1 (std 1.0 along x) up to sampling and overlap.
    for c in &crit {
        assert!(*c > 0.7 && *c < 1.4 && *c < 0.2 * lambda, "{crit:?}");
    }
}

#[test]
fn schedules_out_of_range_are_refused_with_the_allowed_range() {
    assert!(Schedule::parse("1,2").unwrap_err().contains("T0,GAMMA,TMIN"));
    assert!(
        Schedule::parse("10,1.2,1")
            .unwrap_err()
            .contains("GAMMA must lie in (0, 1)")
    );
    assert!(
        Schedule::parse("10,0.9,20")
            .unwrap_err()
            .contains("TMIN must lie in [1e-300, T0 = 10], got 20")
    );
    assert!(
        Schedule::parse("1e308,0.9,1")
            .unwrap_err()
            .contains("T0 must lie in [1e-300, 1e300], got 1e308")
    );
    assert!(Schedule::parse("x,0.9,1").unwrap_err().contains("T0 must be a number"));
    assert_eq!(
        Schedule::parse(" 10, 0.9 ,1").unwrap(),
        Schedule {
            t0: 10.0,
            gamma: 0.9,
            t_min: 1.0
        }
    );
    let p = two_anisotropic_blobs("(t0: 15.0, gamma: 1.5, t_min: 2.0)", 2, "Shared");
    let e = p.validate().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("anneal.gamma"));
    assert!(e.message.contains("(0, 1)"), "{}", e.message);
}

#[test]
fn with_a_metric_the_split_comes_at_lambda_max_of_the_whitened_covariance() {
    // W = diag(0.5, 1) on both prototypes (fixed): the distance ½‖W(x − μ)‖² is that of the
    // points z = W x, so the first split comes at T_c = λ_max(W C Wᵀ) ≈ λ_max / 4 here.
    let p = parse(
        "(name: \"t\", objective: Mixture, temperature: 1.0, learning_rate: 1.0, rate: Shared, seed: 3,
          learn: (weights: false, scales: false, volume: true), metric: Diag,
          data: Gaussians(clouds: [
            (mean: [-3.0, 0.5], std: [1.0, 0.4], count: 200, label: 0),
            (mean: [3.0, -0.5], std: [1.0, 0.4], count: 200, label: 1)]),
          prototypes: Explicit(positions: [[0.0, 0.0], [0.0, 0.0]],
            precisions: [[[0.25, 0.0], [0.0, 1.0]], [[0.25, 0.0], [0.0, 1.0]]]),
          anneal: (t0: 4.0, gamma: 0.97, t_min: 1.5))",
        "test",
    )
    .unwrap();
    let (exp, a, lambda) = anneal(&p);
    // λ_max(W C Wᵀ), written out from the points.
    let problem = exp.problem();
    let n = problem.len() as f64;
    let z: Vec<[f64; 2]> = (0..problem.len())
        .map(|i| [0.5 * problem.point(i)[0], problem.point(i)[1]])
        .collect();
    let m = [
        z.iter().map(|v| v[0]).sum::<f64>() / n,
        z.iter().map(|v| v[1]).sum::<f64>() / n,
    ];
    let c = |a: usize, b: usize| z.iter().map(|v| (v[a] - m[a]) * (v[b] - m[b])).sum::<f64>() / n;
    let (xx, xy, yy) = (c(0, 0), c(0, 1), c(1, 1));
    let tc = 0.5 * (xx + yy) + (0.25 * (xx - yy).powi(2) + xy * xy).sqrt();
    assert!(
        (tc - lambda / 4.0).abs() < 0.05 * lambda,
        "T_c = {tc}, λ_max = {lambda}"
    );
    for s in a.settled.iter().filter(|s| s.temperature > tc) {
        assert_eq!((s.groups_gd, s.groups_em), (1, 1), "T = {}", s.temperature);
        assert!((s.critical[0] - tc).abs() < 1e-9 * tc, "{} vs {tc}", s.critical[0]);
    }
    for run in ["gd", "em"] {
        let first = a.splits.iter().find(|s| s.run == run).expect("a split");
        let rel = (first.temperature - tc) / tc;
        assert!(
            rel <= 0.0 && rel > -0.05,
            "{run}: split at T = {} vs T_c = {tc}",
            first.temperature
        );
    }
}

#[test]
fn the_outlook_names_only_splits_that_can_still_happen() {
    // Issue 13, item 13: the panel said "next critical temperature 0.4266" at T = 0.3 (the
    // largest over all groups, lone prototypes included, above T).
    use implicit_em_lab::session::anneal::Outlook;
    let p = two_anisotropic_blobs("(t0: 15.0, gamma: 0.9, t_min: 0.5)", 4, "Em");
    let (_, a, lambda) = anneal(&p);
    let first = a.settled.first().unwrap();
    // Four coincident prototypes above λ_max: the next split is at λ_max (1e-9).
    assert_eq!(first.members, vec![4]);
    match first.outlook(first.temperature) {
        Outlook::NextSplit(c) => assert!((c - lambda).abs() < 1e-9 * lambda, "{c} vs {lambda}"),
        other => panic!("{other:?}"),
    }
    for s in &a.settled {
        assert_eq!(s.members.iter().sum::<usize>(), 4);
        assert_eq!(s.members.len(), s.groups_gd);
        match s.outlook(s.temperature) {
            // A split still to come lies below T, and belongs to a group of two or more.
            Outlook::NextSplit(c) => {
                assert!(c < s.temperature, "{c} at T = {}", s.temperature);
                let g = s.critical.iter().position(|&x| x == c).unwrap();
                assert!(s.members[g] >= 2);
            }
            Outlook::Splitting { members, critical } => assert!(members >= 2 && critical >= s.temperature),
            Outlook::NoneLeft => assert!(s.members.iter().all(|&m| m == 1), "{:?}", s.members),
        }
    }
    // At T_min = 0.5 all four have separated: nothing left to split.
    assert_eq!(a.settled.last().unwrap().outlook(0.5), Outlook::NoneLeft);
    // Both runs split alike with the EM rate, counted apart.
    let (gd, em) = a.split_counts();
    assert_eq!(gd, em);
    assert_eq!(gd + em, a.splits.len());
    assert!(gd >= 2, "{:?}", a.splits);
}
