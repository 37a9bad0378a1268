//! The numerical core. Knows nothing of the window: no egui, no printing.

pub mod anneal;
pub mod bench;
pub mod check;
pub mod dataset;
pub mod diagnostics;
pub mod dual;
pub mod experiment;
pub mod fast;
pub mod hopfield;
pub mod init;
pub mod io;
pub mod lse;
pub mod model;
pub mod objective;
pub mod preset;
pub mod reference;
pub mod report;
pub mod step;
pub mod trace;
