//! The headless command line: `run` and `check`, sharing preset loading and overrides.
//!
//! Exit codes: 0 success; 1 a check exceeded its tolerance; 2 bad input (nothing written);
//! 3 a run paused on a non-finite value (the trace up to the last good step is written).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::check::{self, CheckRow};
use crate::core::math::readable;
use crate::core::model::{Form, RateMode, Regime, Score, Structure};
use crate::core::reference::Derivative;
use crate::export::trace::{self, TraceDocument};
use crate::preset::{self, DataSpec, InitSpec, ObjectiveSpec, Preset};
use crate::session::Session;
use crate::session::anneal::Schedule;

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failed check.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for a run that paused on a non-finite value.
pub const EXIT_PAUSED: u8 = 3;

/// implicit-em-lab: gradient descent as implicit EM, made visible and checkable.
///
/// Without a subcommand it opens the desktop lab (optionally with PRESET).
#[derive(Parser, Debug)]
#[command(name = "implicit-em-lab", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Headless command.
    #[command(subcommand)]
    pub command: Option<Action>,
    /// A preset (.ron) or a CSV of points (.csv) to open in the window.
    pub preset: Option<PathBuf>,
    /// Open the window, run --steps steps, save a PNG screenshot to this file and exit.
    #[arg(long, value_name = "FILE.png")]
    pub screenshot: Option<PathBuf>,
    /// Steps to run before the screenshot or the figure.
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Without a window: run --steps steps and write the scene as a figure (axes, title,
    /// legend) to this file, SVG (vector) or PNG by its extension.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub figure: Option<PathBuf>,
    /// The figure's size in pixels, 200 to 8000 a side.
    #[arg(long, value_name = "WxH", default_value = "1600x1000", value_parser = figure_size)]
    pub size: (u32, u32),
    /// The figure's background: paper (light) or the window's dark.
    #[arg(long, value_enum, default_value = "light")]
    pub theme: ThemeArg,
}

/// A figure's theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ThemeArg {
    Light,
    Dark,
}

/// `WxH` in pixels, each side 200 to 8000.
///
/// # Errors
/// Not two whole numbers joined by `x`, or a side outside the range.
pub fn figure_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || {
        format!(
            "`{}` is not a size WxH in pixels, like 1600x1000",
            crate::preset::csv::quote(text)
        )
    };
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    let sides = crate::export::FIGURE_SIDES;
    for (name, v) in [("width", w), ("height", h)] {
        if !sides.contains(&v) {
            return Err(format!(
                "the {name} {v} is outside the allowed range {} to {} px",
                sides.start(),
                sides.end()
            ));
        }
    }
    Ok((w, h))
}

/// Headless commands.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Run gradient descent and explicit EM side by side and write the trace.
    Run(RunArgs),
    /// Check the implicit-EM identity and every exact gradient against an independent derivative.
    Check(CheckArgs),
    /// Time paired steps on the standard benchmark workload (used by benches/compare.py).
    #[command(hide = true)]
    Bench(BenchArgs),
}

/// Arguments of the hidden `bench` command.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Objective.
    #[arg(long, value_enum, default_value = "mixture")]
    pub objective: ObjectiveArg,
    /// Points.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Components.
    #[arg(long, default_value_t = 16)]
    pub k: usize,
    /// Dimension.
    #[arg(long, default_value_t = 2)]
    pub dim: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 21)]
    pub repeat: usize,
    /// Attention only: one regression target per point (values in R¹) instead of one-hot
    /// targets of 4 classes (values in R⁴).
    #[arg(long)]
    pub regression: bool,
}

/// `bench`: the median time of a paired step (and of the two straightforward evaluations it
/// replaces), as one JSON line.
///
/// # Errors
/// Sizes the workload cannot take (exit code 2).
pub fn bench(args: &BenchArgs) -> Result<String, Failure> {
    use crate::core::eval::evaluate_rows;
    use crate::core::workload::{Workload, workload};
    if args.n < 4 || args.k < 4 || args.dim < 1 || args.repeat < 1 {
        return Err(bad("bench needs --n ≥ 4, --k ≥ 4, --dim ≥ 1, --repeat ≥ 1"));
    }
    let objective = match args.objective {
        ObjectiveArg::Mixture => Workload::Mixture,
        ObjectiveArg::Attention if args.regression => Workload::AttentionRegression,
        ObjectiveArg::Attention => Workload::Attention,
        ObjectiveArg::CrossEntropy => Workload::CrossEntropy,
    };
    if args.regression && objective != Workload::AttentionRegression {
        return Err(bad("--regression applies to --objective attention only"));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let exp = workload(objective, args.n, args.k, args.dim, 1);
    let mut paired = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let mut e = exp.clone();
        let t = Instant::now();
        e.step().map_err(|e| bad(e.to_string()))?;
        paired.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut plain = Vec::new();
    for _ in 0..args.repeat.min(5) {
        let t = Instant::now();
        std::hint::black_box(evaluate_rows(exp.problem(), exp.gd_state()));
        std::hint::black_box(evaluate_rows(exp.problem(), exp.em_state()));
        plain.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(format!(
        "{{\"objective\": \"{}\", \"n\": {}, \"k\": {}, \"dim\": {}, \"threads\": {}, \"paired_step_ms\": {:.4}, \"straightforward_two_evaluations_ms\": {:.4}, \"heap_bytes_per_point\": {:.1}}}\n",
        objective.name(),
        args.n,
        args.k,
        args.dim,
        rayon::current_num_threads(),
        median(paired),
        median(plain),
        exp.heap_bytes() as f64 / args.n as f64
    ))
}

/// The objective on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Unsupervised mixture.
    Mixture,
    /// Attention (distance scores; see --score).
    Attention,
    /// Cross-entropy classification.
    CrossEntropy,
}

/// The attention score on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoreArg {
    /// `d = ||x − μ||² / (2s)`.
    Distance,
    /// `d = −x·μ`.
    DotProduct,
}

/// One entry of `--learn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LearnArg {
    /// The mixing weights π.
    Weights,
    /// Each component's metric (scales or maps).
    Metric,
    /// The same as `metric`.
    Scales,
    /// Only the prototypes.
    None,
}

/// The rate mode on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RateArg {
    /// One learning rate for every parameter.
    Shared,
    /// EM-preconditioned per-component rate on prototypes: η·N·s_j/n_j (spherical), η·(N/n_j)·P_j⁻¹
    /// (maps), η·N/n_j (dot-product keys, attention values, neural biases), with n_j EM's mass (Σr,
    /// Σα, or the clamped Σq for cross-entropy); η = 1 reproduces EM's means.
    Em,
}

/// Each component's metric on the command line (scikit-learn's `covariance_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Isotropic scales s_j (W_j = s_j^{−1/2} I).
    Spherical,
    /// A diagonal map W_j: one scale per axis.
    Diag,
    /// A full map W_j.
    Full,
    /// One full map W shared by every component.
    Tied,
}

/// Scaling of the coordinates on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StandardiseArg {
    /// As given.
    None,
    /// Each coordinate centred and divided by its standard deviation.
    Zscore,
}

/// Gradient descent's parametrisation on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormArg {
    /// z = W_j (x − μ_j).
    Prototype,
    /// z = W_j x + b_j (a linear layer).
    Neural,
}

/// The independent derivative on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Forward-mode dual numbers (exact to rounding).
    Dual,
    /// Central finite differences.
    FiniteDifference,
}

/// The preset and the overrides shared by `run` and `check`.
#[derive(Args, Debug, Default, Clone)]
pub struct PresetArgs {
    /// The preset (.ron). Without it: a mixture on three blobs, prototypes only, shared rate.
    #[arg(long, value_name = "FILE.ron")]
    pub preset: Option<PathBuf>,
    /// Objective (overrides the preset's).
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// Attention score form (with --objective attention).
    #[arg(long, value_enum)]
    pub score: Option<ScoreArg>,
    /// Prototypes per class M (with --objective cross-entropy).
    #[arg(long, value_name = "M")]
    pub per_class: Option<usize>,
    /// Temperature T > 0.
    #[arg(long, value_name = "T", allow_hyphen_values = true, value_parser = number)]
    pub temperature: Option<f64>,
    /// Learning rate η > 0.
    #[arg(long, value_name = "ETA", allow_hyphen_values = true, value_parser = number)]
    pub learning_rate: Option<f64>,
    /// Rate mode: shared, or EM-preconditioned.
    #[arg(long, value_enum)]
    pub rate: Option<RateArg>,
    /// Each component's metric (default spherical); a metric starts at the identity (times
    /// initial_scale^{−1/2}) unless the preset gives `precisions`.
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Gradient descent's parametrisation of a metric with maps (diag, full, tied).
    #[arg(long, value_enum)]
    pub form: Option<FormArg>,
    /// Scale the coordinates first: `zscore` (each centred, divided by its standard deviation)
    /// or `none`. Overrides the preset's `standardise`.
    #[arg(long, value_enum)]
    pub standardise: Option<StandardiseArg>,
    /// scikit-learn's reg_covar > 0, added to explicit EM's covariances (default 1e-6).
    #[arg(long, value_name = "LAMBDA", allow_hyphen_values = true, value_parser = number)]
    pub reg_covar: Option<f64>,
    /// What is learned besides the prototypes, comma-separated: `weights`, `metric` (the
    /// scales, or the maps W_j), `scales` (the same), or `none`. Replaces the preset's choice.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub learn: Option<Vec<LearnArg>>,
    /// Seed of every random choice (data generator and initialisation).
    #[arg(long, value_name = "S", allow_hyphen_values = true, value_parser = count::<u64>)]
    pub seed: Option<u64>,
    /// Points from a CSV file: coordinate columns, optional integer `label` column and
    /// `target…` columns, header optional (without one every column is a coordinate).
    #[arg(long, value_name = "points.csv")]
    pub data: Option<PathBuf>,
    /// Initial prototypes from a CSV file, one per row (K = rows); for cross-entropy an
    /// optional `label` column gives each prototype's class.
    #[arg(long, value_name = "init.csv")]
    pub prototypes: Option<PathBuf>,
    /// Refuse runs whose estimated memory exceeds this many gigabytes (default: the memory the
    /// machine has available).
    #[arg(long, value_name = "GB", allow_hyphen_values = true, value_parser = number)]
    pub memory_limit: Option<f64>,
}

/// Arguments of `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub preset: PresetArgs,
    /// Paired steps to run (default: the preset's `steps`).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = count::<usize>)]
    pub steps: Option<usize>,
    /// Write the trace: `.json` (whole record) or `.csv` (flat, one row per step and run).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deterministic annealing from T0, cooling T ← max(TMIN, GAMMA·T) after the runs settle at
    /// each temperature; without --steps the run goes on until it has settled at TMIN.
    #[arg(long, value_name = "T0,GAMMA,TMIN")]
    pub anneal: Option<String>,
}

/// Arguments of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub preset: PresetArgs,
    /// Independent derivative.
    #[arg(long, value_enum, default_value = "dual")]
    pub method: MethodArg,
    /// Relative tolerance (default 1e-10 for dual numbers, 1e-6 for finite differences).
    #[arg(long, value_name = "REL", allow_hyphen_values = true, value_parser = number)]
    pub tolerance: Option<f64>,
    /// Take this many paired steps first, then check at the GD state (default 0; with --report,
    /// the preset's `steps`).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = count::<usize>)]
    pub steps: Option<usize>,
    /// Also write a self-contained report, DIR/report.html: the check table, the GD and EM
    /// curves of the run and its warnings (the folder is created if needed).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

/// Most steps an annealing run takes without `--steps` (it normally stops earlier, settled at
/// `TMIN`).
pub const MAX_ANNEAL_STEPS: usize = 2_000_000;

/// Six decimals in the ordinary range, six significant digits in scientific notation outside it.
fn six_digits(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        format!("{v:.6}")
    } else {
        format!("{v:.6e}")
    }
}

/// A command-line failure: message and exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What to print on stderr.
    pub message: String,
}

/// A number flag: any `f64` Rust reads, including `-1`, `inf` and `-inf` (so a negative or infinite
/// value reaches validation, which says what is allowed, instead of being taken for a flag).
fn number(text: &str) -> Result<f64, String> {
    text.trim().parse::<f64>().map_err(|_| {
        format!(
            "`{}` is not a number (write e.g. 0.5, 1e-3 or -2)",
            crate::preset::csv::quote(text)
        )
    })
}

/// A count flag: a whole number from 0 to the type's maximum.
fn count<T: std::str::FromStr + std::fmt::Display + num_max::Max>(text: &str) -> Result<T, String> {
    text.trim().parse::<T>().map_err(|_| {
        format!(
            "`{}` is not a whole number from 0 to {}",
            crate::preset::csv::quote(text),
            T::MAX
        )
    })
}

/// The largest value of a count type, for [`count`]'s message.
mod num_max {
    pub trait Max {
        const MAX: Self;
    }
    impl Max for u64 {
        const MAX: Self = u64::MAX;
    }
    impl Max for usize {
        const MAX: Self = usize::MAX;
    }
}

fn bad(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        message: message.into(),
    }
}

/// A preset as the command line will run it: the preset with the overrides applied, the folder
/// its relative paths resolve against, and the file text (for locating a field's line).
pub struct Resolved {
    /// The preset as run.
    pub preset: Preset,
    /// Where its relative CSV paths resolve.
    pub base: PathBuf,
    /// The preset file's name and text, when one was given.
    pub source: Option<(String, String)>,
    /// The inputs read (preset, data, prototypes), so that no output overwrites one.
    pub inputs: Vec<PathBuf>,
    /// `--memory-limit` in bytes.
    pub memory_limit: Option<f64>,
}

impl Resolved {
    /// A preset error as the user should see it: a flag's value named by the flag, a preset
    /// field by the file and line.
    fn explain(&self, args: &PresetArgs, e: crate::preset::PresetError) -> Failure {
        let flag = e.field.as_deref().and_then(|f| overridden_flag(args, f));
        bad(match (flag, &self.source) {
            (Some(flag), _) => format!("{flag}: {}", e.message),
            (None, Some((source, text))) => e.located(source, text).message,
            (None, None) => e.message,
        })
    }
}

/// Loads the preset (or the default), applies the overrides and validates. Returns the preset
/// as run and the folder its relative paths resolve against.
///
/// # Errors
/// Bad input (exit code 2).
pub fn resolve_preset(args: &PresetArgs) -> Result<Resolved, Failure> {
    let mut inputs = Vec::new();
    let (mut p, base, source) = match &args.preset {
        Some(path) => {
            crate::preset::io::check_input_file("--preset", path).map_err(bad)?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read preset {}: {e}", path.display())))?;
            let p = preset::parse(&text, &path.display().to_string()).map_err(|e| bad(e.message))?;
            let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            inputs.push(path.clone());
            (p, base, Some((path.display().to_string(), text)))
        }
        None => (Preset::default(), PathBuf::from("."), None),
    };
    apply_overrides(args, &mut p)?;
    if let Some(path) = &args.data {
        crate::preset::io::check_input_file("--data", path).map_err(bad)?;
        let abs = std::path::absolute(path).map_err(|e| bad(format!("--data {}: {e}", path.display())))?;
        p.data = DataSpec::Csv {
            path: abs.display().to_string(),
        };
    }
    if let DataSpec::Csv { path } = &p.data {
        inputs.push(base.join(path));
    }
    if let Some(path) = &args.prototypes {
        crate::preset::io::check_input_file("--prototypes", path).map_err(bad)?;
        p.prototypes = prototypes_from_csv(path)?;
        inputs.push(path.clone());
    }
    let memory_limit = match args.memory_limit {
        Some(gb) if gb.is_finite() && gb > 0.0 => Some(gb * 1e9),
        Some(gb) => {
            return Err(bad(format!(
                "--memory-limit: must be a finite number of gigabytes > 0, got {gb}"
            )));
        }
        None => None,
    };
    let mut resolved = Resolved {
        preset: p,
        base,
        source,
        inputs,
        memory_limit,
    };
    if args.preset.is_none() {
        adapt_default_prototypes(&mut resolved)?;
    }
    if let Err(e) = resolved.preset.validate() {
        return Err(resolved.explain(args, e));
    }
    Ok(resolved)
}

/// The flags that set preset fields directly.
fn apply_overrides(args: &PresetArgs, p: &mut Preset) -> Result<(), Failure> {
    if let Some(o) = args.objective {
        p.objective = match o {
            ObjectiveArg::Mixture => ObjectiveSpec::Mixture,
            ObjectiveArg::Attention => ObjectiveSpec::Attention { score: Score::Distance },
            ObjectiveArg::CrossEntropy => ObjectiveSpec::CrossEntropy { per_class: 1 },
        };
    }
    if let Some(s) = args.score {
        let ObjectiveSpec::Attention { score } = &mut p.objective else {
            return Err(bad(
                "--score applies to the attention objective only (add --objective attention)",
            ));
        };
        *score = match s {
            ScoreArg::Distance => Score::Distance,
            ScoreArg::DotProduct => Score::DotProduct,
        };
    }
    if let Some(m) = args.per_class {
        let ObjectiveSpec::CrossEntropy { per_class } = &mut p.objective else {
            return Err(bad(
                "--per-class applies to the cross-entropy objective only (add --objective cross-entropy)",
            ));
        };
        *per_class = m;
    }
    if let Some(t) = args.temperature {
        p.temperature = t;
    }
    if let Some(eta) = args.learning_rate {
        p.learning_rate = eta;
    }
    if let Some(r) = args.rate {
        p.rate = match r {
            RateArg::Shared => RateMode::Shared,
            RateArg::Em => RateMode::Em,
        };
    }
    if let Some(s) = args.seed {
        p.seed = s;
    }
    if let Some(s) = args.standardise {
        p.standardise = match s {
            StandardiseArg::None => preset::Standardise::None,
            StandardiseArg::Zscore => preset::Standardise::ZScore,
        };
    }
    if let Some(m) = args.metric {
        p.metric = match m {
            MetricArg::Spherical => Structure::Spherical,
            MetricArg::Diag => Structure::Diag,
            MetricArg::Full => Structure::Full,
            MetricArg::Tied => Structure::Tied,
        };
    }
    if let Some(f) = args.form {
        p.form = match f {
            FormArg::Prototype => Form::Prototype,
            FormArg::Neural => Form::Neural,
        };
    }
    if let Some(l) = args.reg_covar {
        p.reg_covar = l;
    }
    if let Some(list) = &args.learn {
        if list.contains(&LearnArg::None) && list.len() > 1 {
            return Err(bad("--learn: `none` cannot be combined with other entries"));
        }
        p.learn.weights = list.contains(&LearnArg::Weights);
        p.learn.scales = list.contains(&LearnArg::Metric) || list.contains(&LearnArg::Scales);
    }
    Ok(())
}

/// `--prototypes`: the positions of a CSV file, with each prototype's class from a `label` column.
fn prototypes_from_csv(path: &Path) -> Result<InitSpec, Failure> {
    let table = crate::preset::io::read_csv(path).map_err(|e| bad(format!("--prototypes: {e}")))?;
    let positions: Vec<Vec<f64>> = (0..table.len()).map(|i| table.point(i).to_vec()).collect();
    let classes = if table.labels.iter().any(Option::is_some) {
        if let Some(i) = table.labels.iter().position(Option::is_none) {
            return Err(bad(format!("--prototypes: prototype {i} has no label while others do")));
        }
        Some(table.labels.iter().map(|l| l.expect("checked") as usize).collect())
    } else {
        None
    };
    Ok(InitSpec::Explicit {
        positions,
        classes,
        values: None,
        weights: None,
        scales: None,
        precisions: None,
    })
}

/// Without a preset file, `K` is a default the user never wrote: for cross-entropy it becomes
/// classes × prototypes per class, counted in the data, so `--objective cross-entropy --data
/// two-class.csv` runs.
fn adapt_default_prototypes(r: &mut Resolved) -> Result<(), Failure> {
    let p = &mut r.preset;
    let ObjectiveSpec::CrossEntropy { per_class } = p.objective else {
        return Ok(());
    };
    if !matches!(p.prototypes, InitSpec::KMeansPlusPlus { .. }) {
        return Ok(());
    }
    // Only a CSV file needs reading; the default generator's classes are its `k`.
    let classes = match &p.data {
        DataSpec::Csv { .. } => {
            if let Err(e) = p.validate() {
                return Err(bad(e.message));
            }
            preset::make_data(&p.data, p.seed, &(&r.base).into())
                .map_err(|e| bad(e.message))?
                .class_count()
        }
        DataSpec::Blobs { k, .. } => *k,
        _ => return Ok(()),
    };
    if classes > 0
        && let InitSpec::KMeansPlusPlus { k, .. } = &mut p.prototypes
    {
        *k = classes.saturating_mul(per_class);
    }
    Ok(())
}

/// The flag that set a preset field, if a flag did.
fn overridden_flag(args: &PresetArgs, field: &str) -> Option<&'static str> {
    match field {
        "temperature" if args.temperature.is_some() => Some("--temperature"),
        "learning_rate" if args.learning_rate.is_some() => Some("--learning-rate"),
        "reg_covar" if args.reg_covar.is_some() => Some("--reg-covar"),
        "metric" if args.metric.is_some() => Some("--metric"),
        "form" if args.form.is_some() => Some("--form"),
        "objective.per_class" if args.per_class.is_some() => Some("--per-class"),
        f if f.starts_with("prototypes") && args.prototypes.is_some() => Some("--prototypes"),
        f if f.starts_with("data") && args.data.is_some() => Some("--data"),
        _ => None,
    }
}

/// Builds the session of a resolved preset; `steps` is how many the run will record (for the
/// memory estimate).
///
/// # Errors
/// Bad input (exit code 2), named by flag or by the preset's file and line.
pub fn build(r: &Resolved, p: &Preset, args: &PresetArgs, steps: usize) -> Result<Session, Failure> {
    p.validate()
        .and_then(|v| v.with_budget(r.memory_limit, Some(steps)).build(&r.base))
        .map_err(|e| r.explain(args, e))
}

/// [`likelihood_line`] of the lab and of its twin.
fn likelihood_lines(session: &Session) -> String {
    let mut out = likelihood_line(session.experiment());
    if let Some(t) = session.twin() {
        let line = likelihood_line(&t.experiment);
        if !line.is_empty() {
            out += &format!("twin ({}): {line}", t.flip.label());
        }
    }
    out
}

/// The log-likelihood of both runs, when the loss is one (a mixture at `T = 1` with the volume
/// term, normalised, without a background); empty otherwise.
fn likelihood_line(experiment: &crate::core::experiment::Experiment) -> String {
    let last = experiment.latest();
    let spec = &experiment.problem().spec;
    if spec.regime == Regime::Mixture
        && spec.settings.temperature == 1.0
        && spec.settings.volume
        && spec.settings.reject_energy.is_none()
        && !spec.settings.unnormalised
        && spec.active_scale_prior().is_none()
    {
        // At T = 1 with the volume term, e^{−E_ij} = π_j N(x_i; μ_j, Σ_j) (2π)^{D/2}.
        let n = experiment.problem().len() as f64;
        let constant = 0.5 * experiment.problem().dim as f64 * (2.0 * std::f64::consts::PI).ln();
        let ll = |j: f64| -n * (j + constant);
        let (gd, em) = (ll(last.gd.em_objective), ll(last.em.em_objective));
        let p = crate::core::criteria::free_parameters(
            spec.structure,
            last.em.prototypes.len(),
            experiment.problem().dim,
            spec.settings.learn_weights,
            spec.settings.learn_scales,
        );
        let n_points = experiment.problem().len();
        let (gd_bic, gd_aic) = crate::core::criteria::information_criteria(gd, p, n_points);
        let (em_bic, em_aic) = crate::core::criteria::information_criteria(em, p, n_points);
        return format!(
            "log-likelihood (T = 1: −N (J + (D/2) ln 2π)): GD {gd:.6}, EM {em:.6} ({} components); per point GD {:.6}, EM {:.6}\nBIC GD {gd_bic:.6}, EM {em_bic:.6}; AIC GD {gd_aic:.6}, EM {em_aic:.6} ({p} free parameters, counted as scikit-learn does)\n",
            spec.structure.name(),
            gd / n,
            em / n,
        );
    }
    String::new()
}

/// Refuses an output path that names one of the inputs, or whose folder is missing or a file.
fn check_output(flag: &str, out: &Path, inputs: &[PathBuf]) -> Result<(), Failure> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.is_file() {
        return Err(bad(format!(
            "{flag} {}: {} is a file, not a folder",
            out.display(),
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(bad(format!(
            "{flag} {}: the folder {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(bad(format!("{flag} {}: is a folder; give a file name", out.display())));
    }
    if let Some(input) = inputs.iter().find(|i| crate::preset::io::same_file(i, out)) {
        return Err(bad(format!(
            "{flag} {}: is an input of this run ({}); an output never overwrites an input, choose another name",
            out.display(),
            input.display()
        )));
    }
    Ok(())
}

enum OutFormat {
    Json,
    Csv,
}

fn out_format(path: &Path) -> Result<OutFormat, Failure> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Ok(OutFormat::Json),
        Some("csv") => Ok(OutFormat::Csv),
        _ if path.file_stem().is_none_or(|stem| stem.is_empty())
            || path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.') && path.extension().is_none()) =>
        {
            Err(bad(format!(
                "--out {}: the file name has no name before its extension; write e.g. trace.json or trace.csv",
                path.display()
            )))
        }
        _ => Err(bad(format!(
            "--out {}: the file name must end in .json or .csv",
            path.display()
        ))),
    }
}

/// `run`: both runs in lockstep, the trace written atomically. Returns the summary text.
///
/// # Errors
/// Bad input (2), or a paused run (3) after writing the trace so far.
pub fn run(args: &RunArgs, progress: &mut dyn Write) -> Result<String, Failure> {
    let format = args.out.as_deref().map(out_format).transpose()?;
    let resolved = resolve_preset(&args.preset)?;
    if let Some(out) = &args.out {
        check_output("--out", out, &resolved.inputs)?;
    }
    let mut preset = resolved.preset.clone();
    if let Some(text) = &args.anneal {
        preset.anneal = Some(Schedule::parse(text).map_err(bad)?);
    }
    let steps = args.steps.unwrap_or(if preset.anneal.is_some() {
        MAX_ANNEAL_STEPS
    } else {
        preset.steps
    });
    let mut session = build(&resolved, &preset, &args.preset, steps)?;
    let start = Instant::now();
    let mut last_report = start;
    let outcome = session.run(steps, |done| {
        if last_report.elapsed() > Duration::from_secs(1) {
            last_report = Instant::now();
            let _ = writeln!(
                progress,
                "step {done}/{steps} ({:.0}%), {:.1} s",
                100.0 * done as f64 / steps as f64,
                start.elapsed().as_secs_f64()
            );
        }
    });
    let paused = outcome.error.map(|e| e.to_string());
    if let (Some(out), Some(format)) = (&args.out, format) {
        let text = match format {
            OutFormat::Json => trace::to_json(&TraceDocument::of(&preset, &session, paused.clone())),
            OutFormat::Csv => trace::to_csv(session.experiment().trace()),
        };
        crate::preset::io::write_atomic(out, text.as_bytes()).map_err(bad)?;
    }
    let experiment = session.experiment();
    let critical_temperature = session.critical_temperature();
    let last = experiment.latest();
    let mut summary = format!(
        "{} ({}), N = {}, K = {}, D = {}, T = {}, η = {}, rate {}\n",
        preset.name,
        preset.regime().name(),
        experiment.problem().len(),
        experiment.gd_state().k,
        experiment.problem().dim,
        readable(preset.temperature),
        readable(preset.learning_rate),
        preset.rate.name()
    );
    if let DataSpec::Csv { path } = &preset.data
        && let Some(header) = crate::preset::io::csv_header_summary(&resolved.base.join(path))
    {
        summary += &format!("data: {path}, {header}\n");
    }
    summary += &format!(
        "after {} steps: GD loss {:.10e}, EM loss {:.10e}, prototype distance {:.3e}, identity residual {:.1e}\n",
        last.step, last.gd.loss, last.em.loss, last.prototype_distance, last.identity_residual
    );
    summary += &likelihood_lines(&session);
    summary += &format!(
        "critical temperature (λ_max of the data covariance): {}\n",
        six_digits(critical_temperature)
    );
    if let Some(a) = session.annealer() {
        summary += &format!(
            "annealing: settled at {} temperatures, T now {:.6}{}\n",
            a.settled.len(),
            experiment.problem().spec.settings.temperature,
            if a.finished() {
                " (schedule done)"
            } else {
                " (stopped by --steps)"
            }
        );
        for sp in &a.splits {
            summary += &format!(
                "split: {} run, {} → {} positions at T = {:.6} (step {})\n",
                sp.run, sp.previous, sp.components, sp.temperature, sp.step
            );
        }
    }
    for w in &last.warnings {
        summary += &format!("warning: {w}\n");
    }
    if let Some(out) = &args.out {
        summary += &format!("trace written to {}\n", out.display());
    }
    match paused {
        Some(reason) => Err(Failure {
            code: EXIT_PAUSED,
            message: format!("{summary}run {reason}"),
        }),
        None => Ok(summary),
    }
}

/// Writes `DIR/report.html`, creating the folder if needed; when writing fails, a folder this
/// call created is removed again, so a full disk leaves nothing behind.
fn write_report(dir: &Path, page: &[u8], inputs: &[PathBuf]) -> Result<PathBuf, Failure> {
    write_report_with(dir, page, inputs, crate::preset::io::write_atomic)
}

/// [`write_report`] with the file writer given (a test passes one that fails like a full disk).
fn write_report_with(
    dir: &Path,
    page: &[u8],
    inputs: &[PathBuf],
    write: impl Fn(&Path, &[u8]) -> Result<(), String>,
) -> Result<PathBuf, Failure> {
    let path = dir.join("report.html");
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("--report {}: {e}", dir.display())))?;
    let written = check_output("--report", &path, inputs).and_then(|()| write(&path, page).map_err(bad));
    if let Err(e) = written {
        if created {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }
    Ok(path)
}

/// Formats the check table.
#[must_use]
pub fn format_table(rows: &[CheckRow], method: Derivative) -> String {
    let mut s = format!(
        "{:<50} {:>7} {:>22} {:>22} {:>10} {:>9}  status\n",
        "quantity",
        "entries",
        "closed form",
        format!(
            "independent ({})",
            match method {
                Derivative::Dual => "dual",
                Derivative::FiniteDifference => "fd",
            }
        ),
        "deviation",
        "tolerance"
    );
    for r in rows {
        s += &format!(
            "{:<50} {:>7} {:>22.15e} {:>22.15e} {:>10.2e} {:>9.1e}  {}\n",
            r.quantity,
            r.entries,
            r.closed_form,
            r.independent,
            r.deviation,
            r.tolerance,
            if r.passed() { "ok" } else { "FAILED" }
        );
    }
    s += "tolerance = relative tolerance × max(1, largest closed-form value, size of the terms that cancel: \
          T for ∂J/∂w, max|E| + T ln(K+1) for J)\n";
    s
}

/// `check`: the table, and whether every row passed.
///
/// # Errors
/// Bad input (2); a deviation above tolerance (1), with the table in the message.
pub fn check(args: &CheckArgs) -> Result<String, Failure> {
    let resolved = resolve_preset(&args.preset)?;
    let preset = resolved.preset.clone();
    if let Some(dir) = &args.report
        && dir.exists()
        && !dir.is_dir()
    {
        return Err(bad(format!("--report {}: exists and is not a folder", dir.display())));
    }
    // `check` steps at a fixed temperature: an annealing preset is checked at its T0, unperturbed.
    let mut fixed = preset.clone();
    if let Some(schedule) = fixed.anneal.take() {
        fixed.temperature = schedule.t0;
    }
    let steps = args
        .steps
        .unwrap_or(if args.report.is_some() { preset.steps } else { 0 });
    let mut session = build(&resolved, &fixed, &args.preset, steps)?;
    if let Some(e) = session.run(steps, |_| ()).error {
        return Err(Failure {
            code: EXIT_PAUSED,
            message: format!("check {e}"),
        });
    }
    let experiment = session.experiment();
    let method = match args.method {
        MethodArg::Dual => Derivative::Dual,
        MethodArg::FiniteDifference => Derivative::FiniteDifference,
    };
    if let Some(t) = args.tolerance
        && !(t.is_finite() && t > 0.0)
    {
        return Err(bad(format!(
            "--tolerance: must be a finite number > 0, got {}",
            readable(t)
        )));
    }
    let rows = check::check(experiment.problem(), experiment.gd_state(), method, args.tolerance);
    let t = readable(experiment.problem().spec.settings.temperature);
    let mut text = format!(
        "{} ({}) at step {}, T = {t}, N = {}, K = {}; independent derivative: {}\n",
        preset.name,
        preset.regime().name(),
        experiment.step_count(),
        experiment.problem().effective_n(),
        experiment.gd_state().k,
        method.name()
    );
    text += "convention: losses J to minimise in free-energy units, so ∂F_i/∂E_ij = +r_ij; in the paper's \
             convention (T = 1, L = log Σ_j exp(−d_j) maximised) the same identity reads ∂L/∂d_j = −r_j\n\n";
    let table = format_table(&rows, method);
    text += &table;
    if let Some(dir) = &args.report {
        let page = crate::export::report::html(&preset, experiment, &rows, method, &table);
        let path = write_report(dir, page.as_bytes(), &resolved.inputs)?;
        text += &format!("\nreport written to {}\n", path.display());
    }
    if rows.iter().all(CheckRow::passed) {
        text += "\nall checks passed\n";
        Ok(text)
    } else {
        Err(Failure {
            code: EXIT_CHECK_FAILED,
            message: format!("{text}\nsome checks FAILED\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_that_cannot_be_written_leaves_no_folder_behind() {
        let base = std::env::temp_dir().join(format!("iel-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let full_disk = |_: &Path, _: &[u8]| Err("cannot write report.html: No space left on device".to_string());
        // A folder the call creates is removed again.
        let fresh = base.join("new");
        let e = write_report_with(&fresh, b"page", &[], full_disk).unwrap_err();
        assert_eq!(e.code, EXIT_BAD_INPUT);
        assert!(e.message.contains("No space left"), "{}", e.message);
        assert!(!fresh.exists());
        // A folder that was there stays, with whatever it held.
        std::fs::write(base.join("keep.txt"), "x").unwrap();
        assert!(write_report_with(&base, b"page", &[], full_disk).is_err());
        assert!(base.join("keep.txt").is_file());
        // And a working writer writes the page.
        let path = write_report(&fresh, b"page", &[]).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "page");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
