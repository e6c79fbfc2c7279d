"""Summaries across runs: per-language F1 with the winner of each language (chosen on dev, reported
on test), and the mean over the tasks a setting ran on (whatever the tasks are: the runs' `task` tag)."""

from __future__ import annotations

import math

import pandas as pd

MEAN_METRICS = ("f1", "precision", "recall")


def report_role(frame: pd.DataFrame) -> str:
    """`test` when every run has test metrics, else `dev` (where thresholds were tuned: optimistic)."""
    return "test" if "test_f1" in frame.columns and frame["test_f1"].notna().all() else "dev"


def per_language_f1(group: pd.DataFrame, languages: list[str], role: str = "dev") -> pd.DataFrame:
    """Label × language F1 of one task's runs on `role`'s rows (languages no run has are dropped)."""
    table = pd.DataFrame({lang: group.get(f"{role}_f1_lang_{lang}") for lang in languages})
    table.index = list(group["label"])
    return table.dropna(axis=1, how="all")


def best_labels(table: pd.DataFrame, language: str) -> list[str]:
    """The label(s) with the best F1 in the language's column (none when no run has it)."""
    column = table[language].dropna()
    return [str(label) for label, value in column.items() if math.isclose(value, column.max())]


def language_winners(table: pd.DataFrame) -> dict[str, str]:
    """Language → the label(s) with the best F1, or `(all tied)`."""
    winners = {}
    for lang in table.columns:
        tied = best_labels(table, lang)
        if tied:
            winners[lang] = "(all tied)" if len(tied) == table[lang].notna().sum() > 1 else " / ".join(tied)
    return winners


def unseen_languages(group: pd.DataFrame) -> list[str]:
    """Languages any of the runs logged as absent from its training data."""
    return sorted({lang for value in group["unseen_languages"] for lang in str(value).split(",")
                   if lang and lang != "none"})


def task_column(task: str, field: str) -> str:
    """`QC`, `f1` → `qc_f1`: the column of one task's value in `task_means`."""
    return f"{task.lower()}_{field}"


def task_means(frame: pd.DataFrame, role: str = "dev") -> pd.DataFrame:
    """Settings run on two tasks or more (the newest run per task): each task's F1 and run id, and the
    mean F1 / precision / recall over the tasks the setting ran on, on `role`'s rows. One row per
    setting, labelled with its run on the first task."""
    rows, tasks = [], set()
    for _, group in frame.groupby("setting", sort=False):
        latest = group.sort_values("start_time").groupby("task").tail(1).set_index("task").sort_index()
        if len(latest) < 2:
            continue
        tasks.update(latest.index)
        row = {"label": latest.iloc[0]["label"]}
        for task, run in latest.iterrows():
            row[task_column(task, "f1")] = run[f"{role}_f1"]
            row[task_column(task, "run_id")] = run["run_id"]
        row.update({f"mean_{m}": latest[f"{role}_{m}"].mean(skipna=False) for m in MEAN_METRICS})
        rows.append(row)
    ordered = sorted(tasks)
    columns = (["label"] + [task_column(t, "f1") for t in ordered] + [f"mean_{m}" for m in MEAN_METRICS]
               + [task_column(t, "run_id") for t in ordered])
    return pd.DataFrame(rows, columns=columns)


def mean_tasks(means: pd.DataFrame, tasks: list[str]) -> list[str]:
    """The tasks (of `tasks`) that have a column in `task_means`' table."""
    return [t for t in tasks if task_column(t, "f1") in means.columns]
