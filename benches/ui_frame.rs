//! One full UI frame of the lab (update and tessellation, headless), and the background grid.
//!
//! `cargo bench --bench ui_frame`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use eframe::egui;
use implicit_em_lab::app::LabApp;
use implicit_em_lab::app::view_data::{Grid, fields, point_colours};
use implicit_em_lab::core::workload::{Workload, workload};

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ui");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (n, k) in [(10_000, 16), (20_000, 16), (100_000, 16)] {
        let exp = workload(Workload::Mixture, n, k, 2, 1);
        let mut app = LabApp::from_experiment(exp);
        app.playback_mut().playing = true;
        let ctx = egui::Context::default();
        let input = || egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1320.0, 740.0))),
            ..Default::default()
        };
        // Settle the layout first.
        for _ in 0..3 {
            let out = ctx.run_ui(input(), |ui| app.frame_ui(ui));
            black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
        }
        group.bench_function(format!("frame N={n} K={k} grid 128, playing"), |b| {
            b.iter(|| {
                let out = ctx.run_ui(input(), |ui| app.frame_ui(ui));
                black_box(ctx.tessellate(out.shapes, out.pixels_per_point))
            });
        });
    }
    // A temperature slider tick: what one frame of dragging the slider costs on the UI thread
    // (the draft's live settings applied to the session, which re-evaluates both runs once).
    for (n, k) in [(20_000, 16), (100_000, 16)] {
        let mut app = LabApp::from_experiment(workload(Workload::Mixture, n, k, 2, 1));
        app.playback_mut().playing = false;
        app.advance(200);
        let mut tick = 0u32;
        group.bench_function(format!("temperature tick N={n} K={k}"), |b| {
            b.iter(|| {
                tick += 1;
                app.draft_mut().temperature = if tick.is_multiple_of(2) { 1.0 } else { 1.05 };
                app.apply_live();
                black_box(app.experiment().latest().gd.loss)
            });
        });
        // The same while the worker takes the steps: the evaluation goes with them.
        app.playback_mut().playing = true;
        app.worker_mut().measured(20.0, 1);
        group.bench_function(format!("temperature tick N={n} K={k}, stepping on the worker"), |b| {
            b.iter(|| {
                tick += 1;
                app.draft_mut().temperature = if tick.is_multiple_of(2) { 1.0 } else { 1.05 };
                app.apply_live();
                black_box(app.session().is_stale())
            });
        });
    }
    // The first tick of a gesture records an undo snapshot: after a long play (20,000 steps,
    // the window's full history) what that costs.
    {
        let mut app = LabApp::from_experiment(workload(Workload::Mixture, 20_000, 16, 2, 1));
        app.playback_mut().playing = false;
        app.advance(20_000);
        let mut gesture = 0u64;
        group.bench_function("undo snapshot after 20000 steps N=20000 K=16", |b| {
            b.iter(|| {
                gesture += 1;
                app.before_change(gesture, 0.0);
            });
        });
    }
    let exp = workload(Workload::Mixture, 20_000, 16, 2, 1);
    let grid = Grid {
        min: [-8.0, -8.0],
        max: [8.0, 8.0],
        width: 128,
        height: 128,
    };
    group.bench_function("background grid 128x128 K=16", |b| {
        b.iter(|| {
            black_box(fields(
                exp.problem(),
                exp.gd_state(),
                &grid,
                exp.problem().principal_plane(),
            ))
        });
    });
    group.bench_function("point colours N=20000 K=16", |b| {
        b.iter(|| black_box(point_colours(exp.problem(), exp.gd_state())));
    });
    group.bench_function("paired step N=20000 K=16", |b| {
        b.iter_batched(
            || exp.clone(),
            |mut e| black_box(e.step().is_ok()),
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
