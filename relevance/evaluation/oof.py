"""Out-of-fold scores: each fold run's dev rows with their probability, and the pool of a fold
ensemble's runs put back together.

A fold run (`data.folds=K data.fold=i`) logs `evaluation/oof_predictions.jsonl`: one line per dev
row, `id, language, label, probability, fold`. Its dev rows are fold i of the training pool, so the
K runs of one pool score every pool row exactly once, each by the model that never trained on it.
Pooled, they tune one threshold for the ensemble (`relevance.predict run=[...]`) and tell which
training labels the models contradict (`augment=[original,noise_filter]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset

from relevance.files import atomic_open

OOF_FILE = "oof_predictions.jsonl"
OOF_ARTIFACT = f"evaluation/{OOF_FILE}"
OOF_COLUMNS = ("id", "language", "label", "probability", "fold")


class OutOfFoldError(ValueError):
    """Out-of-fold scores that cannot be pooled (overlapping folds, a malformed file)."""


def oof_frame(dev: Dataset, scores: np.ndarray, fold: int) -> pd.DataFrame:
    """A fold run's out-of-fold rows: its dev rows as scored."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(dev):
        raise ValueError(f"{len(scores)} scores for {len(dev)} dev rows")
    return pd.DataFrame({"id": [str(i) for i in dev["id"]], "language": dev["language"],
                         "label": np.asarray(dev["label"], dtype=np.int64), "probability": scores,
                         "fold": np.full(len(dev), int(fold), dtype=np.int64)})


def write_oof(frame: pd.DataFrame, eval_dir: Path) -> Path:
    """`eval_dir/oof_predictions.jsonl`, written atomically; probabilities at full precision."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    path = eval_dir / OOF_FILE
    with atomic_open(path) as out:
        out.write(frame[list(OOF_COLUMNS)].to_json(orient="records", lines=True, force_ascii=False,
                                                    double_precision=15))
    return path


def read_oof(path: Path) -> pd.DataFrame:
    """One run's out-of-fold rows, checked for the columns they must have."""
    frame = pd.read_json(path, lines=True, dtype={"id": str, "language": str})
    missing = [c for c in OOF_COLUMNS if c not in frame.columns]
    if missing:
        raise OutOfFoldError(f"{path}: out-of-fold predictions without the column(s) {', '.join(missing)}")
    frame["id"] = frame["id"].astype(str)
    return frame[list(OOF_COLUMNS)]


def pool_oof(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The out-of-fold rows of several fold runs ({run id: rows}) as one table with a `run_id`
    column; a row scored by two runs means they are not folds of one split, which is refused."""
    parts = [frame.assign(run_id=run_id) for run_id, frame in frames.items()]
    pooled = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*OOF_COLUMNS, "run_id"])
    repeated = pooled["id"][pooled["id"].duplicated(keep=False)]
    if len(repeated):
        row_id = repeated.iloc[0]
        runs = sorted(pooled.loc[pooled["id"] == row_id, "run_id"])
        raise OutOfFoldError(f"row {row_id!r} is out-of-fold in runs {', '.join(runs)}: they are not distinct folds "
                             f"of one split ({repeated.nunique()} rows are scored twice)")
    return pooled
