"""Process-wide settings every entry point wants before heavy imports run."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager


def quiet_third_party_logs() -> None:
    """Keep the console about the run: third-party notices go to the log at WARNING."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("transformers", "datasets", "mlflow", "alembic", "peft", "bitsandbytes", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
    warnings.filterwarnings("ignore", message=".*dataset source can be interpreted in multiple ways.*")
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")


def exit_on_sigterm() -> None:
    """Turn SIGTERM (sent by `timeout`, SLURM and Kubernetes) into a normal exit, so `finally`
    blocks and context managers clean up (temp files, MLflow run status) as on Ctrl-C."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


# --------------------------------------------------------------------------- stop signals of training jobs

class RunInterrupted(SystemExit):
    """A stop signal (SIGTERM from `timeout`, SLURM, Kubernetes; SLURM's pre-timeout signal)
    ended the job: exit status 128 + the signal's number. A SystemExit, so `except Exception`
    (a sweep's failure policy, Hydra's job wrapper) lets it through and the job stops."""

    def __init__(self, signum: int, where: str = ""):
        super().__init__(128 + signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.where = where

    @property
    def reason(self) -> str:
        return f"{self.signal_name} received" + (f" {self.where}" if self.where else "")

    def at(self, where: str) -> "RunInterrupted":
        """The same stop, saying where it took effect ("at step 12: checkpoint saved")."""
        return RunInterrupted(self.signum, where)

    def __str__(self) -> str:
        return self.reason


_received: RunInterrupted | None = None  # the first stop signal this process received
_deferring = False  # inside a training loop that stops at its next step boundary


def stop_on_signals(names) -> None:
    """Turn each named signal (e.g. ["SIGTERM", "SIGUSR1"]) into RunInterrupted, raised at
    once, or, inside `stop_at_step_boundary()`, at the training loop's next step boundary
    (after a checkpoint: relevance.training.checkpoints). A second signal stops at once.
    Only the main thread may set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in names:
        signal.signal(signal.Signals[str(name)], _on_stop_signal)


def _on_stop_signal(signum, frame) -> None:
    global _received
    first = _received is None
    _received = RunInterrupted(signum)
    if _deferring and first:
        logging.getLogger(__name__).warning(
            "%s received: stopping after the current training step, once a checkpoint is saved "
            "(send it again to stop at once)", _received.signal_name)
        return
    raise _received


def stop_requested() -> RunInterrupted | None:
    """The stop signal this process received, if any (checked at step boundaries)."""
    return _received


@contextmanager
def stop_at_step_boundary():
    """Within this block a stop signal only records itself: the training loop checks
    `stop_requested()` after each step, saves a checkpoint and raises. A stop received when
    no step boundary is left (the loop's end) is raised when the block ends."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _received is not None:
        raise _received
