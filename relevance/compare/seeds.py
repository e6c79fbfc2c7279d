"""Runs that differ only by `seed` (model initialisation, data order, dropout) form a group, an arm of
the comparison (one run alone is a group of one): its mean F1 and ROC-AUC over the seeds, with an
interval that resamples the seeds and then the queries (paired across every run, as they share dev
and test rows: `data.seed`), and, against the baseline's group, the delta, its interval, a two-sided
bootstrap p-value, Holm's adjustment over the task's arms and the verdict (`significance`), P(better)
over seed pairs, the per-seed min and max, and the smallest delta the arm's seeds and rows could
detect (`sample_size`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from relevance.compare.deltas import TaskBootstrap, delta_columns
from relevance.compare.sample_size import DEFAULT_POWER, Noise, estimate_noise, minimal_detectable_effect
from relevance.compare.significance import METRIC_NAMES, add_holm_verdicts, seed_pair_win_share, seed_spread
from relevance.evaluation.bootstrap import hierarchical_mean, percentile_interval

ARM_METRIC_COLUMNS = ("p_adj", "verdict", "p_better_seed_pairs", "seed_min", "seed_max", "mde")
GROUP_COLUMNS = ["group", "task", "mix", "runs", "seeds", "f1", "f1_ci_low", "f1_ci_high", "roc_auc", "dev_f1",
                 "delta_f1", "ci_low", "ci_high", "p_better", "p_f1", "delta_roc_auc", "roc_auc_ci_low",
                 "roc_auc_ci_high", "p_roc_auc",
                 *(f"{column}_{metric}" for metric in METRIC_NAMES for column in ARM_METRIC_COLUMNS),
                 "rows", "queries", "paired_runs", "measured_on", "note", "run_ids"]


def _seeds(members: pd.DataFrame) -> str:
    values = sorted({str(s) for s in members.get("seed", pd.Series(dtype=object)).dropna()},
                    key=lambda s: (len(s), s))
    return ",".join(values)


def _mean(members: pd.DataFrame, column: str) -> float:
    return float(members[column].mean()) if column in members.columns else float("nan")


def _group_row(members: pd.DataFrame, task: str, report_role: str, paired: list[str]) -> dict:
    """A group's logged-metric means (replaced by the bootstrap's points when its runs are paired)."""
    unpaired = len(members) - len(paired)
    return {**dict.fromkeys(GROUP_COLUMNS, np.nan), "group": members["group_label"].iloc[0], "task": task,
            "mix": str(members["augment"].iloc[0]), "runs": len(members), "seeds": _seeds(members),
            "run_ids": ",".join(members["run_id"]), "f1": _mean(members, f"{report_role}_f1"),
            "roc_auc": _mean(members, f"{report_role}_roc_auc"), "dev_f1": _mean(members, "dev_f1"),
            "paired_runs": len(paired), "measured_on": "", "note": f"{unpaired} run(s) not paired" if unpaired else "",
            **{f"verdict_{metric}": "" for metric in METRIC_NAMES}}


def paired_members(frame: pd.DataFrame, bootstraps: dict[str, TaskBootstrap]) -> dict[tuple[str, str], list[str]]:
    """(task, seed group) → the group's runs that the task's bootstrap paired, in the frame's order."""
    return {(task, key): [run_id for run_id in members["run_id"]
                          if task in bootstraps and run_id in bootstraps[task].draws]
            for (task, key), members in frame.groupby(["task", "seed_group"], sort=False)}


def baseline_groups(frame: pd.DataFrame, baselines: dict[str, str]) -> dict[str, str]:
    """Task → the seed group holding its baseline run."""
    return {task: frame.loc[frame["run_id"] == run_id, "seed_group"].iloc[0]
            for task, run_id in baselines.items() if (frame["run_id"] == run_id).any()}


def task_noise(frame: pd.DataFrame, bootstraps: dict[str, TaskBootstrap],
               baselines: dict[str, str]) -> dict[str, dict[str, Noise]]:
    """Task → metric → `Noise`: the seed variance pooled over every group of the task, the row
    variance over the run pairs that include a baseline-group run (`sample_size`)."""
    members = paired_members(frame, bootstraps)
    base_keys = baseline_groups(frame, baselines)
    noise: dict[str, dict[str, Noise]] = {}
    for task, boot in bootstraps.items():
        groups = {key: runs for (t, key), runs in members.items() if t == task and runs}
        base_runs = groups.get(base_keys.get(task), [])
        every_run = [run_id for runs in groups.values() for run_id in runs]
        pairs = sorted({tuple(sorted((a, b))) for a in base_runs for b in every_run if a != b})
        noise[task] = {metric: estimate_noise(
            [[boot.points[r][metric] for r in runs] for runs in groups.values()],
            [(boot.draws[a].get(metric), boot.draws[b].get(metric)) for a, b in pairs],
            boot.draws[base_runs[0]].get(metric) if base_runs else None) for metric in METRIC_NAMES}
    return noise


def _arm_columns(points: list[dict[str, float]], base_points: list[dict[str, float]], noise: dict[str, Noise] | None,
                 alpha: float, power: float) -> dict:
    """P(better) over seed pairs and the MDE for the arm's and the baseline's numbers of seeds."""
    row = {}
    for metric in METRIC_NAMES:
        row[f"p_better_seed_pairs_{metric}"] = seed_pair_win_share([p[metric] for p in points],
                                                                   [p[metric] for p in base_points])
        if noise and metric in noise:
            row[f"mde_{metric}"] = minimal_detectable_effect(noise[metric], len(points), len(base_points), alpha, power)
    return row


def seed_groups(frame: pd.DataFrame, bootstraps: dict[str, TaskBootstrap], baselines: dict[str, str],
                report_role: str, seed: int = 0, alpha: float = 0.05,
                noise: dict[str, dict[str, Noise]] | None = None, power: float = DEFAULT_POWER) -> pd.DataFrame:
    """One row per (task, seed group): seeds, mean F1 [interval], mean ROC-AUC, mean dev F1, the
    per-seed min and max, and against the group holding the task's baseline run: the delta [interval],
    p, Holm's p and verdict at `alpha`, P(better) over seed pairs and the MDE (with `noise`). Runs
    without paired predictions count in the means of logged metrics, not in the intervals."""
    rows, estimates, seed_points = [], {}, {}
    members = paired_members(frame, bootstraps)
    for index, ((task, key), group) in enumerate(frame.groupby(["task", "seed_group"], sort=False)):
        boot, paired = bootstraps.get(task), members[task, key]
        row = _group_row(group, task, report_role, paired)
        if paired:
            seed_points[task, key] = [boot.points[run_id] for run_id in paired]
            points = {m: float(np.mean([p[m] for p in seed_points[task, key]])) for m in METRIC_NAMES}
            draws = hierarchical_mean([boot.draws[run_id] for run_id in paired], seed + index)
            estimates[task, key] = points, draws
            row.update(points, measured_on=boot.measured_on, rows=boot.rows, queries=boot.queries)
            row["f1_ci_low"], row["f1_ci_high"] = percentile_interval(draws.f1)
            for metric in METRIC_NAMES:
                row[f"seed_min_{metric}"], row[f"seed_max_{metric}"] = seed_spread(
                    [p[metric] for p in seed_points[task, key]])
        rows.append((key, row))
    base_keys = baseline_groups(frame, baselines)
    for key, row in rows:
        task, base_key = row["task"], base_keys.get(row["task"])
        if key == base_key:
            row["note"] = "; ".join(filter(None, ["baseline", row["note"]]))
        elif (task, key) in estimates and (task, base_key) in estimates:
            row.update(delta_columns(*estimates[task, key], *estimates[task, base_key]))
            row.update(_arm_columns(seed_points[task, key], seed_points[task, base_key], (noise or {}).get(task),
                                    alpha, power))
    return add_holm_verdicts(pd.DataFrame([row for _, row in rows], columns=GROUP_COLUMNS), alpha)
