"""How fast a run trained: each optimizer step timed, summarised at the end of training.

Logged (through the `log_metrics` the run hands in):
  train_first_step_seconds   the first step (tracing and compiling when the run compiles)
  train_compile_seconds      compiled runs: the time of slow steps above the median step (compiles, recompiles);
                             eager runs: 0
  train_steps_per_s          the steady rate: every step but the first and the slow ones (eager: but the first)
  train_compiled_graphs      graphs torch.compile built during training (0 when eager)
A step is slow when it takes over three times the median step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from transformers import TrainerCallback

SLOW = 3.0  # a step this many times the median step was compiling


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def summarise_step_seconds(seconds: list[float], compiled: bool = True) -> dict[str, float]:
    """The first step, the overhead of slow steps over the median, and the steady rate over every other step.
    A recompile late in a run (a batch shape first seen then) leaves out that step only, not every step before
    it. An eager run's slow steps are warm-up, not compiling: only its first step is left out of the rate."""
    if not seconds:
        return {}
    times = np.asarray(seconds, dtype=float)
    median = float(np.median(times))
    slow = np.flatnonzero(times > SLOW * median) if compiled else np.arange(0)
    steady = np.ones(len(times), dtype=bool)
    steady[0] = steady[slow] = False
    steady_times = times[steady] if steady.any() else times
    return {"train_first_step_seconds": float(times[0]),
            "train_compile_seconds": float(np.sum(times[slow] - median)),
            "train_steps_per_s": float(len(steady_times) / np.sum(steady_times))}


class StepRate(TrainerCallback):
    def __init__(self, log_metrics: Callable[[dict[str, float]], None], compiled: bool):
        self.log_metrics, self.compiled = log_metrics, compiled
        self.seconds: list[float] = []
        self.graphs_before = 0
        self._started = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.graphs_before = compiled_graphs()

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)

    def on_train_end(self, args, state, control, **kwargs):
        summary = summarise_step_seconds(self.seconds, self.compiled)
        if summary:
            self.log_metrics({**summary, "train_compiled_graphs": compiled_graphs() - self.graphs_before})
