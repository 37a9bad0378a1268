//! Stepping off the UI thread. While a frame's paired steps take less than [`THREAD_ABOVE_MS`]
//! the window takes them itself (every frame shows the latest step); above that, a worker
//! thread takes them on a [`Experiment::detached`] copy and the window adopts the result when it
//! arrives, drawing at its own rate meanwhile. An edit made while the worker runs wins: the
//! worker's steps no longer follow on and are dropped ([`Experiment::adopt`]). A twin goes along
//! and takes one step after each of the lab's; an annealing schedule goes along and takes the
//! steps itself (cooling and perturbing the copy between them), and comes back with it.

use std::thread::JoinHandle;
use std::time::Instant;

use super::twin::Twin;
use crate::core::anneal::Annealer;
use crate::core::experiment::{Experiment, StepError};

/// One step of the lab, as the window takes it on either thread: the annealing schedule's step
/// when there is a schedule, else a paired step; then, if that succeeded, the twin's. Returns the
/// step's identity residual, or `None` (and steps nothing) once the schedule has finished.
///
/// # Errors
/// As [`Experiment::step`].
pub fn lab_step(
    experiment: &mut Experiment,
    annealer: Option<&mut Annealer>,
    twin: Option<&mut Twin>,
) -> Option<Result<f64, StepError>> {
    let stepped = match annealer {
        Some(a) if a.finished() => return None,
        Some(a) => a.step(experiment).map(|()| experiment.latest()),
        None => experiment.step(),
    }
    .map(|rec| rec.identity_residual);
    if stepped.is_ok()
        && let Some(t) = twin
    {
        t.step();
    }
    Some(stepped)
}

/// Steps of one frame that take longer than this (milliseconds) move to the worker thread.
pub const THREAD_ABOVE_MS: f64 = 8.0;
/// ... and move back once they take less than this (hysteresis, so the mode does not flicker).
pub const SYNC_BELOW_MS: f64 = 4.0;

/// What a worker brings back.
pub struct Outcome {
    /// The copy, stepped.
    pub stepped: Experiment,
    /// The error that stopped it early, if any (the copy keeps its last good state).
    pub error: Option<crate::core::experiment::StepError>,
    /// The largest identity residual among its steps.
    pub residual_max: f64,
    /// Milliseconds per paired step, measured on the worker (the twin's included).
    pub ms_per_step: f64,
    /// The twin, stepped beside it (the same number of steps), if the lab had one.
    pub twin: Option<Twin>,
    /// The annealing schedule that drove the steps, if the lab was annealing.
    pub annealer: Option<Annealer>,
}

/// The stepping mode and the job in flight.
#[derive(Default)]
pub struct Stepper {
    job: Option<JoinHandle<Outcome>>,
    /// Stepping on the worker thread (else on the UI thread).
    pub threaded: bool,
    /// Milliseconds per paired step, as last measured (moving average).
    pub ms_per_step: f64,
}

impl Stepper {
    /// Whether a job is running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Folds a measured step time into the average and picks the mode for `steps` per frame.
    pub fn measured(&mut self, ms_per_step: f64, steps: usize) {
        self.ms_per_step = if self.ms_per_step > 0.0 {
            0.7 * self.ms_per_step + 0.3 * ms_per_step
        } else {
            ms_per_step
        };
        let frame = self.ms_per_step * steps as f64;
        if frame > THREAD_ABOVE_MS {
            self.threaded = true;
        } else if frame < SYNC_BELOW_MS {
            self.threaded = false;
        }
    }

    /// Starts `steps` paired steps of a detached copy of `experiment` on a worker thread, and of
    /// `twin` beside it (one twin step after each of the lab's, as on the UI thread). With an
    /// `annealer` the steps are its steps (which cool and perturb between them); they stop
    /// early when it finishes.
    pub fn start(&mut self, experiment: &Experiment, twin: Option<&Twin>, annealer: Option<&Annealer>, steps: usize) {
        let mut copy = experiment.detached();
        let mut annealer = annealer.cloned();
        let mut twin = twin.map(Twin::detached);
        self.job = Some(std::thread::spawn(move || {
            let started = Instant::now();
            let (mut done, mut error, mut residual_max) = (0usize, None, 0.0f64);
            for _ in 0..steps {
                match lab_step(&mut copy, annealer.as_mut(), twin.as_mut()) {
                    None => break,
                    Some(Ok(residual)) => {
                        residual_max = residual_max.max(residual);
                        done += 1;
                    }
                    Some(Err(e)) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            Outcome {
                stepped: copy,
                error,
                residual_max,
                ms_per_step: started.elapsed().as_secs_f64() * 1e3 / done.max(1) as f64,
                twin,
                annealer,
            }
        }));
    }

    /// The outcome of a finished job (`None` while it runs or when there is none). A worker that
    /// panicked comes back as an error; the window's experiment was never touched by it.
    pub fn finished(&mut self) -> Option<Result<Outcome, StepError>> {
        if !self.job.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        self.job.take().map(join)
    }

    /// Waits for the job in flight, if any, and returns its outcome.
    pub fn wait(&mut self) -> Option<Result<Outcome, StepError>> {
        self.job.take().map(join)
    }
}

/// The outcome of a finished job; a worker that panicked comes back as an error.
fn join(handle: JoinHandle<Outcome>) -> Result<Outcome, StepError> {
    handle.join().map_err(|_| StepError {
        step: 0,
        reason: "the stepping thread failed; the lab kept its last state".into(),
    })
}
