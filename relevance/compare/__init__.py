"""Compare the runs of a sweep (or of whole experiments): `python -m relevance.compare [key=value ...]`
(keys in conf/compare.yaml), or interactively in notebooks/compare_runs.ipynb.

The report (`report.md`, `report.json`, `comparison.json`, PNG plots) has, per task, every FINISHED
run's test F1 / precision / recall / ROC-AUC / unseen-language F1 / lift over predicting everything
relevant, with dev F1 and ROC-AUC beside (dev alone when a run has no test split); its F1 and ROC-AUC
deltas against the task's baseline with paired bootstrap 95 % CIs that draw queries (a query's rows
together) and re-tune each run's threshold on dev inside every resample (rows joined on `id`; runs
whose rows differ from the baseline's get no delta, and the report says so); per arm (a group of runs
that differ only by seed) the mean over its seeds, its delta against the baseline's group with an
interval over seeds then queries, p, Holm's p over the task's arms, the verdict, P(better) over seed
pairs, the per-seed spread and a note when the delta is below what its seeds and rows can detect;
per-language F1 with the winner of each language (chosen on dev); and, for every setting run on two
tasks or more, the mean over its tasks. `python -m relevance.compare.power` sizes an ablation from a
pilot (docs/comparison.md).

    selection    which runs (a sweep's, or experiments'), FINISHED only
    labels       short labels from run names; the setting that pairs a run with its other-task twins;
                 the seed group
    deltas       baselines and re-tuned paired bootstrap deltas against them (queries resampled)
    seeds        seed groups (arms): mean over seeds, interval over seeds and queries, their delta
    significance Holm over a baseline's arms, verdicts, P(better) over seed pairs, per-seed spread
    sample_size  seed and row noise, minimal detectable effect, seeds a delta needs
    aggregates   per-language F1 and winners; means over tasks
    config_diff  the resolved config keys whose values differ among the runs, run by run
    comparison   the Comparison object tying them together
    tables       formatted (header, rows) tables
    report       terminal text, report folder, artifacts on the parent runs
    report_json  report.json: the arms' decisions and the power figures, machine-readable
    power        `python -m relevance.compare.power`: the power table of a pilot
    config       the typed schema of conf/compare.yaml; composing it outside Hydra apps
"""

from relevance.compare.aggregates import language_winners, task_means
from relevance.compare.comparison import Comparison, build_comparison
from relevance.compare.config import CompareConfig, compose_compare_config
from relevance.compare.deltas import choose_baselines, paired_delta
from relevance.compare.labels import distinguishing_labels, seed_group_key, setting_key, split_overrides
from relevance.compare.report import log_to_parents, markdown_report, terminal_report, write_plots, write_report
from relevance.compare.sample_size import Noise, PowerSettings, minimal_detectable_effect, seeds_needed
from relevance.compare.seeds import seed_groups
from relevance.compare.significance import add_holm_verdicts, holm_adjust, seed_pair_win_share
from relevance.compare.selection import select_runs
from relevance.compare.tables import (groups_table, language_table, means_table, means_title, run_table,
                                      winners_table)

__all__ = [
    "CompareConfig",
    "Comparison",
    "Noise",
    "PowerSettings",
    "add_holm_verdicts",
    "build_comparison",
    "choose_baselines",
    "compose_compare_config",
    "distinguishing_labels",
    "groups_table",
    "holm_adjust",
    "language_table",
    "language_winners",
    "log_to_parents",
    "markdown_report",
    "means_table",
    "means_title",
    "minimal_detectable_effect",
    "paired_delta",
    "run_table",
    "seed_group_key",
    "seed_groups",
    "seed_pair_win_share",
    "seeds_needed",
    "select_runs",
    "setting_key",
    "split_overrides",
    "task_means",
    "terminal_report",
    "winners_table",
    "write_plots",
    "write_report",
]
