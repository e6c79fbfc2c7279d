"""Before any model loads: the runs a run builds on never trained on its evaluation rows.

A run can start from another run's adapter (`model.init_adapter`), filter its training rows with
other runs' out-of-fold scores (`augment.noise_filter.oof_from`), and `predict` averages fold runs.
A model that trained on this run's dev rows makes its threshold and selection optimistic; one that
trained on its test rows makes its report a memory test. Each source run's logged lineage
(relevance.data.lineage) is compared with this run's dev and test rows by content; an overlap is an
error naming the source run, the key it came from and the count, unless the user sets the override.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from relevance.data.lineage import LINEAGE_ARTIFACT, RunLineage, seen_counts

OVERRIDE = "evaluation.allow_seen_rows=true"


class SeenRowsError(ValueError):
    """A run this run builds on trained on its dev or test rows (or cannot be checked)."""


def trained_on(client: MlflowClient, run_id: str, key: str, override: str = OVERRIDE) -> set[str]:
    """The content digests of the rows `run_id` trained on, from its logged lineage."""
    with tempfile.TemporaryDirectory(prefix="relevance-lineage-") as work:
        try:
            path = client.download_artifacts(run_id, LINEAGE_ARTIFACT, work)
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
            raise SeenRowsError(
                f"{key}: run {run_id} logged no row lineage ({LINEAGE_ARTIFACT}: trained before lineage was "
                f"recorded?), so nobody can tell whether it saw this run's evaluation rows; train it again, "
                f"or set {override} if you accept that") from None
        return RunLineage.read(Path(path)).digests("train")


def check_sources(client: MlflowClient, sources: dict[str, list[str]], lineage: RunLineage,
                  override: str = OVERRIDE) -> None:
    """Every source run (`{config key: [run ids]}`) never trained on `lineage`'s dev or test rows."""
    problems = []
    for key, run_ids in sources.items():
        for run_id in run_ids:
            seen = {role: n for role, n in seen_counts(trained_on(client, run_id, key, override), lineage).items()
                    if n}
            if seen:
                counts = " and ".join(f"{n} of its {len(lineage.roles[role])} {role} rows" for role, n in seen.items())
                problems.append(f"{key}: run {run_id} trained on {counts}")
    if problems:
        raise SeenRowsError("a run this one builds on has seen its evaluation rows, so its dev threshold, "
                            "selection and test report would be optimistic:\n  - " + "\n  - ".join(problems)
                            + f"\nTrain the source on rows that exclude this run's dev and test rows (e.g. folds "
                            f"over the training file only: data.dev_file=null), or set {override} if you mean it")
