"""How one `relevance.train` job runs under tracking (lightning-hydra-template's `task_wrapper`).

Every job: the signals in `tracking.stop_signals` (SIGTERM, SLURM's SIGUSR1) stop it as a
KILLED run, after a checkpoint when training (relevance.runtime, relevance.training.checkpoints);
the process exits with 128 + the signal's number, and a re-run continues the same run.

Single run: validate, train; errors propagate (non-zero exit with the message).
Multirun job (`-m`, any sweeper or launcher):
  * resume: with `tracking.resume=true` (the default) a job whose run identity (config,
    data, code, numerics: relevance.tracking.identity) already has a FINISHED run in its
    experiment is skipped, saying why ("skipping: identical finished run <id> (dev_f1=…):
    identical config …, data digest …, code …, strategies …, numerics …"), and returns that
    run's metric; failed runs, and runs whose data, code or numerics changed, are trained
    again, saying which part changed ("training again: finished run <id> has this config,
    but its code 1a2b… → 3c4d…");
  * an error is logged and the job returns a "failed" value instead of raising, so one
    bad job never takes the sweep down (its MLflow run is FAILED with the error already):
    NaN for Hydra's basic sweeper, -inf for Optuna (which rejects NaN);
  * a stop signal is not a failure: the job is recorded "killed" and the sweep stops;
  * what happened is written to `relevance_job.json` in the job's folder, for the sweep
    parent's summary (relevance.tracking.job_record).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Protocol

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from relevance.runtime import RunInterrupted, stop_on_signals
from relevance.tracking.identity import changed_parts, run_identity
from relevance.tracking.interrupted import identity_runs
from relevance.tracking.job_record import write_job_record
from relevance.tracking.resume import find_finished_run, finished_run_metric
from relevance.tracking.store import tracking_client
from relevance.tracking.store_retry import configure as configure_store_retries
from relevance.tracking.tags import CONFIG_HASH_TAG

log = logging.getLogger(__name__)

OBJECTIVE = "dev_f1"  # the metric a job returns to the sweeper


class TrainResult(Protocol):
    run_id: str
    metrics: dict[str, float]


def run_job(cfg: DictConfig, validate: Callable[[DictConfig], None],
            train: Callable[[DictConfig], TrainResult]) -> float:
    """`validate(cfg)` then `train(cfg)`; the objective, or in a multirun the policy above."""
    hydra_cfg = HydraConfig.get()
    configure_store_retries(cfg.tracking)  # a busy store is waited on from the first call (docs/failures.md)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        validate(cfg)
        stop_on_signals(cfg.tracking.stop_signals)
        return train(cfg).metrics[OBJECTIVE]
    output_dir = Path(hydra_cfg.runtime.output_dir)
    job = {"overrides": list(hydra_cfg.overrides.task), "job_num": hydra_cfg.job.num}
    stage = "setup"  # failures before the job's MLflow run exists
    try:
        validate(cfg)
        stop_on_signals(cfg.tracking.stop_signals)  # in the job's own process (a joblib worker too)
        job["experiment_name"] = str(cfg.tracking.experiment_name)
        if cfg.tracking.resume:
            reused = _reuse_finished_run(cfg)
            if reused is not None:
                run_id, value = reused
                write_job_record(output_dir, "skipped", reused_run_id=run_id, **{OBJECTIVE: value}, **job)
                return value
        stage = "training"
        result = train(cfg)
    except RunInterrupted as stop:
        write_job_record(output_dir, "killed", stage=stage, error=stop.reason, **job)
        raise
    except Exception as exc:
        log.exception("job %s failed; the sweep goes on", hydra_cfg.job.num)
        write_job_record(output_dir, "failed", stage=stage, error=f"{type(exc).__name__}: {exc}"[:5000], **job)
        return failed_value(hydra_cfg)
    value = result.metrics[OBJECTIVE]
    write_job_record(output_dir, "finished", run_id=result.run_id, **{OBJECTIVE: value}, **job)
    return value


def _reuse_finished_run(cfg: DictConfig) -> tuple[str, float] | None:
    """(run id, objective) of a FINISHED run with this job's identity, or None."""
    identity = run_identity(cfg)
    identity_runs(tracking_client(cfg.tracking.tracking_uri), cfg.tracking, identity.digest)  # ends vanished ones
    run_id = find_finished_run(cfg.tracking, identity.digest)
    if run_id is None:
        say_what_changed(cfg, identity)
        return None
    value = finished_run_metric(cfg.tracking, run_id, OBJECTIVE)
    log.info("skipping: identical finished run %s (%s=%.4f): %s", run_id, OBJECTIVE, value, identity.describe())
    return run_id, value


def say_what_changed(cfg: DictConfig, identity) -> None:
    """When a finished run of the same config exists but its identity differs, say which part changed
    (code, data, numerics...): the job trains again, and the user sees why."""
    previous = find_finished_run(cfg.tracking, identity.config_hash, tag=CONFIG_HASH_TAG)
    if previous is None:
        return
    tags = tracking_client(cfg.tracking.tracking_uri).get_run(previous).data.tags
    changes = changed_parts(tags, identity)
    log.warning("training again: finished run %s has this config, but its %s", previous,
                "; ".join(changes) or "identity differs")


def failed_value(hydra_cfg) -> float:
    """What a failed job returns to the sweeper: Optuna refuses NaN (its sweeper then
    crashes), so it gets -inf, the worst value for a maximised F1."""
    return -math.inf if "optuna" in str(hydra_cfg.sweeper.get("_target_", "")).lower() else math.nan
