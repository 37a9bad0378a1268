//! The left panel: objective, temperature, learning rate, rate mode, learned parameters, K,
//! data, seed, and the run controls. Controls write; everything else reads.

use eframe::egui;

use super::view_data::num;
use super::{Background, Command, LabApp, Tool, ViewPlane};
use crate::core::model::RateMode;
use crate::core::model::{ScalePrior, Score};
use crate::preset::{DataSpec, InitSpec, ObjectiveSpec, Standardise};

/// A change to the draft that takes effect live, recorded for undo; the session follows at the
/// end of the frame (`LabApp::reconcile`).
fn live(app: &mut LabApp, r: &egui::Response, change: impl FnOnce(&mut LabApp)) {
    if r.changed() {
        app.before_change(r.id, r.ctx.input(|i| i.time));
        change(app);
    }
}

/// A change to the draft that rebuilds the session at the end of the frame, recorded for undo.
fn restart(app: &mut LabApp, r: &egui::Response, reason: &str, change: impl FnOnce(&mut LabApp)) {
    if r.changed() {
        app.before_change(r.id, r.ctx.input(|i| i.time));
        change(app);
        app.command(Command::Rebuild(reason.into()));
    }
}

fn objective_name(o: &ObjectiveSpec) -> &'static str {
    match o {
        ObjectiveSpec::Mixture => "Mixture (latent)",
        ObjectiveSpec::Attention { score: Score::Distance } => "Attention, distance scores",
        ObjectiveSpec::Attention {
            score: Score::DotProduct,
        } => "Attention, dot-product scores",
        ObjectiveSpec::CrossEntropy { .. } => "Cross-entropy (clamped)",
    }
}

/// Draws the controls.
pub fn controls_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    // Sliders narrow with the panel, so a slider and its name fit in a 960-point window's
    // controls (the default 100-point slider with a long name ran past the edge and was cut).
    // The clip rectangle is the panel's visible width (the available width grows with any
    // row that ran past the edge in an earlier frame, and would keep it wide).
    ui.spacing_mut().slider_width = (ui.clip_rect().width() - 200.0).clamp(50.0, 140.0);
    // Open again for each newly loaded preset (the id follows its name).
    let name = app.draft().name.clone();
    ui.push_id(&name, |ui| {
        super::help::description_ui(ui, &app.draft().name, &app.draft().description);
    });
    ui.separator();
    run_ui(app, ui);
    ui.separator();
    objective_ui(app, ui);
    ui.separator();
    optimiser_ui(app, ui);
    ui.separator();
    data_ui(app, ui);
    ui.separator();
    view_ui(app, ui);
}

fn run_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        let label = if app.playback.playing { "Pause" } else { "Play" };
        if ui
            .button(label)
            .on_hover_text(Command::TogglePlay.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::TogglePlay);
        }
        if ui
            .button("Step")
            .on_hover_text(Command::Step.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::Step);
        }
        if ui
            .button("Reset")
            .on_hover_text(Command::Reset.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::Reset);
        }
        if ui
            .button("Regenerate")
            .on_hover_text(Command::Regenerate.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::Regenerate);
        }
    });
    ui.horizontal_wrapped(|ui| {
        let can_undo = app.undo_depth() > 0;
        if ui
            .add_enabled(can_undo, egui::Button::new("Undo"))
            .on_hover_text(Command::Undo.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::Undo);
        }
        if ui
            .add_enabled(app.redo_depth() > 0, egui::Button::new("Redo"))
            .on_hover_text(Command::Redo.hover_text(ui.ctx()))
            .clicked()
        {
            app.command(Command::Redo);
        }
    });
    ui.add(egui::Slider::new(&mut app.view.steps_per_frame, 1..=50).text("steps / frame"))
        .on_hover_text("Paired steps taken per drawn frame while playing");
    if app.session.annealer().is_some() {
        ui.checkbox(&mut app.view.fast_settle, "fast settle").on_hover_text(format!(
            "While the annealing schedule runs, take as many paired steps per frame as fit in {} ms (up to {}), so each temperature settles in a moment; untick to watch the runs settle at the steps per frame above",
            super::worker::SETTLE_BUDGET_MS,
            super::worker::SETTLE_MAX_STEPS
        ));
    }
    if app.worker.ms_per_step > 0.0 {
        let (mode, hint) = if app.worker.threaded {
            (
                "on a worker thread",
                "A frame's steps take longer than 8 ms, so a worker thread takes them and the window keeps drawing; it shows each step as it arrives",
            )
        } else {
            (
                "on the UI thread",
                "A frame's steps take less than 8 ms, so the window takes them itself",
            )
        };
        ui.label(format!("{:.2} ms per paired step, {mode}", app.worker.ms_per_step))
            .on_hover_text(hint);
    }
    let rec = app.session.experiment().latest();
    ui.label(format!(
        "step {}   N = {}   K = {}   D = {}",
        rec.step,
        app.session.experiment().problem().len(),
        app.session.experiment().gd_state().k,
        app.session.experiment().problem().dim
    ));
}

fn objective_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    ui.strong("Objective");
    let current = app.doc.draft.objective.clone();
    let mut chosen = current.clone();
    let options = [
        ObjectiveSpec::Mixture,
        ObjectiveSpec::Attention { score: Score::Distance },
        ObjectiveSpec::Attention {
            score: Score::DotProduct,
        },
        ObjectiveSpec::CrossEntropy { per_class: 1 },
    ];
    let r = egui::ComboBox::from_label("objective")
        .selected_text(objective_name(&current))
        .show_ui(ui, |ui| {
            for o in options {
                let selected = std::mem::discriminant(&o) == std::mem::discriminant(&current) && objective_name(&o) == objective_name(&current);
                if ui.selectable_label(selected, objective_name(&o)).clicked() && !selected {
                    chosen = o;
                }
            }
        })
        .response
        .on_hover_text("Mixture: J = (1/N) Σ F_i, ∂J/∂E = r/N.\nAttention: J = (1/N) Σ ½||Σ α v − t||².\nCross-entropy: J = (1/N) Σ (F^y_i − F_i), ∂J/∂E = (q − r)/N.");
    if chosen != current {
        app.before_change(r.id, ui.input(|i| i.time));
        set_objective(app, chosen);
    }
    if let ObjectiveSpec::CrossEntropy { per_class } = app.doc.draft.objective {
        let mut m = per_class;
        let r = ui
            .add(egui::Slider::new(&mut m, 1..=6).text("prototypes per class M"))
            .on_hover_text("M: K = classes × M; the clamped free energy sums over a class's M prototypes");
        restart(app, &r, "prototypes per class changed", |app| {
            app.doc.draft.objective = ObjectiveSpec::CrossEntropy { per_class: m };
            let classes = app.session.experiment().problem().class_count();
            app.doc.draft.prototypes = InitSpec::KMeansPlusPlus {
                k: classes * m,
                seed: None,
            };
        });
        let mut semi = app.doc.draft.semi_supervised;
        let r = ui.checkbox(&mut semi, "semi-supervised (unlabelled latent)").on_hover_text(
            "J_S = (1/N)(Σ_labelled F^y_i + Σ_unlabelled F_i): labelled points clamp their responsibilities to their class (q), unlabelled ones stay latent (r), and EM uses q or r per point. Off: cross-entropy on the labelled points alone, unlabelled points ignored",
        );
        live(app, &r, |app| app.doc.draft.semi_supervised = semi);
        let mut fraction = app.doc.draft.labelled_fraction;
        let r = ui
            .add(egui::Slider::new(&mut fraction, 0.01..=1.0).logarithmic(true).text("labelled fraction"))
            .on_hover_text("The fraction of points that keep their label (seeded; at least one per class). A change rebuilds the data");
        restart(app, &r, "labelled fraction changed", |app| {
            app.doc.draft.labelled_fraction = fraction
        });
    }
}

/// Switches the objective (a restart), fixing up K for cross-entropy.
pub fn set_objective(app: &mut LabApp, objective: ObjectiveSpec) {
    if let ObjectiveSpec::CrossEntropy { per_class } = objective {
        let classes = app.session.experiment().problem().class_count();
        if classes == 0 {
            app.error(
                "cross-entropy needs labelled points: these data have no labels (try the Blobs or Moons generator)",
            );
            return;
        }
        app.doc.draft.prototypes = InitSpec::KMeansPlusPlus {
            k: classes * per_class,
            seed: None,
        };
    }
    if matches!(
        objective,
        ObjectiveSpec::Attention {
            score: Score::DotProduct
        }
    ) {
        app.doc.draft.learn.scales = false;
    }
    if objective != ObjectiveSpec::Mixture {
        // The reject option and the sum of kernels exist for the mixture only.
        app.doc.draft.reject_energy = None;
        app.doc.draft.unnormalised = false;
    }
    app.doc.draft.objective = objective;
    app.command(Command::Rebuild("objective changed".into()));
}

/// Position of `value` on a logarithmic slider from `lo` to `hi`, as a fraction.
fn log_fraction(value: f64, lo: f64, hi: f64) -> f32 {
    ((value.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0) as f32
}

fn optimiser_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    ui.strong("Temperature and learning");
    temperature_ui(app, ui);
    rate_ui(app, ui);
    learn_ui(app, ui);
    if app.doc.draft.objective == ObjectiveSpec::Mixture {
        mixture_options_ui(app, ui);
    }
    if app.doc.draft.learn.scales {
        scale_options_ui(app, ui);
    }
}

/// The temperature slider, with the critical temperature marked on it (mixture).
fn temperature_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut t = app.doc.draft.temperature;
    let r = ui
        .add(short_numbers(egui::Slider::new(&mut t, 1e-3..=1e2).logarithmic(true)).text("temperature T"))
        .on_hover_text("T > 0: r_ij = softmax_j(−E_ij/T). Small T: hard assignments (k-means); large T: all prototypes merge at the mean.\nThe tick marks T_c = λ_max of the data covariance, below which prototypes at the mean split (mixture).");
    if app.doc.draft.objective == ObjectiveSpec::Mixture && app.session.critical_temperature() > 0.0 {
        // Mark T_c on the slider's track.
        let rect = r.rect;
        let track = egui::Rect::from_min_max(rect.min, egui::pos2(rect.min.x + ui.spacing().slider_width, rect.max.y));
        let x = track.left() + log_fraction(app.session.critical_temperature(), 1e-3, 1e2) * track.width();
        let stroke = egui::Stroke::new(2.0, ui.visuals().warn_fg_color);
        ui.painter().vline(x, track.y_range(), stroke);
        ui.horizontal_wrapped(|ui| {
            ui.label(
                egui::RichText::new(format!("T_c = {}", num(app.session.critical_temperature(), 5)))
                    .color(ui.visuals().warn_fg_color),
            )
            .on_hover_text("Critical temperature of the first split: λ_max of the data covariance (MATH.md §6)");
            if ui
                .small_button("T = 0.9 T_c")
                .on_hover_text("Just below the first split")
                .clicked()
            {
                t = 0.9 * app.session.critical_temperature();
                app.before_change("tc", f64::NEG_INFINITY);
                app.doc.draft.temperature = t;
            }
        });
    }
    live(app, &r, |app| app.doc.draft.temperature = t);
}

/// The learning rate and the rate mode.
fn rate_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut eta = app.doc.draft.learning_rate;
    let r = ui
        .add(short_numbers(egui::Slider::new(&mut eta, 1e-9..=1e2).logarithmic(true)).text("learning rate η"))
        .on_hover_text("η > 0: θ := θ − η ∂J/∂θ. With the EM rate, η multiplies η_j = N s_j/N_j (η = 1 is exactly EM for the mixture)");
    live(app, &r, |app| app.doc.draft.learning_rate = eta);
    let mut rate = app.doc.draft.rate;
    let r = ui
        .horizontal(|ui| {
            ui.label("rate");
            let a = ui
                .radio_value(&mut rate, RateMode::Shared, "shared η")
                .on_hover_text("One learning rate: the GD step is α_j = η N_j/(N s_j) of the EM step");
            let b = ui
                .radio_value(&mut rate, RateMode::Em, "EM-preconditioned")
                .on_hover_text("η_j = η N s_j/N_j on prototypes: at η = 1 gradient descent lands exactly on EM's m_j (weights and scales keep η)");
            a.union(b)
        })
        .inner;
    live(app, &r, |app| app.doc.draft.rate = rate);
}

/// A slider over several decades that shows its value in a few significant digits
/// (`1.00e-9`, not `0.0000000010`) and reads what is typed, scientific notation included.
fn short_numbers(slider: egui::Slider<'_>) -> egui::Slider<'_> {
    slider
        .custom_formatter(|v, _| num(v, 3))
        .custom_parser(|text| text.trim().parse::<f64>().ok())
}

/// Which parameters are learned, and the volume term.
fn learn_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut learn = app.doc.draft.learn.clone();
    let dot = app.doc.draft.objective
        == ObjectiveSpec::Attention {
            score: Score::DotProduct,
        };
    let r1 = ui
        .checkbox(&mut learn.weights, "learn mixing weights π")
        .on_hover_text("π = softmax(w): ∂J/∂w_j = T(π_j − N_j/N) for the mixture; EM sets π_j = N_j/N");
    let maps = app.doc.draft.metric.has_maps();
    let r2 = if maps {
        ui.add_enabled(!dot, egui::Checkbox::new(&mut learn.scales, "learn metric W"))
            .on_hover_text("The maps W_j: d_ij = ½||W_j(x_i − μ_j)||², volume −T·log|det W_j|. EM: W_j is the Cholesky factor of T·C_j^-1, with C_j the responsibility-weighted covariance + reg_covar·I")
    } else {
        ui.add_enabled(!dot, egui::Checkbox::new(&mut learn.scales, "learn scales s"))
            .on_hover_text(
                "s_j = exp ρ_j: d_ij = ||x_i − μ_j||²/(2 s_j). EM: s_j = (Σ r||x − m||²/(D N_j) + reg_covar)/T",
            )
    };
    let r3 = ui.checkbox(&mut learn.volume, "volume term V").on_hover_text(
        "Adds T·(D/2)·ρ_j to E_ij (the log-det). Without it learned scales run away: the metric collapse",
    );
    let r = r1.union(r2).union(r3);
    live(app, &r, |app| app.doc.draft.learn = learn);
    if !dot {
        metric_ui(app, ui);
    }
}

/// Each component's metric (a restart), gradient descent's parametrisation and `reg_covar`.
fn metric_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    use crate::core::model::{Form, Structure};
    let current = app.doc.draft.metric;
    let mut chosen = current;
    let r = egui::ComboBox::from_label("metric")
        .selected_text(current.name())
        .show_ui(ui, |ui| {
            for s in Structure::ALL {
                ui.selectable_value(&mut chosen, s, s.name());
            }
        })
        .response
        .on_hover_text("Each component's metric, as scikit-learn's covariance_type: spherical (scales s_j), diag (one scale per axis), full (any W_j) or tied (one W shared). A change restarts from the preset's start");
    if chosen != current {
        app.before_change(r.id, ui.input(|i| i.time));
        app.doc.draft.metric = chosen;
        // Precisions belong to one structure: the new one starts at the identity.
        if let crate::preset::InitSpec::Explicit { precisions, .. } = &mut app.doc.draft.prototypes {
            *precisions = None;
        }
        if chosen.has_maps() {
            app.doc.draft.scale_prior = None;
        }
        app.command(Command::Rebuild("metric changed".into()));
    }
    let mut form = app.doc.draft.form;
    ui.horizontal_wrapped(|ui| {
        let a = ui
            .radio_value(&mut form, Form::Prototype, "W (x − μ)")
            .on_hover_text("Prototype form: gradient descent moves the centre μ_j and the map W_j");
        let b = ui
            .radio_value(&mut form, Form::Neural, "W x + b")
            .on_hover_text("Neural form (a linear layer): gradient descent moves W_j and b_j; the centre is μ_j = −W_j^-1 b_j. Same energies and fixed points, another path; EM's path is the same");
        live(app, &a.union(b), |app| {
            app.doc.draft.form = form;
            if form == Form::Neural {
                // The scale prior acts on the prototype form's log-scales.
                app.doc.draft.scale_prior = None;
            }
        });
    });
    let mut lambda = app.doc.draft.reg_covar;
    let r = ui
        .add(short_numbers(egui::Slider::new(&mut lambda, 1e-9..=1e-1).logarithmic(true)).text("reg_covar λ"))
        .on_hover_text("scikit-learn's reg_covar: explicit EM's covariances are C_j + λI, which keeps a component on collinear points finite (gradient descent has no such floor)");
    live(app, &r, |app| app.doc.draft.reg_covar = lambda);
}

/// The mixture's reject option and normalisation.
fn mixture_options_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut on = app.doc.draft.reject_energy.is_some();
    let mut e0 = app.doc.draft.reject_energy.unwrap_or(8.0);
    let mut r = ui.checkbox(&mut on, "reject option (background E₀)").on_hover_text(
        "A background component of fixed energy E₀ joins every log-sum-exp: F = −T log(Σ_j e^{−E_j/T} + e^{−E₀/T}). Points far from every prototype go to it (r₀ near 1: 'none of the above'); the prototypes' responsibilities no longer sum to one. The scene darkens where it takes over",
    );
    if on {
        r = r.union(
            ui.add(egui::DragValue::new(&mut e0).range(-1e6..=1e6).speed(0.1).prefix("E₀ "))
                .on_hover_text("The background's energy, in the units of E_ij: a point is rejected where every E_ij exceeds it by a few T"),
        );
    }
    live(app, &r, |app| app.doc.draft.reject_energy = on.then_some(e0));
    let mut kernels = app.doc.draft.unnormalised;
    let r = ui.checkbox(&mut kernels, "no normalisation (sum of kernels)").on_hover_text(
        "Gradient descent on J = −(T/N) Σ_i Σ_j e^{−E_ij/T}, a sum of independent kernels, instead of the log-sum-exp free energy: N ∂J/∂E_ij = e^{−E_ij/T} are no responsibilities (they do not sum to one), far points stop pulling, nothing competes and prototypes pile onto the densest mode. Explicit EM keeps the normalised objective beside it",
    );
    live(app, &r, |app| app.doc.draft.unnormalised = kernels);
}

/// The scale floor and the scale prior (learned scales).
fn scale_options_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut floor = app.doc.draft.scale_floor;
    let r = ui
        .add(short_numbers(egui::Slider::new(&mut floor, 1e-8..=1.0).logarithmic(true)).text("scale floor"))
        .on_hover_text("s_j ≥ floor after every step: the remedy for a component collapsing onto one point");
    live(app, &r, |app| app.doc.draft.scale_floor = floor);
    let mut prior = app.doc.draft.scale_prior;
    let mut on = prior.is_some();
    let mut p = prior.unwrap_or(ScalePrior {
        strength: 2.0,
        scale: app.doc.draft.initial_scale,
    });
    let mut r = ui.checkbox(&mut on, "scale prior").on_hover_text(
        "Adds (T a/N) Σ_j (ln s_j + s₀/s_j) to J: scales can neither run away (metric collapse) nor shrink onto one point. EM's scale step becomes the MAP step (S + 2Ta s₀)/(T(V D N_j + 2a))",
    );
    if on {
        ui.horizontal_wrapped(|ui| {
            r = r.union(
                ui.add(
                    egui::DragValue::new(&mut p.strength)
                        .range(1e-3..=1e4)
                        .speed(0.05)
                        .prefix("a "),
                )
                .on_hover_text("strength a: points' worth of evidence"),
            );
            r = r.union(
                ui.add(
                    egui::DragValue::new(&mut p.scale)
                        .range(1e-6..=1e6)
                        .speed(0.01)
                        .prefix("s₀ "),
                )
                .on_hover_text("the scale the prior favours"),
            );
        });
    }
    prior = on.then_some(p);
    live(app, &r, |app| app.doc.draft.scale_prior = prior);
}

fn data_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    ui.strong("Data and prototypes");
    prototype_count_ui(app, ui);
    generator_ui(app, ui);
    generator_parameters_ui(app, ui);
}

/// `K` (not for cross-entropy, where `K = classes × M`), or k-means++ for a given start.
fn prototype_count_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    match app.doc.draft.prototypes.clone() {
        InitSpec::KMeansPlusPlus { k, seed } | InitSpec::Random { k, seed }
            if !matches!(app.doc.draft.objective, ObjectiveSpec::CrossEntropy { .. }) =>
        {
            let kmeans = matches!(app.doc.draft.prototypes, InitSpec::KMeansPlusPlus { .. });
            let mut k2 = k;
            let r = ui
                .add(egui::Slider::new(&mut k2, 1..=32).text("K prototypes"))
                .on_hover_text("Number of components j = 1..K (a restart)");
            restart(app, &r, "K changed", |app| {
                app.doc.draft.prototypes = if kmeans {
                    InitSpec::KMeansPlusPlus { k: k2, seed }
                } else {
                    InitSpec::Random { k: k2, seed }
                };
            });
        }
        InitSpec::Explicit { positions, .. } => {
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("K = {} (given positions)", positions.len()));
                if ui
                    .small_button("use k-means++")
                    .on_hover_text("Replace the given start by k-means++ seeding with the same K")
                    .clicked()
                {
                    app.before_change("kpp", f64::NEG_INFINITY);
                    app.doc.draft.prototypes = InitSpec::KMeansPlusPlus {
                        k: positions.len(),
                        seed: None,
                    };
                    app.command(Command::Rebuild("start from k-means++".into()));
                }
            });
        }
        _ => {
            ui.label(format!("K = {} (classes × M)", app.session.experiment().gd_state().k));
        }
    }
}

/// Which generator makes the data (a new one restarts the runs, fixing up the objective and
/// `K` where the new data need it).
fn generator_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let kind = match &app.doc.draft.data {
        DataSpec::Blobs { .. } => "Blobs",
        DataSpec::Moons { .. } => "Moons",
        DataSpec::Wave { .. } => "Wave (regression)",
        DataSpec::Gaussians { .. } => "Gaussian clouds (preset)",
        DataSpec::Inline { .. } => "Points (edited or inline)",
        DataSpec::Csv { .. } => "CSV file",
    };
    let n_now = app.session.experiment().problem().len();
    let mut next = None;
    let r = egui::ComboBox::from_label("data")
        .selected_text(kind)
        .show_ui(ui, |ui| {
            if ui.selectable_label(kind == "Blobs", "Blobs").clicked() {
                next = Some(DataSpec::Blobs {
                    k: 3,
                    n: n_now,
                    dim: 2,
                    spread: 5.0,
                    std: 0.8,
                });
            }
            if ui.selectable_label(kind == "Moons", "Moons").clicked() {
                next = Some(DataSpec::Moons { n: n_now, noise: 0.1 });
            }
            if ui
                .selectable_label(kind.starts_with("Wave"), "Wave (regression)")
                .clicked()
            {
                next = Some(DataSpec::Wave {
                    n: n_now,
                    dim: 2,
                    noise: 0.05,
                });
            }
        })
        .response
        .on_hover_text("The data generator (seeded). A new generator means new data: the runs restart");
    let soft = app.session.experiment().problem().soft.count();
    if soft > 0 {
        ui.label(format!("soft labels: {soft} of {n_now} points"))
            .on_hover_text("Class probabilities read from the data (CSV columns soft0, soft1, …, or `soft` in the preset). A soft label p clamps q_ij = p_c softmax within class c; the outline blends the class colours by p.");
    }
    if let Some(d) = next {
        app.before_change(r.id, ui.input(|i| i.time));
        app.doc.draft.data = d;
        if matches!(app.doc.draft.data, DataSpec::Wave { .. })
            && !matches!(app.doc.draft.objective, ObjectiveSpec::Attention { .. })
        {
            app.doc.draft.objective = ObjectiveSpec::Attention { score: Score::Distance };
            app.doc.draft.reject_energy = None;
            app.doc.draft.unnormalised = false;
        }
        if let ObjectiveSpec::CrossEntropy { per_class } = app.doc.draft.objective {
            let classes = match &app.doc.draft.data {
                DataSpec::Blobs { k, .. } => *k,
                DataSpec::Moons { .. } => 2,
                _ => 0,
            };
            if classes > 0 {
                app.doc.draft.prototypes = InitSpec::KMeansPlusPlus {
                    k: classes * per_class,
                    seed: None,
                };
            }
        }
        app.command(Command::Rebuild("new data".into()));
    }
}

/// The generator's own parameters and the seed (a restart).
fn generator_parameters_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let mut data = app.doc.draft.data.clone();
    let mut changed: Option<egui::Response> = None;
    let mut note = |r: egui::Response| {
        changed = Some(match changed.take() {
            Some(c) => c.union(r),
            None => r,
        });
    };
    match &mut data {
        DataSpec::Blobs { k, n, spread, std, .. } => {
            note(n_slider(ui, n));
            note(
                ui.add(egui::Slider::new(k, 1..=10).text("blobs"))
                    .on_hover_text("Number of clusters the data are drawn from"),
            );
            note(
                ui.add(egui::Slider::new(spread, 0.0..=10.0).text("spread"))
                    .on_hover_text("Blob centres uniform in [−spread, spread]²"),
            );
            note(
                ui.add(egui::Slider::new(std, 0.05..=3.0).text("blob std"))
                    .on_hover_text("Standard deviation of each blob"),
            );
        }
        DataSpec::Moons { n, noise } => {
            note(n_slider(ui, n));
            note(
                ui.add(egui::Slider::new(noise, 0.0..=0.5).text("noise"))
                    .on_hover_text("Standard deviation of the noise"),
            );
        }
        DataSpec::Wave { n, noise, .. } => {
            note(n_slider(ui, n));
            note(
                ui.add(egui::Slider::new(noise, 0.0..=0.5).text("noise"))
                    .on_hover_text("Standard deviation of the target noise; t = sin(x₁)·cos(x₂/2)"),
            );
        }
        _ => {}
    }
    let mut seed = app.doc.draft.seed;
    note(
        ui.add(egui::DragValue::new(&mut seed).prefix("seed "))
            .on_hover_text("Seed of the generator and of the initialisation (a restart)"),
    );
    if let Some(r) = changed {
        restart(app, &r, "data or seed changed", |app| {
            app.doc.draft.data = data;
            app.doc.draft.seed = seed;
        });
    }
    let mut z = app.doc.draft.standardise == Standardise::ZScore;
    let r = ui.checkbox(&mut z, "standardise (z-score)").on_hover_text(
        "Each coordinate centred at its mean and divided by its standard deviation before the run (scikit-learn's StandardScaler): columns in different units (grams against millimetres) then weigh alike. A restart; the axes read 'name (z)'",
    );
    restart(app, &r, "standardisation changed", |app| {
        app.doc.draft.standardise = if z { Standardise::ZScore } else { Standardise::None };
    });
}

/// The plane the scene shows data of more than two coordinates in: PCA or two coordinates.
fn plane_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    let problem = app.session.experiment().problem();
    let dim = problem.dim;
    if dim <= 2 {
        return;
    }
    let name = |k: usize| problem.names.get(k).cloned().unwrap_or_else(|| format!("x{}", k + 1));
    let mut plane = app.view.plane;
    ui.horizontal_wrapped(|ui| {
        ui.label("plane");
        egui::ComboBox::from_id_salt("plane")
            .selected_text(match plane {
                ViewPlane::Principal => "PCA".to_string(),
                ViewPlane::Discriminant => "LDA".to_string(),
                ViewPlane::Coordinates(..) => "coordinates".to_string(),
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut plane, ViewPlane::Principal, "PCA")
                    .on_hover_text("The two leading principal axes of the data, through the data mean");
                if problem.class_count() >= 2 {
                    ui.selectable_value(&mut plane, ViewPlane::Discriminant, "LDA")
                        .on_hover_text("Fisher's discriminant axes of the labels: the directions that separate the classes most against their spread within");
                }
                if ui
                    .selectable_label(matches!(plane, ViewPlane::Coordinates(..)), "coordinates")
                    .on_hover_text("Two of the coordinates as they are; the others at the data mean")
                    .clicked()
                    && !matches!(plane, ViewPlane::Coordinates(..))
                {
                    plane = ViewPlane::Coordinates(0, 1);
                }
            })
            .response
            .on_hover_text("Where the scene draws data of more than two coordinates");
        if let ViewPlane::Coordinates(i, j) = &mut plane {
            for (axis, k) in [("x", i), ("y", j)] {
                egui::ComboBox::from_id_salt(("plane axis", axis))
                    .selected_text(format!("{axis}: {}", name(*k)))
                    .show_ui(ui, |ui| {
                        for c in 0..dim {
                            ui.selectable_value(k, c, name(c));
                        }
                    });
            }
        }
    });
    if plane != app.view.plane {
        app.view.plane = plane;
        app.scene.request_fit();
    }
}

fn view_ui(app: &mut LabApp, ui: &mut egui::Ui) {
    ui.strong("Scene");
    ui.horizontal_wrapped(|ui| {
        ui.label("background");
        egui::ComboBox::from_label("")
            .selected_text(match app.view.background {
                Background::None => "none",
                Background::FreeEnergy => "free-energy contours",
                Background::Responsibility => "responsibility field",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut app.view.background, Background::None, "none")
                    .on_hover_text(
                        "A plain background: only the points, the prototypes and the decision boundary (cross-entropy)",
                    );
                ui.selectable_value(&mut app.view.background, Background::FreeEnergy, "free-energy contours")
                    .on_hover_text("Level sets of F(x) = −T log Σ_j exp(−E_j(x)/T)");
                ui.selectable_value(
                    &mut app.view.background,
                    Background::Responsibility,
                    "responsibility field",
                )
                .on_hover_text("Each position coloured by Σ_j r_j(x) colour_j (class posteriors for cross-entropy)");
            })
            .response
            .on_hover_text("What the plane behind the points shows, on a grid");
    });
    plane_ui(app, ui);
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut app.view.trails, "trails")
            .on_hover_text("Each prototype's path so far");
        ui.checkbox(&mut app.view.show_em, "EM (hollow)")
            .on_hover_text("Explicit EM's prototypes, hollow, beside gradient descent's, filled");
        let spec = &app.session.experiment().problem().spec;
        if spec.structure.has_maps() || spec.settings.learn_scales {
            ui.checkbox(&mut app.view.ellipses, "ellipses")
                .on_hover_text("Each component's 1σ and 2σ ellipses of N(μ_j, T (W_j^TW_j)^-1) at the current temperature (the first two coordinates' marginal): solid for gradient descent, dashed for EM, dotted for the twin");
        }
        if matches!(app.doc.draft.objective, ObjectiveSpec::Attention { .. }) {
            ui.checkbox(&mut app.view.readouts, "read-outs")
                .on_hover_text("Σ_j α_ij k_j: one mean-shift step of each query toward the keys (modern Hopfield)");
        }
    });
    let spec = app.session.experiment().problem().spec.clone();
    let current = app.session.twin().map(|t| t.flip);
    let mut chosen = current;
    egui::ComboBox::from_label("side by side")
        .selected_text(current.map_or("no twin", |f| f.label()))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut chosen, None, "no twin")
                .on_hover_text("The lab alone");
            for f in crate::session::twin::Flip::ALL.into_iter().filter(|f| f.applies(&spec)) {
                ui.selectable_value(&mut chosen, Some(f), f.label()).on_hover_text(format!(
                    "A twin of this experiment with '{}' flipped, from the current states, stepped in lockstep beside it",
                    f.label()
                ));
            }
        })
        .response
        .on_hover_text("A twin: this experiment with one choice flipped, from the current states, stepped beside it. Its gradient-descent prototypes are drawn as triangles and its loss beside the lab's (not while annealing)");
    if chosen != current {
        app.command(Command::SetTwin(chosen));
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("click");
        ui.radio_value(&mut app.selection.tool, Tool::Select, "select / drag")
            .on_hover_text("Click a point to inspect it; drag a prototype (both runs continue from there)");
        ui.radio_value(&mut app.selection.tool, Tool::AddPoint, "add")
            .on_hover_text("Click to add a point with the label below");
        ui.radio_value(&mut app.selection.tool, Tool::RemovePoint, "remove")
            .on_hover_text("Click a point to remove it");
        ui.radio_value(&mut app.selection.tool, Tool::Probe, "probe")
            .on_hover_text("Click to place a retrieval probe: a query iterated by ξ := Σ_j r_j(ξ) μ_j (one mean-shift step each, modern Hopfield) to its fixed point");
    });
    if app.selection.tool == Tool::Probe || !app.doc.draft.probes.is_empty() {
        super::scene::probes_ui(app, ui);
    }
    if app.selection.tool == Tool::AddPoint {
        ui.add(
            egui::DragValue::new(&mut app.selection.new_label)
                .range(0..=9)
                .prefix("label "),
        )
        .on_hover_text("Label (class) of added points");
    }
}

/// The generated data's `N`, up to [`N_SLIDER_MAX`] by the slider; a preset's larger `N` stays
/// as it is (shown, and kept when another data control regenerates the points).
fn n_slider(ui: &mut egui::Ui, n: &mut usize) -> egui::Response {
    ui.add(
        egui::Slider::new(n, 10..=N_SLIDER_MAX)
            .logarithmic(true)
            .clamping(egui::SliderClamping::Edits)
            .text("N points"),
    )
    .on_hover_text("Number of points (a restart)")
}

/// The largest `N` the data slider offers: the size the window is built to stay live at.
const N_SLIDER_MAX: usize = 100_000;
