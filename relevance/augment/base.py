"""The augmentation strategy contract and its registry.

A strategy is a class registered under a name; `conf/augment/<name>.yaml`
(`# @package augment.<name>`) holds its settings, passed to the constructor as
keyword arguments. `augment=[original,easy_neg]` builds the training mix in
that order: each strategy sees the original table and the mix so far, and
returns the rows it adds, with a `source` column naming it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

STRATEGIES: dict[str, type] = {}


def register(name: str):
    def decorate(cls):
        if name in STRATEGIES and STRATEGIES[name] is not cls:
            raise ValueError(f"augmentation strategy {name!r} is registered twice")
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return decorate


def load_strategy_modules() -> None:
    """Import every module of relevance.augment so their @register lines run:
    a new strategy is one module + one YAML, no edit elsewhere."""
    import relevance.augment as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def known_strategies() -> list[str]:
    load_strategy_modules()
    return sorted(STRATEGIES)


def strategy_versions(names) -> dict[str, str]:
    """`{name: version}` of the chosen strategies: part of a run's identity, so a fixed
    strategy is never served from a stale finished run."""
    load_strategy_modules()
    return {name: str(STRATEGIES[name].version) for name in names if name in STRATEGIES}


@dataclass
class AugmentContext:
    """What a strategy may use besides its own settings."""

    task: str  # QC | QI
    original: Dataset  # the training rows as read
    train_languages: list[str]
    eval_languages: list[str]  # languages of the dev/test rows
    seed: int
    cache_dir: str
    extras: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """Base class. Override `generate` to add rows to the mix (return an empty table to
    add none), and/or `transform_inputs` for an input-side strategy (e.g. `pivot`), which
    rewrites every table the model reads: the training mix, dev, and files scored by
    `relevance.predict`. `counters` are logged to MLflow as `augment_<name>_<key>`
    (e.g. cache hits)."""

    name = "strategy"
    version = "1"  # bump when a change makes the strategy produce different rows: runs re-train on it

    def __init__(self, **settings: Any):
        self.settings = settings
        self.counters: dict[str, float] = {}

    def count(self, key: str, amount: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + amount

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        return context.original.select([])

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        return table

    @property
    def transforms_inputs(self) -> bool:
        return type(self).transform_inputs is not Strategy.transform_inputs
