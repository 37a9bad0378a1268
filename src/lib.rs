//! # implicit-em-lab
//!
//! A laboratory for one result: for any objective with log-sum-exp structure over distances
//! or energies, the gradient with respect to each energy *is* the posterior responsibility of
//! that component (A. Oursland, "Gradient Descent as Implicit EM in Distance-Based Neural
//! Models", arXiv 2512.24780). The lab runs gradient descent and explicit EM side by side and
//! checks the identity against an independent derivative.
//!
//! ## Notation (MATH.md §1 → Rust)
//!
//! | paper / MATH.md | Rust |
//! |---|---|
//! | `x_i ∈ R^D`, `y_i` | [`core::problem::Problem::point`], `Problem::labels` |
//! | `μ_j`, `w_j`, `ρ_j`, `v_j` | [`core::model::State`] `prototypes`, `log_weights`, `log_scales`, `values` |
//! | `T`, `η` | [`core::model::RunSettings`] `temperature`, `optimiser.learning_rate` |
//! | `E_ij`, `d_ij` | [`core::eval::Row`] `energies`, `distances` |
//! | `r_ij`, `q_ij` | `Row::responsibilities`, `Row::em_weights` |
//! | `F_i`, `F^y_i` | `Row::free_energy`, `Row::clamped_free_energy` |
//! | `∂J/∂E_ij` | `Row::energy_gradient` (times `N`) |
//! | `N_j`, `m_j` | `Evaluation::counts`, `EmStats::first / mass` |
//!
//! ## Layers
//!
//! One package, layered as folders; each may import only the layers above it in this list, and
//! `.ci/run` fails when one imports a layer below it.
//!
//! - [`core`]: numbers only. The data, the model and its settings, the evaluation (a plain
//!   row-by-row path and the vectorised lane path), the independent reference derivative, one
//!   gradient step and one EM step, and [`core::experiment::Experiment`], both runs in lockstep
//!   with their records. No files, no text formats, no egui, no threads of its own (rayon's data
//!   parallelism only). Imports nothing of this crate outside itself.
//! - [`session`]: the driver. [`session::Session`] owns the experiment, the annealing schedule
//!   and the twin and advances them together; the command line, the window and its worker
//!   thread all step a session. Live settings changes go through it. Imports `core`.
//! - [`preset`]: the experiment file. The schema, its RON text, validation (`Preset` →
//!   `ValidPreset`), the one mapping to the live settings (`Preset::run_settings`), building a
//!   session (`ValidPreset::build`), CSV text, and the file system (`preset::io`: reading
//!   presets and CSV files, atomic writes). Imports `core`, `session`.
//! - [`export`]: what leaves the lab: the trace as JSON and CSV, the `check --report` page.
//!   Imports `core`, `session`, `preset`.
//! - [`cli`] and `app` (feature `gui`): the two front ends, side by side; neither imports the
//!   other (`main.rs` maps the command line's arguments to `app::LaunchOptions`). The window
//!   keeps a draft preset, the running preset and a session; panels draw from them, and the
//!   view data (colours, fields, contours) are computed without widgets (`app::view_data`).
//!
//! The numerical core builds without the GUI: `cargo build --no-default-features`.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod core;
pub mod export;
pub mod preset;
pub mod session;
