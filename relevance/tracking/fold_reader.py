"""The tracking side of `relevance.augment.base.RunReader`: fold runs and their pooled out-of-fold scores,
read from a run's MLflow store and handed to the strategies that need them (`noise_filter`), so that the
strategies never import the tracking code."""

from __future__ import annotations

import tempfile

import pandas as pd

from relevance.tracking.folds import fold_runs, pooled_oof
from relevance.tracking.store import tracking_client


class TrackedFoldRuns:
    """Fold runs in the store at `tracking_uri`."""

    def __init__(self, tracking_uri: str | None):
        self.tracking_uri = tracking_uri

    def _members(self, reference: str, key: str, allow_partial: bool, allow_key: str):
        if not self.tracking_uri:
            raise ValueError(f"{key}: this run has no tracking store to read the folds from")
        client = tracking_client(self.tracking_uri)
        return client, fold_runs(client, reference, key, allow_partial=allow_partial, allow_key=allow_key)

    def fold_run_ids(self, reference: str, key: str, allow_partial: bool, allow_key: str) -> list[str]:
        return self._members(reference, key, allow_partial, allow_key)[1].run_ids

    def pooled_out_of_fold(self, reference: str, key: str, allow_partial: bool, allow_key: str) -> pd.DataFrame:
        client, members = self._members(reference, key, allow_partial, allow_key)
        with tempfile.TemporaryDirectory(prefix="relevance-oof-") as work_dir:
            return pooled_oof(client, members, work_dir)
