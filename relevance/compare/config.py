"""The typed schema of `conf/compare.yaml`, and composing it outside a Hydra app (the notebook)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, open_dict

from relevance.config import ConfigError, PathsConfig, TrackingConfig, check_keys_against_schema

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@dataclass
class CompareConfig:
    sweep: Optional[str] = None  # a sweep parent run id, or latest; null: the latest sweep unless experiments is set
    # MLflow experiment names: compare all their runs instead of a sweep's (not `experiment`: that
    # name is train's config group, and Hydra would read `experiment=...` as choosing an option of it)
    experiments: list[str] = field(default_factory=list)
    baseline: Optional[str] = None  # a run id (or its prefix) or run name; null: each task's `original` mix
    out: str = MISSING  # the report folder
    n_resamples: int = 1000  # paired bootstrap resamples
    seed: int = 0
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
