"""The MLflow run of one training job, new or continued, and where its checkpoints go.

`open_training_run(cfg, run_name, output_dir)`:

1. claims the checkpoint folder of the run's identity (relevance.training.checkpoints);
2. ends the RUNNING runs of that identity whose process vanished: KILLED (kill -9, a lost node),
   or FAILED when they had failed and their error handler could not say so (an `error` tag:
   relevance.tracking.interrupted);
3. when the newest run of the identity is KILLED and did not fail (and `tracking.resume_killed`),
   continues that same MLflow run, RUNNING again and tagged `relevance.resumed_from_step`, from
   its last complete checkpoint (from the start when it has none), under this attempt's name;
   otherwise (the newest run FAILED, FINISHED, or none) opens a new run and empties the folder;
4. once the run FINISHED (its model is logged) or FAILED (failed runs are trained again from
   the start), deletes its checkpoints; a KILLED run keeps them for the next attempt.

While a run of the identity is RUNNING and alive elsewhere (the same job started twice),
this job leaves it alone: it opens a new run that checkpoints into its own output folder.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from relevance.tracking.interrupted import identity_runs
from relevance.tracking.mlflow_run import Resume, TrackedRun, group_tags
from relevance.tracking.store import tracking_client
from relevance.tracking.tags import RUN_IDENTITY_TAG
from relevance.training.checkpoints import CheckpointFolder, Checkpoints, checkpoints_root

log = logging.getLogger(__name__)


@contextmanager
def open_training_run(cfg: DictConfig, run_name: str, output_dir: Path) -> Iterator[tuple[TrackedRun, Checkpoints]]:
    """The run (a TrackedRun, entered) and its checkpoints (see the module docstring)."""
    tags = group_tags(cfg)
    identity = tags[RUN_IDENTITY_TAG]
    folder = CheckpointFolder(checkpoints_root(cfg.paths.cache_dir) / identity)
    claimed = folder.claim()
    try:
        runs = identity_runs(tracking_client(cfg.tracking.tracking_uri), cfg.tracking, identity)
        live = runs.live
        if live is not None or not claimed:
            by = f"run {live.info.run_id}" if live is not None else "another process"
            log.warning("%s is training this identity (%s) now: a new run, checkpointing into %s", by, identity,
                        output_dir / "checkpoints")
            resume, checkpoints = None, Checkpoints(Path(output_dir) / "checkpoints")
        else:
            resume, checkpoints = _resume_point(folder, runs.killed if cfg.tracking.resume_killed else None)
        with TrackedRun(cfg.tracking, run_name, tags, resume=resume, output_dir=output_dir,
                        disk_folders={"paths.cache_dir (models, caches, checkpoints)": cfg.paths.cache_dir}) as run:
            if checkpoints.folder == folder.path:
                folder.set_owner(run.run_id)
            try:
                yield run, checkpoints
            except Exception:
                _remove(checkpoints, folder)  # FAILED: a re-run starts from scratch
                raise
        _remove(checkpoints, folder)  # FINISHED
    finally:
        if claimed:
            folder.release()


def _resume_point(folder: CheckpointFolder, killed) -> tuple[Resume | None, Checkpoints]:
    """What to continue: the KILLED run from its last checkpoint in the folder, if they belong
    together; else nothing, in an emptied folder."""
    resume_from = None
    if killed is not None and folder.owner() == killed.info.run_id:
        resume_from = folder.last_complete()
    if resume_from is None:
        folder.clear()
    checkpoints = Checkpoints(folder.path, resume_from)
    return (Resume(killed.info.run_id, checkpoints.resume_step) if killed is not None else None), checkpoints


def _remove(checkpoints: Checkpoints, folder: CheckpointFolder) -> None:
    if checkpoints.folder == folder.path:
        folder.clear()
    else:
        shutil.rmtree(checkpoints.folder, ignore_errors=True)
