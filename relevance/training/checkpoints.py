"""Resumable checkpoints, in a folder named by the run's identity, not by the clock.

The Trainer writes `checkpoint-<step>/` (adapter and head weights, optimizer, scheduler,
RNG states and trainer state: all that `resume_from_checkpoint` needs to continue exactly)
every `trainer.checkpoint_every_steps` optimizer steps (or at each epoch's end), keeping the
newest `trainer.checkpoints_kept`, into `<paths.cache_dir>/checkpoints/<run identity>/`
(relevance.tracking.identity): a re-run of the same config, data and code finds them,
whatever its output folder, by hand, in a sweep re-run or after SLURM's requeue.
`owner.json` names the MLflow run they belong to. One process at a time uses a folder
(a file lock beside it, released by the OS if the process dies).

On a stop signal (relevance.runtime) the training loop saves a checkpoint at its next step
boundary and stops (`SaveAndStopOnSignal`, added by relevance.training.trainer).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from transformers import TrainerCallback

from relevance.runtime import RunInterrupted, stop_requested

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
COMPLETE_MARKER = "trainer_state.json"  # the Trainer writes it last: without it a save was cut short
OWNER_FILE = "owner.json"


def checkpoints_root(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "checkpoints"


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix(CHECKPOINT_PREFIX))


@dataclass(frozen=True)
class Checkpoints:
    """Where a run's Trainer saves, and the checkpoint it resumes from (None: from the start)."""

    folder: Path
    resume_from: Path | None = None

    @property
    def resume_step(self) -> int:
        return checkpoint_step(self.resume_from) if self.resume_from else 0


class CheckpointFolder:
    """`<root>/<identity>/`: its checkpoints, its owner run, and a lock so one process at a time uses it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = FileLock(f"{self.path}.lock", timeout=0)

    def claim(self) -> bool:
        """Take the folder for this process; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()

    def owner(self) -> str | None:
        try:
            return json.loads((self.path / OWNER_FILE).read_text())["run_id"]
        except (OSError, ValueError, KeyError):
            return None

    def set_owner(self, run_id: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / OWNER_FILE).write_text(json.dumps({"run_id": run_id}))

    def last_complete(self) -> Path | None:
        """The newest checkpoint the Trainer finished writing; newer, incomplete ones (a process
        killed while saving) are removed, so the Trainer's rotation never keeps them."""
        for checkpoint in sorted(self.path.glob(f"{CHECKPOINT_PREFIX}*"), key=checkpoint_step, reverse=True):
            if _is_complete(checkpoint):
                return checkpoint
            log.warning("removing incomplete checkpoint %s (its save was cut short)", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
        return None

    def clear(self) -> None:
        """No checkpoints and no owner: a run starts from scratch here."""
        shutil.rmtree(self.path, ignore_errors=True)


def _is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return True


class SaveAndStopOnSignal(TrainerCallback):
    """At each step boundary (and an epoch's end), once a stop signal came: save a
    checkpoint, then raise the stop (RunInterrupted), so the run ends KILLED and resumable.
    With checkpoints off (`trainer.save_checkpoints=false`) it raises without saving."""

    def __init__(self) -> None:
        self._stopping: RunInterrupted | None = None

    def on_step_end(self, args, state, control, **kwargs):
        self._save_then_stop(args, state, control)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._save_then_stop(args, state, control)

    def _save_then_stop(self, args, state, control) -> None:
        stop = stop_requested()
        if stop is None or self._stopping is not None:
            return
        if args.save_strategy == "no":
            raise stop.at(f"at step {state.global_step} (no checkpoint: trainer.save_checkpoints=false)")
        self._stopping = stop
        control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        if self._stopping is not None:
            raise self._stopping.at(f"at step {state.global_step}: checkpoint saved in {args.output_dir}")
