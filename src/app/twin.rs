//! A twin: the lab's experiment with one modelling choice flipped (the volume term, the scale
//! prior, semi-supervision, the normalisation, the reject option), started from the same states
//! and stepped in lockstep beside it, so the two can be compared side by side: its gradient-descent
//! prototypes are drawn as triangles in the scene and its loss beside the lab's.

use serde::{Deserialize, Serialize};

use crate::core::experiment::Experiment;
use crate::core::model::{ModelSpec, Regime, ScalePrior};

/// Which choice the twin flips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flip {
    /// The volume term `V`.
    Volume,
    /// The scale prior (on with `a = 2`, `s₀ = 1` when off).
    ScalePrior,
    /// Semi-supervision (cross-entropy).
    SemiSupervised,
    /// The normalisation (mixture: log-sum-exp against a sum of kernels).
    Normalisation,
    /// The reject option (mixture: a background of energy 8 when off).
    RejectOption,
}

impl Flip {
    /// Every flip, in menu order.
    pub const ALL: [Flip; 5] = [
        Flip::Volume,
        Flip::ScalePrior,
        Flip::SemiSupervised,
        Flip::Normalisation,
        Flip::RejectOption,
    ];

    /// What the menu says.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Flip::Volume => "volume term flipped",
            Flip::ScalePrior => "scale prior flipped",
            Flip::SemiSupervised => "semi-supervision flipped",
            Flip::Normalisation => "normalisation flipped",
            Flip::RejectOption => "reject option flipped",
        }
    }

    /// Whether the flip means anything for this model.
    #[must_use]
    pub fn applies(self, spec: &ModelSpec) -> bool {
        match self {
            Flip::Volume => true,
            Flip::ScalePrior => spec.learn_scales,
            Flip::SemiSupervised => spec.regime == Regime::CrossEntropy,
            Flip::Normalisation | Flip::RejectOption => spec.regime == Regime::Mixture,
        }
    }

    /// `spec` with the choice flipped.
    pub fn apply(self, spec: &mut ModelSpec) {
        match self {
            Flip::Volume => spec.volume = !spec.volume,
            Flip::ScalePrior => {
                spec.scale_prior = match spec.scale_prior {
                    Some(_) => None,
                    None => Some(ScalePrior {
                        strength: 2.0,
                        scale: 1.0,
                    }),
                }
            }
            Flip::SemiSupervised => spec.semi_supervised = !spec.semi_supervised,
            Flip::Normalisation => spec.unnormalised = !spec.unnormalised,
            Flip::RejectOption => spec.background = if spec.background.is_some() { None } else { Some(8.0) },
        }
    }
}

/// The twin experiment.
#[derive(Clone)]
pub struct Twin {
    /// What it flips.
    pub flip: Flip,
    /// Its runs.
    pub experiment: Experiment,
    /// Why it stopped, if a step of it turned non-finite (the lab's own runs go on).
    pub stopped: Option<String>,
}

impl Twin {
    /// A twin of `main` from its current states, `flip` applied.
    #[must_use]
    pub fn of(main: &Experiment, flip: Flip) -> Self {
        let mut experiment = main.clone();
        experiment.update_spec(|spec| flip.apply(spec));
        Self {
            flip,
            experiment,
            stopped: None,
        }
    }

    /// Follows a live change of the lab's settings: the lab's spec with the flip applied, and
    /// its learning rate and rate mode.
    pub fn follow(&mut self, main: &Experiment) {
        let mut spec = main.problem().spec.clone();
        self.flip.apply(&mut spec);
        self.experiment.update_spec(|s| *s = spec);
        self.experiment.set_settings(main.settings());
    }

    /// A copy to be stepped on the worker thread (its experiment [`Experiment::detached`]).
    #[must_use]
    pub fn detached(&self) -> Self {
        Self {
            flip: self.flip,
            experiment: self.experiment.detached(),
            stopped: self.stopped.clone(),
        }
    }

    /// One paired step (nothing once stopped).
    pub fn step(&mut self) {
        if self.stopped.is_none()
            && let Err(e) = self.experiment.step()
        {
            self.stopped = Some(e.to_string());
        }
    }
}
