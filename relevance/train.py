"""`python -m relevance.train [overrides]`: compose → validate → train → the metric a sweeper optimises.

What a multirun job does around that (reuse an identical finished run, survive a failure,
record its outcome for the sweep's parent run) is relevance.tracking.job's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from relevance.config import register_configs, validate_config
from relevance.config_choices import exit_on_unknown_choices
from relevance.runtime import quiet_third_party_logs
from relevance.tracking.fold_reader import TrackedFoldRuns
from relevance.tracking.job import run_job

register_configs()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    quiet_third_party_logs()
    return run_job(cfg, validate=validate_run, train=train)


def validate_run(cfg: DictConfig) -> None:
    """The config (`validate_config`), then the runs it builds on, before anything loads: the adapter
    `model.init_adapter` starts from, the runs a strategy reads (`augment.noise_filter.oof_from`)."""
    from relevance.artifacts import INIT_ADAPTER_KEY, check_init_adapter
    from relevance.augment.mix import build_strategy

    validate_config(cfg)
    runs = TrackedFoldRuns(str(cfg.tracking.tracking_uri))
    sources: dict[str, list[str]] = {}
    if cfg.model.init_adapter:
        check_init_adapter(cfg)
        sources[INIT_ADAPTER_KEY] = [str(cfg.model.init_adapter)]
    for name, settings in cfg.augment.items():
        sources.update(build_strategy(name, settings).source_runs(runs))  # each checked as it is listed
    if sources and not cfg.evaluation.allow_seen_rows:
        check_sources_never_saw_evaluation_rows(cfg, sources)


def check_sources_never_saw_evaluation_rows(cfg: DictConfig, sources: dict[str, list[str]]) -> None:
    """The runs this run builds on never trained on its dev or test rows (relevance.tracking.lineage_checks)."""
    from relevance.data.lineage import RunLineage
    from relevance.data.loading import load_splits
    from relevance.tracking.lineage_checks import check_sources
    from relevance.tracking.store import tracking_client

    splits = load_splits(cfg.data, cfg.task)
    check_sources(tracking_client(str(cfg.tracking.tracking_uri)), sources,
                  RunLineage.of(dev=splits.dev, test=splits.test))


def train(cfg: DictConfig):
    """One run (relevance.pipeline) in this Hydra job's output folder, named from its overrides."""
    from relevance.pipeline import RunContext, run_training  # the training stack: only when a job trains

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    # Hydra escapes interpolations in a sweep job's overrides (`$\{task.key\}`): name runs as typed.
    overrides = [o.replace("$\\{", "${").replace("\\}", "}") for o in hydra_cfg.overrides.task]
    if hydra_cfg.mode == RunMode.MULTIRUN:  # the parent run's name carries the experiment
        overrides = [o for o in overrides if not o.startswith("experiment=")]
    context = RunContext(output_dir=output_dir, overrides=overrides,
                         hydra_dir=output_dir / hydra_cfg.output_subdir if hydra_cfg.output_subdir else None)
    result = run_training(cfg, context)
    if hydra_cfg.mode != RunMode.MULTIRUN:  # a sweep's jobs: one summary when the sweep ends (sweep_callback)
        print_run_summary(cfg, result.run_id)
    return result


def print_run_summary(cfg: DictConfig, run_id: str) -> None:
    """The run's name and id, key metrics beside predicting every row relevant, its UI links, the next
    command (relevance.tracking.runs.run_summary). A summary that cannot be built never fails the run."""
    from relevance.tracking.runs import run_summary
    from relevance.tracking.store import tracking_client

    try:
        text = run_summary(tracking_client(str(cfg.tracking.tracking_uri)), run_id)
    except Exception as exc:  # noqa: BLE001 - the run is logged; only its summary is missing
        logging.getLogger(__name__).warning("run %s finished; its summary could not be built: %s", run_id, exc)
        return
    print("\n" + text, flush=True)


if __name__ == "__main__":
    exit_on_unknown_choices()  # `augment=[original,bogus]`: the known options, not Hydra's search path
    main()
