"""Build the training mix from the chosen strategies, with per-strategy stats."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
from datasets import Dataset, concatenate_datasets
from omegaconf import DictConfig, OmegaConf

from relevance.augment.base import AugmentContext, RunReader, Strategy, base_rows, strategy_class, strategy_options
from relevance.data.columns import column_values

log = logging.getLogger(__name__)


@dataclass
class StrategyStats:
    name: str
    rows_added: int
    seconds: float
    by_language_label: dict[str, int]  # rows added (or, for a filter, rows dropped or relabelled) by language|label
    counters: dict[str, float]
    artifacts: dict = field(default_factory=dict)  # file name -> JSON-able value, logged under augment/<name>/


@dataclass
class MixResult:
    table: Dataset
    stats: list[StrategyStats]
    input_strategies: list  # strategies whose transform_inputs applies to dev and predict inputs too
    rows_trained_on: Dataset | None = None  # the mix before input strategies rewrote its text (its lineage)

    def __post_init__(self):
        if self.rows_trained_on is None:
            self.rows_trained_on = self.table

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        return apply_input_strategies(self.input_strategies, table, context)

    def composition(self) -> pd.DataFrame:
        """Rows per source × language × label: the mix as a table."""
        frame = self.table.select_columns(["source", "language", "label"]).to_pandas()
        return frame.groupby(["source", "language", "label"]).size().reset_index(name="rows")


class MixError(ValueError):
    """The training mix the strategies built cannot train a useful model: names the strategy and what to change."""


@dataclass(frozen=True)
class MixShape:
    """What the checks read of the mix after one strategy: its rows, labels and languages."""

    rows: int
    labels: frozenset
    languages: frozenset

    @classmethod
    def of(cls, mix: Dataset) -> "MixShape":
        """Read with Arrow (distinct values of two columns), not row by row: the mix has ~0.8M rows at
        competition scale, and `mix["label"]` formats one row at a time when iterated (datasets >= 4)."""
        if not len(mix):
            return cls(0, frozenset(), frozenset())
        return cls(len(mix), *(frozenset(values) for values in distinct_values(mix, "label", "language")))


def distinct_values(table: Dataset, *names: str) -> list[list]:
    """The distinct values of each column `names` of `table` (as Python values, in no particular order)."""
    arrow = table.select_columns(list(names)).with_format("arrow")[:]  # the rows as they are, selections applied
    return [pc.unique(arrow.column(name)).to_pylist() for name in names]


@dataclass(frozen=True)
class MixProblem:
    """What is wrong with a mix: `kind` tells two problems apart (the same kind after two strategies is one
    problem, whatever the row counts), `message` says it."""

    kind: tuple
    message: str = field(compare=False)


def mix_problem(shape: MixShape, context: AugmentContext) -> MixProblem | None:
    """Why a mix of this shape cannot train a useful model, or None. Checked like the files are (one label,
    no rows), plus a language lost: the training rows had it, dev/test rows have it, the mix has none (a
    language only dev/test has is the normal unseen case, and stays allowed)."""
    if not shape.rows:
        return MixProblem(("empty",), "no rows")
    if len(shape.labels) < 2:
        (label,) = shape.labels
        return MixProblem(("one label", label),
                          f"label {label} only ({shape.rows} rows): a classifier can't learn from one label")
    lost = sorted((set(context.train_languages) & set(context.eval_languages)) - shape.languages)
    if lost:
        return MixProblem(("lost languages", tuple(lost)),
                          f"no rows in {', '.join(lost)}, which the training rows and dev/test rows have: those "
                          "languages would be scored as unseen")
    return None


def strategy_advice(name: str) -> str:
    """What to change when strategy `name` spoiled the mix: its options, by key, or leaving it out."""
    keys = [f"augment.{name}.{f.name}" for f in dataclasses.fields(strategy_class(name).options_type)]
    change = f"change {', '.join(keys)} or " if keys else ""
    return f"{change}remove {name} from augment"


def check_training_mix(shapes: list[tuple[str, MixShape]], context: AugmentContext) -> None:
    """Raise MixError when the final mix has a problem, naming the strategy from which it held to the end
    (the first after which it held without a later strategy clearing it) and what to change."""
    if not shapes:
        raise MixError("augment=[]: no strategy builds the training mix: use at least augment=[original]")
    problem = mix_problem(shapes[-1][1], context)
    if problem is None:
        return
    culprit = shapes[-1][0]
    for name, shape in reversed(shapes):
        if mix_problem(shape, context) != problem:
            break
        culprit = name
    chosen = ",".join(name for name, _ in shapes)
    raise MixError(f"augment=[{chosen}]: after {culprit}, the training mix has {problem.message}; "
                   f"{strategy_advice(culprit)}")


def build_strategy(name: str, settings: DictConfig | dict | None = None) -> Strategy:
    """The strategy `name` with its typed options filled from `settings` (see `strategy_options`)."""
    return strategy_class(name)(strategy_options(name, settings))


def augment_context(cfg: DictConfig, original: Dataset, train_languages: list[str],
                    eval_languages: list[str], runs: RunReader | None = None) -> AugmentContext:
    """The context a run's strategies see, the same in training and in `relevance.predict`. Their seed is
    `data.seed`, not the model's `seed`: runs that differ only by `seed` train on the same mix. `runs`: what
    strategies may read of other runs (the training pipeline hands in the tracking side's reader)."""
    return AugmentContext(
        task=cfg.task.name, original=original, train_languages=train_languages, eval_languages=eval_languages,
        seed=OmegaConf.select(cfg, "data.seed", default=cfg.seed),  # older runs' configs: the run's seed
        cache_dir=str(Path(cfg.paths.cache_dir) / "augment"),
        related_by=OmegaConf.select(cfg, "task.negatives.related_by", default=None),  # None in older runs' configs
        never_negative=OmegaConf.select(cfg, "task.negatives.never_negative", default=None),
        runs=runs,
        translator=OmegaConf.select(cfg, "translator", default=None) or legacy_translator(cfg.augment),
        models_dir=str(Path(cfg.paths.cache_dir) / "models"),
    )


# Runs logged before the `translator` group kept NLLB's settings in augment.translated / augment.pivot.
LEGACY_TRANSLATOR_KEYS = ("model", "revision", "batch_size", "num_beams", "max_new_tokens", "device")


# ... and used every non-empty translation: scored again, its inputs must be rewritten as they were then.
LEGACY_CHECKS = {"language": False, "reject_copies": False, "min_length_ratio": 0.0, "max_length_ratio": 1e9}


def legacy_translator(augment_cfg: DictConfig) -> dict | None:
    """An older run's translator, read from its strategies' settings (None: the NLLB default)."""
    for name in ("pivot", "translated"):
        settings = augment_cfg.get(name) if augment_cfg is not None else None
        if settings is not None and "model" in settings:
            return {**{key: settings[key] for key in LEGACY_TRANSLATOR_KEYS if key in settings},
                    "checks": dict(LEGACY_CHECKS)}
    return None


def input_strategies(augment_cfg: DictConfig) -> list[Strategy]:
    """The chosen strategies that rewrite model inputs, for scoring new files the way the run was trained
    (only those are built: the other strategies' settings do not matter there). An older run's
    translator settings in its strategies' settings are left to `legacy_translator`."""
    return [build_strategy(name, _without_legacy_keys(settings)) for name, settings in augment_cfg.items()
            if strategy_class(name).rewrites_inputs()]


def _without_legacy_keys(settings: DictConfig | dict | None) -> dict | None:
    if settings is None:
        return None
    values = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else dict(settings)
    return {key: value for key, value in values.items() if key not in LEGACY_TRANSLATOR_KEYS}


def apply_input_strategies(strategies: list, table: Dataset, context: AugmentContext) -> Dataset:
    for strategy in strategies:
        table = strategy.transform_inputs(table, context)
    return table


def build_training_mix(augment_cfg: DictConfig, context: AugmentContext) -> MixResult:
    """The mix the chosen strategies build, in order, checked before any model loads (`check_training_mix`)."""
    parts: list[Dataset] = []
    stats: list[StrategyStats] = []
    input_side = []
    shapes: list[tuple[str, MixShape]] = []  # the mix after each strategy
    mix = context.original.select([])
    for name, settings in augment_cfg.items():
        strategy = build_strategy(name, settings)
        started = time.perf_counter()
        if strategy.rewrites_mix():  # a filter: the mix so far (the original table when first), rewritten
            before = base_rows(mix, context)
            mix = strategy.rewrite_mix(before, context)
            parts = [mix]
            rows_added, changed = len(mix) - len(before), strategy.changed_rows
        else:
            added = strategy.generate(mix, context)
            if len(added):
                added = added.cast(context.original.features) if added.features != context.original.features else added
                parts.append(added)
                mix = concatenate_datasets(parts)
            rows_added, changed = len(added), zip(*column_values(added, "language", "label"))
        if strategy.rewrites_inputs():
            input_side.append(strategy)
        seconds = time.perf_counter() - started
        counts = Counter(f"{lang}|{label}" for lang, label in changed)
        stats.append(StrategyStats(name, rows_added, seconds, dict(sorted(counts.items())), strategy.counters,
                                   strategy.artifacts))
        log.info("augment %s: %+d rows in %.1fs %s", name, rows_added, seconds, strategy.counters or "")
        shapes.append((name, MixShape.of(mix)))
    check_training_mix(shapes, context)
    result = MixResult(mix, stats, input_side)
    if input_side:
        started = time.perf_counter()
        result.table = result.transform_inputs(mix, context)
        log.info("input strategies %s on the training mix in %.1fs",
                 [s.name for s in input_side], time.perf_counter() - started)
    return result
