"""Evaluation speed against naive baselines measured in the same run.

    .venv/bin/python benchmarks/bench_evaluation.py [--rows 6000]

Prints one table: each vectorised routine's time, its naive baseline's time and the
ratio (baseline / ours, higher is better). Targets: bootstrap ≥ 20x, threshold ≥ 20x.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import f1_score

from relevance.evaluation import paired_bootstrap_delta, tune_threshold


def naive_bootstrap(labels, a, ta, b, tb, n_resamples, seed):
    rng = np.random.default_rng(seed)
    pa, pb = (a >= ta).astype(int), (b >= tb).astype(int)
    deltas = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(labels), len(labels))
        deltas.append(f1_score(labels[idx], pb[idx], zero_division=0) - f1_score(labels[idx], pa[idx], zero_division=0))
    return np.percentile(deltas, [2.5, 97.5])


def naive_threshold(labels, scores):
    best = (0.0, 0.5)
    for t in np.unique(scores):
        best = max(best, (f1_score(labels, scores >= t, zero_division=0), t))
    return best[1], best[0]


def timed(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, args.rows)
    a = np.clip(rng.normal(0.5 + 0.1 * labels, 0.2), 0, 1)
    b = np.clip(rng.normal(0.5 + 0.15 * labels, 0.2), 0, 1)
    rounded = np.round(b, 3)  # ~1000 distinct scores keep the naive loop finite
    naive_resamples = max(20, args.resamples // 20)
    rows = [
        ("paired bootstrap (per 1000 resamples)",
         timed(lambda: paired_bootstrap_delta(labels, a, 0.5, b, 0.5, n_resamples=args.resamples)) * 1000 / args.resamples,
         timed(lambda: naive_bootstrap(labels, a, 0.5, b, 0.5, naive_resamples, 0), 1) * 1000 / naive_resamples),
        ("threshold tuning", timed(lambda: tune_threshold(labels, rounded)),
         timed(lambda: naive_threshold(labels, rounded), 1)),
    ]
    print(f"rows={args.rows}")
    print(f"{'routine':<40} {'ours (s)':>10} {'naive (s)':>10} {'ratio':>8}")
    for name, ours, naive in rows:
        print(f"{name:<40} {ours:>10.4f} {naive:>10.4f} {naive / ours:>7.1f}x")


if __name__ == "__main__":
    main()
