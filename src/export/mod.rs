//! What leaves the lab: the trace as JSON or CSV ([`trace`]) and the `check --report` page
//! ([`report`]).

pub mod report;
pub mod trace;
