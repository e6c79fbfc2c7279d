"""The jobs of a sweep, as `python -m relevance.train -m ...` would launch them: the experiment's
`hydra.sweeper.params` and the command line's own overrides expanded by Hydra's basic sweeper (a
key on the command line replaces the experiment's sweep of it, as in a real multirun)."""

from __future__ import annotations

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_jobs(hydra_cfg: DictConfig, overrides: list[str]) -> list[list[str]]:
    """Each job's overrides (the command line's first, then the swept keys'), in launch order."""
    sweeper = hydra_cfg.sweeper
    target = OmegaConf.select(sweeper, "_target_", default=BASIC_SWEEPER)
    if target != BASIC_SWEEPER:
        raise ValueError(f"hydra.sweeper is {target}: grid_cost costs the basic sweeper's grids; choose an "
                         "experiment that sweeps a grid (hydra.sweeper.params), e.g. experiment=paper_ablation_gpu")
    params = OmegaConf.select(sweeper, "params", default=None) or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    parsed = OverridesParser.create().parse_overrides(arguments)
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return jobs


def swept_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose value differs between jobs (what names a job in a table)."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]
