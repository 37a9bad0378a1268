//! The desktop window (feature `gui`): a thin shell around the core.

use std::path::PathBuf;

use eframe::egui;
use egui_plot::{MarkerShape, Plot, Points};

use crate::cli::Cli;
use crate::core::experiment::Experiment;
use crate::core::objective::point_row;
use crate::core::preset::{self, Preset};

/// Distinct component colours.
pub const PALETTE: [egui::Color32; 8] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(23, 190, 207),
];

/// The lab's window state.
pub struct LabApp {
    preset: Preset,
    experiment: Experiment,
    playing: bool,
    error: Option<String>,
}

impl LabApp {
    /// A lab running `preset` (CSV paths relative to `base`).
    ///
    /// # Errors
    /// When the preset does not validate or build.
    pub fn new(preset: Preset, base: &std::path::Path) -> Result<Self, String> {
        let built = preset.validate().and_then(|v| v.build(base)).map_err(|e| e.message)?;
        Ok(Self {
            preset,
            experiment: built.experiment,
            playing: true,
            error: None,
        })
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading(&self.preset.name);
        ui.label(&self.preset.description);
        ui.separator();
        ui.horizontal(|ui| {
            if ui.button(if self.playing { "Pause" } else { "Play" }).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("Step").clicked() {
                self.step();
            }
        });
        let mut t = self.experiment.problem().spec.temperature;
        if ui
            .add(
                egui::Slider::new(&mut t, 1e-3..=1e2)
                    .logarithmic(true)
                    .text("temperature T"),
            )
            .changed()
        {
            self.experiment.set_temperature(t);
        }
        let last = self.experiment.latest();
        ui.label(format!("step {}", last.step));
        ui.label(format!("GD loss {:.6}", last.gd.loss));
        ui.label(format!("EM loss {:.6}", last.em.loss));
        ui.label(format!("identity residual {:.1e}", last.identity_residual));
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
    }

    fn scene_ui(&self, ui: &mut egui::Ui) {
        let problem = self.experiment.problem();
        let gd = self.experiment.gd_state();
        let k = gd.k;
        let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); k];
        for i in 0..problem.len() {
            let x = problem.point(i);
            let xy = [x[0], x.get(1).copied().unwrap_or(0.0)];
            let j = point_row(problem, gd, i).map_or(0, |row| {
                row.responsibilities
                    .iter()
                    .enumerate()
                    .fold((0, f64::MIN), |b, (j, &r)| if r > b.1 { (j, r) } else { b })
                    .0
            });
            groups[j].push(xy);
        }
        Plot::new("scene").data_aspect(1.0).show(ui, |plot| {
            for (j, pts) in groups.into_iter().enumerate() {
                plot.points(
                    Points::new(format!("points {j}"), pts)
                        .color(PALETTE[j % 8].gamma_multiply(0.6))
                        .radius(2.0),
                );
            }
            for (name, state, filled) in [("GD", gd, true), ("EM", self.experiment.em_state(), false)] {
                for j in 0..k {
                    let m = state.prototype(j);
                    plot.points(
                        Points::new(
                            format!("{name} prototype {j}"),
                            vec![[m[0], m.get(1).copied().unwrap_or(0.0)]],
                        )
                        .shape(MarkerShape::Circle)
                        .filled(filled)
                        .radius(7.0)
                        .color(PALETTE[j % 8]),
                    );
                }
            }
        });
    }

    fn step(&mut self) {
        if let Err(e) = self.experiment.step() {
            self.playing = false;
            self.error = Some(e.to_string());
        }
    }
}

impl eframe::App for LabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if self.playing {
            self.step();
            ui.ctx().request_repaint();
        }
        egui::Panel::left("controls").show(ui, |ui| self.controls_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| self.scene_ui(ui));
    }
}

/// Opens the window.
///
/// # Errors
/// A preset that cannot be loaded, or a window that cannot be created.
pub fn launch(args: &Cli) -> Result<(), String> {
    let (preset, base) = match &args.preset {
        Some(path) => (
            preset::load(path).map_err(|e| e.message)?,
            path.parent().map_or_else(|| PathBuf::from("."), PathBuf::from),
        ),
        None => (Preset::default(), PathBuf::from(".")),
    };
    let app = LabApp::new(preset, &base)?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title("implicit-em-lab"),
        ..Default::default()
    };
    eframe::run_native("implicit-em-lab", options, Box::new(|_cc| Ok(Box::new(app)))).map_err(|e| e.to_string())
}
