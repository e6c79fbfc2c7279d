"""Per-step and per-epoch Trainer logs → the run's MLflow metrics (the HF MLflow callback stays off)."""

from __future__ import annotations

import math

from transformers import TrainerCallback

# Trainer log keys → our metric names
RENAMES = {"loss": "train_loss", "grad_norm": "train_grad_norm", "learning_rate": "learning_rate"}


class MlflowMetricsCallback(TrainerCallback):
    def __init__(self, run):
        self.run = run

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        metrics = {}
        for key, value in logs.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                continue
            if key in RENAMES:
                metrics[RENAMES[key]] = value
            elif key in ("epoch", "train_runtime", "train_samples_per_second"):
                metrics[key] = value
        if metrics:
            self.run.log_metrics(metrics, step=state.global_step)
