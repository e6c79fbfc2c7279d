"""`noise_filter`: drop (or relabel) the training rows whose label out-of-fold scores contradict
with high confidence — a competition team's "self-validation".

The scores come from fold runs (`data.folds=K data.fold=i`, `experiment=folds`) trained on the
same data: `oof_from` is one fold run's id, or the sweep parent's id whose children are the
folds (their `evaluation/oof_predictions.jsonl`, pooled: every pool row once, scored by the
model that never trained on it). A row of the mix so far (the original table when it comes
first: put it right after `original`) is *contradicted* when its label is 1 and its
out-of-fold P(relevant) is at most ``1 - confidence``, or its label is 0 and P(relevant) is at
least ``confidence``. `action: drop` removes those rows; `action: relabel` flips their label (and
sets their `source` to `noise_filter`, so the mix composition shows them). Rows are matched by
id; a matched row must have the same language and label as the scored one (else the scores are
of other data, an error). Rows without an out-of-fold score (other strategies' rows, rows the
given folds did not score) are kept as they are.

Counters (`augment_noise_filter_<name>` metrics): ``scored``, ``unscored``, ``contradicted``,
``dropped`` or ``relabelled``, ``oof_runs``; the artifact `augment/noise_filter/rows.json` lists
every contradicted row (id, language, label, probability, action). Deterministic: no draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
from datasets import Dataset

from relevance.augment.base import AugmentContext, RunReader, Strategy, register

ACTIONS = ("drop", "relabel")
OPTION_KEY = "augment.noise_filter.oof_from"
PARTIAL_KEY = "augment.noise_filter.allow_partial_folds"


@dataclass
class NoiseFilterOptions:
    oof_from: Optional[str] = None  # a fold run's id, or the id of the sweep parent whose children are the folds
    action: str = "drop"  # drop | relabel the contradicted rows
    confidence: float = 0.9  # contradicted: label 1 with P(relevant) <= 1 - confidence, label 0 with P >= confidence
    allow_partial_folds: bool = False  # true: use the folds given even when some of the K are missing

    def __post_init__(self):
        if not self.oof_from or not str(self.oof_from).strip():
            raise ValueError("oof_from is not set: give the id of a fold run, or of the sweep parent of the folds "
                             f"(python -m relevance.train -m experiment=folds), e.g. {OPTION_KEY}=<run id>")
        if self.action not in ACTIONS:
            raise ValueError(f"action={self.action!r}: use one of {ACTIONS}")
        if not 0.5 < self.confidence <= 1:
            raise ValueError(f"confidence={self.confidence}: must be in (0.5, 1] (how sure the out-of-fold "
                             "score must be that the label is wrong)")


def contradicted(labels: np.ndarray, probabilities: np.ndarray, confidence: float) -> np.ndarray:
    """Which rows' labels the scores contradict with at least `confidence` (NaN scores: none)."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ((labels == 1) & (probabilities <= 1 - confidence)) | ((labels == 0) & (probabilities >= confidence))


@register("noise_filter", options=NoiseFilterOptions)
class NoiseFilter(Strategy):
    options: NoiseFilterOptions
    version = "1"

    def source_runs(self, runs: RunReader) -> dict[str, list[str]]:
        return {OPTION_KEY: runs.fold_run_ids(self.options.oof_from, OPTION_KEY,
                                              self.options.allow_partial_folds, PARTIAL_KEY)}

    def out_of_fold(self, context: AugmentContext) -> pd.DataFrame:
        """The pooled out-of-fold rows of `oof_from`, read through the run's reader of other runs."""
        if context.runs is None:
            raise ValueError(f"{OPTION_KEY}: this run has no tracking store to read the folds from")
        oof = context.runs.pooled_out_of_fold(self.options.oof_from, OPTION_KEY,
                                              self.options.allow_partial_folds, PARTIAL_KEY)
        self.count("oof_runs", int(oof["fold"].nunique()))
        return oof

    def rewrite_mix(self, mix: Dataset, context: AugmentContext) -> Dataset:
        oof = self.out_of_fold(context).set_index("id")
        ids = [str(i) for i in mix["id"]]
        scored = np.array([i in oof.index for i in ids])
        labels = np.asarray(mix["label"])
        languages = np.asarray(mix["language"], dtype=object)
        rows = np.flatnonzero(scored)
        matched = oof.loc[[ids[j] for j in rows]]
        _check_same_rows(rows, ids, labels, languages, matched, self.options.oof_from)
        probability = np.full(len(mix), np.nan)
        probability[rows] = matched["probability"].to_numpy(dtype=np.float64)
        flagged = np.flatnonzero(contradicted(labels, probability, float(self.options.confidence)))
        action = self.options.action
        self.count("scored", int(scored.sum()))
        self.count("unscored", int((~scored).sum()))
        self.count("contradicted", len(flagged))
        self.count("dropped" if action == "drop" else "relabelled", len(flagged))
        self.changed_rows = [(str(languages[j]), int(labels[j])) for j in flagged]
        self.artifacts["rows.json"] = {
            "oof_from": self.options.oof_from, "action": action, "confidence": float(self.options.confidence),
            "rows": [{"id": ids[j], "language": str(languages[j]), "label": int(labels[j]),
                      "probability": float(probability[j]), "action": action} for j in flagged]}
        if not len(flagged):
            return mix
        if action == "drop":
            return mix.select(np.setdiff1d(np.arange(len(mix)), flagged))
        columns = mix.to_dict()
        for j in flagged:
            columns["label"][j] = 1 - int(labels[j])
            columns["source"][j] = self.name
        return Dataset.from_dict(columns, features=mix.features)


def _check_same_rows(rows: np.ndarray, ids: list[str], labels: np.ndarray, languages: np.ndarray,
                     matched: pd.DataFrame, oof_from: str) -> None:
    """The scored rows are these rows: the same language and label under the same id."""
    if not len(rows):
        raise ValueError(f"{OPTION_KEY}={oof_from}: its out-of-fold scores name none of this run's training rows "
                         "(by id): were the folds trained on the same data (data.dir, data.train_file)?")
    wrong = np.flatnonzero((matched["label"].to_numpy() != labels[rows])
                           | (matched["language"].to_numpy(dtype=object) != languages[rows]))
    if len(wrong):
        j = rows[wrong[0]]
        there = matched.iloc[wrong[0]]
        raise ValueError(f"{OPTION_KEY}={oof_from}: row id {ids[j]!r} is {there['language']} with label "
                         f"{int(there['label'])} in the out-of-fold scores, {languages[j]} with label {labels[j]} "
                         f"here ({len(wrong)} such rows): the folds were trained on other data")
