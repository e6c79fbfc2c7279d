"""A sweep parent's summary: its runs, counts and best run, logged when the sweep ends.

For one parent: its finished children and the runs it reused (job records with status
"skipped"), plus the jobs that failed before any run existed; the best run, selected by `dev_f1`
(tags `best_run_id`, `best_run_name`, metric `best_dev_f1`) and reported by its `test_f1` when the
runs have a test split (metric `best_test_f1`); counts (metrics `jobs_total`,
`jobs_finished`, `jobs_failed`, `jobs_skipped`, `jobs_killed`); the reused run ids (tag
`relevance.sweep.reused_run_ids`); a table of runs x key metrics (`sweep_summary.json`,
`sweep_summary.md`); the sweep's `multirun.yaml` and Optuna's `optimization_results.yaml`
when present (under `sweep/`). The parent then ends FINISHED; FAILED when every job
failed or the sweep stopped before its end; KILLED, with the reason (`relevance.kill_reason`),
when a stop signal stopped it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from relevance.text_tables import markdown_table
from relevance.tracking.mlflow_run import search_all
from relevance.tracking.tags import KILL_REASON_TAG, REUSED_TAG, SWEEP_ID_TAG

log = logging.getLogger(__name__)

SUMMARY_METRICS = ("test_f1", "test_roc_auc", "test_f1_lift", "dev_f1", "dev_precision", "dev_recall", "dev_roc_auc",
                   "dev_unseen_f1", "dev_threshold")


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def summarize_parent(client: MlflowClient, parent_id: str, records: list[dict]) -> dict:
    """Children and reused runs of one parent, with counts and the best run by dev_f1."""
    parent = client.get_run(parent_id)
    children = search_all(client, [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    mine = [r for r in records if r.get("parent_run_id") == parent_id]
    reused_ids = list(dict.fromkeys(r["reused_run_id"] for r in mine if r["status"] == "skipped"))
    no_run_failures = [r for r in mine if r["status"] == "failed" and r.get("stage") == "setup"]
    rows = [_row(run, "child") for run in sorted(children, key=lambda r: r.info.start_time or 0)]
    child_ids = {row["run_id"] for row in rows}
    rows += [_row(client.get_run(run_id), "reused") for run_id in reused_ids if run_id not in child_ids]
    for record in no_run_failures:
        rows.append({"run_id": None, "run_name": ",".join(record.get("overrides") or []), "status": "FAILED",
                     "source": "no run", "error": record.get("error")})
    counts = {
        "jobs_finished": sum(r["source"] == "child" and r["status"] == "FINISHED" for r in rows),
        "jobs_failed": sum(r["status"] == "FAILED" for r in rows),
        "jobs_skipped": sum(r["status"] == "skipped" for r in mine),
        "jobs_running": sum(r["source"] == "child" and r["status"] == "RUNNING" for r in rows),
        "jobs_killed": sum(r["source"] == "child" and r["status"] == "KILLED" for r in rows),
    }
    counts["jobs_total"] = sum(counts.values())
    scored = [r for r in rows if r["status"] == "FINISHED" and _finite(r.get("dev_f1")) is not None]
    best = max(scored, key=lambda r: r["dev_f1"]) if scored else None
    return {"parent_run_id": parent_id, "experiment_id": parent.info.experiment_id, "run_name": parent.info.run_name,
            "sweep_id": parent.data.tags.get(SWEEP_ID_TAG), "counts": counts, "reused_run_ids": reused_ids,
            "best": {k: best[k] for k in ("run_id", "run_name", "dev_f1", "test_f1")} if best else None, "runs": rows}


def _row(run, source: str) -> dict:
    row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status, "source": source}
    for key in SUMMARY_METRICS:
        row[key] = _finite(run.data.metrics.get(key))
    for tag in ("task", "augment"):
        row[tag] = run.data.tags.get(tag)
    if run.info.status == "FAILED":
        row["error"] = run.data.tags.get("error")
    return row


def summary_markdown(summary: dict) -> str:
    counts = summary["counts"]
    lines = [f"# {summary['run_name']}", "",
             (f"finished {counts['jobs_finished']}, skipped (identical finished run reused) {counts['jobs_skipped']}, "
              f"failed {counts['jobs_failed']}, killed {counts['jobs_killed']}, total {counts['jobs_total']}"), ""]
    if summary["best"]:
        best = summary["best"]
        reported = f", test_f1 {best['test_f1']:.4f}" if best.get("test_f1") is not None else ""
        lines += [f"best (selected on dev): `{best['run_name']}` ({best['run_id']}), dev_f1 {best['dev_f1']:.4f}"
                  f"{reported}", ""]
    header = ["run", "status", "source", *SUMMARY_METRICS, "run id"]
    rows = [[row.get("run_name") or "", row["status"], row["source"],
             *(f"{row[k]:.4f}" if row.get(k) is not None else "" for k in SUMMARY_METRICS), row.get("run_id") or ""]
            for row in summary["runs"]]
    lines.append(markdown_table(header, rows))
    failed = [r for r in summary["runs"] if r["status"] == "FAILED" and r.get("error")]
    if failed:
        lines += ["", "## errors", ""] + [f"- `{r['run_name']}`: {r['error'][:500]}" for r in failed]
    return "\n".join(lines) + "\n"


def finish_parent(client: MlflowClient, parent_id: str, records: list[dict], sweep_dir: Path,
                  aborted: bool = False, killed_reason: str | None = None) -> dict:
    """Log the summary on the parent and end it; returns the summary with the parent's final `status`.
    `killed_reason`: a stop signal stopped the sweep (it ends KILLED)."""
    summary = summarize_parent(client, parent_id, records)
    counts = summary["counts"]
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in counts.items()]
    tags = [RunTag(REUSED_TAG, ",".join(summary["reused_run_ids"])[:8000])] if summary["reused_run_ids"] else []
    if summary["best"]:
        metrics.append(Metric("best_dev_f1", summary["best"]["dev_f1"], now, 0))
        if summary["best"].get("test_f1") is not None:
            metrics.append(Metric("best_test_f1", summary["best"]["test_f1"], now, 0))
        tags += [RunTag("best_run_id", summary["best"]["run_id"]), RunTag("best_run_name", summary["best"]["run_name"])]
    if killed_reason:
        tags.append(RunTag(KILL_REASON_TAG, f"{killed_reason}; run the same command again to continue: finished "
                                            "jobs are skipped, killed ones resume from their last checkpoint"))
    elif aborted:
        tags.append(RunTag("relevance.sweep.error", "the sweep stopped before its end (an error or an interrupt): "
                                                    "see the console; finished jobs are kept and a rerun resumes"))
    client.log_batch(parent_id, metrics=metrics, tags=tags)
    client.log_dict(parent_id, summary, "sweep_summary.json")
    client.log_text(parent_id, summary_markdown(summary), "sweep_summary.md")
    for name in ("multirun.yaml", "optimization_results.yaml"):
        if (sweep_dir / name).exists():
            client.log_artifact(parent_id, str(sweep_dir / name), "sweep")
    all_failed = counts["jobs_total"] > 0 and counts["jobs_finished"] + counts["jobs_skipped"] == 0
    status = "KILLED" if killed_reason else "FAILED" if aborted or all_failed else "FINISHED"
    client.set_terminated(parent_id, status)
    log.info("sweep parent %s %s: %s; best %s", parent_id, status, counts, summary["best"])
    summary["status"] = status
    return summary
