//! The driver: one [`Session`] owns the experiment, the annealing schedule and the twin, and
//! advances them together, as argmin's `Executor` owns a solver's loop. [`Experiment::step`] is
//! one iteration (argmin's `next_iter`); [`Session::step`] is one turn of the loop; a finished
//! schedule plays the part of a termination status. The command line's `run`, the window's
//! Play button and the window's worker thread all step a session. No egui, no files.

pub mod anneal;
pub mod twin;

use anneal::{Annealer, Schedule};
use twin::{Flip, Twin};

use crate::core::data::Dataset;
use crate::core::experiment::{Experiment, StepError};
use crate::core::model::{RunSettings, State};

/// The experiment and what drives it.
#[derive(Clone, Debug)]
pub struct Session {
    experiment: Experiment,
    /// Deterministic annealing (it then takes the steps and sets the temperature).
    annealer: Option<Annealer>,
    /// The schedule and seed annealing (re)starts from.
    schedule: Option<(Schedule, u64)>,
    /// A twin with one modelling choice flipped, stepped beside the experiment.
    twin: Option<Twin>,
    /// `λ_max` of the data covariance (the critical temperature of the first split).
    critical_temperature: f64,
}

/// What [`Session::run`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// Steps taken.
    pub steps: usize,
    /// The largest identity residual among them.
    pub residual_max: f64,
    /// The error that stopped the run early (the session keeps its last good state).
    pub error: Option<StepError>,
    /// Whether the annealing schedule ran out (the run stopped there).
    pub finished: bool,
}

impl Session {
    /// A session around `experiment`; with a schedule, annealing starts (from `T₀`, both runs
    /// perturbed, seeded by `seed`).
    ///
    /// # Errors
    /// When the perturbed start is not finite.
    pub fn new(
        experiment: Experiment,
        critical_temperature: f64,
        schedule: Option<Schedule>,
        seed: u64,
    ) -> Result<Self, StepError> {
        let mut session = Self {
            experiment,
            annealer: None,
            schedule: schedule.map(|s| (s, seed)),
            twin: None,
            critical_temperature,
        };
        session.start_annealing()?;
        Ok(session)
    }

    /// A session without annealing (benchmarks, tests).
    #[must_use]
    pub fn of(experiment: Experiment, critical_temperature: f64) -> Self {
        Self {
            experiment,
            annealer: None,
            schedule: None,
            twin: None,
            critical_temperature,
        }
    }

    fn start_annealing(&mut self) -> Result<(), StepError> {
        self.annealer = None;
        self.annealer = match self.schedule {
            Some((schedule, seed)) => Some(Annealer::new(
                schedule,
                &mut self.experiment,
                seed,
                self.critical_temperature,
            )?),
            None => None,
        };
        Ok(())
    }

    /// Both runs.
    #[must_use]
    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    /// Both runs, for edits that are not settings (the history limit, tests).
    pub fn experiment_mut(&mut self) -> &mut Experiment {
        &mut self.experiment
    }

    /// The experiment alone (what a caller that steps it by hand wants).
    #[must_use]
    pub fn into_experiment(self) -> Experiment {
        self.experiment
    }

    /// The annealing schedule's state, when annealing.
    #[must_use]
    pub fn annealer(&self) -> Option<&Annealer> {
        self.annealer.as_ref()
    }

    /// The twin, when on.
    #[must_use]
    pub fn twin(&self) -> Option<&Twin> {
        self.twin.as_ref()
    }

    /// `λ_max` of the data covariance.
    #[must_use]
    pub fn critical_temperature(&self) -> f64 {
        self.critical_temperature
    }

    /// The running temperature (the schedule's while annealing).
    #[must_use]
    pub fn temperature(&self) -> f64 {
        self.experiment.settings().temperature
    }

    /// Whether a schedule is running (annealing, not finished): it sets the temperature.
    #[must_use]
    pub fn annealing(&self) -> bool {
        self.annealer.as_ref().is_some_and(|a| !a.finished())
    }

    /// Whether a schedule is running out of steps: annealing has finished.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.annealer.as_ref().is_some_and(Annealer::finished)
    }

    /// One step: the schedule's when annealing, else a paired step; then, if that succeeded,
    /// the twin's. Returns the step's identity residual, or `None` (stepping nothing) once the
    /// schedule has finished.
    ///
    /// # Errors
    /// As [`Experiment::step`]; nothing changes then.
    pub fn step(&mut self) -> Option<Result<f64, StepError>> {
        let stepped = match self.annealer.as_mut() {
            Some(a) if a.finished() => return None,
            Some(a) => a.step(&mut self.experiment).map(|()| self.experiment.latest()),
            None => self.experiment.step(),
        }
        .map(|record| record.identity_residual);
        if stepped.is_ok()
            && let Some(t) = self.twin.as_mut()
        {
            t.step();
        }
        Some(stepped)
    }

    /// Up to `steps` steps, stopping at the first error or when the schedule finishes;
    /// `progress` is called after each step with the number taken so far.
    pub fn run(&mut self, steps: usize, mut progress: impl FnMut(usize)) -> RunOutcome {
        let mut outcome = RunOutcome {
            steps: 0,
            residual_max: 0.0,
            error: None,
            finished: false,
        };
        for _ in 0..steps {
            match self.step() {
                None => {
                    outcome.finished = true;
                    break;
                }
                Some(Ok(residual)) => {
                    outcome.steps += 1;
                    outcome.residual_max = outcome.residual_max.max(residual);
                    progress(outcome.steps);
                }
                Some(Err(e)) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        outcome
    }

    /// Changes what may change live; the twin follows with its flip applied. Re-evaluates only
    /// what the change needs ([`Experiment::set_settings`]). While annealing the schedule keeps
    /// the temperature: a temperature in `settings` is ignored then.
    pub fn set_settings(&mut self, settings: RunSettings) {
        self.set_settings_deferred(settings);
        self.refresh();
    }

    /// [`Session::set_settings`] without re-evaluating now: the next step (on whatever thread
    /// takes it) or [`Session::refresh`] does ([`Experiment::set_settings_deferred`]).
    pub fn set_settings_deferred(&mut self, mut settings: RunSettings) {
        if self.annealing() {
            settings.temperature = self.temperature();
        }
        self.experiment.set_settings_deferred(settings);
        if let Some(t) = self.twin.as_mut() {
            t.follow_deferred(&self.experiment);
        }
    }

    /// Whether a deferred settings change still waits for its evaluation.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.experiment.is_stale() || self.twin.as_ref().is_some_and(|t| t.experiment.is_stale())
    }

    /// Evaluates after a deferred settings change (the experiment and the twin).
    pub fn refresh(&mut self) {
        self.experiment.refresh();
        if let Some(t) = self.twin.as_mut() {
            t.experiment.refresh();
        }
    }

    /// Turns the twin on with `flip` (from the experiment's current states) or off. A flip
    /// that does not apply to this model, or any twin while annealing (it could not follow
    /// the schedule's temperatures), leaves the twin off. Returns whether a twin runs.
    pub fn set_twin(&mut self, flip: Option<Flip>) -> bool {
        self.twin = flip
            .filter(|f| f.applies(&self.experiment.problem().spec) && self.annealer.is_none())
            .map(|f| Twin::of(&self.experiment, f));
        self.twin.is_some()
    }

    /// Starts the twin again from the experiment's states, with the same flip.
    pub fn restart_twin(&mut self) {
        let flip = self.twin.as_ref().map(|t| t.flip);
        self.set_twin(flip);
    }

    /// Replaces both runs' states (a drag in the window).
    ///
    /// # Errors
    /// When the state is not finite; nothing changes then.
    pub fn set_states(&mut self, gd: State, em: State) -> Result<(), StepError> {
        self.experiment.set_states(gd, em)
    }

    /// Replaces the data (points added or removed); both runs continue from their states.
    ///
    /// # Errors
    /// When the new data does not fit the objective.
    pub fn replace_data(&mut self, data: Dataset) -> Result<(), String> {
        let lambda = data.critical_temperature();
        self.experiment.replace_data(data)?;
        // The critical temperature (and annealing's length scale after a reset) follow the data.
        self.critical_temperature = lambda;
        Ok(())
    }

    /// Back to step 0: both runs at the initial state, annealing started again, the twin
    /// restarted.
    ///
    /// # Errors
    /// When annealing's perturbed start is not finite.
    pub fn reset(&mut self) -> Result<(), StepError> {
        self.experiment.reset();
        self.start_annealing()?;
        self.restart_twin();
        Ok(())
    }

    /// A copy to be stepped elsewhere (a worker thread) and handed back to
    /// [`Session::adopt`]: the experiment and the twin without their histories, the schedule.
    #[must_use]
    pub fn detached(&self) -> Session {
        Session {
            experiment: self.experiment.detached(),
            annealer: self.annealer.clone(),
            schedule: self.schedule,
            twin: self.twin.as_ref().map(Twin::detached),
            critical_temperature: self.critical_temperature,
        }
    }

    /// A copy for an undo snapshot: the experiment with only its latest record
    /// ([`Experiment::snapshot`]) and the schedule; no twin (a restored session starts its twin
    /// again from its own states).
    #[must_use]
    pub fn snapshot(&self) -> Session {
        Session {
            experiment: self.experiment.snapshot(),
            annealer: self.annealer.clone(),
            schedule: self.schedule,
            twin: None,
            critical_temperature: self.critical_temperature,
        }
    }

    /// Takes over the steps a [`Session::detached`] copy made, unless this session was edited
    /// or stepped meanwhile (then nothing changes and the result is `false`). The twin's steps
    /// follow on whenever the experiment's do, and the schedule moves on with them.
    pub fn adopt(&mut self, stepped: Session) -> bool {
        if !self.experiment.adopt(stepped.experiment) {
            return false;
        }
        if let (Some(t), Some(s)) = (self.twin.as_mut(), stepped.twin)
            && t.flip == s.flip
        {
            t.experiment.adopt(s.experiment);
            if t.stopped.is_none() {
                t.stopped = s.stopped;
            }
        }
        if let (Some(a), Some(s)) = (self.annealer.as_mut(), stepped.annealer) {
            *a = s;
        }
        true
    }
}
