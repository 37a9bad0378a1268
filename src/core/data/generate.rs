//! Seeded generators of synthetic data: Gaussian clouds, blobs, two moons and a wave for
//! attention regression.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::core::data::{Dataset, rng};

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
