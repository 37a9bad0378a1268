//! Help: the keyboard shortcuts and mouse actions, and what the lab is (Help menu), and the
//! running preset's description at the top of the controls.

use eframe::egui;

use super::Command;

/// Which help window is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelpWindow {
    /// None.
    #[default]
    Closed,
    /// Keyboard shortcuts and mouse actions.
    Shortcuts,
    /// What the lab is, its version and the paper.
    About,
}

/// Mouse actions in the scene, in words.
pub const MOUSE: [(&str, &str); 6] = [
    ("drag a prototype", "move it (both runs continue from there)"),
    ("drag the background", "pan the view"),
    ("Ctrl + scroll", "zoom"),
    ("double-click", "fit the view to everything shown"),
    (
        "click (add / remove / probe tool)",
        "add or remove a point, or place a probe",
    ),
    ("hover a point", "inspect it in the panel below the scene"),
];

/// The Help menu's items.
pub fn menu_ui(ui: &mut egui::Ui, open: &mut HelpWindow) {
    if ui
        .button("Keyboard and mouse")
        .on_hover_text("Every shortcut and what the mouse does in the scene")
        .clicked()
    {
        *open = HelpWindow::Shortcuts;
    }
    if ui
        .button("About implicit-em-lab")
        .on_hover_text("What the lab shows, its version and the paper")
        .clicked()
    {
        *open = HelpWindow::About;
    }
}

/// The open help window, if any.
pub fn window_ui(ctx: &egui::Context, open: &mut HelpWindow) {
    let title = match open {
        HelpWindow::Closed => return,
        HelpWindow::Shortcuts => "Keyboard and mouse",
        HelpWindow::About => "About implicit-em-lab",
    };
    let mut keep = true;
    egui::Window::new(title)
        .open(&mut keep)
        .collapsible(false)
        .resizable(false)
        .default_width(420.0)
        .show(ctx, |ui| match open {
            HelpWindow::Shortcuts => shortcuts_ui(ui),
            HelpWindow::About => about_ui(ui),
            HelpWindow::Closed => {}
        });
    if !keep {
        *open = HelpWindow::Closed;
    }
}

fn shortcuts_ui(ui: &mut egui::Ui) {
    egui::Grid::new("shortcuts")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for c in Command::WITH_KEYS {
                let keys: Vec<String> = c.shortcuts().iter().map(|s| ui.ctx().format_shortcut(s)).collect();
                ui.monospace(keys.join(" or "));
                ui.label(c.tooltip());
                ui.end_row();
            }
        });
    ui.label("Plain keys (Space, the right arrow, R, F) act unless a text field is being typed into.");
    ui.separator();
    egui::Grid::new("mouse").num_columns(2).striped(true).show(ui, |ui| {
        for (what, does) in MOUSE {
            ui.label(what);
            ui.label(does);
            ui.end_row();
        }
    });
}

fn about_ui(ui: &mut egui::Ui) {
    ui.label(format!("implicit-em-lab {}", env!("CARGO_PKG_VERSION")));
    ui.label(
        "For any objective with log-sum-exp structure over distances or energies, the gradient with \
         respect to each energy is the posterior responsibility of that component: gradient descent \
         performs EM implicitly. The lab runs gradient descent and explicit EM side by side and checks \
         the identity at every step against dual numbers.",
    );
    ui.label("A. Oursland, Gradient Descent as Implicit EM in Distance-Based Neural Models, arXiv 2512.24780.");
    ui.hyperlink("https://arxiv.org/abs/2512.24780");
    ui.label(format!("Licence: {}.", env!("CARGO_PKG_LICENSE")));
}

/// The running preset's name and description at the top of the controls (open on load, can be
/// folded away).
pub fn description_ui(ui: &mut egui::Ui, name: &str, description: &str) {
    let description = drawable(ui.ctx(), description);
    let name = drawable(ui.ctx(), name);
    // A long name is cut with an ellipsis in the header (egui lays a header's text out
    // unwrapped, and a header wider than the panel widened everything below it past the
    // panel's edge) and given whole below it. The clip rectangle is the panel's visible width.
    let room = ui.clip_rect().width() - 40.0;
    let font = egui::FontId::proportional(14.0);
    let width = |t: &str| {
        ui.fonts_mut(|f| {
            f.layout_no_wrap(t.to_string(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
    };
    let mut short = name.clone();
    let cut = width(&name) > room;
    if cut {
        while !short.is_empty() && width(&format!("{short}…")) > room {
            short.pop();
        }
        short = format!("{}…", short.trim_end());
    }
    egui::CollapsingHeader::new(egui::RichText::new(&short).strong())
        .id_salt("preset description")
        .default_open(true)
        .show(ui, |ui| {
            if cut {
                ui.add(egui::Label::new(egui::RichText::new(&name).strong()).wrap());
            }
            ui.add(egui::Label::new(egui::RichText::new(&description).small()).wrap());
        });
}

/// `text` with every character the window's font cannot draw replaced (arrows by `->` and `<-`,
/// anything else by `?`): a preset's description is free text, and a missing glyph would draw as
/// a box.
#[must_use]
pub fn drawable(ctx: &egui::Context, text: &str) -> String {
    let font = egui::FontId::proportional(12.0);
    ctx.fonts_mut(|fonts| {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_whitespace() || fonts.has_glyph(&font, c) {
                out.push(c);
            } else {
                out += match c {
                    '→' | '⟶' => "->",
                    '←' => "<-",
                    '≈' => "~",
                    '≤' => "<=",
                    '≥' => ">=",
                    _ => "?",
                };
            }
        }
        out
    })
}
