//! What leaves the lab: the trace as JSON or CSV ([`trace`]) and the `check --report` page
//! ([`report`]).

pub mod report;
pub mod trace;

/// The sides a figure may have, in pixels (`--size`, File → Export figure): 8000 × 8000 takes
/// 256 MB to rasterise.
pub const FIGURE_SIDES: std::ops::RangeInclusive<u32> = 200..=8000;
