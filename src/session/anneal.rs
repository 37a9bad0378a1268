//! Deterministic annealing (MATH.md §6, Rose 1998): settle both runs at a temperature, then cool
//! `T ← max(T_min, γ T)`, with a tiny perturbation at each new temperature so that coincident
//! prototypes can separate. At every settled temperature the annealer counts the distinct
//! prototype positions of each run, records a split when the count rises, and computes the
//! critical temperature of every group of coincident prototypes (`λ_max` of its
//! responsibility-weighted covariance times `2s`/2 = `λ_max / s` for the lab's `d = ‖x − μ‖²/(2s)`).

use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::core::data::{self, largest_eigenvalue};
use crate::core::eval::{Row, field_row};
use crate::core::experiment::{Experiment, StepError};
use crate::core::model::{ComponentTerms, State};

/// A run has settled at a temperature when no prototype of either run moves more than this
/// (relative to the data's scale `√λ_max`) in one step.
pub const SETTLE_TOLERANCE: f64 = 1e-7;
/// ... or after this many steps at one temperature (near a critical temperature both runs slow
/// down sharply).
pub const MAX_SETTLE_STEPS: usize = 5000;
/// Standard deviation of the perturbation added at each new temperature (relative to `√λ_max`).
pub const PERTURBATION: f64 = 1e-4;
/// Prototypes closer than this (relative to `√λ_max`) count as one position.
pub const MERGE_DISTANCE: f64 = 1e-2;

/// The cooling schedule `T ← max(T_min, γ T)` from `T₀`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Starting temperature `T₀ > 0`.
    pub t0: f64,
    /// Cooling factor `0 < γ < 1`.
    pub gamma: f64,
    /// Final temperature `0 < T_min ≤ T₀`.
    pub t_min: f64,
}

impl Schedule {
    /// Reads `T0,GAMMA,TMIN` (the command line's `--anneal`).
    ///
    /// # Errors
    /// When there are not three numbers or they are out of range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [t0, gamma, t_min] = parts.as_slice() else {
            return Err(format!("--anneal takes T0,GAMMA,TMIN (three numbers), got {text:?}"));
        };
        let num = |name: &str, s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("--anneal: {name} must be a number, got {s:?}"))
        };
        let schedule = Self {
            t0: num("T0", t0)?,
            gamma: num("GAMMA", gamma)?,
            t_min: num("TMIN", t_min)?,
        };
        schedule.check().map_err(|(_, m)| format!("--anneal: {m}"))?;
        Ok(schedule)
    }

    /// The first field out of range, and why (field names as in presets).
    ///
    /// # Errors
    /// `(field, message)` for the first value out of range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let r = crate::core::math::readable;
        let (lo, hi) = (crate::core::model::MIN_TEMPERATURE, crate::core::model::MAX_TEMPERATURE);
        if !(lo..=hi).contains(&self.t0) {
            return Err(("t0", format!("T0 must lie in [{lo:e}, {hi:e}], got {}", r(self.t0))));
        }
        if !(self.gamma > 0.0 && self.gamma < 1.0) {
            return Err(("gamma", format!("GAMMA must lie in (0, 1), got {}", r(self.gamma))));
        }
        if !(self.t_min >= lo && self.t_min <= self.t0) {
            return Err((
                "t_min",
                format!("TMIN must lie in [{lo:e}, T0 = {}], got {}", r(self.t0), r(self.t_min)),
            ));
        }
        Ok(())
    }
}

/// A rise in the number of distinct prototype positions of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// The step at which the run had settled with more positions.
    pub step: usize,
    /// The temperature it settled at.
    pub temperature: f64,
    /// `gd` or `em`.
    pub run: String,
    /// Distinct positions before and after.
    pub components: usize,
    /// Distinct positions at the previous settled temperature.
    pub previous: usize,
}

/// One settled temperature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    /// The step at which both runs had settled.
    pub step: usize,
    /// The temperature.
    pub temperature: f64,
    /// Whether they settled (else the step limit was reached).
    pub converged: bool,
    /// Distinct prototype positions of the gradient-descent run.
    pub groups_gd: usize,
    /// ... and of the EM run.
    pub groups_em: usize,
    /// Critical temperature of each group of the gradient-descent run (`λ_max` of its
    /// responsibility-weighted covariance over its scale): the next split happens below the
    /// largest.
    pub critical: Vec<f64>,
    /// The gradient-descent run's prototypes there (what the bifurcation plot draws).
    pub prototypes: Vec<Vec<f64>>,
    /// How many prototypes each group of the gradient-descent run holds (beside `critical`).
    #[serde(default)]
    pub members: Vec<usize>,
}

/// What comes next in a schedule, read from the last settled temperature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outlook {
    /// A group of several coincident prototypes splits when `T` falls below this (the
    /// largest such critical temperature below the current `T`).
    NextSplit(f64),
    /// A group of `members` prototypes is already below its critical temperature `critical`
    /// and separates as it settles (slowly, near `T_c`).
    Splitting { members: usize, critical: f64 },
    /// Every prototype is on its own: no group is left to split.
    NoneLeft,
}

impl Settled {
    /// The outlook at temperature `t`: only groups of two or more prototypes can split (a lone
    /// prototype's critical temperature is no split of the run's).
    #[must_use]
    pub fn outlook(&self, t: f64) -> Outlook {
        let several = || {
            self.critical
                .iter()
                .zip(&self.members)
                .filter(|&(_, &m)| m >= 2)
                .map(|(&c, &m)| (c, m))
        };
        if let Some((critical, members)) = several().filter(|&(c, _)| c >= t).max_by(|a, b| a.0.total_cmp(&b.0)) {
            return Outlook::Splitting { members, critical };
        }
        several()
            .map(|(c, _)| c)
            .filter(|&c| c > 0.0)
            .reduce(f64::max)
            .map_or(Outlook::NoneLeft, Outlook::NextSplit)
    }
}

/// Drives an [`Experiment`] through a [`Schedule`].
#[derive(Clone, Debug)]
pub struct Annealer {
    /// The schedule.
    pub schedule: Schedule,
    /// `√λ_max` of the data: the length scale of the tolerances.
    scale: f64,
    /// Detected splits, in order.
    pub splits: Vec<Split>,
    /// Settled temperatures, in order.
    pub settled: Vec<Settled>,
    steps_here: usize,
    groups: [usize; 2],
    rng: Xoshiro256PlusPlus,
    finished: bool,
}

/// Groups of prototypes closer than `within` (single linkage): a group index per prototype.
#[must_use]
pub fn groups(state: &State, within: f64) -> Vec<usize> {
    let k = state.k;
    let mut group: Vec<usize> = (0..k).collect();
    let find = |g: &Vec<usize>, mut j: usize| {
        while g[j] != j {
            j = g[j];
        }
        j
    };
    for a in 0..k {
        for b in a + 1..k {
            let d2: f64 = state
                .prototype(a)
                .iter()
                .zip(state.prototype(b))
                .map(|(x, y)| (x - y) * (x - y))
                .sum();
            if d2 <= within * within {
                let (ra, rb) = (find(&group, a), find(&group, b));
                group[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let roots: Vec<usize> = (0..k).map(|j| find(&group, j)).collect();
    let mut distinct: Vec<usize> = roots.clone();
    distinct.sort_unstable();
    distinct.dedup();
    roots.iter().map(|r| distinct.binary_search(r).unwrap_or(0)).collect()
}

fn count(groups: &[usize]) -> usize {
    groups.iter().max().map_or(0, |m| m + 1)
}

impl Annealer {
    /// Sets the experiment to `T₀`, perturbs both runs, and starts settling. `lambda` is
    /// `λ_max` of the data covariance (the length scale `√λ_max` of the tolerances).
    ///
    /// # Errors
    /// When the perturbed state is not finite.
    pub fn new(schedule: Schedule, experiment: &mut Experiment, seed: u64, lambda: f64) -> Result<Self, StepError> {
        let mut a = Self {
            schedule,
            scale: lambda.sqrt().max(1e-12),
            splits: Vec::new(),
            settled: Vec::new(),
            steps_here: 0,
            groups: [0, 0],
            rng: data::rng(seed ^ 0x00a1_1ea1),
            finished: false,
        };
        experiment.set_temperature(schedule.t0);
        a.groups = [
            count(&groups(experiment.gd_state(), MERGE_DISTANCE * a.scale)),
            count(&groups(experiment.em_state(), MERGE_DISTANCE * a.scale)),
        ];
        a.perturb(experiment)?;
        Ok(a)
    }

    /// Splits found by gradient descent and by explicit EM.
    #[must_use]
    pub fn split_counts(&self) -> (usize, usize) {
        let gd = self.splits.iter().filter(|s| s.run == "gd").count();
        (gd, self.splits.len() - gd)
    }

    /// Whether the schedule has run out (settled at `T_min`).
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// One paired step; when both runs have settled, records the temperature, any splits, and
    /// cools. Does nothing once finished.
    ///
    /// # Errors
    /// As [`Experiment::step`].
    pub fn step(&mut self, experiment: &mut Experiment) -> Result<(), StepError> {
        if self.finished {
            return Ok(());
        }
        let before = (experiment.gd_state().clone(), experiment.em_state().clone());
        experiment.step()?;
        self.steps_here += 1;
        let moved = |a: &State, b: &State| {
            (0..a.k)
                .map(|j| {
                    a.prototype(j)
                        .iter()
                        .zip(b.prototype(j))
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(0.0, f64::max)
        };
        let movement = moved(&before.0, experiment.gd_state()).max(moved(&before.1, experiment.em_state()));
        let converged = movement < SETTLE_TOLERANCE * self.scale;
        if converged || self.steps_here >= MAX_SETTLE_STEPS {
            self.settle(experiment, converged)?;
        }
        Ok(())
    }

    fn settle(&mut self, experiment: &mut Experiment, converged: bool) -> Result<(), StepError> {
        let t = experiment.problem().spec.settings.temperature;
        let step = experiment.step_count();
        let within = MERGE_DISTANCE * self.scale;
        let gd_groups = groups(experiment.gd_state(), within);
        let now = [count(&gd_groups), count(&groups(experiment.em_state(), within))];
        for (r, name) in [(0, "gd"), (1, "em")] {
            if now[r] > self.groups[r] {
                self.splits.push(Split {
                    step,
                    temperature: t,
                    run: name.into(),
                    components: now[r],
                    previous: self.groups[r],
                });
            }
        }
        self.groups = now;
        self.settled.push(Settled {
            step,
            temperature: t,
            converged,
            groups_gd: now[0],
            groups_em: now[1],
            critical: group_critical_temperatures(experiment, &gd_groups),
            members: (0..now[0])
                .map(|g| gd_groups.iter().filter(|&&x| x == g).count())
                .collect(),
            prototypes: (0..experiment.gd_state().k)
                .map(|j| experiment.gd_state().prototype(j).to_vec())
                .collect(),
        });
        if t <= self.schedule.t_min {
            self.finished = true;
            return Ok(());
        }
        experiment.set_temperature((self.schedule.gamma * t).max(self.schedule.t_min));
        self.steps_here = 0;
        self.perturb(experiment)
    }

    /// Adds the same draw of `N(0, (PERTURBATION·√λ_max)²)` to every prototype coordinate of both
    /// runs (so runs that agree before, as GD with the EM-preconditioned rate and EM do, still
    /// agree after).
    fn perturb(&mut self, experiment: &mut Experiment) -> Result<(), StepError> {
        let sd = PERTURBATION * self.scale;
        let noise: Vec<f64> = (0..experiment.gd_state().prototypes.len())
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                sd * z
            })
            .collect();
        let shake = |s: &State| {
            let mut s = s.clone();
            for (x, z) in s.prototypes.iter_mut().zip(&noise) {
                *x += z;
            }
            s
        };
        let (gd, em) = (shake(experiment.gd_state()), shake(experiment.em_state()));
        experiment.set_states(gd, em)
    }
}

/// The critical temperature of each group of coincident prototypes of the gradient-descent run:
/// `λ_max` of the covariance of the data weighted by the group's summed responsibility, over
/// the group's mean scale (the lab's distance is `‖x − μ‖²/(2s)`; `s = 1` gives MATH.md §6);
/// with maps `λ_max(W C Wᵀ)` of the members' mean map `W` (anisotropic clusters split along
/// their longest axis in the metric's own units).
#[must_use]
pub fn group_critical_temperatures(experiment: &Experiment, group: &[usize]) -> Vec<f64> {
    let problem = experiment.problem();
    let state = experiment.gd_state();
    let terms = ComponentTerms::new(&problem.spec, state);
    let n_groups = count(group);
    let mut weights = vec![vec![0.0; problem.len()]; n_groups];
    let mut row = Row::new(state.k, problem.dim, problem.target_dim);
    for i in 0..problem.len() {
        field_row(&problem.spec, state, &terms, problem.point(i), &mut row);
        for (j, r) in row.responsibilities.iter().enumerate() {
            weights[group[j]][i] += r;
        }
    }
    let scales = state.scales();
    (0..n_groups)
        .map(|g| {
            let members: Vec<usize> = (0..state.k).filter(|&j| group[j] == g).collect();
            let s = members.iter().map(|&j| scales[j]).sum::<f64>() / members.len().max(1) as f64;
            if weights[g].iter().sum::<f64>() <= 0.0 {
                return 0.0;
            }
            if state.has_maps() {
                // With maps the distance is ½‖W(x − μ)‖²: the same split in the coordinates
                // z = W x, so T_c = λ_max(W C Wᵀ), with W the members' mean map.
                let d = problem.dim;
                let mut w = vec![0.0; d * d];
                for &j in &members {
                    for (a, b) in w.iter_mut().zip(state.map(j)) {
                        *a += b / members.len() as f64;
                    }
                }
                let mut z = vec![0.0; problem.len() * d];
                for (i, zi) in z.chunks_mut(d).enumerate() {
                    let x = problem.point(i);
                    for (r, v) in zi.iter_mut().enumerate() {
                        *v = (0..d).map(|c| w[r * d + c] * x[c]).sum();
                    }
                }
                return largest_eigenvalue(&z, d, &weights[g]);
            }
            largest_eigenvalue(&problem.points, problem.dim, &weights[g]) / s
        })
        .collect()
}
