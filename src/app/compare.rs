//! The right panel: explicit EM beside gradient descent.

use eframe::egui;
use egui_plot::{Legend, Line, Plot, VLine};

use super::Playback;
use super::view_data::{self, num};
use crate::core::experiment::StepRecord;
use crate::core::model::Regime;
use crate::session::Session;
use crate::session::anneal::Outlook;
use crate::session::twin::Twin;

/// Draws the comparison and the step slider: reads the session, writes only the playback (the
/// step shown; scrubbing pauses).
pub fn compare_ui(ui: &mut egui::Ui, session: &Session, playback: &mut Playback, residual_max: f64) {
    ui.strong("Explicit EM beside gradient descent");
    if let Some(a) = session.annealer() {
        let problem = session.experiment().problem();
        let span = (0..problem.len())
            .map(|i| problem.point(i)[0])
            .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], x| [lo.min(x), hi.max(x)]);
        bifurcation_ui(ui, a, session.critical_temperature(), session.temperature(), span);
    }
    scrub_ui(ui, session, playback);
    let trace = session.experiment().trace();
    let last = trace.len() - 1;
    let rec = &trace[playback.scrub.unwrap_or(last).min(last)];
    let twin = session.twin();
    losses_plot_ui(ui, trace, rec, twin);
    distance_plot_ui(ui, trace, rec);
    masses_plot_ui(ui, trace, rec);
    if rec.gd.maps.is_some() {
        volume_plot_ui(ui, trace, rec);
    }
    numbers_ui(ui, session, residual_max, rec);
    per_prototype_ui(ui, session, rec);
}

/// Every `every`-th record's `f`, against its step (the series a history plot draws).
fn series(trace: &[StepRecord], most: usize, f: impl Fn(&StepRecord) -> f64) -> Vec<[f64; 2]> {
    let every = (trace.len() / most).max(1);
    trace.iter().step_by(every).map(|r| [r.step as f64, f(r)]).collect()
}

/// The step slider: scrub back through the history (pauses).
fn scrub_ui(ui: &mut egui::Ui, session: &Session, playback: &mut Playback) {
    let trace = session.experiment().trace();
    let last = trace.len() - 1;
    let shown = playback.scrub.unwrap_or(last).min(last);
    let mut s = shown;
    let r = ui
        .add(
            egui::Slider::new(&mut s, 0..=last)
                .text("step shown")
                .custom_formatter(|v, _| trace[(v as usize).min(last)].step.to_string())
                .custom_parser(|text| {
                    // A typed step number selects the last kept record at or before it.
                    let step = text.trim().parse::<usize>().ok()?;
                    Some(trace.iter().rposition(|r| r.step <= step).unwrap_or(0) as f64)
                }),
        )
        .on_hover_text("Scrub back through the history: the scene shows that step's prototypes. Play returns to live.");
    if r.changed() {
        playback.playing = false;
        playback.scrub = (s < last).then_some(s);
    }
}

/// A plot title with a *log* switch at its right (kept in egui's persisted memory under `id`):
/// whether the plot below is drawn on a log scale.
fn title_with_log(ui: &mut egui::Ui, title: &str, id: &str, tip: &str) -> bool {
    let key = egui::Id::unique(("log scale", id));
    let mut log = ui.data_mut(|d| *d.get_persisted_mut_or_default::<bool>(key));
    // The title wraps in the room the switch leaves (a long one was cut at the panel's edge).
    ui.horizontal_top(|ui| {
        let room = (ui.clip_rect().width() - 56.0).max(60.0);
        ui.allocate_ui(egui::vec2(room, 0.0), |ui| {
            ui.add(egui::Label::new(title).wrap());
        });
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
            ui.checkbox(&mut log, "log").on_hover_text(tip);
        });
    });
    ui.data_mut(|d| d.insert_persisted(key, log));
    log
}

/// `log10` of each point's value, without the points at or below `floor` (a log axis has no
/// place for them).
fn log10_points(points: Vec<[f64; 2]>, floor: f64) -> Vec<[f64; 2]> {
    points
        .into_iter()
        .filter(|p| p[1] > floor && p[1].is_finite())
        .map(|p| [p[0], p[1].log10()])
        .collect()
}

/// What the losses plot draws on a log scale: `J − J*`, with `J*` the lowest loss any run has
/// reached, less one part in 10^12 of it (so the best run's last step stays on the axis, at
/// the level of rounding).
#[must_use]
pub fn excess_losses(series: &[Vec<[f64; 2]>]) -> Vec<Vec<[f64; 2]>> {
    let best = series
        .iter()
        .flatten()
        .map(|p| p[1])
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let offset = best - 1e-12 * best.abs().max(1e-300);
    series
        .iter()
        .map(|s| log10_points(s.iter().map(|p| [p[0], p[1] - offset]).collect(), 0.0))
        .collect()
}

/// Each run's loss over the steps, the twin's dashed; on a log scale, each run's excess over
/// the best loss reached.
fn losses_plot_ui(ui: &mut egui::Ui, trace: &[StepRecord], rec: &StepRecord, twin: Option<&Twin>) {
    let log = title_with_log(
        ui,
        "loss J of each run",
        "losses",
        "Log scale: J - J*, the excess over the lowest loss any run has reached (J* less 1e-12 of itself, so the best run stays on the axis), in decades",
    );
    let mut lines = vec![series(trace, 600, |r| r.gd.loss), series(trace, 600, |r| r.em.loss)];
    if let Some(t) = twin {
        lines.push(series(t.experiment.trace(), 600, |r| r.gd.loss));
    }
    if log {
        lines = excess_losses(&lines);
    }
    let plot = Plot::new(("losses", log))
        .height(150.0)
        .legend(Legend::default())
        .allow_scroll(false);
    let plot = if log {
        view_data::log_y_ticks(plot).y_axis_label("J - J*")
    } else {
        view_data::short_ticks(plot)
    };
    plot.show(ui, |plot| {
        let mut lines = lines.into_iter();
        plot.line(
            Line::new("gradient descent", lines.next().unwrap_or_default())
                .color(view_data::colour(0))
                .width(2.0),
        );
        plot.line(
            Line::new("explicit EM", lines.next().unwrap_or_default())
                .color(view_data::colour(1))
                .width(1.5),
        );
        if let Some(path) = lines.next() {
            plot.line(
                Line::new("twin GD", path)
                    .color(egui::Color32::GRAY)
                    .width(1.5)
                    .style(egui_plot::LineStyle::dashed_dense()),
            );
        }
        plot.vline(VLine::new("step shown", rec.step as f64).color(egui::Color32::GRAY));
    });
}

/// The distance between the two runs' prototype sets over the steps; on a log scale, distances
/// below the floor (rounding) are left out.
fn distance_plot_ui(ui: &mut egui::Ui, trace: &[StepRecord], rec: &StepRecord) {
    let log = title_with_log(
        ui,
        "distance between the prototype sets √Σ||μ_GD − μ_EM||²",
        "distance",
        "Log scale, in decades; distances below 1e-12 (rounding: GD and EM that coincide differ by about 1e-15) are left out",
    );
    let distances = series(trace, 600, |r| r.prototype_distance);
    let plot = Plot::new(("distance", log)).height(90.0).allow_scroll(false);
    let (plot, points) = if log {
        (
            view_data::log_y_ticks(plot),
            log10_points(distances, view_data::DISTANCE_FLOOR),
        )
    } else {
        // Rounding noise (1e-15 when GD and EM coincide) reads 0 rather than a spike.
        let floored = distances
            .into_iter()
            .map(|[s, d]| [s, if d < view_data::DISTANCE_FLOOR { 0.0 } else { d }])
            .collect();
        (view_data::short_ticks(plot), floored)
    };
    plot.show(ui, |plot| {
        plot.line(Line::new("distance", points).color(view_data::colour(2)).width(1.5));
        plot.vline(VLine::new("step shown", rec.step as f64).color(egui::Color32::GRAY));
    });
}

/// Each component's mass over the steps (GD; EM dashed for a few components).
fn masses_plot_ui(ui: &mut egui::Ui, trace: &[StepRecord], rec: &StepRecord) {
    ui.add(egui::Label::new("mass N_j = Σ_i r_ij of each component (GD; dashed: EM, for K ≤ 8)").wrap())
        .on_hover_text("The rich get richer: a component that holds more points pulls harder and gains more. A component whose mass falls below 1e-6·N is reported dead");
    per_component_plot(ui, "masses", "N", trace, rec, |r, j| Some(r.counts[j]));
}

/// One line per component of `value` over the steps (GD solid; EM dashed for K ≤ 8), 200 points
/// per line, the shown step marked.
fn per_component_plot(
    ui: &mut egui::Ui,
    id: &str,
    name: &str,
    trace: &[StepRecord],
    rec: &StepRecord,
    value: impl Fn(&crate::core::experiment::RunRecord, usize) -> Option<f64>,
) {
    let k = rec.gd.prototypes.len();
    let every = (trace.len() / 200).max(1);
    view_data::short_ticks(Plot::new(id))
        .height(110.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            for j in 0..k {
                let series = |em: bool| -> Vec<[f64; 2]> {
                    trace
                        .iter()
                        .step_by(every)
                        .filter_map(|r| value(if em { &r.em } else { &r.gd }, j).map(|v| [r.step as f64, v]))
                        .filter(|p| p[1].is_finite())
                        .collect()
                };
                plot.line(
                    Line::new(format!("{name}_{j} GD"), series(false))
                        .color(view_data::colour(j))
                        .width(1.5),
                );
                if k > 8 {
                    continue;
                }
                plot.line(
                    Line::new(format!("{name}_{j} EM"), series(true))
                        .color(view_data::colour(j).gamma_multiply(0.6))
                        .width(1.0)
                        .style(egui_plot::LineStyle::dashed_dense()),
                );
            }
            plot.vline(VLine::new("step shown", rec.step as f64).color(egui::Color32::GRAY));
        });
}

/// `log|det W_j|` of a record's map `j` (`None` without maps).
fn log_det(run: &crate::core::experiment::RunRecord, j: usize) -> Option<f64> {
    let w = run.maps.as_ref()?.get(j)?;
    Some(crate::core::metric::log_abs_det(&w.concat(), w.len()))
}

/// `log|det W_j|` over the steps: the volume each component claims (MATH.md §8). It runs away
/// upwards on collinear points (the singularity), downwards in the metric collapse.
fn volume_plot_ui(ui: &mut egui::Ui, trace: &[StepRecord], rec: &StepRecord) {
    ui.add(egui::Label::new("log|det W_j| of each component (GD; dashed: EM, for K ≤ 8)").wrap())
        .on_hover_text(
        "The volume term −T·log|det W_j| in E_ij: a component's precision. It rises without bound for a component on collinear points (the singularity: EM is held by reg_covar, gradient descent is not) and falls towards −∞ in the metric collapse (W_j -> 0, no volume term)",
    );
    per_component_plot(ui, "volumes", "log|det W|", trace, rec, log_det);
}

/// The shown step's numbers: losses, distance, effective components, residual, rate.
fn numbers_ui(ui: &mut egui::Ui, session: &Session, residual_max: f64, rec: &StepRecord) {
    let twin = session.twin();
    egui::Grid::new("numbers").num_columns(2).striped(true).show(ui, |ui| {
        ui.label("GD loss");
        ui.monospace(num(rec.gd.loss, 11));
        ui.end_row();
        if let Some(t) = twin {
            let last = t.experiment.latest();
            ui.label("twin GD loss").on_hover_text(format!(
                "The twin ({}): the same experiment with one choice flipped, from the states it had when the twin was switched on, stepped beside it (triangles in the scene, dashed loss)",
                t.flip.label()
            ));
            match &t.stopped {
                Some(why) => ui.monospace("stopped").on_hover_text(why.as_str()),
                None => ui.monospace(num(last.gd.loss, 11)),
            };
            ui.end_row();
            match last.gd.maps {
                Some(_) => {
                    ui.label("twin log|det W|");
                    let k = last.gd.prototypes.len().min(6);
                    ui.monospace(
                        (0..k)
                            .filter_map(|j| log_det(&last.gd, j))
                            .map(|v| num(v, 4))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                None => {
                    ui.label("twin scales");
                    ui.monospace(last.gd.scales.iter().take(6).map(|&s| num(s, 4)).collect::<Vec<_>>().join(" "));
                }
            }
            ui.end_row();
        }
        ui.label("EM loss");
        ui.monospace(num(rec.em.loss, 11));
        ui.end_row();
        ui.label("prototype distance");
        ui.monospace(num(rec.prototype_distance, 4));
        ui.end_row();
        ui.label("effective components")
            .on_hover_text("exp(H(N_j/N)): K when all components share the data equally, 1 when one takes all");
        ui.monospace(format!(
            "GD {:.3} EM {:.3}",
            rec.effective_components.gd, rec.effective_components.em
        ));
        ui.end_row();
        ui.label("identity residual").on_hover_text(
            "max over ≤128 sampled points of |N ∂J/∂E_ij (dual numbers) − closed form|, at the GD state",
        );
        ui.monospace(format!("{:.1e}", rec.identity_residual));
        ui.end_row();
        ui.label("largest so far")
            .on_hover_text("The largest identity residual of this session's steps");
        ui.monospace(format!("{:.1e}", residual_max.max(rec.identity_residual)));
        ui.end_row();
        ui.label("rate");
        ui.monospace(format!(
            "{} η = {}",
            session.experiment().settings().optimiser.rate.name(),
            num(session.experiment().settings().optimiser.learning_rate, 4)
        ));
        ui.end_row();
    });
}

/// Per prototype: the cosine and fraction of EM's step GD takes, mass, weight, scale; then the
/// value alignments and the warnings.
fn per_prototype_ui(ui: &mut egui::Ui, session: &Session, rec: &StepRecord) {
    ui.separator();
    ui.label("per prototype (from the GD state)").on_hover_text(
        "cos: cosine between the GD step and the EM step of μ_j. α_j: the fraction of EM's step GD takes, (Δ_GD·Δ_EM)/||Δ_EM||² (η N_j/(N s_j) for the mixture with a shared rate). N_j = Σ_i r_ij.",
    );
    let ce = session.experiment().problem().spec.regime == Regime::CrossEntropy;
    let classes = session.experiment().problem().spec.classes.clone();
    // The table alone scrolls sideways when the panel is narrow (the whole panel scrolling
    // let every plot and right-aligned switch grow past the visible edge).
    egui::ScrollArea::horizontal()
        .id_salt("per-prototype scroll")
        .show(ui, |ui| {
            egui::Grid::new("per-prototype")
                .num_columns(6)
                .striped(true)
                .show(ui, |ui| {
                    let maps = rec.gd.maps.is_some();
                    for h in [
                        "j",
                        "cos",
                        "α_j",
                        "N_j GD",
                        "π_j",
                        if maps { "log|det W_j|" } else { "s_j" },
                    ] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for j in 0..rec.gd.prototypes.len() {
                        let c = if ce {
                            view_data::colour(classes[j])
                        } else {
                            view_data::colour(j)
                        };
                        ui.label(egui::RichText::new(format!("#{j}")).color(c));
                        let opt = |v: Option<f64>, p: usize| v.map_or("—".to_string(), |v| format!("{v:.p$}"));
                        ui.monospace(opt(rec.alignment[j], 6));
                        ui.monospace(opt(rec.step_fraction[j], 4));
                        ui.monospace(num(rec.gd.counts[j], 5));
                        ui.monospace(format!("{:.3}", rec.gd.weights[j]));
                        match log_det(&rec.gd, j) {
                            Some(v) => ui.monospace(num(v, 4)),
                            None => ui.monospace(num(rec.gd.scales[j], 4)),
                        };
                        ui.end_row();
                    }
                });
        });
    if !rec.value_alignment.is_empty() {
        ui.separator();
        ui.label("values: cos(GD step, EM step)").on_hover_text(
            "GD moves v_j along Σ_i α_ij (t_i − o_i), EM to the α-weighted mean target (along Σ_i α_ij (t_i − v_j)); they agree as T -> 0",
        );
        ui.horizontal_wrapped(|ui| {
            for (j, c) in rec.value_alignment.iter().enumerate() {
                ui.monospace(format!("#{j} {}", c.map_or("—".to_string(), |c| format!("{c:+.3}"))));
            }
        });
    }
    if !rec.warnings.is_empty() {
        ui.separator();
        for w in &rec.warnings {
            ui.colored_label(ui.visuals().warn_fg_color, w);
        }
    }
}

/// The bifurcation plot of an annealing run: each prototype's first coordinate at every settled
/// temperature, the data's critical temperature `λ_max`, the splits found, and the current `T`.
fn bifurcation_ui(ui: &mut egui::Ui, a: &crate::session::anneal::Annealer, lambda: f64, now: f64, span: [f64; 2]) {
    ui.label(format!(
        "annealing from T = {} to {} (×{} per settled temperature): μ_j,1 against T (log scale)",
        a.schedule.t0, a.schedule.t_min, a.schedule.gamma
    ))
    .on_hover_text(
        "Deterministic annealing (MATH.md §6): at each temperature both runs settle (a tiny shake lets coincident prototypes separate), then T becomes max(T_min, γT). Prototypes split where T falls below a critical temperature: λ_max of the data covariance for the first (dashed), λ_max of each group's responsibility-weighted covariance for later ones.",
    );
    let k = a.settled.first().map_or(0, |s| s.prototypes.len());
    // The y range spans the data's first coordinate, so the shake before a split (1e-4 of the
    // data's scale) stays a flat line instead of filling the plot.
    let [lo, hi] = span;
    view_data::log_x_ticks(Plot::new("bifurcation"))
        .include_y(lo)
        .include_y(hi)
        .height(150.0)
        .allow_scroll(false)
        .x_axis_label("T")
        .y_axis_label("μ_j,1")
        .show(ui, |plot| {
            for j in 0..k {
                let path: Vec<[f64; 2]> = a
                    .settled
                    .iter()
                    .map(|s| [s.temperature.log10(), s.prototypes[j][0]])
                    .collect();
                plot.line(Line::new(format!("μ{j}"), path).color(view_data::colour(j)).width(1.5));
            }
            plot.vline(
                VLine::new("T_c = λ_max", lambda.log10())
                    .color(egui::Color32::GRAY)
                    .style(egui_plot::LineStyle::dashed_dense()),
            );
            for s in a.splits.iter().filter(|s| s.run == "gd") {
                plot.vline(
                    VLine::new(format!("split to {}", s.components), s.temperature.log10())
                        .color(egui::Color32::from_rgb(214, 39, 40))
                        .width(0.8),
                );
            }
            // The critical temperatures of the current groups of coincident prototypes (dotted):
            // where the next splits will happen.
            if let Some(last) = a.settled.last() {
                for (g, &c) in last.critical.iter().enumerate() {
                    if c > 0.0 {
                        plot.vline(
                            VLine::new(format!("critical T of group {g}"), c.log10())
                                .color(egui::Color32::GRAY.gamma_multiply(0.7))
                                .style(egui_plot::LineStyle::dotted_dense()),
                        );
                    }
                }
            }
            plot.vline(VLine::new("T now", now.log10()).color(egui::Color32::DARK_GREEN));
        });
    let (gd, em) = a.split_counts();
    let outlook = match a.settled.last().map(|s| s.outlook(now)) {
        Some(Outlook::NextSplit(c)) => format!("; next split below T = {}", num(c, 4)),
        Some(Outlook::Splitting { members, critical }) => format!(
            "; {members} coincident prototypes are below their T_c = {} and separating",
            num(critical, 4)
        ),
        Some(Outlook::NoneLeft) => "; every prototype on its own, no split left".into(),
        None => String::new(),
    };
    ui.add(egui::Label::new(format!("T = {}; splits found: {gd} (explicit EM: {em}){outlook}", num(now, 4))).wrap())
        .on_hover_text("Only a group of two or more coincident prototypes can split; its critical temperature is λ_max of its responsibility-weighted covariance over its scale");
}

#[cfg(test)]
mod tests {
    use super::excess_losses;

    #[test]
    fn log_losses_are_decades_above_the_best() {
        // J* = 2 (less 2e-12); the first run sits 1 and 0.01 above it, the second reaches it.
        let runs = vec![
            vec![[0.0, 3.0], [1.0, 2.01]],
            vec![[0.0, 2.1], [1.0, 2.0], [2.0, f64::NAN]],
        ];
        let logs = excess_losses(&runs);
        assert_eq!(logs.len(), 2);
        assert!((logs[0][0][1] - (1.0_f64 + 2e-12).log10()).abs() < 1e-12);
        assert!((logs[0][1][1] - (0.01_f64 + 2e-12).log10()).abs() < 1e-9);
        assert!((logs[1][0][1] - (0.1_f64 + 2e-12).log10()).abs() < 1e-9);
        // The best run's last finite step stays on the plot, at the rounding level; NaN goes.
        assert_eq!(logs[1].len(), 2);
        assert!((logs[1][1][1] - (2e-12_f64).log10()).abs() < 1e-3, "{}", logs[1][1][1]);
    }
}
