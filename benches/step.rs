//! Paired steps (one gradient step and one explicit EM step, each on its own state, so two
//! E-steps) for N ∈ {1k, 10k, 100k, 1M} × K ∈ {4, 16, 64} and each objective, the background
//! grid, and, as the baseline measured in the same run, the straightforward single-threaded
//! evaluation.
//!
//! `cargo bench --bench step` (all), or filter: `cargo bench --bench step -- paired/mixture`;
//! `-- metric` times the four metric structures at N = 100,000, K = 16, D = 2.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use implicit_em_lab::core::eval::{evaluate, evaluate_rows};
use implicit_em_lab::core::workload::{Workload, workload};

fn paired_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("paired");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for objective in [
        Workload::Mixture,
        Workload::Attention,
        Workload::AttentionRegression,
        Workload::CrossEntropy,
    ] {
        for n in [1_000, 10_000, 100_000, 1_000_000] {
            for k in [4, 16, 64] {
                let exp = workload(objective, n, k, 2, 1);
                group.bench_with_input(
                    BenchmarkId::new(objective.name(), format!("N={n}/K={k}")),
                    &exp,
                    |b, exp| {
                        b.iter_batched_ref(|| exp.clone(), |e| black_box(e.step().is_ok()), BatchSize::LargeInput);
                    },
                );
            }
        }
    }
    group.finish();
}

fn baseline(c: &mut Criterion) {
    // Two straightforward evaluations = the E-step work of one paired step.
    let mut group = c.benchmark_group("straightforward");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [10_000, 100_000] {
        let exp = workload(Workload::Mixture, n, 16, 2, 1);
        group.bench_function(BenchmarkId::new("two-evaluations", format!("N={n}/K=16")), |b| {
            b.iter(|| {
                black_box(evaluate_rows(exp.problem(), exp.gd_state()));
                black_box(evaluate_rows(exp.problem(), exp.em_state()));
            });
        });
        group.bench_function(BenchmarkId::new("two-fast-evaluations", format!("N={n}/K=16")), |b| {
            b.iter(|| {
                black_box(evaluate(exp.problem(), exp.gd_state()));
                black_box(evaluate(exp.problem(), exp.em_state()));
            });
        });
    }
    group.finish();
}

fn metric_step(c: &mut Criterion) {
    // Issue 14's budget: a paired step with full 2-D maps (weights and metric learned) within 2×
    // of the spherical one (weights and scales learned), both measured here, in one run.
    use implicit_em_lab::core::model::Structure;
    let mut group = c.benchmark_group("metric");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for structure in Structure::ALL {
        // A typical step (after 20), not the first from the start.
        let exp = implicit_em_lab::core::workload::metric_workload(structure, 100_000, 16, 2, 20);
        group.bench_with_input(
            BenchmarkId::new(structure.name(), "N=100000/K=16/D=2"),
            &exp,
            |b, exp| {
                b.iter_batched_ref(|| exp.clone(), |e| black_box(e.step().is_ok()), BatchSize::LargeInput);
            },
        );
    }
    group.finish();
}

criterion_group!(benches, paired_step, baseline, metric_step);
criterion_main!(benches);
