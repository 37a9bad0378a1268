//! The targets shared by the property tests (`tests/properties.rs`) and the fuzz harness
//! (`benches/fuzz.rs`): text in, the whole pipeline run (parse, validate, estimate, build, a few
//! steps), and a verdict on what came out. A panic is the failure the callers look for; a clean
//! refusal must also be a message a user can read.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use implicit_em_lab::core::model::Score;
use implicit_em_lab::preset::{self, DataRoot, DataSpec, InitSpec, ObjectiveSpec, Preset};

/// Numbers at the edges, as the fuzz run that found the crashes fed them.
pub const EXTREMES: [&str; 24] = [
    "0",
    "-0.0",
    "-1",
    "1e308",
    "-1e308",
    "1e-320",
    "1e200",
    "1e154",
    "NaN",
    "inf",
    "-inf",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1000000000",
    "1e100",
    "1e300",
    "0.5",
    "3",
    "1024",
    "2.5e-300",
    "100000",
    "1e-9",
];

/// Longest message a refusal may print.
pub const MESSAGE_CAP: usize = 2000;

/// Memory a fuzzed run may plan for: small, so no input can allocate much before it is refused.
pub const MEMORY_LIMIT: f64 = 5e7;

/// Point–component–coordinate products above which a built run is not stepped (building is
/// what the parsers feed; stepping a huge run only costs time).
pub const STEP_WORK_LIMIT: f64 = 2e7;

/// The bundled presets' folder (relative CSV paths resolve there).
#[must_use]
pub fn presets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")
}

/// The bundled presets' texts, in name order.
#[must_use]
pub fn bundled_presets() -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(presets_dir())
        .expect("presets folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("preset"))
        .collect()
}

/// What a message must be: under [`MESSAGE_CAP`] characters, with no raw control character
/// other than a newline.
///
/// # Errors
/// The message breaks one of the two rules.
pub fn readable_message(message: &str) -> Result<(), String> {
    if message.chars().count() > MESSAGE_CAP {
        return Err(format!("a message of {} characters", message.chars().count()));
    }
    if let Some(c) = message.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(format!("a raw control character {c:?} in: {message}"));
    }
    Ok(())
}

/// Builds `p` under the fuzzing budget and steps it a little. `Ok(true)`: it ran; `Ok(false)`:
/// refused cleanly; `Err`: refused with an unreadable message.
fn build_and_step(p: &Preset, root: DataRoot, steps: usize) -> Result<bool, String> {
    let built = p
        .validate()
        .and_then(|v| v.with_budget(Some(MEMORY_LIMIT), Some(steps)).build(root));
    let mut session = match built {
        Ok(s) => s,
        Err(e) => {
            readable_message(&e.message)?;
            return Ok(false);
        }
    };
    let exp = session.experiment();
    let work = exp.problem().len() as f64 * exp.gd_state().k as f64 * (exp.problem().dim as f64 + 1.0);
    if work <= STEP_WORK_LIMIT
        && let Some(e) = session.run(steps, |_| ()).error
    {
        readable_message(&e.to_string())?;
    }
    Ok(true)
}

/// Preset text through the whole pipeline.
///
/// # Errors
/// An unreadable message.
pub fn preset_text(text: &str) -> Result<bool, String> {
    match preset::parse(text, "fuzzed.ron") {
        Ok(p) => build_and_step(&p, DataRoot::Folder(presets_dir()), 3),
        Err(e) => {
            readable_message(&e.message)?;
            Ok(false)
        }
    }
}

/// CSV text parsed, then run as inline data under the mixture, attention and cross-entropy
/// objectives (k-means++ with 2 prototypes; cross-entropy one per class).
///
/// # Errors
/// An unreadable message.
pub fn csv_text(text: &str) -> Result<bool, String> {
    let data = match preset::csv::parse_csv(text, "fuzzed.csv") {
        Ok(d) => d,
        Err(e) => {
            readable_message(&e)?;
            return Ok(false);
        }
    };
    let mut any = false;
    for objective in [
        ObjectiveSpec::Mixture,
        ObjectiveSpec::Attention { score: Score::Distance },
        ObjectiveSpec::CrossEntropy { per_class: 1 },
    ] {
        let classes = data.class_count().max(1);
        let p = Preset {
            prototypes: InitSpec::KMeansPlusPlus {
                k: if matches!(objective, ObjectiveSpec::CrossEntropy { .. }) {
                    classes
                } else {
                    2
                },
                seed: None,
            },
            objective,
            data: DataSpec::inline(&data),
            ..Preset::default()
        };
        any |= build_and_step(&p, DataRoot::Bundled, 2)?;
    }
    Ok(any)
}
