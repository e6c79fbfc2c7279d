"""A finished training whose results the tracking store could not take: kept on disk, logged later.

When training has finished and the store then refuses what is left to log (locked by another process
through every retry: relevance.tracking.store_retry; its own disk full; the artifact store's disk full),
the run's remaining results (metrics, params, tags, the model and evaluation artifacts, its end status)
are not lost: `relevance.tracking.mlflow_run.TrackedRun` writes them, in order, to a pending record in the
run's output folder (`<output folder>/pending_results/record.json`, the files it names beside it or in
the output folder), and the command fails saying so. The run stays RUNNING (the store could not be
told anything) or FAILED (the store answered, the artifact disk did not), never FINISHED without its
model. The record is logged, and the run ends as it would have (FINISHED), by:

* the next run of the same identity (a re-run, a sweep job, a resume: relevance.tracking.interrupted),
  which finds the record through the run's `relevance.output_dir` tag; or
* `python -m relevance.tracking.pending [FOLDER ...]`: every record under each folder (default: the
  current directory), e.g. `python -m relevance.tracking.pending outputs/`.

Logging a record is resumable: each call done is counted in the record, so a second attempt after a
crash logs only the rest. A logged record is renamed `logged.json`; the run gets the tag
`relevance.logged_late` (why, and when).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from relevance.files import atomic_open
from relevance.tracking.tags import ERROR_TAG, LOGGED_LATE_TAG, MAX_PARAMS_PER_CALL, OUTPUT_DIR_TAG

log = logging.getLogger(__name__)

PENDING_DIR = "pending_results"
RECORD_FILE = "record.json"
LOGGED_FILE = "logged.json"
COMMAND = "python -m relevance.tracking.pending"


class PendingResults:
    """The record a TrackedRun writes once the store refuses a finished run's results."""

    def __init__(self, output_dir: Path, run_id: str, tracking_uri: str, cause: str):
        self.folder = Path(output_dir) / PENDING_DIR
        self.path = self.folder / RECORD_FILE
        self.record: dict[str, Any] = {"version": 1, "run_id": run_id, "tracking_uri": tracking_uri,
                                       "output_dir": str(output_dir), "cause": cause, "created": _utc(),
                                       "calls": [], "done": 0, "end_status": None}
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write()

    def add(self, op: str, **args: Any) -> None:
        self.record["calls"].append({"op": op, **args})
        self._write()

    def keep_file(self, artifact_file: str, write) -> Path:
        """A file made only to be logged (log_dict, log_table), kept under the record's folder."""
        path = self.folder / "files" / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as handle:
            write(handle)
        return path

    def finish(self, end_status: str) -> None:
        self.record["end_status"] = end_status
        self._write()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self) -> None:
        with atomic_open(self.path) as handle:
            json.dump(self.record, handle, indent=1)


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_of(output_dir: str | Path | None) -> Path | None:
    """The finished pending record in a run's output folder, if there is one."""
    if not output_dir:
        return None
    path = Path(output_dir) / PENDING_DIR / RECORD_FILE
    try:
        return path if json.loads(path.read_text()).get("end_status") else None
    except (OSError, ValueError):
        return None


def log_pending(record_path: Path, client=None) -> str:
    """Log a pending record into its store and end its run as training ended it; the run id."""
    from mlflow.entities import Metric, Param, RunTag

    from relevance.tracking.store import tracking_client

    record_path = Path(record_path)
    record = json.loads(record_path.read_text())
    run_id = record["run_id"]
    client = client or tracking_client(record["tracking_uri"])
    calls = record["calls"]
    for index in range(record["done"], len(calls)):
        call = calls[index]
        op = call["op"]
        if op == "log_params":
            params = [Param(k, v) for k, v in call["params"].items()]
            for start in range(0, len(params), MAX_PARAMS_PER_CALL):
                client.log_batch(run_id, params=params[start:start + MAX_PARAMS_PER_CALL])
        elif op == "log_metrics":
            metrics = [Metric(k, float(v), int(call["timestamp"]), int(call["step"]))
                       for k, v in call["metrics"].items()]
            for start in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[start:start + 1000])
        elif op == "set_tags":
            client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in call["tags"].items()])
        elif op == "log_artifact":
            client.log_artifact(run_id, call["path"], call["artifact_path"])
        elif op == "log_artifacts":
            client.log_artifacts(run_id, call["path"], call["artifact_path"])
        else:
            raise ValueError(f"{record_path}: call {index}: unknown op {op!r}")
        record["done"] = index + 1
        with atomic_open(record_path) as handle:  # a crash now logs only the rest next time
            json.dump(record, handle, indent=1)
    run = client.get_run(run_id)
    client.set_tag(run_id, LOGGED_LATE_TAG, f"{record['cause']}"[:4000] + f"; logged {_utc()} from {record_path}")
    if ERROR_TAG in run.data.tags:  # FAILED only because the artifact disk was full: not the run's error
        client.delete_tag(run_id, ERROR_TAG)
    client.set_terminated(run_id, record["end_status"])
    record_path.rename(record_path.with_name(LOGGED_FILE))
    log.warning("run %s: pending results logged from %s (%d calls); the run is %s", run_id, record_path,
                len(calls), record["end_status"])
    return run_id


def log_pending_of_runs(client, runs: list) -> list:
    """`runs` (MLflow runs, newest first), each unfinished one whose output folder holds a pending record
    logged first (a record that still cannot be logged is said and left for later); the runs as they
    are now."""
    settled = []
    for run in runs:
        record = record_of(run.data.tags.get(OUTPUT_DIR_TAG)) if run.info.status != "FINISHED" else None
        if record is None:
            settled.append(run)
            continue
        try:
            log_pending(record, client)
            settled.append(client.get_run(run.info.run_id))
        except Exception as exc:  # noqa: BLE001 - the new run goes on; the record stays for later
            log.error("run %s: its pending results (%s) could not be logged yet: %s: %s. They stay there: %s %s",
                      run.info.run_id, record, type(exc).__name__, exc, COMMAND, record.parent.parent)
            settled.append(run)
    return settled


def find_records(folders: list[Path]) -> list[Path]:
    records = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            records.append(folder)
        elif (folder / RECORD_FILE).is_file():
            records.append(folder / RECORD_FILE)
        else:
            records.extend(sorted(folder.rglob(f"{PENDING_DIR}/{RECORD_FILE}")))
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Log the results a busy or full tracking store "
                                     "could not take when training finished (docs/failures.md).")
    parser.add_argument("folders", nargs="*", default=["."], type=Path,
                        help="run output folders, or folders to search for pending records (default: .)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = find_records(args.folders)
    if not records:
        print(f"no pending results under {', '.join(map(str, args.folders))}")
        return 0
    failures = 0
    for record in records:
        try:
            run_id = log_pending(record)
        except Exception as exc:  # noqa: BLE001 - one record's failure is said, the others are tried
            failures += 1
            print(f"{record}: not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            status = json.loads(record.with_name(LOGGED_FILE).read_text())["end_status"]
            print(f"{record}: logged; run {run_id} is {status}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
