//! Shared helpers for the integration tests: random seeded problems and states.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
#![allow(dead_code)]

use implicit_em_lab::core::data::{self, Dataset};
use implicit_em_lab::core::eval::Evaluation;
use implicit_em_lab::core::model::{ModelSpec, Regime, State};
use implicit_em_lab::core::problem::Problem;
use rand::RngExt;

/// Options for a random test case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub regime: Regime,
    pub dim: usize,
    pub k: usize,
    pub n: usize,
    pub temperature: f64,
    pub learn_weights: bool,
    pub learn_scales: bool,
    pub volume: bool,
    pub seed: u64,
}

impl Case {
    pub fn new(regime: Regime, dim: usize, seed: u64) -> Self {
        Self {
            regime,
            dim,
            k: 4,
            n: 40,
            temperature: 0.7,
            learn_weights: false,
            learn_scales: false,
            volume: true,
            seed,
        }
    }
}

/// Random labelled data (3 classes, every class present), targets of dimension 2 for attention.
pub fn random_data(case: &Case) -> Dataset {
    let mut rng = data::rng(case.seed);
    let mut data = Dataset {
        dim: case.dim,
        target_dim: 2,
        ..Dataset::default()
    };
    for i in 0..case.n {
        let x: Vec<f64> = (0..case.dim).map(|_| rng.random_range(-2.0..2.0)).collect();
        let t = [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)];
        data.push(&x, Some((i % 3) as u32), &t);
    }
    data
}

/// The problem and a random state (random prototypes, logits, log-scales, values).
pub fn random_case(case: &Case) -> (Problem, State) {
    let data = random_data(case);
    let mut spec = ModelSpec::new(case.regime, case.temperature);
    spec.settings.learn_weights = case.learn_weights;
    spec.settings.learn_scales = case.learn_scales;
    spec.settings.volume = case.volume;
    let k = if case.regime == Regime::CrossEntropy {
        3 * (case.k / 3).max(1)
    } else {
        case.k
    };
    if case.regime == Regime::CrossEntropy {
        spec.classes = (0..k).map(|j| j % 3).collect();
    }
    let problem = Problem::bind(data, spec).expect("valid problem");
    let mut rng = data::rng(case.seed.wrapping_mul(31).wrapping_add(7));
    let positions: Vec<f64> = (0..k * case.dim).map(|_| rng.random_range(-2.0..2.0)).collect();
    let mut state = State::new(case.dim, positions, problem.target_dim);
    state.log_weights = (0..k).map(|_| rng.random_range(-1.0..1.0)).collect();
    state.log_scales = (0..k).map(|_| rng.random_range(-0.5..0.8)).collect();
    state.values = (0..k * problem.target_dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    (problem, state)
}

/// Every regime the lab knows.
pub fn all_regimes() -> [Regime; 4] {
    use implicit_em_lab::core::model::Score;
    [
        Regime::Mixture,
        Regime::CrossEntropy,
        Regime::Attention { score: Score::Distance },
        Regime::Attention {
            score: Score::DotProduct,
        },
    ]
}

/// Every output of the fast evaluation equals the straightforward one to 1e-12, relative to each
/// block's largest entry.
pub fn assert_paths_agree(fast: &Evaluation, plain: &Evaluation, context: &str) {
    let blocks: [(&str, Vec<f64>, Vec<f64>); 12] = [
        ("∂J/∂W", fast.gradient.maps.clone(), plain.gradient.maps.clone()),
        ("∂J/∂b", fast.gradient.biases.clone(), plain.gradient.biases.clone()),
        (
            "scalars",
            vec![fast.loss, fast.em_objective, fast.mean_entropy],
            vec![plain.loss, plain.em_objective, plain.mean_entropy],
        ),
        (
            "∂J/∂μ",
            fast.gradient.prototypes.clone(),
            plain.gradient.prototypes.clone(),
        ),
        (
            "∂J/∂w",
            fast.gradient.log_weights.clone(),
            plain.gradient.log_weights.clone(),
        ),
        (
            "∂J/∂ρ",
            fast.gradient.log_scales.clone(),
            plain.gradient.log_scales.clone(),
        ),
        ("∂J/∂v", fast.gradient.values.clone(), plain.gradient.values.clone()),
        ("counts", fast.counts.clone(), plain.counts.clone()),
        ("em mass", fast.em.mass.clone(), plain.em.mass.clone()),
        ("em first", fast.em.first.clone(), plain.em.first.clone()),
        ("em sq", fast.em.sq_dev.clone(), plain.em.sq_dev.clone()),
        ("em targets", fast.em.targets.clone(), plain.em.targets.clone()),
    ];
    for (name, a, b) in blocks {
        assert_eq!(a.len(), b.len(), "{context}: {name}");
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-12 * scale,
                "{context}: {name}: {x} vs {y} (scale {scale})"
            );
        }
    }
}

/// A random problem whose components carry maps of `structure` (learned when `learn`), in
/// `form`: `W_j` near the identity with random entries (diagonal for `diag`, one for `tied`).
pub fn random_metric_case(
    case: &Case,
    structure: implicit_em_lab::core::model::Structure,
    form: implicit_em_lab::core::model::Form,
) -> (Problem, State) {
    use implicit_em_lab::core::model::Structure;
    let (mut problem, mut state) = random_case(case);
    problem.spec.structure = structure;
    problem.spec.settings.form = form;
    let d = case.dim;
    let mut rng = data::rng(case.seed.wrapping_mul(131).wrapping_add(3));
    state = state.with_structure(structure, 1.0);
    state.log_scales = vec![0.0; state.k];
    let mut one = || -> Vec<f64> {
        let mut w = vec![0.0; d * d];
        for r in 0..d {
            for c in 0..d {
                w[r * d + c] = if r == c {
                    rng.random_range(0.6..1.5)
                } else if structure == Structure::Diag {
                    0.0
                } else {
                    rng.random_range(-0.3..0.3)
                };
            }
        }
        w
    };
    if structure == Structure::Tied {
        state.maps = one().repeat(state.k);
    } else if structure.has_maps() {
        state.maps = (0..state.k).flat_map(|_| one()).collect();
    }
    (problem, state)
}
