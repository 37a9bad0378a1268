//! Components with their own metric (MATH.md §8): the `D × D` maps `W_j`, their precisions
//! `P_j = W_jᵀ W_j`, volumes `log|det W_j|`, covariances `T P_j⁻¹`, and the projections of a
//! full gradient onto each structure. Matrices are flat, row-major `D × D` slices.

use nalgebra::DMatrix;

use serde::{Deserialize, Serialize};

/// Each component's metric (MATH.md §8), scikit-learn's `covariance_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Structure {
    /// `W_j = s_j^{−1/2} I`: the isotropic scales `s_j = exp ρ_j` of MATH.md §1.
    #[default]
    Spherical,
    /// `W_j` diagonal: one scale per axis.
    Diag,
    /// `W_j` any invertible `D × D` map (explicit EM keeps it upper-triangular).
    Full,
    /// One `W` shared by every component.
    Tied,
}

impl Structure {
    /// `spherical`, `diag`, `full` or `tied` (scikit-learn's names).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Structure::Spherical => "spherical",
            Structure::Diag => "diag",
            Structure::Full => "full",
            Structure::Tied => "tied",
        }
    }

    /// Whether components carry a `D × D` map `W_j` (`State::maps`); spherical components
    /// carry the log-scales `ρ_j` instead.
    #[must_use]
    pub fn has_maps(self) -> bool {
        self != Structure::Spherical
    }

    /// Every structure, in scikit-learn's order of generality.
    pub const ALL: [Structure; 4] = [Structure::Spherical, Structure::Diag, Structure::Full, Structure::Tied];
}

/// How gradient descent parametrises a component's energy (MATH.md §8). Both give the same
/// energies and fixed points, not the same gradient paths; explicit EM's path is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Form {
    /// `z = W_j (x − μ_j)`: a centre and a metric.
    #[default]
    Prototype,
    /// `z = W_j x + b_j`: a linear layer; its centre is `μ_j = −W_j⁻¹ b_j`.
    Neural,
}

impl Form {
    /// `prototype` or `neural`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Form::Prototype => "prototype",
            Form::Neural => "neural",
        }
    }
}

fn matrix(w: &[f64], d: usize) -> DMatrix<f64> {
    DMatrix::from_row_slice(d, d, w)
}

fn flat(m: &DMatrix<f64>) -> Vec<f64> {
    let d = m.nrows();
    let mut out = vec![0.0; d * d];
    for r in 0..d {
        for c in 0..d {
            out[r * d + c] = m[(r, c)];
        }
    }
    out
}

/// `D × D` identity times `v`.
#[must_use]
pub fn scaled_identity(d: usize, v: f64) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for r in 0..d {
        out[r * d + r] = v;
    }
    out
}

/// `P = Wᵀ W`.
#[must_use]
pub fn precision(w: &[f64], d: usize) -> Vec<f64> {
    let mut p = vec![0.0; d * d];
    for r in 0..d {
        for c in r..d {
            let mut s = 0.0;
            for k in 0..d {
                s += w[k * d + r] * w[k * d + c];
            }
            p[r * d + c] = s;
            p[c * d + r] = s;
        }
    }
    p
}

/// `log|det W|` from an LU factorisation (a sum of logs: no overflow of the determinant itself
/// at large `D`); `−∞` for a singular map.
#[must_use]
pub fn log_abs_det(w: &[f64], d: usize) -> f64 {
    if d == 0 {
        return 0.0;
    }
    let lu = matrix(w, d).lu();
    let u = lu.u();
    (0..d).map(|i| u[(i, i)].abs().ln()).sum()
}

/// `W^{−T}`, `None` for a singular map.
#[must_use]
pub fn inverse_transpose(w: &[f64], d: usize) -> Option<Vec<f64>> {
    let inv = matrix(w, d).try_inverse()?;
    Some(flat(&inv.transpose()))
}

/// `W⁻¹ v`, `None` for a singular map.
#[must_use]
pub fn solve(w: &[f64], d: usize, v: &[f64]) -> Option<Vec<f64>> {
    let lu = matrix(w, d).lu();
    let x = lu.solve(&nalgebra::DVector::from_column_slice(v))?;
    x.iter().all(|v| v.is_finite()).then(|| x.iter().copied().collect())
}

/// `W v`.
#[must_use]
pub fn apply(w: &[f64], d: usize, v: &[f64]) -> Vec<f64> {
    (0..d).map(|r| (0..d).map(|c| w[r * d + c] * v[c]).sum()).collect()
}

/// The upper-triangular `W` with a positive diagonal and `Wᵀ W = P` (the transpose of `P`'s
/// Cholesky factor), `None` unless `P` is symmetric positive definite.
#[must_use]
pub fn cholesky_upper(p: &[f64], d: usize) -> Option<Vec<f64>> {
    let m = matrix(p, d);
    let asym = (0..d)
        .flat_map(|r| (0..d).map(move |c| (r, c)))
        .map(|(r, c)| (m[(r, c)] - m[(c, r)]).abs())
        .fold(0.0, f64::max);
    let size = m.iter().map(|v| v.abs()).fold(0.0, f64::max);
    if !m.iter().all(|v| v.is_finite()) || asym > 1e-12 * size {
        return None;
    }
    let l = m.cholesky()?.l();
    Some(flat(&l.transpose()))
}

/// `Σ = T (Wᵀ W)⁻¹`, the component's covariance at temperature `T`; `None` for a singular map.
#[must_use]
pub fn covariance(w: &[f64], d: usize, t: f64) -> Option<Vec<f64>> {
    let inv = matrix(&precision(w, d), d).try_inverse()?;
    Some(flat(&(inv * t)))
}

/// The inverse of a symmetric positive-definite matrix by Cholesky, `None` otherwise.
#[must_use]
pub fn spd_inverse(c: &[f64], d: usize) -> Option<Vec<f64>> {
    let ch = matrix(c, d).cholesky()?;
    Some(flat(&ch.inverse()))
}

/// Projects full per-component gradients `∂J/∂W_j` (`K × D × D`) onto the structure's
/// parameters: the diagonal for `diag`, the sum over components (written to each) for `tied`;
/// `full` keeps everything. (Spherical components carry no maps.)
pub fn project(structure: Structure, g: &mut [f64], k: usize, d: usize) {
    let dd = d * d;
    match structure {
        Structure::Spherical | Structure::Full => {}
        Structure::Diag => {
            for j in 0..k {
                for r in 0..d {
                    for c in 0..d {
                        if r != c {
                            g[j * dd + r * d + c] = 0.0;
                        }
                    }
                }
            }
        }
        Structure::Tied => {
            let mut total = vec![0.0; dd];
            for j in 0..k {
                for (t, v) in total.iter_mut().zip(&g[j * dd..(j + 1) * dd]) {
                    *t += v;
                }
            }
            for j in 0..k {
                g[j * dd..(j + 1) * dd].copy_from_slice(&total);
            }
        }
    }
}

/// Whether `w` has the structure's shape: diagonal for `diag`; any matrix otherwise.
#[must_use]
pub fn fits(structure: Structure, w: &[f64], d: usize) -> bool {
    match structure {
        Structure::Diag => (0..d).all(|r| (0..d).all(|c| r == c || w[r * d + c] == 0.0)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_upper_reproduces_the_precision() {
        let p = [4.0, 1.2, -0.4, 1.2, 3.0, 0.5, -0.4, 0.5, 2.0];
        let w = cholesky_upper(&p, 3).expect("positive definite");
        assert_eq!(w[3], 0.0);
        assert!(w[0] > 0.0 && w[4] > 0.0 && w[8] > 0.0);
        for (a, b) in precision(&w, 3).iter().zip(&p) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        // log|det W| = ½ log det P; det P by cofactors.
        let det = 4.0 * (3.0 * 2.0 - 0.25) - 1.2 * (1.2 * 2.0 + 0.2) + (-0.4) * (1.2 * 0.5 + 1.2);
        assert!((log_abs_det(&w, 3) - 0.5 * f64::ln(det)).abs() < 1e-14);
        assert!(cholesky_upper(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
        assert!(cholesky_upper(&[1.0, 0.5, 0.0, 1.0], 2).is_none(), "not symmetric");
    }

    #[test]
    fn covariance_is_t_times_the_inverse_precision() {
        let w = [2.0, 1.0, 0.0, 0.5];
        let c = covariance(&w, 2, 3.0).expect("invertible");
        // WᵀW = [[4, 2], [2, 1.25]], det = 1; inverse = [[1.25, −2], [−2, 4]].
        let want = [3.75, -6.0, -6.0, 12.0];
        for (a, b) in c.iter().zip(&want) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
    }
}
