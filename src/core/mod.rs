//! The numerical core: numbers only. No egui, no printing, no files, no text formats, no
//! threads of its own (rayon's data parallelism only).
//!
//! From the bottom up:
//! - [`math`]: stable log-sum-exp, softmax and entropy; dual numbers for the reference.
//! - [`data`]: point sets, soft labels, seeded generators, CSV text, initialisation.
//! - [`metric`]: the maps `W_j` of components with their own metric (MATH.md §8).
//! - [`model`]: the regimes, the parameters ([`model::State`]) and the model settings.
//! - [`problem`]: data bound to a model ([`problem::Problem::bind`]).
//! - [`eval`]: one pass over the points giving loss, exact gradients and EM statistics
//!   (a plain row-by-row path and the vectorised lane path, which must agree to 1e-12).
//! - [`reference`]: an independent derivative (dual numbers or finite differences) that
//!   shares no code with [`eval`]; [`check`] and [`diagnostics`] compare the two.
//! - [`step`]: one gradient step and one EM step; [`experiment`]: both runs in lockstep with
//!   their records; [`hopfield`]: retrieval as iterated attention.
//! - [`workload`]: the standard benchmark experiments.

pub mod check;
pub mod criteria;
pub mod data;
pub mod diagnostics;
pub mod eval;
pub mod experiment;
pub mod hopfield;
pub mod math;
pub mod metric;
pub mod model;
pub mod problem;
pub mod projection;
pub mod reference;
pub mod step;
pub mod workload;
