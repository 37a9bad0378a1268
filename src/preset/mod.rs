//! Presets: the RON format, validation, and building an experiment from one.
//!
//! A [`Preset`] is the unchecked draft (what the file says); [`Preset::validate`] checks every
//! range and returns a [`ValidPreset`]; [`ValidPreset::build`] makes the data and the initial
//! state and starts the [`Experiment`]. Saving is atomic (a temporary file, then a rename).

pub mod budget;
pub mod csv;
pub mod io;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::data::init;
use crate::core::data::{self, Cloud, Dataset};
use crate::core::experiment::Experiment;
use crate::core::math::readable;
use crate::core::model::{Form, RateMode, Structure};
use crate::core::model::{
    MAX_TEMPERATURE, MIN_TEMPERATURE, ModelSpec, Optimiser, Regime, RunSettings, ScalePrior, Score, State,
};
use crate::core::problem::Problem;
use crate::session::Session;
use crate::session::anneal::Schedule;

/// Which objective, with its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ObjectiveSpec {
    /// Unsupervised mixture (MATH.md §3).
    Mixture,
    /// Attention (MATH.md §4).
    Attention {
        /// `Distance` or `DotProduct`.
        #[serde(default)]
        score: Score,
    },
    /// Cross-entropy with `per_class` prototypes per class (MATH.md §5).
    CrossEntropy {
        /// `M ≥ 1`.
        #[serde(default = "one_usize")]
        per_class: usize,
    },
}

/// Which parameters are learned besides the prototypes (and attention values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learn {
    /// Mixing logits `w`.
    #[serde(default)]
    pub weights: bool,
    /// Each component's metric: the log-scales `ρ` (spherical) or the maps `W_j` (`diag`,
    /// `full`, `tied`). `metric` is accepted for it.
    #[serde(default, alias = "metric")]
    pub scales: bool,
    /// The volume term `V` in the energy.
    #[serde(default = "yes")]
    pub volume: bool,
}

impl Default for Learn {
    fn default() -> Self {
        Self {
            weights: false,
            scales: false,
            volume: true,
        }
    }
}

/// One Gaussian cloud of a [`DataSpec::Gaussians`] data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSpec {
    /// Centre.
    pub mean: Vec<f64>,
    /// Standard deviation per axis (one number means the same on every axis).
    pub std: Vec<f64>,
    /// Number of points.
    pub count: usize,
    /// Label of its points.
    #[serde(default)]
    pub label: Option<u32>,
}

/// Where the points come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DataSpec {
    /// `k` isotropic blobs, centres uniform in `[−spread, spread]^dim`, labelled by blob.
    Blobs {
        /// Number of blobs.
        k: usize,
        /// Points in all.
        n: usize,
        /// `D`.
        #[serde(default = "two")]
        dim: usize,
        /// Half-width of the box the centres are drawn from.
        spread: f64,
        /// Standard deviation of each blob.
        std: f64,
    },
    /// Axis-aligned Gaussian clouds, each with its own centre, spread, size and label.
    Gaussians {
        /// The clouds.
        clouds: Vec<CloudSpec>,
    },
    /// Two interleaving half-moons (2-D, labels 0 and 1).
    Moons {
        /// Points in all.
        n: usize,
        /// Standard deviation of the noise.
        noise: f64,
    },
    /// Regression targets for attention: `t = sin(x₁)·cos(x₂/2)` plus noise.
    Wave {
        /// Points.
        n: usize,
        /// `D`.
        #[serde(default = "two")]
        dim: usize,
        /// Standard deviation of the target noise.
        noise: f64,
    },
    /// Points written in the preset.
    Inline {
        /// One coordinate array per point.
        points: Vec<Vec<f64>>,
        /// A label per point (`None` for unlabelled).
        #[serde(default)]
        labels: Option<Vec<Option<u32>>>,
        /// A target array per point (attention).
        #[serde(default)]
        targets: Option<Vec<Vec<f64>>>,
        /// A soft label per point (`None` for a point with a hard label or none): class
        /// probabilities, non-negative, summing to 1, all of one length.
        #[serde(default)]
        soft: Option<Vec<Option<Vec<f64>>>>,
    },
    /// A CSV file, its path relative to the preset's folder (see the README for columns).
    Csv {
        /// The file.
        path: String,
    },
}

/// How the coordinates are scaled before a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standardise {
    /// As given.
    #[default]
    None,
    /// Per coordinate `(x − m) / σ` with the data's mean and standard deviation (`1/N`, two
    /// passes); a constant coordinate is only centred.
    ZScore,
}

/// Z-scores every coordinate of `data` in place ([`Standardise::ZScore`]); the names gain ` (z)`.
/// Returns each coordinate's mean and standard deviation.
pub fn standardise(data: &mut Dataset) -> Vec<(f64, f64)> {
    let (n, d) = (data.len(), data.dim);
    let mut out = Vec::with_capacity(d);
    for c in 0..d {
        let column = || data.points.iter().skip(c).step_by(d);
        let mean = column().sum::<f64>() / n.max(1) as f64;
        let var = column().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n.max(1) as f64;
        let sd = var.sqrt();
        out.push((mean, sd));
    }
    for row in data.points.chunks_exact_mut(d.max(1)) {
        for (x, &(mean, sd)) in row.iter_mut().zip(&out) {
            *x = if sd > 0.0 { (*x - mean) / sd } else { *x - mean };
        }
    }
    for name in &mut data.names {
        name.push_str(" (z)");
    }
    out
}

/// Where the prototypes start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum InitSpec {
    /// k-means++ seeding on the data (per class for cross-entropy).
    KMeansPlusPlus {
        /// `K` (for cross-entropy, classes × per_class).
        k: usize,
        /// Seed; the preset's seed when absent.
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Uniform in the data's bounding box (per class for cross-entropy).
    Random {
        /// `K`.
        k: usize,
        /// Seed; the preset's seed when absent.
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Given positions (and optionally classes, values, weights and scales).
    Explicit {
        /// One coordinate array per prototype.
        positions: Vec<Vec<f64>>,
        /// Class of each prototype (cross-entropy); in order, `per_class` each, when absent.
        #[serde(default)]
        classes: Option<Vec<usize>>,
        /// Value of each prototype (attention); zeros when absent.
        #[serde(default)]
        values: Option<Vec<Vec<f64>>>,
        /// Mixing weights `π` (positive; normalised); uniform when absent.
        #[serde(default)]
        weights: Option<Vec<f64>>,
        /// Scales `s`; `initial_scale` when absent.
        #[serde(default)]
        scales: Option<Vec<f64>>,
        /// Precisions `P_j = W_jᵀW_j` (one `D × D` matrix per prototype, rows as arrays;
        /// symmetric positive definite) for a metric with maps; `W_j` starts as the upper
        /// Cholesky factor. `I / initial_scale` when absent. At `T = 1` these are scikit-learn's
        /// `precisions_init`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precisions: Option<Vec<Vec<Vec<f64>>>>,
    },
}

/// Everything a run needs. The README documents each field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Short title.
    pub name: String,
    /// What to look for.
    #[serde(default)]
    pub description: String,
    /// Which objective.
    pub objective: ObjectiveSpec,
    /// `T > 0`.
    pub temperature: f64,
    /// `η > 0`.
    pub learning_rate: f64,
    /// `Shared` or `Em`.
    #[serde(default)]
    pub rate: RateMode,
    /// Learned parameters and the volume term.
    #[serde(default)]
    pub learn: Learn,
    /// Each component's metric: `Spherical` (scales), `Diag`, `Full` or `Tied` (MATH.md §8).
    #[serde(default, skip_serializing_if = "is_default")]
    pub metric: Structure,
    /// How gradient descent parametrises a metric with maps: `Prototype` (`W (x − μ)`) or
    /// `Neural` (`W x + b`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub form: Form,
    /// scikit-learn's `reg_covar`: explicit EM's covariances are `C_j + reg_covar · I`.
    #[serde(default = "default_reg_covar", skip_serializing_if = "is_default_reg_covar")]
    pub reg_covar: f64,
    /// Smallest scale.
    #[serde(default = "default_scale_floor")]
    pub scale_floor: f64,
    /// Starting scale of every component.
    #[serde(default = "one_f64")]
    pub initial_scale: f64,
    /// Seed of every random choice.
    #[serde(default)]
    pub seed: u64,
    /// Default number of steps for a headless run.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// The points.
    pub data: DataSpec,
    /// `ZScore`: each coordinate centred and divided by its standard deviation before the run
    /// (scikit-learn's `StandardScaler`); `None` (the default): as given.
    #[serde(default, skip_serializing_if = "is_default")]
    pub standardise: Standardise,
    /// The initial prototypes.
    pub prototypes: InitSpec,
    /// Deterministic annealing: `(t0: …, gamma: …, t_min: …)`; the run starts at `t0` (instead
    /// of `temperature`), settles, cools `T ← max(t_min, gamma·T)`, and stops at `t_min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anneal: Option<Schedule>,
    /// A prior on the learned scales: `(strength: a, scale: s₀)` adds
    /// `(T a / N) Σ_j (ln s_j + s₀/s_j)` to the objective (see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_prior: Option<ScalePrior>,
    /// The reject option (mixture only): a background component of fixed energy `E₀` ("none of
    /// the above") joins every log-sum-exp. Written `background` in the file.
    #[serde(rename = "background", default, skip_serializing_if = "Option::is_none")]
    pub reject_energy: Option<f64>,
    /// The normalisation boundary (mixture only): gradient descent on a sum of independent
    /// kernels `−(T/N) Σ_i Σ_j e^{−E_ij/T}` instead of the mean free energy; explicit EM keeps the
    /// normalised objective beside it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unnormalised: bool,
    /// Semi-supervision (cross-entropy only): labelled points clamp their responsibilities,
    /// unlabelled ones stay latent; the objective becomes the generative `J_S`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semi_supervised: bool,
    /// The fraction of labelled points that keep their label (the others become unlabelled; a
    /// seeded choice that keeps at least one point of every class), in `(0, 1]`.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub labelled_fraction: f64,
    /// Retrieval probes: queries `ξ₀` (each of dimension `D`) that the window iterates
    /// `ξ ← Σ_j r_j(ξ) μ_j` from (attention as retrieval, modern Hopfield).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Vec<f64>>,
    /// A twin that opens beside the lab with one choice flipped (`Volume`, `ScalePrior`,
    /// `SemiSupervised`, `Normalisation`, `RejectOption`, `Metric`, `Form`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin: Option<crate::session::twin::Flip>,
}

fn one_usize() -> usize {
    1
}
fn two() -> usize {
    2
}
fn yes() -> bool {
    true
}
fn one_f64() -> f64 {
    1.0
}
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(v: &f64) -> bool {
    *v == 1.0
}
fn default_scale_floor() -> f64 {
    1e-6
}
fn default_reg_covar() -> f64 {
    crate::core::model::DEFAULT_REG_COVAR
}
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_default_reg_covar(v: &f64) -> bool {
    *v == crate::core::model::DEFAULT_REG_COVAR
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn default_steps() -> usize {
    200
}

impl Default for Preset {
    /// What runs without `--preset`: a mixture on three blobs, only the prototypes learned,
    /// one shared learning rate.
    fn default() -> Self {
        Self {
            name: "Default: three blobs".into(),
            description: "A mixture of three prototypes on three blobs; only the prototypes learn.".into(),
            objective: ObjectiveSpec::Mixture,
            temperature: 1.0,
            learning_rate: 0.5,
            rate: RateMode::Shared,
            learn: Learn::default(),
            metric: Structure::Spherical,
            form: Form::Prototype,
            reg_covar: default_reg_covar(),
            scale_floor: default_scale_floor(),
            initial_scale: 1.0,
            seed: 0,
            steps: default_steps(),
            data: DataSpec::Blobs {
                k: 3,
                n: 300,
                dim: 2,
                spread: 5.0,
                std: 0.8,
            },
            standardise: Standardise::None,
            prototypes: InitSpec::KMeansPlusPlus { k: 3, seed: None },
            anneal: None,
            scale_prior: None,
            reject_energy: None,
            unnormalised: false,
            semi_supervised: false,
            labelled_fraction: 1.0,
            probes: Vec::new(),
            twin: None,
        }
    }
}

/// A preset that could not be read, parsed, validated or built. `Display` gives the whole
/// message: where (file, line, column), which field, and what is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetError {
    /// The message.
    pub message: String,
    /// The field path (`prototypes.k`) of a validation error, when there is one.
    pub field: Option<String>,
}

impl PresetError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// Adds the file name and the line of the field (found in the preset's `text`) in front of
    /// a validation message.
    #[must_use]
    pub fn located(mut self, source: &str, text: &str) -> Self {
        let line = self.field.as_deref().and_then(|f| locate_field(text, f));
        self.message = match (line, &self.field) {
            (Some(line), _) => format!("{source}, line {line}: {}", self.message),
            // A field the file does not write: its default is what is out of range.
            (None, Some(_)) => format!("{source} (a default the file does not write): {}", self.message),
            (None, None) => format!("{source}: {}", self.message),
        };
        self
    }
}

impl std::fmt::Display for PresetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PresetError {}

fn at(p: &ron::error::Position) -> String {
    format!("line {}, column {}", p.line, p.col)
}

/// A parser's message, which may quote the input, with control characters escaped and at most
/// 300 characters.
fn capped(message: &impl std::fmt::Display) -> String {
    csv::quote_at_most(&message.to_string(), 300)
}

fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Parses RON text. `source` names the file in messages.
///
/// # Errors
/// The message names the line, column and field path of the first problem.
pub fn parse(text: &str, source: &str) -> Result<Preset, PresetError> {
    let options = ron_options();
    let mut de = ron::Deserializer::from_str_with_options(text, &options)
        .map_err(|e| PresetError::new(format!("{source}: {}: {}", at(&e.span.start), capped(&e.code))))?;
    let result: Result<Preset, _> = serde_path_to_error::deserialize(&mut de);
    match result {
        Ok(p) => {
            de.end().map_err(|e| {
                let e = de.span_error(e);
                PresetError::new(format!(
                    "{source}: {}: {} (after the preset)",
                    at(&e.span.start),
                    capped(&e.code)
                ))
            })?;
            Ok(p)
        }
        Err(err) => {
            // Segments serde could not name print as `?`: drop them rather than say "in field `?`".
            let full = err.path().to_string();
            let path = full
                .split('.')
                .take_while(|part| *part != "?")
                .collect::<Vec<_>>()
                .join(".");
            let e = de.span_error(err.into_inner());
            let field = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!(" in field `{}`", capped(&path))
            };
            Err(PresetError::new(format!(
                "{source}: {}{field}: {}",
                at(&e.span.start),
                capped(&e.code)
            )))
        }
    }
}

/// Reads and parses a preset file.
///
/// # Errors
/// A missing file, or a parse error ([`parse`]).
pub fn load(path: &Path) -> Result<Preset, PresetError> {
    let text = read(path)?;
    parse(&text, &path.display().to_string())
}

fn read(path: &Path) -> Result<String, PresetError> {
    std::fs::read_to_string(path).map_err(|e| PresetError::new(format!("cannot read preset {}: {e}", path.display())))
}

/// Reads, parses and validates a preset file; a validation error names the file and the
/// line of the offending field.
///
/// # Errors
/// As [`load`] and [`Preset::validate`].
pub fn load_valid(path: &Path) -> Result<ValidPreset, PresetError> {
    let text = read(path)?;
    let source = path.display().to_string();
    parse(&text, &source)?.validate().map_err(|e| e.located(&source, &text))
}

/// The canonical RON text of a preset (what Save writes).
#[must_use]
pub fn to_ron(preset: &Preset) -> String {
    let config = ron::ser::PrettyConfig::new()
        .extensions(ron::extensions::Extensions::IMPLICIT_SOME)
        .struct_names(false)
        .compact_arrays(true)
        .indentor("    ");
    let mut text = ron::ser::to_string_pretty(preset, config).expect("a preset always serialises");
    text.push('\n');
    text
}

/// Saves a preset atomically.
///
/// # Errors
/// When the file cannot be written; an existing file is left as it was.
pub fn save(path: &Path, preset: &Preset) -> Result<(), String> {
    crate::preset::io::write_atomic(path, to_ron(preset).as_bytes())
}

/// The 1-based line of a field in the preset text, found by walking the field path
/// (`prototypes.k`, `data.clouds[2].std`) through `name:` occurrences; an index `[n]` moves to
/// the `n`-th element of the list or tuple that follows. A path that is not found is shortened
/// (a trailing ` (…)` note, then its last part, repeatedly), so a value left at its default is
/// reported at the line of the nearest enclosing field that the file writes. `None` when not
/// even the first part is in the file.
#[must_use]
pub fn locate_field(text: &str, path: &str) -> Option<usize> {
    let path = path.split(" (").next().unwrap_or(path);
    let mut parts: Vec<&str> = path.split('.').collect();
    while !parts.is_empty() {
        if let Some(pos) = walk_path(text, &parts) {
            return Some(text[..pos].lines().count().max(1));
        }
        parts.pop();
    }
    None
}

/// The byte offset just after the last part of `parts` in `text`, if every part is found.
fn walk_path(text: &str, parts: &[&str]) -> Option<usize> {
    let mut from = 0;
    for part in parts {
        let (name, indices) = match part.find('[') {
            Some(b) => (&part[..b], &part[b..]),
            None => (*part, ""),
        };
        let needle = format!("{name}:");
        let rel = text[from..].match_indices(&needle).find(|(pos, _)| {
            let before = text[..from + pos].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })?;
        from += rel.0 + needle.len();
        for index in indices.split(['[', ']']).filter(|i| !i.is_empty()) {
            from = element_start(text, from, index.parse().ok()?)?;
        }
    }
    Some(from)
}

/// The offset of element `n` of the bracketed list starting at or after `from` (its first
/// non-blank character), skipping nested brackets, strings and comments.
fn element_start(text: &str, from: usize, n: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from + text[from..].find(['[', '('])? + 1;
    let mut depth = 0usize;
    let mut element = 0usize;
    let mut at_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        if at_start && !c.is_ascii_whitespace() {
            if element == n && depth == 0 {
                return (c != b']' && c != b')').then_some(i);
            }
            at_start = false;
        }
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(text.len() - i);
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'(' => depth += 1,
            b']' | b')' if depth == 0 => return None,
            b']' | b')' => depth -= 1,
            b',' if depth == 0 => {
                element += 1;
                at_start = true;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A preset whose every value is in range; [`ValidPreset::build`] starts the experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidPreset {
    preset: Preset,
    /// Bytes a build may plan for ([`budget`]); `None`: the memory available.
    memory_limit: Option<f64>,
    /// Steps the run will record, for the estimate; `None`: the preset's `steps`.
    planned_steps: Option<usize>,
}

fn range_error(field: &str, rule: &str, got: impl std::fmt::Display) -> PresetError {
    field_error(field, format!("{rule}, got {got}"))
}

fn field_error(field: &str, what: impl std::fmt::Display) -> PresetError {
    PresetError {
        message: format!("field `{field}`: {what}"),
        field: Some(field.to_string()),
    }
}

fn positive(field: &str, v: f64) -> Result<(), PresetError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(range_error(field, "must be a finite number > 0", readable(v)))
    }
}

/// A temperature: within [`MIN_TEMPERATURE`, `MAX_TEMPERATURE`].
pub fn temperature(field: &str, v: f64) -> Result<(), PresetError> {
    if (MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&v) {
        Ok(())
    } else {
        Err(range_error(
            field,
            &format!("must lie in [{MIN_TEMPERATURE:e}, {MAX_TEMPERATURE:e}] (beyond, T ln K or E/T overflow)"),
            readable(v),
        ))
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), PresetError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(range_error(field, "must be a finite number ≥ 0", readable(v)))
    }
}

fn at_least_one(field: &str, v: usize) -> Result<(), PresetError> {
    if v >= 1 {
        Ok(())
    } else {
        Err(range_error(field, "must be at least 1", v))
    }
}

fn finite_rows(field: &str, rows: &[Vec<f64>]) -> Result<(), PresetError> {
    for (r, row) in rows.iter().enumerate() {
        if let Some(v) = row.iter().find(|v| !v.is_finite()) {
            return Err(field_error(
                &format!("{field}[{r}]"),
                format!("entry {r} has a non-finite number ({v})"),
            ));
        }
        if let Some(v) = row.iter().find(|v| v.abs() > data::MAX_COORDINATE) {
            return Err(field_error(
                &format!("{field}[{r}]"),
                format!(
                    "entry {r} has {v:e}, outside ±{:e} (squared distances would overflow)",
                    data::MAX_COORDINATE
                ),
            ));
        }
    }
    Ok(())
}

/// Largest spread, standard deviation or noise a generator accepts: it keeps every generated
/// coordinate well within [`data::MAX_COORDINATE`].
pub const MAX_GENERATOR_SCALE: f64 = 1e98;

/// A generator's scale: finite, ≥ 0 and at most [`MAX_GENERATOR_SCALE`].
fn generator_scale(field: &str, v: f64) -> Result<(), PresetError> {
    non_negative(field, v)?;
    if v > MAX_GENERATOR_SCALE {
        return Err(range_error(
            field,
            &format!(
                "must be at most {MAX_GENERATOR_SCALE:e} (so generated coordinates stay within ±{:e})",
                data::MAX_COORDINATE
            ),
            format!("{v:e}"),
        ));
    }
    Ok(())
}

/// Checks `data.soft`: one entry per point, vectors of one length that are probabilities, and no
/// point with both a label and a soft label.
fn check_inline_soft(soft: &[Option<Vec<f64>>], n: usize, labels: Option<&[Option<u32>]>) -> Result<(), PresetError> {
    if soft.len() != n {
        return Err(field_error(
            "data.soft",
            format!("needs one entry per point ({n}), got {}", soft.len()),
        ));
    }
    let mut classes = None;
    for (i, p) in soft.iter().enumerate() {
        let Some(p) = p else { continue };
        if p.len() < 2 || classes.is_some_and(|c| c != p.len()) {
            return Err(field_error(
                "data.soft",
                format!(
                    "point {i}'s soft label has {} classes; every soft label needs one common length of at least 2{}",
                    p.len(),
                    classes.map_or(String::new(), |c| format!(" (the first has {c})"))
                ),
            ));
        }
        classes = Some(p.len());
        data::check_soft(p).map_err(|e| field_error("data.soft", format!("point {i}: {e}")))?;
        if labels.is_some_and(|l| l[i].is_some()) {
            return Err(field_error(
                "data.soft",
                format!("point {i} has both a label and a soft label; give one (write None in `labels`)"),
            ));
        }
    }
    Ok(())
}

/// Checks `data`: the ranges of each kind of data set and the shape of inline points.
fn validate_data(data: &DataSpec) -> Result<(), PresetError> {
    match data {
        DataSpec::Blobs { k, n, dim, spread, std } => {
            at_least_one("data.k", *k)?;
            at_least_one("data.n", *n)?;
            at_least_one("data.dim", *dim)?;
            if k > n {
                return Err(range_error(
                    "data.k",
                    &format!("must be at most data.n = {n} (the n points are split among the k blobs)"),
                    k,
                ));
            }
            generator_scale("data.spread", *spread)?;
            generator_scale("data.std", *std)?;
        }
        DataSpec::Gaussians { clouds } => validate_clouds(clouds)?,
        DataSpec::Moons { n, noise } => {
            at_least_one("data.n", *n)?;
            generator_scale("data.noise", *noise)?;
        }
        DataSpec::Wave { n, dim, noise } => {
            at_least_one("data.n", *n)?;
            at_least_one("data.dim", *dim)?;
            generator_scale("data.noise", *noise)?;
        }
        DataSpec::Inline {
            points,
            labels,
            targets,
            soft,
        } => validate_inline(points, labels.as_deref(), targets.as_deref(), soft.as_deref())?,
        DataSpec::Csv { path } => {
            if path.is_empty() {
                return Err(range_error("data.path", "must name a CSV file", "an empty path"));
            }
        }
    }
    Ok(())
}

/// Checks `data.clouds`: at least one cloud, one dimension for all, finite means and spreads ≥ 0.
fn validate_clouds(clouds: &[CloudSpec]) -> Result<(), PresetError> {
    if clouds.is_empty() {
        return Err(range_error("data.clouds", "needs at least one cloud", 0));
    }
    let dim = clouds[0].mean.len();
    at_least_one("data.clouds.mean (length)", dim)?;
    for (c, cloud) in clouds.iter().enumerate() {
        if cloud.mean.len() != dim || !(cloud.std.len() == dim || cloud.std.len() == 1) {
            return Err(field_error(
                &format!("data.clouds[{c}]"),
                format!(
                    "cloud {c} has mean of length {} and std of length {}; every mean needs length {dim} and std length {dim} or 1",
                    cloud.mean.len(),
                    cloud.std.len()
                ),
            ));
        }
        finite_rows(&format!("data.clouds[{c}].mean"), std::slice::from_ref(&cloud.mean))?;
        for &s in &cloud.std {
            generator_scale(&format!("data.clouds[{c}].std"), s)?;
        }
    }
    Ok(())
}

/// Checks inline `data`: points of one dimension, finite; labels, targets and soft labels per point.
fn validate_inline(
    points: &[Vec<f64>],
    labels: Option<&[Option<u32>]>,
    targets: Option<&[Vec<f64>]>,
    soft: Option<&[Option<Vec<f64>>]>,
) -> Result<(), PresetError> {
    if points.is_empty() {
        return Err(range_error("data.points", "needs at least one point", 0));
    }
    let dim = points[0].len();
    at_least_one("data.points (coordinates per point)", dim)?;
    if let Some(r) = points.iter().position(|p| p.len() != dim) {
        return Err(field_error(
            "data.points",
            format!("point {r} has {} coordinates, point 0 has {dim}", points[r].len()),
        ));
    }
    finite_rows("data.points", points)?;
    if labels.is_some_and(|l| l.len() != points.len()) {
        return Err(field_error(
            "data.labels",
            format!("needs one label per point ({})", points.len()),
        ));
    }
    if let Some(t) = targets {
        if t.len() != points.len() || t.iter().any(|r| r.len() != t[0].len()) || t[0].is_empty() {
            return Err(field_error(
                "data.targets",
                format!(
                    "needs one non-empty target array of one common length per point ({})",
                    points.len()
                ),
            ));
        }
        finite_rows("data.targets", t)?;
    }
    if let Some(soft) = soft {
        check_inline_soft(soft, points.len(), labels)?;
    }
    Ok(())
}

/// Checks `prototypes`: `K` in range and, for explicit ones, the lengths and ranges of every array.
fn validate_init(init: &InitSpec, scale_floor: f64) -> Result<(), PresetError> {
    match init {
        InitSpec::KMeansPlusPlus { k, .. } | InitSpec::Random { k, .. } => {
            at_least_one("prototypes.k", *k)?;
            if *k > MAX_COMPONENTS {
                return Err(range_error(
                    "prototypes.k",
                    &format!("must be at most {MAX_COMPONENTS}"),
                    k,
                ));
            }
        }
        InitSpec::Explicit {
            positions,
            classes,
            values,
            weights,
            scales,
            ..
        } => {
            if positions.is_empty() {
                return Err(range_error(
                    "prototypes.positions",
                    "needs at least one prototype (K ≥ 1)",
                    0,
                ));
            }
            if positions.len() > MAX_COMPONENTS {
                return Err(range_error(
                    "prototypes.positions",
                    &format!("must hold at most {MAX_COMPONENTS} prototypes"),
                    positions.len(),
                ));
            }
            finite_rows("prototypes.positions", positions)?;
            let k = positions.len();
            let len_ok = |n: Option<usize>| n.is_none_or(|n| n == k);
            if !len_ok(classes.as_ref().map(Vec::len))
                || !len_ok(values.as_ref().map(Vec::len))
                || !len_ok(weights.as_ref().map(Vec::len))
                || !len_ok(scales.as_ref().map(Vec::len))
            {
                return Err(field_error(
                    "prototypes",
                    format!("classes, values, weights and scales need one entry per prototype ({k})"),
                ));
            }
            if let Some(v) = values {
                finite_rows("prototypes.values", v)?;
            }
            for &w in weights.iter().flatten() {
                positive("prototypes.weights", w)?;
            }
            for &s in scales.iter().flatten() {
                positive("prototypes.scales", s)?;
                if s < scale_floor {
                    return Err(range_error(
                        "prototypes.scales",
                        &format!("must be ≥ scale_floor ({scale_floor})"),
                        s,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Refuses data with a coordinate or target beyond [`data::MAX_COORDINATE`] (a generator's
/// extreme spread, or a file's), naming the point.
fn check_coordinates(data: &Dataset) -> Result<(), PresetError> {
    let limit = data::MAX_COORDINATE;
    let far = |v: &[f64], width: usize| {
        v.iter()
            .position(|x| x.abs() > limit)
            .map(|at| (at / width.max(1), v[at]))
    };
    if let Some((i, v)) = far(&data.points, data.dim) {
        return Err(field_error(
            "data",
            format!(
                "point {i} has coordinate {v:e}; coordinates must lie within ±{limit:e} (squared distances would overflow)"
            ),
        ));
    }
    if let Some((i, v)) = far(&data.targets, data.target_dim) {
        return Err(field_error(
            "data",
            format!("point {i} has target {v:e}; targets must lie within ±{limit:e}"),
        ));
    }
    Ok(())
}

/// Keeps each label (hard or soft) with probability `fraction` (seeded), and always the first
/// point of each class, so every class stays present.
pub fn hide_labels(data: &mut Dataset, fraction: f64, seed: u64) {
    use rand::RngExt;
    let mut rng = crate::core::data::rng(seed ^ 0x1abe_11ed);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..data.labels.len() {
        let keep = rng.random_range(0.0..1.0) < fraction;
        if let Some(c) = data.labels[i]
            && seen.insert(c)
        {
            continue;
        }
        if !keep {
            data.labels[i] = None;
        }
    }
    let labels = &data.labels;
    data.soft.retain(|i| labels[i].is_some());
}

/// The maps `W_j` (upper Cholesky factors) of explicit precisions, checked against the
/// structure: `K` symmetric positive-definite `D × D` matrices, diagonal for `Diag`, all equal
/// for `Tied` (or one matrix).
fn initial_maps(ps: &[Vec<Vec<f64>>], structure: Structure, k: usize, dim: usize) -> Result<Vec<f64>, PresetError> {
    if !structure.has_maps() {
        return Err(field_error(
            "prototypes.precisions",
            "precisions set the maps of metric Diag, Full or Tied; spherical components take `scales`",
        ));
    }
    let ps: Vec<Vec<Vec<f64>>> = if structure == Structure::Tied && ps.len() == 1 {
        vec![ps[0].clone(); k]
    } else {
        ps.to_vec()
    };
    if ps.len() != k {
        return Err(field_error(
            "prototypes.precisions",
            format!("needs one matrix per prototype ({k}), got {}", ps.len()),
        ));
    }
    let mut maps = Vec::with_capacity(k * dim * dim);
    for (j, m) in ps.iter().enumerate() {
        let field = format!("prototypes.precisions[{j}]");
        if m.len() != dim || m.iter().any(|r| r.len() != dim) {
            return Err(field_error(
                &field,
                format!("must be a {dim} × {dim} matrix (D × D), rows as arrays"),
            ));
        }
        let flat = m.concat();
        if structure == Structure::Diag && !crate::core::metric::fits(structure, &flat, dim) {
            return Err(field_error(&field, "metric Diag needs diagonal precisions"));
        }
        if structure == Structure::Tied && m != &ps[0] {
            return Err(field_error(
                &field,
                "metric Tied shares one precision: every matrix must equal the first",
            ));
        }
        let w = crate::core::metric::cholesky_upper(&flat, dim).ok_or_else(|| {
            field_error(
                &field,
                "must be symmetric positive definite (its Cholesky factorisation failed)",
            )
        })?;
        if w.iter()
            .any(|v| !v.is_finite() || v.abs() > crate::core::data::MAX_COORDINATE)
        {
            return Err(field_error(
                &field,
                "its Cholesky factor must be finite and within ±1e100",
            ));
        }
        maps.extend(w);
    }
    Ok(maps)
}

/// Largest `K` accepted (the views and the check table grow with it).
pub const MAX_COMPONENTS: usize = 1024;

impl Preset {
    /// What of this preset may change live: the one mapping from a preset to
    /// [`RunSettings`] (its inverse is [`Preset::set_run_settings`]).
    #[must_use]
    pub fn run_settings(&self) -> RunSettings {
        RunSettings {
            temperature: self.temperature,
            optimiser: Optimiser {
                learning_rate: self.learning_rate,
                rate: self.rate,
            },
            learn_weights: self.learn.weights,
            learn_scales: self.learn.scales,
            volume: self.learn.volume,
            scale_floor: self.scale_floor,
            scale_prior: self.scale_prior,
            reject_energy: self.reject_energy,
            unnormalised: self.unnormalised,
            semi_supervised: self.semi_supervised,
            form: self.form,
            reg_covar: self.reg_covar,
        }
    }

    /// Writes `settings` into the preset's fields (the inverse of [`Preset::run_settings`]).
    pub fn set_run_settings(&mut self, settings: RunSettings) {
        let RunSettings {
            temperature,
            optimiser,
            learn_weights,
            learn_scales,
            volume,
            scale_floor,
            scale_prior,
            reject_energy,
            unnormalised,
            semi_supervised,
            form,
            reg_covar,
        } = settings;
        self.form = form;
        self.reg_covar = reg_covar;
        self.temperature = temperature;
        self.learning_rate = optimiser.learning_rate;
        self.rate = optimiser.rate;
        self.learn.weights = learn_weights;
        self.learn.scales = learn_scales;
        self.learn.volume = volume;
        self.scale_floor = scale_floor;
        self.scale_prior = scale_prior;
        self.reject_energy = reject_energy;
        self.unnormalised = unnormalised;
        self.semi_supervised = semi_supervised;
    }

    /// Checks every value that can be checked without the data.
    ///
    /// # Errors
    /// The first out-of-range value, naming its field and the allowed range.
    pub fn validate(&self) -> Result<ValidPreset, PresetError> {
        self.validate_scalars()?;
        validate_data(&self.data)?;
        validate_init(&self.prototypes, self.scale_floor)?;
        Ok(ValidPreset {
            preset: self.clone(),
            memory_limit: None,
            planned_steps: None,
        })
    }

    /// The metric's fields: `reg_covar`, and a structure the objective and options can use.
    fn validate_metric(&self) -> Result<(), PresetError> {
        if !(self.reg_covar > 0.0 && self.reg_covar.is_finite()) {
            return Err(range_error(
                "reg_covar",
                "must be positive and finite (scikit-learn's default is 1e-6)",
                self.reg_covar,
            ));
        }
        if self.metric.has_maps() {
            if matches!(
                self.objective,
                ObjectiveSpec::Attention {
                    score: Score::DotProduct
                }
            ) {
                return Err(field_error(
                    "metric",
                    "dot-product attention compares by −x·μ and has no metric (use score: Distance, or metric: Spherical)",
                ));
            }
            if self.scale_prior.is_some() {
                return Err(field_error(
                    "scale_prior",
                    "the scale prior acts on spherical scales; remove it or use metric: Spherical",
                ));
            }
        }
        if self.form == Form::Neural {
            if matches!(
                self.objective,
                ObjectiveSpec::Attention {
                    score: Score::DotProduct
                }
            ) {
                return Err(field_error(
                    "form",
                    "the neural form z = W x + b needs distance scores (dot-product attention has no metric)",
                ));
            }
            if self.scale_prior.is_some() {
                return Err(field_error(
                    "scale_prior",
                    "the scale prior acts on the prototype form's log-scales; use form: Prototype with it",
                ));
            }
        }
        positive("initial_scale", self.initial_scale)?;
        Ok(())
    }

    /// Checks the scalar fields and the options that depend on the objective, in order.
    fn validate_scalars(&self) -> Result<(), PresetError> {
        temperature("temperature", self.temperature)?;
        positive("learning_rate", self.learning_rate)?;
        positive("scale_floor", self.scale_floor)?;
        self.validate_metric()?;
        if let Some(prior) = &self.scale_prior {
            positive("scale_prior.strength", prior.strength)?;
            positive("scale_prior.scale", prior.scale)?;
        }
        if let Some(e0) = self.reject_energy {
            if !e0.is_finite() {
                return Err(range_error("background", "must be a finite energy", e0));
            }
            if self.objective != ObjectiveSpec::Mixture {
                return Err(field_error(
                    "background",
                    "the reject option (a background component) is available for the Mixture objective only",
                ));
            }
        }
        if !(self.labelled_fraction > 0.0 && self.labelled_fraction <= 1.0) {
            return Err(range_error(
                "labelled_fraction",
                "must lie in (0, 1]",
                self.labelled_fraction,
            ));
        }
        if self.semi_supervised && !matches!(self.objective, ObjectiveSpec::CrossEntropy { .. }) {
            return Err(field_error(
                "semi_supervised",
                "semi-supervision clamps the classes of the CrossEntropy objective; choose CrossEntropy",
            ));
        }
        if self.unnormalised && self.objective != ObjectiveSpec::Mixture {
            return Err(field_error(
                "unnormalised",
                "the sum-of-kernels objective is a variant of the Mixture objective only",
            ));
        }
        if let Some(schedule) = &self.anneal {
            schedule
                .check()
                .map_err(|(field, message)| field_error(&format!("anneal.{field}"), message))?;
        }
        if self.initial_scale < self.scale_floor {
            return Err(range_error(
                "initial_scale",
                &format!("must be ≥ scale_floor ({})", self.scale_floor),
                self.initial_scale,
            ));
        }
        if let ObjectiveSpec::CrossEntropy { per_class } = self.objective {
            at_least_one("objective.per_class", per_class)?;
            if per_class > MAX_COMPONENTS {
                return Err(range_error(
                    "objective.per_class",
                    &format!("must be at most {MAX_COMPONENTS}"),
                    per_class,
                ));
            }
        }
        if matches!(
            self.objective,
            ObjectiveSpec::Attention {
                score: Score::DotProduct
            }
        ) && self.learn.scales
        {
            return Err(field_error(
                "learn.scales",
                "dot-product attention has no scales to learn (use score: Distance, or scales: false)",
            ));
        }
        Ok(())
    }

    /// The regime this preset runs.
    #[must_use]
    pub fn regime(&self) -> Regime {
        match self.objective {
            ObjectiveSpec::Mixture => Regime::Mixture,
            ObjectiveSpec::Attention { score } => Regime::Attention { score },
            ObjectiveSpec::CrossEntropy { .. } => Regime::CrossEntropy,
        }
    }
}

/// `base`'s experiment rebuilt around the points of the CSV file at `path` (File → Open data,
/// `implicit-em-lab points.csv`): the same objective and settings, the data from the file (its
/// absolute path, so a preset saved anywhere finds it), `k` prototypes seeded by k-means++ (for
/// cross-entropy, classes × prototypes per class, counted in the file), no probes (they were
/// positions in the old data). Unlabelled data under cross-entropy switch to the mixture,
/// which needs no labels. Returns the preset and a note of what was adapted.
///
/// # Errors
/// The file cannot be read or parsed (the message names the file, line and column).
pub fn around_data(base: &Preset, path: &Path, k: usize) -> Result<(Preset, Option<String>), PresetError> {
    let absolute = std::path::absolute(path).map_err(|e| PresetError::new(format!("{}: {e}", path.display())))?;
    let file = absolute
        .file_name()
        .map_or_else(|| absolute.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut p = base.clone();
    p.data = DataSpec::Csv {
        path: absolute.display().to_string(),
    };
    let data = make_data(&p.data, p.seed, &DataRoot::of_file(&absolute))?;
    let classes = data.class_count();
    let mut note = None;
    let k = match p.objective {
        ObjectiveSpec::CrossEntropy { per_class } if classes > 0 => classes.saturating_mul(per_class),
        ObjectiveSpec::CrossEntropy { .. } => {
            p.objective = ObjectiveSpec::Mixture;
            p.semi_supervised = false;
            note = Some(format!("{file} has no labels, so the objective is now the mixture"));
            k
        }
        _ => k,
    };
    p.prototypes = InitSpec::KMeansPlusPlus {
        k: k.clamp(1, data.len().max(1)),
        seed: None,
    };
    p.probes.clear();
    p.anneal = None;
    p.name = file.clone();
    let labels = if classes > 0 {
        format!(", {classes} classes")
    } else {
        String::new()
    };
    p.description = format!(
        "{} points x {} coordinates from {}{labels}.",
        data.len(),
        data.dim,
        absolute.display()
    );
    Ok((p, note))
}

/// Generates or reads the data a spec describes. `root` resolves relative CSV paths.
///
/// # Errors
/// A CSV file that is missing or does not parse.
pub fn make_data(spec: &DataSpec, seed: u64, root: &DataRoot) -> Result<Dataset, PresetError> {
    let err = PresetError::new;
    Ok(match spec {
        DataSpec::Blobs { k, n, dim, spread, std } => data::blobs(*k, *n, *dim, *spread, *std, seed),
        DataSpec::Gaussians { clouds } => {
            let clouds: Vec<Cloud> = clouds
                .iter()
                .map(|c| Cloud {
                    mean: c.mean.clone(),
                    std: if c.std.len() == 1 {
                        vec![c.std[0]; c.mean.len()]
                    } else {
                        c.std.clone()
                    },
                    count: c.count,
                    label: c.label,
                })
                .collect();
            data::gaussians(&clouds, seed)
        }
        DataSpec::Moons { n, noise } => data::moons(*n, *noise, seed),
        DataSpec::Wave { n, dim, noise } => data::wave(*n, *dim, *noise, seed),
        DataSpec::Inline {
            points,
            labels,
            targets,
            soft,
        } => {
            let mut data = Dataset {
                dim: points[0].len(),
                target_dim: targets.as_ref().map_or(0, |t| t[0].len()),
                ..Dataset::default()
            };
            for (i, p) in points.iter().enumerate() {
                let label = labels.as_ref().and_then(|l| l[i]);
                let t = targets.as_ref().map_or(&[][..], |t| &t[i][..]);
                match soft.as_ref().and_then(|s| s[i].as_ref()) {
                    Some(q) => data.push_soft(p, q, t),
                    None => data.push(p, label, t),
                }
            }
            data
        }
        DataSpec::Csv { path } if *root == DataRoot::Bundled => {
            let text = BUNDLED_DATA
                .iter()
                .find(|(name, _)| *name == path.as_str())
                .map(|(_, text)| *text)
                .ok_or_else(|| {
                    err(format!(
                        "{} is not one of the data files compiled into the lab",
                        csv::quote_at_most(path, 200)
                    ))
                })?;
            csv::parse_csv(text, path).map_err(err)?
        }
        DataSpec::Csv { path } => {
            let full: PathBuf = match root {
                DataRoot::Folder(folder) => folder.join(path),
                DataRoot::Bundled => PathBuf::from(path),
            };
            crate::preset::io::read_csv(&full).map_err(err)?
        }
    })
}

/// Where a preset's relative CSV paths resolve: a folder (the preset file's), or the data files
/// compiled into the binary (a bundled preset's, so they are found wherever the lab runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataRoot {
    /// [`BUNDLED_DATA`].
    Bundled,
    /// A folder.
    Folder(PathBuf),
}

impl DataRoot {
    /// The folder of the file at `path` (`.` for a bare file name).
    #[must_use]
    pub fn of_file(path: &Path) -> Self {
        Self::Folder(
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        )
    }
}

impl From<&Path> for DataRoot {
    fn from(folder: &Path) -> Self {
        Self::Folder(folder.to_path_buf())
    }
}

impl From<&PathBuf> for DataRoot {
    fn from(folder: &PathBuf) -> Self {
        Self::Folder(folder.clone())
    }
}

/// The CSV files the bundled presets read, compiled in (name, text).
pub const BUNDLED_DATA: [(&str, &str); 7] = [
    ("soft-labels.csv", include_str!("../../presets/soft-labels.csv")),
    ("old-faithful.csv", include_str!("../../presets/old-faithful.csv")),
    (
        "anisotropic-blobs.csv",
        include_str!("../../presets/anisotropic-blobs.csv"),
    ),
    ("collinear.csv", include_str!("../../presets/collinear.csv")),
    ("iris.csv", include_str!("../../presets/iris.csv")),
    ("penguins.csv", include_str!("../../presets/penguins.csv")),
    ("digits.csv", include_str!("../../presets/digits.csv")),
];

impl DataSpec {
    /// The data written out point by point (what the window saves after edits): labels, soft
    /// labels and targets as they are now.
    #[must_use]
    pub fn inline(data: &Dataset) -> Self {
        Self::Inline {
            points: (0..data.len()).map(|i| data.point(i).to_vec()).collect(),
            // A soft-labelled point's label is derived from its soft label, so it is written once.
            labels: data.labels.iter().any(Option::is_some).then(|| {
                (0..data.len())
                    .map(|i| {
                        if data.soft.get(i).is_some() {
                            None
                        } else {
                            data.labels[i]
                        }
                    })
                    .collect()
            }),
            targets: (data.target_dim > 0).then(|| {
                (0..data.len())
                    .map(|i| data.targets[i * data.target_dim..(i + 1) * data.target_dim].to_vec())
                    .collect()
            }),
            soft: (!data.soft.is_empty())
                .then(|| (0..data.len()).map(|i| data.soft.get(i).map(<[f64]>::to_vec)).collect()),
        }
    }
}

impl ValidPreset {
    /// The preset.
    #[must_use]
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// Sets the memory a build may plan for, in bytes (`None`: what the machine has available)
    /// and the steps the run will record (`None`: the preset's `steps`).
    #[must_use]
    pub fn with_budget(mut self, memory_limit: Option<f64>, planned_steps: Option<usize>) -> Self {
        self.memory_limit = memory_limit;
        self.planned_steps = planned_steps;
        self
    }

    /// The memory limit in bytes: the one set, or what is available (unbounded when unknown).
    fn limit(&self) -> f64 {
        self.memory_limit
            .or_else(crate::preset::io::available_memory)
            .unwrap_or(f64::INFINITY)
    }

    /// The sizes the data spec names before anything is generated or read (`None` for a CSV
    /// file, known only once read), with `K` from the prototypes.
    fn planned_sizes(&self) -> Option<budget::Sizes> {
        let p = &self.preset;
        let (n, dim, target_dim, centres) = match &p.data {
            DataSpec::Blobs { k, n, dim, .. } => (*n as f64, *dim as f64, 0.0, *k as f64 * *dim as f64),
            DataSpec::Gaussians { clouds } => (
                clouds.iter().map(|c| c.count as f64).sum(),
                clouds.first().map_or(0.0, |c| c.mean.len() as f64),
                0.0,
                0.0,
            ),
            DataSpec::Moons { n, .. } => (*n as f64, 2.0, 0.0, 0.0),
            DataSpec::Wave { n, dim, .. } => (*n as f64, *dim as f64, 1.0, 0.0),
            DataSpec::Inline { .. } | DataSpec::Csv { .. } => return None,
        };
        Some(budget::Sizes {
            n,
            dim,
            target_dim,
            k: self.planned_k(),
            centres,
            steps: self.steps() as f64,
            matrices: self.preset.metric.has_maps() || self.preset.learn.scales,
        })
    }

    /// The field that sets the number of points.
    fn data_field(&self) -> &'static str {
        match self.preset.data {
            DataSpec::Blobs { .. } | DataSpec::Moons { .. } | DataSpec::Wave { .. } => "data.n",
            DataSpec::Gaussians { .. } => "data.clouds",
            DataSpec::Inline { .. } => "data.points",
            DataSpec::Csv { .. } => "data.path",
        }
    }

    fn planned_k(&self) -> f64 {
        match &self.preset.prototypes {
            InitSpec::KMeansPlusPlus { k, .. } | InitSpec::Random { k, .. } => *k as f64,
            InitSpec::Explicit { positions, .. } => positions.len() as f64,
        }
    }

    fn steps(&self) -> usize {
        self.planned_steps.unwrap_or(self.preset.steps)
    }

    /// Refuses data sizes the memory limit cannot hold, before generating or reading them.
    fn check_planned_memory(&self, root: &DataRoot, limit: f64) -> Result<(), PresetError> {
        if let Some(sizes) = self.planned_sizes() {
            return budget::check(&sizes, limit, self.data_field());
        }
        if let (DataSpec::Csv { path }, DataRoot::Folder(folder)) = (&self.preset.data, root) {
            let full = folder.join(path);
            // The text, and the numbers parsed from it, are held at once.
            if let Some(size) = crate::preset::io::file_size(&full)
                && 3.0 * size as f64 > limit
            {
                return Err(field_error(
                    "data.path",
                    format!(
                        "{} is {}; reading it needs about {}, but the limit is {} (the memory available); raise it with --memory-limit GB",
                        crate::preset::io::shown(&full),
                        budget::human(size as f64),
                        budget::human(3.0 * size as f64),
                        budget::human(limit)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Makes the data and the initial state, starts both runs and, when the preset anneals,
    /// the schedule. `root` is where CSV paths resolve (the preset's folder, or the bundled data).
    ///
    /// # Errors
    /// Data that cannot be read or does not fit the objective, an initialisation that cannot
    /// be made (k-means++ with more prototypes than points), or a non-finite start.
    pub fn build(&self, root: impl Into<DataRoot>) -> Result<Session, PresetError> {
        let root = root.into();
        let p = &self.preset;
        let err = PresetError::new;
        let limit = self.limit();
        self.check_planned_memory(&root, limit)?;
        let mut data = make_data(&p.data, p.seed, &root)?;
        check_coordinates(&data)?;
        if p.standardise == Standardise::ZScore {
            standardise(&mut data);
        }
        let one_hot = matches!(p.objective, ObjectiveSpec::Attention { .. }) && data.target_dim == 0;
        budget::check(
            &budget::Sizes {
                n: data.len() as f64,
                dim: data.dim as f64,
                target_dim: if one_hot {
                    data.class_count().min(data::MAX_CLASSES + 1) as f64
                } else {
                    data.target_dim as f64
                },
                k: self.planned_k(),
                centres: 0.0,
                steps: self.steps() as f64,
                matrices: p.metric.has_maps() || p.learn.scales,
            },
            limit,
            self.data_field(),
        )?;
        if p.labelled_fraction < 1.0 {
            hide_labels(&mut data, p.labelled_fraction, p.seed);
        }
        let dim = data.dim;
        for (q, probe) in p.probes.iter().enumerate() {
            if probe.len() != dim || probe.iter().any(|v| !v.is_finite()) {
                return Err(field_error(
                    &format!("probes[{q}]"),
                    format!("probe {q} must have {dim} finite coordinates (the data's D), got {probe:?}"),
                ));
            }
        }
        let regime = p.regime();
        let classes_in_data = data.class_count();
        let (positions, classes) = self.initial_positions(&data)?;
        let mut settings = p.run_settings();
        if let Some(schedule) = p.anneal {
            settings.temperature = schedule.t0;
        }
        let spec = ModelSpec {
            regime,
            structure: p.metric,
            classes,
            settings,
        };
        if regime == Regime::CrossEntropy && classes_in_data == 0 {
            return Err(err(
                "cross-entropy needs labelled points: the data set has no labels (add a `label` column or labels)"
                    .into(),
            ));
        }
        let critical_temperature = data.critical_temperature();
        let problem = Problem::bind(data, spec).map_err(|e| match &p.data {
            DataSpec::Csv { path } => field_error("data.path", format!("{}: {}", csv::quote_at_most(path, 200), e.0)),
            _ => field_error("data", e.0),
        })?;
        let state = self.initial_state(positions, dim, problem.target_dim)?;
        let experiment = Experiment::new(problem, state, settings.optimiser).map_err(|e| err(e.reason))?;
        let mut session = Session::new(experiment, critical_temperature, p.anneal, p.seed)
            .map_err(|e| err(format!("annealing not started: {e}")))?;
        if let Some(flip) = p.twin
            && !session.set_twin(Some(flip))
        {
            return Err(field_error(
                "twin",
                format!(
                    "the twin '{}' does not apply here (it needs an objective and options it can flip, and no annealing)",
                    flip.label()
                ),
            ));
        }
        Ok(session)
    }

    /// The start both runs share: `positions` (`K × D`), scales or maps from `initial_scale`,
    /// and whatever `Explicit` prototypes give (values, weights, scales, precisions).
    fn initial_state(&self, positions: Vec<f64>, dim: usize, target_dim: usize) -> Result<State, PresetError> {
        let p = &self.preset;
        let positions_len = positions.len() / dim.max(1);
        let mut state = State::new(dim, positions, target_dim).with_structure(p.metric, p.initial_scale);
        let k = positions_len;
        state.log_scales = if p.metric.has_maps() {
            vec![0.0; k]
        } else {
            vec![p.initial_scale.ln(); k]
        };
        if let InitSpec::Explicit {
            values,
            weights,
            scales,
            ..
        } = &p.prototypes
        {
            if let Some(v) = values {
                if v.iter().any(|row| row.len() != target_dim) {
                    return Err(field_error(
                        "prototypes.values",
                        format!("each value needs {} entries (the target dimension)", target_dim),
                    ));
                }
                state.values = v.concat();
            }
            if let Some(w) = weights {
                state.log_weights = w.iter().map(|w| w.ln()).collect();
            }
            if let Some(s) = scales {
                if p.metric.has_maps() {
                    // A component with a map takes its scale as W_j = s_j^{−1/2} I.
                    let d = dim;
                    state.maps = s
                        .iter()
                        .flat_map(|&s| crate::core::metric::scaled_identity(d, s.powf(-0.5)))
                        .collect();
                    if p.metric == Structure::Tied && s.iter().any(|&v| v != s[0]) {
                        return Err(field_error(
                            "prototypes.scales",
                            "metric Tied shares one map: every scale must equal the first",
                        ));
                    }
                } else {
                    state.log_scales = s.iter().map(|s| s.ln()).collect();
                }
            }
        }
        if let InitSpec::Explicit {
            precisions: Some(ps), ..
        } = &p.prototypes
        {
            state.maps = initial_maps(ps, p.metric, k, dim)?;
        }
        Ok(state)
    }

    /// Initial positions (`K × D`) and, for cross-entropy, each prototype's class.
    fn initial_positions(&self, data: &Dataset) -> Result<(Vec<f64>, Vec<usize>), PresetError> {
        let p = &self.preset;
        let err = PresetError::new;
        let per_class = match p.objective {
            ObjectiveSpec::CrossEntropy { per_class } => Some(per_class),
            _ => None,
        };
        let classes_in_data = data.class_count();
        match &p.prototypes {
            InitSpec::Explicit { positions, classes, .. } => {
                if let Some(r) = positions.iter().position(|x| x.len() != data.dim) {
                    return Err(field_error(
                        "prototypes.positions",
                        format!(
                            "prototype {r} has {} coordinates, the data has {}",
                            positions[r].len(),
                            data.dim
                        ),
                    ));
                }
                let k = positions.len();
                let classes = match (per_class, classes) {
                    (Some(_), Some(c)) => c.clone(),
                    (Some(m), None) => (0..k).map(|j| j / m).collect(),
                    (None, _) => Vec::new(),
                };
                Ok((positions.concat(), classes))
            }
            InitSpec::KMeansPlusPlus { k, seed } | InitSpec::Random { k, seed } => {
                let seed = seed.unwrap_or(p.seed.wrapping_add(1));
                let kmeans = matches!(p.prototypes, InitSpec::KMeansPlusPlus { .. });
                let pick = |subset: &[usize], k: usize, seed: u64| -> Result<Vec<f64>, PresetError> {
                    if kmeans {
                        init::kmeans_plus_plus(data, subset, k, seed).map_err(|m| field_error("prototypes.k", m))
                    } else {
                        Ok(init::uniform_in_box(data, subset, k, seed))
                    }
                };
                match per_class {
                    None => Ok((pick(&(0..data.len()).collect::<Vec<_>>(), *k, seed)?, Vec::new())),
                    Some(m) => {
                        if classes_in_data == 0 {
                            return Err(err("cross-entropy needs labelled points: the data set has no labels (add a `label` column or labels)".into()));
                        }
                        if *k != classes_in_data.saturating_mul(m) {
                            return Err(field_error(
                                "prototypes.k",
                                format!(
                                    "cross-entropy needs classes × per_class = {classes_in_data} × {m} = {} prototypes, got {k}",
                                    classes_in_data.saturating_mul(m)
                                ),
                            ));
                        }
                        let mut positions = Vec::new();
                        let mut classes = Vec::new();
                        for c in 0..classes_in_data {
                            let members: Vec<usize> =
                                (0..data.len()).filter(|&i| data.labels[i] == Some(c as u32)).collect();
                            if members.is_empty() {
                                return Err(err(format!(
                                    "cross-entropy: class {c} has no points (labels must be 0..C−1 with every class present)"
                                )));
                            }
                            positions.extend(pick(&members, m, seed.wrapping_add(c as u64))?);
                            classes.extend(std::iter::repeat_n(c, m));
                        }
                        Ok((positions, classes))
                    }
                }
            }
        }
    }
}
