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
//! | `x_i ∈ R^D`, `y_i` | [`core::objective::Problem::point`], `Problem::labels` |
//! | `μ_j`, `w_j`, `ρ_j`, `v_j` | [`core::model::State`] `prototypes`, `log_weights`, `log_scales`, `values` |
//! | `T`, `η` | `ModelSpec::temperature`, `RunSettings::learning_rate` |
//! | `E_ij`, `d_ij` | [`core::objective::Row`] `energies`, `distances` |
//! | `r_ij`, `q_ij` | `Row::responsibilities`, `Row::em_weights` |
//! | `F_i`, `F^y_i` | `Row::free_energy`, `Row::clamped_free_energy` |
//! | `∂J/∂E_ij` | `Row::energy_gradient` (times `N`) |
//! | `N_j`, `m_j` | `Evaluation::counts`, `EmStats::first / mass` |
//!
//! The numerical core ([`core`]) has no GUI dependency and builds with
//! `--no-default-features`; [`cli`] drives it headlessly; the window lives behind feature `gui`.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod core;
pub mod export;
pub mod preset;
pub mod session;
