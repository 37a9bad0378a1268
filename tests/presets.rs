//! Every bundled preset loads, validates, runs, round-trips; malformed ones say where and why.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
#![allow(clippy::field_reassign_with_default)] // each case reads as: the default, with one change

use std::path::{Path, PathBuf};

use implicit_em_lab::core::model::Regime;
use implicit_em_lab::preset::{self, DataSpec, InitSpec, Preset, locate_field, parse, to_ron};

fn bundled() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    v.sort();
    v
}

#[test]
fn at_least_six_presets_with_descriptions() {
    let presets = bundled();
    assert!(presets.len() >= 6, "{presets:?}");
    for path in presets {
        let p = preset::load(&path).unwrap();
        assert!(p.description.len() > 80, "{}: description too short", path.display());
        assert!(!p.name.is_empty());
    }
}

#[test]
fn every_preset_validates_runs_50_steps_and_round_trips() {
    for path in bundled() {
        let p = preset::load(&path).unwrap();
        let built = p.validate().unwrap().build(path.parent().unwrap()).unwrap();
        let mut exp = built.into_experiment();
        exp.run(50).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(exp.trace().len(), 51);
        let last = exp.latest();
        assert!(last.gd.loss.is_finite() && last.em.loss.is_finite());
        assert!(
            last.identity_residual < 1e-12,
            "{}: residual {}",
            path.display(),
            last.identity_residual
        );
        // Round trip: value → text → value is exact, and the text is a fixed point.
        let text = to_ron(&p);
        let again = parse(&text, "round-trip").unwrap();
        assert_eq!(again, p, "{}", path.display());
        assert_eq!(to_ron(&again), text);
    }
}

#[test]
fn em_objective_never_rises_over_200_steps_on_mixture_and_cross_entropy_presets() {
    let mut checked = 0;
    for path in bundled() {
        let p = preset::load(&path).unwrap();
        if !matches!(p.regime(), Regime::Mixture | Regime::CrossEntropy) {
            continue;
        }
        let mut exp = p
            .validate()
            .unwrap()
            .build(path.parent().unwrap())
            .unwrap()
            .into_experiment();
        exp.run(200).unwrap();
        let trace = exp.trace();
        for w in trace.windows(2) {
            let (a, b) = (w[0].em.em_objective, w[1].em.em_objective);
            assert!(
                b <= a + 1e-9 * a.abs().max(1.0),
                "{} step {}: {a} → {b}",
                path.display(),
                w[1].step
            );
        }
        assert!(trace.iter().all(|r| r.warnings.iter().all(|w| !w.contains("rose"))));
        // EM made progress (the objective is not flat by accident).
        assert!(
            trace[200].em.em_objective < trace[0].em.em_objective,
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn default_preset_is_a_prototype_only_shared_rate_mixture() {
    let p = Preset::default();
    assert_eq!(p.regime(), Regime::Mixture);
    assert!(!p.learn.weights && !p.learn.scales);
    assert_eq!(p.rate, implicit_em_lab::core::model::RateMode::Shared);
    let text = to_ron(&p);
    assert_eq!(parse(&text, "x").unwrap(), p);
}

#[test]
fn round_trip_of_every_variant() {
    let mut p = Preset::default();
    p.data = DataSpec::Inline {
        points: vec![vec![0.0, 1.0], vec![2.5, -1e-7]],
        labels: Some(vec![Some(0), None]),
        targets: Some(vec![vec![0.1], vec![0.2]]),
        soft: Some(vec![None, Some(vec![0.25, 0.75])]),
    };
    p.prototypes = InitSpec::Explicit {
        positions: vec![vec![0.1, 0.2]],
        classes: Some(vec![0]),
        values: Some(vec![vec![1.0 / 3.0]]),
        weights: Some(vec![1.0]),
        scales: Some(vec![0.5]),
        precisions: None,
    };
    p.temperature = 0.1 + 0.2; // not exactly representable in short decimal
    let text = to_ron(&p);
    assert_eq!(parse(&text, "x").unwrap(), p, "{text}");
}

fn parse_err(text: &str) -> String {
    parse(text, "bad.ron").unwrap_err().message
}

const GOOD: &str = "(\n    name: \"x\",\n    objective: Mixture,\n    temperature: 1.0,\n    learning_rate: 0.5,\n    data: Blobs(k: 3, n: 30, spread: 1.0, std: 1.0),\n    prototypes: Random(k: 3),\n)\n";

#[test]
fn malformed_ron_names_line_column_and_field() {
    assert!(parse(GOOD, "good.ron").is_ok());
    let e = parse_err(&GOOD.replace("temperature: 1.0", "temperature: \"hot\""));
    assert!(
        e.contains("bad.ron: line 4, column 17") && e.contains("field `temperature`"),
        "{e}"
    );
    let e = parse_err(&GOOD.replace("spread: 1.0", "spread: [1]"));
    assert!(e.contains("line 6") && e.contains("field `data.Blobs.spread`"), "{e}");
    let e = parse_err(&GOOD.replace("temperature", "temprature"));
    assert!(
        e.contains("line 4") && e.contains("temprature") && e.contains("expected one of"),
        "{e}"
    );
    let e = parse_err(&GOOD.replace("objective: Mixture", "objective: Mixtur"));
    assert!(
        e.contains("line 3") && e.contains("objective") && e.contains("Mixtur"),
        "{e}"
    );
    let e = parse_err(&GOOD.replace("    learning_rate: 0.5,\n", ""));
    assert!(e.contains("learning_rate"), "{e}");
    let e = parse_err(&GOOD.replace("Random(k: 3),\n)", "Random(k: 3),\n"));
    assert!(e.contains("line"), "{e}");
}

#[test]
fn out_of_range_values_say_the_allowed_range_and_line() {
    let dir = std::env::temp_dir().join(format!("iel-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "temperature: 1.0",
            "temperature: -1.0",
            "line 4: field `temperature`: must lie in [1e-300, 1e300] (beyond, T ln K or E/T overflow), got -1",
        ),
        (
            "learning_rate: 0.5",
            "learning_rate: 0.0",
            "line 5: field `learning_rate`: must be a finite number > 0, got 0",
        ),
        (
            "Random(k: 3)",
            "Random(k: 0)",
            "line 7: field `prototypes.k`: must be at least 1, got 0",
        ),
        ("n: 30", "n: 0", "line 6: field `data.n`: must be at least 1, got 0"),
        (
            "std: 1.0",
            "std: -2.0",
            "line 6: field `data.std`: must be a finite number ≥ 0, got -2",
        ),
    ];
    for (from, to, expected) in cases {
        let path = dir.join("p.ron");
        std::fs::write(&path, GOOD.replace(from, to)).unwrap();
        let e = preset::load_valid(&path).unwrap_err().message;
        assert!(e.ends_with(expected), "{e}\nexpected …{expected}");
        assert!(e.starts_with(&path.display().to_string()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn build_errors_for_data_that_does_not_fit() {
    let base = Path::new(".");
    let mut p = Preset::default();
    p.prototypes = InitSpec::KMeansPlusPlus { k: 400, seed: None };
    let e = p.validate().unwrap().build(base).unwrap_err().message;
    assert!(e.contains("400 prototypes, 300 points"), "{e}");

    let mut p = Preset::default();
    p.objective = preset::ObjectiveSpec::CrossEntropy { per_class: 1 };
    p.data = DataSpec::Inline {
        points: vec![vec![0.0], vec![1.0]],
        labels: None,
        targets: None,
        soft: None,
    };
    p.prototypes = InitSpec::Explicit {
        positions: vec![vec![0.0]],
        classes: None,
        values: None,
        weights: None,
        scales: None,
        precisions: None,
    };
    let e = p.validate().unwrap().build(base).unwrap_err().message;
    assert!(e.contains("cross-entropy needs labelled points"), "{e}");

    let mut p = Preset::default();
    p.objective = preset::ObjectiveSpec::CrossEntropy { per_class: 2 };
    let e = p.validate().unwrap().build(base).unwrap_err().message;
    assert!(e.contains("classes × per_class = 3 × 2 = 6 prototypes, got 3"), "{e}");

    let mut p = Preset::default();
    p.data = DataSpec::Csv {
        path: "no/such/file.csv".into(),
    };
    let e = p.validate().unwrap().build(base).unwrap_err().message;
    assert!(e.contains("no such file") && e.contains("no/such/file.csv"), "{e}");

    let mut p = Preset::default();
    p.objective = preset::ObjectiveSpec::Attention {
        score: implicit_em_lab::core::model::Score::DotProduct,
    };
    p.learn.scales = true;
    let e = p.validate().unwrap_err().message;
    assert!(e.contains("learn.scales"), "{e}");
}

#[test]
fn locate_field_walks_nested_paths() {
    let text = "(\n  temperature: 1.0,\n  data: Blobs(\n    k: 3,\n  ),\n  prototypes: Random(\n    k: 2),\n)";
    assert_eq!(locate_field(text, "temperature"), Some(2));
    assert_eq!(locate_field(text, "prototypes.k"), Some(7));
    assert_eq!(locate_field(text, "data.k"), Some(4));
    assert_eq!(locate_field(text, "missing"), None);
}

#[test]
fn an_out_of_range_default_is_reported_as_one() {
    // `initial_scale` is not in the file: its default (1) falls below the file's scale_floor.
    let text = GOOD.replace("learning_rate: 0.5", "learning_rate: 0.5, scale_floor: 2.0");
    let e = parse(&text, "p.ron")
        .unwrap()
        .validate()
        .unwrap_err()
        .located("p.ron", &text);
    assert_eq!(
        e.message,
        "p.ron (a default the file does not write): field `initial_scale`: must be ≥ scale_floor (2), got 1"
    );
}

#[test]
fn locate_field_finds_the_indexed_element_of_a_list() {
    // The same field name three times: `[2]` goes to the third element's line.
    let text = "(\n  data: Gaussians(clouds: [\n    (mean: [0, 0], std: [1]),\n    // a comment, with a comma\n    (mean: [5, (1)], std: [1]),\n    (mean: [0, 5],\n     std: [NaN]),\n  ]),\n  probes: [[1, 2],\n    [3]],\n)";
    assert_eq!(locate_field(text, "data.clouds[0].std"), Some(3));
    assert_eq!(locate_field(text, "data.clouds[1].mean"), Some(5));
    assert_eq!(locate_field(text, "data.clouds[2].std"), Some(7));
    assert_eq!(locate_field(text, "probes[1]"), Some(10));
    // Past the end, or a field the file leaves at its default: the nearest enclosing field.
    assert_eq!(locate_field(text, "data.clouds[5].std"), Some(2));
    assert_eq!(locate_field(text, "data.clouds[0].count"), Some(3));
    assert_eq!(locate_field(text, "data.points (coordinates per point)"), Some(2));
}

#[test]
fn save_is_atomic_and_loads_back() {
    let dir = std::env::temp_dir().join(format!("iel-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("saved.ron");
    let p = Preset::default();
    preset::save(&path, &p).unwrap();
    assert_eq!(preset::load(&path).unwrap(), p);
    // Only the file itself is left behind (no temporary files).
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // Saving into a missing folder fails and creates nothing.
    assert!(preset::save(&dir.join("missing/x.ron"), &p).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn probes_must_match_the_data_dimension() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/hopfield-retrieval.ron"))
        .unwrap()
        .replace("[1.0, 7.0]]", "[1.0, 7.0, 2.0]]");
    let p = parse(&text, "probes.ron").unwrap();
    let e = p.validate().unwrap().build(Path::new(".")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("probes[4]"));
    assert!(
        e.message.contains("probe 4 must have 2 finite coordinates"),
        "{}",
        e.message
    );
    // And they round-trip through save.
    let ok = parse(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/hopfield-retrieval.ron")).unwrap(),
        "h.ron",
    )
    .unwrap();
    assert_eq!(parse(&to_ron(&ok), "again.ron").unwrap().probes, ok.probes);
}
