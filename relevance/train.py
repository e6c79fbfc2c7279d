"""`python -m relevance.train [overrides]`: compose → validate → run → the metric a sweeper optimises.

Single run: errors propagate (non-zero exit with the message).
Multirun (`-m`, any sweeper or launcher), each job:
  * resume: with `tracking.resume=true` (the default) a job whose config already has a
    FINISHED run in its experiment is skipped ("skipping: identical finished run <id>")
    and returns that run's dev_f1; failed runs are trained again;
  * an error is logged and the job returns a "failed" value instead of raising, so one
    bad job never takes the sweep down (its MLflow run is FAILED with the error already):
    NaN for Hydra's basic sweeper, -inf for Optuna (which rejects NaN);
  * what happened is written to `relevance_job.json` in the job's folder, for the sweep
    parent's summary (relevance.tracking.sweep_callback).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from relevance.config import register_configs, validate_config
from relevance.runtime import quiet_third_party_logs

register_configs()
log = logging.getLogger(__name__)


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    quiet_third_party_logs()
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        validate_config(cfg)
        return _train(cfg, hydra_cfg).metrics["dev_f1"]
    return _sweep_job(cfg, hydra_cfg)


def _train(cfg: DictConfig, hydra_cfg):
    from relevance.pipeline import RunContext, run_training

    output_dir = Path(hydra_cfg.runtime.output_dir)
    # Hydra escapes interpolations in a sweep job's overrides (`$\{task.key\}`): name runs as typed.
    overrides = [o.replace("$\\{", "${").replace("\\}", "}") for o in hydra_cfg.overrides.task]
    if hydra_cfg.mode == RunMode.MULTIRUN:  # the parent run's name carries the experiment
        overrides = [o for o in overrides if not o.startswith("experiment=")]
    context = RunContext(output_dir=output_dir, overrides=overrides,
                         hydra_dir=output_dir / hydra_cfg.output_subdir if hydra_cfg.output_subdir else None)
    return run_training(cfg, context)


def _sweep_job(cfg: DictConfig, hydra_cfg) -> float:
    from relevance.tracking.mlflow_run import config_hash
    from relevance.tracking.resume import find_finished_run, finished_run_metric
    from relevance.tracking.sweep_callback import write_job_record

    output_dir = Path(hydra_cfg.runtime.output_dir)
    job = {"overrides": list(hydra_cfg.overrides.task), "job_num": hydra_cfg.job.num}
    stage = "setup"  # failures before the job's MLflow run exists
    try:
        validate_config(cfg)
        job["experiment_name"] = str(cfg.tracking.experiment_name)
        if cfg.tracking.resume:
            finished = find_finished_run(cfg.tracking, config_hash(cfg))
            if finished:
                value = finished_run_metric(cfg.tracking, finished)
                log.info("skipping: identical finished run %s (dev_f1=%.4f)", finished, value)
                write_job_record(output_dir, "skipped", reused_run_id=finished, dev_f1=value, **job)
                return value
        stage = "training"
        result = _train(cfg, hydra_cfg)
    except Exception as exc:
        log.exception("job %s failed; the sweep goes on", hydra_cfg.job.num)
        write_job_record(output_dir, "failed", stage=stage, error=f"{type(exc).__name__}: {exc}"[:5000], **job)
        return _failed_value(hydra_cfg)
    write_job_record(output_dir, "finished", run_id=result.run_id, dev_f1=result.metrics["dev_f1"], **job)
    return result.metrics["dev_f1"]


def _failed_value(hydra_cfg) -> float:
    """What a failed job returns to the sweeper: Optuna refuses NaN (its sweeper then
    crashes), so it gets -inf, the worst value for a maximised F1."""
    return -math.inf if "optuna" in str(hydra_cfg.sweeper.get("_target_", "")).lower() else math.nan


if __name__ == "__main__":
    main()
