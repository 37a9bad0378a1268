//! Data bound to a model: the points, their labels and the attention targets, checked against
//! the regime once, when they are bound.

use std::sync::Arc;

use crate::core::data::{Dataset, SoftLabels};
use crate::core::model::{ModelSpec, Regime};

/// Why data cannot be bound to a model, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindError {}

/// Data bound to a model: the points, their labels and the attention targets `t_i`.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The validated model settings.
    pub spec: ModelSpec,
    /// `D`.
    pub dim: usize,
    /// Points, `N × D` (shared: cloning a problem does not copy the data).
    pub points: Arc<Vec<f64>>,
    /// `y_i`, `None` for an unlabelled point.
    pub labels: Arc<Vec<Option<u32>>>,
    /// `P` (attention), 0 otherwise.
    pub target_dim: usize,
    /// `t_i`, `N × P` (attention), empty otherwise.
    pub targets: Arc<Vec<f64>>,
    /// Soft labels `p_ic` of some points (cross-entropy clamps them; empty when none).
    pub soft: Arc<SoftLabels>,
    /// The coordinates' names, `D` of them, or empty when unnamed.
    pub names: Arc<Vec<String>>,
    /// The principal plane of the points, computed on first use (shared by clones, which share
    /// the points).
    pub principal: Arc<std::sync::OnceLock<crate::core::projection::Projection>>,
    /// The discriminant plane of the labels (`None`: fewer than two classes), computed on first
    /// use.
    pub discriminant: Arc<std::sync::OnceLock<Option<crate::core::projection::Projection>>>,
}

impl Problem {
    /// Binds data to a model: checks labels and targets against the regime and materialises the
    /// attention targets (explicit, or one-hot labels).
    ///
    /// # Errors
    /// Cross-entropy without labels, attention without targets or labels, a label with no
    /// prototype of its class.
    pub fn bind(data: Dataset, spec: ModelSpec) -> Result<Self, BindError> {
        let err = BindError;
        if data.is_empty() {
            return Err(err("the data set has no points".into()));
        }
        let (target_dim, targets) = match spec.regime {
            Regime::Attention { .. } => {
                if data.target_dim > 0 {
                    (data.target_dim, data.targets)
                } else {
                    if let Some(i) = data.labels.iter().position(Option::is_none) {
                        return Err(err(format!(
                            "attention needs a target for every point: point {i} has neither a target nor a label"
                        )));
                    }
                    // One-hot labels, or a point's soft label as its target.
                    let c = data.class_count();
                    if c > crate::core::data::MAX_CLASSES {
                        let (i, y) = (0..data.len())
                            .filter_map(|i| data.labels[i].map(|y| (i, y)))
                            .max_by_key(|&(_, y)| y)
                            .expect("labels give the class count");
                        return Err(err(format!(
                            "attention: point {i} has label {y}, which would need one-hot targets of {c} entries per point; labels must lie in 0..{} (classes 0..C−1)",
                            crate::core::data::MAX_CLASSES - 1
                        )));
                    }
                    let mut t = vec![0.0; data.len() * c];
                    for (i, y) in data.labels.iter().enumerate() {
                        match data.soft.get(i) {
                            Some(p) => t[i * c..i * c + p.len()].copy_from_slice(p),
                            None => t[i * c + y.expect("checked above") as usize] = 1.0,
                        }
                    }
                    (c, t)
                }
            }
            _ => (0, Vec::new()),
        };
        if spec.regime == Regime::CrossEntropy {
            if data.labels.iter().all(Option::is_none) {
                return Err(err(
                    "cross-entropy needs labelled points: the data set has no labels (add a `label` column or labels)"
                        .into(),
                ));
            }
            for y in data.labels.iter().flatten() {
                if !spec.classes.contains(&(*y as usize)) {
                    return Err(err(format!(
                        "cross-entropy: label {y} has no prototype of its class (prototype classes: {:?})",
                        spec.classes
                    )));
                }
            }
            for i in 0..data.labels.len() {
                if let Some(p) = data.soft.get(i)
                    && let Some(c) = (0..p.len()).find(|&c| p[c] > 0.0 && !spec.classes.contains(&c))
                {
                    return Err(err(format!(
                        "cross-entropy: point {i}'s soft label gives class {c} probability {}, but no prototype has class {c} (prototype classes: {:?})",
                        p[c], spec.classes
                    )));
                }
            }
        }
        Ok(Self {
            spec,
            dim: data.dim,
            points: std::sync::Arc::new(data.points),
            labels: std::sync::Arc::new(data.labels),
            target_dim,
            targets: std::sync::Arc::new(targets),
            soft: std::sync::Arc::new(data.soft),
            // Names only when there is one per coordinate.
            names: std::sync::Arc::new(if data.names.len() == data.dim {
                data.names
            } else {
                Vec::new()
            }),
            principal: Arc::default(),
            discriminant: Arc::default(),
        })
    }

    /// The principal plane of the points (PCA; coordinates 0 and 1 when `D ≤ 2`), computed once.
    #[must_use]
    pub fn principal_plane(&self) -> &crate::core::projection::Projection {
        self.principal
            .get_or_init(|| crate::core::projection::Projection::principal(&self.points, self.dim))
    }

    /// Fisher's discriminant plane of the labels (LDA), computed once; `None` with fewer than
    /// two classes or `D ≤ 2`.
    #[must_use]
    pub fn discriminant_plane(&self) -> Option<&crate::core::projection::Projection> {
        self.discriminant
            .get_or_init(|| crate::core::projection::Projection::discriminant(&self.points, self.dim, &self.labels))
            .as_ref()
    }

    /// `N`, all points (including unlabelled ones).
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

    /// `t_i` (empty slice outside attention).
    #[must_use]
    pub fn target(&self, i: usize) -> &[f64] {
        &self.targets[i * self.target_dim..(i + 1) * self.target_dim]
    }

    /// Point `i`'s soft label `p_i·` (cross-entropy), if it has one.
    #[must_use]
    pub fn soft_label(&self, i: usize) -> Option<&[f64]> {
        self.soft.get(i)
    }

    /// Whether point `i` enters the objective (cross-entropy counts labelled points only).
    #[must_use]
    pub fn counts_point(&self, i: usize) -> bool {
        !matches!(self.spec.regime, Regime::CrossEntropy)
            || self.spec.settings.semi_supervised
            || self.labels[i].is_some()
    }

    /// The `N` of the `1/N` in the objective: labelled points for cross-entropy, else all.
    #[must_use]
    pub fn effective_n(&self) -> usize {
        (0..self.len()).filter(|&i| self.counts_point(i)).count()
    }

    /// The number of classes the labels and soft labels name (largest label + 1; 0 without labels).
    #[must_use]
    pub fn class_count(&self) -> usize {
        crate::core::data::class_count(&self.labels, &self.soft)
    }

    /// The data as a [`Dataset`] (what the window edits and saves).
    #[must_use]
    pub fn to_dataset(&self) -> Dataset {
        let p = self;
        let attention = matches!(p.spec.regime, Regime::Attention { .. });
        Dataset {
            dim: p.dim,
            points: p.points.to_vec(),
            labels: p.labels.to_vec(),
            target_dim: if attention { p.target_dim } else { 0 },
            targets: if attention { p.targets.to_vec() } else { Vec::new() },
            soft: (*p.soft).clone(),
            names: p.names.to_vec(),
        }
    }

    /// Variance per coordinate of the points: `Σ_i ||x_i − x̄||² / (N D)`.
    #[must_use]
    pub fn data_variance(&self) -> f64 {
        let problem = self;
        let n = problem.len();
        let dim = problem.dim;
        if n == 0 || dim == 0 {
            return 0.0;
        }
        let mut mean = vec![0.0; dim];
        for i in 0..n {
            for (m, x) in mean.iter_mut().zip(problem.point(i)) {
                *m += x / n as f64;
            }
        }
        let mut total = 0.0;
        for i in 0..n {
            for (m, x) in mean.iter().zip(problem.point(i)) {
                total += (x - m) * (x - m);
            }
        }
        total / (n * dim) as f64
    }
}
