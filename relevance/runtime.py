"""Process-wide settings every entry point wants before heavy imports run."""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings


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
