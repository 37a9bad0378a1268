//! Stepping off the UI thread. While a frame's steps take less than [`THREAD_ABOVE_MS`] the
//! window takes them itself (every frame shows the latest step); above that, a worker thread
//! steps a [`Session::detached`] copy (the experiment, its twin and its annealing schedule) and
//! the window adopts the result when it arrives, drawing at its own rate meanwhile. An edit made
//! while the worker runs wins: the worker's steps no longer follow on and are dropped
//! ([`Session::adopt`]).

use std::thread::JoinHandle;
use std::time::Instant;

use crate::core::experiment::StepError;
use crate::session::{RunOutcome, Session};

/// Steps of one frame that take longer than this (milliseconds) move to the worker thread.
pub const THREAD_ABOVE_MS: f64 = 8.0;
/// ... and move back once they take less than this (hysteresis, so the mode does not flicker).
pub const SYNC_BELOW_MS: f64 = 4.0;

/// What a worker brings back.
pub struct Outcome {
    /// The copy, stepped.
    pub stepped: Session,
    /// What the steps did (the error that stopped them early, if any: the copy keeps its last
    /// good state).
    pub run: RunOutcome,
    /// Milliseconds per step, measured on the worker (the twin's included).
    pub ms_per_step: f64,
}

/// The stepping mode and the job in flight.
#[derive(Default)]
pub struct Worker {
    job: Option<JoinHandle<Outcome>>,
    /// Stepping on the worker thread (else on the UI thread).
    pub threaded: bool,
    /// Milliseconds per paired step, as last measured (moving average).
    pub ms_per_step: f64,
    /// Stepping stays on the UI thread whatever the steps take ([`Worker::pin_to_ui_thread`]).
    pinned: bool,
}

impl Worker {
    /// Keeps stepping on the UI thread whatever a frame's steps take: for tests that count
    /// steps by frames, which a loaded machine would otherwise hand to the worker.
    pub fn pin_to_ui_thread(&mut self) {
        self.pinned = true;
        self.threaded = false;
    }

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
        if self.pinned {
            return;
        }
        let frame = self.ms_per_step * steps as f64;
        if frame > THREAD_ABOVE_MS {
            self.threaded = true;
        } else if frame < SYNC_BELOW_MS {
            self.threaded = false;
        }
    }

    /// Starts `steps` steps of a detached copy of `session` on a worker thread (they stop
    /// early when its annealing schedule finishes).
    pub fn start(&mut self, session: &Session, steps: usize) {
        let mut copy = session.detached();
        self.job = Some(std::thread::spawn(move || {
            let started = Instant::now();
            let run = copy.run(steps, |_| ());
            Outcome {
                ms_per_step: started.elapsed().as_secs_f64() * 1e3 / run.steps.max(1) as f64,
                stepped: copy,
                run,
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

/// A frame's budget for fast settling: between [`SYNC_BELOW_MS`] and [`THREAD_ABOVE_MS`], so
/// it does not move the steps between the threads.
pub const SETTLE_BUDGET_MS: f64 = 6.0;
/// The most steps fast settling takes in one frame.
pub const SETTLE_MAX_STEPS: usize = 2000;

/// Paired steps for this frame: `base` (steps per frame), or while an annealing schedule
/// settles with fast settling on, as many as fit in [`SETTLE_BUDGET_MS`] at the measured
/// `ms_per_step` (at most [`SETTLE_MAX_STEPS`], never fewer than `base`).
#[must_use]
pub fn frame_steps(base: usize, ms_per_step: f64, settling: bool) -> usize {
    let base = base.max(1);
    if !(settling && ms_per_step > 0.0 && ms_per_step.is_finite()) {
        return base;
    }
    let fit = (SETTLE_BUDGET_MS / ms_per_step).floor() as usize;
    fit.clamp(base, SETTLE_MAX_STEPS.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_settling_fills_the_frame_budget_and_no_more() {
        // Off, or before any measurement: the slider's steps.
        assert_eq!(frame_steps(3, 0.2, false), 3);
        assert_eq!(frame_steps(3, 0.0, true), 3);
        assert_eq!(frame_steps(0, f64::NAN, true), 1);
        // 0.2 ms a step: 30 steps fill 6 ms.
        assert_eq!(frame_steps(1, 0.2, true), 30);
        // A fast lab is capped; a slow one keeps the slider's count.
        assert_eq!(frame_steps(1, 1e-4, true), SETTLE_MAX_STEPS);
        assert_eq!(frame_steps(5, 3.0, true), 5);
        // The budget stays inside the band where the worker neither starts nor stops.
        let steps = frame_steps(1, 0.37, true);
        let frame = steps as f64 * 0.37;
        assert!(frame > SYNC_BELOW_MS && frame < THREAD_ABOVE_MS, "{frame}");
    }
}
