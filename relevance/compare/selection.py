"""Which runs a comparison covers: a sweep's (children and reused runs) or whole experiments',
FINISHED only."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.tracking.runs import RunSelectionError, experiment_runs, find_sweep_parent, runs_frame, sweep_runs


def select_runs(client: MlflowClient, sweep: str | None = None,
                experiments: Sequence[str] = ()) -> tuple[list[Run], str, list[str]]:
    """(runs, title, parent run ids): every run of the named experiments, else a sweep's runs
    (`sweep`: a parent run id, or latest when None)."""
    if experiments:
        names = list(experiments)
        return experiment_runs(client, names), f"experiments {', '.join(names)}", []
    parent = find_sweep_parent(client, sweep or "latest")
    found = sweep_runs(client, parent)
    title = f"sweep `{parent.info.run_name}` ({parent.info.run_id})"
    return found.runs, title, [p.info.run_id for p in found.parents]


def runs_of_mixes(runs: list[Run], mixes: Sequence[str]) -> list[Run]:
    """The runs whose augmentation mix (the `augment` tag, `original+reorder`) is one of `mixes`; all of
    them when `mixes` is empty. A mix no run has is an error listing the mixes there are."""
    if not mixes:
        return runs
    present = sorted({str(run.data.tags.get("augment")) for run in runs})
    unknown = [mix for mix in mixes if mix not in present]
    if unknown:
        raise RunSelectionError(f"mixes={list(mixes)}: no run has {', '.join(unknown)}; the mixes here: "
                                f"{', '.join(present)}")
    return [run for run in runs if run.data.tags.get("augment") in set(mixes)]


# params a comparison reads: seeds (groups), how each run tuned its threshold (re-tuning in the bootstrap)
RUN_PARAMS = ("seed", "data.seed", "evaluation.threshold", "evaluation.min_rows_per_language")


def finished_runs(runs: list[Run], title: str = "") -> tuple[pd.DataFrame, list[str]]:
    """One row per FINISHED run (its tags, metrics and `RUN_PARAMS`), and a note naming the runs left out."""
    frame = runs_frame(runs)
    for key in RUN_PARAMS:
        frame[key] = [run.data.params.get(key) for run in runs]
    if frame.empty:
        raise RunSelectionError(f"no runs to compare in {title or 'the selection'}")
    left_out = frame[frame["status"] != "FINISHED"]
    notes = [f"{len(left_out)} run(s) not FINISHED left out: "
             + ", ".join(f"`{r.run_name}` ({r.status})" for r in left_out.itertuples())] if len(left_out) else []
    frame = frame[frame["status"] == "FINISHED"].reset_index(drop=True)
    if frame.empty:
        raise RunSelectionError(f"no FINISHED run in {title or 'the selection'}")
    return frame, notes
