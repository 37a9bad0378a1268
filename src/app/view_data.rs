//! What the window shows, computed as plain data without widgets: point colours, background
//! fields, contours, decision boundaries, read-outs and the responsibility matrix.

use eframe::egui::Color32;

use crate::core::eval::lanes::{Colouring, field_colours};
use crate::core::eval::{Row, field_row, point_row};
use crate::core::model::{ComponentTerms, Regime, State};
use crate::core::problem::Problem;
use crate::core::projection::Projection;

/// Distinct component colours (Tableau 10).
pub const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// Colour of component (or class) `j`.
#[must_use]
pub fn colour(j: usize) -> Color32 {
    PALETTE[j % PALETTE.len()]
}

/// `Σ_j w_j colour_j` for weights summing to one: soft assignments look soft.
#[must_use]
pub fn blend(weights: impl IntoIterator<Item = (usize, f64)>) -> Color32 {
    let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
    for (j, w) in weights {
        let c = colour(j);
        r += w * f64::from(c.r());
        g += w * f64::from(c.g());
        b += w * f64::from(c.b());
    }
    let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    Color32::from_rgb(q(r), q(g), q(b))
}

/// How positions are coloured: by component, or by class for cross-entropy (the weights are
/// then the class posteriors `Σ_{j in c} r_j`, and the blend `Σ_j r_j colour(class_j)`).
struct Groups {
    palette: Vec<[f64; 3]>,
    group: Vec<usize>,
}

impl Groups {
    fn new(problem: &Problem, k: usize) -> Self {
        let group: Vec<usize> = if problem.spec.regime == Regime::CrossEntropy {
            problem.spec.classes.clone()
        } else {
            (0..k).collect()
        };
        let n = group.iter().max().map_or(0, |m| m + 1);
        let palette = (0..n)
            .map(|j| {
                let c = colour(j);
                [f64::from(c.r()), f64::from(c.g()), f64::from(c.b())]
            })
            .collect();
        Self { palette, group }
    }

    fn colouring(&self, rest: [f64; 3]) -> Colouring<'_> {
        Colouring {
            palette: &self.palette,
            group: &self.group,
            rest,
        }
    }
}

/// Channel values as a colour, rounding half up (the channels are never negative).
fn to_colour(rgb: [f64; 3]) -> Color32 {
    let q = |v: f64| (v + 0.5).clamp(0.0, 255.0) as u8;
    Color32::from_rgb(q(rgb[0]), q(rgb[1]), q(rgb[2]))
}

/// The colour of a point's share in the reject option's background component: a mid grey
/// that stands out on both themes (the background field darkens there instead).
pub const REJECTED: [f64; 3] = [150.0, 150.0, 150.0];

/// Rows per parallel chunk of the view computations.
const VIEW_CHUNK: usize = 512;

/// Each point's colour under `state` (cross-entropy points that do not count, i.e. unlabelled
/// ones, are coloured by their free responsibilities too). Parallel over fixed chunks.
#[must_use]
pub fn point_colours(problem: &Problem, state: &State) -> Vec<Color32> {
    colours_at(problem, state, &problem.points)
}

/// [`point_colours`] of every `stride`-th point only (a reduced view colours what it draws,
/// not all `N`): the colours of points `0, stride, 2·stride, …`.
#[must_use]
pub fn strided_point_colours(problem: &Problem, state: &State, stride: usize) -> Vec<Color32> {
    if stride <= 1 {
        return point_colours(problem, state);
    }
    let xs: Vec<f64> = (0..problem.len())
        .step_by(stride)
        .flat_map(|i| problem.point(i).iter().copied())
        .collect();
    colours_at(problem, state, &xs)
}

/// The colours of the positions `xs` (`n × D`, row-major), in parallel over fixed chunks.
fn colours_at(problem: &Problem, state: &State, xs: &[f64]) -> Vec<Color32> {
    use rayon::prelude::*;
    let terms = ComponentTerms::new(&problem.spec, state);
    let dim = problem.dim.max(1);
    let n = xs.len() / dim;
    let mut out = vec![Color32::BLACK; n];
    let groups = Groups::new(problem, state.k);
    out.par_chunks_mut(VIEW_CHUNK).enumerate().for_each(|(c, chunk)| {
        let (first, len) = (c * VIEW_CHUNK, chunk.len());
        let xs = &xs[first * dim..(first + len) * dim];
        let (mut rgb, mut winner, mut free) = (vec![[0.0; 3]; len], vec![0; len], vec![0.0; len]);
        field_colours(
            &problem.spec,
            state,
            &terms,
            xs,
            &groups.colouring(REJECTED),
            &mut rgb,
            &mut winner,
            &mut free,
        );
        for (o, c) in chunk.iter_mut().zip(rgb) {
            *o = to_colour(c);
        }
    });
    out
}

/// A `width × height` grid over a rectangle of the plane (first two coordinates; the others at
/// the data mean).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Lower-left corner.
    pub min: [f64; 2],
    /// Upper-right corner.
    pub max: [f64; 2],
    /// Cells across.
    pub width: usize,
    /// Cells up.
    pub height: usize,
}

impl Grid {
    /// Centre of cell `(cx, cy)`; row 0 is the top (image order).
    #[must_use]
    pub fn centre(&self, cx: usize, cy: usize) -> [f64; 2] {
        let fx = (cx as f64 + 0.5) / self.width as f64;
        let fy = (cy as f64 + 0.5) / self.height as f64;
        [
            self.min[0] + fx * (self.max[0] - self.min[0]),
            self.max[1] - fy * (self.max[1] - self.min[1]),
        ]
    }
}

/// The fields the background shows, one value per grid cell (row-major, top row first).
#[derive(Clone, Debug, Default)]
pub struct Fields {
    /// Free energy `F(x)`.
    pub free_energy: Vec<f64>,
    /// Colour of the responsibility (or class-posterior) blend.
    pub colours: Vec<Color32>,
    /// Most probable class (cross-entropy), else most responsible component.
    pub winner: Vec<usize>,
    /// Cross-entropy only: per class `c`, `p(c|x) − max_{c' ≠ c} p(c'|x)`, whose zero set is
    /// the decision boundary around `c` ([`smooth_boundary`]); empty otherwise.
    pub margins: Vec<Vec<f64>>,
}

/// Evaluates the background fields on `grid`, a rectangle of the scene's `plane` (lifted to
/// the plane through the data mean along the view axes), one grid row per parallel task.
#[must_use]
pub fn fields(problem: &Problem, state: &State, grid: &Grid, plane: &Projection) -> Fields {
    use rayon::prelude::*;
    let terms = ComponentTerms::new(&problem.spec, state);
    let groups = Groups::new(problem, state.k);
    let rows: Vec<(Vec<f64>, Vec<Color32>, Vec<usize>)> = (0..grid.height)
        .into_par_iter()
        .map(|cy| {
            let (dim, w) = (problem.dim, grid.width);
            let mut xs = Vec::with_capacity(w * dim);
            for cx in 0..w {
                xs.extend(plane.lift(grid.centre(cx, cy)));
            }
            let (mut rgb, mut winners, mut free) = (vec![[0.0; 3]; w], vec![0; w], vec![0.0; w]);
            field_colours(
                &problem.spec,
                state,
                &terms,
                &xs,
                &groups.colouring([0.0; 3]),
                &mut rgb,
                &mut winners,
                &mut free,
            );
            (free, rgb.into_iter().map(to_colour).collect(), winners)
        })
        .collect();
    let mut out = Fields::default();
    for (f, c, w) in rows {
        out.free_energy.extend(f);
        out.colours.extend(c);
        out.winner.extend(w);
    }
    if problem.spec.regime == Regime::CrossEntropy && groups.palette.len() > 1 {
        out.margins = class_margins(problem, state, grid, plane, &groups);
    }
    out
}

/// The grid cells' positions on the plane through the data mean along the view axes.
fn grid_positions(grid: &Grid, plane: &Projection) -> Vec<f64> {
    let mut xs = Vec::with_capacity(grid.width * grid.height * plane.mean.len());
    for cy in 0..grid.height {
        for cx in 0..grid.width {
            xs.extend(plane.lift(grid.centre(cx, cy)));
        }
    }
    xs
}

/// Each class's margin `p(c|x) − max_{c' ≠ c} p(c'|x)` on the grid. The class posteriors come
/// from the colour kernel itself: with a palette that puts class `c` in one channel and
/// nothing elsewhere, the blend `Σ_j r_j palette[class_j]` is `p(c|x)` in that channel (three
/// classes a pass).
fn class_margins(problem: &Problem, state: &State, grid: &Grid, plane: &Projection, groups: &Groups) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    let terms = ComponentTerms::new(&problem.spec, state);
    let classes = groups.palette.len();
    let dim = plane.mean.len().max(1);
    let xs = grid_positions(grid, plane);
    let cells = grid.width * grid.height;
    let mut posteriors = vec![vec![0.0; cells]; classes];
    for first in (0..classes).step_by(3) {
        let palette: Vec<[f64; 3]> = (0..classes)
            .map(|c| {
                let mut p = [0.0; 3];
                if (first..first + 3).contains(&c) {
                    p[c - first] = 1.0;
                }
                p
            })
            .collect();
        let colouring = Colouring {
            palette: &palette,
            group: &groups.group,
            rest: [0.0; 3],
        };
        let rgb: Vec<[f64; 3]> = xs
            .par_chunks(VIEW_CHUNK * dim)
            .flat_map_iter(|chunk| {
                let n = chunk.len() / dim;
                let (mut rgb, mut winner, mut free) = (vec![[0.0; 3]; n], vec![0; n], vec![0.0; n]);
                field_colours(
                    &problem.spec,
                    state,
                    &terms,
                    chunk,
                    &colouring,
                    &mut rgb,
                    &mut winner,
                    &mut free,
                );
                rgb
            })
            .collect();
        for c in first..(first + 3).min(classes) {
            for (q, v) in rgb.iter().enumerate() {
                posteriors[c][q] = v[c - first];
            }
        }
    }
    (0..classes)
        .map(|c| {
            (0..cells)
                .map(|q| {
                    let best_other = (0..classes)
                        .filter(|&o| o != c)
                        .map(|o| posteriors[o][q])
                        .fold(f64::NEG_INFINITY, f64::max);
                    posteriors[c][q] - best_other
                })
                .collect()
        })
        .collect()
}

/// The decision boundary as the interpolated zero sets of the class margins (marching
/// squares): smooth where [`boundary`] follows the grid's cells in steps. The boundary of the
/// last class is left out (every piece of it is some other class's boundary too).
#[must_use]
pub fn smooth_boundary(grid: &Grid, margins: &[Vec<f64>]) -> Vec<[[f64; 2]; 2]> {
    let n = margins.len().saturating_sub(1);
    margins[..n].iter().flat_map(|m| contour(grid, m, 0.0)).collect()
}

/// Line segments of the level set `value = level` of a grid field (marching squares over
/// cell centres). Segments are in plane coordinates.
#[must_use]
pub fn contour(grid: &Grid, values: &[f64], level: f64) -> Vec<[[f64; 2]; 2]> {
    let mut segments = Vec::new();
    let at = |cx: usize, cy: usize| values[cy * grid.width + cx];
    let lerp = |a: [f64; 2], b: [f64; 2], va: f64, vb: f64| {
        let t = if (vb - va).abs() > 0.0 {
            (level - va) / (vb - va)
        } else {
            0.5
        };
        [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
    };
    for cy in 0..grid.height.saturating_sub(1) {
        for cx in 0..grid.width.saturating_sub(1) {
            // Corners: top-left, top-right, bottom-right, bottom-left.
            let p = [
                grid.centre(cx, cy),
                grid.centre(cx + 1, cy),
                grid.centre(cx + 1, cy + 1),
                grid.centre(cx, cy + 1),
            ];
            let v = [at(cx, cy), at(cx + 1, cy), at(cx + 1, cy + 1), at(cx, cy + 1)];
            let mut crossings = Vec::with_capacity(4);
            for e in 0..4 {
                let (a, b) = (e, (e + 1) % 4);
                if (v[a] < level) != (v[b] < level) {
                    crossings.push(lerp(p[a], p[b], v[a], v[b]));
                }
            }
            match crossings.len() {
                2 => segments.push([crossings[0], crossings[1]]),
                4 => {
                    segments.push([crossings[0], crossings[1]]);
                    segments.push([crossings[2], crossings[3]]);
                }
                _ => {}
            }
        }
    }
    segments
}

/// Round levels (multiples of a 1-2-5 step, about `count` of them) between the 2nd and 60th
/// percentile of a field (where the structure is; the far field only grows), so each can be
/// labelled with a short number.
#[must_use]
pub fn levels(values: &[f64], count: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.len() < 2 || count == 0 {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let lo = sorted[sorted.len() / 50];
    let hi = sorted[sorted.len() * 3 / 5];
    if hi <= lo {
        return Vec::new();
    }
    let step = nice_step((hi - lo) / count as f64);
    let first = (lo / step).floor() + 1.0;
    (0..2 * count)
        .map(|i| (first + i as f64) * step)
        .take_while(|&v| v <= hi)
        .collect()
}

/// Where to label each contour: the top-most midpoint of its segments inside the view `lo …
/// hi` (nested rings around a cluster then carry their labels apart, and a ring larger than
/// the view is labelled where it shows), with the level's text.
#[must_use]
pub fn contour_labels(
    contours: &[(f64, Vec<[[f64; 2]; 2]>)],
    (lo, hi): ([f64; 2], [f64; 2]),
) -> Vec<([f64; 2], String)> {
    // Room for the label's height above its point and half its width either side.
    let top = hi[1] - 0.06 * (hi[1] - lo[1]);
    let (left, right) = (lo[0] + 0.07 * (hi[0] - lo[0]), hi[0] - 0.07 * (hi[0] - lo[0]));
    let inside = |p: &[f64; 2]| p[0] >= left && p[0] <= right && p[1] >= lo[1] && p[1] <= top;
    let (Some(first), Some(last)) = (contours.first(), contours.last()) else {
        return Vec::new();
    };
    // Decimals from the levels' step, as on an axis.
    let step = contours.get(1).map_or(first.0.abs(), |second| second.0 - first.0);
    let range = first.0..=last.0;
    // Two labels closer than this (about one label's width and height) would overprint.
    let (gap_x, gap_y) = (0.16 * (hi[0] - lo[0]), 0.06 * (hi[1] - lo[1]));
    let mut placed: Vec<([f64; 2], String)> = Vec::new();
    for (level, segs) in contours {
        let mut spots: Vec<[f64; 2]> = segs
            .iter()
            .map(|s| [f64::midpoint(s[0][0], s[1][0]), f64::midpoint(s[0][1], s[1][1])])
            .filter(inside)
            .collect();
        spots.sort_by(|a, b| b[1].total_cmp(&a[1]));
        let clear = |p: &[f64; 2]| {
            placed
                .iter()
                .all(|(q, _)| (p[0] - q[0]).abs() > gap_x || (p[1] - q[1]).abs() > gap_y)
        };
        if let Some(at) = spots.into_iter().find(clear) {
            placed.push((at, tick(*level, step, &range)));
        }
    }
    placed
}

/// Segments between grid cells whose winner differs: the decision boundary (cross-entropy) or
/// the Voronoi-like partition of the responsibilities.
#[must_use]
pub fn boundary(grid: &Grid, winner: &[usize]) -> Vec<[[f64; 2]; 2]> {
    let mut segments = Vec::new();
    let dx = (grid.max[0] - grid.min[0]) / grid.width as f64;
    let dy = (grid.max[1] - grid.min[1]) / grid.height as f64;
    for cy in 0..grid.height {
        for cx in 0..grid.width {
            let w = winner[cy * grid.width + cx];
            let c = grid.centre(cx, cy);
            if cx + 1 < grid.width && winner[cy * grid.width + cx + 1] != w {
                let x = c[0] + dx / 2.0;
                segments.push([[x, c[1] - dy / 2.0], [x, c[1] + dy / 2.0]]);
            }
            if cy + 1 < grid.height && winner[(cy + 1) * grid.width + cx] != w {
                let y = c[1] - dy / 2.0;
                segments.push([[c[0] - dx / 2.0, y], [c[0] + dx / 2.0, y]]);
            }
        }
    }
    segments
}

/// The attention read-out of query `i` in the plane: `Σ_j α_ij k_j` (one mean-shift step of
/// the query toward the keys, MATH.md §4).
#[must_use]
pub fn readout(problem: &Problem, state: &State, i: usize) -> Option<Vec<f64>> {
    let row = point_row(problem, state, i)?;
    let mut out = vec![0.0; problem.dim];
    for (j, a) in row.responsibilities.iter().enumerate() {
        for (o, m) in out.iter_mut().zip(state.prototype(j)) {
            *o += a * m;
        }
    }
    Some(out)
}

/// The responsibility matrix, points × components, with points grouped by their most
/// responsible component (then by that responsibility, descending). At most `max_rows` rows
/// (evenly subsampled). Returns the row-major matrix and the number of rows.
#[must_use]
pub fn responsibility_matrix(problem: &Problem, state: &State, max_rows: usize) -> (Vec<f64>, usize) {
    let terms = ComponentTerms::new(&problem.spec, state);
    let mut row = Row::new(state.k, problem.dim, problem.target_dim);
    let n = problem.len();
    let take = n.min(max_rows.max(1));
    let mut rows: Vec<(usize, f64, Vec<f64>)> = (0..take)
        .map(|s| {
            let i = s * n / take;
            field_row(&problem.spec, state, &terms, problem.point(i), &mut row);
            let r = row.responsibilities.clone();
            let (j, v) = r
                .iter()
                .copied()
                .enumerate()
                .fold((0, f64::MIN), |b, (j, v)| if v > b.1 { (j, v) } else { b });
            (j, v, r)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    (rows.into_iter().flat_map(|(_, _, r)| r).collect(), take)
}

/// A number as the window shows it: `sig` significant digits in fixed point between `1e-3` and
/// `1e6`, scientific notation outside (so η = 100 can run the losses to `1e300` without a
/// 300-digit label widening a panel), `0` for zero.
#[must_use]
pub fn num(v: f64, sig: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let sig = sig.max(1);
    let magnitude = v.abs().log10().floor();
    if (-3.0..6.0).contains(&magnitude) {
        let decimals = (sig as f64 - 1.0 - magnitude).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.*e}", sig - 1)
    }
}

/// The smallest step of the 1-2-5 sequence (…, 0.5, 1, 2, 5, 10, …) that is at least `min`.
#[must_use]
pub fn nice_step(min: f64) -> f64 {
    if !(min.is_finite() && min > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(min.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&s| s >= min * (1.0 - 1e-12))
        .unwrap_or(10.0 * decade)
}

/// egui_plot's `base_step_size` is the value span of this many pixels (its grid's minimum
/// spacing).
const GRID_MIN_PX: f64 = 8.0;

/// Grid marks for one axis: labelled lines at a 1-2-5 step at least `label_px` pixels apart,
/// thinner unlabelled lines between (a fifth of a 1 or 5 step, a quarter of a 2 step), thicker
/// ones at ten times it. egui_plot's own spacer steps by powers of ten only, so at a few hundred
/// pixels for a span of 14 it labels only `0` (its 1-step is too close, its 10-step too far).
#[must_use]
pub fn nice_marks(input: &egui_plot::GridInput, label_px: f64) -> Vec<egui_plot::GridMark> {
    let per_px = input.base_step_size / GRID_MIN_PX;
    if !(per_px.is_finite() && per_px > 0.0) {
        return Vec::new();
    }
    let label = nice_step(per_px * label_px);
    let mantissa = label / 10f64.powf(label.log10().floor());
    let minor = if (mantissa - 2.0).abs() < 0.5 {
        label / 4.0
    } else {
        label / 5.0
    };
    marks(&[minor, label, 10.0 * label], input.bounds)
}

/// Grid marks for a log-scale axis whose values are `log10`: labelled lines only at whole
/// decades (every 1, 2, 5, … decades, at least `label_px` pixels apart).
#[must_use]
pub fn decade_marks(input: &egui_plot::GridInput, label_px: f64) -> Vec<egui_plot::GridMark> {
    let per_px = input.base_step_size / GRID_MIN_PX;
    if !(per_px.is_finite() && per_px > 0.0) {
        return Vec::new();
    }
    let label = nice_step(per_px * label_px).max(1.0);
    marks(&[label, 10.0 * label], input.bounds)
}

/// Every multiple of each step in `steps` (ascending) within `bounds`, each value once with the
/// largest step it is a multiple of (at most 2,000 marks: a degenerate range draws none).
fn marks(steps: &[f64], (lo, hi): (f64, f64)) -> Vec<egui_plot::GridMark> {
    let fine = steps[0];
    if !(lo.is_finite() && hi.is_finite() && fine > 0.0) || (hi - lo) / fine > 2000.0 {
        return Vec::new();
    }
    let first = (lo / fine).ceil() as i64;
    let last = (hi / fine).floor() as i64;
    (first..=last)
        .map(|i| {
            let value = i as f64 * fine;
            let step_size = steps
                .iter()
                .rev()
                .copied()
                .find(|&s| {
                    let q = value / s;
                    (q - q.round()).abs() < 1e-6
                })
                .unwrap_or(fine);
            egui_plot::GridMark { value, step_size }
        })
        .collect()
}

/// An axis tick label at `value`, a multiple of the tick spacing `step`: `0` at zero (and at
/// rounding distance from it), fixed point with the decimals the spacing needs while the axis
/// stays within `1e-3 … 1e5`, scientific notation with the digits that tell neighbours apart
/// outside (so an axis at `1e300` is a few characters wide, never hundreds of digits).
#[must_use]
pub fn tick(value: f64, step: f64, range: &std::ops::RangeInclusive<f64>) -> String {
    if value == 0.0 || value.abs() <= 1e-9 * step.abs() {
        return "0".into();
    }
    let largest = range.start().abs().max(range.end().abs());
    let step_decade = step.abs().log10().floor();
    if (1e-3..1e5).contains(&largest) {
        let decimals = (-step_decade).clamp(0.0, 6.0) as usize;
        format!("{value:.decimals$}")
    } else {
        let digits = (value.abs().log10().floor() - step_decade).clamp(0.0, 6.0) as usize;
        format!("{value:.digits$e}")
    }
}

/// The label of a log-scale tick at `log10 = value`: plain between 0.001 and 1000, `1e−k`
/// beyond, nothing between decades.
#[must_use]
pub fn decade_tick(value: f64) -> String {
    let n = value.round();
    if (value - n).abs() > 1e-6 {
        return String::new();
    }
    match n as i32 {
        e @ -3..=3 => tick(10f64.powi(e), 10f64.powi(e), &(0.0..=1.0)),
        e => format!("1e{e}"),
    }
}

/// Labelled pixels per tick on the x axis (labels are wide) and on the y axis.
const LABEL_PX: [f64; 2] = [72.0, 30.0];

/// A plot with 1-2-5 grids and [`tick`] labels on both axes.
#[must_use]
pub fn short_ticks(plot: egui_plot::Plot<'_>) -> egui_plot::Plot<'_> {
    plot.x_grid_spacer(|input| nice_marks(&input, LABEL_PX[0]))
        .y_grid_spacer(|input| nice_marks(&input, LABEL_PX[1]))
        .x_axis_formatter(|mark, range| tick(mark.value, mark.step_size, range))
        .y_axis_formatter(|mark, range| tick(mark.value, mark.step_size, range))
}

/// A plot like [`short_ticks`] whose y values are `log10` of what it shows: decades labelled.
#[must_use]
pub fn log_y_ticks(plot: egui_plot::Plot<'_>) -> egui_plot::Plot<'_> {
    plot.x_grid_spacer(|input| nice_marks(&input, LABEL_PX[0]))
        .y_grid_spacer(|input| decade_marks(&input, LABEL_PX[1]))
        .x_axis_formatter(|mark, range| tick(mark.value, mark.step_size, range))
        .y_axis_formatter(|mark, _| decade_tick(mark.value))
}

/// A plot like [`short_ticks`] whose x values are `log10` of what it shows (the bifurcation
/// plot's temperature): decades labelled.
#[must_use]
pub fn log_x_ticks(plot: egui_plot::Plot<'_>) -> egui_plot::Plot<'_> {
    plot.x_grid_spacer(|input| decade_marks(&input, LABEL_PX[0]))
        .y_grid_spacer(|input| nice_marks(&input, LABEL_PX[1]))
        .x_axis_formatter(|mark, _| decade_tick(mark.value))
        .y_axis_formatter(|mark, range| tick(mark.value, mark.step_size, range))
}

/// Distances below this read as 0 in the plots: the rounding level of coordinates of order one
/// (GD and EM that coincide differ by about `1e-15`, which auto-scaling would blow up).
pub const DISTANCE_FLOOR: f64 = 1e-12;

/// The data's bounding box (first two coordinates), padded by 10%.
#[must_use]
pub fn data_bounds(problem: &Problem) -> ([f64; 2], [f64; 2]) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for i in 0..problem.len() {
        let x = problem.point(i);
        for d in 0..2.min(problem.dim) {
            lo[d] = lo[d].min(x[d]);
            hi[d] = hi[d].max(x[d]);
        }
    }
    if problem.dim < 2 {
        lo[1] = -1.0;
        hi[1] = 1.0;
    }
    for d in 0..2 {
        if !lo[d].is_finite() {
            lo[d] = -1.0;
            hi[d] = 1.0;
        }
        let pad = 0.1 * (hi[d] - lo[d]).max(1e-9);
        lo[d] -= pad;
        hi[d] += pad;
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point's colour is `r_1 colour_1 + r_0 REJECTED` under the reject option (it used to
    /// darken to black, which vanished on the dark theme), in closed form for one component.
    #[test]
    fn rejected_points_are_grey_not_black() {
        use crate::core::data::Dataset;
        use crate::core::model::ModelSpec;
        // x = 0, μ = (d, 0), s = 1, π = 1, V = 1: r_1 = 1/(1 + e^{(E_1 − E_0)/T}), E_1 = d²/2.
        for (d, e0) in [(0.0, 30.0), (2.0, 2.0), (40.0, 3.0)] {
            let mut data = Dataset {
                dim: 2,
                ..Dataset::default()
            };
            data.push(&[0.0, 0.0], None, &[]);
            let mut spec = ModelSpec::new(Regime::Mixture, 1.0);
            spec.settings.reject_energy = Some(e0);
            let problem = Problem::bind(data, spec).expect("binds");
            let state = State::new(2, vec![d, 0.0], 0);
            let r1 = 1.0 / (1.0 + (d * d / 2.0 - e0).exp());
            let c = colour(0);
            let want = |ch: u8, k: usize| r1 * f64::from(ch) + (1.0 - r1) * REJECTED[k];
            let got = point_colours(&problem, &state)[0];
            for (k, (g, ch)) in [(got.r(), c.r()), (got.g(), c.g()), (got.b(), c.b())]
                .into_iter()
                .enumerate()
            {
                assert!(
                    (f64::from(g) - want(ch, k)).abs() <= 0.5 + 1e-9,
                    "d {d}: {got:?} vs {}",
                    want(ch, k)
                );
            }
        }
    }

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(tick(0.0, 0.5, &(-1.0..=1.0)), "0");
        assert_eq!(tick(1e-17, 0.5, &(-1.0..=1.0)), "0");
        assert_eq!(tick(0.5, 0.5, &(-1.0..=1.0)), "0.5");
        assert_eq!(tick(0.30000000000000004, 0.1, &(-1.0..=1.0)), "0.3");
        assert_eq!(tick(-4.0, 2.0, &(-6.0..=6.0)), "-4");
        assert_eq!(tick(250.0, 50.0, &(0.0..=1000.0)), "250");
        assert_eq!(tick(-1e300, 5e299, &(-2e300..=0.0)), "-1.0e300");
        assert_eq!(tick(2e-7, 2e-7, &(0.0..=1e-6)), "2e-7");
        assert_eq!(tick(105_000.0, 5_000.0, &(9e4..=1.2e5)), "1.05e5");
        // Never the 0.00000000000001 of a fixed-point label at a tiny spacing.
        assert_eq!(tick(1e-14, 1e-14, &(0.0..=5e-14)), "1e-14");
        assert_eq!(decade_tick(-2.0), "0.01");
        assert_eq!(decade_tick(3.0), "1000");
        assert_eq!(decade_tick(-12.0), "1e-12");
        assert_eq!(decade_tick(-2.5), "");
    }

    #[test]
    fn steps_follow_one_two_five() {
        for (min, want) in [
            (0.7, 1.0),
            (1.0, 1.0),
            (1.3, 2.0),
            (2.01, 5.0),
            (5.5, 10.0),
            (3e-7, 5e-7),
            (0.0, 1.0),
        ] {
            assert!(
                (nice_step(min) - want).abs() <= 1e-12 * want,
                "{min}: {}",
                nice_step(min)
            );
        }
    }

    /// The scene's x axis at 340 px over a span of 14 (three blobs at 960 × 600): egui_plot's
    /// powers of ten labelled only `0`; the 1-2-5 grid labels every 5 (four labels, 120 px apart).
    #[test]
    fn a_narrow_axis_gets_several_labels() {
        let span = 14.0;
        let px = 340.0;
        let input = egui_plot::GridInput {
            bounds: (-7.5, 6.5),
            base_step_size: span / px * GRID_MIN_PX,
        };
        let marks = nice_marks(&input, LABEL_PX[0]);
        let labelled: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size / span * px >= LABEL_PX[0])
            .map(|m| m.value)
            .collect();
        assert_eq!(labelled, [-5.0, 0.0, 5.0]);
        // The minor lines are the labelled step's fifths, each value once.
        assert_eq!(marks.len(), 14);
        assert!(marks.windows(2).all(|w| (w[1].value - w[0].value - 1.0).abs() < 1e-12));
        // A log axis over 1e-15 … 1: labels at whole decades only.
        let input = egui_plot::GridInput {
            bounds: (-15.0, 0.0),
            base_step_size: 15.0 / 100.0 * GRID_MIN_PX,
        };
        let decades = decade_marks(&input, LABEL_PX[1]);
        assert!(decades.iter().all(|m| m.value.fract() == 0.0 && m.step_size >= 5.0));
        assert_eq!(decades.first().map(|m| m.value), Some(-15.0));
    }

    #[test]
    fn numbers_switch_to_scientific_notation_outside_the_ordinary_range() {
        assert_eq!(num(1.7280963225, 11), "1.7280963225");
        assert_eq!(num(0.0172824886, 9), "0.0172824886");
        assert_eq!(num(-2.5e300, 11), "-2.5000000000e300");
        assert_eq!(num(1e-9, 3), "1.00e-9");
        assert_eq!(num(1057.2375, 6), "1057.24");
        assert_eq!(num(0.0, 6), "0");
        assert_eq!(num(f64::NAN, 6), "NaN");
        // Never longer than a fixed width, whatever the magnitude.
        for e in -300..300 {
            let v = 1.234_567_890_123 * 10f64.powi(e);
            assert!(num(v, 11).len() <= 18, "{}", num(v, 11));
        }
    }

    #[test]
    fn blend_of_one_component_is_its_colour_and_halves_mix() {
        assert_eq!(blend([(2, 1.0)]), colour(2));
        let half = blend([(0, 0.5), (1, 0.5)]);
        let (a, b) = (colour(0), colour(1));
        assert_eq!(
            half.r(),
            ((u16::from(a.r()) + u16::from(b.r())) as f64 / 2.0).round() as u8
        );
    }

    #[test]
    fn lane_kernel_colours_and_winners_match_the_plain_blend() {
        use crate::core::data;
        use crate::core::eval::field_row;
        use crate::core::model::{ModelSpec, Score};
        use crate::core::problem::Problem;
        let data = data::blobs(3, 300, 2, 4.0, 1.0, 3);
        for regime in [
            Regime::Mixture,
            Regime::CrossEntropy,
            Regime::Attention {
                score: Score::DotProduct,
            },
        ] {
            let mut spec = ModelSpec::new(regime, 0.8);
            let k = 6;
            if regime == Regime::CrossEntropy {
                spec.classes = vec![0, 1, 2, 0, 1, 2];
            }
            let mut data = data.clone();
            if matches!(regime, Regime::Attention { .. }) {
                data.target_dim = 1;
                data.targets = (0..data.len()).map(|i| i as f64 * 0.01).collect();
            }
            let problem = Problem::bind(data, spec).expect("valid");
            let protos: Vec<f64> = (0..2 * k).map(|q| (q as f64 * 1.7).sin() * 4.0).collect();
            let state = State::new(2, protos, problem.target_dim);
            let terms = ComponentTerms::new(&problem.spec, &state);
            let colours = point_colours(&problem, &state);
            // A reduced view's colours are those of the points it draws, bit for bit.
            let every_third = strided_point_colours(&problem, &state, 3);
            assert_eq!(every_third, colours.iter().step_by(3).copied().collect::<Vec<_>>());
            let grid = Grid {
                min: [-6.0, -6.0],
                max: [6.0, 6.0],
                width: 37,
                height: 5,
            };
            let f = fields(&problem, &state, &grid, &Projection::coordinates(vec![0.0, 0.0], 0, 1));
            let mut row = Row::new(k, 2, problem.target_dim);
            let plain = |row: &Row| -> (Color32, usize) {
                let weights: Vec<f64> = if regime == Regime::CrossEntropy {
                    (0..3)
                        .map(|c| (0..k).filter(|&j| j % 3 == c).map(|j| row.responsibilities[j]).sum())
                        .collect()
                } else {
                    row.responsibilities.clone()
                };
                let win = (0..weights.len()).fold(0, |b, j| if weights[j] > weights[b] { j } else { b });
                (blend(weights.iter().copied().enumerate()), win)
            };
            let near = |a: Color32, b: Color32| {
                a.r().abs_diff(b.r()) <= 1 && a.g().abs_diff(b.g()) <= 1 && a.b().abs_diff(b.b()) <= 1
            };
            for i in 0..problem.len() {
                field_row(&problem.spec, &state, &terms, problem.point(i), &mut row);
                assert!(near(colours[i], plain(&row).0), "{regime:?} point {i}");
            }
            for cy in 0..grid.height {
                for cx in 0..grid.width {
                    field_row(&problem.spec, &state, &terms, &grid.centre(cx, cy), &mut row);
                    let q = cy * grid.width + cx;
                    let (c, w) = plain(&row);
                    assert!(near(f.colours[q], c), "{regime:?} cell {q}");
                    assert_eq!(f.winner[q], w, "{regime:?} cell {q}");
                    assert!((f.free_energy[q] - row.free_energy).abs() <= 1e-12 * row.free_energy.abs().max(1.0));
                }
            }
        }
    }

    #[test]
    fn contour_of_a_linear_field_is_a_straight_line() {
        let grid = Grid {
            min: [0.0, 0.0],
            max: [1.0, 1.0],
            width: 11,
            height: 11,
        };
        let values: Vec<f64> = (0..121).map(|n| grid.centre(n % 11, n / 11)[0]).collect();
        let segs = contour(&grid, &values, 0.5);
        assert_eq!(segs.len(), 10);
        for s in segs {
            assert!((s[0][0] - 0.5).abs() < 1e-12 && (s[1][0] - 0.5).abs() < 1e-12);
        }
    }

    /// Two classes, one prototype each at (±1, 0), equal scales: the decision boundary is the
    /// line x = 0. The cell boundary (staircase) misses it by up to half a cell; the
    /// interpolated zero set of the margin lies on it to a fiftieth of a cell.
    #[test]
    fn the_smooth_boundary_lies_on_the_true_one() {
        use crate::core::data::Dataset;
        use crate::core::model::ModelSpec;
        let mut data = Dataset {
            dim: 2,
            ..Dataset::default()
        };
        data.push(&[-1.0, 0.0], Some(0), &[]);
        data.push(&[1.0, 0.0], Some(1), &[]);
        let mut spec = ModelSpec::new(Regime::CrossEntropy, 0.7);
        spec.classes = vec![0, 1];
        let problem = Problem::bind(data, spec).expect("binds");
        let state = State::new(2, vec![-1.0, 0.3, 1.0, 0.3], 0);
        // An asymmetric grid, so no cell centre sits on x = 0.
        let grid = Grid {
            min: [-3.3, -2.0],
            max: [2.9, 2.0],
            width: 31,
            height: 9,
        };
        let f = fields(&problem, &state, &grid, &Projection::coordinates(vec![0.0, 0.0], 0, 1));
        assert_eq!(f.margins.len(), 2);
        // E_j = |x − μ_j|²/2 plus equal constants, so E_1 − E_0 = −2x and the margin
        // p(0|x) − p(1|x) = σ(−2x/T) − σ(2x/T) = −tanh(x/T), in every cell.
        for cy in 0..grid.height {
            for cx in 0..grid.width {
                let (q, x) = (cy * grid.width + cx, grid.centre(cx, cy)[0]);
                let want = -(x / 0.7).tanh();
                assert!((f.margins[0][q] - want).abs() < 1e-12, "{} vs {want}", f.margins[0][q]);
                assert!((f.margins[1][q] + want).abs() < 1e-12);
            }
        }
        let dx = (grid.max[0] - grid.min[0]) / grid.width as f64;
        let smooth = smooth_boundary(&grid, &f.margins);
        assert!(!smooth.is_empty());
        let worst = smooth.iter().flatten().map(|p| p[0].abs()).fold(0.0, f64::max);
        assert!(worst < dx / 50.0, "{worst} vs cell {dx}");
        // It spans the grid's height between the outer cell centres.
        let ys: Vec<f64> = smooth.iter().flatten().map(|p| p[1]).collect();
        let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        assert!((lo - grid.centre(0, grid.height - 1)[1]).abs() < 1e-12 && (hi - grid.centre(0, 0)[1]).abs() < 1e-12);
        let stairs = boundary(&grid, &f.winner);
        let stair_worst = stairs.iter().flatten().map(|p| p[0].abs()).fold(0.0, f64::max);
        assert!(stair_worst > dx / 5.0, "{stair_worst}");
    }

    #[test]
    fn contour_levels_are_round_and_labelled_at_the_top() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.0137).collect();
        // The 2nd to 60th percentile: 0.274 to 8.22; 14 levels would be 0.568 apart, so the
        // 1-2-5 step above it, 1: the levels 1, 2, …, 8.
        let l = levels(&values, 14);
        assert_eq!(l, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        // Ten levels over 0.274 … 8.22: 0.79 apart, so a step of 1 again; 40: a step of 0.2.
        assert_eq!(levels(&values, 40).first().copied(), Some(0.4));
        assert!(levels(&[1.0; 100], 5).is_empty());
        let ring = vec![[[0.0, 1.0], [1.0, 3.0]], [[1.0, 3.0], [2.0, 2.0]]];
        let view = ([-10.0, -10.0], [10.0, 10.0]);
        let labels = contour_labels(&[(2.5, ring.clone()), (3.0, Vec::new())], view);
        assert_eq!(labels, vec![([1.5, 2.5], "2.5".to_string())]);
        // A view up to y = 3 keeps labels below 3 − 0.06·13 = 2.22: the midpoint at y = 2.5
        // would be cut, so the highest one below it.
        let labels = contour_labels(&[(2.5, ring.clone()), (3.0, Vec::new())], ([-10.0, -10.0], [10.0, 3.0]));
        assert_eq!(labels, vec![([0.5, 2.0], "2.5".to_string())]);
        // A second level whose top lies 0.3 from the first label (gaps 3.2 by 1.2 in a 20 × 20
        // view) takes its next-highest spot instead of overprinting.
        let near = vec![[[1.2, 2.6], [1.4, 2.8]], [[5.0, -4.0], [5.0, -3.0]]];
        let labels = contour_labels(&[(2.5, ring), (3.0, near)], view);
        assert_eq!(
            labels,
            vec![([1.5, 2.5], "2.5".to_string()), ([5.0, -3.5], "3.0".to_string())]
        );
    }

    #[test]
    fn boundary_separates_two_halves() {
        let grid = Grid {
            min: [0.0, 0.0],
            max: [2.0, 1.0],
            width: 4,
            height: 2,
        };
        let winner = vec![0, 0, 1, 1, 0, 0, 1, 1];
        let segs = boundary(&grid, &winner);
        assert_eq!(segs.len(), 2);
        assert!(segs.iter().all(|s| (s[0][0] - 1.0).abs() < 1e-12));
    }
}
