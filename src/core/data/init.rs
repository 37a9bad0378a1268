//! Initial prototype positions: k-means++, uniform in the bounding box, or given.

use rand::RngExt;

use crate::core::data::{Dataset, rng};

/// k-means++ seeding (Arthur & Vassilvitskii 2007) over the points `subset` of `data`:
/// the first centre uniform, each next one with probability proportional to the squared
/// distance to the nearest centre chosen so far. Returns `k × D` positions.
///
/// # Errors
/// When `k` exceeds the number of points, or squared distances overflow.
pub fn kmeans_plus_plus(data: &Dataset, subset: &[usize], k: usize, seed: u64) -> Result<Vec<f64>, String> {
    if k > subset.len() {
        return Err(format!(
            "k-means++ needs at least as many points as prototypes: {k} prototypes, {} points",
            subset.len()
        ));
    }
    let mut rng = rng(seed);
    let mut chosen = Vec::with_capacity(k);
    let mut nearest = vec![f64::INFINITY; subset.len()];
    for c in 0..k {
        let pick = if c == 0 {
            rng.random_range(0..subset.len())
        } else {
            let total: f64 = nearest.iter().sum();
            if !total.is_finite() {
                return Err(format!(
                    "k-means++: squared distances between points overflow ({total}); coordinates must lie within ±{:e}",
                    crate::core::data::MAX_COORDINATE
                ));
            }
            if total > 0.0 {
                let mut u = rng.random_range(0.0..total);
                let mut pick = subset.len() - 1;
                for (s, &w) in nearest.iter().enumerate() {
                    if u < w {
                        pick = s;
                        break;
                    }
                    u -= w;
                }
                pick
            } else {
                // All remaining points coincide with chosen centres: take any unused one.
                let unused: Vec<usize> = (0..subset.len()).filter(|s| !chosen.contains(s)).collect();
                unused[rng.random_range(0..unused.len())]
            }
        };
        chosen.push(pick);
        let centre = data.point(subset[pick]);
        for (s, near) in nearest.iter_mut().enumerate() {
            let d2: f64 = data
                .point(subset[s])
                .iter()
                .zip(centre)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            *near = near.min(d2);
        }
    }
    Ok(chosen.iter().flat_map(|&s| data.point(subset[s]).to_vec()).collect())
}

/// `k` positions uniform in the bounding box of the points `subset`.
#[must_use]
pub fn uniform_in_box(data: &Dataset, subset: &[usize], k: usize, seed: u64) -> Vec<f64> {
    let dim = data.dim;
    let mut lo = vec![f64::INFINITY; dim];
    let mut hi = vec![f64::NEG_INFINITY; dim];
    for &i in subset {
        for (d, &x) in data.point(i).iter().enumerate() {
            lo[d] = lo[d].min(x);
            hi[d] = hi[d].max(x);
        }
    }
    let mut rng = rng(seed);
    (0..k)
        .flat_map(|_| {
            (0..dim)
                .map(|d| {
                    if hi[d] > lo[d] {
                        rng.random_range(lo[d]..hi[d])
                    } else {
                        lo[d]
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_pp_picks_distinct_data_points() {
        let data = crate::core::data::blobs(4, 200, 2, 10.0, 0.3, 1);
        let all: Vec<usize> = (0..data.len()).collect();
        let c = kmeans_plus_plus(&data, &all, 4, 3).unwrap();
        assert_eq!(c.len(), 8);
        for j in 0..4 {
            let p = &c[2 * j..2 * j + 2];
            assert!((0..data.len()).any(|i| data.point(i) == p));
        }
        // Well-separated blobs: k-means++ puts one centre in each (labels of nearest points).
        let mut seen: Vec<u32> = (0..4)
            .map(|j| {
                let p = &c[2 * j..2 * j + 2];
                let i = (0..data.len()).find(|&i| data.point(i) == p).unwrap();
                data.labels[i].unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3]);
    }

    #[test]
    fn kmeans_pp_too_many_prototypes() {
        let data = crate::core::data::blobs(1, 3, 2, 1.0, 1.0, 1);
        let e = kmeans_plus_plus(&data, &[0, 1, 2], 4, 0).unwrap_err();
        assert!(e.contains("4 prototypes, 3 points"), "{e}");
    }

    #[test]
    fn kmeans_pp_duplicate_points() {
        let data = Dataset {
            dim: 1,
            points: vec![1.0; 3],
            labels: vec![None; 3],
            ..Dataset::default()
        };
        let c = kmeans_plus_plus(&data, &[0, 1, 2], 3, 0).unwrap();
        assert_eq!(c, vec![1.0; 3]);
    }
}
