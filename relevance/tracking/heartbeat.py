"""A run's heartbeat: proof that the process running it still lives.

While a training run (relevance.tracking.mlflow_run.TrackedRun) or a sweep's parent runs
(relevance.tracking.sweep_callback) are open, a daemon thread refreshes their tag
`relevance.heartbeat` (UTC time) every `tracking.heartbeat_seconds`; the runs also name the
machine and process running them (`relevance.host`, `relevance.pid`).

A RUNNING run has vanished (kill -9, the out-of-memory killer, a lost node) when its
process is gone from this machine, or when its heartbeat is older than
`tracking.stale_after_seconds` (another machine's run, or a process id reused since):
`vanished_reason` says which, for the `relevance.kill_reason` of the run ended KILLED
(relevance.tracking.interrupted).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient

from relevance.tracking.tags import HEARTBEAT_TAG, HOST_TAG, PID_TAG

log = logging.getLogger(__name__)


def utc_iso(seconds: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if seconds is None else seconds, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def liveness_tags(host: str | None = None, pid: int | None = None) -> dict[str, str]:
    """The machine and process running a run (this one's by default), and a first heartbeat."""
    return {HOST_TAG: host or socket.gethostname(), PID_TAG: str(pid or os.getpid()), HEARTBEAT_TAG: utc_iso()}


class Heartbeat:
    """A daemon thread setting `relevance.heartbeat` on `run_ids()` every `every_seconds` until
    `stop()`. A failed beat (the store briefly locked) is logged and retried at the next one."""

    def __init__(self, client: MlflowClient, run_ids: Callable[[], Iterable[str]], every_seconds: float):
        self.client, self.run_ids, self.every_seconds = client, run_ids, every_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name="relevance-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _beat_until_stopped(self) -> None:
        while not self._stopped.wait(self.every_seconds):
            tag = [RunTag(HEARTBEAT_TAG, utc_iso())]
            for run_id in list(self.run_ids()):
                try:
                    self.client.log_batch(run_id, tags=tag)
                except Exception as exc:  # noqa: BLE001 - a heartbeat must never take the run down
                    log.debug("heartbeat of run %s failed: %s", run_id, exc)


def process_gone(pid: int) -> bool:
    """No process `pid` on this machine (a zombie counts as gone: it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def last_heartbeat(run: Run) -> float:
    """Seconds since the epoch of the run's last heartbeat (its start when it has none)."""
    beat = run.data.tags.get(HEARTBEAT_TAG)
    if beat:
        try:
            return datetime.fromisoformat(beat).timestamp()
        except ValueError:
            pass
    return (run.info.start_time or 0) / 1000


def vanished_reason(run: Run, stale_after_seconds: float, now: float | None = None) -> str | None:
    """Why this RUNNING run's process is gone, or None while it may still live."""
    now = time.time() if now is None else now
    last = last_heartbeat(run)
    tags = run.data.tags
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG)
    if host == socket.gethostname() and pid and pid.isdigit() and process_gone(int(pid)):
        return f"process vanished: pid {pid} on {host} is gone; last heartbeat {utc_iso(last)}"
    if now - last > stale_after_seconds:
        where = f" (pid {pid} on {host})" if host else ""
        return (f"process vanished: last heartbeat {utc_iso(last)}{where}, {now - last:.0f} s ago "
                f"(tracking.stale_after_seconds={stale_after_seconds:g})")
    return None
