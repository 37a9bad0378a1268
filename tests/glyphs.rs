//! Every non-ASCII character the window can show has a glyph in egui's bundled fonts (a
//! missing one draws as a box).
#![cfg(feature = "gui")]

use eframe::egui;

const SOURCES: [&str; 8] = [
    include_str!("../src/app/mod.rs"),
    include_str!("../src/app/controls.rs"),
    include_str!("../src/app/scene.rs"),
    include_str!("../src/app/compare.rs"),
    include_str!("../src/app/inspect.rs"),
    include_str!("../src/app/files.rs"),
    include_str!("../src/app/figure.rs"),
    include_str!("../src/core/diagnostics.rs"),
];

#[test]
fn every_character_in_user_facing_strings_has_a_glyph() {
    let ctx = egui::Context::default();
    let mut out = ctx.run_ui(egui::RawInput::default(), |_| {});
    out.textures_delta.clear();
    let mut missing = std::collections::BTreeSet::new();
    for source in SOURCES {
        // Only string literals reach the screen; comments may use any character.
        for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut in_string = false;
            for c in line.chars() {
                if c == '"' {
                    in_string = !in_string;
                } else if in_string && !c.is_ascii() {
                    let proportional = ctx.fonts_mut(|f| f.has_glyph(&egui::FontId::proportional(14.0), c));
                    let monospace = ctx.fonts_mut(|f| f.has_glyph(&egui::FontId::monospace(14.0), c));
                    if !proportional || !monospace {
                        missing.insert(c);
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "characters without a glyph: {missing:?}");
}

/// The file dialog's icons (egui_file draws them in its buttons, titles and file list): the
/// default fonts have none of them, so they drew as boxes until the emoji fonts came in.
#[test]
fn the_file_dialog_icons_have_glyphs() {
    let ctx = egui::Context::default();
    let _ = ctx.run_ui(egui::RawInput::default(), |_| {});
    let missing: Vec<char> = "⟲⬆💾📁📂🗀🗋"
        .chars()
        .filter(|&c| !ctx.fonts_mut(|f| f.has_glyph(&egui::FontId::proportional(14.0), c)))
        .collect();
    assert!(missing.is_empty(), "file dialog icons without a glyph: {missing:?}");
}
