//! The desktop window (feature `gui`): a thin shell around the core.
//!
//! Controls write (a draft preset and live settings on the experiment); the scene, the
//! comparison and the inspector only read. App-wide actions go through [`Command`], drained in
//! one place at the end of each frame.

mod command;
mod compare;
mod controls;
pub mod figure;
mod files;
mod help;
mod inspect;
mod markers;
mod scene;
pub mod scene_data;
mod undo;
pub mod view_data;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::core::experiment::Experiment;
use crate::preset::{self, DataRoot, Preset};
use crate::session::Session;
use crate::session::twin::Flip;

pub use command::Command;
pub use files::BUNDLED;

/// What the scene's background shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Background {
    /// Nothing.
    None,
    /// Contours of the free energy `F(x)`.
    FreeEnergy,
    /// Soft region colours: the responsibility (or class-posterior) blend at each position.
    #[default]
    Responsibility,
}

/// Which sign convention numbers are shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Convention {
    /// Free-energy units: `∂F_i/∂E_ij = +r_ij`.
    #[default]
    FreeEnergy,
    /// The paper's: `L_i = log Σ_j exp(−d_ij/T)` maximised, `∂L_i/∂d_ij = −r_ij/T`.
    Paper,
}

/// What a click in the scene does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tool {
    /// Select a point; drag a prototype.
    #[default]
    Select,
    /// Add a point with the chosen label.
    AddPoint,
    /// Remove the nearest point.
    RemovePoint,
    /// Place a retrieval probe (a query iterated to its fixed point).
    Probe,
}

/// View options (persisted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewOptions {
    /// Background field.
    pub background: Background,
    /// Draw each prototype's path.
    pub trails: bool,
    /// Draw explicit EM's prototypes (hollow).
    pub show_em: bool,
    /// Draw attention read-outs.
    pub readouts: bool,
    /// Draw each component's 1σ and 2σ ellipses (a metric with maps, or learned scales).
    pub ellipses: bool,
    /// Background resolution (cells per side).
    pub grid: usize,
    /// Sign convention of the inspector and the formula strip.
    pub convention: Convention,
    /// Dark theme.
    pub dark: bool,
    /// Paired steps per frame while playing.
    pub steps_per_frame: usize,
    /// While an annealing schedule runs, take as many steps per frame as fit in a few
    /// milliseconds ([`worker::frame_steps`]), so each temperature settles in a moment.
    pub fast_settle: bool,
    /// Layout generation: *View → Reset layout* counts it up, so the panels forget the sizes
    /// they were dragged to (their ids include it).
    pub layout: u32,
    /// The plane the scene shows data of more than two coordinates in.
    pub plane: ViewPlane,
}

/// The plane of the scene for `D > 2` (for `D ≤ 2` the scene shows the data as they are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ViewPlane {
    /// The two leading principal axes (PCA).
    #[default]
    Principal,
    /// Two of the coordinates, the others at the data mean.
    Coordinates(usize, usize),
    /// Fisher's discriminant axes of the labels (PCA when there are fewer than two classes).
    Discriminant,
}

impl ViewPlane {
    /// The projection this choice makes of `problem`'s points (coordinates out of range are
    /// clamped; `D ≤ 2` is always coordinates 0 and 1).
    #[must_use]
    pub fn of(self, problem: &crate::core::problem::Problem) -> crate::core::projection::Projection {
        let principal = problem.principal_plane();
        match self {
            _ if problem.dim <= 2 => principal.clone(),
            Self::Principal => principal.clone(),
            Self::Discriminant => problem.discriminant_plane().unwrap_or(principal).clone(),
            Self::Coordinates(i, j) => {
                let last = problem.dim - 1;
                crate::core::projection::Projection::coordinates(principal.mean.clone(), i.min(last), j.min(last))
            }
        }
    }
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            background: Background::Responsibility,
            trails: true,
            show_em: true,
            readouts: true,
            ellipses: true,
            grid: 128,
            convention: Convention::FreeEnergy,
            dark: true,
            steps_per_frame: 1,
            fast_settle: true,
            layout: 0,
            plane: ViewPlane::Principal,
        }
    }
}

/// Panel sizes as fractions of the window, with floors and ceilings in points: the side panels
/// grow on a large screen and shrink on a small one, and none can be dragged so wide that the
/// scene disappears.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// The controls' width: default and largest.
    pub left: (f32, f32),
    /// The comparison panel's width: default and largest.
    pub right: (f32, f32),
    /// The inspector's height: default and largest.
    pub bottom: (f32, f32),
}

impl Layout {
    /// The layout of a window of `width × height` points.
    #[must_use]
    pub fn of(width: f32, height: f32) -> Self {
        let part = |total: f32, share: f32, lo: f32, hi: f32| (total * share).clamp(lo, hi);
        Self {
            left: (part(width, 0.2, 250.0, 380.0), part(width, 0.3, 250.0, 520.0)),
            right: (part(width, 0.23, 230.0, 460.0), part(width, 0.34, 230.0, 640.0)),
            bottom: (part(height, 0.22, 110.0, 280.0), part(height, 0.42, 110.0, 520.0)),
        }
    }
}

/// A message under the controls.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// The text.
    pub text: String,
    /// An error (red) or information.
    pub error: bool,
    /// When the status bar first showed it (seconds of egui time): information fades after
    /// [`INFO_SECONDS`], an error stays until the next message.
    pub shown_at: Option<f64>,
}

/// Seconds an information message stays in the status bar.
pub const INFO_SECONDS: f64 = 8.0;

/// State that survives restarts (eframe persistence).
#[derive(Serialize, Deserialize, Default)]
struct Persisted {
    preset_ron: String,
    path: Option<PathBuf>,
    view: ViewOptions,
    /// The folder CSV paths are relative to; [`BUNDLED_ROOT`] for the bundled data.
    #[serde(default)]
    base_dir: Option<PathBuf>,
}

const STORAGE_KEY: &str = "implicit-em-lab";
/// How the saved session writes [`DataRoot::Bundled`] (as earlier versions did).
const BUNDLED_ROOT: &str = "<bundled>";
/// Records the window keeps (older ones thinned), so a long session stays bounded in memory.
pub const HISTORY: usize = 20_000;

/// The experiment file being edited, and what runs.
pub struct Document {
    /// The preset the controls edit (what Save writes).
    pub draft: Preset,
    /// The preset the session runs: the draft as last applied.
    running: Preset,
    /// Where relative CSV paths resolve.
    root: DataRoot,
    /// The file Save writes to.
    pub path: Option<PathBuf>,
}

/// Whether the runs advance, and which step the window shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Playback {
    /// Stepping every frame.
    pub playing: bool,
    /// A past step shown (an index into the history; `None`: live).
    pub scrub: Option<usize>,
}

/// What the pointer does and points at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Inspected point.
    pub selected: Option<usize>,
    /// Point under the pointer.
    pub hovered: Option<usize>,
    /// What a click in the scene does.
    pub tool: Tool,
    /// Label of added points.
    pub new_label: u32,
}

/// The window's own machinery: the status line, queued commands, dialogs, the screenshot job,
/// frame counting and persistence.
struct Shell {
    /// The message under the controls.
    status: Option<Status>,
    commands: Vec<Command>,
    dialog: Option<files::Dialog>,
    screenshot: Option<files::ScreenshotJob>,
    /// Frames drawn (the screenshot waits for the layout to settle).
    frames: u64,
    /// Bumped when new data or a new preset arrives (resets the scene's view).
    generation: u64,
    /// Whether closing saves the session (not for `--screenshot` runs, which must not overwrite
    /// the user's saved lab).
    persist: bool,
    exit_status: Arc<Mutex<Result<(), String>>>,
    /// The open help window.
    help: help::HelpWindow,
    /// Whether a text field was being typed into on the last frame.
    typing: bool,
    /// Whether the figure export window is open, and its size and theme.
    figure_open: bool,
    figure: figure::FigureOptions,
}

/// The lab's window: the document, the session it runs, and the window's own state. Panels
/// draw from the document and the session and queue [`Command`]s; the session changes only in
/// [`LabApp::frame_ui`]'s last step, where the commands run and the draft meets it.
pub struct LabApp {
    doc: Document,
    /// The experiment, its annealing schedule and its twin.
    session: Session,
    view: ViewOptions,
    selection: Selection,
    playback: Playback,
    /// Steps on the UI thread or a worker thread.
    worker: worker::Worker,
    undo: undo::UndoStack,
    shell: Shell,
    scene: scene::SceneState,
    /// The largest identity residual seen since the last restart.
    residual_max: f64,
}

impl LabApp {
    /// A lab running `preset` (CSV paths resolved from `root`).
    ///
    /// # Errors
    /// When the preset does not validate or build.
    pub fn new(preset: Preset, root: impl Into<DataRoot>) -> Result<Self, String> {
        Self::with_field_errors(preset, root).map_err(|e| e.message)
    }

    /// As [`LabApp::new`], the error with its field (to be located in the preset's text).
    ///
    /// # Errors
    /// When the preset does not validate or build.
    pub fn with_field_errors(preset: Preset, root: impl Into<DataRoot>) -> Result<Self, preset::PresetError> {
        let root = root.into();
        let mut session = preset.validate().and_then(|v| v.build(root.clone()))?;
        session.experiment_mut().set_history_limit(Some(HISTORY));
        Ok(Self {
            doc: Document {
                draft: preset.clone(),
                running: preset,
                root,
                path: None,
            },
            session,
            view: ViewOptions::default(),
            selection: Selection::default(),
            playback: Playback {
                playing: true,
                scrub: None,
            },
            worker: worker::Worker::default(),
            undo: undo::UndoStack::default(),
            shell: Shell {
                status: None,
                commands: Vec::new(),
                dialog: None,
                screenshot: None,
                frames: 0,
                generation: 0,
                persist: true,
                exit_status: Arc::new(Mutex::new(Ok(()))),
                help: help::HelpWindow::Closed,
                typing: false,
                figure_open: false,
                figure: figure::FigureOptions::default(),
            },
            scene: scene::SceneState::default(),
            residual_max: 0.0,
        })
    }

    /// The preset the controls edit (what Save writes).
    #[must_use]
    pub fn draft(&self) -> &Preset {
        &self.doc.draft
    }

    /// The draft, to edit (the session follows at the end of the next frame).
    pub fn draft_mut(&mut self) -> &mut Preset {
        &mut self.doc.draft
    }

    /// The file Save writes to.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.doc.path.as_deref()
    }

    /// Sets the file Save writes to.
    pub fn set_path(&mut self, path: Option<PathBuf>) {
        self.doc.path = path;
    }

    /// View options.
    #[must_use]
    pub fn view(&self) -> &ViewOptions {
        &self.view
    }

    /// View options, to change.
    pub fn view_mut(&mut self) -> &mut ViewOptions {
        &mut self.view
    }

    /// Playing, and the step shown.
    #[must_use]
    pub fn playback(&self) -> &Playback {
        &self.playback
    }

    /// Playing, and the step shown, to change.
    pub fn playback_mut(&mut self) -> &mut Playback {
        &mut self.playback
    }

    /// The inspected point and the scene's tool.
    #[must_use]
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The inspected point and the scene's tool, to change.
    pub fn selection_mut(&mut self) -> &mut Selection {
        &mut self.selection
    }

    /// Where the steps are taken.
    #[must_use]
    pub fn worker(&self) -> &worker::Worker {
        &self.worker
    }

    /// Where the steps are taken, to change (tests and benchmarks).
    pub fn worker_mut(&mut self) -> &mut worker::Worker {
        &mut self.worker
    }

    /// The largest identity residual seen since the last restart.
    #[must_use]
    pub fn residual_max(&self) -> f64 {
        self.residual_max
    }

    /// The experiment, its annealing schedule and its twin.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Both runs.
    #[must_use]
    pub fn experiment(&self) -> &Experiment {
        self.session.experiment()
    }

    /// Hands `steps` steps of the session to the worker thread (tests; the window decides this
    /// itself in [`LabApp::frame_ui`]).
    pub fn start_worker(&mut self, steps: usize) {
        self.worker.start(&self.session, steps);
    }

    /// Turns the twin on with `flip` (from the lab's current states) or off.
    pub fn set_twin(&mut self, flip: Option<Flip>) {
        // Steps a worker has in flight join the lab first, so the twin starts where the lab is.
        self.settle();
        self.session.set_twin(flip);
    }

    /// A lab around an experiment built elsewhere (benchmarks, tests); its draft is the default
    /// preset, so only the live settings are meaningful.
    #[must_use]
    pub fn from_experiment(experiment: Experiment) -> Self {
        let mut app = Self::bundled_default();
        app.session = Session::of(experiment, 0.0);
        app.session.experiment_mut().set_history_limit(Some(HISTORY));
        app
    }

    /// The first bundled preset (three blobs).
    #[must_use]
    pub fn bundled_default() -> Self {
        let (name, text) = BUNDLED[0];
        let preset = preset::parse(text, name).expect("bundled presets parse (tested)");
        Self::new(preset, DataRoot::Bundled).expect("bundled presets build (tested)")
    }

    /// Queues a command (run at the end of the frame).
    pub fn command(&mut self, c: Command) {
        self.shell.commands.push(c);
    }

    /// Changes when the scene should refit its view (new data or preset).
    #[must_use]
    pub fn scene_generation(&self) -> u64 {
        self.shell.generation
    }

    /// Where GD prototype `j` was drawn on the last frame (screen points).
    #[must_use]
    pub fn prototype_screen_pos(&self, j: usize) -> Option<egui::Pos2> {
        let m = self.experiment().gd_state().prototype(j);
        let p = egui_plot::PlotPoint::new(m[0], m.get(1).copied().unwrap_or(0.0));
        self.scene.transform().map(|t| t.position_from_point(&p))
    }

    /// The plane position under a screen position (last frame's scene transform).
    #[must_use]
    pub fn scene_value_at(&self, pos: egui::Pos2) -> Option<[f64; 2]> {
        self.scene.transform().map(|t| {
            let v = t.value_from_position(pos);
            [v.x, v.y]
        })
    }

    /// The plane region the scene showed on the last frame (`(min, max)`).
    #[must_use]
    pub fn scene_view(&self) -> Option<([f64; 2], [f64; 2])> {
        self.scene.transform().map(|t| (t.bounds().min(), t.bounds().max()))
    }

    /// What the scene must show whole: the box of every point, prototype, trail and probe
    /// ([`scene_data::SceneData::content`]) at the live state.
    #[must_use]
    pub fn scene_content(&self) -> ([f64; 2], [f64; 2]) {
        scene_data::SceneData::new(
            &self.session,
            &self.view,
            None,
            self.selection.selected,
            &self.doc.running.probes,
        )
        .content
    }

    /// Where the scene was drawn on the last frame.
    #[must_use]
    pub fn scene_rect(&self) -> Option<egui::Rect> {
        self.scene.rect
    }

    /// A lab that never saves its session on close (scripted runs).
    pub fn without_persistence(mut self) -> Self {
        self.shell.persist = false;
        self
    }

    /// The last status message.
    #[must_use]
    pub fn status_text(&self) -> Option<&str> {
        self.shell.status.as_ref().map(|s| s.text.as_str())
    }

    /// The last status message when it is an error.
    #[must_use]
    pub fn error_text(&self) -> Option<&str> {
        self.shell.status.as_ref().filter(|s| s.error).map(|s| s.text.as_str())
    }

    /// Undo entries available.
    #[must_use]
    pub fn undo_depth(&self) -> usize {
        self.undo.undo_depth()
    }

    /// Redo entries available.
    #[must_use]
    pub fn redo_depth(&self) -> usize {
        self.undo.redo_depth()
    }

    /// Bytes the newest undo snapshot holds on the heap of its own (tests).
    #[must_use]
    pub fn latest_snapshot_bytes(&self) -> Option<usize> {
        self.undo.latest().map(undo::Snapshot::heap_bytes)
    }

    fn info(&mut self, text: impl Into<String>) {
        self.shell.status = Some(Status {
            text: text.into(),
            error: false,
            shown_at: None,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.shell.status = Some(Status {
            text: text.into(),
            error: true,
            shown_at: None,
        });
    }

    /// Records an undo step before a change made by the widget (or action) `key`. Continuous
    /// changes of one widget (a slider being dragged) within 0.7 s form one undo step. The
    /// snapshot is small: the session without its history ([`undo`]).
    pub fn before_change(&mut self, key: impl std::hash::Hash, now: f64) {
        self.undo.before_change(key, now, || undo::Snapshot {
            draft: self.doc.draft.clone(),
            running: self.doc.running.clone(),
            session: self.session.snapshot(),
            root: self.doc.root.clone(),
            path: self.doc.path.clone(),
        });
    }

    /// The session is about to be replaced or reset: its history joins the newest undo
    /// snapshot (taken just before, by [`LabApp::before_change`]), so undo brings it back.
    fn keep_history(&mut self) {
        let latest = self.experiment().latest().step;
        let lineage = self.experiment().lineage();
        let history = self.session.experiment_mut().take_history_before(latest);
        self.undo.keep_history(lineage, history);
    }

    fn undo(&mut self, redo: bool) {
        // Steps a worker has in flight join first, so the twin restarts where the lab is.
        self.settle();
        let flip = self.session.twin().map(|t| t.flip);
        let current = undo::Current {
            draft: &mut self.doc.draft,
            running: &mut self.doc.running,
            session: &mut self.session,
            root: &mut self.doc.root,
            path: &mut self.doc.path,
        };
        let swapped = if redo {
            self.undo.redo(current)
        } else {
            self.undo.undo(current)
        };
        if !swapped {
            self.info(if redo { "nothing to redo" } else { "nothing to undo" });
            return;
        }
        // The twin starts again from the restored states.
        self.session.set_twin(flip);
        self.playback.scrub = None;
        self.shell.generation += 1;
        self.selection.selected = self
            .selection
            .selected
            .filter(|&i| i < self.experiment().problem().len());
        self.info(if redo { "redone" } else { "undone" });
    }

    /// Rebuilds the experiment from the draft (a change that needs new data or a new start).
    /// On failure the draft returns to what was last built and the error is shown.
    pub fn rebuild(&mut self, reason: &str) {
        match self.doc.draft.validate().and_then(|v| v.build(self.doc.root.clone())) {
            Ok(session) => {
                self.start(session, self.doc.draft.clone());
                self.selection.selected = self
                    .selection
                    .selected
                    .filter(|&i| i < self.experiment().problem().len());
                self.info(format!("restarted: {reason}"));
            }
            Err(e) => {
                self.doc.draft = self.doc.running.clone();
                self.error(format!("{reason}: {}", e.message));
            }
        }
    }

    /// Runs a freshly built `session` of `preset`: the twin keeps its flip (started from the new
    /// states), the scene refits, the residual and the scrub position reset.
    fn start(&mut self, session: Session, preset: Preset) {
        self.keep_history();
        let flip = self.session.twin().map(|t| t.flip);
        self.session = session;
        self.session.experiment_mut().set_history_limit(Some(HISTORY));
        self.session.set_twin(flip);
        self.doc.running = preset;
        self.shell.generation += 1;
        self.residual_max = 0.0;
        self.playback.scrub = None;
    }

    /// Applies the draft's live settings (T, η, rate, learned parameters, …) to the session
    /// without restarting: one mapping ([`Preset::run_settings`]), one call.
    /// While a worker takes the steps, the evaluation at the new settings is left to it (the
    /// next step starts with it), so a slider tick costs the UI thread nothing; otherwise the
    /// session re-evaluates now.
    pub fn apply_live(&mut self) {
        let settings = self.doc.draft.run_settings();
        if self.playback.playing && self.worker.threaded {
            self.session.set_settings_deferred(settings);
        } else {
            self.session.set_settings(settings);
        }
        self.doc.running.set_run_settings(settings);
    }

    /// Advances `n` paired steps; a non-finite value pauses the run and says why.
    pub fn advance(&mut self, n: usize) {
        for _ in 0..n {
            let stepped = self.session.step();
            if stepped.is_some() {
                self.follow_schedule();
            }
            match stepped {
                None => {
                    if let Some(a) = self.session.annealer() {
                        let t = a.schedule.t_min;
                        let (gd, em) = a.split_counts();
                        self.playback.playing = false;
                        self.info(format!(
                            "annealing done: settled at T_min = {t}; splits found: {gd} (explicit EM: {em}). Reset to anneal again."
                        ));
                    }
                    return;
                }
                Some(Ok(residual)) => {
                    self.residual_max = self.residual_max.max(residual);
                    self.undo.stepped();
                }
                Some(Err(e)) => {
                    self.playback.playing = false;
                    self.error(format!(
                        "{e}. The last good state is kept; change a setting and press Play."
                    ));
                    return;
                }
            }
        }
    }

    /// One frame's stepping: adopt what the worker finished, then take this frame's steps on
    /// the UI thread or hand them to the worker (see [`worker`]).
    fn play(&mut self, ctx: &egui::Context) {
        if let Some(outcome) = self.worker.finished() {
            self.adopt(outcome);
        }
        if !self.playback.playing || self.playback.scrub.is_some() || self.shell.screenshot.is_some() {
            // Nobody steps: a settings change left for the worker is evaluated here.
            if self.session.is_stale() && !self.worker.busy() {
                self.session.refresh();
            }
            return;
        }
        let settling = self.view.fast_settle && self.session.annealer().is_some_and(|a| !a.finished());
        let steps = worker::frame_steps(self.view.steps_per_frame, self.worker.ms_per_step, settling);
        if self.worker.busy() {
            // Keep drawing (and polling) while the worker runs.
        } else if self.worker.threaded && !self.session.finished() {
            // The whole session goes to the worker: the twin takes the same steps there, and an
            // annealing schedule takes them. (A finished schedule is reported here, by
            // `advance`.)
            self.worker.start(&self.session, steps);
        } else {
            let started = std::time::Instant::now();
            self.advance(steps);
            self.worker
                .measured(started.elapsed().as_secs_f64() * 1e3 / steps as f64, steps);
        }
        ctx.request_repaint();
    }

    /// Takes a worker's steps into the session (unless the lab was edited meanwhile), and
    /// pauses with the reason if the worker stopped on an error.
    fn adopt(&mut self, outcome: Result<worker::Outcome, crate::core::experiment::StepError>) {
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.playback.playing = false;
                self.error(e.reason);
                return;
            }
        };
        self.worker.measured(outcome.ms_per_step, outcome.run.steps.max(1));
        if self.session.adopt(outcome.stepped) {
            self.residual_max = self.residual_max.max(outcome.run.residual_max);
            if outcome.run.steps > 0 {
                self.undo.stepped();
            }
            self.follow_schedule();
            if let Some(e) = outcome.run.error {
                self.playback.playing = false;
                self.error(format!(
                    "{e}. The last good state is kept; change a setting and press Play."
                ));
            }
        }
    }

    /// While annealing, the temperature control follows the schedule.
    fn follow_schedule(&mut self) {
        if self.session.annealer().is_some() {
            let t = self.session.temperature();
            (self.doc.draft.temperature, self.doc.running.temperature) = (t, t);
        }
    }

    /// Waits for the worker's steps in flight and takes them (tests, screenshots, closing).
    pub fn settle(&mut self) {
        if let Some(outcome) = self.worker.wait() {
            self.adopt(outcome);
        }
    }

    /// Loads and starts a preset from text.
    fn load_text(&mut self, text: &str, source: &str, root: DataRoot, path: Option<PathBuf>) {
        let parsed = preset::parse(text, source).and_then(|p| {
            let v = p.validate().map_err(|e| e.located(source, text))?;
            let built = v.build(root.clone()).map_err(|e| e.located(source, text))?;
            Ok((p, built))
        });
        match parsed {
            Ok((p, session)) => {
                self.open_document(p, session, root, path);
                self.info(format!("loaded {source}"));
            }
            Err(e) => self.error(format!("not loaded (nothing changed): {}", e.message)),
        }
    }

    /// Builds an experiment around the CSV file at `path` ([`preset::around_data`]): the current
    /// objective and settings, as many prototypes as now (k-means++), the file's points. The
    /// document has no file of its own until it is saved (Save asks where). A bad file shows
    /// its error and changes nothing.
    pub fn open_data(&mut self, path: &Path) {
        let k = self.session.experiment().gd_state().k;
        let built = preset::around_data(&self.doc.draft, path, k).and_then(|(p, note)| {
            let session = p.validate()?.build(DataRoot::of_file(path))?;
            Ok((p, session, note))
        });
        match built {
            Ok((p, session, note)) => {
                self.open_document(p, session, DataRoot::of_file(path), None);
                let problem = self.session.experiment().problem();
                let mut text = format!(
                    "opened {}: {} points, D = {}, K = {} (k-means++)",
                    path.display(),
                    problem.len(),
                    problem.dim,
                    self.session.experiment().gd_state().k
                );
                if let Some(note) = note {
                    text = format!("{text}; {note}");
                }
                self.info(text);
            }
            Err(e) => self.error(format!("not opened (nothing changed): {}", e.message)),
        }
    }

    /// A loaded preset or data file becomes the document (undoable), its session runs, playing.
    fn open_document(&mut self, p: Preset, session: Session, root: DataRoot, path: Option<PathBuf>) {
        self.before_change("load", f64::NEG_INFINITY);
        self.doc.draft = p.clone();
        self.start(session, p);
        self.doc.root = root;
        self.doc.path = path;
        self.selection.selected = None;
        self.playback.playing = true;
    }

    /// Opens a file by its kind: `.csv` data ([`LabApp::open_data`]) or a preset.
    pub fn open_path(&mut self, path: &Path) {
        if files::is_csv(path) {
            self.open_data(path);
        } else {
            self.load_path(path);
        }
    }

    /// Loads a preset file; a bad file shows its error and changes nothing.
    pub fn load_path(&mut self, path: &Path) {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let root = DataRoot::of_file(path);
                self.load_text(&text, &path.display().to_string(), root, Some(path.to_path_buf()));
            }
            Err(e) => self.error(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// The preset Save writes to `path`: the draft (with the data inlined when points were
    /// edited). A CSV file stays found: a bundled preset's data are written inline, and a path
    /// relative to another folder becomes absolute.
    ///
    /// # Errors
    /// When the bundled CSV cannot be read back (it is compiled in and tested, so not expected).
    pub fn preset_to_save(&self, path: &Path) -> Result<Preset, String> {
        let mut p = self.doc.draft.clone();
        if let preset::DataSpec::Csv { path: csv } = &p.data {
            if let DataRoot::Folder(base) = &self.doc.root {
                let absolute = |d: &Path| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf());
                let folder = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if absolute(folder) != absolute(base) {
                    p.data = preset::DataSpec::Csv {
                        path: absolute(&base.join(csv)).display().to_string(),
                    };
                }
            } else {
                let data = preset::make_data(&p.data, p.seed, &self.doc.root).map_err(|e| e.message)?;
                p.data = preset::DataSpec::inline(&data);
            }
        }
        Ok(p)
    }

    /// Saves the draft to `path` atomically.
    pub fn save_to(&mut self, path: &Path) {
        let saved = self.preset_to_save(path).and_then(|p| preset::save(path, &p));
        match saved {
            Ok(()) => {
                // Undo states of this document save where it now lives (Save As moved it).
                let old = self.doc.path.replace(path.to_path_buf());
                self.undo.moved(old.as_deref(), path);
                self.info(format!("saved {}", path.display()));
            }
            Err(e) => self.error(e),
        }
    }

    fn run_commands(&mut self) {
        for c in std::mem::take(&mut self.shell.commands) {
            match c {
                Command::TogglePlay => {
                    self.playback.playing = !self.playback.playing;
                    if self.playback.playing {
                        self.playback.scrub = None;
                    }
                }
                Command::Step => {
                    self.playback.playing = false;
                    self.playback.scrub = None;
                    self.advance(1);
                }
                Command::Reset => {
                    self.before_change("reset", f64::NEG_INFINITY);
                    // A reset is an edit: steps a worker has in flight no longer follow on.
                    self.keep_history();
                    match self.session.reset() {
                        Ok(()) => self.info("reset to step 0"),
                        Err(e) => self.error(format!("annealing not started: {e}")),
                    }
                    self.scene.request_fit();
                    self.residual_max = 0.0;
                    self.playback.scrub = None;
                }
                Command::Regenerate => {
                    self.before_change("regenerate", f64::NEG_INFINITY);
                    self.doc.draft.seed = self.doc.draft.seed.wrapping_add(1);
                    let seed = self.doc.draft.seed;
                    self.rebuild(&format!("new data, seed {seed}"));
                }
                Command::Undo => self.undo(false),
                Command::Redo => self.undo(true),
                Command::Open => self.shell.dialog = Some(files::Dialog::open(self.doc.path.as_deref(), false)),
                Command::OpenData => self.shell.dialog = Some(files::Dialog::open(self.doc.path.as_deref(), true)),
                Command::Save => match self.doc.path.clone() {
                    Some(p) => self.save_to(&p),
                    None => {
                        self.shell.dialog = Some(files::Dialog::save(
                            files::Purpose::SavePreset,
                            self.doc.path.as_deref(),
                        ))
                    }
                },
                Command::SaveAs => {
                    self.shell.dialog = Some(files::Dialog::save(
                        files::Purpose::SavePreset,
                        self.doc.path.as_deref(),
                    ))
                }
                Command::LoadBundled(i) => {
                    if let Some((name, text)) = BUNDLED.get(i) {
                        self.load_text(text, name, DataRoot::Bundled, None);
                    }
                }
                Command::LoadPath(p) => self.open_path(&p),
                Command::ExportFigure => self.shell.figure_open = true,
                Command::ExportWindow => {
                    self.shell.dialog = Some(files::Dialog::save(files::Purpose::ExportWindow, None))
                }
                Command::ExportTraceCsv => {
                    self.shell.dialog = Some(files::Dialog::save(files::Purpose::ExportTraceCsv, None))
                }
                Command::ExportTraceJson => {
                    self.shell.dialog = Some(files::Dialog::save(files::Purpose::ExportTraceJson, None))
                }
                Command::Rebuild(reason) => self.rebuild(&reason),
                Command::SetTwin(flip) => self.set_twin(flip),
                Command::DragPrototype { index, to } => scene::drag_to(self, index, to),
                Command::AddPoint(at) => scene::add_point(self, at),
                Command::RemovePoint(i) => scene::remove_point(self, i),
                Command::AddProbe(at) => scene::add_probe(self, at),
                Command::FitView => self.scene.request_fit(),
                Command::ClearProbes => {
                    self.before_change("probe", f64::NEG_INFINITY);
                    self.doc.draft.probes.clear();
                    self.doc.running.probes.clear();
                }
            }
        }
        self.reconcile();
    }

    /// The one point in the frame where the draft meets the running session: live settings the
    /// controls changed in the draft reach the session here ([`LabApp::apply_live`]), so every
    /// panel of a frame saw the same session.
    fn reconcile(&mut self) {
        if self.doc.draft.run_settings() != self.doc.running.run_settings() {
            self.apply_live();
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        // Only a text field being typed into keeps the plain keys (it set the IME output last
        // frame): a focused slider or radio button must not swallow Space, → and R.
        let typing = self.shell.typing;
        ctx.input_mut(|i| {
            for c in Command::WITH_KEYS {
                if typing && c.plain_keys() {
                    continue;
                }
                if c.shortcuts().iter().any(|s| i.consume_shortcut(s)) {
                    self.shell.commands.push(c);
                }
            }
            for f in &i.raw.dropped_files {
                let p = f.path().to_path_buf();
                if files::is_preset(&p) || files::is_csv(&p) {
                    self.shell.commands.push(Command::LoadPath(p));
                } else {
                    self.shell.status = Some(Status {
                        text: format!("only .ron presets and .csv data can be dropped here ({})", p.display()),
                        error: true,
                        shown_at: None,
                    });
                }
            }
        });
    }

    /// One frame of the whole window, drawn into `ui` (the eframe root, or a test harness).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        ctx.set_theme(if self.view.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        self.shell.frames += 1;
        self.shortcuts(&ctx);
        // Play, pause and step keys act before anything is drawn, so this frame shows what
        // they did (at 100,000 points, where a frame takes long, a pause showed frames later).
        // Other commands keep their place after the controls (an edit's undo entry is closed
        // there).
        let playback = |c: &Command| matches!(c, Command::TogglePlay | Command::Step);
        if !self.shell.commands.is_empty() && self.shell.commands.iter().all(playback) {
            self.act(&ctx);
        }
        self.play(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_ui(ui));
        egui::Panel::top("formula").show(ui, |ui| inspect::formula_ui(self, ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        let room = ctx.content_rect().size();
        let layout = Layout::of(room.x, room.y);
        let generation = self.view.layout;
        egui::Panel::left(("controls", generation))
            .resizable(true)
            .default_size(layout.left.0)
            .size_range(160.0..=layout.left.1)
            .show(ui, |ui| {
                // Another preset starts at the top of the controls (its name and description);
                // a restart after a change keeps the place.
                egui::ScrollArea::vertical()
                    .id_salt(("controls scroll", self.doc.draft.name.clone()))
                    .show(ui, |ui| controls::controls_ui(self, ui));
            });
        egui::Panel::right(("compare", generation))
            .resizable(true)
            .default_size(layout.right.0)
            .size_range(180.0..=layout.right.1)
            .show(ui, |ui| {
                // Vertical only: plots and titles take the visible width; the per-prototype
                // table scrolls sideways on its own.
                egui::ScrollArea::vertical().show(ui, |ui| {
                    compare::compare_ui(ui, &self.session, &mut self.playback, self.residual_max);
                });
            });
        egui::Panel::bottom(("inspect", generation))
            .resizable(true)
            .default_size(layout.bottom.0)
            .size_range(80.0..=layout.bottom.1)
            .show(ui, |ui| {
                inspect::inspect_ui(ui, &self.session, self.playback.scrub, &self.selection, &mut self.view)
            });
        egui::CentralPanel::default().show(ui, |ui| scene::scene_ui(self, ui));
        help::window_ui(&ctx, &mut self.shell.help);
        files::figure_ui(self, &ctx);
        files::dialog_ui(self, &ctx);
        files::screenshot_tick(self, &ctx);
        self.shell.typing = ctx.output(|o| o.ime.is_some());
        self.act(&ctx);
    }

    /// Runs the commands queued so far and reconciles the draft with the session; if there
    /// were commands, asks for another frame to show their effect (a paused window asks for
    /// none otherwise).
    fn act(&mut self, ctx: &egui::Context) {
        let acted = !self.shell.commands.is_empty();
        self.run_commands();
        if acted {
            ctx.request_repaint();
        }
    }

    /// The status bar, always in view at the bottom of the window: playing or paused, the step,
    /// the last message (an error in red until the next message; information for
    /// [`INFO_SECONDS`]) and the latest step's warnings.
    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let now = ui.input(|i| i.time);
        if let Some(s) = &mut self.shell.status {
            let since = *s.shown_at.get_or_insert(now);
            if !s.error && now - since > INFO_SECONDS {
                self.shell.status = None;
            } else if !s.error {
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_secs_f64(INFO_SECONDS - (now - since) + 0.05));
            }
        }
        let warnings = self.experiment().latest().warnings.clone();
        ui.horizontal_wrapped(|ui| {
            let state = if self.playback.playing { "playing" } else { "paused" };
            ui.label(egui::RichText::new(format!("{state}, step {}", self.experiment().step_count())).strong());
            if let Some(s) = &self.shell.status {
                ui.separator();
                let colour = if s.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                ui.label(egui::RichText::new(&s.text).color(colour));
            }
            if let Some(first) = warnings.first() {
                ui.separator();
                let more = if warnings.len() > 1 {
                    format!(" (and {} more: see the right panel)", warnings.len() - 1)
                } else {
                    String::new()
                };
                ui.label(egui::RichText::new(format!("warning: {first}{more}")).color(ui.visuals().warn_fg_color));
            }
        });
    }

    /// One menu item: the command's label, its keys on the right, its tooltip.
    fn menu_item_ui(&mut self, ui: &mut egui::Ui, c: Command) {
        let keys = c.shortcuts().first().map(|s| ui.ctx().format_shortcut(s));
        let mut button = egui::Button::new(c.label());
        if let Some(k) = keys {
            button = button.shortcut_text(k);
        }
        let enabled = match c {
            Command::Undo => self.undo_depth() > 0,
            Command::Redo => self.redo_depth() > 0,
            _ => true,
        };
        if ui
            .add_enabled(enabled, button)
            .on_hover_text(c.hover_text(ui.ctx()))
            .clicked()
        {
            self.command(c);
        }
    }

    fn menu_ui(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                for c in Command::FILE_MENU {
                    match c {
                        Some(c) => self.menu_item_ui(ui, c),
                        None => {
                            ui.separator();
                        }
                    }
                }
            });
            ui.menu_button("Edit", |ui| {
                self.menu_item_ui(ui, Command::Undo);
                self.menu_item_ui(ui, Command::Redo);
            });
            ui.menu_button("Presets", |ui| {
                for (i, (name, text)) in BUNDLED.iter().enumerate() {
                    let (title, description) = preset::parse(text, name)
                        .map(|p| (p.name, p.description))
                        .unwrap_or_else(|_| ((*name).to_string(), String::new()));
                    let tip = help::drawable(ui.ctx(), &format!("{description}\n\n({name})"));
                    if ui.button(title).on_hover_text(tip).clicked() {
                        self.command(Command::LoadBundled(i));
                    }
                }
            });
            ui.menu_button("View", |ui| {
                self.menu_item_ui(ui, Command::FitView);
                if ui
                    .button("Reset layout")
                    .on_hover_text("The panels back to their default sizes for this window")
                    .clicked()
                {
                    self.view.layout = self.view.layout.wrapping_add(1);
                }
                ui.separator();
                ui.checkbox(&mut self.view.dark, "Dark theme")
                    .on_hover_text("Dark or light colours for the whole window");
                ui.checkbox(&mut self.view.trails, "Prototype trails")
                    .on_hover_text("Each prototype's path so far (GD solid, EM dashed)");
                ui.checkbox(&mut self.view.show_em, "Explicit EM prototypes (hollow)")
                    .on_hover_text("Explicit EM's run, hollow, beside gradient descent's");
            });
            ui.menu_button("Help", |ui| help::menu_ui(ui, &mut self.shell.help));
            ui.separator();
            let file = self
                .doc
                .path
                .as_ref()
                .map_or_else(|| "unsaved".to_string(), |p| p.display().to_string());
            ui.label(format!("{} — {file}", self.doc.draft.name));
        });
    }
}

impl eframe::App for LabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if !self.shell.persist {
            return;
        }
        let state = Persisted {
            preset_ron: preset::to_ron(&self.doc.draft),
            path: self.doc.path.clone(),
            view: self.view.clone(),
            base_dir: Some(match &self.doc.root {
                DataRoot::Bundled => PathBuf::from(BUNDLED_ROOT),
                DataRoot::Folder(folder) => folder.clone(),
            }),
        };
        eframe::set_value(storage, STORAGE_KEY, &state);
    }
}

/// What the command line asks of the window (`main.rs` maps its arguments to this, so the window
/// never depends on the command line).
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// A preset file to open instead of the saved session.
    pub preset: Option<PathBuf>,
    /// Take a screenshot of the window to this PNG after `steps` steps, then exit.
    pub screenshot: Option<PathBuf>,
    /// Steps before the screenshot or the figure.
    pub steps: Option<usize>,
    /// Write the scene as a figure to this `.svg` or `.png` after `steps` steps, without a
    /// window.
    pub figure: Option<PathBuf>,
    /// The figure's size and theme.
    pub figure_options: figure::FigureOptions,
}

/// The message for a window that could not open: no display says so and what to do; any other
/// error loses the source location that winit puts in it (a path on the machine that built the
/// lab, meaningless to its user).
#[must_use]
pub fn window_error(text: &str) -> String {
    if text.contains("DISPLAY") || text.contains("WAYLAND_SOCKET") {
        return "cannot open the window: no display (set DISPLAY for X11 or WAYLAND_DISPLAY for Wayland); the headless commands `run` and `check` need none, see --help".into();
    }
    let cleaned = match text.find(" at /").or_else(|| text.find(" at C:")) {
        Some(at) => {
            let rest = &text[at + 4..];
            // `path:line: message` — keep what follows the location.
            let mut parts = rest.splitn(3, ':');
            let (_, _, message) = (parts.next(), parts.next(), parts.next());
            format!("{}{}", &text[..at], message.map_or(String::new(), |m| format!(":{m}")))
        }
        None => text.to_string(),
    };
    format!("cannot open the window: {cleaned}")
}

/// Opens the window. With `--screenshot`, runs `--steps` steps, saves a PNG and exits.
///
/// # Errors
/// A preset that cannot be loaded, a window that cannot be created, or a screenshot that
/// cannot be written.
pub fn launch(args: &LaunchOptions) -> Result<(), String> {
    // A preset that cannot be opened: a screenshot run fails (exit 2); the window opens anyway
    // and says why in its status bar.
    let opened = args.preset.as_ref().map(|path| {
        if files::is_csv(path) {
            // Data: the default experiment (a mixture, K = 3) rebuilt around the file.
            let mut app = LabApp::bundled_default();
            app.open_data(path);
            return match app.error_text() {
                Some(e) => Err(e.to_string()),
                None => Ok(app),
            };
        }
        let p = preset::load_valid(path).map_err(|e| e.message)?.preset().clone();
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut app =
            LabApp::with_field_errors(p, DataRoot::of_file(path)).map_err(|e| e.located(&source, &text).message)?;
        app.doc.path = Some(path.clone());
        Ok::<LabApp, String>(app)
    });
    if let Some(path) = &args.figure {
        let mut app = match opened {
            Some(opened) => opened?,
            None => LabApp::bundled_default(),
        };
        return app.figure_headless(path, args.steps.unwrap_or(0), args.figure_options);
    }
    let (from_cli, open_error) = match opened {
        Some(Ok(app)) => (Some(app), None),
        Some(Err(message)) if args.screenshot.is_some() => return Err(message),
        Some(Err(message)) => (None, Some(message)),
        None => (None, None),
    };
    let screenshot = args.screenshot.clone();
    let steps = args.steps.unwrap_or(0);
    if steps > 0 && screenshot.is_none() {
        return Err("--steps without --screenshot or --figure: give --screenshot FILE.png or --figure FILE.svg (or use `run` for headless runs)".into());
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1320.0, 740.0])
            .with_min_inner_size([960.0, 600.0])
            .with_title("implicit-em-lab")
            .with_icon(files::icon()),
        // A screenshot run starts from its preset alone, never from a remembered session.
        persist_window: screenshot.is_none(),
        ..Default::default()
    };
    let status = Arc::new(Mutex::new(Ok(())));
    let status_in = Arc::clone(&status);
    eframe::run_native(
        "implicit-em-lab",
        options,
        Box::new(move |cc| {
            let mut app = match from_cli {
                // A preset from the command line keeps the saved view preferences.
                Some(mut app) => {
                    if let Some(view) = saved_view(cc.storage) {
                        app.view = view;
                    }
                    app
                }
                None => restore(cc.storage).unwrap_or_else(LabApp::bundled_default),
            };
            if let Some(message) = open_error {
                app.error(format!("not opened: {message}"));
            }
            app.shell.exit_status = status_in;
            if let Some(path) = screenshot {
                app.shell.persist = false;
                app.view.dark = true;
                app.playback.playing = false;
                app.advance(steps);
                app.shell.screenshot = Some(files::ScreenshotJob::exit_after(path));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| window_error(&e.to_string()))?;
    status.lock().map_err(|_| "screenshot status lost".to_string())?.clone()
}

/// The view preferences saved with the last session (theme, steps per frame, background, …),
/// kept when a preset is opened from the command line.
#[must_use]
pub fn saved_view(storage: Option<&dyn eframe::Storage>) -> Option<ViewOptions> {
    let state: Persisted = eframe::get_value(storage?, STORAGE_KEY)?;
    Some(state.view)
}

/// The lab as it was at the last clean exit, if there is one and it still builds.
#[must_use]
pub fn restore(storage: Option<&dyn eframe::Storage>) -> Option<LabApp> {
    let state: Persisted = eframe::get_value(storage?, STORAGE_KEY)?;
    let p = preset::parse(&state.preset_ron, "saved session").ok()?;
    let root = match (&state.base_dir, &state.path) {
        (Some(dir), _) if dir == Path::new(BUNDLED_ROOT) => DataRoot::Bundled,
        (Some(dir), _) => DataRoot::Folder(dir.clone()),
        (None, Some(path)) => DataRoot::of_file(path),
        (None, None) => DataRoot::Folder(PathBuf::from(".")),
    };
    let mut app = LabApp::new(p, root).ok()?;
    app.doc.path = state.path;
    app.view = state.view;
    Some(app)
}
