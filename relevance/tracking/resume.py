"""Resume a sweep: a job whose run identity already has a FINISHED run is not trained again.

Identity is the `relevance.run_identity` tag every run carries (config, data content,
code digest, strategy versions, numerics: relevance.tracking.identity), looked up in the job's own
experiment. FAILED, KILLED or still RUNNING runs never count, so re-running a sweep
retries exactly the jobs that did not finish, and trains again those whose data or code
changed. (A KILLED run is continued rather than trained again: relevance.tracking.training_run.)
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

from relevance.tracking.store import tracking_client
from relevance.tracking.tags import RUN_IDENTITY_TAG


def find_finished_run(tracking_cfg: DictConfig, identity: str, tag: str = RUN_IDENTITY_TAG) -> str | None:
    """The newest FINISHED run of `tracking_cfg.experiment_name` whose `tag` (the run identity by
    default) is `identity`, or None."""
    client = tracking_client(tracking_cfg.tracking_uri)
    experiment = client.get_experiment_by_name(tracking_cfg.experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        f"attributes.status = 'FINISHED' and tags.`{tag}` = '{identity}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def finished_run_metric(tracking_cfg: DictConfig, run_id: str, metric: str) -> float:
    """The run's logged value of `metric` (NaN when it never logged it)."""
    value = tracking_client(tracking_cfg.tracking_uri).get_run(run_id).data.metrics.get(metric)
    return float(value) if value is not None else math.nan
