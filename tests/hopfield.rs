//! Attention as retrieval: one update is one mean-shift (EM) step; the fixed point's kind follows
//! the temperature.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use implicit_em_lab::core::hopfield::{FixedPoint, retrieve, update};
use implicit_em_lab::core::model::{ComponentTerms, ModelSpec, Regime, State};

/// Mean shift with a Gaussian kernel of variance `s·T` on the keys, written out on its own: the
/// EM step for the mode of the keys' kernel density (E: posterior of each key; M: their mean).
fn mean_shift(keys: &[Vec<f64>], xi: &[f64], var: f64) -> Vec<f64> {
    let logw: Vec<f64> = keys
        .iter()
        .map(|k| -k.iter().zip(xi).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * var))
        .collect();
    let m = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
    let total: f64 = w.iter().sum();
    (0..xi.len())
        .map(|d| keys.iter().zip(&w).map(|(k, w)| w * k[d]).sum::<f64>() / total)
        .collect()
}

#[test]
fn one_retrieval_update_is_one_mean_shift_step() {
    for (dim, t, scale) in [(2, 0.7, 1.0), (3, 2.5, 0.5), (5, 0.05, 2.0)] {
        let keys: Vec<Vec<f64>> = (0..7)
            .map(|j| (0..dim).map(|d| ((j * 5 + d * 3) % 11) as f64 * 0.6 - 3.0).collect())
            .collect();
        let mut state = State::new(dim, keys.concat(), 0);
        state.log_scales = vec![f64::ln(scale); 7];
        let spec = ModelSpec::new(Regime::Mixture, t);
        let terms = ComponentTerms::new(&spec, &state);
        for q in 0..5 {
            let xi: Vec<f64> = (0..dim).map(|d| (q as f64 - 2.0) * 0.9 + d as f64 * 0.3).collect();
            let (ours, r) = update(&spec, &state, &terms, &xi);
            let theirs = mean_shift(&keys, &xi, scale * t);
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-14);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() < 1e-13 * b.abs().max(1.0),
                    "D = {dim}, T = {t}: {ours:?} vs {theirs:?}"
                );
            }
        }
    }
}

#[test]
fn the_fixed_point_goes_from_one_key_to_a_few_to_all_as_t_rises() {
    // Two tight pairs of keys, 10 apart; within a pair, 1 apart.
    let keys = [[-5.0, 0.0], [-5.0, 1.0], [5.0, 0.0], [5.0, 1.0]];
    let state = State::new(2, keys.concat(), 0);
    let at = |t: f64, xi: [f64; 2]| retrieve(&ModelSpec::new(Regime::Mixture, t), &state, &xi);

    // Low T: the nearest key is retrieved, exactly.
    let r = at(0.02, [-4.6, 0.8]);
    assert!(r.converged);
    assert_eq!(r.kind, FixedPoint::Pattern(1));
    let end = r.path.last().unwrap();
    assert!((end[0] + 5.0).abs() < 1e-9 && (end[1] - 1.0).abs() < 1e-9, "{end:?}");

    // Intermediate T: the pair merges (metastable average of 2) but the pairs stay apart.
    let r = at(2.0, [-4.6, 0.8]);
    assert!(r.converged);
    assert_eq!(r.kind, FixedPoint::Metastable(2));
    let end = r.path.last().unwrap();
    assert!((end[0] + 5.0).abs() < 1e-6 && (end[1] - 0.5).abs() < 1e-6, "{end:?}");

    // High T: every query goes to the average of all keys.
    let r = at(400.0, [-4.6, 0.8]);
    assert!(r.converged);
    assert_eq!(r.kind, FixedPoint::GlobalAverage);
    let end = r.path.last().unwrap();
    assert!(end[0].abs() < 1e-6 && (end[1] - 0.5).abs() < 1e-6, "{end:?}");

    // Each step of the path is the update of the previous point.
    let spec = ModelSpec::new(Regime::Mixture, 2.0);
    let terms = ComponentTerms::new(&spec, &state);
    let r = at(2.0, [3.0, -2.0]);
    for w in r.path.windows(2) {
        assert_eq!(update(&spec, &state, &terms, &w[0]).0, w[1]);
    }
}
