//! Data sets: seeded generators, CSV import, and the statistics the lab marks (the critical
//! temperature of the first split).

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

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
        let hard = self.labels.iter().flatten().map(|&y| y as usize + 1).max().unwrap_or(0);
        hard.max(self.soft.classes)
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

    /// The covariance matrix of the points (`1/N` normalisation).
    #[must_use]
    pub fn covariance(&self) -> nalgebra::DMatrix<f64> {
        weighted_covariance(self, &vec![1.0; self.len()])
    }

    /// `T_c = λ_max` of the data covariance: below it, prototypes at the data mean split
    /// (deterministic annealing with unit scales, MATH.md §6).
    #[must_use]
    pub fn critical_temperature(&self) -> f64 {
        if self.len() < 2 {
            return 0.0;
        }
        let eig = nalgebra::SymmetricEigen::new(self.covariance());
        eig.eigenvalues.iter().copied().fold(0.0, f64::max)
    }
}

/// Covariance of the points under non-negative weights (`Σ w (x − m)(x − m)ᵀ / Σ w`).
#[must_use]
pub fn weighted_covariance(data: &Dataset, weights: &[f64]) -> nalgebra::DMatrix<f64> {
    let dim = data.dim;
    let total: f64 = weights.iter().sum();
    let mut mean = vec![0.0; dim];
    for (i, w) in weights.iter().enumerate() {
        for (m, x) in mean.iter_mut().zip(data.point(i)) {
            *m += w * x / total;
        }
    }
    let mut cov = nalgebra::DMatrix::zeros(dim, dim);
    for (i, w) in weights.iter().enumerate() {
        let x = data.point(i);
        for a in 0..dim {
            for b in 0..dim {
                cov[(a, b)] += w * (x[a] - mean[a]) * (x[b] - mean[b]) / total;
            }
        }
    }
    cov
}

/// One Gaussian cloud of a generated data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Cloud {
    /// Centre.
    pub mean: Vec<f64>,
    /// Standard deviation per axis.
    pub std: Vec<f64>,
    /// Number of points.
    pub count: usize,
    /// Label of its points.
    pub label: Option<u32>,
}

/// Axis-aligned Gaussian clouds.
#[must_use]
pub fn gaussians(clouds: &[Cloud], seed: u64) -> Dataset {
    let mut rng = rng(seed);
    let dim = clouds.first().map_or(0, |c| c.mean.len());
    let mut data = Dataset {
        dim,
        ..Dataset::default()
    };
    for cloud in clouds {
        for _ in 0..cloud.count {
            let x: Vec<f64> = cloud
                .mean
                .iter()
                .zip(&cloud.std)
                .map(|(m, s)| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    m + s * z
                })
                .collect();
            data.push(&x, cloud.label, &[]);
        }
    }
    data
}

/// `k` isotropic blobs of `n` points in all (split as evenly as possible), centres uniform in
/// `[−spread, spread]^dim`, labelled by blob.
#[must_use]
pub fn blobs(k: usize, n: usize, dim: usize, spread: f64, std: f64, seed: u64) -> Dataset {
    let mut rng = rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let clouds: Vec<Cloud> = (0..k)
        .map(|c| Cloud {
            mean: (0..dim).map(|_| rng.random_range(-spread..=spread)).collect(),
            std: vec![std; dim],
            count: n / k + usize::from(c < n % k),
            label: Some(c as u32),
        })
        .collect();
    gaussians(&clouds, seed)
}

/// Two interleaving half-moons in 2-D (labels 0 and 1), with Gaussian noise.
#[must_use]
pub fn moons(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = rng(seed);
    let mut data = Dataset {
        dim: 2,
        ..Dataset::default()
    };
    for i in 0..n {
        let upper = i % 2 == 0;
        let a = rng.random_range(0.0..std::f64::consts::PI);
        let (x, y) = if upper {
            (a.cos(), a.sin())
        } else {
            (1.0 - a.cos(), 0.5 - a.sin())
        };
        let zx: f64 = StandardNormal.sample(&mut rng);
        let zy: f64 = StandardNormal.sample(&mut rng);
        data.push(&[x + noise * zx, y + noise * zy], Some(u32::from(!upper)), &[]);
    }
    data
}

/// The noise-free regression target of [`wave`]: `sin(x₁)·cos(x₂/2)` (`sin(x₁)` in 1-D).
#[must_use]
pub fn wave_target(x: &[f64]) -> f64 {
    x[0].sin() * x.get(1).map_or(1.0, |y| (y / 2.0).cos())
}

/// A regression task for attention: points uniform in `[−3, 3]^dim`, one target
/// `t = sin(x_1)·cos(x_2/2)` (`sin(x_1)` in 1-D) plus Gaussian noise.
#[must_use]
pub fn wave(n: usize, dim: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = rng(seed);
    let mut data = Dataset {
        dim,
        target_dim: 1,
        ..Dataset::default()
    };
    for _ in 0..n {
        let x: Vec<f64> = (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect();
        let z: f64 = StandardNormal.sample(&mut rng);
        let t = wave_target(&x) + noise * z;
        data.push(&x, None, &[t]);
    }
    data
}

/// A parsed CSV table: coordinate columns, an optional `label` column, optional `target…`
/// columns, optional soft-label columns `soft0 … soft{C−1}`.
///
/// With a header (a first row with any field that is not a number) columns are named: `label`
/// holds integer labels (an empty cell is unlabelled), names starting with `target` hold
/// regression targets, `soft` followed by a class number holds that class's probability, every
/// other column is a coordinate. A row gives either a label or soft probabilities (all of them,
/// non-negative, summing to 1) or neither. Without a header every column is a coordinate.
/// `source` names the file in messages.
///
/// # Errors
/// A message naming the line and column of the first field that does not parse, a row of the
/// wrong length, or a soft label that is not a probability vector.
pub fn parse_csv(text: &str, source: &str) -> Result<Dataset, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Col {
        Coord,
        Label,
        Target,
        Soft(usize),
    }
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(format!("{source}: no rows"));
    };
    let split = |l: &str| -> Vec<String> { l.split(',').map(|f| f.trim().to_string()).collect() };
    let first_fields = split(first);
    let has_header = first_fields.iter().any(|f| f.parse::<f64>().is_err());
    let (names, kinds): (Vec<String>, Vec<Col>) = if has_header {
        lines.next();
        first_fields
            .iter()
            .map(|f| {
                let lower = f.to_ascii_lowercase();
                let kind = if lower == "label" {
                    Col::Label
                } else if let Some(c) = lower.strip_prefix("soft").and_then(|c| c.parse::<usize>().ok()) {
                    Col::Soft(c)
                } else if lower.starts_with("target") {
                    Col::Target
                } else {
                    Col::Coord
                };
                (f.clone(), kind)
            })
            .unzip()
    } else {
        (
            (1..=first_fields.len()).map(|c| format!("column {c}")).collect(),
            vec![Col::Coord; first_fields.len()],
        )
    };
    let dim = kinds.iter().filter(|&&k| k == Col::Coord).count();
    let target_dim = kinds.iter().filter(|&&k| k == Col::Target).count();
    if dim == 0 {
        return Err(format!(
            "{source}: no coordinate columns (a header names them, e.g. `x,y,label`)"
        ));
    }
    if kinds.iter().filter(|&&k| k == Col::Label).count() > 1 {
        return Err(format!("{source}: more than one `label` column"));
    }
    let soft_classes = kinds.iter().filter(|k| matches!(k, Col::Soft(_))).count();
    for c in 0..soft_classes {
        if kinds.iter().filter(|&&k| k == Col::Soft(c)).count() != 1 {
            return Err(format!(
                "{source}: soft-label columns must be soft0 … soft{} (one per class, each once); `soft{c}` is {}",
                soft_classes - 1,
                if kinds.contains(&Col::Soft(c)) {
                    "repeated"
                } else {
                    "missing"
                }
            ));
        }
    }
    let mut data = Dataset {
        dim,
        target_dim,
        ..Dataset::default()
    };
    let mut x = Vec::with_capacity(dim);
    let mut t = Vec::with_capacity(target_dim);
    let mut soft = vec![f64::NAN; soft_classes];
    for (line, l) in lines {
        let fields = split(l);
        if fields.len() != kinds.len() {
            return Err(format!(
                "{source}, line {line}: {} fields, expected {} ({})",
                fields.len(),
                kinds.len(),
                names.join(",")
            ));
        }
        x.clear();
        t.clear();
        soft.fill(f64::NAN);
        let mut label = None;
        for ((f, kind), name) in fields.iter().zip(&kinds).zip(&names) {
            match kind {
                Col::Soft(c) => {
                    if !f.is_empty() {
                        soft[*c] = f.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                            format!("{source}, line {line}, column `{name}`: `{f}` is not a probability")
                        })?;
                    }
                }
                Col::Label => {
                    if !f.is_empty() {
                        label = Some(f.parse::<u32>().map_err(|_| {
                            format!("{source}, line {line}, column `{name}`: `{f}` is not a non-negative integer label")
                        })?);
                    }
                }
                Col::Coord | Col::Target => {
                    let v = f.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                        format!("{source}, line {line}, column `{name}`: `{f}` is not a finite number")
                    })?;
                    if *kind == Col::Coord { x.push(v) } else { t.push(v) }
                }
            }
        }
        let given = soft.iter().filter(|v| !v.is_nan()).count();
        if given == 0 {
            data.push(&x, label, &t);
            continue;
        }
        if given < soft_classes {
            return Err(format!(
                "{source}, line {line}: a soft label needs all {soft_classes} soft columns, {given} given (leave all empty for none)"
            ));
        }
        if label.is_some() {
            return Err(format!(
                "{source}, line {line}: both a `label` and soft labels; give one (the soft label's most probable class becomes its label)"
            ));
        }
        check_soft(&soft).map_err(|e| format!("{source}, line {line}, soft label: {e}"))?;
        data.push_soft(&x, &soft, &t);
    }
    if data.is_empty() {
        return Err(format!("{source}: a header but no data rows"));
    }
    Ok(data)
}

/// Reads and parses a CSV file ([`parse_csv`]).
///
/// # Errors
/// A missing or unreadable file, or a parse error.
pub fn read_csv(path: &std::path::Path) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text, &path.display().to_string())
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
    fn blobs_are_seeded_and_sized() {
        let a = blobs(3, 100, 2, 5.0, 0.5, 7);
        let b = blobs(3, 100, 2, 5.0, 0.5, 7);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        assert_eq!(a.labels.iter().filter(|l| **l == Some(0)).count(), 34);
        assert_ne!(a, blobs(3, 100, 2, 5.0, 0.5, 8));
    }

    #[test]
    fn csv_with_header_labels_and_targets() {
        let d = parse_csv("x,y,label,target\n1,2,0,0.5\n3,4,,1.5\n", "t.csv").unwrap();
        assert_eq!(d.dim, 2);
        assert_eq!(d.points, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.labels, vec![Some(0), None]);
        assert_eq!(d.targets, vec![0.5, 1.5]);
    }

    #[test]
    fn csv_without_header_is_all_coordinates() {
        let d = parse_csv("1,2,3\n4,5,6\n", "t.csv").unwrap();
        assert_eq!(d.dim, 3);
        assert_eq!(d.labels, vec![None, None]);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = parse_csv("x,y\n1,2\n3,abc\n", "t.csv").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("`abc`") && e.contains("column `y`"),
            "{e}"
        );
        let e = parse_csv("x,y\n1,2\n3\n", "t.csv").unwrap_err();
        assert!(e.contains("line 3") && e.contains("1 fields, expected 2"), "{e}");
        let e = parse_csv("x,label\n1,-1\n", "t.csv").unwrap_err();
        assert!(e.contains("line 2") && e.contains("label"), "{e}");
    }
}
