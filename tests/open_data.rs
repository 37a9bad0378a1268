//! Opening data, not only presets: File → Open data, drop, `implicit-em-lab points.csv`. The
//! experiment is rebuilt around the file's points with the current objective and K.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::process::Command;

use implicit_em_lab::app::{BUNDLED, LabApp};
use implicit_em_lab::core::model::Regime;
use implicit_em_lab::preset::{self, DataSpec, InitSpec, ObjectiveSpec};

const BIN: &str = env!("CARGO_BIN_EXE_implicit-em-lab");

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iel-open-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Three labelled clusters of 10 points in 3-D, with a header.
fn labelled_csv() -> String {
    let mut text = String::from("a,b,c,label\n");
    for c in 0..3 {
        for i in 0..10 {
            let v = f64::from(c) * 5.0 + f64::from(i) * 0.1;
            text.push_str(&format!("{v},{},{},{c}\n", v - 1.0, 0.5 * v));
        }
    }
    text
}

fn lab(file: &str) -> LabApp {
    let (name, text) = BUNDLED.iter().find(|(n, _)| *n == file).unwrap();
    let mut app = LabApp::new(preset::parse(text, name).unwrap(), preset::DataRoot::Bundled).unwrap();
    app.worker_mut().pin_to_ui_thread();
    app
}

#[test]
fn a_preset_is_rebuilt_around_the_file_with_its_objective_and_k() {
    let path = scratch("three.csv", &labelled_csv());
    let base = preset::parse(BUNDLED[0].1, BUNDLED[0].0).unwrap();
    let (p, note) = preset::around_data(&base, &path, 4).unwrap();
    assert_eq!(note, None);
    assert_eq!(p.objective, base.objective);
    assert_eq!(p.temperature, base.temperature);
    assert_eq!(p.prototypes, InitSpec::KMeansPlusPlus { k: 4, seed: None });
    let DataSpec::Csv { path: written } = &p.data else {
        panic!("{:?}", p.data)
    };
    assert!(PathBuf::from(written).is_absolute() && written.ends_with("three.csv"));
    assert_eq!(p.name, "three.csv");
    assert!(
        p.description.starts_with("30 points x 3 coordinates"),
        "{}",
        p.description
    );
    assert!(p.probes.is_empty());
    // Cross-entropy: K = classes × prototypes per class, counted in the file.
    let mut ce = base.clone();
    ce.objective = ObjectiveSpec::CrossEntropy { per_class: 2 };
    let (p, _) = preset::around_data(&ce, &path, 3).unwrap();
    assert_eq!(p.prototypes, InitSpec::KMeansPlusPlus { k: 6, seed: None });
    // Unlabelled data under cross-entropy: the mixture, and the note says so.
    let unlabelled = scratch("plain.csv", "x,y\n0,0\n1,1\n5,5\n6,6\n");
    let (p, note) = preset::around_data(&ce, &unlabelled, 3).unwrap();
    assert_eq!(p.objective, ObjectiveSpec::Mixture);
    assert!(note.unwrap().contains("no labels"));
    // K never exceeds N.
    let (p, _) = preset::around_data(&base, &unlabelled, 9).unwrap();
    assert_eq!(p.prototypes, InitSpec::KMeansPlusPlus { k: 4, seed: None });
}

#[test]
fn opening_data_in_the_window_runs_it_and_saves_an_ordinary_preset() {
    let path = scratch("window.csv", &labelled_csv());
    let mut app = lab("cross-entropy-moons.ron");
    app.open_path(&path);
    let problem = app.session().experiment().problem().clone();
    assert_eq!((problem.len(), problem.dim), (30, 3));
    assert_eq!(problem.spec.regime, Regime::CrossEntropy);
    // Moons had 2 prototypes per class: 3 classes here, so K = 6.
    assert_eq!(app.session().experiment().gd_state().k, 6);
    let status = app.status_text().unwrap().to_string();
    assert!(status.contains("opened") && status.contains("K = 6"), "{status}");
    app.advance(20);
    assert_eq!(app.session().experiment().step_count(), 20);
    // Saved as a preset anywhere, the data are found again: the same points.
    let saved = scratch("elsewhere.ron", "");
    app.save_to(&saved);
    let text = std::fs::read_to_string(&saved).unwrap();
    let p = preset::parse(&text, "elsewhere.ron").unwrap();
    let again = p.validate().unwrap().build(preset::DataRoot::of_file(&saved)).unwrap();
    assert_eq!(again.experiment().problem().len(), 30);
    assert_eq!(again.experiment().problem().point(29), problem.point(29));
}

#[test]
fn a_bad_data_file_changes_nothing_and_says_where() {
    let path = scratch("bad.csv", "x,y\n1,2\n3,abc\n");
    let mut app = lab("three-blobs.ron");
    let before = app.session().experiment().problem().len();
    app.open_path(&path);
    assert_eq!(app.session().experiment().problem().len(), before);
    let status = app.status_text().unwrap();
    assert!(status.contains("line 3") && status.contains("`abc`"), "{status}");
}

#[test]
fn the_command_line_opens_a_csv() {
    let path = scratch("cli.csv", &labelled_csv());
    let out = path.with_file_name("cli.svg");
    let o = Command::new(BIN)
        .args([
            path.to_str().unwrap(),
            "--figure",
            out.to_str().unwrap(),
            "--steps",
            "3",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("cli.csv: step 3") && svg.contains("PCA of 3 coordinates ("));
    let missing = path.with_file_name("missing.csv");
    let o = Command::new(BIN)
        .args([missing.to_str().unwrap(), "--figure", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.csv: no such file"));
}
