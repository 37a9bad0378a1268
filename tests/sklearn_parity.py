#!/usr/bin/env python3
"""The lab's explicit EM against scikit-learn's GaussianMixture (issue 14, README "Metrics").

For Old Faithful (presets/old-faithful.csv) and for random 3-D data, for each covariance type
(spherical, diag, full, tied): one random start (weights, means, precisions), written into a
preset as `prototypes: Explicit(...)`; the lab's `run` at T = 1 with learned weights and metric
records EM's weights, means and covariances at every step; scikit-learn fits from the same start
(`weights_init`, `means_init`, `precisions_init`, `tol=0`) for 1, 2, ..., 20 iterations. Each of
the 20 steps must agree to 1e-9 (relative to each array's largest entry).

Usage: tests/sklearn_parity.py [path/to/implicit-em-lab]   (default target/release/implicit-em-lab)
Needs numpy and scikit-learn (.ci/run makes a virtual environment with them).
"""

import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 20
TOLERANCE = 1e-9
REG = 1e-6


def ron_list(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(ron_list(x) for x in v) + "]"
    return repr(float(v))


def start(rng, x, k, kind):
    """A random start: weights, means (data points), and precisions in scikit-learn's shapes."""
    d = x.shape[1]
    weights = rng.uniform(0.5, 1.5, k)
    weights /= weights.sum()
    means = x[rng.choice(len(x), k, replace=False)] + rng.normal(0, 0.1, (k, d)) * x.std(0)
    spread = x.var(0)
    def full_precision():
        a = rng.normal(0, 0.3, (d, d))
        cov = np.diag(spread) + 0.5 * (a @ a.T) * np.sqrt(np.outer(spread, spread))
        return np.linalg.inv(cov)
    if kind == "full":
        precisions = np.array([full_precision() for _ in range(k)])
    elif kind == "tied":
        precisions = full_precision()
    elif kind == "diag":
        precisions = 1.0 / (spread * rng.uniform(0.5, 2.0, (k, d)))
    else:
        precisions = 1.0 / (spread.mean() * rng.uniform(0.5, 2.0, k))
    return weights, means, precisions


def lab_precisions(kind, precisions, k, d):
    """The preset's `precisions` (one D × D matrix per component) or `scales` (spherical)."""
    if kind == "spherical":
        return "scales: " + ron_list(1.0 / precisions)
    if kind == "diag":
        mats = [np.diag(p) for p in precisions]
    elif kind == "tied":
        mats = [precisions] * k
    else:
        mats = list(precisions)
    return "precisions: " + ron_list(mats)


def run_lab(binary, x, weights, means, precisions, kind, folder):
    k, d = means.shape
    data = os.path.join(folder, "data.csv")
    np.savetxt(data, x, delimiter=",", fmt="%.17g")
    metric = {"spherical": "Spherical", "diag": "Diag", "full": "Full", "tied": "Tied"}[kind]
    preset = os.path.join(folder, f"{kind}.ron")
    with open(preset, "w") as f:
        f.write(f"""(
    name: "parity {kind}",
    objective: Mixture,
    temperature: 1.0,
    learning_rate: 0.01,
    learn: (weights: true, metric: true, volume: true),
    metric: {metric},
    reg_covar: {REG!r},
    scale_floor: 1e-300,
    data: Csv(path: "data.csv"),
    prototypes: Explicit(
        positions: {ron_list(means)},
        weights: {ron_list(weights)},
        {lab_precisions(kind, precisions, k, d)},
    ),
)
""")
    out = os.path.join(folder, f"{kind}.json")
    subprocess.run([binary, "run", "--preset", preset, "--steps", str(STEPS), "--out", out],
                   check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)["steps"]


def worst(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def compare(binary, name, x, k, kind, seed, folder):
    rng = np.random.default_rng(seed)
    weights, means, precisions = start(rng, x, k, kind)
    steps = run_lab(binary, x, weights, means, precisions, kind, folder)
    assert len(steps) == STEPS + 1, f"{name} {kind}: the lab recorded {len(steps)} steps"
    d = x.shape[1]
    largest = 0.0
    for it in range(1, STEPS + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            g = GaussianMixture(k, covariance_type=kind, tol=0.0, max_iter=it, reg_covar=REG,
                                weights_init=weights, means_init=means, precisions_init=precisions)
            g.fit(x)
        if kind == "full":
            covs = g.covariances_
        elif kind == "tied":
            covs = np.array([g.covariances_] * k)
        elif kind == "diag":
            covs = np.array([np.diag(c) for c in g.covariances_])
        else:
            covs = np.array([c * np.eye(d) for c in g.covariances_])
        em = steps[it]["em"]
        errs = {
            "weights": worst(em["weights"], g.weights_),
            "means": worst(em["prototypes"], g.means_),
            "covariances": worst(em["covariances"], covs),
        }
        for what, e in errs.items():
            largest = max(largest, e)
            if not e <= TOLERANCE:
                sys.exit(f"{name} {kind} iteration {it}: {what} differ by {e:.3e} (relative), "
                         f"more than {TOLERANCE:g}")
    print(f"{name:13s} {kind:9s} K={k} D={d}: {STEPS} iterations, largest relative difference {largest:.2e}")
    return largest


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "implicit-em-lab")
    faithful = np.loadtxt(os.path.join(ROOT, "presets", "old-faithful.csv"), delimiter=",", skiprows=1)
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, (3, 3))
    random3 = np.concatenate([c + rng.normal(0, 1, (80, 3)) @ rng.normal(0, 0.7, (3, 3)) for c in centres])
    largest = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for kind in ["spherical", "diag", "full", "tied"]:
            largest = max(largest, compare(binary, "Old Faithful", faithful, 2, kind, 11, folder))
            largest = max(largest, compare(binary, "random 3-D", random3, 3, kind, 12, folder))
    print(f"parity with scikit-learn: all agree to {largest:.2e} (tolerance {TOLERANCE:g})")


if __name__ == "__main__":
    main()
