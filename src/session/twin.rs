//! A twin: the lab's experiment with one modelling choice flipped (the volume term, the scale
//! prior, semi-supervision, the normalisation, the reject option), started from the same states
//! and stepped in lockstep beside it, so the two can be compared side by side: its gradient-descent
//! prototypes are drawn as triangles in the scene and its loss beside the lab's.

use serde::{Deserialize, Serialize};

use crate::core::experiment::Experiment;
use crate::core::model::{Form, ModelSpec, Regime, RunSettings, ScalePrior, Structure};

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
    /// The metric: full maps beside spherical scales (a spherical lab gets a full twin, any
    /// other structure a spherical one).
    Metric,
    /// Gradient descent's parametrisation of the maps: prototype beside neural.
    Form,
}

impl Flip {
    /// Every flip, in menu order.
    pub const ALL: [Flip; 7] = [
        Flip::Volume,
        Flip::ScalePrior,
        Flip::SemiSupervised,
        Flip::Normalisation,
        Flip::RejectOption,
        Flip::Metric,
        Flip::Form,
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
            Flip::Metric => "metric flipped (full or spherical)",
            Flip::Form => "parametrisation flipped (prototype or neural)",
        }
    }

    /// Whether the flip means anything for this model.
    #[must_use]
    pub fn applies(self, spec: &ModelSpec) -> bool {
        match self {
            Flip::Volume => true,
            Flip::ScalePrior => spec.settings.learn_scales,
            Flip::SemiSupervised => spec.regime == Regime::CrossEntropy,
            Flip::Normalisation | Flip::RejectOption => spec.regime == Regime::Mixture,
            Flip::Metric => spec.regime.score() == crate::core::model::Score::Distance,
            Flip::Form => {
                spec.regime.score() == crate::core::model::Score::Distance && spec.settings.scale_prior.is_none()
            }
        }
    }

    /// The structure the twin's components take, for [`Flip::Metric`].
    #[must_use]
    pub fn structure(self, spec: &ModelSpec) -> Option<Structure> {
        (self == Flip::Metric).then(|| {
            if spec.structure.has_maps() {
                Structure::Spherical
            } else {
                Structure::Full
            }
        })
    }

    /// `settings` with the choice flipped.
    #[must_use]
    pub fn apply(self, mut settings: RunSettings) -> RunSettings {
        let s = &mut settings;
        match self {
            Flip::Volume => s.volume = !s.volume,
            Flip::ScalePrior => {
                s.scale_prior = match s.scale_prior {
                    Some(_) => None,
                    None => Some(ScalePrior {
                        strength: 2.0,
                        scale: 1.0,
                    }),
                }
            }
            Flip::SemiSupervised => s.semi_supervised = !s.semi_supervised,
            Flip::Normalisation => s.unnormalised = !s.unnormalised,
            Flip::RejectOption => s.reject_energy = if s.reject_energy.is_some() { None } else { Some(8.0) },
            Flip::Metric => {}
            Flip::Form => {
                s.form = match s.form {
                    Form::Prototype => Form::Neural,
                    Form::Neural => Form::Prototype,
                }
            }
        }
        settings
    }
}

/// The twin experiment.
#[derive(Clone, Debug)]
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
        if let Some(structure) = flip.structure(&main.problem().spec) {
            experiment.set_structure(structure);
        }
        experiment.set_settings(flip.apply(main.settings()));
        Self {
            flip,
            experiment,
            stopped: None,
        }
    }

    /// Follows a live change of the lab's settings: the lab's settings with the flip applied.
    pub fn follow(&mut self, main: &Experiment) {
        self.experiment.set_settings(self.flip.apply(main.settings()));
    }

    /// [`Twin::follow`] without re-evaluating now ([`Experiment::set_settings_deferred`]).
    pub fn follow_deferred(&mut self, main: &Experiment) {
        self.experiment.set_settings_deferred(self.flip.apply(main.settings()));
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
