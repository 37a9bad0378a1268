//! A mutation fuzzer for the preset and CSV parsers on stable Rust (cargo-fuzz needs nightly
//! and a second Cargo package): the bundled presets and a few CSV files as the corpus, random
//! edits (extreme numbers, syntax inserted, bytes flipped, ranges cut or repeated, two inputs
//! spliced), each input run through the whole pipeline of `tests/common/bad_input.rs` under
//! `catch_unwind`. Inputs that panic or give an unreadable message are saved; inputs that take
//! over a second are reported as slow.
//!
//! ```text
//! cargo bench --bench fuzz -- --seconds 1800 --seed 7
//! ```
//!
//! Prints the number of inputs, crashes and slow inputs, and writes each failing input to
//! `target/fuzz-findings/`; exits 1 when any input crashed or gave an unreadable message. Without
//! `--seconds` it runs 10 s (so `cargo bench` stays short).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness: a panic here is its own bug

#[path = "../tests/common/bad_input.rs"]
mod bad_input;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

const SYNTAX: [&str; 22] = [
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\u{0}",
    "\u{feff}",
    "Some(",
    "None",
    "//",
    "\n",
    "k: ",
    "/*",
    "*/",
    "Csv(path: \"/dev/zero\")",
    "Csv(path: \"/\")",
    "Blobs(k: 3, n: 100, dim: 5000, spread: 1, std: 1)",
    "Random(k: 1024)",
    "probes: [[1e99, 1e99]],",
    "anneal: (t0: 1e300, gamma: 0.999999, t_min: 1e-300),",
];

const CSV_SEEDS: [&str; 5] = [
    "x,y,label\n0,0,0\n1,1,0\n5,5,1\n6,6,1\n",
    "1,2\n3,4\n5,6\n",
    "x,target\n0,0.5\n1,1.5\n2,2.5\n",
    "x,y,soft0,soft1\n0,0,0.2,0.8\n1,1,,\n4,4,1,0\n",
    "a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,9,2\n",
];

struct Options {
    seconds: u64,
    seed: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Options {
        seconds: value("--seconds").unwrap_or(10),
        seed: value("--seed").unwrap_or(1),
    }
}

fn boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One to four random edits of `text`, with `other` for splicing.
fn mutate(rng: &mut Xoshiro256PlusPlus, text: &str, other: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..rng.random_range(1..=4) {
        let at = boundary(&s, rng.random_range(0..=s.len()));
        match rng.random_range(0..7) {
            0 => {
                // Replace the number that starts at or after `at`.
                if let Some(off) = s[at..].find(|c: char| c.is_ascii_digit()) {
                    let start = at + off;
                    let len = s[start..]
                        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-')))
                        .unwrap_or(s.len() - start);
                    let by = bad_input::EXTREMES[rng.random_range(0..bad_input::EXTREMES.len())];
                    s.replace_range(start..start + len, by);
                }
            }
            1 => s.insert_str(at, SYNTAX[rng.random_range(0..SYNTAX.len())]),
            2 => s.insert_str(at, bad_input::EXTREMES[rng.random_range(0..bad_input::EXTREMES.len())]),
            3 => {
                let end = boundary(&s, at + rng.random_range(0..64));
                s.replace_range(at..end, "");
            }
            4 => {
                let end = boundary(&s, at + rng.random_range(0..64));
                let piece = s[at..end].repeat(rng.random_range(1..8));
                s.insert_str(end, &piece);
            }
            5 => {
                // A random byte as a character (ASCII, so the text stays UTF-8).
                let c = char::from(rng.random_range(0u8..128));
                let end = boundary(&s, at + 1);
                s.replace_range(at..end, &c.to_string());
            }
            _ => {
                let from = boundary(other, rng.random_range(0..=other.len()));
                let to = boundary(other, from + rng.random_range(0..200));
                s.insert_str(at, &other[from..to]);
            }
        }
    }
    s
}

fn main() {
    let opts = options();
    let presets = bad_input::bundled_presets();
    let findings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    // Panics are counted, not printed: the findings folder holds the inputs.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let budget = Duration::from_secs(opts.seconds);
    let (mut inputs, mut crashes, mut unreadable, mut slow, mut accepted) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    while start.elapsed() < budget {
        let csv = rng.random_range(0..3) == 0;
        let text = if csv {
            let a = CSV_SEEDS[rng.random_range(0..CSV_SEEDS.len())];
            let b = CSV_SEEDS[rng.random_range(0..CSV_SEEDS.len())];
            mutate(&mut rng, a, b)
        } else {
            let a = &presets[rng.random_range(0..presets.len())];
            let b = &presets[rng.random_range(0..presets.len())];
            mutate(&mut rng, a, b)
        };
        let t = Instant::now();
        let verdict = std::panic::catch_unwind(|| {
            if csv {
                bad_input::csv_text(&text)
            } else {
                bad_input::preset_text(&text)
            }
        });
        let took = t.elapsed();
        slowest = slowest.max(took);
        inputs += 1;
        let kind = match verdict {
            Err(_) => {
                crashes += 1;
                Some("crash")
            }
            Ok(Err(_)) => {
                unreadable += 1;
                Some("message")
            }
            Ok(Ok(ran)) => {
                accepted += u64::from(ran);
                (took > Duration::from_secs(1)).then(|| {
                    slow += 1;
                    "slow"
                })
            }
        };
        if let Some(kind) = kind {
            std::fs::create_dir_all(&findings).unwrap();
            let ext = if csv { "csv" } else { "ron" };
            std::fs::write(findings.join(format!("{kind}-{inputs}.{ext}")), &text).unwrap();
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "fuzz: {inputs} inputs in {:.0} s (seed {}), {accepted} built and ran, {crashes} crashes, {unreadable} unreadable messages, {slow} slower than 1 s (slowest {:.2} s){}",
        start.elapsed().as_secs_f64(),
        opts.seed,
        slowest.as_secs_f64(),
        if crashes + unreadable + slow > 0 {
            format!("; inputs in {}", findings.display())
        } else {
            String::new()
        }
    );
    // Slow inputs are reported, not failed: their time depends on the machine's load.
    if crashes + unreadable > 0 {
        std::process::exit(1);
    }
}
