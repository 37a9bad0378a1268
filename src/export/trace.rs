//! The trace formats: JSON (the whole record, stable field names) and a flat CSV.

use std::fmt::Write;

use serde::Serialize;

use crate::core::experiment::{RunRecord, StepRecord};
use crate::preset::Preset;
use crate::session::Session;
use crate::session::anneal::{Settled, Split};

/// Version of the trace format; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON document: the preset as run, then the steps.
#[derive(Serialize)]
pub struct TraceDocument<'a> {
    /// The preset as run (after command-line overrides).
    pub preset: &'a Preset,
    /// One record per step, step 0 (the start) first.
    pub steps: &'a [StepRecord],
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `T_c = λ_max` of the data covariance.
    pub critical_temperature: f64,
    /// Why the run stopped early (a non-finite value), or `null`.
    pub paused: Option<String>,
    /// Annealing: the temperatures at which a run's prototypes split (empty otherwise).
    pub splits: &'a [Split],
    /// Annealing: each temperature the runs settled at, with the critical temperatures of the
    /// gradient-descent run's prototype groups (empty otherwise).
    pub settled: &'a [Settled],
}

impl<'a> TraceDocument<'a> {
    /// The document of `session` run from `preset`, with the reason it paused, if it did.
    #[must_use]
    pub fn of(preset: &'a Preset, session: &'a Session, paused: Option<String>) -> Self {
        let annealer = session.annealer();
        Self {
            preset,
            steps: session.experiment().trace(),
            format_version: FORMAT_VERSION,
            critical_temperature: session.critical_temperature(),
            paused,
            splits: annealer.map_or(&[], |a| &a.splits),
            settled: annealer.map_or(&[], |a| &a.settled),
        }
    }
}

/// The JSON text of a trace.
#[must_use]
pub fn to_json(doc: &TraceDocument<'_>) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("a trace always serialises");
    s.push('\n');
    s
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:e}"))
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The flat CSV text: one row per step and run (`gd`, then `em`). Step-level columns
/// (`identity_residual`, `prototype_distance`, `alignment_j`, `step_fraction_j`, `warnings`)
/// repeat on both rows of a step. A metric with maps adds `W{j}_{r}_{c}`, a metric with maps
/// or learned adds `cov{j}_{r}_{c}` (empty for a singular map).
#[must_use]
pub fn to_csv(steps: &[StepRecord]) -> String {
    let mut out = String::new();
    let Some(first) = steps.first() else { return out };
    let k = first.gd.prototypes.len();
    let dim = first.gd.prototypes.first().map_or(0, Vec::len);
    let p = first.gd.values.as_ref().and_then(|v| v.first()).map_or(0, Vec::len);
    // A record may lack covariances that others have (a metric learned from some step on):
    // the columns come from every record, missing cells left empty.
    let layout = Layout {
        maps: steps.iter().any(|r| r.gd.maps.is_some()),
        covariances: steps.iter().any(|r| r.gd.covariances.is_some()),
    };
    let mut header = vec![
        "step",
        "run",
        "temperature",
        "learning_rate",
        "loss",
        "em_objective",
        "identity_residual",
        "prototype_distance",
        "effective_components",
        "mean_entropy",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for j in 0..k {
        header.extend((0..dim).map(|d| format!("mu{j}_{d}")));
        header.extend((0..p).map(|c| format!("value{j}_{c}")));
        header.extend(
            ["weight", "scale", "count", "alignment", "step_fraction"]
                .iter()
                .map(|n| format!("{n}{j}")),
        );
        let cells = |name: &str| -> Vec<String> {
            (0..dim * dim)
                .map(|e| format!("{name}{j}_{}_{}", e / dim, e % dim))
                .collect()
        };
        if layout.maps {
            header.extend(cells("W"));
        }
        if layout.covariances {
            header.extend(cells("cov"));
        }
    }
    header.push("warnings".into());
    out.push_str(&header.join(","));
    out.push('\n');
    for rec in steps {
        for (name, run) in [("gd", &rec.gd), ("em", &rec.em)] {
            write_row(&mut out, rec, name, run, k, p, layout);
        }
    }
    out
}

/// Which optional column groups the CSV has.
#[derive(Clone, Copy)]
struct Layout {
    maps: bool,
    covariances: bool,
}

fn write_row(out: &mut String, rec: &StepRecord, name: &str, run: &RunRecord, k: usize, p: usize, layout: Layout) {
    let _ = write!(
        out,
        "{},{name},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e}",
        rec.step,
        rec.temperature,
        rec.learning_rate,
        run.loss,
        run.em_objective,
        rec.identity_residual,
        rec.prototype_distance,
        run.effective_components,
        run.mean_entropy
    );
    for j in 0..k {
        for x in &run.prototypes[j] {
            let _ = write!(out, ",{x:e}");
        }
        for c in 0..p {
            let v = run.values.as_ref().map_or(0.0, |v| v[j][c]);
            let _ = write!(out, ",{v:e}");
        }
        let _ = write!(
            out,
            ",{:e},{:e},{:e},{},{}",
            run.weights[j],
            run.scales[j],
            run.counts[j],
            opt(rec.alignment[j]),
            opt(rec.step_fraction[j])
        );
        let dim = run.prototypes[j].len();
        let cells = |out: &mut String, m: Option<&Vec<Vec<f64>>>| match m {
            Some(c) => c.iter().flatten().for_each(|x| {
                let _ = write!(out, ",{x:e}");
            }),
            None => out.push_str(&",".repeat(dim * dim)),
        };
        if layout.maps {
            cells(out, run.maps.as_ref().map(|m| &m[j]));
        }
        if layout.covariances {
            cells(out, run.covariances.as_ref().and_then(|c| c[j].as_ref()));
        }
    }
    let _ = writeln!(out, ",{}", csv_quote(&rec.warnings.join("; ")));
}
