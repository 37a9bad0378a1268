//! The prototypes' markers: gradient descent's filled disc, EM's ring and the twin's triangle,
//! each edged in ink (the theme's text colour) over a halo of paper (its background), so a
//! marker stands out on points of its own colour in either theme, and the three shapes stay
//! distinct when they coincide: EM's rings at the bottom, the twins' triangles above them and
//! GD's discs on top, the ring clear around the disc and the triangle's corners beyond it.

use eframe::egui::{self, Color32, Pos2, Shape, Stroke};
use egui_plot::{PlotItem, PlotItemBase, PlotPoint, PlotTransform};

/// Which run a marker stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Gradient descent: a disc in the component's colour.
    Gd,
    /// Explicit EM: a ring around where GD's disc would be.
    Em,
    /// The twin: a triangle, its corners beyond GD's disc.
    Twin,
}

impl Mark {
    /// The drawing order: rings first, then triangles, then discs (on top).
    #[must_use]
    pub fn layer(self) -> u8 {
        match self {
            Self::Em => 0,
            Self::Twin => 1,
            Self::Gd => 2,
        }
    }
}

/// GD's disc radius (points).
pub const DISC: f32 = 6.0;
/// EM's ring radius, clear of GD's disc and its halo.
pub const RING: f32 = 12.5;
/// The twin's triangle: the distance from its centre to a corner.
pub const TRIANGLE: f32 = 13.0;
/// Ink's width round each marker, and the paper halo's beyond it.
pub const INK: f32 = 1.5;
pub const HALO: f32 = 1.5;
/// The width of EM's ring in the component's colour (between its two rings of ink).
pub const BAND: f32 = 2.5;

/// The shapes of one marker at `pos`, from the bottom up.
#[must_use]
pub fn marker_shapes(mark: Mark, pos: Pos2, colour: Color32, ink: Color32, paper: Color32) -> Vec<Shape> {
    match mark {
        Mark::Gd => vec![
            Shape::circle_filled(pos, DISC + INK + HALO, paper),
            Shape::circle_filled(pos, DISC + INK, ink),
            Shape::circle_filled(pos, DISC, colour),
        ],
        Mark::Em => {
            // A band of the component's colour between two rings of ink, over a paper halo.
            let band = BAND;
            vec![
                Shape::circle_stroke(pos, RING, Stroke::new(band + 2.0 * (INK + HALO), paper)),
                Shape::circle_stroke(pos, RING, Stroke::new(band + 2.0 * INK, ink)),
                Shape::circle_stroke(pos, RING, Stroke::new(band, colour)),
            ]
        }
        Mark::Twin => {
            let corners = |r: f32| -> Vec<Pos2> {
                (0..3)
                    .map(|c| {
                        let a = std::f32::consts::FRAC_PI_2 + c as f32 * 2.0 * std::f32::consts::FRAC_PI_3;
                        // Up on the screen is −y.
                        pos + egui::vec2(r * a.cos(), -r * a.sin())
                    })
                    .collect()
            };
            // Growing the corners' distance by 2w grows the triangle's inset by w.
            vec![
                Shape::convex_polygon(corners(TRIANGLE + 2.0 * (INK + HALO)), paper, Stroke::NONE),
                Shape::convex_polygon(corners(TRIANGLE + 2.0 * INK), ink, Stroke::NONE),
                Shape::convex_polygon(corners(TRIANGLE), colour, Stroke::NONE),
            ]
        }
    }
}

/// Ink and paper for a theme: the text colour and the plot's background.
#[must_use]
pub fn ink_and_paper(dark: bool) -> (Color32, Color32) {
    if dark {
        (Color32::from_gray(235), Color32::from_gray(12))
    } else {
        (Color32::from_gray(15), Color32::from_gray(252))
    }
}

/// The rest of a [`PlotItem`] for an overlay drawn in plot coordinates that takes no part in
/// the plot's bounds or hover (markers, segments): `overlay_item_parts!(self, colour)`, inside
/// the `impl`, with a field `base: PlotItemBase`.
macro_rules! overlay_item_parts {
    ($this:ident, $colour:expr) => {
        fn initialize(&mut self, _x_range: std::ops::RangeInclusive<f64>) {}
        fn color(&$this) -> eframe::egui::Color32 {
            $colour
        }
        fn geometry(&self) -> egui_plot::PlotGeometry<'_> {
            egui_plot::PlotGeometry::None
        }
        fn bounds(&self) -> egui_plot::PlotBounds {
            egui_plot::PlotBounds::NOTHING
        }
        fn base(&self) -> &egui_plot::PlotItemBase {
            &self.base
        }
        fn base_mut(&mut self) -> &mut egui_plot::PlotItemBase {
            &mut self.base
        }
    };
}
pub(super) use overlay_item_parts;

/// Markers in plot coordinates, drawn in order (the last on top).
pub struct Markers {
    pub base: PlotItemBase,
    /// Where, what and in which colour.
    pub marks: Vec<(PlotPoint, Mark, Color32)>,
    pub ink: Color32,
    pub paper: Color32,
}

impl PlotItem for Markers {
    fn shapes(&self, _ui: &egui::Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        let frame = transform.frame().expand(RING.max(TRIANGLE) + 2.0 * (INK + HALO));
        let mut marks: Vec<_> = self.marks.iter().collect();
        marks.sort_by_key(|(_, mark, _)| mark.layer());
        for (at, mark, colour) in marks {
            let pos = transform.position_from_point(at);
            if frame.contains(pos) {
                shapes.extend(marker_shapes(*mark, pos, *colour, self.ink, self.paper));
            }
        }
    }
    overlay_item_parts!(self, self.ink);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::view_data;

    /// WCAG's relative luminance of an sRGB colour.
    fn luminance(c: Color32) -> f64 {
        let lin = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.040_45 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c.r()) + 0.7152 * lin(c.g()) + 0.0722 * lin(c.b())
    }

    /// WCAG's contrast ratio of two colours (1 to 21).
    fn contrast(a: Color32, b: Color32) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// The outermost extent of a marker's shapes from its centre, and of its ink.
    fn extent(shapes: &[Shape], pos: Pos2) -> f32 {
        shapes
            .iter()
            .map(|s| match s {
                Shape::Circle(c) => c.radius + c.stroke.width / 2.0,
                Shape::Path(p) => p.points.iter().map(|q| q.distance(pos)).fold(0.0, f32::max),
                _ => 0.0,
            })
            .fold(0.0, f32::max)
    }

    #[test]
    fn markers_contrast_with_points_of_their_own_colour_in_both_themes() {
        for dark in [true, false] {
            let (ink, paper) = ink_and_paper(dark);
            // Ink against paper: at least WCAG's 7:1 for text.
            assert!(contrast(ink, paper) >= 7.0, "dark {dark}: {}", contrast(ink, paper));
            // Each palette colour has the ink or the paper at 3:1 or more beside it (the
            // marker's edge is both, so it shows on points of its own colour).
            for j in 0..10 {
                let c = view_data::colour(j);
                let best = contrast(c, ink).max(contrast(c, paper));
                assert!(best >= 3.0, "dark {dark}, colour {j}: {best}");
            }
            // Every marker is edged in ink over paper: its first shape is paper, its second ink.
            for mark in [Mark::Gd, Mark::Em, Mark::Twin] {
                let s = marker_shapes(mark, Pos2::ZERO, view_data::colour(0), ink, paper);
                let fill = |s: &Shape| match s {
                    Shape::Circle(c) if c.fill != Color32::TRANSPARENT => c.fill,
                    Shape::Circle(c) => c.stroke.color,
                    Shape::Path(p) => p.fill,
                    _ => Color32::TRANSPARENT,
                };
                assert_eq!(fill(&s[0]), paper, "{mark:?}");
                assert_eq!(fill(&s[1]), ink, "{mark:?}");
                assert_eq!(fill(&s[2]), view_data::colour(0), "{mark:?}");
            }
        }
    }

    /// The twin's triangles used to hide under GD's circles: at one position the three marks
    /// must all show. EM's ring lies clear outside GD's disc and its halo; the triangle, drawn
    /// between them, has its coloured corners well beyond the disc's halo; the disc is on top.
    #[test]
    fn coinciding_markers_stay_distinct() {
        let (ink, paper) = ink_and_paper(true);
        let at = Pos2::new(100.0, 100.0);
        let gd = extent(&marker_shapes(Mark::Gd, at, Color32::RED, ink, paper), at);
        assert!((gd - (DISC + INK + HALO)).abs() < 1e-4, "{gd}");
        // EM's inner ink edge (the ring less half its ink stroke) clear of the disc and its
        // halo; the two halos may overlap (both are paper).
        let em_inner = RING - (BAND + 2.0 * INK) / 2.0;
        assert!(em_inner > gd, "ring's inner ink {em_inner}, disc {gd}");
        let twin = marker_shapes(Mark::Twin, at, Color32::RED, ink, paper);
        let corners = match &twin[2] {
            Shape::Path(p) => p.points.clone(),
            other => panic!("{other:?}"),
        };
        for c in &corners {
            assert!(
                c.distance(at) > gd + 3.0,
                "corner {} within the disc's halo {gd}",
                c.distance(at)
            );
        }
        // The triangle points up on the screen.
        assert!(corners.iter().any(|c| (c.x - at.x).abs() < 1e-4 && c.y < at.y));
        let mut order = [Mark::Gd, Mark::Twin, Mark::Em];
        order.sort_by_key(|m| m.layer());
        assert_eq!(order, [Mark::Em, Mark::Twin, Mark::Gd]);
    }

    #[test]
    fn contrast_matches_wcag() {
        assert!((contrast(Color32::BLACK, Color32::WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast(Color32::from_gray(128), Color32::from_gray(128)) - 1.0).abs() < 1e-12);
        // #767676 on white is WCAG's well-known 4.54:1.
        assert!((contrast(Color32::from_gray(0x76), Color32::WHITE) - 4.54).abs() < 0.01);
    }
}
