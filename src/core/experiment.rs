//! Gradient descent and explicit EM advanced in lockstep from the same start, with the trace.
//!
//! One call of [`Experiment::step`] is one paired step; the driver (command line or window)
//! owns the loop, so every step can be watched.

use serde::{Deserialize, Serialize};

use crate::core::data::Dataset;
use crate::core::diagnostics::{self, EM_RISE_TOLERANCE, RESIDUAL_SAMPLE};
use crate::core::eval::{Evaluation, evaluate, evaluate_em};
use crate::core::model::{Optimiser, Regime, RunSettings, State};
use crate::core::problem::Problem;
use crate::core::reference::Derivative;
use crate::core::step::{em_prototype_step, em_step, gd_prototype_step, gd_step};

/// One run's state and numbers at one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The regime's loss `J` at this run's state.
    pub loss: f64,
    /// What explicit EM never increases (`J_U`; mean clamped free energy for cross-entropy).
    pub em_objective: f64,
    /// `μ_j`, one coordinate array per prototype.
    pub prototypes: Vec<Vec<f64>>,
    /// `v_j` (attention only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Vec<f64>>>,
    /// `π_j`.
    pub weights: Vec<f64>,
    /// `s_j`.
    pub scales: Vec<f64>,
    /// `W_j` (rows), for a metric with maps (MATH.md §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<Vec<Vec<Vec<f64>>>>,
    /// Each component's covariance `T (W_jᵀW_j)⁻¹` (`T s_j I` for spherical components), when
    /// the metric has maps or is learned; `null` entries for a singular map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariances: Option<Vec<Option<Vec<Vec<f64>>>>>,
    /// `N_j = Σ_i r_ij`.
    pub counts: Vec<f64>,
    /// Mean entropy of the responsibilities.
    pub mean_entropy: f64,
    /// `exp(H(N_j/N))`.
    pub effective_components: f64,
}

impl RunRecord {
    fn new(state: &State, eval: &Evaluation, attention: bool, covariance_at: Option<f64>) -> Self {
        let rows = |v: &[f64], w: usize| v.chunks(w.max(1)).map(<[f64]>::to_vec).collect();
        let d = state.dim;
        Self {
            maps: state
                .has_maps()
                .then(|| (0..state.k).map(|j| rows(state.map(j), d)).collect()),
            covariances: covariance_at.map(|t| {
                (0..state.k)
                    .map(|j| state.covariance(j, t).map(|c| rows(&c, d)))
                    .collect()
            }),
            loss: eval.loss,
            em_objective: eval.em_objective,
            prototypes: rows(&state.prototypes, state.dim),
            values: attention.then(|| rows(&state.values, state.value_dim)),
            weights: state.mixing(),
            scales: state.scales(),
            counts: eval.counts.clone(),
            mean_entropy: eval.mean_entropy,
            effective_components: eval.effective_components(),
        }
    }
}

/// `effective_components` of both runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectiveComponents {
    /// Gradient descent.
    pub gd: f64,
    /// Explicit EM.
    pub em: f64,
}

/// Everything recorded at one step (step 0 is the start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps taken so far.
    pub step: usize,
    /// `T` at this step.
    pub temperature: f64,
    /// `η` at this step.
    pub learning_rate: f64,
    /// Gradient descent.
    pub gd: RunRecord,
    /// Explicit EM.
    pub em: RunRecord,
    /// `max |N ∂J/∂E (dual numbers) − closed form|` over a sample of points at the GD state.
    pub identity_residual: f64,
    /// Per prototype, the cosine between the GD step and the EM step from the GD state
    /// (`null` where a step is zero).
    pub alignment: Vec<Option<f64>>,
    /// Per prototype, `α_j = (Δ^GD·Δ^EM)/||Δ^EM||²` from the GD state.
    pub step_fraction: Vec<Option<f64>>,
    /// Attention only: per value, the cosine between GD's value step `−η ∂J/∂v_j` (along
    /// `Σ_i α_ij (t_i − o_i)`) and EM's `v̄_j − v_j` (along `Σ_i α_ij (t_i − v_j)`), from the GD
    /// state; they agree as `T → 0` (MATH.md §4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_alignment: Vec<Option<f64>>,
    /// `sqrt(Σ_j ||μ^GD_j − μ^EM_j||²)`.
    pub prototype_distance: f64,
    /// `exp(H(N_j/N))` of each run.
    pub effective_components: EffectiveComponents,
    /// Dead components, scales at the floor or running away, EM objective rising.
    pub warnings: Vec<String>,
}

/// Why a run stopped. The experiment keeps its last good state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepError {
    /// The step that could not be taken (the state is still at `step − 1`).
    pub step: usize,
    /// What went wrong, in words.
    pub reason: String,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "paused before step {}: {}", self.step, self.reason)
    }
}

impl std::error::Error for StepError {}

/// Gradient descent and explicit EM from the same start, advanced in lockstep.
#[derive(Clone, Debug)]
pub struct Experiment {
    problem: Problem,
    gd: State,
    em: State,
    gd_eval: Evaluation,
    em_eval: Evaluation,
    step: usize,
    /// The data's variance per coordinate ([`Problem::data_variance`]).
    data_variance: f64,
    /// The data's covariance (`D × D`), for the warnings about maps; `None` without maps.
    data_covariance: Option<std::sync::Arc<Vec<f64>>>,
    residual_rows: Vec<usize>,
    initial: State,
    /// EM objective at the previous step, for the monotonicity check (reset by edits).
    previous_em_objective: Option<f64>,
    trace: Vec<StepRecord>,
    /// Most records kept (None: all).
    history_limit: Option<usize>,
    /// Records kept are those whose step is a multiple of this (and the latest).
    history_stride: usize,
    /// Changes with every edit (never with a step); unique across experiments, so a copy stepped
    /// elsewhere can tell whether its origin was edited meanwhile.
    revision: u64,
    /// The run's line of steps: the same from `new` or `reset` on, through steps and edits.
    lineage: u64,
    /// The evaluations (and the latest record) are from before a settings change
    /// ([`Experiment::set_settings_deferred`]); the next step or [`Experiment::refresh`] redoes
    /// them.
    stale: bool,
    /// For a [`Experiment::detached`] copy, the revision of the experiment it was detached from
    /// (the copy may change its own revision, as annealing does when it cools, and still be
    /// adopted); unused otherwise.
    origin: u64,
}

/// How the warning that EM's objective rose begins (a step's finding, kept when the record is
/// rewritten).
const EM_ROSE: &str = "EM: objective rose";

/// A fresh revision number, never handed out before in this process.
fn next_revision() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn check_finite(state: &State, eval: &Evaluation, run: &str, step: usize) -> Result<(), StepError> {
    if let Some(block) = state.non_finite_block() {
        return Err(StepError {
            step,
            reason: format!("the {run} run's {block} became non-finite (is the learning rate too large?)"),
        });
    }
    if !eval.loss.is_finite() || eval.gradient.prototypes.iter().any(|g| !g.is_finite()) {
        return Err(StepError {
            step,
            reason: format!(
                "the {run} run's loss or gradient became non-finite (loss = {}); lower the learning rate, or bring the temperature nearer the scale of the energies",
                crate::core::math::readable(eval.loss)
            ),
        });
    }
    Ok(())
}

impl Experiment {
    /// Starts both runs at `initial` and records step 0; gradient descent steps with
    /// `optimiser` (it replaces the problem's).
    ///
    /// # Errors
    /// When the initial state or its loss is not finite.
    pub fn new(mut problem: Problem, initial: State, optimiser: Optimiser) -> Result<Self, StepError> {
        problem.spec.settings.optimiser = optimiser;
        let eval = evaluate(&problem, &initial);
        check_finite(&initial, &eval, "initial", 0)?;
        let data_variance = problem.data_variance();
        let data_covariance = data_covariance(&problem);
        let residual_rows = diagnostics::sample_rows(&problem, RESIDUAL_SAMPLE);
        let revision = next_revision();
        let mut exp = Self {
            problem,
            gd: initial.clone(),
            em: initial.clone(),
            initial,
            gd_eval: eval.clone(),
            em_eval: eval,
            step: 0,
            data_variance,
            data_covariance,
            residual_rows,
            previous_em_objective: None,
            trace: Vec::new(),
            history_limit: None,
            history_stride: 1,
            revision,
            lineage: revision,
            stale: false,
            origin: revision,
        };
        let record = exp.record(Vec::new());
        exp.trace.push(record);
        Ok(exp)
    }

    /// The data and model.
    #[must_use]
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// What may change live (temperature, optimiser, learned parameters, …).
    #[must_use]
    pub fn settings(&self) -> RunSettings {
        self.problem.spec.settings
    }

    /// Steps taken.
    #[must_use]
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The gradient-descent run's state.
    #[must_use]
    pub fn gd_state(&self) -> &State {
        &self.gd
    }

    /// The explicit-EM run's state.
    #[must_use]
    pub fn em_state(&self) -> &State {
        &self.em
    }

    /// The evaluation at the GD state.
    #[must_use]
    pub fn gd_evaluation(&self) -> &Evaluation {
        &self.gd_eval
    }

    /// The evaluation at the EM state. After a step its `gradient` is empty: explicit EM uses
    /// none, so [`evaluate_em`] does not sum one.
    #[must_use]
    pub fn em_evaluation(&self) -> &Evaluation {
        &self.em_eval
    }

    /// Every recorded step, step 0 first.
    #[must_use]
    pub fn trace(&self) -> &[StepRecord] {
        &self.trace
    }

    /// The latest record.
    #[must_use]
    pub fn latest(&self) -> &StepRecord {
        self.trace.last().expect("step 0 is always recorded")
    }

    /// One paired step: a gradient step on the GD state and an EM step on the EM state.
    ///
    /// # Errors
    /// When either new state, loss or gradient is non-finite; nothing changes then.
    pub fn step(&mut self) -> Result<&StepRecord, StepError> {
        self.refresh();
        let next = self.step + 1;
        let optimiser = self.problem.spec.settings.optimiser;
        let gd = gd_step(
            &self.problem,
            &self.gd,
            &self.gd_eval,
            optimiser.learning_rate,
            optimiser.rate,
        );
        let em = em_step(&self.problem, &self.em, &self.em_eval);
        let gd_eval = evaluate(&self.problem, &gd);
        check_finite(&gd, &gd_eval, "gradient-descent", next)?;
        let em_eval = evaluate_em(&self.problem, &em);
        check_finite(&em, &em_eval, "EM", next)?;
        let mut warnings = Vec::new();
        let monotone = matches!(self.problem.spec.regime, Regime::Mixture | Regime::CrossEntropy);
        let before = self.previous_em_objective.unwrap_or(self.em_eval.em_objective);
        let after = em_eval.em_objective;
        if monotone && after - before > EM_RISE_TOLERANCE * before.abs().max(1.0) {
            warnings.push(format!(
                "{EM_ROSE} from {before:.12e} to {after:.12e} (EM never increases it: a bug)"
            ));
        }
        self.gd = gd;
        self.em = em;
        self.gd_eval = gd_eval;
        self.em_eval = em_eval;
        self.step = next;
        self.previous_em_objective = Some(after);
        let record = self.record(warnings);
        self.trace.push(record);
        self.thin_history();
        Ok(self.latest())
    }

    /// Bounds the trace at `limit` records (at least 16): the records kept are those whose step
    /// is a multiple of a stride, plus the latest; when they exceed the limit the stride doubles.
    /// So the history stays evenly spread over the whole run. `None` keeps every step (headless
    /// runs).
    pub fn set_history_limit(&mut self, limit: Option<usize>) {
        self.history_limit = limit.map(|l| l.max(16));
        if self.history_limit.is_none() {
            self.history_stride = 1;
        }
        self.thin_history();
    }

    fn thin_history(&mut self) {
        let Some(limit) = self.history_limit else { return };
        let n = self.trace.len();
        // The previous latest record stays only if it lies on the stride.
        if n >= 2 && !self.trace[n - 2].step.is_multiple_of(self.history_stride) {
            self.trace.remove(n - 2);
        }
        while self.trace.len() > limit {
            self.history_stride *= 2;
            let (stride, last) = (self.history_stride, self.trace.len() - 1);
            let mut index = 0;
            self.trace.retain(|r| {
                let keep = r.step.is_multiple_of(stride) || index == last;
                index += 1;
                keep
            });
        }
    }

    /// A copy without the history, to be stepped elsewhere (a worker thread) and handed back to
    /// [`Experiment::adopt`]. Cheap: the data are shared, the states are per component.
    #[must_use]
    pub fn detached(&self) -> Experiment {
        Experiment {
            problem: self.problem.clone(),
            gd: self.gd.clone(),
            em: self.em.clone(),
            gd_eval: self.gd_eval.clone(),
            em_eval: self.em_eval.clone(),
            step: self.step,
            data_variance: self.data_variance,
            data_covariance: self.data_covariance.clone(),
            residual_rows: self.residual_rows.clone(),
            initial: self.initial.clone(),
            previous_em_objective: self.previous_em_objective,
            // A stale copy carries the latest record, which its refresh rewrites.
            trace: if self.stale {
                vec![self.latest().clone()]
            } else {
                Vec::new()
            },
            history_limit: None,
            history_stride: 1,
            revision: self.revision,
            lineage: self.lineage,
            stale: self.stale,
            origin: self.revision,
        }
    }

    /// A copy holding only the latest record of the history, for an undo snapshot: cheap (the
    /// data are shared, the states are per component), and it does not grow with the run.
    #[must_use]
    pub fn snapshot(&self) -> Experiment {
        let mut copy = self.detached();
        copy.trace = vec![self.latest().clone()];
        copy.history_limit = self.history_limit;
        copy.history_stride = self.history_stride;
        copy
    }

    /// The run's line of steps: equal for two experiments when one was copied from the other
    /// with no reset or rebuild between, so their records at one step are the same run's.
    #[must_use]
    pub fn lineage(&self) -> u64 {
        self.lineage
    }

    /// Removes and returns the records before `step` (never the latest record).
    pub fn take_history_before(&mut self, step: usize) -> Vec<StepRecord> {
        let keep_from = self.trace[..self.trace.len() - 1].partition_point(|r| r.step < step);
        let rest = self.trace.split_off(keep_from);
        std::mem::replace(&mut self.trace, rest)
    }

    /// Puts `earlier` records of the same run in front of the history: those before its first
    /// record (an undo joins the history it kept to the snapshot it restores).
    pub fn prepend_history(&mut self, mut earlier: Vec<StepRecord>) {
        let first = self.trace.first().map_or(usize::MAX, |r| r.step);
        earlier.retain(|r| r.step < first);
        earlier.append(&mut self.trace);
        self.trace = earlier;
        self.thin_history();
    }

    /// Takes over the steps a [`Experiment::detached`] copy made: its states, its records and
    /// its model settings (an annealing schedule may have cooled the copy) join this
    /// experiment. Returns `false` and changes nothing when this experiment was edited or
    /// stepped since the copy was made (the copy's steps would not follow on).
    pub fn adopt(&mut self, stepped: Experiment) -> bool {
        // A copy detached while stale brings back its refreshed record of this step first.
        let refreshed = stepped.trace.first().is_some_and(|r| r.step == self.step);
        let new = stepped.trace.len() - usize::from(refreshed);
        // A copy that took no step (its first one failed) follows on too: it brings its error.
        let follows = stepped.origin == self.revision
            && stepped.step == self.step + new
            && (refreshed || new == 0 || stepped.trace.first().is_some_and(|r| r.step == self.step + 1));
        if !follows {
            return false;
        }
        let mut records = stepped.trace.into_iter();
        if refreshed && let (Some(last), Some(record)) = (self.trace.last_mut(), records.next()) {
            *last = record;
        }
        self.stale = stepped.stale;
        self.gd = stepped.gd;
        self.em = stepped.em;
        self.gd_eval = stepped.gd_eval;
        self.em_eval = stepped.em_eval;
        self.step = stepped.step;
        self.previous_em_objective = stepped.previous_em_objective;
        if stepped.revision != stepped.origin {
            // Edited on the way (annealing changes the temperature between steps): its model
            // settings and its revision come along.
            self.problem.spec = stepped.problem.spec;
            self.revision = stepped.revision;
        }
        for record in records {
            self.trace.push(record);
            self.thin_history();
        }
        true
    }

    /// Runs `steps` paired steps, stopping at the first error.
    ///
    /// # Errors
    /// As [`Experiment::step`].
    pub fn run(&mut self, steps: usize) -> Result<(), StepError> {
        for _ in 0..steps {
            self.step()?;
        }
        Ok(())
    }

    /// Changes what may change live. Both runs are re-evaluated only when something that
    /// enters the evaluation changed ([`RunSettings::changes_evaluation`]); an optimiser change
    /// takes effect at the next step. Either way the latest record is rewritten once.
    pub fn set_settings(&mut self, settings: RunSettings) {
        self.set_settings_deferred(settings);
        self.refresh();
    }

    /// [`Experiment::set_settings`] without the re-evaluation: the evaluations and the latest
    /// record stay as they were until the next step (on whatever thread takes it) or
    /// [`Experiment::refresh`]. What a window does while a worker steps, so that a slider tick
    /// costs the UI thread nothing.
    pub fn set_settings_deferred(&mut self, settings: RunSettings) {
        let old = self.problem.spec.settings;
        if old == settings {
            return;
        }
        self.revision = next_revision();
        self.problem.spec.settings = settings;
        if old.semi_supervised != settings.semi_supervised {
            self.residual_rows = diagnostics::sample_rows(&self.problem, RESIDUAL_SAMPLE);
        }
        if old.changes_evaluation(&settings) {
            self.stale = true;
        } else if !self.stale {
            self.refresh_latest();
        }
    }

    /// Whether the evaluations are from before a deferred settings change.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Redoes the evaluations and the latest record after a deferred settings change (nothing
    /// otherwise).
    pub fn refresh(&mut self) {
        if self.stale {
            self.reevaluate();
        }
    }

    /// Changes the temperature live ([`Experiment::set_settings`]).
    pub fn set_temperature(&mut self, temperature: f64) {
        self.set_settings(RunSettings {
            temperature,
            ..self.settings()
        });
    }

    /// Replaces both runs' states (a drag in the window): both runs continue from `state`.
    ///
    /// # Errors
    /// When the state is not finite; nothing changes then.
    pub fn set_states(&mut self, gd: State, em: State) -> Result<(), StepError> {
        let gd_eval = evaluate(&self.problem, &gd);
        check_finite(&gd, &gd_eval, "gradient-descent", self.step)?;
        let em_eval = evaluate_em(&self.problem, &em);
        check_finite(&em, &em_eval, "EM", self.step)?;
        self.revision = next_revision();
        self.gd = gd;
        self.em = em;
        self.gd_eval = gd_eval;
        self.em_eval = em_eval;
        self.stale = false;
        self.previous_em_objective = None;
        self.refresh_latest();
        Ok(())
    }

    /// Replaces the data (points added or removed in the window); both runs continue from their
    /// current states. The trace is kept.
    ///
    /// # Errors
    /// When the new data does not fit the objective (no points, missing labels or targets).
    pub fn replace_data(&mut self, data: Dataset) -> Result<(), String> {
        let problem = Problem::bind(data, self.problem.spec.clone()).map_err(|e| e.0)?;
        if problem.target_dim != self.problem.target_dim {
            return Err("the new data has a different target dimension".into());
        }
        self.revision = next_revision();
        self.problem = problem;
        self.residual_rows = diagnostics::sample_rows(&self.problem, RESIDUAL_SAMPLE);
        self.data_variance = self.problem.data_variance();
        self.data_covariance = data_covariance(&self.problem);
        self.reevaluate();
        Ok(())
    }

    /// Back to step 0: both runs at the initial state, the trace cleared.
    pub fn reset(&mut self) {
        self.revision = next_revision();
        self.lineage = self.revision;
        let initial = self.initial.clone();
        self.gd = initial.clone();
        self.em = initial;
        self.step = 0;
        self.trace.clear();
        self.history_stride = 1;
        self.gd_eval = evaluate(&self.problem, &self.gd);
        self.em_eval = self.gd_eval.clone();
        self.stale = false;
        self.previous_em_objective = None;
        let record = self.record(Vec::new());
        self.trace.push(record);
    }

    /// Bytes this experiment holds on the heap (the data, both states and evaluations, the
    /// trace), counted from the capacities of its buffers. Shared data count in full.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes_counting(true)
    }

    /// [`Experiment::heap_bytes`] without the data buffers it shares with another experiment
    /// (a copy's points, labels and targets are the original's).
    #[must_use]
    pub fn owned_heap_bytes(&self) -> usize {
        self.heap_bytes_counting(false)
    }

    fn heap_bytes_counting(&self, shared: bool) -> usize {
        fn v<T>(x: &Vec<T>) -> usize {
            x.capacity() * std::mem::size_of::<T>()
        }
        fn state(s: &State) -> usize {
            v(&s.prototypes) + v(&s.log_weights) + v(&s.log_scales) + v(&s.values) + v(&s.maps)
        }
        fn eval(e: &Evaluation) -> usize {
            let g = &e.gradient;
            v(&g.prototypes)
                + v(&g.log_weights)
                + v(&g.log_scales)
                + v(&g.values)
                + v(&e.counts)
                + v(&e.em.mass)
                + v(&e.em.first)
                + v(&e.em.sq_dev)
                + v(&e.em.targets)
                + v(&g.maps)
                + v(&g.biases)
                + v(&e.em.second)
        }
        fn run(r: &RunRecord) -> usize {
            r.prototypes.iter().map(v).sum::<usize>()
                + v(&r.prototypes)
                + r.values.as_ref().map_or(0, |x| x.iter().map(v).sum::<usize>() + v(x))
                + v(&r.weights)
                + v(&r.scales)
                + v(&r.counts)
                + r.maps
                    .as_ref()
                    .map_or(0, |m| m.iter().flatten().map(v).sum::<usize>() + v(m))
                + r.covariances
                    .as_ref()
                    .map_or(0, |m| m.iter().flatten().flatten().map(v).sum::<usize>() + v(m))
        }
        fn arc<T>(x: &std::sync::Arc<Vec<T>>, shared: bool) -> usize {
            if shared || std::sync::Arc::strong_count(x) == 1 {
                v(x)
            } else {
                0
            }
        }
        let p = &self.problem;
        let soft = if shared || std::sync::Arc::strong_count(&p.soft) == 1 {
            v(&p.soft.index) + v(&p.soft.probs)
        } else {
            0
        };
        let data = arc(&p.points, shared)
            + arc(&p.labels, shared)
            + arc(&p.targets, shared)
            + v(&p.spec.classes)
            + soft
            + v(&self.residual_rows);
        let trace: usize = self
            .trace
            .iter()
            .map(|r| {
                std::mem::size_of::<StepRecord>()
                    + run(&r.gd)
                    + run(&r.em)
                    + v(&r.alignment)
                    + v(&r.step_fraction)
                    + v(&r.value_alignment)
                    + r.warnings.iter().map(String::capacity).sum::<usize>()
            })
            .sum();
        data + state(&self.gd)
            + state(&self.em)
            + state(&self.initial)
            + eval(&self.gd_eval)
            + eval(&self.em_eval)
            + trace
    }

    /// Gives every component the metric `structure`, converting the states of both runs and the
    /// start: a map becomes the spherical scale of equal volume, `s = |det W|^{−2/D}`, and a
    /// scale the map `s^{−1/2} I` (a full map kept as it is between diag, full and tied, its
    /// off-diagonal dropped for diag, the first component's for tied). Re-evaluates both runs.
    pub fn set_structure(&mut self, structure: crate::core::model::Structure) {
        let from = self.problem.spec.structure;
        if from == structure {
            return;
        }
        for state in [&mut self.gd, &mut self.em, &mut self.initial] {
            *state = convert_structure(state, structure);
        }
        self.problem.spec.structure = structure;
        self.data_covariance = data_covariance(&self.problem);
        self.reevaluate();
    }

    /// The state both runs started from.
    #[must_use]
    pub fn initial_state(&self) -> &State {
        &self.initial
    }

    fn reevaluate(&mut self) {
        self.stale = false;
        self.gd_eval = evaluate(&self.problem, &self.gd);
        self.em_eval = evaluate_em(&self.problem, &self.em);
        self.previous_em_objective = None;
        self.refresh_latest();
    }

    fn refresh_latest(&mut self) {
        // The step's own finding (EM's objective rising) stays; the state warnings are made anew.
        let warnings = self
            .trace
            .last_mut()
            .map(|r| std::mem::take(&mut r.warnings))
            .unwrap_or_default()
            .into_iter()
            .filter(|w| w.starts_with(EM_ROSE))
            .collect();
        let record = self.record(warnings);
        if let Some(last) = self.trace.last_mut() {
            *last = record;
        }
    }

    /// Per value, cos(GD value step, EM value step) at the GD state (attention).
    fn value_alignment(&self) -> Vec<Option<f64>> {
        let (state, eval) = (&self.gd, &self.gd_eval);
        let p = state.value_dim;
        (0..state.k)
            .map(|j| {
                let mass = eval.em.mass[j];
                if mass <= 0.0 {
                    return None;
                }
                let gd: Vec<f64> = (0..p).map(|c| -eval.gradient.values[j * p + c]).collect();
                let em: Vec<f64> = (0..p)
                    .map(|c| eval.em.targets[j * p + c] / mass - state.values[j * p + c])
                    .collect();
                diagnostics::cosine(&gd, &em)
            })
            .collect()
    }

    fn record(&self, mut warnings: Vec<String>) -> StepRecord {
        let problem = &self.problem;
        let attention = matches!(problem.spec.regime, Regime::Attention { .. });
        let optimiser = problem.spec.settings.optimiser;
        let gd_step = gd_prototype_step(
            problem,
            &self.gd,
            &self.gd_eval,
            optimiser.learning_rate,
            optimiser.rate,
        );
        let em_step = em_prototype_step(problem, &self.gd, &self.gd_eval);
        let dim = problem.dim;
        let blocks = |j: usize| (&gd_step[j * dim..(j + 1) * dim], &em_step[j * dim..(j + 1) * dim]);
        let alignment = (0..self.gd.k).map(|j| {
            let (a, b) = blocks(j);
            diagnostics::cosine(a, b)
        });
        let step_fraction = (0..self.gd.k).map(|j| {
            let (a, b) = blocks(j);
            diagnostics::step_fraction(a, b)
        });
        warnings.extend(diagnostics::state_warnings(
            problem,
            "GD",
            &self.gd,
            &self.gd_eval,
            self.data_variance,
            self.data_covariance.as_deref().map(Vec::as_slice),
        ));
        warnings.extend(diagnostics::state_warnings(
            problem,
            "EM",
            &self.em,
            &self.em_eval,
            self.data_variance,
            self.data_covariance.as_deref().map(Vec::as_slice),
        ));
        warnings.dedup();
        let spec = &self.problem.spec;
        let covariance_at =
            (spec.structure.has_maps() || spec.settings.learn_scales).then_some(spec.settings.temperature);
        let gd = RunRecord::new(&self.gd, &self.gd_eval, attention, covariance_at);
        let em = RunRecord::new(&self.em, &self.em_eval, attention, covariance_at);
        StepRecord {
            step: self.step,
            temperature: problem.spec.settings.temperature,
            learning_rate: optimiser.learning_rate,
            identity_residual: diagnostics::identity_residual(
                problem,
                &self.gd,
                &diagnostics::rotation(&self.residual_rows, self.step),
                Derivative::Dual,
            ),
            alignment: alignment.collect(),
            step_fraction: step_fraction.collect(),
            value_alignment: if attention { self.value_alignment() } else { Vec::new() },
            prototype_distance: diagnostics::prototype_distance(&self.gd, &self.em),
            effective_components: EffectiveComponents {
                gd: gd.effective_components,
                em: em.effective_components,
            },
            gd,
            em,
            warnings,
        }
    }
}

/// `state` with the metric `structure` (see [`Experiment::set_structure`]).
fn convert_structure(state: &State, structure: crate::core::model::Structure) -> State {
    use crate::core::model::Structure;
    let (k, d) = (state.k, state.dim);
    let dd = d * d;
    let mut next = state.clone();
    if !structure.has_maps() {
        next.maps = Vec::new();
        next.log_scales = if state.has_maps() {
            (0..k)
                .map(|j| -2.0 / d as f64 * crate::core::metric::log_abs_det(state.map(j), d))
                .collect()
        } else {
            state.log_scales.clone()
        };
        return next;
    }
    if !state.has_maps() {
        next.maps = (0..k)
            .flat_map(|j| crate::core::metric::scaled_identity(d, (-0.5 * state.log_scales[j]).exp()))
            .collect();
    }
    next.log_scales = vec![0.0; k];
    match structure {
        Structure::Diag => {
            for (e, w) in next.maps.iter_mut().enumerate() {
                if (e % dd) / d != e % d {
                    *w = 0.0;
                }
            }
        }
        Structure::Tied => {
            let first = next.maps[..dd].to_vec();
            next.maps = first.repeat(k);
        }
        _ => {}
    }
    next
}

/// The covariance of the points that count (`D × D`, two passes), when the components have maps.
fn data_covariance(problem: &Problem) -> Option<std::sync::Arc<Vec<f64>>> {
    if !problem.spec.structure.has_maps() {
        return None;
    }
    let d = problem.dim;
    let weights: Vec<f64> = (0..problem.len())
        .map(|i| if problem.counts_point(i) { 1.0 } else { 0.0 })
        .collect();
    let c = crate::core::data::weighted_covariance(&problem.points, d, &weights);
    Some(std::sync::Arc::new((0..d * d).map(|e| c[(e / d, e % d)]).collect()))
}
