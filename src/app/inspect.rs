//! The bottom panel (responsibilities of one point beside the independent derivative, the
//! responsibility matrix) and the formula strip.

use eframe::egui;
use egui_plot::{Bar, BarChart, Plot};

use super::scene_data;
use super::view_data::{self, num};
use super::{Convention, LabApp, Selection, ViewOptions};
use crate::core::eval::{Row, point_row};
use crate::core::model::Regime;
use crate::core::reference::{self, Derivative};
use crate::session::Session;

/// The point the inspector shows: the selected one, else the hovered one, else point 0.
fn inspected(session: &Session, selection: &Selection) -> usize {
    selection
        .selected
        .or(selection.hovered)
        .unwrap_or(0)
        .min(session.experiment().problem().len().saturating_sub(1))
}

/// Draws the inspector: reads the session and the selection, writes only the view (the sign
/// convention).
pub fn inspect_ui(
    ui: &mut egui::Ui,
    session: &Session,
    scrub: Option<usize>,
    selection: &Selection,
    view: &mut ViewOptions,
) {
    let i = inspected(session, selection);
    point_header_ui(ui, session, selection, view, i);
    // The step shown: a past one while scrubbing, as in the scene.
    let (problem, state) = scene_data::shown_state(session, scrub);
    let (problem, state) = (&problem, &state);
    let t = problem.spec.settings.temperature;
    let Some(row) = point_row(problem, state, i) else {
        ui.label("this point is unlabelled: it does not enter the cross-entropy objective");
        return;
    };
    // The independent derivative: dual numbers through the plain reference F_i.
    let independent = reference::free_energy_gradient(problem, state, i, Derivative::Dual);
    let paper = view.convention == Convention::Paper;
    let height = ui.available_height();
    let width = ui.available_width();
    let (w_bars, w_table) = (width * 0.3, width * 0.42);
    ui.horizontal_top(|ui| {
        ui.allocate_ui_with_layout(
            egui::vec2(w_bars, height),
            egui::Layout::top_down(egui::Align::Min),
            |ui| bars_ui(ui, &row, &independent, paper, t),
        );
        ui.separator();
        ui.allocate_ui_with_layout(
            egui::vec2(w_table, height),
            egui::Layout::top_down(egui::Align::Min),
            |ui| point_table_ui(ui, &row, &independent),
        );
        ui.separator();
        ui.allocate_ui_with_layout(
            egui::vec2(ui.available_width(), height),
            egui::Layout::top_down(egui::Align::Min),
            |ui| matrix_ui(ui, problem, state),
        );
    });
}

/// The inspected point's coordinates and label, and the sign convention switch.
fn point_header_ui(ui: &mut egui::Ui, session: &Session, selection: &Selection, view: &mut ViewOptions, i: usize) {
    let problem = session.experiment().problem();
    ui.horizontal(|ui| {
        ui.strong(format!("Point {i}"));
        let x = problem.point(i);
        ui.label(format!(
            "x = ({})  label {}",
            x.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", "),
            match problem.soft_label(i) {
                Some(p) => format!(
                    "soft ({})",
                    p.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", ")
                ),
                None => problem.labels[i].map_or("none".into(), |y| y.to_string()),
            }
        ));
        ui.label(if selection.selected.is_some() {
            "(selected: click a point in the scene)"
        } else {
            "(hover or click a point in the scene)"
        });
        ui.separator();
        ui.radio_value(&mut view.convention, Convention::FreeEnergy, "free energy")
            .on_hover_text("∂F_i/∂E_ij = +r_ij: the lab's losses are minimised and in free-energy units");
        ui.radio_value(&mut view.convention, Convention::Paper, "paper")
            .on_hover_text("L_i = log Σ_j exp(−d_ij/T) maximised: ∂L_i/∂d_ij = −r_ij/T (−r_ij at T = 1)");
    });
}

/// The point's responsibilities in closed form beside the independent derivative, as bars.
fn bars_ui(ui: &mut egui::Ui, row: &Row, independent: &[f64], paper: bool, t: f64) {
    let shown = |v: f64| if paper { -v / t } else { v };
    let k = row.responsibilities.len();
    let caption = if paper {
        "bars: −r_j/T (closed form), lighter: ∂L/∂d_j (dual numbers)"
    } else {
        "bars: r_j (closed form), lighter: ∂F/∂E_j (dual numbers)"
    };
    ui.add(egui::Label::new(egui::RichText::new(caption).small()).wrap());
    let closed: Vec<Bar> = (0..k)
        .map(|j| {
            Bar::new(j as f64 - 0.18, shown(row.responsibilities[j]))
                .width(0.34)
                .fill(view_data::colour(j))
        })
        .collect();
    let ind: Vec<Bar> = (0..k)
        .map(|j| {
            Bar::new(j as f64 + 0.18, shown(independent[j]))
                .width(0.34)
                .fill(view_data::colour(j).gamma_multiply(0.45))
        })
        .collect();
    Plot::new("bars")
        .height(ui.available_height() - 4.0)
        .width(ui.available_width())
        .allow_scroll(false)
        .allow_drag(false)
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("closed form", closed));
            plot.bar_chart(BarChart::new("dual numbers", ind));
        });
}

/// The point's distances, energies, responsibilities and energy gradients, per component.
fn point_table_ui(ui: &mut egui::Ui, row: &Row, independent: &[f64]) {
    let k = row.responsibilities.len();
    let worst = row
        .responsibilities
        .iter()
        .zip(independent)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    ui.label(format!("max |r_j − ∂F/∂E_j| = {worst:.1e}  (Theorem 1, dual numbers)"));
    egui::ScrollArea::both().id_salt("point-table").show(ui, |ui| {
        egui::Grid::new("point-numbers")
            .num_columns(5)
            .striped(true)
            .show(ui, |ui| {
                let (d_tip, e_tip) = if row.mahalanobis {
                    (
                        "Mahalanobis distance ½||W_j(x_i − μ_j)||² = ½ (x_i − μ_j)^T P_j (x_i − μ_j)",
                        "energy d_ij + T(−V log|det W_j| − log π_j)",
                    )
                } else {
                    (
                        "distance ||x_i − μ_j||²/(2 s_j), or −x_i·μ_j",
                        "energy d_ij + T(V (D/2) ρ_j − log π_j)",
                    )
                };
                for (h, tip) in [
                    ("j", "component"),
                    ("d_ij", d_tip),
                    ("E_ij", e_tip),
                    ("r_ij", "responsibility softmax_j(−E_ij/T)"),
                    (
                        "N ∂J/∂E_ij",
                        "the regime's law: r (mixture), q − r (cross-entropy), −α(a − ā)/T (attention)",
                    ),
                ] {
                    ui.strong(h).on_hover_text(tip);
                }
                ui.end_row();
                for j in 0..k {
                    ui.label(egui::RichText::new(format!("#{j}")).color(view_data::colour(j)));
                    ui.monospace(num(row.distances[j], 5));
                    ui.monospace(num(row.energies[j], 5));
                    ui.monospace(format!("{:.6}", row.responsibilities[j]));
                    ui.monospace(format!("{:+.6}", row.energy_gradient[j]));
                    ui.end_row();
                }
            });
    });
}

/// Rows of the responsibility matrix: every point up to this many, an even sample beyond.
const MATRIX_ROWS: usize = 2000;

/// The responsibility matrix: points (rows, grouped by their most responsible component) ×
/// components (columns), drawn as an image.
fn matrix_ui(ui: &mut egui::Ui, problem: &crate::core::problem::Problem, state: &crate::core::model::State) {
    let (m, rows) = view_data::responsibility_matrix(problem, state, MATRIX_ROWS);
    let k = state.k;
    let (w, h) = (k * 4, rows);
    let mut pixels = Vec::with_capacity(w * h);
    for r in 0..rows {
        for j in 0..k {
            let v = m[r * k + j];
            let c = view_data::colour(j);
            let px = egui::Color32::from_rgb(
                (f64::from(c.r()) * v) as u8,
                (f64::from(c.g()) * v) as u8,
                (f64::from(c.b()) * v) as u8,
            );
            pixels.extend(std::iter::repeat_n(px, 4));
        }
    }
    let image = egui::ColorImage::new([w, h], pixels);
    let texture = ui
        .ctx()
        .load_texture("responsibility-matrix", image, egui::TextureOptions::NEAREST);
    ui.add(
        egui::Label::new(format!(
            "responsibility matrix: {rows} points (rows, grouped by component) × {k} components"
        ))
        .wrap(),
    )
    .on_hover_text("Brightness of cell (i, j) is r_ij; rows are grouped by each point's most responsible component");
    let size = egui::vec2(ui.available_width(), (ui.available_height() - 4.0).max(60.0));
    ui.image((texture.id(), size));
}

/// The formula strip: the active objective and its gradient in the active convention, with
/// live numbers for the inspected point.
pub fn formula_ui(app: &LabApp, ui: &mut egui::Ui) {
    let problem = app.session.experiment().problem();
    let i = inspected(&app.session, &app.selection);
    let paper = app.view.convention == Convention::Paper;
    let soft = !problem.soft.is_empty();
    let (objective, gradient) = match (problem.spec.regime, paper) {
        (Regime::Mixture, _) if problem.spec.settings.unnormalised => (
            "J = −(T/N) Σ_i Σ_j exp(−E_ij/T)  (no normalisation: a sum of kernels)",
            "∂J/∂E_ij = exp(−E_ij/T) / N  (not a responsibility: Σ_j ≠ 1)",
        ),
        (Regime::CrossEntropy, _) if problem.spec.settings.semi_supervised && soft => (
            "J_S = (1/N) (Σ_labelled F^p_i + Σ_unlabelled F_i),  F^p = Σ_c p_c F^c  (semi-supervised, soft labels)",
            "∂J/∂E_ij = q_ij / N labelled (q_ij = p_c softmax within class c),  r_ij / N unlabelled",
        ),
        (Regime::CrossEntropy, false) if soft => (
            "J = (1/N) Σ_i (F^p_i − F_i),  F^p = Σ_c p_c F^c",
            "∂J/∂E_ij = (q_ij − r_ij) / N,  q = p_c × softmax in class c",
        ),
        (Regime::CrossEntropy, true) if soft => (
            "Σ_c p_c log p(c|x) = Σ_c p_c log Σ_{j in c} e^{−E/T} − log Σ_j e^{−E/T} (maximised)",
            "∂/∂E_ij = (r_ij − q_ij) / T",
        ),
        (Regime::CrossEntropy, _) if problem.spec.settings.semi_supervised => (
            "J_S = (1/N) (Σ_labelled F^y_i + Σ_unlabelled F_i)  (semi-supervised)",
            "∂J/∂E_ij = q_ij / N labelled,  r_ij / N unlabelled",
        ),
        (Regime::Mixture, false) => (
            "J = (1/N) Σ_i F_i,  F_i = −T log Σ_j exp(−E_ij/T)",
            "∂J/∂E_ij = r_ij / N",
        ),
        (Regime::Mixture, true) => ("L = Σ_i log Σ_j exp(−d_ij/T) (maximised)", "∂L/∂d_ij = −r_ij / T"),
        (Regime::CrossEntropy, false) => ("J = (1/N) Σ_i (F^y_i − F_i)", "∂J/∂E_ij = (q_ij − r_ij) / N"),
        (Regime::CrossEntropy, true) => (
            "log p(y|x) = log Σ_{j in y} e^{−E/T} − log Σ_j e^{−E/T} (maximised)",
            "∂/∂E_ij = (r_ij − q_ij) / T",
        ),
        (Regime::Attention { .. }, _) => (
            "J = (1/N) Σ_i ½||Σ_j α_ij v_j − t_i||²",
            "∂J/∂E_ij = −α_ij (a_ij − ā_i)/T,  a_ij = g_i·v_j",
        ),
    };
    let (shown_problem, shown) = scene_data::shown_state(&app.session, app.playback.scrub);
    let numbers = point_row(&shown_problem, &shown, i).map(|row| {
        let t = shown_problem.spec.settings.temperature;
        let fmt = |v: &[f64]| {
            v.iter()
                .take(6)
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ell = if row.responsibilities.len() > 6 { ", …" } else { "" };
        match (problem.spec.regime, paper) {
            (Regime::Attention { .. }, _) => format!(
                "point {i}: α = ({}{ell}),  N ∂J/∂E = ({}{ell})",
                fmt(&row.responsibilities),
                fmt(&row.energy_gradient)
            ),
            (_, false) => format!(
                "point {i}: r = ({}{ell}),  N ∂J/∂E = ({}{ell})",
                fmt(&row.responsibilities),
                fmt(&row.energy_gradient)
            ),
            (_, true) => {
                let g: Vec<f64> = row.energy_gradient.iter().map(|g| -g / t).collect();
                format!(
                    "point {i}: r = ({}{ell}),  ∂/∂d = ({}{ell})",
                    fmt(&row.responsibilities),
                    fmt(&g)
                )
            }
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.strong(objective);
        ui.label("   ");
        ui.strong(gradient);
        ui.label("   ");
        if let Some(n) = numbers {
            ui.monospace(n);
        }
    });
}
