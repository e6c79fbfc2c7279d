"""Which settings differ: the resolved config keys whose values are not the same in every compared run,
with each run's value (the report's "Config keys that differ" section, `config_diff` in report.json).

Each run's config is read from its logged params (the resolved config flattened to dotted keys:
`relevance.tracking.mlflow_run.config_params`), which `compare` has already fetched with the runs, through
`relevance.tracking.folds.config_params`, the same reading that checks that fold runs differ only by
`data.fold`. Left out, as bookkeeping that is not what a run computes and that differs between runs that
compute the same thing:

- `paths.*`: where outputs and caches go (each run writes its own folder);
- `tracking.*`: where and how the run is recorded (run name, experiment name, tracking URI, heartbeat,
  system metrics); the run's name is the report's `run` column already;
- the values logged beside the config (row counts such as `data.train_rows`, resolved file paths such as
  `data.train_path`, `quant.compute_dtype_resolved`): results of the config and the data, not settings.

`data.fold` is kept (the ensemble check drops it, a comparison does not). A key a run does not have (a
strategy's options when the strategy is not in its mix, a key added after the run was logged) is shown
as absent (`—` in the Markdown, null in JSON) and counts as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from mlflow.entities import Run

from relevance.tracking.folds import config_params

LEFT_OUT = ("paths.*: output and cache folders", "tracking.*: run name, experiment, tracking URI and how the run "
            "is recorded", "values logged beside the config (row counts, resolved file paths, the resolved dtype)")
ABSENT = "—"
KEPT_BESIDE = ("data.fold",)  # config keys `config_params` drops for the fold-ensemble check, that a comparison keeps


@dataclass
class ConfigDiff:
    keys: list[str]  # the differing keys, sorted
    runs: list[dict] = field(default_factory=list)  # run_id, label, task, values: {key: value or None}, report order
    compared: int = 0  # how many runs were compared

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows): one row per run, one column per differing key."""
        header = ["run", "task", *self.keys, "run id"]
        rows = [[run["label"], run["task"], *(_cell(run["values"].get(k)) for k in self.keys), run["run_id"]]
                for run in self.runs]
        return header, rows

    def summary(self) -> str:
        """One sentence for the terminal and above the table."""
        if self.compared < 2:
            return "One run compared: no config keys to tell apart."
        if not self.keys:
            return f"The {self.compared} runs compared set every config key alike (but bookkeeping, below)."
        return (f"{len(self.keys)} config key(s) differ among the {self.compared} runs compared: "
                f"{', '.join(self.keys)}.")

    def as_json(self) -> dict:
        return {"keys": self.keys, "left_out": list(LEFT_OUT), "runs": self.runs}


def run_config(run: Run) -> dict[str, str]:
    """The run's config keys as logged (see the module docstring)."""
    values = config_params(run)
    values.update({key: run.data.params[key] for key in KEPT_BESIDE if key in run.data.params})
    return values


def config_diff(runs: list[Run], frame: pd.DataFrame) -> ConfigDiff:
    """The keys whose values differ among the runs in `frame` (the compared runs: `run_id`, `label`, `task`,
    `start_time`), each run's values, in the report's run order (task, then start time)."""
    by_id = {run.info.run_id: run for run in runs}
    ordered = frame.sort_values(["task", "start_time"])
    configs = {rid: run_config(by_id[rid]) for rid in ordered["run_id"] if rid in by_id}
    every_key = sorted(set().union(*configs.values())) if configs else []
    differing = [key for key in every_key if len({config.get(key) for config in configs.values()}) > 1]
    rows = [{"run_id": row.run_id, "label": row.label, "task": row.task,
             "values": {key: configs[row.run_id].get(key) for key in differing}}
            for row in ordered.itertuples() if row.run_id in configs]
    return ConfigDiff(differing, rows, len(configs))


def _cell(value: str | None) -> str:
    """A value on one line (prompts hold newlines), `—` when the run has no such key."""
    return ABSENT if value is None else str(value).replace("\r", "").replace("\n", "\\n")
