//! What the window shows, computed as plain data without widgets: point colours, background
//! fields, contours, decision boundaries, read-outs and the responsibility matrix.

use eframe::egui::Color32;

use crate::core::model::{ComponentTerms, Regime, State};
use crate::core::objective::{Problem, Row, field_row, point_row};

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

/// The colour of a position and its most probable component (or class, for cross-entropy,
/// where the weights are the class posteriors `Σ_{j in c} r_j`). `by_class` is scratch space.
fn colour_of(problem: &Problem, responsibilities: &[f64], by_class: &mut Vec<f64>) -> (Color32, usize) {
    let weights: &[f64] = if problem.spec.regime == Regime::CrossEntropy {
        let c = problem.spec.classes.iter().max().map_or(0, |m| m + 1);
        by_class.clear();
        by_class.resize(c, 0.0);
        for (j, r) in responsibilities.iter().enumerate() {
            by_class[problem.spec.classes[j]] += r;
        }
        by_class
    } else {
        responsibilities
    };
    let winner = weights
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b })
        .0;
    (blend(weights.iter().copied().enumerate()), winner)
}

/// Rows per parallel chunk of the view computations.
const VIEW_CHUNK: usize = 1024;

/// Each point's colour under `state` (cross-entropy points that do not count, i.e. unlabelled
/// ones, are coloured by their free responsibilities too). Parallel over fixed chunks.
#[must_use]
pub fn point_colours(problem: &Problem, state: &State) -> Vec<Color32> {
    use rayon::prelude::*;
    let terms = ComponentTerms::new(&problem.spec, state);
    let n = problem.len();
    let mut out = vec![Color32::BLACK; n];
    out.par_chunks_mut(VIEW_CHUNK).enumerate().for_each(|(c, chunk)| {
        let mut row = Row::new(state.k, problem.dim, problem.target_dim);
        let mut scratch = Vec::new();
        for (o, i) in chunk.iter_mut().zip(c * VIEW_CHUNK..) {
            field_row(&problem.spec, state, &terms, problem.point(i), &mut row);
            *o = colour_of(problem, &row.responsibilities, &mut scratch).0;
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
}

/// Evaluates the background fields on `grid` (other coordinates fixed at `rest`), one grid
/// row per parallel task.
#[must_use]
pub fn fields(problem: &Problem, state: &State, grid: &Grid, rest: &[f64]) -> Fields {
    use rayon::prelude::*;
    let terms = ComponentTerms::new(&problem.spec, state);
    let rows: Vec<(Vec<f64>, Vec<Color32>, Vec<usize>)> = (0..grid.height)
        .into_par_iter()
        .map(|cy| {
            let mut row = Row::new(state.k, problem.dim, problem.target_dim);
            let mut scratch = Vec::new();
            let mut x = rest.to_vec();
            let mut out = (
                Vec::with_capacity(grid.width),
                Vec::with_capacity(grid.width),
                Vec::with_capacity(grid.width),
            );
            for cx in 0..grid.width {
                let c = grid.centre(cx, cy);
                x[0] = c[0];
                if x.len() > 1 {
                    x[1] = c[1];
                }
                field_row(&problem.spec, state, &terms, &x, &mut row);
                out.0.push(row.free_energy);
                let (colour, winner) = colour_of(problem, &row.responsibilities, &mut scratch);
                out.1.push(colour);
                out.2.push(winner);
            }
            out
        })
        .collect();
    let mut out = Fields::default();
    for (f, c, w) in rows {
        out.free_energy.extend(f);
        out.colours.extend(c);
        out.winner.extend(w);
    }
    out
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

/// Evenly spaced levels between the 2nd and 60th percentile of a field (where the structure
/// is; the far field only grows).
#[must_use]
pub fn levels(values: &[f64], count: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.len() < 2 || count == 0 {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let lo = sorted[sorted.len() / 50];
    let hi = sorted[sorted.len() * 3 / 5];
    (1..=count)
        .map(|l| lo + (hi - lo) * l as f64 / (count + 1) as f64)
        .collect()
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
