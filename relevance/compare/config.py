"""The typed schema of `conf/compare.yaml`, and composing it outside a Hydra app (the notebook)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, open_dict

from relevance.compare.sample_size import PowerSettings
from relevance.config import ConfigError, PathsConfig, TrackingConfig, check_keys_against_schema

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@dataclass
class PowerConfig:
    """`power:`: what the power figures (`python -m relevance.compare.power`, report.json) are for."""

    seeds: list[int] = field(default_factory=lambda: [2, 3, 5, 10])  # N seeds a side: the MDE for each
    delta: Optional[float] = 0.01  # the smallest delta worth detecting: the seeds it needs; null: none
    level: float = 0.8  # statistical power
    max_seeds: int = 100  # more seeds than this count as "more than max_seeds"


@dataclass
class CompareConfig:
    sweep: Optional[str] = None  # a sweep parent run id, or latest; null: the latest sweep unless experiments is set
    # MLflow experiment names: compare all their runs instead of a sweep's (not `experiment`: that
    # name is train's config group, and Hydra would read `experiment=...` as choosing an option of it)
    experiments: list[str] = field(default_factory=list)
    baseline: Optional[str] = None  # a run id (or its prefix) or run name; null: each task's `original` mix
    mixes: list[str] = field(default_factory=list)  # only the runs of these augment mixes (`original+reorder`); []: all
    out: str = MISSING  # the report folder
    n_resamples: int = 1000  # paired bootstrap resamples
    seed: int = 0
    alpha: float = 0.05  # an arm is `significant` when its Holm-adjusted p is below alpha
    power: PowerConfig = field(default_factory=PowerConfig)
    log: bool = True  # attach the report to the sweep's parent runs under compare/
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def register_compare_schema() -> None:
    ConfigStore.instance().store(name="compare_schema", node=CompareConfig)


def validate_compare_config(cfg: DictConfig) -> None:
    """No key the schema lacks (`+sweeps=...`), and one selection only."""
    check_keys_against_schema(cfg, CompareConfig)
    if cfg.sweep and cfg.experiments:
        raise ConfigError("give sweep= or experiments=, not both")
    if not 0 < cfg.alpha < 1:
        raise ConfigError(f"alpha={cfg.alpha}: give a significance level between 0 and 1 (0.05)")
    if not 0 < cfg.power.level < 1:
        raise ConfigError(f"power.level={cfg.power.level}: give a power between 0 and 1 (0.8)")
    if any(n < 1 for n in cfg.power.seeds):
        raise ConfigError(f"power.seeds={list(cfg.power.seeds)}: every number of seeds must be at least 1")
    if cfg.power.delta is not None and cfg.power.delta <= 0:
        raise ConfigError(f"power.delta={cfg.power.delta}: give the smallest delta worth detecting (> 0), or null")


def power_settings(cfg: DictConfig) -> PowerSettings:
    """`cfg.power` as the `PowerSettings` the comparison computes its power figures for."""
    return PowerSettings(tuple(int(n) for n in cfg.power.seeds), cfg.power.delta, float(cfg.power.level),
                         int(cfg.power.max_seeds))


def compose_compare_config(overrides: Iterable[str] = ()) -> DictConfig:
    """`conf/compare.yaml` with command-line style overrides, as `python -m relevance.compare`
    would see it, for callers that are not a Hydra app (the notebook, tests). The Hydra node is
    registered so `paths.root` resolves from the current directory like on the command line."""
    register_compare_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="compare", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    validate_compare_config(cfg)
    return cfg
