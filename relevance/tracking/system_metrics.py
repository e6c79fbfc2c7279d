"""MLflow's system metrics for one training run: CPU and memory use (and, with `nvidia-ml-py` on a
machine with an NVIDIA GPU, each GPU's utilisation, memory and power), logged as `system/*` metrics
every `tracking.system_metrics_interval_s` seconds; `tracking.system_metrics=false` turns them off.

The runs are created with the client (`MlflowClient.create_run`), not `mlflow.start_run`, so MLflow's
own switch (`log_system_metrics=True`, `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`) never applies to them:
this module drives MLflow's `SystemMetricsMonitor` itself. MLflow's environment variables still win
where MLflow reads them: `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` over the interval,
`MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING`, `MLFLOW_SYSTEM_METRICS_NODE_ID`.

MLflow's monitor logs a point only after a full interval and drops the samples of an unfinished one;
a run shorter than the interval would have none. `stop()` therefore logs what the last interval
collected plus one sample taken at the end, so every run has at least one point, its last state.
A continued (resumed) run goes on from its last logged step. Nothing here can fail a run: a monitor
that cannot start or stop is logged and left out.
"""

from __future__ import annotations

import importlib.util
import logging

from omegaconf import DictConfig

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0  # tracking.system_metrics_interval_s: several points even in a minute-long run
METRIC_PREFIX = "system/"


def nvidia_gpu_present() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available()) and torch.version.cuda is not None
    except Exception:  # noqa: BLE001 - a broken torch install is not this module's concern
        return False


class SystemMetrics:
    """Start with the run (`start(run_id)`), stop before it ends (`stop()`)."""

    def __init__(self, tracking_cfg: DictConfig):
        self.enabled = bool(tracking_cfg.get("system_metrics", True))
        self.interval_s = float(tracking_cfg.get("system_metrics_interval_s") or DEFAULT_INTERVAL_S)
        self.tracking_uri = str(tracking_cfg.tracking_uri)
        self._monitor = None

    def start(self, run_id: str, resumed: bool = False) -> None:
        if not self.enabled:
            return
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            if nvidia_gpu_present() and importlib.util.find_spec("pynvml") is None:
                log.warning("no GPU system metrics: nvidia-ml-py is not installed (pip install nvidia-ml-py); "
                            "CPU and memory are still logged")
            self._monitor = SystemMetricsMonitor(run_id, sampling_interval=self.interval_s,
                                                 resume_logging=resumed, tracking_uri=self.tracking_uri)
            self._monitor.start()
        except Exception as error:  # noqa: BLE001 - metrics about the machine never stop a run
            log.warning("run %s: system metrics not logged: %s: %s", run_id, type(error).__name__, error)
            self._monitor = None

    def stop(self) -> None:
        """Stop the sampling thread, then log the samples of the unfinished interval and one taken now."""
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        try:
            monitor.finish()
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as error:  # noqa: BLE001 - the run's own outcome must not depend on this
            log.warning("run %s: the last system metrics were not logged: %s: %s", monitor._run_id,
                        type(error).__name__, error)
