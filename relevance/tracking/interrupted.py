"""Runs whose process stopped before ending them: found, ended KILLED, picked to continue.

A training run ends FINISHED, FAILED (an error) or KILLED (a stop signal, with the reason:
relevance.runtime, relevance.tracking.mlflow_run). A run whose process vanished (kill -9,
the out-of-memory killer, a lost node) cannot end itself and stays RUNNING: whoever next
looks at the runs of its identity (a re-run by hand, a sweep job, SLURM's requeue) ends it
KILLED, with why in `relevance.kill_reason` ("process vanished: last heartbeat …",
relevance.tracking.heartbeat). So does a new sweep for the RUNNING parents of an earlier
sweep with the same definition.

A run that failed is never continued. A vanished RUNNING run that carries an `error` tag
failed, and its error handler could not end it (a full disk: the tag written, the FAILED status
not): it is ended FAILED, its error kept, with who ended it in `relevance.ended_by`. Without
that tag a vanished run counts as KILLED (kill -9 is a kill), and is continued.

The newest run of an identity, when KILLED and not failed (a KILLED run with an `error` tag is
half-ended: ended KILLED by earlier code although it had failed), is the one a re-run continues
(relevance.tracking.training_run); a RUNNING run that still lives is left alone.

A run whose training finished but whose results the store could not take (busy, full) left them in a
pending record in its output folder (relevance.tracking.pending): the runs of its identity are looked at
only after that record is logged, so the run ends FINISHED with its model, never KILLED as vanished.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.tracking.heartbeat import last_heartbeat, vanished_reason
from relevance.tracking.mlflow_run import search_all
from relevance.tracking.tags import ERROR_TAG  # set on a failure, before FAILED
from relevance.tracking.pending import log_pending_of_runs
from relevance.tracking.tags import ENDED_BY_TAG, KILL_REASON_TAG, RUN_IDENTITY_TAG, SWEEP_TAG

log = logging.getLogger(__name__)



def failed(run: Run) -> bool:
    """Whether the run failed, whatever its status says: its error handler tagged it."""
    return ERROR_TAG in run.data.tags


@dataclass
class IdentityRuns:
    """The runs of one identity in one experiment, after ending the vanished ones."""

    runs: list[Run]  # newest first

    @property
    def killed(self) -> Run | None:
        """The run to continue: the newest run, when it is KILLED and did not fail."""
        newest = self.runs[0] if self.runs else None
        return newest if newest is not None and newest.info.status == "KILLED" and not failed(newest) else None

    @property
    def live(self) -> Run | None:
        """A RUNNING run whose process may still live (another process trains this identity now)."""
        return next((run for run in self.runs if run.info.status == "RUNNING"), None)


def end_killed(client: MlflowClient, run: Run, reason: str) -> Run:
    """End a RUNNING run KILLED with `reason`, at its last heartbeat; the run as it is now."""
    client.set_tag(run.info.run_id, KILL_REASON_TAG, reason[:5000])
    client.set_terminated(run.info.run_id, "KILLED", end_time=int(last_heartbeat(run) * 1000))
    log.warning("run %s (%s) was RUNNING but its %s: ended KILLED", run.info.run_id, run.info.run_name, reason)
    return client.get_run(run.info.run_id)


def end_failed(client: MlflowClient, run: Run, reason: str) -> Run:
    """End FAILED, at its last heartbeat, a RUNNING run that failed (its `error` tag) but whose process
    vanished before it could say so; the run as it is now, its error kept."""
    client.set_tag(run.info.run_id, ENDED_BY_TAG,
                   f"ended FAILED by a later run: it had failed, then its {reason}"[:5000])
    client.set_terminated(run.info.run_id, "FAILED", end_time=int(last_heartbeat(run) * 1000))
    log.warning("run %s (%s) failed (%s) but was left RUNNING: ended FAILED, never continued", run.info.run_id,
                run.info.run_name, run.data.tags[ERROR_TAG][:200])
    return client.get_run(run.info.run_id)


def end_vanished(client: MlflowClient, runs: list[Run], stale_after_seconds: float) -> list[Run]:
    """`runs`, each RUNNING one whose process vanished ended: FAILED when it had failed, else KILLED."""
    settled = []
    for run in runs:
        reason = vanished_reason(run, stale_after_seconds) if run.info.status == "RUNNING" else None
        if reason is None:
            settled.append(run)
        else:
            settled.append(end_failed(client, run, reason) if failed(run) else end_killed(client, run, reason))
    return settled


def identity_runs(client: MlflowClient, tracking_cfg, identity: str) -> IdentityRuns:
    """The runs of `identity` in `tracking_cfg.experiment_name`, newest first, the vanished ones ended."""
    experiment = client.get_experiment_by_name(tracking_cfg.experiment_name)
    if experiment is None:
        return IdentityRuns([])
    runs = search_all(client, [experiment.experiment_id], f"tags.`{RUN_IDENTITY_TAG}` = '{identity}'",
                      order_by=["attributes.start_time DESC"])
    runs = log_pending_of_runs(client, runs)  # a finished training the store could not take: logged now
    return IdentityRuns(end_vanished(client, runs, float(tracking_cfg.stale_after_seconds)))


def end_vanished_sweep_parents(client: MlflowClient, definition: dict, stale_after_seconds: float) -> list[str]:
    """End KILLED the RUNNING parents of earlier sweeps with this definition whose launcher
    vanished; their ids. Ran by a new sweep before it opens its own parent."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    running = search_all(client, experiments, f"tags.`{SWEEP_TAG}` = 'true' and attributes.status = 'RUNNING'")
    same = [run for run in running if _definition(run) == definition]
    return [run.info.run_id for run in end_vanished(client, same, stale_after_seconds)
            if run.info.status == "KILLED"]


def _definition(parent: Run) -> dict | None:
    try:
        return json.loads(parent.data.tags.get("relevance.sweep.definition", ""))
    except json.JSONDecodeError:
        return None
