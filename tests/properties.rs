//! Property tests of bad input (issue 18): random preset text and values, random CSV text and
//! random flag values each parse and run, or are refused with a readable message, never a
//! panic, and a refused run writes nothing. Bounded (a few hundred cases each, small runs) so
//! the suite stays within its time; `benches/fuzz.rs` runs the same targets for as long as asked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "common/bad_input.rs"]
mod bad_input;

use bad_input::{EXTREMES, bundled_presets, csv_text, preset_text, readable_message};
use clap::Parser;
use implicit_em_lab::cli::{self, Action, Cli};
use proptest::prelude::*;

/// Pieces of syntax a mutation inserts.
const TOKENS: [&str; 14] = [
    "(", ")", "[", "]", ",", ":", "\"", "\u{0}", "\u{feff}", "Some(", "None", "//", "\n", "k: ",
];

/// Column names a random CSV header draws from.
const CSV_NAMES: [&str; 9] = ["x", "y", "z", "label", "target", "soft0", "soft1", "LABEL", "1.5"];

/// One CSV cell: mostly a small number or a label, sometimes an extreme number or junk.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        80 => (-50i32..50).prop_map(|v| format!("{}", f64::from(v) / 4.0)),
        30 => (0u32..4).prop_map(|v| v.to_string()),
        1 => (0usize..EXTREMES.len()).prop_map(|i| EXTREMES[i].to_string()),
        1 => "[ a-z0-9.eE+\\-\u{0}]{0,4}",
    ]
}

/// Replaces the `which`-th number in `text` (counting modulo the numbers present) by `by`.
fn replace_number(text: &str, which: usize, by: &str) -> String {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts =
            bytes[i].is_ascii_digit() && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E' | b'-')) {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return text.to_string();
    }
    let (a, b) = spans[which % spans.len()];
    format!("{}{by}{}", &text[..a], &text[b..])
}

/// Inserts `piece` at the character boundary nearest to `at` (a fraction of the length).
fn insert_at(text: &str, at: f64, piece: &str) -> String {
    let mut pos = ((text.len() as f64) * at) as usize;
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    format!("{}{piece}{}", &text[..pos], &text[pos..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every number of a bundled preset, one or two at a time, replaced by an extreme one.
    #[test]
    fn presets_with_extreme_numbers_run_or_are_refused(
        preset in 0usize..15,
        first in 0usize..400, a in 0usize..EXTREMES.len(),
        second in 0usize..400, b in 0usize..EXTREMES.len(),
    ) {
        let texts = bundled_presets();
        let text = &texts[preset % texts.len()];
        let text = replace_number(&replace_number(text, first, EXTREMES[a]), second, EXTREMES[b]);
        let verdict = preset_text(&text);
        prop_assert!(verdict.is_ok(), "{:?}\n{text}", verdict);
    }

    /// Bundled presets with syntax inserted or cut away.
    #[test]
    fn damaged_preset_text_is_refused_cleanly(
        preset in 0usize..15,
        at in 0.0f64..1.0, token in 0usize..TOKENS.len(),
        cut_at in 0.0f64..1.0, cut in 0usize..40,
    ) {
        let texts = bundled_presets();
        let text = insert_at(&texts[preset % texts.len()], at, TOKENS[token]);
        let mut start = ((text.len() as f64) * cut_at) as usize;
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let text = format!("{}{}", &text[..start], &text[end..]);
        let verdict = preset_text(&text);
        prop_assert!(verdict.is_ok(), "{:?}\n{text}", verdict);
    }

    /// Random CSV tables: an optional header of coordinate, label, target and soft-label names,
    /// rows of numbers (ordinary, extreme, or junk), sometimes ragged, sometimes with a mark.
    #[test]
    fn random_csv_text_parses_and_runs_or_is_refused(
        bom in any::<bool>(),
        header in proptest::option::of(proptest::collection::vec(0usize..CSV_NAMES.len(), 1..5)),
        rows in proptest::collection::vec(proptest::collection::vec(cell(), 1..5), 1..30),
        ragged in any::<bool>(),
    ) {
        let width = header.as_ref().map_or(rows[0].len(), Vec::len);
        let mut text = if bom { "\u{feff}".to_string() } else { String::new() };
        if let Some(h) = &header {
            text += &h.iter().map(|&i| CSV_NAMES[i]).collect::<Vec<_>>().join(",");
            text.push('\n');
        }
        for (r, row) in rows.iter().enumerate() {
            let mut row = row.clone();
            if !(ragged && r == rows.len() / 2) {
                row.resize(width, "0".to_string());
            }
            text += &row.join(",");
            text.push('\n');
        }
        let verdict = csv_text(&text);
        prop_assert!(verdict.is_ok(), "{:?}\n{text:?}", verdict);
    }

    /// Random values for every numeric flag of `run`: exit 2 with a readable message (or a
    /// run), and a refused run writes nothing.
    #[test]
    fn random_flag_values_run_or_are_refused_and_write_nothing(
        flag in 0usize..6, value in prop_oneof![
            (0usize..EXTREMES.len()).prop_map(|i| EXTREMES[i].to_string()),
            "[-+]?[0-9a-z.]{0,8}",
            Just("-".to_string()),
            Just("--steps".to_string()),
        ],
    ) {
        let flags = ["--temperature", "--learning-rate", "--seed", "--steps", "--memory-limit", "--anneal"];
        let dir = std::env::temp_dir().join(format!("iel-prop-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("t.json");
        let _ = std::fs::remove_file(&out);
        let mut args = vec!["implicit-em-lab", "run", "--out", out.to_str().unwrap()];
        // Keep runs short whatever is fuzzed (a later --steps wins over an earlier one).
        if flags[flag] != "--steps" {
            args.extend(["--steps", "2"]);
        }
        args.extend([flags[flag], value.as_str()]);
        match Cli::try_parse_from(&args) {
            // clap's own refusal: the binary prints it and exits 2.
            Err(e) => prop_assert!(e.exit_code() == 2 && readable_message(&e.to_string()).is_ok(), "{e}"),
            Ok(Cli { command: Some(Action::Run(run)), .. }) => {
                // A fuzzed --steps of a billion is valid and only slow: parsed, not run.
                if run.steps.is_none_or(|s| s <= 1000) {
                    match cli::run(&run, &mut std::io::sink()) {
                        Ok(_) => prop_assert!(out.is_file()),
                        Err(f) if f.code == cli::EXIT_BAD_INPUT => {
                            prop_assert!(readable_message(&f.message).is_ok(), "{}", f.message);
                            prop_assert!(!out.exists(), "{args:?} wrote {out:?} and exited 2");
                        }
                        Err(f) => prop_assert!(f.code == cli::EXIT_PAUSED, "{args:?}: exit {} {}", f.code, f.message),
                    }
                }
            }
            Ok(other) => prop_assert!(false, "{other:?}"),
        }
        let _ = std::fs::remove_file(&out);
    }
}
