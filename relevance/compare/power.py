"""`python -m relevance.compare.power [key=value ...]`: before an ablation, from a pilot sweep (say 2–3
seeds of the baseline), the smallest F1 and ROC-AUC delta that N seeds per arm would detect on the
pilot's rows at 80 % power, and how many seeds `power.delta` needs (`relevance.compare.sample_size`
has the formula). The keys are conf/compare.yaml's: `sweep=` / `experiments=` / `baseline=` pick the
pilot as for `relevance.compare`; `power.seeds=[2,3,5,10]`, `power.delta=0.01`, `power.level`,
`alpha`. It prints a table and writes nothing; `relevance.compare` puts the same figures in
report.json under `power`.
"""

from __future__ import annotations

import math

import hydra
from omegaconf import DictConfig

from relevance.compare.__main__ import comparison_from_config
from relevance.compare.comparison import Comparison
from relevance.compare.config import register_compare_schema, validate_compare_config
from relevance.compare.report_json import task_power
from relevance.config import ConfigError
from relevance.runtime import quiet_third_party_logs
from relevance.text_tables import text_table
from relevance.tracking.runs import RunSelectionError

register_compare_schema()
METRIC_HEADERS = {"f1": "F1", "roc_auc": "ROC-AUC"}


@hydra.main(config_path="../../conf", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    quiet_third_party_logs()
    try:
        validate_compare_config(cfg)
        print(power_report(cfg))
    except (ConfigError, RunSelectionError) as exc:
        raise SystemExit(f"relevance.compare.power: {exc}") from None


def power_report(cfg: DictConfig) -> str:
    """Select the pilot's runs → compare them (the clustered bootstrap) → the power text."""
    return power_text(comparison_from_config(cfg)[1])


def _value(value: float | None, lower_bound: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{'≥ ' if lower_bound else ''}{value:.4f}"


def _sd(variance: float | None) -> str:
    return _value(math.sqrt(variance) if variance is not None and math.isfinite(variance) else None, False)


def power_text(comparison: Comparison) -> str:
    """Per task: the noise behind the figures, N seeds → MDE per metric, and the seeds `delta` needs."""
    settings = comparison.power
    lines = [f"Power from the pilot {comparison.title}: two-sided alpha {comparison.alpha:g}, {settings.level:.0%} "
             "power, N seeds per arm and as many for the baseline. Holm's correction is not included: with k arms "
             f"against one baseline, rerun with alpha={comparison.alpha:g}/k for a conservative figure.",
             "MDE(N) = (z_{1-alpha/2} + z_{power}) * sqrt(2 * var_seed / N + var_rows)   (docs/comparison.md)"]
    if not comparison.noise:
        lines.append("No task has runs paired with its baseline: nothing to estimate the noise from (see the notes).")
    for task in sorted(comparison.noise):
        power = task_power(comparison, task)
        metrics = power["metrics"]
        lines += ["", f"{task}: {power['rows']} {comparison.report_role} rows in {power['queries']} queries"]
        for metric, header in METRIC_HEADERS.items():
            m = metrics[metric]
            pairs = m["row_variance_run_pairs"]
            lines.append(f"  {header}: seed sd {_sd(m['seed_variance'])} (from {m['seed_variance_settings']} "
                         "setting(s) with 2+ seeds); sd of a paired difference over query resamples "
                         f"{_sd(m['row_variance_paired'])} (from {pairs} run pair(s)"
                         f"{'' if pairs else ': one run, its own variance doubled'})")
        header = ["seeds per arm", *(f"MDE {h}" for h in METRIC_HEADERS.values())]
        rows = [[str(n), *(_value(metrics[metric]["mde_by_seeds"][str(n)], metrics[metric]["mde_is_lower_bound"])
                           for metric in METRIC_HEADERS)] for n in settings.seeds]
        lines.append(text_table(header, rows))
        if settings.delta:
            needs = "; ".join(f"{header}: {_needed(metrics[metric]['seeds_needed_text'])}"
                              for metric, header in METRIC_HEADERS.items())
            lines.append(f"A delta of {settings.delta:g} needs: {needs}")
        if any(metrics[metric]["mde_is_lower_bound"] for metric in METRIC_HEADERS):
            lines.append("≥: no setting of the pilot has two seeds or more, so the seed variance is unmeasured and "
                         "the MDE counts the row noise only (a lower bound): run 2-3 seeds of the baseline.")
    return "\n".join(lines)


def _needed(text: str) -> str:
    return f"{text} seeds per arm" if text.isdigit() else text


if __name__ == "__main__":
    main()
