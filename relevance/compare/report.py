"""The comparison as text: a plain-text report for the terminal, and a report folder
(`report.md`, `report.json` (`report_json`), `comparison.json`, PNG plots) that can be attached to
the sweep's parent runs. Beside the metrics, the config keys that differ among the runs, run by run
(`config_diff`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from relevance.compare.comparison import Comparison
from relevance.compare.config_diff import LEFT_OUT
from relevance.compare.report_json import JSON_RUN_COLUMNS, report_json
from relevance.compare.seeds import GROUP_COLUMNS
from relevance.compare.tables import groups_table, language_table, means_table, means_title, run_table, winners_table
from relevance.evaluation import plot_per_language_f1, plot_pr_curves
from relevance.text_tables import markdown_table, text_table

ARTIFACT_DIR = "compare"


def delta_legend(comparison: Comparison) -> str:
    """What the delta columns mean, for the report's readers."""
    rows = ("the same test rows (joined on `id`), each run's threshold re-tuned on the resampled dev rows"
            if comparison.report_role == "test" else
            "the same dev rows (joined on `id`), cross-fitted: each run's threshold re-tuned on the resampled "
            "rows and F1 scored on the rows the resample left out")
    return (f"ΔF1 = F1(run) − F1(baseline) and ΔROC-AUC likewise, on {rows}; 95 % CI from a paired bootstrap "
            f"with {comparison.n_resamples} resamples that draws queries (a query's rows together), so the interval "
            "includes the threshold's noise; P(better) = "
            "share of resamples where the run wins. F1 lift = F1 − F1 of predicting every row relevant. Runs are "
            "selected on dev (baseline, best run, winners per language) and reported on "
            f"{comparison.report_role}. Runs whose rows differ from the baseline's get no delta.")


def groups_legend(comparison: Comparison) -> str:
    return ("Each arm is a seed group: the runs that differ only by `seed` (model initialisation, data order, "
            "dropout; same rows through `data.seed`), a single run being a group of one. Mean over its seeds with "
            "a 95 % interval that resamples the seeds, then the queries; per seed = the min–max of the seeds' "
            "metric. Against the baseline's group: the delta [95 % CI]; p = two-sided bootstrap p (2 × the smaller "
            f"share of resampled deltas on one side of 0, at least 1/({comparison.n_resamples}+1)); Holm = p "
            "adjusted over the task's arms, per metric; `significant` when Holm's p < "
            f"{comparison.alpha:g}; P(better) seed pairs = share of (arm seed, baseline seed) pairs where the "
            "arm's metric is higher (ties ½).")


def terminal_report(comparison: Comparison) -> str:
    parts = [f"Comparison of {comparison.title}", "", text_table(*run_table(comparison)), ""]
    parts.append(delta_legend(comparison))
    parts += ["", f"Config: {comparison.config_diff.summary()}"
              + (" Each run's values: report.md." if comparison.config_diff.keys else "")]
    if comparison.has_seed_groups or comparison.has_arms:
        parts += ["", "Seed groups (arms against the baseline)", text_table(*groups_table(comparison)),
                  groups_legend(comparison)]
    for task in comparison.per_language:
        parts += ["", f"Per-language F1 on {comparison.report_role}, {task} (* = language unseen in training)",
                  text_table(*language_table(comparison, task)), "",
                  f"Winner per language, {task}", text_table(*winners_table(comparison, task))]
    if len(comparison.task_means):
        parts += ["", means_title(comparison), text_table(*means_table(comparison))]
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
             f"- {delta_legend(comparison)}", "",
             "## Runs", "", markdown_table(*run_table(comparison))]
    lines += ["", *config_diff_section(comparison)]
    if comparison.has_seed_groups or comparison.has_arms:
        lines += ["", "## Seed groups (arms against the baseline)", "", groups_legend(comparison), "",
                  markdown_table(*groups_table(comparison))]
    if len(comparison.task_means):
        lines += ["", f"## {means_title(comparison)}", "", markdown_table(*means_table(comparison))]
    for task in comparison.per_language:
        lines += ["", f"## Per-language F1 on {comparison.report_role}, {task}", "",
                  "`*` = language not seen in training.", "",
                  markdown_table(*language_table(comparison, task)), "",
                  f"Winner per language ({task}, chosen on dev):", "", markdown_table(*winners_table(comparison, task))]
        for kind, file in plots.get(task, {}).items():
            lines += ["", f"![{kind} {task}]({file})"]
    if comparison.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in comparison.notes]
    return "\n".join(lines) + "\n"


def config_diff_section(comparison: Comparison) -> list[str]:
    """`## Config keys that differ`: each run's value of every resolved config key that is not the same in
    all the runs compared; the keys they share are not listed."""
    diff = comparison.config_diff
    lines = ["## Config keys that differ", "", diff.summary()]
    if diff.keys:
        lines += ["", markdown_table(*diff.table()), "",
                  "`—`: the run has no such key (a strategy's options when it is not in the run's mix, or a key "
                  "added after the run was logged)."]
    lines += ["", "Not compared (bookkeeping that differs between runs computing the same thing): "
              + "; ".join(LEFT_OUT) + "."]
    return lines


def write_plots(comparison: Comparison, out_dir: Path) -> dict[str, dict[str, str]]:
    """Per task: per-language F1 bars and overlaid PR curves; task → kind → file name."""
    plots: dict[str, dict[str, str]] = {}
    for task, table in comparison.per_language.items():
        key = task.lower()
        plots[task] = {}
        if not table.empty:
            data = {label: {lang: float(v) for lang, v in row.items() if pd.notna(v)} for label, row in table.iterrows()}
            plot_per_language_f1(data, out_dir / f"per_language_f1_{key}.png",
                                 f"{task}: {comparison.report_role} F1 per language")
            plots[task]["per-language F1"] = f"per_language_f1_{key}.png"
        if comparison.curves.get(task):
            plot_pr_curves(comparison.curves[task], out_dir / f"pr_curves_{key}.png",
                           f"{task}: {comparison.report_role} precision-recall")
            plots[task]["PR curves"] = f"pr_curves_{key}.png"
    return plots


def comparison_data(comparison: Comparison, plots: dict[str, dict[str, str]]) -> dict:
    """Everything in the report, as plain JSON values (`comparison.json`)."""
    return {
        "title": comparison.title, "tracking_uri": comparison.tracking_uri, "baselines": comparison.baselines,
        "n_resamples": comparison.n_resamples, "parent_run_ids": comparison.parent_run_ids,
        "report_role": comparison.report_role,
        "groups": json.loads(comparison.groups.reindex(columns=GROUP_COLUMNS).to_json(orient="records")),
        "runs": json.loads(comparison.runs.reindex(columns=JSON_RUN_COLUMNS).to_json(orient="records")),
        "per_language": {t: json.loads(df.to_json(orient="index")) for t, df in comparison.per_language.items()},
        "winners": comparison.winners, "unseen_languages": comparison.unseen,
        "task_means": json.loads(comparison.task_means.to_json(orient="records")), "notes": comparison.notes,
        "plots": plots, "config_diff": comparison.config_diff.as_json(),
    }


def write_report(comparison: Comparison, out_dir: str | Path) -> Path:
    """report.md + report.json + comparison.json + PNGs in `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(comparison, out_dir)
    report = out_dir / "report.md"
    report.write_text(markdown_report(comparison, plots), encoding="utf-8")
    data = comparison_data(comparison, plots)
    (out_dir / "comparison.json").write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(report_json(comparison), indent=2, ensure_ascii=False),
                                         encoding="utf-8")
    return report


def log_to_parents(client: MlflowClient, comparison: Comparison, out_dir: Path) -> None:
    """The report folder as artifacts of every parent run of the sweep, under compare/."""
    for parent in comparison.parent_run_ids:
        client.log_artifacts(parent, str(out_dir), ARTIFACT_DIR)
