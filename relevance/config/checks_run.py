"""Cross-field checks of how a run is scored and recorded: the evaluation group (`evaluation.*`:
threshold mode) and the tracking group (`tracking.*`: stop signals, heartbeat against staleness,
system metrics). Each function yields one message per problem, naming the key;
`relevance.config.validation` collects them.
"""

from __future__ import annotations

from omegaconf import DictConfig

from relevance.evaluation.threshold_modes import THRESHOLD_MODES


def evaluation_problems(evaluation: DictConfig):
    if evaluation.threshold not in THRESHOLD_MODES:
        yield f"evaluation.threshold={evaluation.threshold!r}: use one of {THRESHOLD_MODES}"
    if evaluation.min_rows_per_language < 1:
        yield f"evaluation.min_rows_per_language={evaluation.min_rows_per_language}: must be at least 1"


def tracking_problems(tracking: DictConfig):
    import signal

    unknown = [name for name in tracking.stop_signals if name not in signal.Signals.__members__]
    if unknown:
        yield f"tracking.stop_signals has {unknown}: use signal names such as SIGTERM, SIGUSR1"
    if not 0 < tracking.heartbeat_seconds < tracking.stale_after_seconds:
        yield (f"tracking.heartbeat_seconds={tracking.heartbeat_seconds}, stale_after_seconds="
               f"{tracking.stale_after_seconds}: the heartbeat must be positive and more frequent than "
               "the staleness limit (e.g. 30 and 300)")
    if tracking.system_metrics and not tracking.system_metrics_interval_s > 0:
        yield (f"tracking.system_metrics_interval_s={tracking.system_metrics_interval_s}: must be positive "
               "(e.g. 5), or set tracking.system_metrics=false")
