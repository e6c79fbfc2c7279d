"""Dev scored once per evaluation, through the loop `relevance.predict` uses (and the test split,
once, after training).

At the end of every epoch the callback scores dev with `score_rows` (same batches, same
dtype, same kernels as `predict`) and logs the epoch's metrics; when training ends right
after an epoch's scoring (the usual case), the final evaluation reuses those scores
instead of scoring dev a second time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from transformers import TrainerCallback

from relevance.evaluation.metrics import binary_metrics
from relevance.modeling.scoring import score_rows

EPOCH_METRICS = ("f1", "precision", "recall", "roc_auc")


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean cross-entropy of the labels under P(relevant) = scores."""
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


class DevScorer(TrainerCallback):
    """Scores dev after each epoch; `final_scores` gives the scores of the finished model."""

    def __init__(self, loaded, encoded, labels: np.ndarray, batch_size: int, max_tokens: int | None,
                 log_metrics: Callable[[dict[str, float], int], None]):
        self.loaded, self.encoded, self.labels = loaded, encoded, np.asarray(labels)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.log_metrics = log_metrics
        self.scores: np.ndarray | None = None
        self.scored_at_step: int | None = None
        self.passes = 0  # how many times dev was scored, for tests and logs

    def score(self, step: int) -> np.ndarray:
        self.scores = self.score_table(self.encoded)
        self.scored_at_step = step
        self.passes += 1
        return self.scores

    def score_table(self, encoded) -> np.ndarray:
        """Scores of another encoded table (the test split), batched as dev's: not logged, not kept."""
        return score_rows(self.loaded.model, self.loaded.head, self.loaded.tokenizer, encoded, self.batch_size,
                          self.max_tokens)

    def on_epoch_end(self, args, state, control, **kwargs):
        if not len(self.encoded):
            return
        scores = self.score(state.global_step)
        metrics = binary_metrics(self.labels, scores, 0.5)
        epoch = {f"epoch_dev_{k}": metrics[k] for k in EPOCH_METRICS if np.isfinite(metrics[k])}
        epoch["epoch_dev_loss"] = log_loss(self.labels, scores)
        self.log_metrics(epoch, state.global_step)

    def final_scores(self, step: int) -> np.ndarray:
        """The finished model's dev scores: the last epoch's when no step came after it."""
        if self.scores is not None and self.scored_at_step == step:
            return self.scores
        return self.score(step)
