"""Build the training mix from the chosen strategies, with per-strategy stats."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import pandas as pd
from datasets import Dataset, concatenate_datasets
from omegaconf import DictConfig, OmegaConf

from relevance.augment.base import STRATEGIES, AugmentContext, load_strategy_modules

log = logging.getLogger(__name__)


@dataclass
class StrategyStats:
    name: str
    rows_added: int
    seconds: float
    by_language_label: dict[str, int]


@dataclass
class MixResult:
    table: Dataset
    stats: list[StrategyStats]

    def composition(self) -> pd.DataFrame:
        """Rows per source × language × label: the mix as a table."""
        frame = self.table.select_columns(["source", "language", "label"]).to_pandas()
        return frame.groupby(["source", "language", "label"]).size().reset_index(name="rows")


def build_strategy(name: str, settings: DictConfig | dict | None):
    load_strategy_modules()
    if name not in STRATEGIES:
        raise KeyError(f"augment={name!r} is not a registered strategy; known: {sorted(STRATEGIES)}")
    kwargs = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else dict(settings or {})
    return STRATEGIES[name](**kwargs)


def build_training_mix(augment_cfg: DictConfig, context: AugmentContext) -> MixResult:
    parts: list[Dataset] = []
    stats: list[StrategyStats] = []
    mix = context.original.select([])
    for name, settings in augment_cfg.items():
        strategy = build_strategy(name, settings)
        started = time.perf_counter()
        added = strategy.generate(mix, context)
        seconds = time.perf_counter() - started
        if len(added):
            added = added.cast(context.original.features) if added.features != context.original.features else added
            parts.append(added)
            mix = concatenate_datasets(parts)
        counts = Counter(f"{lang}|{label}" for lang, label in zip(added["language"], added["label"]))
        stats.append(StrategyStats(name, len(added), seconds, dict(sorted(counts.items()))))
        log.info("augment %s: %d rows in %.1fs", name, len(added), seconds)
    if not len(mix):
        raise ValueError(f"the augmentation mix {list(augment_cfg.keys())} produced no training rows")
    return MixResult(mix, stats)
