//! Model-selection numbers a scikit-learn user expects of a Gaussian mixture at `T = 1`: the
//! log-likelihood with its constants, BIC and AIC, with the free parameters counted as
//! scikit-learn's `GaussianMixture._n_parameters` counts them (for what the run learns).

use crate::core::metric::Structure;

/// Free parameters of a `K`-component mixture in `D` dimensions: the means `K D`, the mixing
/// weights `K − 1` when learned, and the covariances when learned — `full` `K D (D + 1)/2`,
/// `diag` `K D`, `spherical` `K`, `tied` `D (D + 1)/2`.
#[must_use]
pub fn free_parameters(structure: Structure, k: usize, dim: usize, weights: bool, metric: bool) -> usize {
    let covariances = match structure {
        Structure::Full => k * dim * (dim + 1) / 2,
        Structure::Diag => k * dim,
        Structure::Spherical => k,
        Structure::Tied => dim * (dim + 1) / 2,
    };
    k * dim + if weights { k.saturating_sub(1) } else { 0 } + if metric { covariances } else { 0 }
}

/// `(BIC, AIC)` of a total log-likelihood `ll` with `p` free parameters on `n` points:
/// `−2 ll + p ln n` and `−2 ll + 2 p` (scikit-learn's `bic` and `aic`).
#[must_use]
pub fn information_criteria(ll: f64, p: usize, n: usize) -> (f64, f64) {
    let p = p as f64;
    (-2.0 * ll + p * (n as f64).ln(), -2.0 * ll + 2.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_counted_as_scikit_learn_counts_them() {
        // scikit-learn's _n_parameters: Old Faithful (K = 2, D = 2) full 11, spherical 7.
        assert_eq!(free_parameters(Structure::Full, 2, 2, true, true), 11);
        assert_eq!(free_parameters(Structure::Spherical, 2, 2, true, true), 7);
        // K = 3, D = 4: diag 12 + 2 + 12, tied 12 + 2 + 10, full 12 + 2 + 30.
        assert_eq!(free_parameters(Structure::Diag, 3, 4, true, true), 26);
        assert_eq!(free_parameters(Structure::Tied, 3, 4, true, true), 24);
        assert_eq!(free_parameters(Structure::Full, 3, 4, true, true), 44);
        // Only the means when nothing else is learned.
        assert_eq!(free_parameters(Structure::Full, 3, 4, false, false), 12);
        let (bic, aic) = information_criteria(-100.0, 5, 100);
        assert!((bic - (200.0 + 5.0 * 100f64.ln())).abs() < 1e-12 && (aic - 210.0).abs() < 1e-12);
    }
}
