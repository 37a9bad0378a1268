//! Figures (File → Export figure, `--figure`): the SVG's elements where the frame puts them,
//! the PNG's pixels, the axes, the legend in view, sizes and formats refused with the range.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::process::Command;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use implicit_em_lab::app::figure::{self, Content, FigureOptions};
use implicit_em_lab::app::scene_data::SceneData;
use implicit_em_lab::app::{BUNDLED, Background, LabApp, view_data};
use implicit_em_lab::preset;
use resvg::usvg::roxmltree;

const BIN: &str = env!("CARGO_BIN_EXE_implicit-em-lab");

fn lab(file: &str, steps: usize) -> LabApp {
    let (name, text) = BUNDLED.iter().find(|(n, _)| *n == file).unwrap();
    let mut app = LabApp::new(preset::parse(text, name).unwrap(), preset::DataRoot::Bundled).unwrap();
    app.worker_mut().pin_to_ui_thread();
    app.playback_mut().playing = false;
    app.advance(steps);
    app
}

fn content(data: &SceneData, view: Option<([f64; 2], [f64; 2])>) -> Content<'_> {
    Content {
        data,
        view,
        background: Background::Responsibility,
        show_em: true,
        title: "a title".into(),
    }
}

fn attr(node: &roxmltree::Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name).unwrap().parse().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iel-figure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_svg_draws_every_point_and_prototype_inside_its_frame_with_equal_axes() {
    let app = lab("three-blobs.ron", 10);
    let data = app.figure_data();
    let o = FigureOptions::default();
    let c = content(&data, None);
    let f = figure::frame(&c, &o);
    // Equal axes: one scale on both axes, to 1e-12.
    let (ux, uy) = ((f.hi[0] - f.lo[0]) / f.width, (f.hi[1] - f.lo[1]) / f.height);
    assert!((ux - uy).abs() < 1e-12 * ux, "{ux} {uy}");
    let text = figure::svg(&c, &o);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!((attr(&root, "width"), attr(&root, "height")), (1600.0, 1000.0));
    let group = |id: &str| doc.descendants().find(|n| n.attribute("id") == Some(id)).unwrap();
    let circles: Vec<_> = group("points")
        .children()
        .filter(|n| n.has_tag_name("circle"))
        .collect();
    assert_eq!(circles.len(), data.points.len());
    assert_eq!(circles.len(), 300);
    let inside = |x: f64, y: f64| x > f.left && x < f.left + f.width && y > f.top && y < f.top + f.height;
    for (circle, p) in circles.iter().zip(&data.points) {
        let (x, y) = (attr(circle, "cx"), attr(circle, "cy"));
        assert!(inside(x, y), "point {p:?} at ({x}, {y}) outside the plot");
        // Written to 2 decimals: within 0.005 px of the frame's mapping.
        let q = f.px(*p);
        assert!((x - q[0]).abs() <= 0.005 + 1e-9 && (y - q[1]).abs() <= 0.005 + 1e-9);
    }
    // Three components, each drawn as EM's three rings then GD's three discs; the last three
    // circles are GD's discs, prototypes 0, 1, 2 in the palette's colours.
    let marks: Vec<_> = group("prototypes").children().filter(|n| n.is_element()).collect();
    assert_eq!(marks.len(), 3 * 3 + 3 * 3);
    let discs: Vec<_> = marks
        .iter()
        .filter(|n| n.attribute("fill").is_some_and(|f| f != "none"))
        .collect();
    for j in 0..3 {
        let disc = discs[3 * j + 2];
        let q = f.px(data.gd_prototype(j));
        assert!((attr(disc, "cx") - q[0]).abs() <= 0.005 + 1e-9);
        let [r, g, b, _] = view_data::colour(j).to_srgba_unmultiplied();
        assert_eq!(disc.attribute("fill"), Some(format!("#{r:02x}{g:02x}{b:02x}").as_str()));
    }
    // The legend lies inside the plot.
    let legend = group("legend").children().find(|n| n.has_tag_name("rect")).unwrap();
    let (lx, ly) = (attr(&legend, "x"), attr(&legend, "y"));
    assert!(inside(lx, ly) && inside(lx + attr(&legend, "width"), ly + attr(&legend, "height")));
    // Axes: names, 1-2-5 tick labels, the title.
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for expected in ["x1", "x2", "a title", "gradient descent", "explicit EM", "0", "-4", "4"] {
        assert!(texts.contains(&expected), "no text {expected:?} in {texts:?}");
    }
}

#[test]
fn ticks_step_by_one_two_five_and_read_short() {
    // 10.6 over 1000 px with labels 100 px apart: at least 1.06 a label, so a step of 2.
    let t = figure::ticks(-5.3, 5.3, 1000.0, 100.0);
    let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["-4", "-2", "0", "2", "4"]);
    let t = figure::ticks(0.0, 1e-14 * 5.0, 500.0, 100.0);
    assert_eq!(t[1].1, "1e-14");
    // 90 px apart over 1000 px for a span of 1: a step of 0.1, labels with one decimal.
    let t = figure::ticks(0.0, 1.0, 1000.0, 90.0);
    let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"
        ]
    );
}

#[test]
fn a_window_view_is_kept_and_widened_only_to_the_figure_aspect() {
    let app = lab("three-blobs.ron", 0);
    let data = app.figure_data();
    let view = ([-2.0, -1.0], [2.0, 1.0]);
    let f = figure::frame(&content(&data, Some(view)), &FigureOptions::default());
    assert!(f.lo[0] <= -2.0 && f.hi[0] >= 2.0 && f.lo[1] <= -1.0 && f.hi[1] >= 1.0);
    // One side kept exactly, the other widened about the same centre.
    let kept_x = (f.lo[0] + 2.0).abs() < 1e-12 && (f.hi[0] - 2.0).abs() < 1e-12;
    let kept_y = (f.lo[1] + 1.0).abs() < 1e-12 && (f.hi[1] - 1.0).abs() < 1e-12;
    assert!(kept_x || kept_y, "{f:?}");
    assert!((f.lo[0] + f.hi[0]).abs() < 1e-12 && (f.lo[1] + f.hi[1]).abs() < 1e-12);
}

/// The pixel at `(x, y)` of a PNG.
fn pixel(png: &image::RgbaImage, at: [f64; 2]) -> [u8; 4] {
    png.get_pixel(at[0].round() as u32, at[1].round() as u32).0
}

#[test]
fn the_png_is_the_same_drawing_at_any_size_with_its_text() {
    let app = lab("three-blobs.ron", 10);
    let data = app.figure_data();
    for (w, h, dark) in [(800, 500, false), (2400, 1500, false), (900, 900, true)] {
        let o = FigureOptions {
            width: w,
            height: h,
            dark,
        };
        let c = content(&data, None);
        let png = image::load_from_memory(&figure::png(&c, &o).unwrap())
            .unwrap()
            .to_rgba8();
        assert_eq!(png.dimensions(), (w, h));
        let f = figure::frame(&c, &o);
        // The paper (or the dark background) in the corner; each GD disc's centre in its colour.
        let paper = if dark { 12 } else { 252 };
        assert_eq!(pixel(&png, [1.0, 1.0]), [paper, paper, paper, 255], "{w}x{h}");
        for j in 0..3 {
            let got = pixel(&png, f.px(data.gd_prototype(j)));
            let want = view_data::colour(j).to_srgba_unmultiplied();
            for k in 0..3 {
                assert!(
                    got[k].abs_diff(want[k]) <= 2,
                    "{w}x{h} prototype {j}: {got:?} against {want:?}"
                );
            }
        }
        // The title is drawn (the fonts reached the rasteriser): ink in the band above the plot.
        let ink = (0..(f.top as u32))
            .flat_map(|y| (0..w / 3).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = png.get_pixel(x, y).0;
                p[0].abs_diff(paper) > 120
            })
            .count();
        assert!(ink > 40, "{w}x{h}: {ink} ink pixels in the title band");
    }
}

#[test]
fn sizes_and_formats_outside_the_allowed_ones_are_refused_with_the_range() {
    let app = lab("three-blobs.ron", 0);
    let data = app.figure_data();
    let c = content(&data, None);
    let small = FigureOptions {
        width: 100,
        ..FigureOptions::default()
    };
    let e = figure::png(&c, &small).unwrap_err();
    assert!(e.contains("width of 100 px") && e.contains("200 to 8000"), "{e}");
    let path = scratch("figure.jpg");
    let e = figure::write(&c, &FigureOptions::default(), &path).unwrap_err();
    assert!(e.contains(".svg") && e.contains(".png"), "{e}");
    assert!(!path.exists());
}

#[test]
fn the_command_line_writes_a_figure_without_a_window_and_refuses_bad_sizes() {
    let preset = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/cross-entropy-moons.ron");
    let out = scratch("moons.svg");
    let o = Command::new(BIN)
        .args([
            preset,
            "--figure",
            out.to_str().unwrap(),
            "--steps",
            "5",
            "--size",
            "1200x800",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().attribute("width"), Some("1200"));
    assert!(text.contains("step 5") && text.contains("decision boundary"));
    for (size, says) in [("10x10", "200 to 8000"), ("wide", "not a size WxH")] {
        let o = Command::new(BIN)
            .args([preset, "--figure", out.to_str().unwrap(), "--size", size])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{size}: {err}");
    }
    let o = Command::new(BIN)
        .args([preset, "--figure", scratch("x.gif").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(".svg (vector) or .png"));
}

#[test]
fn the_export_window_sets_the_size_the_figure_is_written_at() {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1320.0, 740.0))
        .build_ui_state(|ui, app: &mut LabApp| app.frame_ui(ui), lab("three-blobs.ron", 3));
    h.run_steps(3);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export figure (SVG or PNG)…").click();
    h.run_steps(3);
    assert!(h.query_by_label("Save SVG…").is_some() && h.query_by_label("Save PNG…").is_some());
    h.get_by_label("1920 x 1080").click();
    h.run_steps(2);
    let path = scratch("window.png");
    h.state_mut().export_figure(&path);
    let png = image::open(&path).unwrap();
    assert_eq!((png.width(), png.height()), (1920, 1080));
    assert!(h.state().status_text().is_some_and(|s| s.contains("1920 x 1080")));
}
