"""Compare the runs of a sweep (or of whole experiments): `python -m relevance.compare [key=value ...]`

    python -m relevance.compare                                  # the latest sweep
    python -m relevance.compare sweep=<parent run id> baseline=<run id | run name>
    python -m relevance.compare experiment=relevance-qc,relevance-qi

Keys: sweep (parent run id | latest), experiment (comma-separated names), baseline,
out (report folder; default <root>/outputs/compare/<timestamp>), tracking_uri (default:
the store relevance.train logs to), paths.root (default: $RELEVANCE_ROOT or the current
directory), n_resamples (1000), seed (0), log (true: attach the report to the sweep's
parent runs under compare/).

The report (`report.md`, `comparison.json`, PNG plots) has, per task, every FINISHED run's
F1 / precision / recall / ROC-AUC / unseen-language F1, its F1 delta against the task's
baseline with a paired bootstrap 95 % CI over the same dev rows (joined on `id`; runs whose
dev rows differ from the baseline's get no delta, and the report says so), per-language F1
with the winner of each language, and the mean over QC and QI of every setting run on both.
Baseline: `baseline=` for its task (for the other task, the run of the same setting), else
the first run whose augmentation mix is `original`, else the task's first run.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from relevance.text_tables import markdown_table, text_table
from relevance.evaluation import paired_bootstrap_delta, plot_per_language_f1, plot_pr_curves
from relevance.tracking.runs import (
    RunSelectionError,
    default_tracking_uri,
    experiment_runs,
    find_sweep_parent,
    language_columns,
    load_predictions,
    runs_frame,
    sweep_runs,
)

log = logging.getLogger(__name__)

KEYS = ("sweep", "experiment", "baseline", "out", "tracking_uri", "paths.root", "n_resamples", "seed", "log")
TASK_SEGMENT = re.compile(r"^task=")
MAIN_COLUMNS = [("f1", "dev_f1"), ("precision", "dev_precision"), ("recall", "dev_recall"),
                ("roc_auc", "dev_roc_auc"), ("unseen_f1", "dev_unseen_f1")]


# --------------------------------------------------------------------------- labels

def split_overrides(name: str) -> list[str]:
    """`a=1,augment=[x,y],b=2` → ['a=1', 'augment=[x,y]', 'b=2'] (commas inside brackets stay)."""
    parts, depth, current = [], 0, ""
    for char in name or "":
        if char in "[({":
            depth += 1
        elif char in "])}":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def distinguishing_labels(names: list[str]) -> list[str]:
    """Each run name without the overrides every run shares and without `task=`
    (the task is its own column): what makes the run different."""
    segments = [split_overrides(n) for n in names]
    common = set.intersection(*(set(s) for s in segments)) if segments else set()
    labels = []
    for name, parts in zip(names, segments):
        kept = [p for p in parts if p not in common and not TASK_SEGMENT.match(p)]
        labels.append(",".join(kept) if kept else (name or "?"))
    return labels


def setting_key(row: pd.Series) -> str:
    """What a run is apart from its task: for pairing a QC run with its QI twin."""
    name = ",".join(p for p in split_overrides(row["run_name"]) if not TASK_SEGMENT.match(p))
    name = re.sub(r"-(qc|qi)-", "-", name)
    tags = "|".join(str(row.get(t)) for t in ("model", "quant", "peft", "head", "trainer", "augment"))
    return f"{tags}|{name}"


# --------------------------------------------------------------------------- the comparison

@dataclass
class Comparison:
    title: str
    tracking_uri: str
    runs: pd.DataFrame  # one row per compared (FINISHED) run, with label, delta and CI columns
    per_language: dict[str, pd.DataFrame]  # task → label × language F1
    winners: dict[str, dict[str, str]]  # task → language → winning label(s)
    unseen: dict[str, list[str]]  # task → unseen languages
    task_means: pd.DataFrame  # settings run on both QC and QI
    baselines: dict[str, str]  # task → run id
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # task → label → (labels, scores)
    notes: list[str] = field(default_factory=list)
    parent_run_ids: list[str] = field(default_factory=list)
    n_resamples: int = 1000


def select_runs(client: MlflowClient, sweep: str | None = None, experiment: str | None = None):
    """(runs, title, parent run ids): a sweep's runs, or every run of the named experiments."""
    if experiment:
        names = [n.strip() for n in experiment.split(",") if n.strip()]
        return experiment_runs(client, names), f"experiments {', '.join(names)}", []
    parent = find_sweep_parent(client, sweep or "latest")
    found = sweep_runs(client, parent)
    title = f"sweep `{parent.info.run_name}` ({parent.info.run_id})"
    return found.runs, title, [p.info.run_id for p in found.parents]


def build_comparison(client: MlflowClient, runs: list, title: str = "", baseline: str | None = None,
                     n_resamples: int = 1000, seed: int = 0, parent_run_ids: list[str] | None = None,
                     work_dir: str | Path | None = None) -> Comparison:
    notes: list[str] = []
    frame = runs_frame(runs)
    if frame.empty:
        raise RunSelectionError(f"no runs to compare in {title or 'the selection'}")
    not_finished = frame[frame["status"] != "FINISHED"]
    if len(not_finished):
        notes.append(f"{len(not_finished)} run(s) not FINISHED left out: "
                     + ", ".join(f"`{r.run_name}` ({r.status})" for r in not_finished.itertuples()))
    frame = frame[frame["status"] == "FINISHED"].reset_index(drop=True)
    if frame.empty:
        raise RunSelectionError(f"no FINISHED run in {title or 'the selection'}")
    frame["task"] = frame["task"].fillna("?")
    frame["label"] = distinguishing_labels(list(frame["run_name"].fillna("")))
    duplicated = frame.duplicated(["task", "label"], keep=False)
    frame.loc[duplicated, "label"] = frame.loc[duplicated, "label"] + " #" + frame.loc[duplicated, "run_id"].str[:6]
    frame["setting"] = frame.apply(setting_key, axis=1)

    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="relevance-compare-"))
    predictions: dict[str, pd.DataFrame] = {}
    for run_id in frame["run_id"]:
        try:
            predictions[run_id] = load_predictions(client, run_id, work_dir)
        except Exception as exc:  # noqa: BLE001 - an old run without the artifact
            notes.append(f"run {run_id}: no {type(exc).__name__} dev predictions ({exc}); no delta or PR curve")

    baselines = choose_baselines(frame, baseline)
    for column in ("delta_f1", "ci_low", "ci_high", "p_better"):
        frame[column] = np.nan
    frame["delta_note"] = ""
    for i, row in frame.iterrows():
        base_id = baselines.get(row["task"])
        if base_id == row["run_id"]:
            frame.at[i, "delta_note"] = "baseline"
            continue
        result, note = paired_delta(predictions.get(base_id), predictions.get(row["run_id"]), n_resamples, seed)
        if result is None:
            frame.at[i, "delta_note"] = note
            notes.append(f"`{row['label']}` ({row['task']}): {note}")
            continue
        frame.at[i, "delta_f1"], frame.at[i, "ci_low"], frame.at[i, "ci_high"], frame.at[i, "p_better"] = (
            result["delta"], result["ci_low"], result["ci_high"], result["p_better"])

    languages = language_columns(frame)
    per_language, winners, unseen, curves = {}, {}, {}, {}
    for task, group in frame.groupby("task", sort=True):
        table = pd.DataFrame({lang: group.get(f"dev_f1_lang_{lang}") for lang in languages})
        table.index = list(group["label"])
        table = table.dropna(axis=1, how="all")
        per_language[task] = table
        winners[task] = language_winners(table)
        unseen[task] = sorted({lang for value in group["unseen_languages"] for lang in str(value).split(",")
                               if lang and lang != "none"})
        curves[task] = {row.label: (predictions[row.run_id]["label"].to_numpy(),
                                    predictions[row.run_id]["score"].to_numpy())
                        for row in group.itertuples() if row.run_id in predictions}
    return Comparison(title=title, tracking_uri=client.tracking_uri, runs=frame, per_language=per_language,
                      winners=winners, unseen=unseen, task_means=task_means(frame), baselines=baselines,
                      curves=curves, notes=notes, parent_run_ids=list(parent_run_ids or []),
                      n_resamples=n_resamples)


def choose_baselines(frame: pd.DataFrame, baseline: str | None = None) -> dict[str, str]:
    """Task → baseline run id (see the module docstring)."""
    chosen: dict[str, str] = {}
    if baseline:
        match = frame[(frame["run_id"] == baseline) | (frame["run_name"] == baseline)]
        if match.empty:
            match = frame[frame["run_id"].str.startswith(baseline)]
        if match.empty:
            raise RunSelectionError(f"baseline={baseline!r} is neither the id nor the name of a compared run")
        first = match.iloc[0]
        chosen[first["task"]] = first["run_id"]
        twins = frame[(frame["setting"] == first["setting"]) & (frame["task"] != first["task"])]
        for task, group in twins.groupby("task"):
            chosen[task] = group.iloc[0]["run_id"]
    for task, group in frame.groupby("task"):
        if task in chosen:
            continue
        original = group[group["augment"] == "original"]
        chosen[task] = (original if len(original) else group).iloc[0]["run_id"]
    return chosen


def paired_delta(base: pd.DataFrame | None, other: pd.DataFrame | None, n_resamples: int,
                 seed: int) -> tuple[dict | None, str]:
    """F1(other) - F1(base) with a paired bootstrap CI, over identical dev rows only."""
    if base is None or other is None:
        return None, "no dev predictions"
    if base["id"].duplicated().any() or other["id"].duplicated().any():
        return None, "dev row ids are not unique: rows cannot be paired"
    if set(base["id"]) != set(other["id"]):
        return None, (f"different dev rows than the baseline ({len(other)} vs {len(base)} rows, "
                      f"{len(set(base['id']) & set(other['id']))} shared): not compared")
    joined = base[["id", "label", "prediction"]].merge(other[["id", "label", "prediction"]], on="id",
                                                      suffixes=("_base", "_run"))
    if not (joined["label_base"] == joined["label_run"]).all():
        return None, "the same dev row ids carry different labels: not compared"
    result = paired_bootstrap_delta(joined["label_base"].to_numpy(), joined["prediction_base"].to_numpy(), 0.5,
                                    joined["prediction_run"].to_numpy(), 0.5, n_resamples=n_resamples, seed=seed)
    return result, ""


def language_winners(table: pd.DataFrame) -> dict[str, str]:
    winners = {}
    for lang in table.columns:
        column = table[lang].dropna()
        if column.empty:
            continue
        best = column.max()
        tied = [str(label) for label, value in column.items() if math.isclose(value, best)]
        winners[lang] = "(all tied)" if len(tied) == len(column) > 1 else " / ".join(tied)
    return winners


def task_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Settings with a run on both QC and QI (the newest of each): per-task F1 and the means."""
    rows = []
    for _, group in frame.groupby("setting", sort=False):
        latest = group.sort_values("start_time").groupby("task").tail(1).set_index("task")
        if not {"QC", "QI"} <= set(latest.index):
            continue
        qc, qi = latest.loc["QC"], latest.loc["QI"]
        rows.append({"label": qc["label"], "qc_f1": qc["dev_f1"], "qi_f1": qi["dev_f1"],
                     "mean_f1": (qc["dev_f1"] + qi["dev_f1"]) / 2,
                     "mean_precision": (qc["dev_precision"] + qi["dev_precision"]) / 2,
                     "mean_recall": (qc["dev_recall"] + qi["dev_recall"]) / 2,
                     "qc_run_id": qc["run_id"], "qi_run_id": qi["run_id"]})
    return pd.DataFrame(rows, columns=["label", "qc_f1", "qi_f1", "mean_f1", "mean_precision", "mean_recall",
                                       "qc_run_id", "qi_run_id"])


# --------------------------------------------------------------------------- tables

def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


def _delta_text(row: pd.Series) -> str:
    if row["delta_note"] == "baseline":
        return "baseline"
    if not math.isfinite(row["delta_f1"]):
        return "n/a"
    return f"{row['delta_f1']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"


def run_table(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["run", "task", "mix", "F1", "precision", "recall", "ROC-AUC", "unseen F1",
              "ΔF1 vs baseline [95% CI]", "P(better)", "run id"]
    rows = []
    for _, row in comparison.runs.sort_values(["task", "start_time"]).iterrows():
        rows.append([row["label"], row["task"], str(row["augment"]),
                     *(_fmt(row.get(metric)) for _, metric in MAIN_COLUMNS),
                     _delta_text(row), _fmt(row["p_better"], 3), row["run_id"]])
    return header, rows


def language_table(comparison: Comparison, task: str) -> tuple[list[str], list[list[str]]]:
    table = comparison.per_language[task]
    unseen = set(comparison.unseen.get(task, []))
    header = ["run"] + [f"{lang}*" if lang in unseen else lang for lang in table.columns]
    rows = [[str(label), *(_fmt(v, 3) for v in values)] for label, values in zip(table.index, table.to_numpy())]
    return header, rows


def winners_table(comparison: Comparison, task: str) -> tuple[list[str], list[list[str]]]:
    table = comparison.per_language[task]
    unseen = set(comparison.unseen.get(task, []))
    rows = [[f"{lang}*" if lang in unseen else lang, winner, _fmt(table[lang].max(), 3)]
            for lang, winner in comparison.winners[task].items()]
    return ["language", "best run", "F1"], rows


def means_table(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["setting", "QC F1", "QI F1", "mean F1", "mean precision", "mean recall"]
    rows = [[r.label, _fmt(r.qc_f1), _fmt(r.qi_f1), _fmt(r.mean_f1), _fmt(r.mean_precision), _fmt(r.mean_recall)]
            for r in comparison.task_means.itertuples()]
    return header, rows


# --------------------------------------------------------------------------- outputs

def terminal_report(comparison: Comparison) -> str:
    parts = [f"Comparison of {comparison.title}", "", text_table(*run_table(comparison)), ""]
    parts.append(f"ΔF1: F1(run) - F1(baseline) on the same dev rows, paired bootstrap "
                 f"({comparison.n_resamples} resamples) 95% CI; P(better): share of resamples where the run wins.")
    for task in comparison.per_language:
        parts += ["", f"Per-language F1, {task} (* = language unseen in training)",
                  text_table(*language_table(comparison, task)), "",
                  f"Winner per language, {task}", text_table(*winners_table(comparison, task))]
    if len(comparison.task_means):
        parts += ["", "Mean over QC and QI", text_table(*means_table(comparison))]
    if comparison.notes:
        parts += ["", "Notes:"] + [f"- {n}" for n in comparison.notes]
    return "\n".join(parts)


def markdown_report(comparison: Comparison, plots: dict[str, dict[str, str]]) -> str:
    baselines = ", ".join(f"{task}: `{comparison.runs.set_index('run_id').loc[rid, 'label']}` ({rid})"
                          for task, rid in sorted(comparison.baselines.items()))
    lines = [f"# Comparison of {comparison.title}", "",
             f"- tracking URI: `{comparison.tracking_uri}`",
             f"- written: {datetime.now().isoformat(timespec='seconds')}",
             f"- baseline per task: {baselines}",
             (f"- ΔF1 = F1(run) − F1(baseline) on the same dev rows (joined on `id`); 95 % CI from a paired "
              f"bootstrap with {comparison.n_resamples} resamples; P(better) = share of resamples where the run "
              "wins. Runs whose dev rows differ from the baseline's get no delta."), "",
             "## Runs", "", markdown_table(*run_table(comparison))]
    if len(comparison.task_means):
        lines += ["", "## Mean over QC and QI", "", markdown_table(*means_table(comparison))]
    for task in comparison.per_language:
        lines += ["", f"## Per-language F1, {task}", "",
                  "`*` = language not seen in training.", "",
                  markdown_table(*language_table(comparison, task)), "",
                  f"Winner per language ({task}):", "", markdown_table(*winners_table(comparison, task))]
        for kind, file in plots.get(task, {}).items():
            lines += ["", f"![{kind} {task}]({file})"]
    if comparison.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in comparison.notes]
    return "\n".join(lines) + "\n"


def write_plots(comparison: Comparison, out_dir: Path) -> dict[str, dict[str, str]]:
    plots: dict[str, dict[str, str]] = {}
    for task, table in comparison.per_language.items():
        key = task.lower()
        plots[task] = {}
        if not table.empty:
            data = {label: {lang: float(v) for lang, v in row.items() if pd.notna(v)} for label, row in table.iterrows()}
            plot_per_language_f1(data, out_dir / f"per_language_f1_{key}.png", f"{task}: dev F1 per language")
            plots[task]["per-language F1"] = f"per_language_f1_{key}.png"
        if comparison.curves.get(task):
            plot_pr_curves(comparison.curves[task], out_dir / f"pr_curves_{key}.png", f"{task}: dev precision-recall")
            plots[task]["PR curves"] = f"pr_curves_{key}.png"
    return plots


def write_report(comparison: Comparison, out_dir: str | Path) -> Path:
    """report.md + comparison.json + PNGs in `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(comparison, out_dir)
    report = out_dir / "report.md"
    report.write_text(markdown_report(comparison, plots), encoding="utf-8")
    columns = ["run_id", "run_name", "label", "task", "augment", "model", "dev_f1", "dev_precision", "dev_recall",
               "dev_roc_auc", "dev_unseen_f1", "delta_f1", "ci_low", "ci_high", "p_better", "delta_note"]
    data = {
        "title": comparison.title, "tracking_uri": comparison.tracking_uri, "baselines": comparison.baselines,
        "n_resamples": comparison.n_resamples, "parent_run_ids": comparison.parent_run_ids,
        "runs": json.loads(comparison.runs.reindex(columns=columns).to_json(orient="records")),
        "per_language": {t: json.loads(df.to_json(orient="index")) for t, df in comparison.per_language.items()},
        "winners": comparison.winners, "unseen_languages": comparison.unseen,
        "task_means": json.loads(comparison.task_means.to_json(orient="records")), "notes": comparison.notes,
        "plots": plots,
    }
    (out_dir / "comparison.json").write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return report


def log_to_parents(client: MlflowClient, comparison: Comparison, out_dir: Path) -> None:
    for parent in comparison.parent_run_ids:
        client.log_artifacts(parent, str(out_dir), "compare")


# --------------------------------------------------------------------------- CLI

def parse_args(argv: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise SystemExit(f"relevance.compare: unknown argument {arg!r}; use key=value with key in "
                             f"{', '.join(KEYS)}\n\n{__doc__}")
        args[key] = value
    if "sweep" in args and "experiment" in args:
        raise SystemExit("relevance.compare: give sweep= or experiment=, not both")
    return args


def main(argv: list[str] | None = None) -> Path:
    from relevance.runtime import quiet_third_party_logs

    quiet_third_party_logs()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(args.get("paths.root") or default_root()).absolute()
    client = MlflowClient(args.get("tracking_uri") or default_tracking_uri(root))
    runs, title, parents = select_runs(client, args.get("sweep"), args.get("experiment"))
    comparison = build_comparison(client, runs, title, baseline=args.get("baseline"),
                                  n_resamples=int(args.get("n_resamples", 1000)), seed=int(args.get("seed", 0)),
                                  parent_run_ids=parents)
    out_dir = Path(args.get("out") or root / "outputs" / "compare" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    report = write_report(comparison, out_dir)
    if args.get("log", "true").lower() in ("true", "1", "yes") and parents:
        log_to_parents(client, comparison, out_dir)
        where = f"; attached to parent run(s) {', '.join(parents)} under compare/"
    else:
        where = ""
    print(terminal_report(comparison))
    print(f"\nreport: {report}{where}")
    return report


def default_root() -> str:
    import os

    return os.environ.get("RELEVANCE_ROOT") or os.getcwd()


if __name__ == "__main__":
    try:
        main()
    except RunSelectionError as exc:
        raise SystemExit(f"relevance.compare: {exc}") from None
