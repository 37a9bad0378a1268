//! Figures for papers and slides: the scene as SVG, or as PNG at any resolution rasterised from
//! the same SVG (resvg, with egui's own fonts, so the PNG and the SVG are one drawing), with a
//! framed plot, 1-2-5 tick labels, the axes' names, a title and a legend. Built from the
//! scene's plain data ([`SceneData`]): a figure shows the step the window shows.

use std::fmt::Write as _;
use std::sync::Arc;

use eframe::egui::{self, Color32};

use super::Background;
use super::markers::{self, Mark};
use super::scene_data::{self, SceneData};
use super::view_data::{self, Grid};
use crate::core::model::Regime;
use crate::core::projection::Plane;

use crate::export::FIGURE_SIDES;

/// The font list written into an SVG (the PNG is drawn with egui's Ubuntu, which is the first).
const FONTS: &str = "Ubuntu, 'Ubuntu Light', 'DejaVu Sans', Helvetica, Arial, sans-serif";

/// A figure's size and theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FigureOptions {
    /// Width in pixels (SVG user units).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Dark background (the window's look) instead of paper white.
    pub dark: bool,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            width: 1600,
            height: 1000,
            dark: false,
        }
    }
}

impl FigureOptions {
    /// Whether both sides lie in [`FIGURE_SIDES`].
    ///
    /// # Errors
    /// A side outside the range, named with the range.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !FIGURE_SIDES.contains(&v) {
                return Err(format!(
                    "a figure's {name} of {v} px is outside the allowed range {} to {} px",
                    FIGURE_SIDES.start(),
                    FIGURE_SIDES.end()
                ));
            }
        }
        Ok(())
    }

    /// The font size: the shorter side over 42, within 10 to 64 px (16 px at 1600 × 1000 ... 700).
    #[must_use]
    pub fn font_size(&self) -> f64 {
        (f64::from(self.width.min(self.height)) / 42.0).clamp(10.0, 64.0)
    }
}

/// What a figure shows: the scene's data, the view the window shows (or `None`: fitted to the
/// content), the background and whether EM is drawn, under a title.
pub struct Content<'a> {
    pub data: &'a SceneData,
    pub view: Option<([f64; 2], [f64; 2])>,
    pub background: Background,
    pub show_em: bool,
    pub title: String,
}

/// The plot area in pixels and the data rectangle it shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub lo: [f64; 2],
    pub hi: [f64; 2],
}

impl Frame {
    /// The pixel position of plane point `p` (y down).
    #[must_use]
    pub fn px(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.left + (p[0] - self.lo[0]) / (self.hi[0] - self.lo[0]) * self.width,
            self.top + (self.hi[1] - p[1]) / (self.hi[1] - self.lo[1]) * self.height,
        ]
    }

    /// Plane units per pixel along each axis.
    fn per_px(&self) -> [f64; 2] {
        [
            (self.hi[0] - self.lo[0]) / self.width,
            (self.hi[1] - self.lo[1]) / self.height,
        ]
    }
}

/// The plot area of a figure and the plane rectangle it shows: the window's view (with equal
/// axes, widened about its centre to the figure's aspect, so circles stay round), or the fit
/// of the content the window would make.
#[must_use]
pub fn frame(content: &Content<'_>, o: &FigureOptions) -> Frame {
    let fs = o.font_size();
    let (left, top, right, bottom) = (5.0 * fs, 2.6 * fs, 1.2 * fs, 3.4 * fs);
    let (w, h) = (f64::from(o.width) - left - right, f64::from(o.height) - top - bottom);
    let equal = scene_data::equal_axes(content.data.content);
    let (lo, hi) = content
        .view
        .unwrap_or_else(|| scene_data::fit_view(content.data.content, [w as f32, h as f32], equal));
    // With equal axes, one scale exactly (the fit works in f32 sizes).
    let (lo, hi) = if equal {
        let per_px = ((hi[0] - lo[0]) / w).max((hi[1] - lo[1]) / h);
        let c = [f64::midpoint(lo[0], hi[0]), f64::midpoint(lo[1], hi[1])];
        let half = [0.5 * per_px * w, 0.5 * per_px * h];
        ([c[0] - half[0], c[1] - half[1]], [c[0] + half[0], c[1] + half[1]])
    } else {
        (lo, hi)
    };
    Frame {
        left,
        top,
        width: w,
        height: h,
        lo,
        hi,
    }
}

/// Ticks over `lo..=hi` drawn across `px` pixels, at the 1-2-5 step whose labels lie at least
/// `label_px` apart, each with its label.
#[must_use]
pub fn ticks(lo: f64, hi: f64, px: f64, label_px: f64) -> Vec<(f64, String)> {
    let step = view_data::nice_step((hi - lo) * label_px / px);
    let range = lo..=hi;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .take(60)
        .map(|i| {
            let v = i as f64 * step;
            (v, view_data::tick(v, step, &range))
        })
        .collect()
}

/// `&`, `<`, `>` and `"` escaped for XML text and attributes.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A colour as an SVG paint and its opacity (1 for an opaque colour).
fn paint(c: Color32) -> (String, f64) {
    let [r, g, b, a] = c.to_srgba_unmultiplied();
    (format!("#{r:02x}{g:02x}{b:02x}"), f64::from(a) / 255.0)
}

/// `fill="…"` (and `fill-opacity` when translucent) for colour `c` at extra opacity `o`.
fn fill(c: Color32, o: f64) -> String {
    let (p, a) = paint(c);
    let a = a * o;
    if a < 1.0 {
        format!(r#"fill="{p}" fill-opacity="{a:.3}""#)
    } else {
        format!(r#"fill="{p}""#)
    }
}

/// `stroke="…" stroke-width="…"` (and the opacity when translucent).
fn stroke(c: Color32, o: f64, width: f64) -> String {
    let (p, a) = paint(c);
    let a = a * o;
    if a < 1.0 {
        format!(r#"stroke="{p}" stroke-opacity="{a:.3}" stroke-width="{width:.2}""#)
    } else {
        format!(r#"stroke="{p}" stroke-width="{width:.2}""#)
    }
}

/// Standard base64 (RFC 4648, with padding).
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An SVG document being written, with the figure's scale.
struct Svg {
    out: String,
    /// The font size in pixels.
    fs: f64,
    /// Marker and line scale: the window's sizes are for a 13 px font.
    u: f64,
    ink: Color32,
    paper: Color32,
}

impl Svg {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Many segments as one path.
    fn segments(&mut self, f: &Frame, segs: &[[[f64; 2]; 2]], style: &str) {
        if segs.is_empty() {
            return;
        }
        let mut d = String::new();
        for s in segs {
            let (a, b) = (f.px(s[0]), f.px(s[1]));
            let _ = write!(d, "M{:.2} {:.2}L{:.2} {:.2}", a[0], a[1], b[0], b[1]);
        }
        self.line(&format!(r#"<path d="{d}" fill="none" {style}/>"#));
    }

    /// An open polyline through plane points.
    fn polyline(&mut self, f: &Frame, path: &[[f64; 2]], style: &str) {
        if path.len() < 2 {
            return;
        }
        let mut pts = String::new();
        for p in path {
            let q = f.px(*p);
            let _ = write!(pts, "{:.2},{:.2} ", q[0], q[1]);
        }
        self.line(&format!(
            r#"<polyline points="{}" fill="none" {style}/>"#,
            pts.trim_end()
        ));
    }

    /// Text at a pixel position (`anchor`: start, middle or end), at `size` font sizes.
    fn text(&mut self, at: [f64; 2], anchor: &str, size: f64, colour: Color32, text: &str) {
        let s = size * self.fs;
        self.line(&format!(
            r#"<text x="{:.2}" y="{:.2}" font-size="{s:.2}" text-anchor="{anchor}" {}>{}</text>"#,
            at[0],
            at[1],
            fill(colour, 1.0),
            esc(text)
        ));
    }

    /// One prototype marker at pixel `p`, as the window draws it ([`markers`]).
    fn marker(&mut self, mark: Mark, p: [f64; 2], colour: Color32) {
        let u = self.u;
        let (ink, paper) = (self.ink, self.paper);
        let disc = f64::from(markers::DISC) * u;
        let (inkw, halo) = (f64::from(markers::INK) * u, f64::from(markers::HALO) * u);
        match mark {
            Mark::Gd => {
                for (r, c) in [(disc + inkw + halo, paper), (disc + inkw, ink), (disc, colour)] {
                    self.line(&format!(
                        r#"<circle cx="{:.2}" cy="{:.2}" r="{r:.2}" {}/>"#,
                        p[0],
                        p[1],
                        fill(c, 1.0)
                    ));
                }
            }
            Mark::Em => {
                let (ring, band) = (f64::from(markers::RING) * u, f64::from(markers::BAND) * u);
                for (w, c) in [
                    (band + 2.0 * (inkw + halo), paper),
                    (band + 2.0 * inkw, ink),
                    (band, colour),
                ] {
                    self.line(&format!(
                        r#"<circle cx="{:.2}" cy="{:.2}" r="{ring:.2}" fill="none" {}/>"#,
                        p[0],
                        p[1],
                        stroke(c, 1.0, w)
                    ));
                }
            }
            Mark::Twin => {
                let t = f64::from(markers::TRIANGLE) * u;
                for (r, c) in [(t + 2.0 * (inkw + halo), paper), (t + 2.0 * inkw, ink), (t, colour)] {
                    let corners: Vec<String> = (0..3)
                        .map(|k| {
                            let a = std::f64::consts::FRAC_PI_2 + f64::from(k) * std::f64::consts::TAU / 3.0;
                            format!("{:.2},{:.2}", p[0] + r * a.cos(), p[1] - r * a.sin())
                        })
                        .collect();
                    self.line(&format!(
                        r#"<polygon points="{}" {}/>"#,
                        corners.join(" "),
                        fill(c, 1.0)
                    ));
                }
            }
        }
    }
}

/// The responsibility field's colours, drawn over the plot area at [`FIELD_OPACITY`].
struct FieldImage {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// The field's opacity over the paper.
const FIELD_OPACITY: f64 = 0.3;

/// A figure in three layers: the SVG's opening and definitions; the paper and grid under the
/// field; the field image; everything above it, up to the closing tag. The SVG writes them in
/// order; the PNG draws the field itself between the two SVG layers (resvg's image decoding
/// would bring GIF, JPEG and WebP decoders along).
struct Drawing {
    open: String,
    under: String,
    field: Option<FieldImage>,
    over: String,
    frame: Frame,
}

/// The figure as an SVG document.
#[must_use]
pub fn svg(content: &Content<'_>, o: &FigureOptions) -> String {
    let d = drawing(content, o, FONTS);
    let mut out = d.open.clone();
    out.push_str(&d.under);
    if let Some(field) = &d.field {
        let rgb = image::RgbImage::from_raw(field.width as u32, field.height as u32, field.rgb.clone());
        let mut png = Vec::new();
        if rgb.is_some_and(|img| {
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .is_ok()
        }) {
            let f = d.frame;
            let _ = writeln!(
                out,
                r#"<image x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" preserveAspectRatio="none" opacity="{FIELD_OPACITY}" xlink:href="data:image/png;base64,{}"/>"#,
                f.left,
                f.top,
                f.width,
                f.height,
                base64(&png)
            );
        }
    }
    out.push_str(&d.over);
    out.push_str("</svg>\n");
    out
}

/// The figure's layers, its text set in `font`.
fn drawing(content: &Content<'_>, o: &FigureOptions, font: &str) -> Drawing {
    let f = frame(content, o);
    let (ink, paper) = markers::ink_and_paper(o.dark);
    let fs = o.font_size();
    let mut s = Svg {
        out: String::new(),
        fs,
        u: fs / 13.0,
        ink,
        paper,
    };
    let (w, h) = (o.width, o.height);
    s.line(&format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{}">"#,
        esc(font)
    ));
    s.line(&format!(
        r#"<defs><clipPath id="plot"><rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"/></clipPath></defs>"#,
        f.left, f.top, f.width, f.height
    ));
    let open = std::mem::take(&mut s.out);
    s.line(&format!("<title>{}</title>", esc(&content.title)));
    s.line(&format!(r#"<rect width="{w}" height="{h}" {}/>"#, fill(paper, 1.0)));
    let (xt, yt) = (
        ticks(f.lo[0], f.hi[0], f.width, 6.0 * fs),
        ticks(f.lo[1], f.hi[1], f.height, 3.0 * fs),
    );
    // Faint grid lines at the ticks, under everything.
    let mut grid = Vec::new();
    for (v, _) in &xt {
        grid.push([[*v, f.lo[1]], [*v, f.hi[1]]]);
    }
    for (v, _) in &yt {
        grid.push([[f.lo[0], *v], [f.hi[0], *v]]);
    }
    s.segments(&f, &grid, &stroke(ink, 0.1, 0.8 * s.u));
    let under = std::mem::take(&mut s.out);
    s.line(r#"<g clip-path="url(#plot)">"#);
    let field = background(&mut s, content, &f);
    points(&mut s, content.data, &f);
    prototypes(&mut s, content, &f);
    probes(&mut s, content.data, &f);
    s.line("</g>");
    axes(&mut s, content, &f, &xt, &yt);
    legend(&mut s, content, &f);
    Drawing {
        open,
        under,
        field,
        over: s.out,
        frame: f,
    }
}

/// The background over the frame: the free-energy contours with their labels and the decision
/// boundary, drawn; the responsibility colours, returned as an image.
fn background(s: &mut Svg, content: &Content<'_>, f: &Frame) -> Option<FieldImage> {
    let data = content.data;
    let problem = &data.problem;
    let ce = problem.spec.regime == Regime::CrossEntropy;
    if content.background == Background::None && !ce {
        return None;
    }
    // About one cell per 4 pixels, as fine as the window's default grid or finer.
    let grid = Grid {
        min: f.lo,
        max: f.hi,
        width: ((f.width / 4.0) as usize).clamp(60, 400),
        height: ((f.height / 4.0) as usize).clamp(60, 400),
    };
    let fields = view_data::fields(problem, &data.gd, &grid, &data.projection);
    if content.background == Background::FreeEnergy {
        let contours: Vec<(f64, Vec<[[f64; 2]; 2]>)> = view_data::levels(&fields.free_energy, 10)
            .into_iter()
            .map(|level| (level, view_data::contour(&grid, &fields.free_energy, level)))
            .collect();
        let ink = s.ink;
        for (_, segs) in &contours {
            s.segments(f, segs, &stroke(ink, 0.45, s.u));
        }
        for (at, text) in view_data::contour_labels(&contours, (f.lo, f.hi)) {
            let p = f.px(at);
            s.text(p, "middle", 0.75, ink.gamma_multiply(0.75), &format!("F = {text}"));
        }
    }
    if ce {
        let segs = if fields.margins.is_empty() {
            view_data::boundary(&grid, &fields.winner)
        } else {
            view_data::smooth_boundary(&grid, &fields.margins)
        };
        let style = stroke(s.ink, 0.85, 2.0 * s.u);
        s.segments(f, &segs, &style);
    }
    (content.background == Background::Responsibility && fields.colours.len() == grid.width * grid.height).then(|| {
        FieldImage {
            width: grid.width,
            height: grid.height,
            rgb: fields.colours.iter().flat_map(|c| [c.r(), c.g(), c.b()]).collect(),
        }
    })
}

/// The points (fill: responsibilities; ring: the label's colour), the read-outs and the
/// inspected point.
fn points(s: &mut Svg, data: &SceneData, f: &Frame) {
    let ink = s.ink;
    if !data.readouts.is_empty() {
        s.segments(f, &data.readouts, &stroke(ink, 0.25, 0.6 * s.u));
    }
    let r = if data.points.len() > 3000 { 1.8 } else { 3.0 } * s.u;
    s.line(r#"<g id="points">"#);
    for (i, (&p, &c)) in data.points.iter().zip(&data.colours).enumerate() {
        let q = f.px(p);
        let edge = data
            .outlines
            .as_ref()
            .and_then(|o| o.get(i))
            .map_or(String::new(), |&o| format!(" {}", stroke(o, 1.0, 1.2 * s.u)));
        s.line(&format!(
            r#"<circle cx="{:.2}" cy="{:.2}" r="{r:.2}" {}{edge}/>"#,
            q[0],
            q[1],
            fill(c, 1.0)
        ));
    }
    s.line("</g>");
    for link in &data.readouts {
        let q = f.px(link[1]);
        s.line(&format!(
            r#"<circle cx="{:.2}" cy="{:.2}" r="{:.2}" {}/>"#,
            q[0],
            q[1],
            1.6 * s.u,
            fill(ink, 0.7)
        ));
    }
    if let Some(link) = data.selected_readout {
        s.segments(f, &[link], &stroke(ink, 1.0, 2.0 * s.u));
    }
    if let Some(at) = data.selected {
        let q = f.px(at);
        s.line(&format!(
            r#"<circle cx="{:.2}" cy="{:.2}" r="{:.2}" fill="none" {}/>"#,
            q[0],
            q[1],
            7.0 * s.u,
            stroke(ink, 1.0, 1.5 * s.u)
        ));
    }
}

/// Ellipses, trails and the markers (EM's rings, the twin's triangles, GD's discs on top).
fn prototypes(s: &mut Svg, content: &Content<'_>, f: &Frame) {
    let data = content.data;
    let colour = |j: usize| data.prototype_colours.get(j).copied().unwrap_or(Color32::GRAY);
    let runs: [(&Vec<scene_data::Ellipses>, &str, f64); 3] = [
        (&data.gd_ellipses, "", 1.6),
        (&data.em_ellipses, r#" stroke-dasharray="8 5""#, 1.3),
        (&data.twin_ellipses, r#" stroke-dasharray="2 3""#, 1.3),
    ];
    for (all, dash, width) in runs {
        for (j, pair) in all.iter().enumerate() {
            for (k, path) in pair.iter().enumerate() {
                let style = format!(
                    "{}{dash}",
                    stroke(colour(j), if k == 0 { 1.0 } else { 0.55 }, width * s.u)
                );
                s.polyline(f, path, &style);
            }
        }
    }
    for (j, path) in data.gd_trails.iter().enumerate() {
        s.polyline(f, path, &stroke(colour(j), 0.8, 1.5 * s.u));
    }
    for (j, path) in data.em_trails.iter().enumerate() {
        let style = format!(r#"{} stroke-dasharray="4 3""#, stroke(colour(j), 0.5, s.u));
        s.polyline(f, path, &style);
    }
    let mut marks = Vec::new();
    for j in 0..data.gd.k {
        if content.show_em && j < data.em.k {
            marks.push((data.em_prototype(j), Mark::Em, colour(j)));
        }
        marks.push((data.gd_prototype(j), Mark::Gd, colour(j)));
    }
    if let Some((_, positions)) = &data.twin {
        for (j, &at) in positions.iter().enumerate() {
            marks.push((at, Mark::Twin, colour(j)));
        }
    }
    marks.sort_by_key(|(_, mark, _)| mark.layer());
    s.line(r#"<g id="prototypes">"#);
    for (at, mark, c) in marks {
        let p = f.px(at);
        if p.iter().all(|v| v.is_finite() && v.abs() < 1e7) {
            s.marker(mark, p, c);
        }
    }
    s.line("</g>");
}

/// Each probe's path, start (square), fixed point (asterisk) and label.
fn probes(s: &mut Svg, data: &SceneData, f: &Frame) {
    let ink = s.ink;
    let centre = [f64::midpoint(f.lo[0], f.hi[0]), f64::midpoint(f.lo[1], f.hi[1])];
    let per_px = f.per_px();
    for (q, r) in data.probes.iter().enumerate() {
        let path: Vec<[f64; 2]> = r.path.iter().map(|x| data.projection.project(x)).collect();
        let (Some(&start), Some(&end)) = (path.first(), path.last()) else {
            continue;
        };
        s.polyline(f, &path, &stroke(ink, 0.8, 1.2 * s.u));
        let a = f.px(start);
        let side = 8.0 * s.u;
        s.line(&format!(
            r#"<rect x="{:.2}" y="{:.2}" width="{side:.2}" height="{side:.2}" fill="none" {}/>"#,
            a[0] - side / 2.0,
            a[1] - side / 2.0,
            stroke(ink, 1.0, 1.2 * s.u)
        ));
        let b = f.px(end);
        let arm = 7.0 * s.u;
        let mut star = String::new();
        for k in 0..3 {
            let t = std::f64::consts::PI * f64::from(k) / 3.0 + std::f64::consts::FRAC_PI_2;
            let (dx, dy) = (arm * t.cos(), arm * t.sin());
            let _ = write!(
                star,
                "M{:.2} {:.2}L{:.2} {:.2}",
                b[0] - dx,
                b[1] - dy,
                b[0] + dx,
                b[1] + dy
            );
        }
        s.line(&format!(r#"<path d="{star}" {}/>"#, stroke(ink, 1.0, 1.5 * s.u)));
        let scaled = [per_px[0] * s.u, per_px[1] * s.u];
        let (anchor, text, at) = super::scene::probe_label(q, &r.kind.short(), end, centre, scaled);
        let p = f.px(at);
        let h = if anchor.x() == egui::Align::Min { "start" } else { "end" };
        // egui anchors the text's top or bottom; SVG places the baseline.
        let y = if anchor.y() == egui::Align::Max {
            p[1]
        } else {
            p[1] + 0.8 * s.fs
        };
        s.text([p[0], y], h, 0.85, ink, &text);
    }
}

/// The frame, ticks and tick labels, the axes' names, the title and the notes beside it.
fn axes(s: &mut Svg, content: &Content<'_>, f: &Frame, xt: &[(f64, String)], yt: &[(f64, String)]) {
    let (ink, fs, u) = (s.ink, s.fs, s.u);
    s.line(&format!(
        r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" {}/>"#,
        f.left,
        f.top,
        f.width,
        f.height,
        stroke(ink, 1.0, u)
    ));
    let bottom = f.top + f.height;
    let mut marks = Vec::new();
    for (v, label) in xt {
        let x = f.px([*v, f.lo[1]])[0];
        marks.push([[x, bottom], [x, bottom + 0.4 * fs]]);
        s.text([x, bottom + 1.45 * fs], "middle", 0.85, ink, label);
    }
    for (v, label) in yt {
        let y = f.px([f.lo[0], *v])[1];
        marks.push([[f.left - 0.4 * fs, y], [f.left, y]]);
        s.text([f.left - 0.6 * fs, y + 0.3 * fs], "end", 0.85, ink, label);
    }
    let mut d = String::new();
    for m in &marks {
        let _ = write!(d, "M{:.2} {:.2}L{:.2} {:.2}", m[0][0], m[0][1], m[1][0], m[1][1]);
    }
    s.line(&format!(r#"<path d="{d}" {}/>"#, stroke(ink, 1.0, u)));
    let [x_name, y_name] = scene_data::axis_names(&content.data.problem, &content.data.projection);
    s.text([f.left + f.width / 2.0, bottom + 2.9 * fs], "middle", 1.0, ink, &x_name);
    let (yx, yy) = (1.2 * fs, f.top + f.height / 2.0);
    s.line(&format!(
        r#"<text x="{yx:.2}" y="{yy:.2}" font-size="{fs:.2}" text-anchor="middle" transform="rotate(-90 {yx:.2} {yy:.2})" {}>{}</text>"#,
        fill(ink, 1.0),
        esc(&y_name)
    ));
    s.text([f.left, 1.65 * fs], "start", 1.15, ink, &content.title);
    let notes = notes(content.data);
    if !notes.is_empty() {
        s.text(
            [f.left + f.width, 1.65 * fs],
            "end",
            0.8,
            ink.gamma_multiply(0.8),
            &notes.join("; "),
        );
    }
}

/// What a reader must know that the plot cannot show.
fn notes(data: &SceneData) -> Vec<String> {
    let mut notes = Vec::new();
    if data.gd.dim > 2 {
        notes.push(match &data.projection.plane {
            Plane::Principal { explained, .. } => format!(
                "PCA of {} coordinates ({:.1} % of the variance)",
                data.gd.dim,
                100.0 * (explained[0] + explained[1])
            ),
            Plane::Coordinates(..) => format!("2 of {} coordinates, the others at the mean", data.gd.dim),
            Plane::Discriminant { .. } => format!("LDA plane of {} coordinates", data.gd.dim),
        });
    }
    if !scene_data::equal_axes(data.content) {
        notes.push("axes not to scale".into());
    }
    if data.total_points > data.points.len() {
        notes.push(format!("{} of {} points drawn", data.points.len(), data.total_points));
    }
    notes
}

/// What a legend row shows beside its text.
enum Swatch {
    Mark(Mark, Color32),
    /// A few points in the first components' colours.
    Points(Vec<Color32>),
    /// A line in a colour, width and dash.
    Line(Color32, f64, &'static str),
    /// A probe's asterisk.
    Star,
}

/// The legend's rows for this figure.
fn legend_rows(content: &Content<'_>, ink: Color32) -> Vec<(Swatch, String)> {
    let data = content.data;
    let c0 = data.prototype_colours.first().copied().unwrap_or(Color32::GRAY);
    let ce = data.problem.spec.regime == Regime::CrossEntropy;
    let mut rows = vec![(Swatch::Mark(Mark::Gd, c0), "gradient descent".to_string())];
    if content.show_em {
        rows.push((Swatch::Mark(Mark::Em, c0), "explicit EM".into()));
    }
    if let Some((label, _)) = &data.twin {
        rows.push((Swatch::Mark(Mark::Twin, c0), format!("twin: {label}")));
    }
    let palette: Vec<Color32> = data.prototype_colours.iter().take(3).copied().collect();
    rows.push((
        Swatch::Points(palette),
        if ce {
            "points: fill p(c|x), ring the label".into()
        } else {
            "points: colour mixes r_ij".into()
        },
    ));
    if !data.gd_trails.is_empty() {
        rows.push((Swatch::Line(c0, 1.5, ""), "GD trail".into()));
    }
    if !data.em_trails.is_empty() {
        rows.push((Swatch::Line(c0.gamma_multiply(0.5), 1.0, "4 3"), "EM trail".into()));
    }
    if !data.gd_ellipses.is_empty() {
        rows.push((Swatch::Line(c0, 1.6, ""), "1σ and 2σ ellipses".into()));
    }
    if ce {
        rows.push((Swatch::Line(ink, 2.0, ""), "decision boundary".into()));
    }
    if content.background == Background::FreeEnergy {
        rows.push((
            Swatch::Line(ink.gamma_multiply(0.45), 1.0, ""),
            "free energy F(x)".into(),
        ));
    }
    if !data.probes.is_empty() {
        rows.push((Swatch::Star, "probe and its fixed point".into()));
    }
    rows
}

/// The legend, in the corner of the plot that covers the fewest points and prototypes.
fn legend(s: &mut Svg, content: &Content<'_>, f: &Frame) {
    let (ink, paper, fs, u) = (s.ink, s.paper, s.fs, s.u);
    let rows = legend_rows(content, ink);
    let row_h = 1.6 * fs;
    let swatch_w = 2.4 * fs;
    let longest = rows.iter().map(|(_, t)| t.chars().count()).max().unwrap_or(0) as f64;
    let (w, h) = (
        swatch_w + 0.5 * 0.85 * fs * longest + 1.8 * fs,
        row_h * rows.len() as f64 + 0.6 * fs,
    );
    let pad = 0.6 * fs;
    let corners = [
        [f.left + f.width - w - pad, f.top + pad],
        [f.left + pad, f.top + pad],
        [f.left + f.width - w - pad, f.top + f.height - h - pad],
        [f.left + pad, f.top + f.height - h - pad],
    ];
    let data = content.data;
    let covered = |c: &[f64; 2]| {
        let inside = |p: [f64; 2]| {
            let q = f.px(p);
            q[0] >= c[0] && q[0] <= c[0] + w && q[1] >= c[1] && q[1] <= c[1] + h
        };
        let prototypes = (0..data.gd.k).filter(|&j| inside(data.gd_prototype(j))).count();
        data.points.iter().filter(|&&p| inside(p)).count() + 50 * prototypes
    };
    let at = corners.iter().min_by_key(|c| covered(c)).copied().unwrap_or(corners[0]);
    s.line(&format!(
        r#"<g id="legend"><rect x="{:.2}" y="{:.2}" width="{w:.2}" height="{h:.2}" rx="{:.2}" {} {}/>"#,
        at[0],
        at[1],
        0.3 * fs,
        fill(paper, 0.9),
        stroke(ink, 0.4, u)
    ));
    for (k, (swatch, text)) in rows.iter().enumerate() {
        let y = at[1] + 0.3 * fs + row_h * (k as f64 + 0.5);
        let cx = at[0] + 0.5 * fs + 0.5 * swatch_w;
        let x = at[0] + 0.5 * fs + swatch_w + 0.4 * fs;
        match swatch {
            Swatch::Mark(mark, c) => {
                // The legend's markers at 60 % of the plot's, so a ring fits its row.
                let scale = s.u;
                s.u = 0.6 * scale;
                s.marker(*mark, [cx, y], *c);
                s.u = scale;
            }
            Swatch::Points(colours) => {
                for (i, c) in colours.iter().enumerate() {
                    let px = cx + (i as f64 - 1.0) * 0.55 * fs;
                    s.line(&format!(
                        r#"<circle cx="{px:.2}" cy="{y:.2}" r="{:.2}" {}/>"#,
                        3.0 * u,
                        fill(*c, 1.0)
                    ));
                }
            }
            Swatch::Line(c, width, dash) => {
                let dash = if dash.is_empty() {
                    String::new()
                } else {
                    format!(r#" stroke-dasharray="{dash}""#)
                };
                s.line(&format!(
                    r#"<path d="M{:.2} {y:.2}H{:.2}" {}{dash}/>"#,
                    cx - 0.45 * swatch_w,
                    cx + 0.45 * swatch_w,
                    stroke(*c, 1.0, width * u)
                ));
            }
            Swatch::Star => {
                let arm = 5.0 * u;
                s.line(&format!(
                    r#"<path d="M{:.2} {y:.2}H{:.2}M{cx:.2} {:.2}V{:.2}" {}/>"#,
                    cx - arm,
                    cx + arm,
                    y - arm,
                    y + arm,
                    stroke(ink, 1.0, 1.5 * u)
                ));
            }
        }
        s.text([x, y + 0.3 * fs], "start", 0.85, ink, text);
    }
    s.line("</g>");
}

/// egui's own fonts for the rasteriser, and the family name of its proportional font.
fn fonts() -> (resvg::usvg::fontdb::Database, String) {
    let defs = egui::FontDefinitions::default();
    let mut db = resvg::usvg::fontdb::Database::new();
    for data in defs.font_data.values() {
        db.load_font_data(data.bytes().to_vec());
    }
    let family = db
        .faces()
        .find(|face| face.post_script_name.contains("Ubuntu"))
        .and_then(|face| face.families.first())
        .map_or_else(|| "Ubuntu".to_string(), |(name, _)| name.clone());
    (db, family)
}

/// The figure as a PNG, rasterised from its SVG.
///
/// # Errors
/// A size outside the allowed range, or an SVG the rasteriser rejects.
pub fn png(content: &Content<'_>, o: &FigureOptions) -> Result<Vec<u8>, String> {
    o.check()?;
    let (db, family) = fonts();
    let d = drawing(content, o, &family);
    let options = resvg::usvg::Options {
        font_family: family,
        fontdb: Arc::new(db),
        ..Default::default()
    };
    use resvg::tiny_skia::{FilterQuality, Pixmap, PixmapPaint, Transform};
    let mut pixmap =
        Pixmap::new(o.width, o.height).ok_or_else(|| format!("cannot make a {} x {} image", o.width, o.height))?;
    let layer = |pixmap: &mut Pixmap, body: &str| -> Result<(), String> {
        let text = format!("{}{body}</svg>\n", d.open);
        let tree = resvg::usvg::Tree::from_str(&text, &options).map_err(|e| format!("cannot draw the figure: {e}"))?;
        resvg::render(&tree, Transform::identity(), &mut pixmap.as_mut());
        Ok(())
    };
    layer(&mut pixmap, &d.under)?;
    if let Some(field) = &d.field {
        let rgba: Vec<u8> = field.rgb.chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect();
        let size = resvg::tiny_skia::IntSize::from_wh(field.width as u32, field.height as u32);
        if let Some(image) = size.and_then(|size| Pixmap::from_vec(rgba, size)) {
            let f = d.frame;
            let paint = PixmapPaint {
                opacity: FIELD_OPACITY as f32,
                quality: FilterQuality::Bilinear,
                ..PixmapPaint::default()
            };
            let to_plot = Transform::from_row(
                (f.width / field.width as f64) as f32,
                0.0,
                0.0,
                (f.height / field.height as f64) as f32,
                f.left as f32,
                f.top as f32,
            );
            pixmap.draw_pixmap(0, 0, image.as_ref(), &paint, to_plot, None);
        }
    }
    layer(&mut pixmap, &d.over)?;
    pixmap.encode_png().map_err(|e| format!("cannot encode the PNG: {e}"))
}

/// The figure in the format `path` names (`.svg` or `.png`), written atomically.
///
/// # Errors
/// Another extension, a size outside the range, or a file that cannot be written.
pub fn write(content: &Content<'_>, o: &FigureOptions, path: &std::path::Path) -> Result<(), String> {
    o.check()?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "svg" => svg(content, o).into_bytes(),
        "png" => png(content, o)?,
        _ => {
            return Err(format!(
                "{}: a figure is written as .svg (vector) or .png; name the file with one of them",
                path.display()
            ));
        }
    };
    crate::preset::io::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        // RFC 4648, section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(esc(r#"a < b & "c" > d"#), "a &lt; b &amp; &quot;c&quot; &gt; d");
    }
}
