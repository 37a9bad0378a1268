//! The classic data sets bundled as presets (Iris, Palmer penguins, handwritten digits) and
//! standardisation (z-scores), against values computed here from the CSV text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use implicit_em_lab::preset::{self, Standardise};

fn presets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/presets"))
}

/// The numeric rows of a bundled CSV (comments and header skipped), as written.
fn rows(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(presets().join(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
        .collect()
}

#[test]
fn each_data_set_has_its_documented_shape_and_classes() {
    for (file, n, d, classes) in [
        ("iris.ron", 150, 4, 3),
        ("penguins.ron", 333, 4, 3),
        ("digits.ron", 1797, 64, 10),
    ] {
        let p = preset::load(&presets().join(file)).unwrap();
        let session = p.validate().unwrap().build(presets()).unwrap();
        let problem = session.experiment().problem();
        assert_eq!(
            (problem.len(), problem.dim, problem.class_count()),
            (n, d, classes),
            "{file}"
        );
        assert_eq!(problem.names.len(), d, "{file}: every column named");
    }
}

#[test]
fn standardised_columns_are_z_scores_of_the_file() {
    let raw = rows("penguins.csv");
    let p = preset::load(&presets().join("penguins.ron")).unwrap();
    assert_eq!(p.standardise, Standardise::ZScore);
    let session = p.validate().unwrap().build(presets()).unwrap();
    let problem = session.experiment().problem();
    let n = raw.len() as f64;
    for c in 0..4 {
        let mean = raw.iter().map(|r| r[c]).sum::<f64>() / n;
        let sd = (raw.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for (i, r) in raw.iter().enumerate() {
            let z = problem.point(i)[c];
            assert!((z - (r[c] - mean) / sd).abs() < 1e-12, "column {c}, row {i}");
        }
        let zs: Vec<f64> = (0..raw.len()).map(|i| problem.point(i)[c]).collect();
        let zm = zs.iter().sum::<f64>() / n;
        let zsd = (zs.iter().map(|z| (z - zm).powi(2)).sum::<f64>() / n).sqrt();
        assert!(zm.abs() < 1e-12 && (zsd - 1.0).abs() < 1e-12, "column {c}: {zm} {zsd}");
    }
    assert_eq!(problem.names[3], "body_mass (g) (z)");
    // Without it, the file's numbers as they are.
    let mut plain = p.clone();
    plain.standardise = Standardise::None;
    let session = plain.validate().unwrap().build(presets()).unwrap();
    assert_eq!(session.experiment().problem().point(0), raw[0][..4].to_vec().as_slice());
}

#[test]
fn a_constant_column_is_centred_and_standardising_twice_changes_nothing() {
    let mut data = implicit_em_lab::core::data::Dataset {
        dim: 2,
        points: vec![1.0, 5.0, 2.0, 5.0, 6.0, 5.0],
        labels: vec![None; 3],
        ..Default::default()
    };
    let stats = preset::standardise(&mut data);
    assert_eq!(stats[1], (5.0, 0.0));
    assert_eq!([data.points[1], data.points[3], data.points[5]], [0.0, 0.0, 0.0]);
    // Mean 3, σ = √(14/3): (1 − 3)/σ.
    assert!((data.points[0] + 2.0 / (14.0_f64 / 3.0).sqrt()).abs() < 1e-15);
    let once = data.points.clone();
    preset::standardise(&mut data);
    for (a, b) in once.iter().zip(&data.points) {
        assert!((a - b).abs() < 1e-15);
    }
}

#[test]
fn the_command_line_overrides_standardisation() {
    let bin = env!("CARGO_BIN_EXE_implicit-em-lab");
    let preset = presets().join("penguins.ron");
    let run = |flag: &str| {
        std::process::Command::new(bin)
            .args([
                "run",
                "--preset",
                preset.to_str().unwrap(),
                "--steps",
                "3",
                "--standardise",
                flag,
            ])
            .output()
            .unwrap()
    };
    assert!(run("zscore").status.success());
    assert!(run("none").status.success());
    let bad = run("minmax");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("minmax") && err.contains("zscore") && err.contains("none"),
        "{err}"
    );
}
