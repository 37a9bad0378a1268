//! The window's commands: what each does, and its words and keys in one place (rerun's
//! `UICommand`), so the menus, the buttons' tooltips and the shortcuts cannot disagree.

use std::path::PathBuf;

use eframe::egui::{Key, KeyboardShortcut, Modifiers};

use crate::session::twin::Flip;

/// Every change to the lab and every window action, queued by widgets, shortcuts and menus and
/// run in one place at the end of the frame. Model edits (drags, points, probes, the twin,
/// rebuilds) are commands too, so no panel changes the session mid-frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Play or pause.
    TogglePlay,
    /// One paired step (pauses).
    Step,
    /// Back to step 0 on the same data.
    Reset,
    /// New data and start from the next seed.
    Regenerate,
    /// Undo the last parameter change, drag or edit.
    Undo,
    /// Redo what the last undo took back.
    Redo,
    /// Open a preset file (dialog).
    Open,
    /// Save to the current file (or Save As).
    Save,
    /// Save to a new file (dialog).
    SaveAs,
    /// Load a bundled preset by index into [`BUNDLED`].
    LoadBundled(usize),
    /// Load a preset file.
    LoadPath(PathBuf),
    /// Export the scene as a figure (SVG or PNG, with axes and legend; a dialog).
    ExportFigure,
    /// Export a PNG of the whole window (dialog).
    ExportWindow,
    /// Export the trace as CSV (dialog).
    ExportTraceCsv,
    /// Export the trace as JSON (dialog).
    ExportTraceJson,
    /// Rebuild the session from the draft (a change that needs new data or a new start), with
    /// the reason the status line gives.
    Rebuild(String),
    /// Turn the twin on with this flip, or off.
    SetTwin(Option<Flip>),
    /// Move a prototype of both runs (its first two coordinates) to a plane position.
    DragPrototype {
        /// Which prototype.
        index: usize,
        /// Where to.
        to: [f64; 2],
    },
    /// Add a point at a plane position, with the chosen label.
    AddPoint([f64; 2]),
    /// Remove a point.
    RemovePoint(usize),
    /// Place a retrieval probe at a plane position.
    AddProbe([f64; 2]),
    /// Remove every probe.
    ClearProbes,
    /// Fit the scene's view to every point, prototype, trail and probe.
    FitView,
    /// Open a CSV of points and build the experiment around it (dialog).
    OpenData,
}

impl Command {
    /// The File menu, in order (`None`: a separator).
    pub const FILE_MENU: [Option<Command>; 9] = [
        Some(Command::Open),
        Some(Command::OpenData),
        Some(Command::Save),
        Some(Command::SaveAs),
        None,
        Some(Command::ExportFigure),
        Some(Command::ExportWindow),
        Some(Command::ExportTraceCsv),
        Some(Command::ExportTraceJson),
    ];

    /// Commands with keys of their own, in the order their keys are tried (Save As before Save
    /// and Redo before Undo: egui matches Ctrl+S and Ctrl+Z ignoring Shift, so the shifted
    /// shortcuts must be taken first).
    pub const WITH_KEYS: [Command; 9] = [
        Command::Open,
        Command::SaveAs,
        Command::Save,
        Command::Redo,
        Command::Undo,
        Command::TogglePlay,
        Command::Step,
        Command::Reset,
        Command::FitView,
    ];

    /// What a menu item or button says.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Command::TogglePlay => "Play / Pause",
            Command::Step => "Step",
            Command::Reset => "Reset",
            Command::Regenerate => "Regenerate",
            Command::Undo => "Undo",
            Command::Redo => "Redo",
            Command::Open => "Open…",
            Command::OpenData => "Open data (CSV)…",
            Command::Save => "Save",
            Command::SaveAs => "Save As…",
            Command::LoadBundled(_) => "Load preset",
            Command::LoadPath(_) => "Open file",
            Command::ExportFigure => "Export figure (SVG or PNG)…",
            Command::ExportWindow => "Export window as PNG…",
            Command::ExportTraceCsv => "Export trace as CSV…",
            Command::ExportTraceJson => "Export trace as JSON…",
            Command::Rebuild(_) => "Restart",
            Command::SetTwin(_) => "Side by side",
            Command::DragPrototype { .. } => "Drag a prototype",
            Command::AddPoint(_) => "Add a point",
            Command::RemovePoint(_) => "Remove a point",
            Command::AddProbe(_) => "Place a probe",
            Command::ClearProbes => "Clear probes",
            Command::FitView => "Fit view",
        }
    }

    /// What hovering it says (the shortcut is added by [`Command::hover_text`]).
    #[must_use]
    pub fn tooltip(&self) -> &'static str {
        match self {
            Command::TogglePlay => "Play or pause both runs",
            Command::Step => "One paired step: a gradient step and an EM step (pauses)",
            Command::Reset => "Back to step 0 on the same data and start",
            Command::Regenerate => "New data from the next seed, and a new start",
            Command::Undo => "Undo the last change, drag or edit",
            Command::Redo => "Redo what the last undo took back",
            Command::Open => "Open a preset (.ron) or data (.csv)",
            Command::OpenData => {
                "Points from a CSV file (columns x, y, …, optional label, target…, soft0…): the current objective and settings, K prototypes by k-means++"
            }
            Command::Save => "Save the experiment to its file (or choose one)",
            Command::SaveAs => "Save the experiment to a new file",
            Command::LoadBundled(_) => "Load a bundled preset",
            Command::LoadPath(_) => "Open a preset file",
            Command::ExportFigure => {
                "The scene as a figure for a paper or slides: axes, title and legend, at a size you choose, as SVG (vector) or PNG"
            }
            Command::ExportWindow => "A PNG of the whole window",
            Command::ExportTraceCsv => "The trace so far, one row per step and run (the format of `run --out x.csv`)",
            Command::ExportTraceJson => "The trace so far with the preset (the format of `run --out x.json`)",
            Command::Rebuild(_) => "Build the experiment again from the settings",
            Command::SetTwin(_) => "This experiment with one choice flipped, stepped beside it",
            Command::DragPrototype { .. } => "Both runs continue from the new position",
            Command::AddPoint(_) => "Add a point with the chosen label",
            Command::RemovePoint(_) => "Remove the nearest point",
            Command::AddProbe(_) => "A query iterated to its fixed point",
            Command::ClearProbes => "Remove every probe",
            Command::FitView => "Show every point, prototype, trail and probe (or double-click the scene)",
        }
    }

    /// The keys that run it.
    #[must_use]
    pub fn shortcuts(&self) -> &'static [KeyboardShortcut] {
        const fn key(modifiers: Modifiers, key: Key) -> KeyboardShortcut {
            KeyboardShortcut::new(modifiers, key)
        }
        const OPEN: [KeyboardShortcut; 1] = [key(Modifiers::COMMAND, Key::O)];
        const SAVE: [KeyboardShortcut; 1] = [key(Modifiers::COMMAND, Key::S)];
        const SAVE_AS: [KeyboardShortcut; 1] = [key(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::S)];
        const UNDO: [KeyboardShortcut; 1] = [key(Modifiers::COMMAND, Key::Z)];
        const REDO: [KeyboardShortcut; 2] = [
            key(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z),
            key(Modifiers::COMMAND, Key::Y),
        ];
        const PLAY: [KeyboardShortcut; 1] = [key(Modifiers::NONE, Key::Space)];
        const STEP: [KeyboardShortcut; 1] = [key(Modifiers::NONE, Key::ArrowRight)];
        const RESET: [KeyboardShortcut; 1] = [key(Modifiers::NONE, Key::R)];
        const FIT: [KeyboardShortcut; 1] = [key(Modifiers::NONE, Key::F)];
        match self {
            Command::Open => &OPEN,
            Command::Save => &SAVE,
            Command::SaveAs => &SAVE_AS,
            Command::Undo => &UNDO,
            Command::Redo => &REDO,
            Command::TogglePlay => &PLAY,
            Command::Step => &STEP,
            Command::Reset => &RESET,
            Command::FitView => &FIT,
            _ => &[],
        }
    }

    /// Whether its keys are plain keys, which a text field being typed into keeps for itself.
    #[must_use]
    pub fn plain_keys(&self) -> bool {
        self.shortcuts().iter().any(|s| s.modifiers.is_none())
    }

    /// The tooltip with the keys, e.g. "Undo the last change, drag or edit (Ctrl+Z)".
    #[must_use]
    pub fn hover_text(&self, ctx: &eframe::egui::Context) -> String {
        let keys: Vec<String> = self.shortcuts().iter().map(|s| ctx.format_shortcut(s)).collect();
        if keys.is_empty() {
            self.tooltip().to_string()
        } else {
            format!("{} ({})", self.tooltip(), keys.join(" or "))
        }
    }
}
