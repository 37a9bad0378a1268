//! The command line: run, check, CSV import, overrides, and every bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_implicit-em-lab");

fn preset(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets")
        .join(name)
        .display()
        .to_string()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("iel-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    fn entries(&self) -> usize {
        std::fs::read_dir(&self.0).unwrap().count()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_writes_a_json_trace_with_the_documented_fields() {
    let dir = TempDir::new("json");
    let out = dir.path("trace.json");
    let o = run(&[
        "run",
        "--preset",
        &preset("three-blobs.ron"),
        "--steps",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["preset"]["name"], "Three blobs");
    assert_eq!(v["format_version"], 1);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 31);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i);
        assert_eq!(s["temperature"], 1.0);
        for run in ["gd", "em"] {
            assert!(s[run]["loss"].as_f64().unwrap().is_finite());
            let protos = s[run]["prototypes"].as_array().unwrap();
            assert_eq!(protos.len(), 3);
            assert_eq!(protos[0].as_array().unwrap().len(), 2);
        }
        assert!(s["identity_residual"].as_f64().unwrap() < 1e-13);
        assert_eq!(s["alignment"].as_array().unwrap().len(), 3);
        assert!(s["effective_components"]["gd"].as_f64().unwrap() > 1.0);
        assert!(s["warnings"].is_array());
    }
    // Shared rate on the mixture: GD moves along EM's direction exactly.
    for a in steps[0]["alignment"].as_array().unwrap() {
        assert!((a.as_f64().unwrap() - 1.0).abs() < 1e-12);
    }
    // EM's loss at step 30 is below its start and matches the summary on stdout.
    let em_last = steps[30]["em"]["loss"].as_f64().unwrap();
    assert!(em_last < steps[0]["em"]["loss"].as_f64().unwrap());
    assert!(
        stdout(&o).contains(&format!("EM loss {em_last:.10e}")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn run_writes_a_flat_csv_one_row_per_step_and_run() {
    let dir = TempDir::new("csv");
    let out = dir.path("trace.csv");
    let o = run(&[
        "run",
        "--preset",
        &preset("attention-regression.ron"),
        "--steps",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * 11);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..5], &["step", "run", "temperature", "learning_rate", "loss"]);
    // K = 8 prototypes in 2-D with 1-D values: mu, value, weight, scale, count, alignment, fraction.
    assert!(header.contains(&"mu7_1") && header.contains(&"value7_0") && header.contains(&"step_fraction7"));
    assert!(lines[1].starts_with("0,gd,") && lines[2].starts_with("0,em,") && lines[22].starts_with("10,em,"));
    for l in &lines[1..] {
        let cells = l.matches(',').count();
        assert_eq!(cells, header.len() - 1, "{l}");
    }
}

#[test]
fn check_passes_on_every_bundled_preset_and_prints_the_table() {
    for name in [
        "three-blobs.ron",
        "cross-entropy-moons.ron",
        "attention-regression.ron",
        "gaussian-mixture.ron",
    ] {
        let o = run(&["check", "--preset", &preset(name), "--steps", "3"]);
        assert!(o.status.success(), "{name}: {}{}", stdout(&o), stderr(&o));
        let s = stdout(&o);
        assert!(
            s.contains("Theorem 1: ∂F_i/∂E_ij = r_ij") && s.contains("all checks passed"),
            "{s}"
        );
        assert!(s.contains("∂J/∂μ (prototypes)") && s.contains("deviation"));
    }
    let o = run(&[
        "check",
        "--preset",
        &preset("three-blobs.ron"),
        "--method",
        "finite-difference",
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("central differences"));
}

#[test]
fn check_fails_with_exit_1_when_a_deviation_exceeds_the_tolerance() {
    // Finite differences deviate by ~1e-10; a tolerance of 1e-30 cannot be met.
    let o = run(&["check", "--method", "finite-difference", "--tolerance", "1e-30"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("FAILED"));
}

#[test]
fn overrides_are_applied_and_recorded_in_the_trace() {
    let dir = TempDir::new("over");
    let out = dir.path("t.json");
    let o = run(&[
        "run",
        "--preset",
        &preset("three-blobs.ron"),
        "--objective",
        "cross-entropy",
        "--temperature",
        "0.25",
        "--learning-rate",
        "0.125",
        "--rate",
        "em",
        "--seed",
        "99",
        "--steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let p = &v["preset"];
    assert_eq!(p["objective"]["CrossEntropy"]["per_class"], 1);
    assert_eq!(p["temperature"], 0.25);
    assert_eq!(p["learning_rate"], 0.125);
    assert_eq!(p["rate"], "Em");
    assert_eq!(p["seed"], 99);
    assert_eq!(v["steps"][3]["temperature"], 0.25);
    assert_eq!(v["steps"][3]["learning_rate"], 0.125);
}

#[test]
fn defaults_without_a_preset() {
    let o = run(&["run", "--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("(mixture), N = 300, K = 3, D = 2, T = 1, η = 0.5, rate shared"),
        "{s}"
    );
}

#[test]
fn csv_data_and_prototypes_import() {
    let dir = TempDir::new("import");
    let data = dir.write(
        "points.csv",
        "x,y,label\n0,0,0\n0.2,0.1,0\n-0.1,0.2,0\n5,5,1\n5.1,4.9,1\n4.8,5.2,1\n",
    );
    let init = dir.write("init.csv", "1,1\n4,4\n");
    let out = dir.path("t.json");
    let o = run(&[
        "run",
        "--data",
        &data,
        "--prototypes",
        &init,
        "--steps",
        "20",
        "--rate",
        "em",
        "--learning-rate",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(stdout(&o).contains("N = 6, K = 2, D = 2"), "{}", stdout(&o));
    // EM converges to the cluster means.
    let em = &v["steps"][20]["em"]["prototypes"];
    assert!((em[0][0].as_f64().unwrap() - 0.1 / 3.0).abs() < 1e-6, "{em}");
    assert!((em[1][1].as_f64().unwrap() - 15.1 / 3.0).abs() < 1e-6, "{em}");
    // Cross-entropy with prototype classes from a label column.
    let init_ce = dir.write("init_ce.csv", "x,y,label\n4,4,1\n1,1,0\n");
    let o = run(&[
        "check",
        "--data",
        &data,
        "--prototypes",
        &init_ce,
        "--objective",
        "cross-entropy",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // Five-dimensional data without a header.
    let d5 = dir.write("d5.csv", "1,2,3,4,5\n2,3,4,5,6\n0,0,0,0,1\n");
    let o = run(&[
        "check",
        "--data",
        &d5,
        "--prototypes",
        &dir.write("p5.csv", "1,1,1,1,1\n0,1,0,1,0\n"),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("N = 3, K = 2"));
}

#[test]
fn soft_labels_from_a_csv_on_the_command_line() {
    let dir = TempDir::new("soft");
    let data = dir.write(
        "soft.csv",
        "x,y,label,soft0,soft1\n0,0,0,,\n0.2,0.1,,0.9,0.1\n2.5,2.5,,0.5,0.5\n5,5,1,,\n5.1,4.9,,0.2,0.8\n",
    );
    let init = dir.write("init.csv", "x,y,label\n1,1,0\n4,4,1\n");
    let out = dir.path("t.json");
    let o = run(&[
        "run",
        "--data",
        &data,
        "--prototypes",
        &init,
        "--objective",
        "cross-entropy",
        "--steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // EM's prototype of class 0 after one step: Σ_i p_i0 x_i / Σ_i p_i0, written out.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let p0 = [1.0, 0.9, 0.5, 0.0, 0.2];
    let xs = [0.0, 0.2, 2.5, 5.0, 5.1];
    let want: f64 = p0.iter().zip(&xs).map(|(p, x)| p * x).sum::<f64>() / p0.iter().sum::<f64>();
    let got = v["steps"][1]["em"]["prototypes"][0][0].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    let o = run(&[
        "check",
        "--data",
        &data,
        "--prototypes",
        &init,
        "--objective",
        "cross-entropy",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(soft labels)"), "{}", stdout(&o));
    let bad = dir.write("bad.csv", "x,label,soft0,soft1\n0,0,,\n1,,0.7,0.7\n");
    assert_bad(
        &[
            "run",
            "--data",
            &bad,
            "--objective",
            "cross-entropy",
            "--out",
            out.to_str().unwrap(),
        ],
        "line 3, soft label: the probabilities sum to 1.4",
        &dir,
    );
}

/// A bad input: exit code 2, the message contains `needle`, and nothing is written.
fn assert_bad(args: &[&str], needle: &str, dir: &TempDir) {
    let before = dir.entries();
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}{}", stdout(&o), stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(needle),
        "{args:?}: stderr was\n{e}\nexpected to contain {needle}"
    );
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(dir.entries(), before, "{args:?} wrote a file");
}

#[test]
fn every_bad_flag_or_preset_value_gets_a_clear_message_exit_2_and_writes_nothing() {
    let dir = TempDir::new("bad");
    let out = dir.path("out.json").display().to_string();
    let malformed = dir.write(
        "malformed.ron",
        "(\n    name: \"x\",\n    objective: Mixture,\n    temperature: [1],\n)\n",
    );
    assert_bad(&["run", "--preset", &malformed, "--out", &out], "line 4, column", &dir);
    assert_bad(
        &["run", "--preset", &malformed, "--out", &out],
        "field `temperature`",
        &dir,
    );
    assert_bad(
        &["run", "--objective", "kmeans", "--out", &out],
        "invalid value 'kmeans'",
        &dir,
    );
    assert_bad(
        &["run", "--temperature", "0", "--out", &out],
        "--temperature: field `temperature`: must lie in [1e-300, 1e300] (beyond, T ln K or E/T overflow), got 0",
        &dir,
    );
    assert_bad(
        &["run", "--temperature", "-2", "--out", &out],
        "must lie in [1e-300, 1e300] (beyond, T ln K or E/T overflow), got -2",
        &dir,
    );
    assert_bad(&["run", "--temperature", "NaN", "--out", &out], "got NaN", &dir);
    assert_bad(&["run", "--temperature", "inf", "--out", &out], "got inf", &dir);
    assert_bad(
        &["run", "--learning-rate", "0", "--out", &out],
        "--learning-rate: field `learning_rate`: must be a finite number > 0",
        &dir,
    );
}

#[test]
fn every_bad_file_or_path_gets_a_clear_message_exit_2_and_writes_nothing() {
    let dir = TempDir::new("bad-files");
    let out = dir.path("out.json").display().to_string();
    let k0 = dir.write("k0.ron", "(name: \"x\", objective: Mixture, temperature: 1.0, learning_rate: 0.5,\n data: Blobs(k: 2, n: 10, spread: 1.0, std: 1.0),\n prototypes: Random(k: 0))\n");
    assert_bad(
        &["run", "--preset", &k0, "--out", &out],
        "line 3: field `prototypes.k`: must be at least 1, got 0",
        &dir,
    );
    let many = dir.write("many.ron", "(name: \"x\", objective: Mixture, temperature: 1.0, learning_rate: 0.5,\n data: Blobs(k: 2, n: 10, spread: 1.0, std: 1.0),\n prototypes: KMeansPlusPlus(k: 11))\n");
    assert_bad(
        &["run", "--preset", &many, "--out", &out],
        "k-means++ needs at least as many points as prototypes: 11 prototypes, 10 points",
        &dir,
    );
    let unlabelled = dir.write("u.csv", "1,2\n3,4\n");
    assert_bad(
        &[
            "run",
            "--objective",
            "cross-entropy",
            "--data",
            &unlabelled,
            "--out",
            &out,
        ],
        "cross-entropy needs labelled points",
        &dir,
    );
    let badrow = dir.write("badrow.csv", "x,y\n1,2\n3,4\n5,oops\n");
    assert_bad(
        &["run", "--data", &badrow, "--out", &out],
        "line 4, column `y`: `oops` is not a finite number",
        &dir,
    );
    assert_bad(
        &[
            "run",
            "--data",
            &dir.path("missing.csv").display().to_string(),
            "--out",
            &out,
        ],
        "no such file",
        &dir,
    );
    assert_bad(
        &[
            "run",
            "--preset",
            &dir.path("missing.ron").display().to_string(),
            "--out",
            &out,
        ],
        "missing.ron: no such file",
        &dir,
    );
    assert_bad(
        &["run", "--out", &dir.path("trace.txt").display().to_string()],
        "must end in .json or .csv",
        &dir,
    );
    assert_bad(
        &["run", "--out", &dir.path("no/such/dir/t.json").display().to_string()],
        "does not exist",
        &dir,
    );
    assert_bad(
        &["run", "--score", "dot-product", "--out", &out],
        "--score applies to the attention objective only",
        &dir,
    );
    assert_bad(
        &["check", "--tolerance", "-1"],
        "--tolerance: must be a finite number > 0",
        &dir,
    );
}

#[test]
fn a_run_that_turns_non_finite_pauses_writes_the_good_steps_and_exits_3() {
    let dir = TempDir::new("nan");
    let out = dir.path("t.json");
    let o = run(&[
        "run",
        "--learning-rate",
        "1e308",
        "--steps",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("paused before step 1") && stderr(&o).contains("non-finite"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 1);
    assert!(v["paused"].as_str().unwrap().contains("non-finite"));
}

#[test]
fn help_documents_every_override() {
    let o = run(&["run", "--help"]);
    let h = stdout(&o);
    for flag in [
        "--objective",
        "--temperature",
        "--learning-rate",
        "--rate",
        "--seed",
        "--steps",
        "--data",
        "--prototypes",
        "--out",
        "--preset",
    ] {
        assert!(h.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn anneal_on_the_command_line_records_splits_in_the_trace() {
    let dir = TempDir::new("anneal");
    let out = dir.path("a.json");
    let o = run(&[
        "run",
        "--preset",
        &preset("near-split.ron"),
        "--anneal",
        "6,0.95,1.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(schedule done)"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let lambda = doc["critical_temperature"].as_f64().unwrap();
    let splits = doc["splits"].as_array().unwrap();
    let first = splits.iter().find(|s| s["run"] == "gd").expect("a split");
    let t = first["temperature"].as_f64().unwrap();
    assert!(t <= lambda && t > 0.95 * lambda, "split at {t}, λ_max {lambda}");
    assert_eq!(first["components"], 2);
    assert!(first["step"].as_u64().unwrap() > 0);
    let settled = doc["settled"].as_array().unwrap();
    assert_eq!(settled.last().unwrap()["temperature"].as_f64().unwrap(), 1.5);
    assert_eq!(doc["preset"]["anneal"]["gamma"].as_f64().unwrap(), 0.95);

    // Out of range: a clear message, exit code 2, nothing written.
    let bad = dir.path("b.json");
    let o = run(&["run", "--anneal", "6,1.5,1", "--out", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("GAMMA must lie in (0, 1)"));
    assert!(!bad.exists());
}

#[test]
fn check_report_writes_one_self_contained_page() {
    let dir = TempDir::new("report");
    let target = dir.path("sub/report-dir");
    let o = run(&[
        "check",
        "--preset",
        &preset("metric-collapse.ron"),
        "--report",
        target.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("report written to"));
    let page = std::fs::read_to_string(target.join("report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("all checks passed"));
    assert!(page.contains("Theorem 1: ∂F_i/∂E_ij = r_ij"));
    assert_eq!(page.matches("<svg").count(), 4);
    // The run behind the curves is the preset's 300 steps; its warnings are grouped by kind.
    assert!(page.contains("300 paired steps"));
    // One line per kind of warning (here: per component), with where it was seen.
    assert_eq!(page.matches("is running away").count(), 3);
    assert!(page.contains("scale of component 1 is running away (s = "));
    assert_eq!(page.matches(" recorded steps, from step ").count(), 3);
    assert_eq!(
        page.matches(" to 300</li>").count(),
        3,
        "still running away at the last step"
    );
    assert!(
        !page.contains("<script") && !page.contains("src=\"http"),
        "self-contained"
    );

    // A file where the folder should be: exit 2, nothing written.
    let file = dir.write("not-a-dir", "x");
    let o = run(&["check", "--report", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exists and is not a folder"));
}

#[test]
fn a_closed_pipe_or_a_full_disk_on_stdout_or_stderr_never_panics() {
    use std::process::Stdio;
    let three = preset("three-blobs.ron");
    // stdout is a pipe whose reader has gone (`check … | head -0`): the run ends quietly.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(BIN)
        .args(["check", "--preset", &three])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    // stdout on a full disk: the summary cannot be written, and it says so.
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(BIN)
        .args(["check", "--preset", &three])
        .stdout(Stdio::from(full()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot write the output"), "{}", stderr(&o));
    // Bad input with stderr on a full disk: still exit 2, not a panic's 101.
    let o = Command::new(BIN)
        .args(["run", "--temperature", "0"])
        .stderr(Stdio::from(full()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

// Issue 18: each crash and wrong exit a fuzz run found, as a case that failed before the fix.

/// A run that must be refused (exit 2) with `needle` in a message of reasonable size, no panic,
/// nothing written.
fn assert_refused(args: &[&str], needle: &str, dir: &TempDir) {
    assert_bad(args, needle, dir);
    let o = run(args);
    assert!(stderr(&o).len() < 2000, "{args:?}: a {}-byte message", stderr(&o).len());
}

#[test]
fn extreme_data_is_refused_before_it_can_overflow_or_exhaust_memory() {
    let dir = TempDir::new("extreme");
    let out = dir.path("out.json").display().to_string();
    // k-means++ panicked on a non-finite weight (exit 101).
    let huge = dir.write("huge.csv", "1e200,0\n-1e200,0\n0,1e200\n0,-1e200\n");
    assert_refused(
        &["run", "--data", &huge, "--out", &out],
        "line 1, column `column 1`: 1e200 is outside ±1e100",
        &dir,
    );
    // Attention's one-hot targets were as wide as the largest label (103 GB, abort).
    let labels = dir.write("labels.csv", "x,label\n0,0\n1,4294967295\n2,1\n");
    assert_refused(
        &["run", "--objective", "attention", "--data", &labels, "--out", &out],
        "point 1 has label 4294967295",
        &dir,
    );
    // Sizes with no upper bound: refused with the estimate, and the field's line.
    let blobs = |field: &str| {
        format!(
            "(name: \"x\", objective: Mixture, temperature: 1.0, learning_rate: 0.5,\n data: Blobs({field}),\n prototypes: KMeansPlusPlus(k: 2))\n"
        )
    };
    let n = dir.write("n.ron", &blobs("k: 2, n: 1000000000, spread: 1.0, std: 1.0"));
    assert_refused(
        &["run", "--preset", &n, "--out", &out, "--memory-limit", "8"],
        "line 2: field `data.n`: this run would need about 48.0 GB of memory",
        &dir,
    );
    let k = dir.write("k.ron", &blobs("k: 4294967295, n: 10, spread: 1.0, std: 1.0"));
    assert_refused(
        &["run", "--preset", &k, "--out", &out],
        "field `data.k`: must be at most data.n = 10",
        &dir,
    );
    let k = dir.write("k2.ron", &blobs("k: 4294967295, n: 4294967295, spread: 1.0, std: 1.0"));
    assert_refused(&["run", "--preset", &k, "--out", &out], "GB of memory", &dir);
    let d = dir.write(
        "d.ron",
        &blobs("k: 2, n: 10, dim: 18446744073709551615, spread: 1.0, std: 1.0"),
    );
    assert_refused(
        &["run", "--preset", &d, "--out", &out],
        "D = 1.8446744073709552e19",
        &dir,
    );
    // A finite but huge spread panicked in the sampler.
    let spread = dir.write("s.ron", &blobs("k: 2, n: 10, spread: 1e308, std: 1.0"));
    assert_refused(
        &["run", "--preset", &spread, "--out", &out],
        "line 2: field `data.spread`: must be at most 1e98",
        &dir,
    );
    // Raising the limit lets a refused size through: the refusal is the limit, not the size.
    let medium = dir.write("m.ron", &blobs("k: 2, n: 200000, spread: 1.0, std: 1.0"));
    assert_refused(
        &["run", "--preset", &medium, "--steps", "1", "--memory-limit", "0.001"],
        "limit is 1.0 MB",
        &dir,
    );
    let o = run(&["run", "--preset", &medium, "--steps", "1", "--memory-limit", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn high_dimension_needs_no_d_by_d_matrix_before_the_first_step() {
    // 10 points with 3000 columns: λ_max by power iteration, not a 3000³ decomposition.
    // Two points at ±3 on the first axis, the rest at 0: λ_max = 9 · 2/10 · ... exactly
    // the covariance's: mean 0, Σ x₁² / N = 18/10.
    let dir = TempDir::new("wide");
    let mut text = String::new();
    for i in 0..10 {
        let first = match i {
            0 => "-3",
            1 => "3",
            _ => "0",
        };
        text += first;
        text += &",0".repeat(2999);
        text += "\n";
    }
    let wide = dir.write("wide.csv", &text);
    let start = std::time::Instant::now();
    let o = run(&["run", "--data", &wide, "--steps", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("critical temperature (λ_max of the data covariance): 1.800000"),
        "{}",
        stdout(&o)
    );
    // Not a timing assertion of speed, a guard against the 30 s hang: generous.
    assert!(start.elapsed().as_secs() < 60);
}

#[test]
fn wrong_exits_and_silent_harm_are_gone() {
    let dir = TempDir::new("harm");
    // A legal 250-byte file name: the temporary file's suffix no longer overflows the limit.
    let long = dir.path(&format!("{}.json", "a".repeat(245)));
    let o = run(&["run", "--steps", "1", "--out", &long.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(long.is_file());
    std::fs::remove_file(&long).unwrap();
    // An output that is an input is refused, and the input survives.
    let data = dir.write("d.csv", "x,y\n0,0\n1,1\n5,5\n6,6\n");
    assert_refused(
        &["run", "--data", &data, "--out", &data],
        "is an input of this run",
        &dir,
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "x,y\n0,0\n1,1\n5,5\n6,6\n");
    // A byte-order mark, and a typo in a header-less first row, no longer lose the first point.
    let bom = dir.write("bom.csv", "\u{feff}1,2\n3,4\n5,6\n7,8\n");
    let o = run(&["run", "--data", &bom, "--steps", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("N = 4,"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("no header row (2 columns, all coordinates)"),
        "{}",
        stdout(&o)
    );
    let typo = dir.write("typo.csv", "1,2x\n3,4\n5,6\n7,8\n");
    assert_refused(
        &["run", "--data", &typo],
        "line 1, column `column 2`: `2x` is not a finite number",
        &dir,
    );
    // The documented cross-entropy on a two-class file: K adapts to the classes found.
    assert_refused(
        &["run", "--objective", "cross-entropy", "--data", &data, "--steps", "1"],
        "cross-entropy needs labelled points",
        &dir,
    );
    let labelled = dir.write("two.csv", "x,y,label\n0,0,0\n1,1,0\n5,5,1\n6,6,1\n");
    let o = run(&[
        "run",
        "--objective",
        "cross-entropy",
        "--data",
        &labelled,
        "--steps",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("K = 2,") && stdout(&o).contains("header row x, y, label"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_passes_at_every_valid_extreme_temperature_and_refuses_beyond() {
    // From T = 1e5 the one-pass J exceeded a fixed tolerance, at 1e100 it was 2.2e84 against 0,
    // and from 1e155 (and at 1e-300) the dual column was NaN.
    for t in ["1e-300", "1e-100", "1e-5", "1e5", "1e16", "1e100", "1e155", "1e300"] {
        let o = run(&["check", "--temperature", t]);
        assert_eq!(o.status.code(), Some(0), "T = {t}:\n{}{}", stdout(&o), stderr(&o));
        assert!(!stdout(&o).contains("NaN"), "T = {t}:\n{}", stdout(&o));
        // Numbers in scientific notation, never hundreds of digits.
        let first = stdout(&o).lines().next().unwrap().to_string();
        assert!(first.len() < 200, "{first}");
    }
    let dir = TempDir::new("t-range");
    assert_refused(
        &["check", "--temperature", "1e308"],
        "must lie in [1e-300, 1e300] (beyond, T ln K or E/T overflow), got 1e308",
        &dir,
    );
}

#[test]
fn negative_values_reach_validation_and_paths_are_told_apart() {
    let dir = TempDir::new("flags");
    assert_refused(
        &["run", "--temperature", "-inf"],
        "--temperature: field `temperature`: must lie in",
        &dir,
    );
    assert_refused(&["run", "--temperature=-1"], "got -1", &dir);
    assert_refused(
        &["run", "--seed", "-1"],
        "`-1` is not a whole number from 0 to 18446744073709551615",
        &dir,
    );
    assert_refused(
        &["run", "--learning-rate", "-0.5"],
        "must be a finite number > 0, got -0.5",
        &dir,
    );
    // Found by the property tests in a debug build: classes × per_class overflowed.
    assert_refused(
        &[
            "run",
            "--objective",
            "cross-entropy",
            "--per-class",
            "18446744073709551615",
        ],
        "--per-class: field `objective.per_class`: must be at most 1024",
        &dir,
    );
    let folder = dir.0.display().to_string();
    assert_refused(&["run", "--data", &folder], "is a folder, not a file", &dir);
    assert_refused(&["run", "--data", "/dev/zero"], "is not a regular file", &dir);
    assert_refused(&["run", "--prototypes", "/dev/zero"], "is not a regular file", &dir);
    let file = dir.write("afile", "");
    assert_refused(
        &["run", "--out", &format!("{file}/x.json")],
        "is a file, not a folder",
        &dir,
    );
    assert_refused(
        &["run", "--out", &dir.path(".json").display().to_string()],
        "has no name before its extension",
        &dir,
    );
}

#[test]
fn messages_never_echo_a_whole_input_and_name_the_line() {
    let dir = TempDir::new("echo");
    let huge = dir.write("huge.csv", &format!("x,y\n1,{}x\n", "9".repeat(2_000_000)));
    assert_refused(&["run", "--data", &huge], "(2000001 characters in all)", &dir);
    let header: Vec<String> = (0..100_000).map(|c| format!("c{c}")).collect();
    let ragged = dir.write("ragged.csv", &format!("{}\n1,2\n", header.join(",")));
    assert_refused(&["run", "--data", &ragged], "2 fields, expected 100000", &dir);
    let nul = dir.write("nul.csv", "x,y\n1,\u{0}\u{1}\n");
    assert_refused(&["run", "--data", &nul], "`\\u{0}\\u{1}` is not a finite number", &dir);
    // A repeated field name: the NaN in the third cloud is reported at the third cloud's line.
    let three = std::fs::read_to_string(preset("three-blobs.ron")).unwrap();
    let bad = three.replace("std: [0.8], count: 100, label: 2", "std: [NaN], count: 100, label: 2");
    let line = bad.lines().position(|l| l.contains("NaN")).unwrap() + 1;
    let file = dir.write("nan.ron", &bad);
    assert_refused(
        &["run", "--preset", &file],
        &format!("nan.ron, line {line}: field `data.clouds[2].std`: must be a finite number ≥ 0, got NaN"),
        &dir,
    );
    // Errors found while building name the file, the line and the field.
    let probes = three.replace(
        "prototypes: Explicit",
        "probes: [[1.0, 2.0], [3.0]],\n    prototypes: Explicit",
    );
    let line = probes.lines().position(|l| l.contains("probes")).unwrap() + 1;
    let file = dir.write("probe.ron", &probes);
    assert_refused(
        &["run", "--preset", &file],
        &format!("probe.ron, line {line}: field `probes[1]`: probe 1 must have 2 finite coordinates"),
        &dir,
    );
    // A syntax error never says "in field `?`".
    let syntax = dir.write("syntax.ron", "(name: \"x\" objective: Mixture)");
    let o = run(&["run", "--preset", &syntax]);
    assert!(!stderr(&o).contains('?'), "{}", stderr(&o));
}

#[test]
#[cfg(feature = "gui")]
fn no_display_says_so_without_a_build_path() {
    let o = Command::new(BIN)
        .arg(preset("three-blobs.ron"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("cannot open the window: no display"), "{e}");
    assert!(!e.contains(".rs:") && !e.contains("/.cargo/"), "{e}");
}

#[test]
fn metric_bad_input_names_the_field_and_writes_nothing() {
    let dir = TempDir::new("metric-bad");
    let out = dir.path("t.json");
    let out = out.to_str().unwrap();
    let base = |extra: &str, init: &str| {
        format!(
            "(name: \"m\", objective: Mixture, temperature: 1.0, learning_rate: 0.1, metric: Full, {extra}
              data: Inline(points: [[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]]),
              prototypes: Explicit(positions: [[0.0, 0.0], [1.0, 1.0]]{init}))"
        )
    };
    let not_pd = dir.write(
        "notpd.ron",
        &base("", ", precisions: [[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]"),
    );
    assert_bad(
        &["run", "--preset", &not_pd, "--out", out],
        "prototypes.precisions[0]",
        &dir,
    );
    assert_bad(&["run", "--preset", &not_pd, "--out", out], "positive definite", &dir);
    let shape = dir.write(
        "shape.ron",
        &base("", ", precisions: [[[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]"),
    );
    assert_bad(
        &["run", "--preset", &shape, "--out", out],
        "must be a 2 × 2 matrix",
        &dir,
    );
    let reg = dir.write("reg.ron", &base("reg_covar: 0.0,", ""));
    assert_bad(&["run", "--preset", &reg, "--out", out], "reg_covar", &dir);
    let good = dir.write("good.ron", &base("", ""));
    for bad in ["0", "-1e-6", "inf", "nan"] {
        let flag = format!("--reg-covar={bad}");
        assert_bad(&["run", "--preset", &good, &flag, "--out", out], "reg_covar", &dir);
    }
    assert_bad(
        &[
            "run",
            "--preset",
            &good,
            "--objective",
            "attention",
            "--score",
            "dot-product",
            "--out",
            out,
        ],
        "field `metric`: dot-product attention",
        &dir,
    );
    assert_bad(
        &[
            "run",
            "--preset",
            &good,
            "--metric",
            "spherical",
            "--form",
            "neural",
            "--objective",
            "attention",
            "--score",
            "dot-product",
            "--out",
            out,
        ],
        "field `form`: the neural form z = W x + b needs distance scores",
        &dir,
    );
    assert_bad(
        &["run", "--preset", &good, "--learn", "none,weights", "--out", out],
        "--learn",
        &dir,
    );
    // And the good one runs, recording maps and covariances.
    let o = run(&[
        "run",
        "--preset",
        &good,
        "--learn",
        "weights,metric",
        "--steps",
        "3",
        "--out",
        out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out).unwrap();
    assert!(text.contains("\"maps\"") && text.contains("\"covariances\""));
}

/// BIC, AIC and the per-point log-likelihood of Old Faithful at EM's optimum against
/// scikit-learn 1.9's GaussianMixture(2, covariance_type="full" / "spherical", tol=1e-12,
/// n_init=5) on the same 272 points: score·N −1130.2639601930966 and −1709.5292821774235,
/// bic 2322.1917431154493 and 3458.299178818919, aic 2282.5279203861933 and 3433.058564354847.
#[test]
fn bic_and_aic_match_scikit_learn_on_old_faithful() {
    let o = run(&["run", "--preset", &preset("old-faithful.ron"), "--steps", "300"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stderr(&o) + &stdout(&o);
    let em_after = |line_start: &str, key: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{text}"));
        let rest = &line[line.find(key).unwrap() + key.len()..];
        let rest = &rest[rest.find("EM ").unwrap() + 3..];
        rest.split([',', ';', ' ']).next().unwrap().parse().unwrap()
    };
    let bic_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("BIC")).collect();
    assert_eq!(bic_lines.len(), 2, "{text}");
    let bic = em_after("BIC", "BIC");
    let aic = em_after("BIC", "AIC");
    assert!((bic - 2322.1917431154493).abs() < 1e-4, "{bic}");
    assert!((aic - 2282.5279203861933).abs() < 1e-4, "{aic}");
    let per_point = em_after("log-likelihood", "per point");
    assert!((per_point - -1130.2639601930966 / 272.0).abs() < 1e-6, "{per_point}");
    // The spherical twin's line.
    let twin = bic_lines[1];
    let twin_bic: f64 = twin[twin.find("EM ").unwrap() + 3..]
        .split([',', ';'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((twin_bic - 3458.299178818919).abs() < 1e-4, "{twin_bic}");
    let twin_aic: f64 = twin[twin.rfind("EM ").unwrap() + 3..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((twin_aic - 3433.058564354847).abs() < 1e-4, "{twin_aic}");
}
