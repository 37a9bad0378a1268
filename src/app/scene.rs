//! The central scene: points coloured by responsibility, GD (filled) and EM (hollow)
//! prototypes with trails, the background field, read-outs, the decision boundary; dragging
//! prototypes and adding or removing points.

use std::ops::RangeInclusive;

use eframe::egui::{self, Color32, Shape, Stroke};
use egui_plot::{
    Line, MarkerShape, Plot, PlotBounds, PlotGeometry, PlotImage, PlotItem, PlotItemBase, PlotPoint, PlotTransform,
    Points,
};

use super::markers::{self, Mark, Markers, overlay_item_parts};
use super::scene_data::{self, MAX_DRAWN_POINTS, SceneData};
use super::view_data::{self, Fields, Grid};
use super::{Background, Command, LabApp, Tool};
use crate::core::model::{Regime, State};
use crate::preset::DataSpec;

/// Scene state that lives across frames.
#[derive(Default)]
pub struct SceneState {
    /// Where the scene was drawn (for the scene PNG export).
    pub rect: Option<egui::Rect>,
    transform: Option<PlotTransform>,
    dragging: Option<usize>,
    texture: Option<egui::TextureHandle>,
    cache_key: Vec<f64>,
    fields: Option<(Grid, Fields)>,
    /// Points drawn on the last frame (all, or a reduced view).
    pub drawn_points: usize,
    /// The view follows the content's fit (set by a fit, cleared when the user pans or zooms):
    /// while it does, a change of the plot's size refits.
    fit_sticky: bool,
    /// The plot size the view was last fitted for.
    fitted_size: Option<[f32; 2]>,
    /// The session generation the view was last fitted for.
    fitted_generation: Option<u64>,
}

impl SceneState {
    /// Fits the view to the content on the next frames ([`scene_data::fit_view`]).
    pub fn request_fit(&mut self) {
        self.fit_sticky = true;
        self.fitted_size = None;
    }

    /// The last frame's plot transform.
    #[must_use]
    pub fn transform(&self) -> Option<&PlotTransform> {
        self.transform.as_ref()
    }
}

/// Points with one colour each, drawn as small discs (one plot item, however many points).
struct ColouredPoints {
    base: PlotItemBase,
    points: Vec<PlotPoint>,
    colours: Vec<Color32>,
    radius: f32,
    outline: Option<Vec<Color32>>,
}

/// Above this many points, points are drawn as one mesh of small squares (one shape instead of
/// thousands of anti-aliased circles).
const MESH_ABOVE: usize = 3000;

impl PlotItem for ColouredPoints {
    fn shapes(&self, _ui: &egui::Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        let frame = transform.frame().expand(self.radius);
        if self.points.len() > MESH_ABOVE {
            let mut mesh = egui::Mesh::default();
            mesh.reserve_triangles(2 * self.points.len());
            mesh.reserve_vertices(4 * self.points.len());
            let r = self.radius;
            for (i, (p, c)) in self.points.iter().zip(&self.colours).enumerate() {
                let pos = transform.position_from_point(p);
                if frame.contains(pos) {
                    if let Some(o) = &self.outline {
                        mesh.add_colored_rect(
                            egui::Rect::from_center_size(pos, egui::vec2(2.0 * r + 2.0, 2.0 * r + 2.0)),
                            o[i],
                        );
                    }
                    mesh.add_colored_rect(egui::Rect::from_center_size(pos, egui::vec2(2.0 * r, 2.0 * r)), *c);
                }
            }
            shapes.push(Shape::mesh(mesh));
            return;
        }
        for (i, (p, c)) in self.points.iter().zip(&self.colours).enumerate() {
            let pos = transform.position_from_point(p);
            if frame.contains(pos) {
                shapes.push(Shape::circle_filled(pos, self.radius, *c));
                if let Some(o) = &self.outline {
                    shapes.push(Shape::circle_stroke(pos, self.radius + 0.8, Stroke::new(1.2, o[i])));
                }
            }
        }
    }
    fn initialize(&mut self, _x_range: RangeInclusive<f64>) {}
    fn color(&self) -> Color32 {
        Color32::GRAY
    }
    fn geometry(&self) -> PlotGeometry<'_> {
        PlotGeometry::Points(&self.points)
    }
    fn bounds(&self) -> PlotBounds {
        let mut b = PlotBounds::NOTHING;
        for p in &self.points {
            b.extend_with(p);
        }
        b
    }
    fn base(&self) -> &PlotItemBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut PlotItemBase {
        &mut self.base
    }
}

/// Line segments in plot coordinates (contours, boundaries, read-out links).
struct Segments {
    base: PlotItemBase,
    segments: Vec<[[f64; 2]; 2]>,
    stroke: Stroke,
}

impl PlotItem for Segments {
    fn shapes(&self, _ui: &egui::Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        for s in &self.segments {
            let a = transform.position_from_point(&PlotPoint::new(s[0][0], s[0][1]));
            let b = transform.position_from_point(&PlotPoint::new(s[1][0], s[1][1]));
            shapes.push(Shape::line_segment([a, b], self.stroke));
        }
    }
    overlay_item_parts!(self, self.stroke.color);
}

/// Pixels the plot's axes take from the scene's room (an estimate for a plot's first frame).
const AXIS_ROOM: [f32; 2] = [40.0, 24.0];

/// Draws the scene and handles its mouse interactions.
pub fn scene_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let data = SceneData::new(
        &app.session,
        &app.view,
        app.playback.scrub,
        app.selection.selected,
        &app.doc.draft.probes,
    );
    app.scene.drawn_points = data.drawn.len();
    header_ui(app, ui, &data);
    // At the shown step's temperature (a past annealing step has its own T).
    let problem = &data.problem;
    let ce = problem.spec.regime == Regime::CrossEntropy;

    // Hit-testing with the previous frame's transform (the plot has not been laid out yet).
    let pointer = ui.ctx().pointer_hover_pos();
    let k = data.gd.k;
    let near_prototype = |transform: &PlotTransform, pos: egui::Pos2| -> Option<usize> {
        (0..k)
            .map(|j| {
                (
                    j,
                    transform
                        .position_from_point(&PlotPoint::from(data.gd_prototype(j)))
                        .distance(pos),
                )
            })
            .filter(|(_, d)| *d < 12.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(j, _)| j)
    };
    let over_prototype = match (&app.scene.transform, pointer) {
        (Some(t), Some(p)) if app.selection.tool == Tool::Select && data.shown_step.is_none() => near_prototype(t, p),
        _ => None,
    };
    let interacting = over_prototype.is_some() || app.scene.dragging.is_some() || app.selection.tool != Tool::Select;
    if app.view.background != Background::None || ce {
        update_fields(app, ui, problem, &data.gd, &data.projection);
    }
    let dark = ui.visuals().dark_mode;
    let fg = if dark {
        Color32::from_gray(220)
    } else {
        Color32::from_gray(30)
    };
    let ((fit_lo, fit_hi), fit) = fitted_view(app, ui, &data);
    let equal = scene_data::equal_axes(data.content);
    let [x_name, y_name] = scene_data::axis_names(problem, &data.projection);
    let mut plot = view_data::short_ticks(Plot::new(("scene", app.scene_generation(), equal)))
        .x_axis_label(x_name)
        .y_axis_label(y_name);
    if equal {
        plot = plot.data_aspect(1.0);
    }
    let plot = plot
        .default_x_bounds(fit_lo[0], fit_hi[0])
        .default_y_bounds(fit_lo[1], fit_hi[1])
        .auto_bounds(egui::Vec2b::FALSE)
        // Double-click fits the view (egui's own reset would crop: it keeps x and derives y).
        .allow_double_click_reset(false)
        .allow_drag(!interacting)
        .allow_boxed_zoom(false)
        .show_x(false)
        .show_y(false);
    let (background, show_em) = (app.view.background, app.view.show_em);
    let response = plot.show(ui, |plot| {
        if fit {
            plot.set_plot_bounds(PlotBounds::from_min_max(fit_lo, fit_hi));
        }
        background_layer(plot, &app.scene, background, ce, fg);
        points_layer(plot, &data, fg);
        prototypes_layer(plot, &data, show_em, dark);
        probes_layer(plot, &data, fg);
        plot.pointer_coordinate()
    });
    app.scene.rect = Some(response.response.rect);
    if response.response.double_clicked() {
        app.command(Command::FitView);
    }
    // A pan or a zoom by the user ends the fit's hold on the view.
    let zoomed =
        response.response.hovered() && ui.input(|i| i.smooth_scroll_delta != egui::Vec2::ZERO || i.zoom_delta() != 1.0);
    if response.response.dragged() || zoomed {
        app.scene.fit_sticky = false;
    }
    let transform = response.transform;
    // While a drag is in progress the plot reports no hover coordinate; map the pointer itself.
    let latest = ui.input(|i| i.pointer.latest_pos());
    let pointer_coord = response
        .inner
        .or_else(|| latest.map(|p| transform.value_from_position(p)));
    let resp = &response.response;
    // Hover: nearest point within 8 px.
    app.selection.hovered = pointer
        .filter(|p| resp.rect.contains(*p))
        .and_then(|p| nearest_point(&data, &transform, p, 8.0));
    if data.shown_step.is_none() {
        let clicked_at = pointer.filter(|p| resp.rect.contains(*p));
        edit_ui(
            app,
            ui,
            resp,
            clicked_at.and_then(|p| near_prototype(&transform, p)),
            pointer_coord,
        );
    }
    app.scene.transform = Some(transform);
}

/// The view that fits the content into the plot, and whether to set it this frame: after a
/// fit was asked for (or a new session), and again whenever the plot's size changes until the
/// user pans or zooms.
fn fitted_view(app: &mut LabApp, ui: &egui::Ui, data: &SceneData) -> (([f64; 2], [f64; 2]), bool) {
    // A new session (load, rebuild, undo) fits the view to what it shows.
    if app.scene.fitted_generation != Some(app.scene_generation()) {
        app.scene.fitted_generation = Some(app.scene_generation());
        app.scene.request_fit();
    }
    // The plot area of the last frame, or (first frame) the room left less the axes.
    let size = app.scene.transform.as_ref().map_or_else(
        || {
            let room = ui.available_size();
            [room.x - AXIS_ROOM[0], room.y - AXIS_ROOM[1]]
        },
        |t| [t.frame().width(), t.frame().height()],
    );
    let fit = app.scene.fit_sticky && app.scene.fitted_size != Some(size);
    if fit {
        app.scene.fitted_size = Some(size);
    }
    (
        scene_data::fit_view(data.content, size, scene_data::equal_axes(data.content)),
        fit,
    )
}

/// The line above the scene: the step shown, what the markers mean, the projection and any
/// reduced view.
fn header_ui(app: &mut LabApp, ui: &mut egui::Ui, data: &SceneData) {
    // Wrapped, so a narrow scene never grows past its panel into its neighbours.
    ui.horizontal_wrapped(|ui| {
        if ui
            .small_button("Fit view")
            .on_hover_text(Command::FitView.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::FitView);
        }
        match data.shown_step {
            Some(s) => {
                ui.label(
                    egui::RichText::new(format!("showing step {s} of {}", data.live_step))
                        .color(ui.visuals().warn_fg_color),
                );
                if ui.small_button("back to live").clicked() {
                    app.playback.scrub = None;
                }
            }
            None => {
                ui.label(format!("step {}", data.live_step));
            }
        }
        ui.label("filled: gradient descent,  hollow: explicit EM");
        let plane = data.projection.describe(&data.problem.names);
        if !plane.is_empty() {
            ui.label(egui::RichText::new(plane).color(ui.visuals().warn_fg_color))
                .on_hover_text("Points, prototypes, trails, read-outs, probes and ellipses are projected onto this plane; the background is evaluated on it (the hidden directions at the data mean). the Scene section's plane chooses it");
        }
        if !scene_data::equal_axes(data.content) {
            ui.label(egui::RichText::new("axes not to scale").color(ui.visuals().warn_fg_color))
                .on_hover_text("The two coordinates' ranges differ more than fourfold, so each axis has its own scale: circles look like ellipses and distances are not drawn true");
        }
        if data.total_points > MAX_DRAWN_POINTS {
            ui.label(
                egui::RichText::new(format!(
                    "reduced view: {MAX_DRAWN_POINTS} of {} points drawn",
                    data.total_points
                ))
                .color(ui.visuals().warn_fg_color),
            );
        }
    });
}

/// Recomputes the background fields over the visible region when the view or the state
/// changed since the last frame (a cache keyed on both), and uploads their colours.
fn update_fields(
    app: &mut LabApp,
    ui: &egui::Ui,
    problem: &crate::core::problem::Problem,
    gd: &State,
    plane: &crate::core::projection::Projection,
) {
    let (lo, hi) = app.scene.transform.as_ref().map_or_else(
        || view_data::data_bounds(problem),
        |t| (t.bounds().min(), t.bounds().max()),
    );
    let grid = Grid {
        min: lo,
        max: hi,
        width: app.view.grid,
        height: app.view.grid,
    };
    let mut key: Vec<f64> = vec![
        lo[0],
        lo[1],
        hi[0],
        hi[1],
        problem.spec.settings.temperature,
        app.view.grid as f64,
        f64::from(u8::from(problem.spec.settings.volume)),
    ];
    key.extend(&gd.prototypes);
    key.extend(&gd.log_weights);
    key.extend(&gd.log_scales);
    key.extend(&gd.maps);
    key.extend(plane.rows().iter().flatten());
    key.extend(&plane.mean);
    if key == app.scene.cache_key && app.scene.fields.is_some() {
        return;
    }
    let f = view_data::fields(problem, gd, &grid, plane);
    let image = egui::ColorImage::new(
        [grid.width, grid.height],
        f.colours
            .iter()
            .map(|c| Color32::from_rgba_unmultiplied(c.r(), c.g(), c.b(), 70))
            .collect(),
    );
    match &mut app.scene.texture {
        Some(t) => t.set(image, egui::TextureOptions::LINEAR),
        None => {
            app.scene.texture = Some(ui.ctx().load_texture(
                "responsibility-field",
                image,
                egui::TextureOptions::LINEAR,
            ));
        }
    }
    app.scene.fields = Some((grid, f));
    app.scene.cache_key = key;
}

/// The background: the responsibility field, free-energy contours, the decision boundary.
fn background_layer(
    plot: &mut egui_plot::PlotUi<'_>,
    scene: &SceneState,
    background: Background,
    ce: bool,
    fg: Color32,
) {
    let (Some((grid, fields)), Some(tex)) = (&scene.fields, &scene.texture) else {
        return;
    };
    if background == Background::Responsibility {
        let centre = PlotPoint::new((grid.min[0] + grid.max[0]) / 2.0, (grid.min[1] + grid.max[1]) / 2.0);
        let size = egui::vec2((grid.max[0] - grid.min[0]) as f32, (grid.max[1] - grid.min[1]) as f32);
        plot.image(PlotImage::new("responsibility field", tex.id(), centre, size));
    }
    if background == Background::FreeEnergy {
        let contours: Vec<(f64, Vec<[[f64; 2]; 2]>)> = view_data::levels(&fields.free_energy, 10)
            .into_iter()
            .map(|level| (level, view_data::contour(grid, &fields.free_energy, level)))
            .collect();
        let view = plot.plot_bounds();
        for (at, text) in view_data::contour_labels(&contours, (view.min(), view.max())) {
            plot.text(
                egui_plot::Text::new(
                    "free-energy level",
                    PlotPoint::new(at[0], at[1]),
                    egui::RichText::new(format!("F = {text}")).small(),
                )
                .color(fg.gamma_multiply(0.7))
                .anchor(egui::Align2::CENTER_BOTTOM),
            );
        }
        plot.add(Segments {
            base: PlotItemBase::new("free-energy contours".into()),
            segments: contours.into_iter().flat_map(|(_, s)| s).collect(),
            stroke: Stroke::new(1.0, fg.gamma_multiply(0.45)),
        });
    }
    if ce {
        plot.add(Segments {
            base: PlotItemBase::new("decision boundary".into()),
            segments: if fields.margins.is_empty() {
                view_data::boundary(grid, &fields.winner)
            } else {
                view_data::smooth_boundary(grid, &fields.margins)
            },
            stroke: Stroke::new(2.0, fg.gamma_multiply(0.85)),
        });
    }
}

/// The points, the attention read-outs and the inspected point.
fn points_layer(plot: &mut egui_plot::PlotUi<'_>, data: &SceneData, fg: Color32) {
    plot.add(ColouredPoints {
        base: PlotItemBase::new("points".into()),
        points: data.points.iter().map(|&p| PlotPoint::from(p)).collect(),
        colours: data.colours.clone(),
        radius: if data.points.len() > 3000 { 1.8 } else { 3.0 },
        outline: data.outlines.clone(),
    });
    if !data.readouts.is_empty() {
        plot.add(Segments {
            base: PlotItemBase::new("read-out links".into()),
            segments: data.readouts.clone(),
            stroke: Stroke::new(0.6, fg.gamma_multiply(0.25)),
        });
        plot.points(
            Points::new(
                "read-outs Σ α k",
                data.readouts.iter().map(|l| l[1]).collect::<Vec<_>>(),
            )
            .color(fg.gamma_multiply(0.8))
            .radius(3.0)
            .shape(MarkerShape::Diamond),
        );
    }
    if let Some(link) = data.selected_readout {
        plot.add(Segments {
            base: PlotItemBase::new("selected read-out".into()),
            segments: vec![link],
            stroke: Stroke::new(2.0, fg),
        });
        plot.points(
            Points::new("selected read-out Σ α k", vec![link[1]])
                .color(fg)
                .radius(4.0)
                .shape(MarkerShape::Diamond),
        );
    }
    if let Some(at) = data.selected {
        plot.points(
            Points::new("selected point", vec![at])
                .color(fg)
                .radius(7.0)
                .filled(false)
                .shape(MarkerShape::Circle),
        );
    }
}

/// Each prototype's trails, then the markers (above the points and the trails): EM's rings,
/// the twin's triangles and GD's discs ([`markers`]).
fn prototypes_layer(plot: &mut egui_plot::PlotUi<'_>, data: &SceneData, show_em: bool, dark: bool) {
    ellipses_layer(plot, data);
    let mut marks = Vec::new();
    for (j, &c) in data.prototype_colours.iter().enumerate() {
        if let Some(path) = data.gd_trails.get(j) {
            plot.line(
                Line::new(format!("GD trail {j}"), path.clone())
                    .color(c.gamma_multiply(0.8))
                    .width(1.5),
            );
        }
        if let Some(path) = data.em_trails.get(j) {
            plot.line(
                Line::new(format!("EM trail {j}"), path.clone())
                    .color(c.gamma_multiply(0.5))
                    .width(1.0)
                    .style(egui_plot::LineStyle::dashed_dense()),
            );
        }
        if show_em {
            marks.push((PlotPoint::from(data.em_prototype(j)), Mark::Em, c));
        }
        marks.push((PlotPoint::from(data.gd_prototype(j)), Mark::Gd, c));
    }
    if let Some((_, positions)) = &data.twin {
        for (&at, &c) in positions.iter().zip(&data.prototype_colours) {
            marks.push((PlotPoint::from(at), Mark::Twin, c));
        }
    }
    let (ink, paper) = markers::ink_and_paper(dark);
    plot.add(Markers {
        base: PlotItemBase::new("prototypes".into()),
        marks,
        ink,
        paper,
    });
}

/// The components' 1σ and 2σ ellipses: solid for gradient descent, dashed for EM, dotted for
/// the twin (2σ fainter).
fn ellipses_layer(plot: &mut egui_plot::PlotUi<'_>, data: &SceneData) {
    let runs: [(&str, &Vec<scene_data::Ellipses>, egui_plot::LineStyle, f32); 3] = [
        ("GD", &data.gd_ellipses, egui_plot::LineStyle::Solid, 1.6),
        ("EM", &data.em_ellipses, egui_plot::LineStyle::dashed_loose(), 1.3),
        ("twin", &data.twin_ellipses, egui_plot::LineStyle::dotted_dense(), 1.3),
    ];
    for (run, all, style, width) in runs {
        for (j, pair) in all.iter().enumerate() {
            let c = data.prototype_colours.get(j).copied().unwrap_or(Color32::GRAY);
            for (k, path) in pair.iter().enumerate() {
                if path.is_empty() {
                    continue;
                }
                let colour = if k == 0 { c } else { c.gamma_multiply(0.55) };
                plot.line(
                    Line::new(format!("{run} {}σ ellipse {j}", k + 1), path.clone())
                        .color(colour)
                        .width(width)
                        .style(style),
                );
            }
        }
    }
}

/// Each probe's path to its fixed point (as segments: a converging path's many tiny steps
/// drew a filled wedge as one line), with its number and kind; the label sits on the side of
/// the fixed point towards the plot's centre, so it is not cut at the edge, and clear of a
/// prototype's marker there.
fn probes_layer(plot: &mut egui_plot::PlotUi<'_>, data: &SceneData, fg: Color32) {
    let bounds = plot.plot_bounds();
    let per_px = plot.transform().dvalue_dpos();
    let centre = [
        f64::midpoint(bounds.min()[0], bounds.max()[0]),
        f64::midpoint(bounds.min()[1], bounds.max()[1]),
    ];
    for (q, r) in data.probes.iter().enumerate() {
        let path: Vec<[f64; 2]> = r.path.iter().map(|x| data.projection.project(x)).collect();
        let end = *path.last().unwrap_or(&[0.0, 0.0]);
        plot.add(Segments {
            base: PlotItemBase::new(format!("probe {q} path")),
            segments: path.windows(2).map(|w| [w[0], w[1]]).collect(),
            stroke: Stroke::new(1.2, fg.gamma_multiply(0.8)),
        });
        plot.points(
            Points::new(format!("probe {q} steps"), path)
                .color(fg.gamma_multiply(0.6))
                .radius(1.5),
        );
        plot.points(
            Points::new(format!("probe {q} start"), vec![data.projection.project(&r.path[0])])
                .color(fg)
                .radius(4.0)
                .shape(MarkerShape::Square)
                .filled(false),
        );
        plot.points(
            Points::new(format!("probe {q} fixed point"), vec![end])
                .color(fg)
                .radius(7.0)
                .shape(MarkerShape::Asterisk),
        );
        let (anchor, text, at) = probe_label(q, &r.kind.short(), end, centre, per_px);
        plot.text(
            egui_plot::Text::new(format!("probe {q} label"), PlotPoint::new(at[0], at[1]), text)
                .color(fg)
                .anchor(anchor),
        );
    }
}

/// A probe's label, its anchor and where it is anchored: right of a fixed point left of the
/// plot's centre, left of it otherwise, and above it in the lower half, below it in the upper;
/// [`markers::RING`] and a little more away (`per_px`: plot units per screen point, y down).
pub(super) fn probe_label(
    q: usize,
    kind: &str,
    end: [f64; 2],
    centre: [f64; 2],
    per_px: [f64; 2],
) -> (egui::Align2, String, [f64; 2]) {
    let right = end[0] <= centre[0];
    let above = end[1] <= centre[1];
    let anchor = match (right, above) {
        (true, true) => egui::Align2::LEFT_BOTTOM,
        (true, false) => egui::Align2::LEFT_TOP,
        (false, true) => egui::Align2::RIGHT_BOTTOM,
        (false, false) => egui::Align2::RIGHT_TOP,
    };
    let away = f64::from(markers::RING) + 4.0;
    let at = [
        end[0] + if right { away } else { -away } * per_px[0].abs(),
        end[1] + if above { 0.5 * away } else { -0.5 * away } * per_px[1].abs(),
    ];
    (anchor, format!("{}: {kind}", q + 1), at)
}

/// Turns clicks and drags into commands: the tool decides what a click does; `pressed_on` is
/// the prototype under a press, `at` the pointer's plane position.
fn edit_ui(app: &mut LabApp, ui: &egui::Ui, resp: &egui::Response, pressed_on: Option<usize>, at: Option<PlotPoint>) {
    match app.selection.tool {
        Tool::Select => {
            let pressed = ui.input(|i| i.pointer.primary_pressed());
            let down = ui.input(|i| i.pointer.primary_down());
            if pressed && let Some(j) = pressed_on {
                app.before_change(("drag", j), f64::NEG_INFINITY);
                app.scene.dragging = Some(j);
            }
            // Follow the pointer while the button is held, and once more on release.
            if let (Some(j), Some(c)) = (app.scene.dragging, at) {
                app.command(Command::DragPrototype {
                    index: j,
                    to: [c.x, c.y],
                });
            }
            if !down && app.scene.dragging.take().is_some() {
                app.info("dragged: both runs continue from the new position");
            }
            if resp.clicked() && app.scene.dragging.is_none() {
                app.selection.selected = app.selection.hovered;
            }
        }
        Tool::AddPoint => {
            if resp.clicked()
                && let Some(c) = at
            {
                app.command(Command::AddPoint([c.x, c.y]));
            }
        }
        Tool::RemovePoint => {
            if resp.clicked()
                && let Some(i) = app.selection.hovered
            {
                app.command(Command::RemovePoint(i));
            }
        }
        Tool::Probe => {
            if resp.clicked()
                && let Some(c) = at
            {
                app.command(Command::AddProbe([c.x, c.y]));
            }
        }
    }
}

/// Most probes kept (the oldest goes first).
pub const MAX_PROBES: usize = 16;

pub fn add_probe(app: &mut LabApp, at: [f64; 2]) {
    let x = app.view.plane.of(app.session.experiment().problem()).lift(at);
    app.before_change("probe", f64::NEG_INFINITY);
    if app.doc.draft.probes.len() >= MAX_PROBES {
        app.doc.draft.probes.remove(0);
    }
    app.doc.draft.probes.push(x);
    app.doc.running.probes.clone_from(&app.doc.draft.probes);
}

/// The probes' results, and a button to clear them.
pub fn probes_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let state = app.session.experiment().gd_state().clone();
    let results = scene_data::retrievals(app.session.experiment().problem(), &state, &app.doc.draft.probes);
    if results.is_empty() {
        ui.label("click the scene to place a probe");
        return;
    }
    let spec = app.session.experiment().problem().spec.clone();
    let terms = crate::core::model::ComponentTerms::new(&spec, &state);
    let mut row = crate::core::eval::Row::new(state.k, state.dim, 0);
    for (q, r) in results.iter().enumerate() {
        // With the reject option: how much the background claims the probe where it was placed.
        let reject = if spec.settings.reject_energy.is_some() {
            crate::core::eval::field_row(&spec, &state, &terms, &r.path[0], &mut row);
            format!(", reject r₀ = {:.3} at the start", row.background)
        } else {
            String::new()
        };
        ui.label(format!(
            "probe {}: {} after {} updates{}{reject}",
            q + 1,
            r.kind.describe(),
            r.path.len() - 1,
            if r.converged { "" } else { " (not converged)" }
        ))
        .on_hover_text("Fixed point of ξ := Σ_j r_j(ξ) μ_j at the current T: a single key when T is low, an average over a few keys at intermediate T (metastable), the average of all keys when T is high");
    }
    if ui
        .button("clear probes")
        .on_hover_text("Removes every retrieval probe (undo brings them back)")
        .clicked()
    {
        app.command(Command::ClearProbes);
    }
}

/// The point drawn nearest to screen position `pos`, within `radius` pixels.
fn nearest_point(data: &SceneData, transform: &PlotTransform, pos: egui::Pos2, radius: f32) -> Option<usize> {
    let v = transform.value_from_position(pos);
    let [sx, sy] = transform.dpos_dvalue();
    let mut best = None;
    let mut best_d = f64::from(radius * radius);
    let problem = &data.problem;
    for i in 0..problem.len() {
        let x = data.projection.project(problem.point(i));
        let dx = (x[0] - v.x) * sx;
        let dy = (x[1] - v.y) * sy;
        let d = dx * dx + dy * dy;
        if d < best_d {
            best_d = d;
            best = Some(i);
        }
    }
    best
}

/// Moves prototype `j` of both runs to `to` on the scene's plane (its hidden components kept).
pub fn drag_to(app: &mut LabApp, j: usize, to: [f64; 2]) {
    let plane = app.view.plane.of(app.session.experiment().problem());
    let mut gd = app.session.experiment().gd_state().clone();
    let mut em = app.session.experiment().em_state().clone();
    let dim = gd.dim;
    for s in [&mut gd, &mut em] {
        let moved = plane.moved(s.prototype(j), to);
        s.prototypes[j * dim..(j + 1) * dim].copy_from_slice(&moved);
    }
    if let Err(e) = app.session.set_states(gd, em) {
        app.error(e.to_string());
    }
}

fn edit_data(app: &mut LabApp, data: crate::core::data::Dataset, what: &str) {
    let inline = DataSpec::inline(&data);
    match app.session.replace_data(data) {
        Ok(()) => {
            app.doc.draft.data = inline;
            // The inline points carry the labels as they are now (hidden ones already dropped),
            // and the coordinates as shown (already standardised, if they were).
            app.doc.draft.labelled_fraction = 1.0;
            app.doc.running.labelled_fraction = 1.0;
            app.doc.draft.standardise = crate::preset::Standardise::None;
            app.doc.running.standardise = crate::preset::Standardise::None;
            app.info(what.to_string());
        }
        Err(e) => app.error(format!("{what} refused: {e}")),
    }
}

/// Adds a point at `at` on the scene's plane (the hidden directions at the data mean) with the
/// chosen label; the attention target is copied from the nearest point when the data define
/// targets.
pub fn add_point(app: &mut LabApp, at: [f64; 2]) {
    let plane = app.view.plane.of(app.session.experiment().problem());
    let mut data = app.session.experiment().problem().to_dataset();
    let x = plane.lift(at);
    let nearest = (0..data.len()).min_by(|&a, &b| {
        let da: f64 = data.point(a).iter().zip(&x).map(|(p, q)| (p - q).powi(2)).sum();
        let db: f64 = data.point(b).iter().zip(&x).map(|(p, q)| (p - q).powi(2)).sum();
        da.total_cmp(&db)
    });
    let target: Vec<f64> = match nearest {
        Some(i) if data.target_dim > 0 => data.targets[i * data.target_dim..(i + 1) * data.target_dim].to_vec(),
        _ => Vec::new(),
    };
    let label =
        (data.labels.iter().any(Option::is_some) || app.selection.new_label > 0).then_some(app.selection.new_label);
    app.before_change("add point", f64::NEG_INFINITY);
    data.push(&x, label, &target);
    let hidden = if x.len() > 2 {
        "; its other directions at the data mean"
    } else {
        ""
    };
    edit_data(
        app,
        data,
        &format!("added a point at ({:.3}, {:.3}){hidden}", at[0], at[1]),
    );
}

/// Removes point `i`.
pub fn remove_point(app: &mut LabApp, i: usize) {
    let mut data = app.session.experiment().problem().to_dataset();
    if data.len() <= 1 {
        app.error("the last point cannot be removed");
        return;
    }
    app.before_change("remove point", f64::NEG_INFINITY);
    data.remove(i);
    app.selection.selected = None;
    edit_data(app, data, &format!("removed point {i}"));
}

#[cfg(test)]
mod tests {
    use super::probe_label;
    use eframe::egui::Align2;

    /// Probe labels were cut at the plot's right edge: a fixed point right of the centre is
    /// labelled to its left, and one above the centre below it.
    #[test]
    fn probe_labels_point_inwards() {
        let (c, px) = ([0.0, 0.0], [0.1, -0.2]);
        let (a, text, at) = probe_label(0, "key 1", [-3.0, -1.0], c, px);
        assert_eq!((a, text.as_str()), (Align2::LEFT_BOTTOM, "1: key 1"));
        // 16.5 points right (1.65 units) and 8.25 up (1.65 units) of the fixed point.
        assert!(
            (at[0] - (-3.0 + 1.65)).abs() < 1e-12 && (at[1] - (-1.0 + 1.65)).abs() < 1e-12,
            "{at:?}"
        );
        let (a, _, at) = probe_label(1, "rejected", [9.0, 7.0], c, px);
        assert_eq!(a, Align2::RIGHT_TOP);
        assert!(
            (at[0] - (9.0 - 1.65)).abs() < 1e-12 && (at[1] - (7.0 - 1.65)).abs() < 1e-12,
            "{at:?}"
        );
        assert_eq!(probe_label(2, "rejected", [9.0, -8.0], c, px).0, Align2::RIGHT_BOTTOM);
        assert_eq!(probe_label(3, "key 0", [-9.0, 8.0], c, px).0, Align2::LEFT_TOP);
    }
}
