//! Presets bundled into the binary, file dialogs, exports and screenshots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use eframe::egui;

use super::{Command, LabApp};
use crate::export::trace::{self, TraceDocument};
use crate::preset::io::write_atomic;

/// Every preset in `presets/`, compiled in so they are one click away wherever the binary runs.
pub const BUNDLED: [(&str, &str); 22] = [
    ("three-blobs.ron", include_str!("../../presets/three-blobs.ron")),
    ("old-faithful.ron", include_str!("../../presets/old-faithful.ron")),
    ("iris.ron", include_str!("../../presets/iris.ron")),
    ("penguins.ron", include_str!("../../presets/penguins.ron")),
    ("digits.ron", include_str!("../../presets/digits.ron")),
    (
        "anisotropic-blobs.ron",
        include_str!("../../presets/anisotropic-blobs.ron"),
    ),
    ("collinear.ron", include_str!("../../presets/collinear.ron")),
    (
        "neural-vs-prototype.ron",
        include_str!("../../presets/neural-vs-prototype.ron"),
    ),
    ("near-split.ron", include_str!("../../presets/near-split.ron")),
    ("em-bridge.ron", include_str!("../../presets/em-bridge.ron")),
    (
        "gaussian-mixture.ron",
        include_str!("../../presets/gaussian-mixture.ron"),
    ),
    ("metric-collapse.ron", include_str!("../../presets/metric-collapse.ron")),
    (
        "attention-regression.ron",
        include_str!("../../presets/attention-regression.ron"),
    ),
    (
        "dot-product-attention.ron",
        include_str!("../../presets/dot-product-attention.ron"),
    ),
    (
        "cross-entropy-moons.ron",
        include_str!("../../presets/cross-entropy-moons.ron"),
    ),
    ("annealing.ron", include_str!("../../presets/annealing.ron")),
    ("volume-collapse.ron", include_str!("../../presets/volume-collapse.ron")),
    ("reject-option.ron", include_str!("../../presets/reject-option.ron")),
    ("semi-supervised.ron", include_str!("../../presets/semi-supervised.ron")),
    ("soft-labels.ron", include_str!("../../presets/soft-labels.ron")),
    (
        "normalisation-boundary.ron",
        include_str!("../../presets/normalisation-boundary.ron"),
    ),
    (
        "hopfield-retrieval.ron",
        include_str!("../../presets/hopfield-retrieval.ron"),
    ),
];

/// Whether `path` names a CSV file (by its extension, in any case).
#[must_use]
pub fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Whether `path` names a preset (`.ron`, in any case).
#[must_use]
pub fn is_preset(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ron"))
}

/// What a file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Open a preset.
    OpenPreset,
    /// Save the preset.
    SavePreset,
    /// The scene as a figure: SVG.
    ExportFigureSvg,
    /// The scene as a figure: PNG.
    ExportFigurePng,
    /// PNG of the window.
    ExportWindow,
    /// The trace as CSV.
    ExportTraceCsv,
    /// The trace as JSON.
    ExportTraceJson,
}

impl Purpose {
    fn extension(self) -> &'static str {
        match self {
            Purpose::OpenPreset | Purpose::SavePreset => "ron",
            Purpose::ExportFigurePng | Purpose::ExportWindow => "png",
            Purpose::ExportFigureSvg => "svg",
            Purpose::ExportTraceCsv => "csv",
            Purpose::ExportTraceJson => "json",
        }
    }
}

/// An open file dialog and what it is for.
pub struct Dialog {
    purpose: Purpose,
    dialog: egui_file::FileDialog,
    /// The name in the dialog's file field (an Open dialog reports it through its filename
    /// filter), so that a name of no existing file is said to be one: egui_file ignores Enter
    /// and Open on it without a word.
    typed: Arc<Mutex<String>>,
    /// The last warning given about the typed name (so it is not repeated every frame).
    warned: Option<PathBuf>,
}

impl Dialog {
    /// An Open dialog for presets and CSV data, or (`data`) for CSV data only.
    #[must_use]
    pub fn open(current: Option<&Path>, data: bool) -> Self {
        let shown: fn(&Path) -> bool = if data { is_csv } else { |p| is_preset(p) || is_csv(p) };
        let typed = Arc::new(Mutex::new(String::new()));
        let seen = Arc::clone(&typed);
        let mut dialog = egui_file::FileDialog::open_file()
            .title(if data { "Open data (CSV)" } else { "Open preset or data" })
            .show_files_filter(Box::new(shown))
            .filename_filter(Box::new(move |name: &str| {
                if let Ok(mut s) = seen.lock() {
                    name.clone_into(&mut s);
                }
                true
            }));
        if let Some(dir) = current.and_then(Path::parent) {
            dialog = dialog.initial_path(dir);
        }
        dialog.open();
        Self {
            purpose: Purpose::OpenPreset,
            dialog,
            typed,
            warned: None,
        }
    }

    /// A Save dialog.
    #[must_use]
    pub fn save(purpose: Purpose, current: Option<&Path>) -> Self {
        let name = match purpose {
            Purpose::SavePreset => current
                .and_then(Path::file_name)
                .map_or("experiment.ron".into(), |n| n.to_string_lossy().into_owned()),
            Purpose::ExportFigureSvg => "figure.svg".into(),
            Purpose::ExportFigurePng => "figure.png".into(),
            Purpose::ExportWindow => "window.png".into(),
            Purpose::ExportTraceCsv => "trace.csv".into(),
            Purpose::ExportTraceJson | Purpose::OpenPreset => "trace.json".into(),
        };
        let mut dialog = egui_file::FileDialog::save_file().title("Save").default_filename(name);
        if let Some(dir) = current.and_then(Path::parent) {
            dialog = dialog.initial_path(dir);
        }
        dialog.open();
        Self {
            purpose,
            dialog,
            typed: Arc::default(),
            warned: None,
        }
    }
}

/// Shows the open dialog, if any, and acts on a confirmed choice.
pub fn dialog_ui(app: &mut LabApp, ctx: &egui::Context) {
    let Some(d) = app.shell.dialog.as_mut() else { return };
    d.dialog.show(ctx);
    let purpose = d.purpose;
    let chosen = d
        .dialog
        .selected()
        .then(|| d.dialog.path().map(Path::to_path_buf))
        .flatten();
    let closed = !d.dialog.visible();
    // An Open dialog's typed name of no existing file: say so (egui_file does nothing on it).
    let typed = d.typed.lock().map(|s| s.clone()).unwrap_or_default();
    if purpose == Purpose::OpenPreset && !typed.is_empty() && chosen.is_none() {
        let path = d.dialog.directory().join(&typed);
        if path.exists() || typed.ends_with('/') {
            // The name is a file now: the warning about the half-typed one goes.
            if d.warned.take().is_some() {
                app.shell.status = None;
            }
        } else if d.warned.as_ref() != Some(&path) {
            d.warned = Some(path.clone());
            app.error(format!(
                "no such file: {} (Open needs an existing .ron preset or .csv data file; a path may be typed in full)",
                path.display()
            ));
        }
    }
    if let Some(mut path) = chosen {
        app.shell.dialog = None;
        if path.extension().is_none() {
            path.set_extension(purpose.extension());
        }
        act_on(app, purpose, path);
    } else if closed {
        app.shell.dialog = None;
    }
}

/// Does what a dialog was opened for, with the chosen path.
pub fn act_on(app: &mut LabApp, purpose: Purpose, path: PathBuf) {
    match purpose {
        Purpose::OpenPreset => app.command(Command::LoadPath(path)),
        Purpose::SavePreset => app.save_to(&path),
        Purpose::ExportFigureSvg | Purpose::ExportFigurePng => app.export_figure(&path),
        Purpose::ExportWindow => app.shell.screenshot = Some(ScreenshotJob::new(path, false)),
        Purpose::ExportTraceCsv | Purpose::ExportTraceJson => {
            app.export_trace(&path, purpose == Purpose::ExportTraceCsv)
        }
    }
}

impl LabApp {
    /// Writes the trace so far (CSV or JSON, the formats of `run --out`) atomically.
    pub fn export_trace(&mut self, path: &Path, csv: bool) {
        // A settings change the worker has not yet evaluated is evaluated before writing.
        self.settle();
        self.session.refresh();
        let text = if csv {
            trace::to_csv(self.experiment().trace())
        } else {
            trace::to_json(&TraceDocument::of(&self.doc.draft, &self.session, None))
        };
        match write_atomic(path, text.as_bytes()) {
            Ok(()) => self.info(format!("trace written to {}", path.display())),
            Err(e) => self.error(e),
        }
    }
}

impl LabApp {
    /// The scene as a figure's content: what the window shows at the shown step, in the
    /// scene's current view (fitted to the content before the scene has been drawn).
    #[must_use]
    pub fn figure_data(&self) -> super::scene_data::SceneData {
        super::scene_data::SceneData::new(
            &self.session,
            &self.view,
            self.playback.scrub,
            self.selection.selected,
            &self.doc.draft.probes,
        )
    }

    /// Writes the scene as a figure to `path` (`.svg` or `.png`, by its extension) at the
    /// figure window's size and theme, and says so in the status line.
    pub fn export_figure(&mut self, path: &Path) {
        self.settle();
        self.session.refresh();
        let data = self.figure_data();
        let step = data.shown_step.unwrap_or(data.live_step);
        let t = data.problem.spec.settings.temperature;
        let content = super::figure::Content {
            data: &data,
            view: self.scene_view(),
            background: self.view.background,
            show_em: self.view.show_em,
            title: format!(
                "{}: step {step}, T = {}",
                self.doc.draft.name,
                super::view_data::num(t, 4)
            ),
        };
        let o = self.shell.figure;
        match super::figure::write(&content, &o, path) {
            Ok(()) => self.info(format!(
                "figure ({} x {} px) written to {}",
                o.width,
                o.height,
                path.display()
            )),
            Err(e) => self.error(e),
        }
    }

    /// The `--figure` run: `steps` paired steps, then the figure, with no window; the error
    /// says why nothing was written.
    ///
    /// # Errors
    /// A size out of range, a non-finite step, or a file that cannot be written.
    pub fn figure_headless(
        &mut self,
        path: &Path,
        steps: usize,
        o: super::figure::FigureOptions,
    ) -> Result<(), String> {
        o.check()?;
        self.shell.persist = false;
        self.playback.playing = false;
        self.advance(steps);
        if let Some(e) = self.error_text() {
            return Err(format!("no figure written: {e}"));
        }
        self.shell.figure = o;
        self.export_figure(path);
        self.error_text().map_or(Ok(()), |e| Err(e.to_string()))
    }
}

/// The figure window: size (with common choices), theme, and the two formats.
pub fn figure_ui(app: &mut LabApp, ctx: &egui::Context) {
    if !app.shell.figure_open {
        return;
    }
    let mut open = true;
    let mut save = None;
    let o = &mut app.shell.figure;
    egui::Window::new("Export figure")
        .open(&mut open)
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label("The scene as shown (its view, step and background) with axes, a title and a legend.");
            let range = crate::export::FIGURE_SIDES;
            let (lo, hi) = (range.start(), range.end());
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut o.width).range(range.clone()).suffix(" px"))
                    .on_hover_text(format!("Width, {lo} to {hi} pixels (SVG user units)"));
                ui.label("by");
                ui.add(egui::DragValue::new(&mut o.height).range(range.clone()).suffix(" px"))
                    .on_hover_text(format!("Height, {lo} to {hi} pixels"));
            });
            ui.horizontal_wrapped(|ui| {
                for (w, h, what) in [
                    (1600, 1000, "screen"),
                    (1200, 900, "slide 4:3"),
                    (1920, 1080, "slide 16:9"),
                    (3300, 2200, "print, 11 in at 300 dpi"),
                ] {
                    if ui
                        .selectable_label(o.width == w && o.height == h, format!("{w} x {h}"))
                        .on_hover_text(what)
                        .clicked()
                    {
                        (o.width, o.height) = (w, h);
                    }
                }
            });
            ui.horizontal(|ui| {
                ui.radio_value(&mut o.dark, false, "light (paper)");
                ui.radio_value(&mut o.dark, true, "dark");
            });
            ui.horizontal(|ui| {
                if ui
                    .button("Save SVG…")
                    .on_hover_text(
                        "Vector: every point, marker and label a shape; the background field an embedded image",
                    )
                    .clicked()
                {
                    save = Some(Purpose::ExportFigureSvg);
                }
                if ui
                    .button("Save PNG…")
                    .on_hover_text("The same drawing rasterised at the chosen size")
                    .clicked()
                {
                    save = Some(Purpose::ExportFigurePng);
                }
            });
        });
    if let Some(purpose) = save {
        app.shell.dialog = Some(Dialog::save(purpose, app.doc.path.as_deref()));
        open = false;
    }
    app.shell.figure_open = open;
}

/// A screenshot in progress: requested once the layout has settled, written when it arrives.
pub struct ScreenshotJob {
    path: PathBuf,
    exit: bool,
    requested: bool,
    image: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
}

impl ScreenshotJob {
    /// A job writing the window to `path`; `exit` closes the window afterwards.
    #[must_use]
    pub fn new(path: PathBuf, exit: bool) -> Self {
        Self {
            path,
            exit,
            requested: false,
            image: Arc::new(Mutex::new(None)),
        }
    }

    /// The `--screenshot` job: the whole window, then exit.
    #[must_use]
    pub fn exit_after(path: PathBuf) -> Self {
        Self::new(path, true)
    }
}

/// Requests the screenshot after a few frames, writes it when it arrives.
pub fn screenshot_tick(app: &mut LabApp, ctx: &egui::Context) {
    let Some(job) = app.shell.screenshot.as_mut() else {
        return;
    };
    ctx.request_repaint();
    if !job.requested {
        // The first frames lay out panels and fit the plot bounds.
        if app.shell.frames >= 4 {
            job.requested = true;
            let slot = Arc::clone(&job.image);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(image);
                }
                repaint.request_repaint();
            });
        }
        return;
    }
    let image = job.image.lock().ok().and_then(|mut s| s.take());
    let Some(image) = image else { return };
    let (path, exit) = (job.path.clone(), job.exit);
    app.shell.screenshot = None;
    let result = write_png(&image, None, &path);
    match &result {
        Ok(()) => app.info(format!("image written to {}", path.display())),
        Err(e) => app.error(e.clone()),
    }
    if exit {
        if let Ok(mut s) = app.shell.exit_status.lock() {
            *s = result;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

/// Encodes (a crop of) a screenshot as PNG and writes it atomically.
///
/// # Errors
/// An empty crop, or a file that cannot be written.
pub fn write_png(image: &egui::ColorImage, crop: Option<egui::Rect>, path: &Path) -> Result<(), String> {
    let [w, h] = image.size;
    let (x0, y0, x1, y1) = match crop {
        Some(r) => (
            (r.min.x.max(0.0) as usize).min(w),
            (r.min.y.max(0.0) as usize).min(h),
            (r.max.x.max(0.0) as usize).min(w),
            (r.max.y.max(0.0) as usize).min(h),
        ),
        None => (0, 0, w, h),
    };
    if x1 <= x0 || y1 <= y0 {
        return Err("nothing to capture (the region is empty)".into());
    }
    let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        for x in x0..x1 {
            rgba.extend_from_slice(&image.pixels[y * w + x].to_array());
        }
    }
    let buffer = image::RgbaImage::from_raw((x1 - x0) as u32, (y1 - y0) as u32, rgba).ok_or("image size mismatch")?;
    let mut png = Vec::new();
    buffer
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    write_atomic(path, &png)
}

/// The window icon: three prototypes with soft responsibility halos (drawn, not loaded).
#[must_use]
pub fn icon() -> egui::IconData {
    let size = 64usize;
    let centres = [
        (20.0, 22.0, super::view_data::colour(0)),
        (44.0, 24.0, super::view_data::colour(1)),
        (32.0, 44.0, super::view_data::colour(2)),
    ];
    let mut rgba = Vec::with_capacity(size * size * 4);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            // Responsibilities of a soft-min over the three centres at temperature 40.
            let e: Vec<f64> = centres
                .iter()
                .map(|(cx, cy, _)| -((fx - cx).powi(2) + (fy - cy).powi(2)) / 40.0)
                .collect();
            let mut r = vec![0.0; 3];
            crate::core::math::lse::softmax_into(&e, &mut r);
            let c = super::view_data::blend(r.iter().copied().enumerate());
            let near = centres
                .iter()
                .any(|(cx, cy, _)| (fx - cx).powi(2) + (fy - cy).powi(2) < 30.0);
            let alpha = if near { 255 } else { 200 };
            let (cr, cg, cb) = if near { (255, 255, 255) } else { (c.r(), c.g(), c.b()) };
            rgba.extend_from_slice(&[cr, cg, cb, alpha]);
        }
    }
    egui::IconData {
        rgba,
        width: size as u32,
        height: size as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `assets/icon.png` is the icon the window uses (`UPDATE_ASSETS=1` rewrites it).
    #[test]
    fn committed_icon_matches_the_drawn_icon() {
        let icon = icon();
        assert_eq!((icon.width, icon.height), (64, 64));
        let image = egui::ColorImage::from_rgba_unmultiplied([64, 64], &icon.rgba);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/icon.png");
        if std::env::var_os("UPDATE_ASSETS").is_some() {
            write_png(&image, None, &path).unwrap();
        }
        let committed = image::open(&path).unwrap().to_rgba8();
        let drawn =
            image::RgbaImage::from_raw(64, 64, image.pixels.iter().flat_map(|c| c.to_array()).collect()).unwrap();
        assert!(
            committed == drawn,
            "assets/icon.png is stale: run UPDATE_ASSETS=1 cargo test"
        );
    }
}
