"""Compare the runs of a sweep (or of whole experiments): `python -m relevance.compare [key=value ...]`
(keys in conf/compare.yaml), or interactively in notebooks/compare_runs.ipynb.

The report (`report.md`, `comparison.json`, PNG plots) has, per task, every FINISHED run's
F1 / precision / recall / ROC-AUC / unseen-language F1, its F1 delta against the task's
baseline with a paired bootstrap 95 % CI over the same dev rows (joined on `id`; runs whose
dev rows differ from the baseline's get no delta, and the report says so), per-language F1
with the winner of each language, and, for every setting run on two tasks or more, the mean
over its tasks.

    selection    which runs (a sweep's, or experiments'), FINISHED only
    labels       short labels from run names; the setting that pairs a run with its other-task twins
    deltas       baselines and paired bootstrap F1 deltas against them
    aggregates   per-language F1 and winners; means over tasks
    comparison   the Comparison object tying them together
    tables       formatted (header, rows) tables
    report       terminal text, report folder, artifacts on the parent runs
    config       the typed schema of conf/compare.yaml; composing it outside Hydra apps
"""

from relevance.compare.aggregates import language_winners, task_means
from relevance.compare.comparison import Comparison, build_comparison
from relevance.compare.config import CompareConfig, compose_compare_config
from relevance.compare.deltas import choose_baselines, paired_delta
from relevance.compare.labels import distinguishing_labels, setting_key, split_overrides
from relevance.compare.report import log_to_parents, markdown_report, terminal_report, write_plots, write_report
from relevance.compare.selection import select_runs
from relevance.compare.tables import language_table, means_table, means_title, run_table, winners_table

__all__ = [
    "CompareConfig",
    "Comparison",
    "build_comparison",
    "choose_baselines",
    "compose_compare_config",
    "distinguishing_labels",
    "language_table",
    "language_winners",
    "log_to_parents",
    "markdown_report",
    "means_table",
    "means_title",
    "paired_delta",
    "run_table",
    "select_runs",
    "setting_key",
    "split_overrides",
    "task_means",
    "terminal_report",
    "winners_table",
    "write_plots",
    "write_report",
]
