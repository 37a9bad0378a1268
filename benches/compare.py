#!/usr/bin/env python3
"""Times one paired step (a gradient step and an explicit EM step, each on its own state, so two
E-steps) of the mixture objective in three implementations, in one run, and prints each ratio
against ours:

  * implicit-em-lab (`implicit-em-lab bench`, the release binary; multithreaded);
  * the same paired step written plainly in numpy (log-sum-exp with the maximum subtracted);
  * scikit-learn's spherical GaussianMixture, per EM iteration (one E-step and one M-step, so
    half of our work per paired step).

Writes benches/results.json and, with --plot, a log-log scaling plot (assets/scaling.png).

Usage (from the repository root, after `cargo build --release`):
  python3 -m venv /tmp/env && /tmp/env/bin/pip install numpy scikit-learn matplotlib
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/env/bin/python benches/compare.py --plot
"""

import argparse
import json
import statistics
import subprocess
import time
import warnings

import numpy as np

BIN = "target/release/implicit-em-lab"


def ours(n, k, objective="mixture"):
    """Our paired step (`implicit-em-lab bench`); "attention-regression" is attention with one
    regression target per point (values in R^1) instead of 4-class one-hot targets (R^4)."""
    args = ["--objective", "attention", "--regression"] if objective == "attention-regression" \
        else ["--objective", objective]
    out = subprocess.run([BIN, "bench", "--n", str(n), "--k", str(k), *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def blobs(n, dim=2, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-6, 6, size=(4, dim))
    return centres[rng.integers(0, 4, n)] + rng.standard_normal((n, dim))


def numpy_paired_step(x, mu_gd, mu_em, t=1.0, eta=0.5):
    """One GD step on mu_gd and one EM step on mu_em, as MATH.md section 3 writes them."""
    n = x.shape[0]

    def e_step(mu):
        d = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1) / 2.0  # N x K
        a = -d / t
        m = a.max(axis=1, keepdims=True)
        e = np.exp(a - m)
        s = e.sum(axis=1, keepdims=True)
        r = e / s
        loss = (-t * (m[:, 0] + np.log(s[:, 0]))).mean()
        return r, loss

    r, _ = e_step(mu_gd)
    nj = r.sum(0)
    grad = (nj[:, None] * mu_gd - r.T @ x) / n
    mu_gd = mu_gd - eta * grad
    r, _ = e_step(mu_em)
    nj = r.sum(0)
    mu_em = (r.T @ x) / np.maximum(nj, 1e-300)[:, None]
    return mu_gd, mu_em


def time_numpy(n, k, repeat):
    x = blobs(n)
    rng = np.random.default_rng(7)
    mu = rng.uniform(x.min(0), x.max(0), size=(k, 2))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        numpy_paired_step(x, mu.copy(), mu.copy())
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_sklearn(n, k, repeat):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = blobs(n)
    gm = GaussianMixture(n_components=k, covariance_type="spherical", max_iter=1, tol=0.0,
                         init_params="random", warm_start=True, random_state=0)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)  # initialisation, not timed
        for _ in range(repeat):
            t0 = time.perf_counter()
            gm.fit(x)  # warm start: exactly one E-step and one M-step
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--plot", action="store_true")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the objectives' comparison")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(f"paired step, mixture, K = {args.k}, D = 2 (median of {args.repeat}); ratio = their time / ours")
    print(f"{'N':>9} {'ours ms':>10} {'numpy ms':>10} {'ratio':>7} {'sklearn/iter ms':>16} {'ratio':>7} {'ours plain ms':>14}")
    for n in sizes:
        # Ours three times, spread over the measurement (before numpy, between, after
        # scikit-learn): on a shared machine slow spells last seconds; the median of the three
        # medians is reported, the range beside it.
        o = [ours(n, args.k)]
        npy = time_numpy(n, args.k, args.repeat)
        o.append(ours(n, args.k))
        skl = time_sklearn(n, args.k, args.repeat)
        o.append(ours(n, args.k))
        runs = sorted(r["paired_step_ms"] for r in o)
        mine = runs[1]
        plain = statistics.median(r["straightforward_two_evaluations_ms"] for r in o)
        row = {"n": n, "k": args.k, "ours_ms": mine, "ours_runs_ms": runs, "ours_straightforward_ms": plain,
               "numpy_ms": npy, "sklearn_iteration_ms": skl, "threads": o[0]["threads"]}
        rows.append(row)
        print(f"{n:>9} {mine:>10.3f} {npy:>10.3f} {npy / mine:>6.1f}x "
              f"{skl:>16.3f} {skl / mine:>6.1f}x {plain:>14.3f}   (ours: {runs[0]:.3f} to {runs[2]:.3f})")
    # The objectives at N = 100,000 in five rounds; each round times the mixture right before
    # each other objective, so every ratio compares two runs a second apart (this machine's slow
    # spells last seconds). Reported: the median ratio over the rounds and its range.
    objectives = ("attention", "attention-regression", "cross-entropy")
    times = {obj: [] for obj in ("mixture", *objectives)}
    ratios = {obj: [] for obj in objectives}
    for _ in range(args.rounds):
        for obj in objectives:
            base = ours(100_000, args.k)["paired_step_ms"]
            mine = ours(100_000, args.k, obj)["paired_step_ms"]
            times["mixture"].append(base)
            times[obj].append(mine)
            ratios[obj].append(mine / base)
    med = {obj: statistics.median(t) for obj, t in times.items()}
    for obj in objectives:
        r = sorted(ratios[obj])
        print(f"{obj} at N = 100000: {med[obj]:.3f} ms, {statistics.median(r):.2f}x the mixture "
              f"(median over {len(r)} rounds, each against the mixture timed just before; "
              f"range {r[0]:.2f}x to {r[-1]:.2f}x; mixture {med['mixture']:.3f} ms)")
    with open("benches/results.json", "w") as f:
        json.dump({"rows": rows,
                   "objectives_100k": {obj: {"median_ms": med[obj], "runs_ms": times[obj]}
                                       for obj in times},
                   "ratios_100k": {obj: {"median": statistics.median(r), "rounds": r}
                                   for obj, r in ratios.items()}}, f, indent=2)
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ns = [r["n"] for r in rows]
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        ax.loglog(ns, [r["ours_ms"] for r in rows], "o-", label="implicit-em-lab (paired step)")
        ax.loglog(ns, [r["ours_straightforward_ms"] for r in rows], "o:", label="implicit-em-lab, straightforward path")
        ax.loglog(ns, [r["numpy_ms"] for r in rows], "s-", label="numpy (paired step)")
        ax.loglog(ns, [r["sklearn_iteration_ms"] for r in rows], "^-", label="scikit-learn GaussianMixture (one iteration)")
        ax.set_xlabel("points N")
        ax.set_ylabel("milliseconds")
        ax.set_title(f"Mixture, K = {args.k}, D = 2, this machine ({rows[0]['threads']} threads)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig("assets/scaling.png")
        print("plot written to assets/scaling.png")


if __name__ == "__main__":
    main()
