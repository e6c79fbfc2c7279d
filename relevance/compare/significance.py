"""Deciding whether an arm beats its baseline: Holm's correction over the arms of one baseline, the
verdict at `alpha`, and what the seeds alone say (P(better) over seed pairs, the per-seed spread).

An ablation compares many arms with one baseline; at alpha 0.05 each, one arm in twenty looks
"significant" by chance. Holm's step-down correction keeps the chance of any false claim among a
baseline's arms at alpha without assuming the arms independent, and is never less powerful than
Bonferroni. It is applied per task and per metric (F1, ROC-AUC), over the arms that have a p-value.

P(better) over seed pairs needs no resampling: of all (arm seed, baseline seed) pairs of runs, the
share where the arm's point metric is higher (ties count one half). With 3 seeds a side there are 9
pairs; 1.0 means every arm seed beat every baseline seed, 0.5 a coin toss.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

SIGNIFICANT, NOT_SIGNIFICANT = "significant", "not significant"
METRIC_NAMES = ("f1", "roc_auc")


def holm_adjust(p_values: Any) -> np.ndarray:
    """Holm-adjusted p-values, in the input's order: the k-th smallest of m is multiplied by
    (m - k + 1), made non-decreasing in that order, and capped at 1. NaNs stay NaN and are not
    counted in m (an arm without a p-value is not a test)."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    if not tested.size:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def verdict(p_adjusted: float, alpha: float = 0.05) -> str:
    """`significant` when the adjusted p is below alpha, else `not significant` (also without a p)."""
    return SIGNIFICANT if np.isfinite(p_adjusted) and p_adjusted < alpha else NOT_SIGNIFICANT


def seed_pair_win_share(arm_points: Iterable[float], base_points: Iterable[float]) -> float:
    """Share of (arm seed, baseline seed) pairs where the arm's metric is higher; ties count one
    half. NaN when either side has no point."""
    arm = np.asarray([v for v in arm_points if np.isfinite(v)], dtype=np.float64)
    base = np.asarray([v for v in base_points if np.isfinite(v)], dtype=np.float64)
    if not arm.size or not base.size:
        return float("nan")
    diff = arm[:, None] - base[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def seed_spread(points: Iterable[float]) -> tuple[float, float]:
    """(min, max) of the metric over the seeds; NaNs without any point."""
    values = np.asarray([v for v in points if np.isfinite(v)], dtype=np.float64)
    return (float(values.min()), float(values.max())) if values.size else (float("nan"), float("nan"))


def add_holm_verdicts(groups: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Fills `p_adj_<metric>` and `verdict_<metric>` of the arm summaries (`seeds.seed_groups`'
    rows, with `task`, `p_<metric>` and `note`) in place: Holm over each task's arms, per metric.
    Baseline groups are not arms and get no verdict; returns the frame."""
    for metric in METRIC_NAMES:
        groups[f"p_adj_{metric}"] = np.nan
        groups[f"verdict_{metric}"] = ""
    is_arm = ~groups["note"].fillna("").str.startswith("baseline")
    for _, arms in groups[is_arm].groupby("task", sort=False):
        for metric in METRIC_NAMES:
            adjusted = holm_adjust(arms[f"p_{metric}"].to_numpy(dtype=np.float64))
            groups.loc[arms.index, f"p_adj_{metric}"] = adjusted
            groups.loc[arms.index, f"verdict_{metric}"] = [
                verdict(p, alpha) if np.isfinite(raw) else "" for p, raw in zip(adjusted, arms[f"p_{metric}"])]
    return groups
