"""What one sweep job did, as `relevance_job.json` in the job's output folder.

Written by the job (relevance.tracking.job), read back by the sweep callback for the
parent's summary: finished (its run id), skipped (the identical FINISHED run it reused;
no child run exists for it), failed (the error, and the stage: "setup" failures happen
before the job's MLflow run exists, so the record is the only trace of them) or killed
(a stop signal stopped it: the reason).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from relevance.tracking.mlflow_run import PARENT_RUN_ENV

log = logging.getLogger(__name__)

JOB_RECORD_FILE = "relevance_job.json"


def write_job_record(output_dir: str | Path, status: str, **fields: Any) -> Path:
    """What one sweep job did (finished | skipped | failed | killed), for the parent's summary."""
    record = {"status": status, "parent_run_id": os.environ.get(PARENT_RUN_ENV), "time": time.time(), **fields}
    path = Path(output_dir) / JOB_RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


def read_job_records(sweep_dir: str | Path) -> list[dict]:
    """Every job record under the sweep folder; an unreadable one is skipped with a warning."""
    records = []
    for path in sorted(Path(sweep_dir).rglob(JOB_RECORD_FILE)):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable job record %s: %s", path, exc)
    return records
