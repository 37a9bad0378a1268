//! Data sets: points with labels, targets and soft labels; seeded generators ([`generate`]), and the statistics the lab marks (the critical
//! temperature of the first split).

mod generate;
pub mod init;

pub use generate::{Cloud, blobs, gaussians, moons, wave, wave_target};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// Points with optional labels and optional regression targets.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dataset {
    /// `D`.
    pub dim: usize,
    /// `N × D`, row-major.
    pub points: Vec<f64>,
    /// `y_i`, `None` when unlabelled.
    pub labels: Vec<Option<u32>>,
    /// `P` of explicit targets (0 when the data set defines none).
    pub target_dim: usize,
    /// `N × P` explicit targets.
    pub targets: Vec<f64>,
    /// Soft labels of some points (empty when the data define none).
    pub soft: SoftLabels,
    /// The coordinates' names (a CSV header's), `D` of them, or empty when unnamed.
    pub names: Vec<String>,
}

/// Soft labels: for some points a probability vector over the classes, `p_ic ≥ 0`,
/// `Σ_c p_ic = 1`. Such a point's `label` is its most probable class (the first on a tie), so
/// views and per-class initialisation treat it like a labelled point.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SoftLabels {
    /// `C`, the length of every vector (0 when there are none).
    pub classes: usize,
    /// Per point, the row of `probs` holding its vector or [`SoftLabels::NONE`]. Empty when no
    /// point has one.
    pub index: Vec<u32>,
    /// The vectors, one row of `C` per soft-labelled point.
    pub probs: Vec<f64>,
}

impl SoftLabels {
    /// A point without a soft label.
    pub const NONE: u32 = u32::MAX;

    /// Point `i`'s vector, if it has one.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[f64]> {
        self.row(*self.index.get(i)?)
    }

    /// Row `r` of `probs` (`None` for [`SoftLabels::NONE`]).
    #[must_use]
    pub fn row(&self, r: u32) -> Option<&[f64]> {
        (r != Self::NONE).then(|| &self.probs[r as usize * self.classes..(r as usize + 1) * self.classes])
    }

    /// Number of soft-labelled points.
    #[must_use]
    pub fn count(&self) -> usize {
        self.probs.len().checked_div(self.classes).unwrap_or(0)
    }

    /// True when no point has a soft label.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// Appends point `n` (the `n` points before it keep their entries).
    fn push(&mut self, n: usize, p: Option<&[f64]>) {
        match p {
            Some(p) => {
                if self.index.len() < n {
                    self.index.resize(n, Self::NONE);
                }
                debug_assert!(
                    self.classes == 0 || self.classes == p.len(),
                    "one C for every soft label"
                );
                self.classes = p.len();
                self.index
                    .push(u32::try_from(self.count()).expect("fewer than 2³² soft labels"));
                // Normalised (the input sums to 1 within SOFT_SUM_TOLERANCE), so that
                // Σ_c p_c lse_c is a convex combination. A vector already normalised to within
                // rounding is kept as it is, so saving and loading changes nothing.
                let sum: f64 = p.iter().sum();
                if (sum - 1.0).abs() > 4.0 * f64::EPSILON {
                    self.probs.extend(p.iter().map(|v| v / sum));
                } else {
                    self.probs.extend_from_slice(p);
                }
            }
            None if !self.index.is_empty() => self.index.push(Self::NONE),
            None => {}
        }
    }

    /// Keeps the vectors of the points `keep` accepts and drops the others (the points stay),
    /// in one pass.
    pub fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        let c = self.classes;
        let mut probs = Vec::new();
        for (i, r) in self.index.iter_mut().enumerate() {
            if *r == Self::NONE {
                continue;
            }
            if keep(i) {
                probs.extend_from_slice(&self.probs[*r as usize * c..(*r as usize + 1) * c]);
                *r = u32::try_from(probs.len() / c - 1).expect("fewer than 2³² soft labels");
            } else {
                *r = Self::NONE;
            }
        }
        if probs.is_empty() {
            *self = Self::default();
        } else {
            self.probs = probs;
        }
    }

    /// Removes point `i` and its vector.
    fn remove(&mut self, i: usize) {
        if i < self.index.len() {
            self.retain(|p| p != i);
            if !self.index.is_empty() {
                self.index.remove(i);
            }
        }
    }
}

/// The most probable class of a soft label (the first on a tie).
#[must_use]
pub fn most_probable(p: &[f64]) -> u32 {
    let mut best = 0;
    for (c, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = c;
        }
    }
    u32::try_from(best).expect("fewer than 2³² classes")
}

/// Checks a soft label: finite, non-negative, summing to 1 within `1e-6`. The message says
/// what is wrong; the caller names the place.
///
/// # Errors
/// A negative or non-finite entry, or a sum away from 1.
pub fn check_soft(p: &[f64]) -> Result<(), String> {
    if let Some((c, v)) = p.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
        return Err(format!("class {c} has {v}; soft labels are probabilities, in [0, 1]"));
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > SOFT_SUM_TOLERANCE {
        return Err(format!(
            "the probabilities sum to {sum}, not 1 (allowed: within {SOFT_SUM_TOLERANCE})"
        ));
    }
    Ok(())
}

/// How far from 1 a soft label's sum may be.
pub const SOFT_SUM_TOLERANCE: f64 = 1e-6;

/// The seeded random-number generator used everywhere (xoshiro256++, a fixed algorithm, so a
/// seed means the same data on every machine and version).
#[must_use]
pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

impl Dataset {
    /// `N`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no points.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `x_i`.
    #[must_use]
    pub fn point(&self, i: usize) -> &[f64] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of classes: the largest label plus one, or the length of the soft labels if
    /// longer (0 when nothing is labelled).
    #[must_use]
    pub fn class_count(&self) -> usize {
        class_count(&self.labels, &self.soft)
    }

    /// Appends a point.
    pub fn push(&mut self, x: &[f64], label: Option<u32>, target: &[f64]) {
        self.soft.push(self.labels.len(), None);
        self.points.extend_from_slice(x);
        self.labels.push(label);
        self.targets.extend_from_slice(target);
    }

    /// Appends a point with a soft label `p` (checked by [`check_soft`], stored divided by its
    /// sum); its label is the most probable class.
    pub fn push_soft(&mut self, x: &[f64], p: &[f64], target: &[f64]) {
        self.soft.push(self.labels.len(), Some(p));
        self.points.extend_from_slice(x);
        self.labels.push(Some(most_probable(p)));
        self.targets.extend_from_slice(target);
    }

    /// Removes point `i` with its label, target and soft label.
    pub fn remove(&mut self, i: usize) {
        self.points.drain(i * self.dim..(i + 1) * self.dim);
        self.labels.remove(i);
        if self.target_dim > 0 {
            self.targets.drain(i * self.target_dim..(i + 1) * self.target_dim);
        }
        self.soft.remove(i);
    }

    /// `T_c = λ_max` of the data covariance: below it, prototypes at the data mean split
    /// (deterministic annealing with unit scales, MATH.md §6).
    #[must_use]
    pub fn critical_temperature(&self) -> f64 {
        if self.len() < 2 {
            return 0.0;
        }
        largest_eigenvalue(&self.points, self.dim, &vec![1.0; self.len()])
    }
}

/// The number of classes hard and soft labels name: the largest label + 1, or the soft labels'
/// class count if larger (0 without labels).
#[must_use]
pub fn class_count(labels: &[Option<u32>], soft: &SoftLabels) -> usize {
    let hard = labels.iter().flatten().map(|&y| y as usize + 1).max().unwrap_or(0);
    hard.max(soft.classes)
}

/// Most classes a data set may name (labels `0..MAX_CLASSES`): one-hot targets and per-class
/// prototypes grow with the largest label.
pub const MAX_CLASSES: usize = 1024;

/// Largest coordinate magnitude the lab accepts in data and prototypes: beyond it, squared
/// distances (`D · (2·1e100)²` for any practical `D`) could overflow `f64`.
pub const MAX_COORDINATE: f64 = 1e100;

/// Dimensions up to which [`largest_eigenvalue`] decomposes the `D × D` covariance exactly;
/// above, it iterates on the data (cost `N·D` per iteration, no `D × D` matrix).
pub const EXACT_EIGEN_DIM: usize = 32;

/// `λ_max` of the weighted covariance of the points ([`weighted_covariance`]), 0 without weight.
///
/// Up to [`EXACT_EIGEN_DIM`] dimensions by a full symmetric eigendecomposition. Above, by power
/// iteration on the centred data, `v ← Σ w (x − m)((x − m)·v) / Σ w`, never forming the
/// covariance: memory `O(D)`, time `O(N·D)` per iteration, at most [`POWER_ITERATIONS`]
/// iterations, stopping when the Rayleigh quotient changes by less than `1e-13` relative. The
/// quotient never exceeds `λ_max` and approaches it as `(λ₂/λ₁)^{2t}`; when `λ₂ ≈ λ₁` both are
/// close, so the estimate is close either way.
#[must_use]
pub fn largest_eigenvalue(points: &[f64], dim: usize, weights: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || dim == 0 {
        return 0.0;
    }
    if dim <= EXACT_EIGEN_DIM {
        let eig = nalgebra::SymmetricEigen::new(weighted_covariance(points, dim, weights));
        return eig.eigenvalues.iter().copied().fold(0.0, f64::max);
    }
    let point = |i: usize| &points[i * dim..(i + 1) * dim];
    let mean = weighted_mean(points, dim, weights, total);
    // Start from the weighted point farthest from the mean (never orthogonal to the top axis
    // unless every point is), normalised.
    let centred_norm = |i: usize| point(i).iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum::<f64>();
    let far = (0..weights.len())
        .filter(|&i| weights[i] > 0.0)
        .max_by(|&a, &b| centred_norm(a).total_cmp(&centred_norm(b)))
        .unwrap_or(0);
    let mut v: Vec<f64> = point(far).iter().zip(&mean).map(|(x, m)| x - m).collect();
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    v.iter_mut().for_each(|a| *a /= norm);
    let mut next = vec![0.0; dim];
    let mut lambda = 0.0;
    for _ in 0..POWER_ITERATIONS {
        next.fill(0.0);
        for (i, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let x = point(i);
            let proj: f64 = x.iter().zip(&mean).zip(&v).map(|((x, m), v)| (x - m) * v).sum();
            let c = w * proj / total;
            for ((n, x), m) in next.iter_mut().zip(x).zip(&mean) {
                *n += c * (x - m);
            }
        }
        // Rayleigh quotient vᵀCv with ‖v‖ = 1.
        let quotient: f64 = next.iter().zip(&v).map(|(a, b)| a * b).sum();
        let norm = next.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        let settled = (quotient - lambda).abs() <= 1e-13 * quotient.abs();
        lambda = quotient;
        if settled {
            break;
        }
        for (a, b) in v.iter_mut().zip(&next) {
            *a = b / norm;
        }
    }
    lambda
}

/// Most power iterations [`largest_eigenvalue`] takes.
pub const POWER_ITERATIONS: usize = 2000;

/// The mean of the points (`N × dim`, row-major) under the weights, whose sum is `total` (the
/// first of the two passes of [`weighted_covariance`] and [`largest_eigenvalue`]).
fn weighted_mean(points: &[f64], dim: usize, weights: &[f64], total: f64) -> Vec<f64> {
    let mut mean = vec![0.0; dim];
    if dim == 0 {
        return mean;
    }
    for (x, w) in points.chunks_exact(dim).zip(weights) {
        for (m, x) in mean.iter_mut().zip(x) {
            *m += w * x / total;
        }
    }
    mean
}

/// Covariance of the points (`N × dim`, row-major) under non-negative weights
/// (`Σ w (x − m)(x − m)ᵀ / Σ w`), in two passes (the mean first).
#[must_use]
pub fn weighted_covariance(points: &[f64], dim: usize, weights: &[f64]) -> nalgebra::DMatrix<f64> {
    let point = |i: usize| &points[i * dim..(i + 1) * dim];
    let total: f64 = weights.iter().sum();
    let mean = weighted_mean(points, dim, weights, total);
    let mut cov = nalgebra::DMatrix::zeros(dim, dim);
    for (i, w) in weights.iter().enumerate() {
        let x = point(i);
        for a in 0..dim {
            for b in 0..dim {
                cov[(a, b)] += w * (x[a] - mean[a]) * (x[b] - mean[b]) / total;
            }
        }
    }
    cov
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_temperature_of_two_points() {
        // Points ±a on one axis: covariance a², the other axis 0.
        let data = Dataset {
            dim: 2,
            points: vec![-2.0, 0.0, 2.0, 0.0],
            labels: vec![None, None],
            ..Dataset::default()
        };
        assert!((data.critical_temperature() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn largest_eigenvalue_iterates_like_the_exact_decomposition() {
        // D = 40 (above EXACT_EIGEN_DIM): the iterative λ_max against nalgebra's full
        // decomposition of the same covariance, for unit and uneven weights.
        let data = blobs(4, 300, 40, 5.0, 1.0, 3);
        let uneven: Vec<f64> = (0..data.len()).map(|i| 0.25 + (i % 7) as f64).collect();
        for w in [vec![1.0; data.len()], uneven] {
            let exact = nalgebra::SymmetricEigen::new(weighted_covariance(&data.points, data.dim, &w))
                .eigenvalues
                .iter()
                .copied()
                .fold(0.0, f64::max);
            let iterated = largest_eigenvalue(&data.points, data.dim, &w);
            assert!((iterated - exact).abs() <= 1e-10 * exact, "{iterated} vs {exact}");
        }
        // Two points in 100,000 dimensions: no 80 GB matrix, and λ_max of two points ±a·e₁ is a².
        let dim = 100_000;
        let mut points = vec![0.0; 2 * dim];
        points[0] = -3.0;
        points[dim] = 3.0;
        assert!((largest_eigenvalue(&points, dim, &[1.0, 1.0]) - 9.0).abs() < 1e-12);
    }

    #[test]
    fn blobs_are_seeded_and_sized() {
        let a = blobs(3, 100, 2, 5.0, 0.5, 7);
        let b = blobs(3, 100, 2, 5.0, 0.5, 7);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        assert_eq!(a.labels.iter().filter(|l| **l == Some(0)).count(), 34);
        assert_ne!(a, blobs(3, 100, 2, 5.0, 0.5, 8));
    }
}
