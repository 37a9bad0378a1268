//! What the scene shows, computed as plain data before anything is drawn (rerun's
//! `StreamsTreeData` idea): the states shown (live or a past step), the points drawn with their
//! colours, the prototypes of both runs and the twin, the trails, the read-outs and the probes.
//! Testable without a window; [`super::scene`] only lays it out.

use eframe::egui::Color32;

use super::ViewOptions;
use super::view_data;
use crate::core::experiment::RunRecord;
use crate::core::hopfield::{self, Retrieval};
use crate::core::model::{Regime, State};
use crate::core::problem::Problem;
use crate::core::projection::Projection;
use crate::session::Session;

/// Largest number of points drawn individually; above it a faithful subsample is drawn.
pub const MAX_DRAWN_POINTS: usize = 20_000;
/// Most points per trail (a long history is drawn through every n-th record).
const TRAIL_POINTS: usize = 200;
/// Most read-out links drawn (300 drew a tangle; the inspected point's is drawn boldly too).
pub const READOUTS: usize = 80;

/// A state rebuilt from a trace record (to show a past step).
#[must_use]
pub fn state_from_record(run: &RunRecord, dim: usize, value_dim: usize) -> State {
    let mut s = State::new(dim, run.prototypes.concat(), value_dim);
    s.log_weights = run.weights.iter().map(|w| w.max(1e-300).ln()).collect();
    s.log_scales = run.scales.iter().map(|s| s.ln()).collect();
    if let Some(v) = &run.values {
        s.values = v.concat();
    }
    if let Some(maps) = &run.maps {
        s.maps = maps.iter().flat_map(|w| w.concat()).collect();
    }
    s
}

/// One component's 1σ and 2σ ellipses (each a closed path; empty when not drawable).
pub type Ellipses = [Vec<[f64; 2]>; 2];

/// Segments of each drawn ellipse.
const ELLIPSE_SEGMENTS: usize = 72;

/// The ellipse `{μ + v : vᵀ Σ⁻¹ v = k²}` of a 2 × 2 covariance (row-major), as a closed path
/// of [`ELLIPSE_SEGMENTS`] + 1 points: `μ + k L (cos θ, sin θ)` with `L` the Cholesky factor of
/// `Σ`. Empty when `Σ` is not positive definite or not finite.
#[must_use]
pub fn ellipse(centre: [f64; 2], cov: [f64; 4], k: f64) -> Vec<[f64; 2]> {
    let (a, b, d) = (cov[0], 0.5 * (cov[1] + cov[2]), cov[3]);
    if a.is_nan() || a <= 0.0 || !a.is_finite() || !b.is_finite() || !d.is_finite() {
        return Vec::new();
    }
    let l11 = a.sqrt();
    let l21 = b / l11;
    let rest = d - l21 * l21;
    if rest.is_nan() || rest <= 0.0 {
        return Vec::new();
    }
    let l22 = rest.sqrt();
    (0..=ELLIPSE_SEGMENTS)
        .map(|s| {
            let t = std::f64::consts::TAU * s as f64 / ELLIPSE_SEGMENTS as f64;
            let (c, si) = (k * t.cos(), k * t.sin());
            [centre[0] + l11 * c, centre[1] + l21 * c + l22 * si]
        })
        .collect()
}

/// Each component's 1σ and 2σ ellipses at temperature `t`: the covariance of `T (W_jᵀW_j)⁻¹`
/// (or `T s_j I`) projected onto the scene's plane, `A Σ Aᵀ` (for two coordinates, their
/// marginal). Empty in 1-D.
#[must_use]
pub fn ellipses(state: &State, t: f64, plane: &Projection) -> Vec<Ellipses> {
    if state.dim < 2 {
        return Vec::new();
    }
    (0..state.k)
        .map(|j| {
            let Some(c) = state.covariance(j, t) else {
                return [Vec::new(), Vec::new()];
            };
            let cov = plane.covariance(&c);
            let at = plane.project(state.prototype(j));
            [ellipse(at, cov, 1.0), ellipse(at, cov, 2.0)]
        })
        .collect()
}

/// The problem and gradient-descent state at the step the window shows: the past step `scrub`
/// (an index into the history; its record's temperature, so a past annealing step is shown at
/// its own T) or the live one. Every panel that reads the state reads it through this, so the
/// scene, the inspector and the formula strip agree on the step.
#[must_use]
pub fn shown_state(session: &Session, scrub: Option<usize>) -> (Problem, State) {
    let experiment = session.experiment();
    let mut problem = experiment.problem().clone();
    let trace = experiment.trace();
    match scrub.filter(|&s| s < trace.len()) {
        Some(s) => {
            problem.spec.settings.temperature = trace[s].temperature;
            let state = state_from_record(&trace[s].gd, problem.dim, problem.target_dim);
            (problem, state)
        }
        None => (problem, experiment.gd_state().clone()),
    }
}

/// Everything the scene draws, for one frame.
#[derive(Clone, Debug)]
pub struct SceneData {
    /// The past step shown (`None`: live).
    pub shown_step: Option<usize>,
    /// Steps taken so far.
    pub live_step: usize,
    /// Gradient descent's state at the shown step.
    pub gd: State,
    /// Explicit EM's state at the shown step.
    pub em: State,
    /// Every point (drawn or not).
    pub total_points: usize,
    /// The indices of the points drawn (all, or every n-th above [`MAX_DRAWN_POINTS`]).
    pub drawn: Vec<usize>,
    /// Their positions.
    pub points: Vec<[f64; 2]>,
    /// Their fill: the responsibility blend at the shown GD state.
    pub colours: Vec<Color32>,
    /// Their outline: the label's colour (cross-entropy), else none.
    pub outlines: Option<Vec<Color32>>,
    /// Each prototype's colour (its class's for cross-entropy).
    pub prototype_colours: Vec<Color32>,
    /// Each GD prototype's path up to the shown step (empty without trails).
    pub gd_trails: Vec<Vec<[f64; 2]>>,
    /// Each EM prototype's path (empty without trails or without EM shown).
    pub em_trails: Vec<Vec<[f64; 2]>>,
    /// The twin's label and its GD prototypes.
    pub twin: Option<(String, Vec<[f64; 2]>)>,
    /// Attention read-outs: a point and its read-out `Σ_j α_ij k_j` (empty when off).
    pub readouts: Vec<[[f64; 2]; 2]>,
    /// Each probe's retrieval at the shown state.
    pub probes: Vec<Retrieval>,
    /// The inspected point's position.
    pub selected: Option<[f64; 2]>,
    /// The inspected point and its read-out (attention with read-outs shown).
    pub selected_readout: Option<[[f64; 2]; 2]>,
    /// Each GD component's 1σ and 2σ ellipses at the shown temperature (empty unless the
    /// metric has maps or is learned, and the view shows them).
    pub gd_ellipses: Vec<Ellipses>,
    /// The same for explicit EM (empty without EM shown).
    pub em_ellipses: Vec<Ellipses>,
    /// The twin's GD ellipses.
    pub twin_ellipses: Vec<Ellipses>,
    /// The problem at the shown step (its temperature).
    pub problem: Problem,
    /// The plane everything is drawn in.
    pub projection: Projection,
    /// The box around everything that must be in view: every point (drawn or not), both runs'
    /// prototypes and trails, the twin's prototypes, the probes and their paths, the read-outs.
    pub content: ([f64; 2], [f64; 2]),
}

impl SceneData {
    /// The scene of `session` as `view` asks, at past step `scrub` (an index into the history)
    /// or live, with the inspected point `selected` and the retrieval `probes`.
    #[must_use]
    pub fn new(
        session: &Session,
        view: &ViewOptions,
        scrub: Option<usize>,
        selected: Option<usize>,
        probes: &[Vec<f64>],
    ) -> Self {
        let experiment = session.experiment();
        let trace = experiment.trace();
        let shown = scrub.filter(|&s| s < trace.len());
        let (problem, gd) = shown_state(session, shown);
        let plane = view.plane.of(&problem);
        let em = match shown {
            Some(s) => state_from_record(&trace[s].em, problem.dim, problem.target_dim),
            None => experiment.em_state().clone(),
        };
        let upto = shown.map_or(trace.len(), |s| s + 1);
        let path = |run: fn(&crate::core::experiment::StepRecord) -> &RunRecord, j: usize| -> Vec<[f64; 2]> {
            let every = (upto / TRAIL_POINTS).max(1);
            trace[..upto]
                .iter()
                .step_by(every)
                .map(|r| plane.project(&run(r).prototypes[j]))
                .collect()
        };
        let trails = view.trails && upto > 1;
        let gd_trails = if trails {
            (0..gd.k).map(|j| path(|r| &r.gd, j)).collect()
        } else {
            Vec::new()
        };
        let em_trails = if trails && view.show_em {
            (0..em.k).map(|j| path(|r| &r.em, j)).collect()
        } else {
            Vec::new()
        };
        let (drawn, points, colours, outlines) = drawn_points(&problem, &gd, &plane);
        let spec = &problem.spec;
        let metric = view.ellipses && (spec.structure.has_maps() || spec.settings.learn_scales);
        let t = spec.settings.temperature;
        let gd_ellipses = if metric { ellipses(&gd, t, &plane) } else { Vec::new() };
        let em_ellipses = if metric && view.show_em {
            ellipses(&em, t, &plane)
        } else {
            Vec::new()
        };
        let twin_ellipses = match session.twin() {
            Some(tw) if view.ellipses && shown.is_none() => {
                let ts = &tw.experiment.problem().spec;
                if ts.structure.has_maps() || ts.settings.learn_scales {
                    ellipses(tw.experiment.gd_state(), ts.settings.temperature, &plane)
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        let attention = matches!(problem.spec.regime, Regime::Attention { .. });
        let mut scene = Self {
            shown_step: shown,
            live_step: experiment.step_count(),
            total_points: problem.len(),
            prototype_colours: prototype_colours(&problem, gd.k),
            gd_trails,
            em_trails,
            twin: session.twin().map(|t| {
                let s = t.experiment.gd_state();
                (
                    t.flip.label().to_string(),
                    (0..s.k).map(|j| plane.project(s.prototype(j))).collect(),
                )
            }),
            readouts: if view.readouts && attention {
                readouts(&problem, &gd, &plane)
            } else {
                Vec::new()
            },
            probes: retrievals(&problem, &gd, probes),
            selected: selected
                .filter(|&i| i < problem.len())
                .map(|i| plane.project(problem.point(i))),
            selected_readout: selected
                .filter(|&i| i < problem.len() && view.readouts && attention)
                .and_then(|i| {
                    view_data::readout(&problem, &gd, i).map(|o| [plane.project(problem.point(i)), plane.project(&o)])
                }),
            gd_ellipses,
            em_ellipses,
            twin_ellipses,
            content: ([0.0; 2], [0.0; 2]),
            drawn,
            points,
            colours,
            outlines,
            gd,
            em,
            problem,
            projection: plane,
        };
        scene.content = scene.content_extent();
        scene
    }

    /// The raw box around everything that must be in view ([`SceneData::content`]).
    fn content_extent(&self) -> ([f64; 2], [f64; 2]) {
        let problem = &self.problem;
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        // A run that diverged (η = 100) may have left 1e300 behind: beyond the coordinates the
        // lab accepts, a position is not something to fit the view to.
        let mut add = |p: [f64; 2]| {
            for d in 0..2 {
                if p[d].abs() <= crate::core::data::MAX_COORDINATE {
                    lo[d] = lo[d].min(p[d]);
                    hi[d] = hi[d].max(p[d]);
                }
            }
        };
        let plane = &self.projection;
        (0..problem.len()).for_each(|i| add(plane.project(problem.point(i))));
        (0..self.gd.k).for_each(|j| add(self.gd_prototype(j)));
        (0..self.em.k).for_each(|j| add(self.em_prototype(j)));
        self.gd_trails
            .iter()
            .chain(&self.em_trails)
            .flatten()
            .for_each(|&p| add(p));
        if let Some((_, twin)) = &self.twin {
            twin.iter().for_each(|&p| add(p));
        }
        self.probes
            .iter()
            .flat_map(|r| &r.path)
            .for_each(|p| add(plane.project(p)));
        self.readouts.iter().flatten().for_each(|&p| add(p));
        if problem.dim < 2 {
            (lo[1], hi[1]) = (-1.0, 1.0);
        }
        for d in 0..2 {
            if lo[d] > hi[d] {
                (lo[d], hi[d]) = (-1.0, 1.0);
            }
        }
        (lo, hi)
    }

    /// GD prototype `j`'s position.
    #[must_use]
    pub fn gd_prototype(&self, j: usize) -> [f64; 2] {
        self.projection.project(self.gd.prototype(j))
    }

    /// EM prototype `j`'s position.
    #[must_use]
    pub fn em_prototype(&self, j: usize) -> [f64; 2] {
        self.projection.project(self.em.prototype(j))
    }
}

/// Above this ratio of the content's extents the scene gives each axis its own scale (Old
/// Faithful's minutes of eruption against minutes of waiting differ fifteenfold): with equal
/// axes the data would be a sliver.
pub const MAX_EQUAL_AXES_RATIO: f64 = 4.0;

/// Whether the content's two extents are within [`MAX_EQUAL_AXES_RATIO`] of each other, so
/// the scene keeps one scale for both axes (distances and circles drawn true).
#[must_use]
pub fn equal_axes(content: ([f64; 2], [f64; 2])) -> bool {
    let (lo, hi) = content;
    let (x, y) = (0.5 * hi[0] - 0.5 * lo[0], 0.5 * hi[1] - 0.5 * lo[1]);
    if x.is_nan() || y.is_nan() || x <= 0.0 || y <= 0.0 || !x.is_finite() || !y.is_finite() {
        return true;
    }
    (x / y).max(y / x) <= MAX_EQUAL_AXES_RATIO
}

/// Fraction of the content's extent left free on each side by [`fit_view`].
pub const FIT_MARGIN: f64 = 0.06;

/// The view that shows `content` whole, with [`FIT_MARGIN`] on every side, in a plot area of
/// `size` pixels where one unit is as long on both axes: the axis with room to spare is widened
/// around the content's centre. Returns `(min, max)` plot coordinates.
#[must_use]
pub fn fit_view(content: ([f64; 2], [f64; 2]), size: [f32; 2], equal: bool) -> ([f64; 2], [f64; 2]) {
    let (lo, hi) = content;
    // Halves first, so that extents near f64::MAX cannot overflow.
    let centre = [0.5 * lo[0] + 0.5 * hi[0], 0.5 * lo[1] + 0.5 * hi[1]];
    let extent = [0.5 * hi[0] - 0.5 * lo[0], 0.5 * hi[1] - 0.5 * lo[1]];
    let largest = extent[0].max(extent[1]);
    // A single point (or all points on one line) still gets a view of some size.
    let floor = if largest > 0.0 { 1e-3 * largest } else { 0.5 };
    let mut half = [0.0; 2];
    for d in 0..2 {
        half[d] = extent[d].max(floor) * (1.0 + 2.0 * FIT_MARGIN);
    }
    if !equal {
        return (
            [centre[0] - half[0], centre[1] - half[1]],
            [centre[0] + half[0], centre[1] + half[1]],
        );
    }
    let (w, h) = (f64::from(size[0].max(1.0)), f64::from(size[1].max(1.0)));
    // Units per pixel: the larger of what each axis needs.
    let per_pixel = (2.0 * half[0] / w).max(2.0 * half[1] / h);
    let half = [0.5 * per_pixel * w, 0.5 * per_pixel * h];
    (
        [centre[0] - half[0], centre[1] - half[1]],
        [centre[0] + half[0], centre[1] + half[1]],
    )
}

/// The points drawn (every n-th above [`MAX_DRAWN_POINTS`]), their positions, fills and
/// outlines (the label's colour, cross-entropy only).
#[allow(clippy::type_complexity)] // four parallel arrays, named at the one call
fn drawn_points(
    problem: &Problem,
    gd: &State,
    plane: &Projection,
) -> (Vec<usize>, Vec<[f64; 2]>, Vec<Color32>, Option<Vec<Color32>>) {
    let stride = problem.len().div_ceil(MAX_DRAWN_POINTS).max(1);
    let colours = view_data::strided_point_colours(problem, gd, stride);
    let drawn: Vec<usize> = (0..problem.len()).step_by(stride).collect();
    let outlines = (problem.spec.regime == Regime::CrossEntropy).then(|| {
        drawn
            .iter()
            .map(|&i| match problem.soft_label(i) {
                Some(p) => view_data::blend(p.iter().copied().enumerate()),
                None => problem.labels[i].map_or(Color32::GRAY, |y| view_data::colour(y as usize)),
            })
            .collect()
    });
    let points = drawn.iter().map(|&i| plane.project(problem.point(i))).collect();
    (drawn, points, colours, outlines)
}

/// Each probe's retrieval under `state`: the path of `ξ ← Σ_j r_j(ξ) μ_j` to its fixed point
/// (probes of another dimension are left out).
#[must_use]
pub fn retrievals(problem: &Problem, state: &State, probes: &[Vec<f64>]) -> Vec<Retrieval> {
    probes
        .iter()
        .filter(|p| p.len() == state.dim)
        .map(|p| hopfield::retrieve(&problem.spec, state, p))
        .collect()
}

/// Each prototype's colour: its class's for cross-entropy, its own otherwise.
fn prototype_colours(problem: &Problem, k: usize) -> Vec<Color32> {
    (0..k)
        .map(|j| {
            if problem.spec.regime == Regime::CrossEntropy {
                view_data::colour(problem.spec.classes[j])
            } else {
                view_data::colour(j)
            }
        })
        .collect()
}

/// Up to [`READOUTS`] points with their attention read-outs.
fn readouts(problem: &Problem, gd: &State, plane: &Projection) -> Vec<[[f64; 2]; 2]> {
    let step = problem.len().div_ceil(READOUTS).max(1);
    (0..problem.len())
        .step_by(step)
        .filter_map(|i| {
            view_data::readout(problem, gd, i).map(|o| [plane.project(problem.point(i)), plane.project(&o)])
        })
        .collect()
}

/// The scene's axis titles: the data's column names (a CSV header's) or `x1`, `x2`; for a
/// principal plane `PC1 (… % of variance)`.
#[must_use]
pub fn axis_names(problem: &Problem, plane: &Projection) -> [String; 2] {
    plane.axis_names(&problem.names)
}
