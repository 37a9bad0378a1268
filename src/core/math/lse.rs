//! Stable log-sum-exp and softmax.
//!
//! Every exponential in the lab goes through these functions: the maximum is subtracted
//! before `exp`, so temperatures down to `1e-6` and distances up to `1e6` stay finite
//! (MATH.md §1).

/// `log Σ_j exp(a_j)`, computed as `m + log Σ_j exp(a_j − m)` with `m = max_j a_j`.
///
/// Returns `-∞` for an empty slice or when every entry is `-∞`.
#[must_use]
pub fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let s: f64 = a.iter().map(|&v| (v - m).exp()).sum();
    m + s.ln()
}

/// Writes `softmax(a)` into `out` and returns `log Σ exp(a)`.
///
/// `out[j] = exp(a_j − lse)`: computed from the shifted arguments, so no entry overflows.
pub fn softmax_into(a: &[f64], out: &mut [f64]) -> f64 {
    debug_assert_eq!(a.len(), out.len());
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for (o, &v) in out.iter_mut().zip(a) {
        let e = (v - m).exp();
        *o = e;
        s += e;
    }
    let inv = 1.0 / s;
    for o in out.iter_mut() {
        *o *= inv;
    }
    m + s.ln()
}

/// Shannon entropy `−Σ p log p` (natural log) of a probability vector; `0 log 0 = 0`.
#[must_use]
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|&&v| v > 0.0).map(|&v| v * v.ln()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lse_matches_naive_in_safe_range() {
        let a = [0.3, -1.2, 2.5, 0.0];
        let naive: f64 = a.iter().map(|v: &f64| v.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&a) - naive).abs() < 1e-14);
    }

    #[test]
    fn lse_survives_huge_arguments() {
        // exp(1e6) overflows; the shifted form does not.
        let a = [1e6, 1e6 - 1.0, -1e6];
        let expected = 1e6 + (1.0 + (-1.0f64).exp()).ln();
        assert!((log_sum_exp(&a) - expected).abs() < 1e-9);
        let mut p = [0.0; 3];
        let l = softmax_into(&a, &mut p);
        assert!((l - expected).abs() < 1e-9);
        let e1 = (-1.0f64).exp();
        assert!((p[0] - 1.0 / (1.0 + e1)).abs() < 1e-15);
        assert!((p[1] - e1 / (1.0 + e1)).abs() < 1e-15);
        assert_eq!(p[2], 0.0);
    }

    #[test]
    fn lse_all_neg_infinity() {
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY; 2]), f64::NEG_INFINITY);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn entropy_of_uniform_is_log_k() {
        assert!((entropy(&[0.25; 4]) - 4f64.ln()).abs() < 1e-15);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
    }
}
