//! The memory a run will need, estimated before anything large is allocated, and refused with
//! the estimate when it exceeds the limit (the memory the machine has available, unless raised).
//!
//! The estimate counts what grows with the sizes a preset names: the points (coordinates,
//! targets, labels), two copies while the data is built, the generator's cloud centres, and the
//! history of both runs (one record per step). Everything else is a few kilobytes.

use crate::core::math::readable;
use crate::preset::PresetError;

/// What a run holds, in the units the estimate multiplies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    /// Points `N`.
    pub n: f64,
    /// Coordinates per point `D`.
    pub dim: f64,
    /// Target entries per point (attention: the target dimension; one-hot labels: the classes).
    pub target_dim: f64,
    /// Components `K`.
    pub k: f64,
    /// Centres a generator draws (Blobs: `k × D` numbers).
    pub centres: f64,
    /// Paired steps whose records are kept.
    pub steps: f64,
    /// Whether each record holds each component's `D × D` map and covariance.
    pub matrices: bool,
}

/// Bytes of one point: coordinates and targets (8 bytes each) and its label (8).
fn point_bytes(s: &Sizes) -> f64 {
    8.0 * (s.dim + s.target_dim) + 8.0
}

/// Bytes of one step's record of both runs: per component its position, value, weight, scale and
/// count (8 bytes each, plus the 24 of each per-component array), and a fixed part.
fn record_bytes(s: &Sizes) -> f64 {
    let matrices = if s.matrices {
        2.0 * (8.0 * s.dim * s.dim + 24.0 * (s.dim + 1.0))
    } else {
        0.0
    };
    2.0 * (s.k * (8.0 * (s.dim + s.target_dim + 3.0) + 48.0 + matrices) + 200.0)
}

/// The estimated peak bytes of a run of these sizes (f64: sizes near `usize::MAX` give a huge
/// finite or infinite estimate, never an overflow).
#[must_use]
pub fn estimate(s: &Sizes) -> f64 {
    2.0 * s.n * point_bytes(s) + 8.0 * s.centres + s.steps * record_bytes(s)
}

/// Bytes as a reader says them: `512 KB`, `3.2 GB`, `2.8e11 GB`.
#[must_use]
pub fn human(bytes: f64) -> String {
    let gb = bytes / 1e9;
    if gb >= 1e4 {
        format!("{gb:.1e} GB")
    } else if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.0} KB", (bytes / 1e3).ceil())
    }
}

/// Refuses sizes whose estimate exceeds `limit` bytes. The message gives the estimate, the
/// limit, the part that dominates (and its field, so a preset error names its line) and how to
/// raise the limit.
///
/// # Errors
/// The estimate exceeds the limit.
pub fn check(s: &Sizes, limit: f64, data_field: &'static str) -> Result<(), PresetError> {
    let total = estimate(s);
    if total <= limit {
        return Ok(());
    }
    let data = 2.0 * s.n * point_bytes(s);
    let history = s.steps * record_bytes(s);
    let centres = 8.0 * s.centres;
    let (field, part) = if data >= history && data >= centres {
        (
            data_field,
            format!(
                "{} points of {} coordinates{} ({})",
                readable(s.n),
                readable(s.dim),
                if s.target_dim > 0.0 {
                    format!(" and {} targets", readable(s.target_dim))
                } else {
                    String::new()
                },
                human(data)
            ),
        )
    } else if history >= centres {
        (
            "steps",
            format!(
                "{} steps of history for K = {}, D = {} ({})",
                readable(s.steps),
                readable(s.k),
                readable(s.dim),
                human(history)
            ),
        )
    } else {
        (
            "data.k",
            format!("{} cloud centre coordinates ({})", readable(s.centres), human(centres)),
        )
    };
    Err(PresetError {
        message: format!(
            "field `{field}`: this run would need about {} of memory, mostly {part}, but the limit is {} (the memory available); use smaller sizes, or raise the limit with --memory-limit GB",
            human(total),
            human(limit)
        ),
        field: Some(field.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: f64, dim: f64) -> Sizes {
        Sizes {
            n,
            dim,
            target_dim: 0.0,
            k: 3.0,
            centres: 0.0,
            steps: 300.0,
            matrices: false,
        }
    }

    #[test]
    fn estimate_counts_points_and_history() {
        // 1000 points in 2-D: 2 copies × 1000 × 24 bytes; 300 steps × 2 runs × (3 × 88 + 200).
        let s = sizes(1000.0, 2.0);
        assert_eq!(estimate(&s), 48_000.0 + 300.0 * 2.0 * (3.0 * 88.0 + 200.0));
        assert!(check(&s, 1e9, "data.n").is_ok());
    }

    #[test]
    fn a_billion_points_is_refused_with_the_estimate() {
        let e = check(&sizes(1e9, 2.0), 16e9, "data.n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.n"));
        assert!(
            e.message.contains("about 48.0 GB") && e.message.contains("limit is 16.0 GB"),
            "{}",
            e.message
        );
        // D = 2^64 − 1 is a huge finite estimate, not an overflow.
        let e = check(&sizes(10.0, u64::MAX as f64), 16e9, "data.n").unwrap_err();
        assert!(
            e.message.contains("about 2.7e14 GB") && e.message.contains("D = 1.8446744073709552e19"),
            "{}",
            e.message
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512.0), "1 KB");
        assert_eq!(human(3.24e6), "3.2 MB");
        assert_eq!(human(2.75e11), "275.0 GB");
    }
}
