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
    let layout = widths(width, table_width(ui, &row));
    ui.horizontal_top(|ui| {
        if layout.bars > 0.0 {
            ui.allocate_ui_with_layout(
                egui::vec2(layout.bars, height),
                egui::Layout::top_down(egui::Align::Min),
                |ui| bars_ui(ui, &row, &independent, paper, t),
            );
            ui.separator();
        }
        ui.allocate_ui_with_layout(
            egui::vec2(layout.table, height),
            egui::Layout::top_down(egui::Align::Min),
            |ui| point_table_ui(ui, &row, &independent),
        );
        if layout.matrix > 0.0 {
            ui.separator();
            ui.allocate_ui_with_layout(
                egui::vec2(ui.available_width(), height),
                egui::Layout::top_down(egui::Align::Min),
                |ui| matrix_ui(ui, problem, state),
            );
        }
    });
}

/// The narrowest the responsibility matrix is drawn.
const MATRIX_MIN_WIDTH: f32 = 70.0;
/// The narrowest the bars are drawn.
const BARS_MIN_WIDTH: f32 = 80.0;
/// The narrowest grid column (egui's default is an interaction size, 40 points: the table
/// then needs more than its cells).
const MIN_COLUMN: f32 = 12.0;
/// Points between grid columns.
const COLUMN_GAP: f32 = 10.0;
/// A separator's room.
const SEPARATOR: f32 = 8.0;

/// How the inspector's width is shared (0: not drawn).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InspectorLayout {
    pub bars: f32,
    pub table: f32,
    pub matrix: f32,
}

/// The inspector's layout in `width` points, the table needing `table`: the table whole
/// first (it holds the identity's numbers), then the bars (at least [`BARS_MIN_WIDTH`]), then
/// the matrix (at least [`MATRIX_MIN_WIDTH`]), sharing what is left; only a table wider than
/// the whole inspector scrolls.
#[must_use]
pub fn widths(width: f32, table: f32) -> InspectorLayout {
    let table = table.min(width);
    let rest = width - table - SEPARATOR;
    if rest < BARS_MIN_WIDTH {
        return InspectorLayout {
            bars: 0.0,
            table: width,
            matrix: 0.0,
        };
    }
    if rest - SEPARATOR < BARS_MIN_WIDTH + MATRIX_MIN_WIDTH {
        return InspectorLayout {
            bars: rest,
            table,
            matrix: 0.0,
        };
    }
    let bars = ((rest - SEPARATOR) * 0.5).max(BARS_MIN_WIDTH);
    InspectorLayout {
        bars,
        table,
        matrix: rest - SEPARATOR - bars,
    }
}

/// The table's cells as text: `j`, `d`, `E`, `r`, `N ∂J/∂E` per component (never fixed-point
/// beyond `1e-3 … 1e6`, so no cell runs into its neighbour).
#[must_use]
pub fn table_cells(row: &Row) -> Vec<[String; 5]> {
    (0..row.responsibilities.len())
        .map(|j| {
            let g = row.energy_gradient[j];
            [
                format!("{j}"),
                num(row.distances[j], 4),
                num(row.energies[j], 4),
                num(row.responsibilities[j], 4),
                if g < 0.0 { num(g, 4) } else { format!("+{}", num(g, 4)) },
            ]
        })
        .collect()
}

/// Column headers of the point table.
const HEADERS: [&str; 5] = ["j", "d_ij", "E_ij", "r_ij", "N ∂J/∂E_ij"];

/// The width the point table needs: the widest cell of each column in the monospace font, the
/// gaps between them and a scroll bar's room.
fn table_width(ui: &egui::Ui, row: &Row) -> f32 {
    let mono = egui::TextStyle::Monospace.resolve(ui.style());
    let body = egui::TextStyle::Body.resolve(ui.style());
    let cells = table_cells(row);
    let measure = |text: &str, font: &egui::FontId| {
        ui.fonts_mut(|f| {
            f.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
    };
    (0..5)
        .map(|c| {
            let head = measure(HEADERS[c], &body);
            cells
                .iter()
                .map(|r| measure(&r[c], &mono))
                .fold(head.max(MIN_COLUMN), f32::max)
        })
        .sum::<f32>()
        + 4.0 * COLUMN_GAP
        + 16.0
}

/// The inspected point's coordinates and label, and the sign convention switch.
fn point_header_ui(ui: &mut egui::Ui, session: &Session, selection: &Selection, view: &mut ViewOptions, i: usize) {
    let problem = session.experiment().problem();
    // Wrapped, so a long label (soft labels, many coordinates) never pushes the switch away.
    ui.horizontal_wrapped(|ui| {
        ui.radio_value(&mut view.convention, Convention::FreeEnergy, "free energy")
            .on_hover_text("∂F_i/∂E_ij = +r_ij: the lab's losses are minimised and in free-energy units");
        ui.radio_value(&mut view.convention, Convention::Paper, "paper")
            .on_hover_text("L_i = log Σ_j exp(−d_ij/T) maximised: ∂L_i/∂d_ij = −r_ij/T (−r_ij at T = 1)");
        ui.separator();
        ui.strong(format!("Point {i}"));
        let x = problem.point(i);
        // At most six coordinates in the line (64 pushed the table out of the panel); all of
        // them on hover.
        let shown = |n: usize| x.iter().take(n).map(|v| num(*v, 4)).collect::<Vec<_>>().join(", ");
        let coordinates = if x.len() > 6 {
            format!("{}, … ({} coordinates)", shown(6), x.len())
        } else {
            shown(6)
        };
        ui.label(format!(
            "x = ({coordinates})  label {}",
            match problem.soft_label(i) {
                Some(p) => format!(
                    "soft ({})",
                    p.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", ")
                ),
                None => problem.labels[i].map_or("none".into(), |y| y.to_string()),
            }
        ))
        .on_hover_text(format!("x = ({})", shown(x.len())));
        ui.label(if selection.selected.is_some() {
            "(selected: click another)"
        } else {
            "(hover or click a point)"
        });
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
    let worst = row
        .responsibilities
        .iter()
        .zip(independent)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    ui.label(format!("max |r_j − ∂F/∂E_j| = {worst:.1e}")).on_hover_text(
        "Theorem 1: the largest difference between the closed-form responsibilities and the energy gradient of F_i by dual numbers (forward-mode automatic differentiation through a plain implementation)",
    );
    egui::ScrollArea::both().id_salt("point-table").show(ui, |ui| {
        egui::Grid::new("point-numbers")
            .num_columns(5)
            .spacing([COLUMN_GAP, 2.0])
            .min_col_width(MIN_COLUMN)
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
                let tips = [
                    "component",
                    d_tip,
                    e_tip,
                    "responsibility softmax_j(−E_ij/T)",
                    "the regime's law: r (mixture), q − r (cross-entropy), −α(a − ā)/T (attention)",
                ];
                for (h, tip) in HEADERS.iter().zip(tips) {
                    ui.add(egui::Label::new(egui::RichText::new(*h).strong()).extend())
                        .on_hover_text(tip);
                }
                ui.end_row();
                for (j, cells) in table_cells(row).into_iter().enumerate() {
                    for (c, text) in cells.into_iter().enumerate() {
                        let text = egui::RichText::new(text).monospace();
                        let text = if c == 0 { text.color(view_data::colour(j)) } else { text };
                        // Never wrapped or cut: a narrow table scrolls instead.
                        ui.add(egui::Label::new(text).extend());
                    }
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
