//! Standard workloads for benchmarks and speed comparisons: the same data and start for the
//! criterion benches, the `bench` command (which the numpy / scikit-learn comparison calls) and
//! the equivalence tests.

use crate::core::data::init;
use crate::core::data::{self, Dataset};
use crate::core::experiment::Experiment;
use crate::core::model::Optimiser;
use crate::core::model::RateMode;
use crate::core::model::{ModelSpec, Regime, Score, State};
use crate::core::problem::Problem;

/// Which objective a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Mixture (only prototypes learned).
    Mixture,
    /// Attention with distance scores, one-hot targets of 4 classes (values in `R⁴`).
    Attention,
    /// Attention with distance scores and one regression target per point (values in `R¹`):
    /// `t = sin(x₁)·cos(x₂/2)`, as in the attention-regression preset.
    AttentionRegression,
    /// Cross-entropy, 4 classes, `K/4` prototypes per class.
    CrossEntropy,
}

impl Workload {
    /// Short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::Mixture => "mixture",
            Workload::Attention => "attention",
            Workload::AttentionRegression => "attention-regression",
            Workload::CrossEntropy => "cross-entropy",
        }
    }
}

/// `n` points in `dim` dimensions from 4 labelled Gaussian blobs, `k` prototypes placed uniformly
/// in the data's bounding box (per class for cross-entropy, so `k` should be a multiple of 4),
/// `T = 1`, `η = 0.5`, shared rate.
///
/// # Panics
/// Never for `n ≥ 4`, `k ≥ 4`, `dim ≥ 1` (the workload is always valid).
#[must_use]
pub fn workload(objective: Workload, n: usize, k: usize, dim: usize, seed: u64) -> Experiment {
    let mut data: Dataset = data::blobs(4, n, dim, 6.0, 1.0, seed);
    if objective == Workload::AttentionRegression {
        data.target_dim = 1;
        data.targets = (0..data.len()).map(|i| data::wave_target(data.point(i))).collect();
    }
    let regime = match objective {
        Workload::Mixture => Regime::Mixture,
        Workload::Attention | Workload::AttentionRegression => Regime::Attention { score: Score::Distance },
        Workload::CrossEntropy => Regime::CrossEntropy,
    };
    let mut spec = ModelSpec::new(regime, 1.0);
    let positions = if objective == Workload::CrossEntropy {
        let per = (k / 4).max(1);
        spec.classes = (0..4).flat_map(|c| std::iter::repeat_n(c, per)).collect();
        (0..4)
            .flat_map(|c| {
                let members: Vec<usize> = (0..data.len()).filter(|&i| data.labels[i] == Some(c as u32)).collect();
                init::uniform_in_box(&data, &members, per, seed + c as u64)
            })
            .collect()
    } else {
        let all: Vec<usize> = (0..data.len()).collect();
        init::uniform_in_box(&data, &all, k, seed + 7)
    };
    let problem = Problem::bind(data, spec).expect("the benchmark workload is valid");
    let state = State::new(dim, positions, problem.target_dim);
    Experiment::new(
        problem,
        state,
        Optimiser {
            learning_rate: 0.5,
            rate: RateMode::Shared,
        },
    )
    .expect("the benchmark workload starts finite")
}

/// A mixture with learned weights and metric of `structure` (MATH.md §8): `n` points from 4
/// Gaussian blobs in `dim` dimensions, `k` prototypes seeded by k-means++ (so no component
/// starts on a lone point), `T = 1`, `η = 0.05`, shared rate, then `warm` paired steps.
///
/// # Panics
/// Never for `n ≥ k ≥ 1`, `dim ≥ 1` (the workload is always valid).
#[must_use]
pub fn metric_workload(
    structure: crate::core::model::Structure,
    n: usize,
    k: usize,
    dim: usize,
    warm: usize,
) -> Experiment {
    let data: Dataset = data::blobs(4, n, dim, 6.0, 1.0, 1);
    let all: Vec<usize> = (0..data.len()).collect();
    let positions = init::kmeans_plus_plus(&data, &all, k, 8).expect("n ≥ k");
    let mut spec = ModelSpec::new(Regime::Mixture, 1.0);
    spec.structure = structure;
    spec.settings.learn_weights = true;
    spec.settings.learn_scales = true;
    let problem = Problem::bind(data, spec).expect("the benchmark workload is valid");
    let state = State::new(dim, positions, 0).with_structure(structure, 1.0);
    let mut exp = Experiment::new(
        problem,
        state,
        Optimiser {
            learning_rate: 0.05,
            rate: RateMode::Shared,
        },
    )
    .expect("the benchmark workload starts finite");
    for _ in 0..warm {
        if exp.step().is_err() {
            break;
        }
    }
    exp
}
