//! The plane a D-dimensional scene is drawn in: two of the coordinates, or the two leading
//! principal axes of the data (PCA). Everything the scene draws goes through one
//! [`Projection`]: points, prototypes, trails, read-outs, probes and ellipses; and back
//! ([`Projection::lift`]): the background field is evaluated on the plane through the data mean
//! spanned by the view axes, and a point added by clicking takes the mean in the hidden
//! directions.

use nalgebra::{DMatrix, SymmetricEigen};

/// How the plane is chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Plane {
    /// Coordinates `i` and `j` as they are (the hidden ones at the data mean).
    Coordinates(usize, usize),
    /// The two leading principal axes `a₁, a₂` (unit, orthogonal), as centred scores
    /// `(a_k · (x − m))`, with the share of the variance each explains.
    Principal { axes: [Vec<f64>; 2], explained: [f64; 2] },
    /// Fisher's discriminant plane: the leading eigenvector `w₁` of `S_w⁻¹ S_b` (between-class
    /// against within-class scatter) and the part of the next direction orthogonal to it, both
    /// unit, as centred scores; with each axis's ratio `wᵀS_b w / wᵀS_w w`.
    Discriminant { axes: [Vec<f64>; 2], separation: [f64; 2] },
}

/// A projection of `D`-dimensional points onto a plane, and back.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// The data mean `m` (the hidden directions' values on the plane).
    pub mean: Vec<f64>,
    /// Which plane.
    pub plane: Plane,
}

impl Projection {
    /// The coordinates `i` and `j` (the second absent in 1-D: drawn at 0).
    #[must_use]
    pub fn coordinates(mean: Vec<f64>, i: usize, j: usize) -> Self {
        Self {
            mean,
            plane: Plane::Coordinates(i, j),
        }
    }

    /// The two leading principal axes of `points` (`N × D`, row-major): the eigenvectors of
    /// the covariance `(1/N) Σ (x − m)(x − m)ᵀ` (summed from centred points, no one-pass
    /// cancellation) with the two largest eigenvalues, each signed so that its largest
    /// component is positive. Falls back to coordinates 0 and 1 when `D ≤ 2`.
    #[must_use]
    pub fn principal(points: &[f64], dim: usize) -> Self {
        let mean = mean(points, dim);
        if dim <= 2 {
            return Self::coordinates(mean, 0, 1);
        }
        let n = points.len() / dim;
        let mut cov = DMatrix::<f64>::zeros(dim, dim);
        let mut centred = vec![0.0; dim];
        for x in points.chunks_exact(dim) {
            for (c, (v, m)) in centred.iter_mut().zip(x.iter().zip(&mean)) {
                *c = v - m;
            }
            for a in 0..dim {
                for b in a..dim {
                    cov[(a, b)] += centred[a] * centred[b];
                }
            }
        }
        for a in 0..dim {
            for b in a..dim {
                cov[(a, b)] /= n.max(1) as f64;
                cov[(b, a)] = cov[(a, b)];
            }
        }
        let eigen = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let total: f64 = eigen.eigenvalues.iter().map(|l| l.max(0.0)).sum();
        let axis = |k: usize| -> Vec<f64> { signed(eigen.eigenvectors.column(order[k]).iter().copied().collect()) };
        let share = |k: usize| {
            if total > 0.0 {
                eigen.eigenvalues[order[k]].max(0.0) / total
            } else {
                0.0
            }
        };
        Self {
            mean,
            plane: Plane::Principal {
                axes: [axis(0), axis(1)],
                explained: [share(0), share(1)],
            },
        }
    }

    /// Fisher's discriminant plane of labelled `points` (`N × D`; `labels` per point, `None`
    /// left out of the class statistics): `S_w = Σ_c Σ_{i∈c} (x − m_c)(x − m_c)ᵀ`,
    /// `S_b = Σ_c N_c (m_c − m)(m_c − m)ᵀ`, both from centred sums; `S_w` regularised by
    /// `1e-9 · tr(S_w)/D · I`, factored `L Lᵀ`, and `L⁻¹ S_b L⁻ᵀ` decomposed symmetrically; the
    /// directions `w = L⁻ᵀ v`. With two classes (one discriminant direction) the second axis is
    /// the principal axis least aligned with the first. `None` with fewer than two classes or
    /// `D ≤ 2`.
    #[must_use]
    pub fn discriminant(points: &[f64], dim: usize, labels: &[Option<u32>]) -> Option<Self> {
        if dim <= 2 {
            return None;
        }
        let all = mean(points, dim);
        let mut classes: Vec<u32> = labels.iter().flatten().copied().collect();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return None;
        }
        let mut sw = DMatrix::<f64>::zeros(dim, dim);
        let mut sb = DMatrix::<f64>::zeros(dim, dim);
        for &c in &classes {
            let rows: Vec<&[f64]> = points
                .chunks_exact(dim)
                .zip(labels)
                .filter(|(_, l)| **l == Some(c))
                .map(|(x, _)| x)
                .collect();
            let n = rows.len() as f64;
            let mc: Vec<f64> = (0..dim).map(|a| rows.iter().map(|x| x[a]).sum::<f64>() / n).collect();
            for x in &rows {
                for a in 0..dim {
                    for b in 0..dim {
                        sw[(a, b)] += (x[a] - mc[a]) * (x[b] - mc[b]);
                    }
                }
            }
            for a in 0..dim {
                for b in 0..dim {
                    sb[(a, b)] += n * (mc[a] - all[a]) * (mc[b] - all[b]);
                }
            }
        }
        let ridge = 1e-9 * sw.trace().max(f64::MIN_POSITIVE) / dim as f64;
        let mut regular = sw.clone();
        for a in 0..dim {
            regular[(a, a)] += ridge;
        }
        let l = regular.cholesky()?.l();
        let l_inv = l.try_inverse()?;
        let m = &l_inv * &sb * l_inv.transpose();
        let m = (&m + m.transpose()) * 0.5;
        let eigen = SymmetricEigen::new(m);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let direction = |k: usize| -> Vec<f64> {
            let w = l_inv.transpose() * eigen.eigenvectors.column(order[k]);
            let norm = w.norm();
            w.iter().map(|x| x / norm).collect()
        };
        let ratio = |w: &[f64]| {
            let q = |s: &DMatrix<f64>| {
                (0..dim)
                    .map(|a| w[a] * (0..dim).map(|b| s[(a, b)] * w[b]).sum::<f64>())
                    .sum::<f64>()
            };
            // The ratio of the data's own scatter (without the ridge).
            q(&sb) / q(&sw)
        };
        let first = signed(direction(0));
        let second = if classes.len() > 2 {
            direction(1)
        } else {
            let Plane::Principal { axes, .. } = Self::principal(points, dim).plane else {
                return None;
            };
            let [a, b] = axes;
            if dot(&a, &first).abs() < dot(&b, &first).abs() {
                a
            } else {
                b
            }
        };
        let along = dot(&second, &first);
        let mut second: Vec<f64> = second.iter().zip(&first).map(|(s, f)| s - along * f).collect();
        let norm = dot(&second, &second).sqrt();
        if norm.is_nan() || norm < 1e-12 {
            return None;
        }
        second.iter_mut().for_each(|x| *x /= norm);
        let second = signed(second);
        let separation = [ratio(&first), ratio(&second)];
        Some(Self {
            mean: all,
            plane: Plane::Discriminant {
                axes: [first, second],
                separation,
            },
        })
    }

    /// The plane position of `v`.
    #[must_use]
    pub fn project(&self, v: &[f64]) -> [f64; 2] {
        match &self.plane {
            Plane::Coordinates(i, j) => [v.get(*i).copied().unwrap_or(0.0), v.get(*j).copied().unwrap_or(0.0)],
            Plane::Principal { axes, .. } | Plane::Discriminant { axes, .. } => axes.each_ref().map(|a| {
                a.iter()
                    .zip(v.iter().zip(&self.mean))
                    .map(|(a, (x, m))| a * (x - m))
                    .sum()
            }),
        }
    }

    /// The point of the plane at position `u`: the data mean moved along the view axes
    /// (`project(lift(u)) = u`).
    #[must_use]
    pub fn lift(&self, u: [f64; 2]) -> Vec<f64> {
        self.moved(&self.mean, u)
    }

    /// `v` moved within its plane to position `to`, its hidden components kept (dragging a
    /// prototype).
    #[must_use]
    pub fn moved(&self, v: &[f64], to: [f64; 2]) -> Vec<f64> {
        let mut x = v.to_vec();
        match &self.plane {
            Plane::Coordinates(i, j) => {
                if let Some(c) = x.get_mut(*i) {
                    *c = to[0];
                }
                if let Some(c) = x.get_mut(*j) {
                    *c = to[1];
                }
            }
            Plane::Principal { axes, .. } | Plane::Discriminant { axes, .. } => {
                let at = self.project(v);
                for (a, d) in axes.iter().zip([to[0] - at[0], to[1] - at[1]]) {
                    for (x, a) in x.iter_mut().zip(a) {
                        *x += d * a;
                    }
                }
            }
        }
        x
    }

    /// The 2 × 2 covariance (row-major) of the projection of a `D × D` covariance: `A Σ Aᵀ`.
    #[must_use]
    pub fn covariance(&self, cov: &[f64]) -> [f64; 4] {
        let d = self.mean.len();
        let rows = self.rows();
        let mut out = [0.0; 4];
        for (r, a) in rows.iter().enumerate() {
            for (c, b) in rows.iter().enumerate() {
                let mut s = 0.0;
                for p in 0..d {
                    for q in 0..d {
                        s += a[p] * cov[p * d + q] * b[q];
                    }
                }
                out[r * 2 + c] = s;
            }
        }
        out
    }

    /// The view axes as `D`-vectors (a coordinate's unit vector, or a principal axis).
    #[must_use]
    pub fn rows(&self) -> [Vec<f64>; 2] {
        let d = self.mean.len();
        match &self.plane {
            Plane::Coordinates(i, j) => [*i, *j].map(|k| (0..d).map(|p| f64::from(u8::from(p == k))).collect()),
            Plane::Principal { axes, .. } | Plane::Discriminant { axes, .. } => axes.clone(),
        }
    }

    /// Whether the plane shows every coordinate (`D ≤ 2` and coordinates 0 and 1).
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.mean.len() <= 2 && self.plane == Plane::Coordinates(0, 1)
    }

    /// The two axes' names: a coordinate's own name, or `PC1 (72.9 % of variance)`.
    #[must_use]
    pub fn axis_names(&self, names: &[String]) -> [String; 2] {
        let d = self.mean.len();
        let name = |k: usize| {
            names
                .get(k)
                .cloned()
                .unwrap_or_else(|| if k < d { format!("x{}", k + 1) } else { String::new() })
        };
        match &self.plane {
            Plane::Coordinates(i, j) => [name(*i), name(*j)],
            Plane::Principal { explained, .. } => {
                [0, 1].map(|k| format!("PC{} ({:.1} % of variance)", k + 1, 100.0 * explained[k]))
            }
            Plane::Discriminant { separation, .. } => {
                [0, 1].map(|k| format!("LD{} (separation {:.3})", k + 1, separation[k]))
            }
        }
    }

    /// What the plane is, in words, for the scene's header.
    #[must_use]
    pub fn describe(&self, names: &[String]) -> String {
        let d = self.mean.len();
        match &self.plane {
            _ if self.is_whole() => String::new(),
            Plane::Coordinates(..) => {
                let [a, b] = self.axis_names(names);
                format!("{a} against {b} of {d} coordinates; the others at the data mean")
            }
            Plane::Principal { explained, .. } => format!(
                "PCA plane of {d} coordinates through the data mean ({:.1} % of the variance)",
                100.0 * (explained[0] + explained[1])
            ),
            Plane::Discriminant { .. } => {
                format!("LDA plane of {d} coordinates through the data mean: the classes' discriminant axes")
            }
        }
    }
}

/// `a · b`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v` signed so that its largest component is positive (a deterministic orientation).
fn signed(mut v: Vec<f64>) -> Vec<f64> {
    let largest = v
        .iter()
        .copied()
        .fold(0.0, |a: f64, b| if b.abs() > a.abs() { b } else { a });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    v
}

/// The mean of `points` (`N × D`), 0 for no points.
#[must_use]
pub fn mean(points: &[f64], dim: usize) -> Vec<f64> {
    let n = (points.len() / dim.max(1)).max(1) as f64;
    let mut m = vec![0.0; dim];
    for x in points.chunks_exact(dim.max(1)) {
        for (a, v) in m.iter_mut().zip(x) {
            *a += v;
        }
    }
    m.iter_mut().for_each(|a| *a /= n);
    m
}
