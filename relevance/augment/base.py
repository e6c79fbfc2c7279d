"""The augmentation strategy contract, its registry and the strategies' typed options.

A strategy is a class registered under a name with a dataclass of options
(`@register("easy_neg", options=EasyNegOptions)`), in the same `Registry` as the other plug-ins
(relevance/plugins.py). `register_strategy_schemas()` stores
each options dataclass in Hydra's ConfigStore as `augment_schema/<name>`, and
`conf/augment/<name>.yaml` (`# @package augment.<name>`) names it first in its defaults
list, so a typo'd key or a wrong type fails at compose time. The constructor gets the
options as a dataclass instance (`strategy_options` fills one from a YAML node or a dict).
`augment=[original,easy_neg]` builds the training mix in that order: each strategy sees
the original table and the mix so far, and returns the rows it adds, with a `source`
column naming it. A filtering strategy (`noise_filter`) rewrites the mix so far instead
(`rewrite_mix`: drops or relabels rows).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from datasets import Dataset
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from relevance.plugins import Registry

STRATEGY_REGISTRY = Registry("augmentation strategy", "relevance.augment")
STRATEGIES: dict[str, type[Strategy]] = STRATEGY_REGISTRY.classes  # name -> class, once the modules are loaded
load_strategy_modules = STRATEGY_REGISTRY.load  # imports every module of relevance.augment: each registers
SCHEMA_GROUP = "augment_schema"  # conf/augment/<name>.yaml: `defaults: [/augment_schema/<name>@_here_]`


@dataclass
class NoOptions:
    """The options of a strategy that has none (`original`)."""


def register(name: str, options: type = NoOptions):
    """Register a Strategy subclass under `name`, with `options` (a dataclass) as the schema of
    `conf/augment/<name>.yaml`: a new strategy is one module + one YAML, no edit elsewhere."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"augmentation strategy {name!r}: options must be a dataclass, got {options!r}")
    return STRATEGY_REGISTRY.register(name, name=name, options_type=options)


def known_strategies() -> list[str]:
    return list(STRATEGY_REGISTRY.names())


def strategy_class(name: str) -> type[Strategy]:
    return STRATEGY_REGISTRY.get(name, "augment")


def strategy_versions(names) -> dict[str, str]:
    """`{name: version}` of the chosen strategies: part of a run's identity, so a fixed
    strategy is never served from a stale finished run."""
    load_strategy_modules()
    return {name: str(STRATEGIES[name].version) for name in names if name in STRATEGIES}


def register_strategy_schemas() -> None:
    """Store every strategy's options dataclass in Hydra's ConfigStore as `augment_schema/<name>`."""
    store = ConfigStore.instance()
    for name in known_strategies():
        store.store(group=SCHEMA_GROUP, name=name, node=STRATEGIES[name].options_type)


class StrategyOptionsError(ValueError):
    """A strategy's settings do not fit its options: the message starts with `augment.<name>`."""


def strategy_options(name: str, settings: DictConfig | dict | None = None) -> Any:
    """`settings` (a composed YAML node or a dict) as the strategy's options dataclass. An unknown
    key, a wrong type or a value the options refuse raises StrategyOptionsError naming the strategy."""
    options_type = strategy_class(name).options_type
    values = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else settings
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(options_type), values or {}))
    except (OmegaConfBaseException, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0]
        if isinstance(error, ConfigKeyError):
            reason += f"; its settings: {', '.join(f.name for f in dataclasses.fields(options_type)) or 'none'}"
        raise StrategyOptionsError(f"augment.{name}: {reason}") from error


class RunReader(Protocol):
    """What a strategy may read of other runs (`noise_filter`: fold runs' out-of-fold scores). The
    tracking side implements it (relevance/tracking/fold_reader.py) and the run hands it in: strategies
    never open the tracking store themselves. Each method raises ValueError naming `key` when the runs
    cannot serve."""

    def fold_run_ids(self, reference: str, key: str, allow_partial: bool, allow_key: str) -> list[str]:
        """The fold runs `reference` names (a fold run, or the sweep parent of the folds), by fold."""
        ...

    def pooled_out_of_fold(self, reference: str, key: str, allow_partial: bool, allow_key: str) -> Any:
        """Their pooled out-of-fold rows (a DataFrame: id, language, label, probability, fold)."""
        ...


@dataclass
class AugmentContext:
    """What a strategy may use besides its own options."""

    task: str  # QC | QI
    original: Dataset  # the training rows as read
    train_languages: list[str]
    eval_languages: list[str]  # languages of the dev/test rows
    seed: int
    cache_dir: str
    related_by: str | None  # task.negatives.related_by: what makes two targets related (augment/negatives.py)
    never_negative: str | None = None  # task.negatives.never_negative: candidates a known positive protects
    runs: RunReader | None = None  # other runs, for strategies that read them (noise_filter); None: none to read
    translator: Any = None  # the run's `translator` config (conf/translator/); None: NLLB-600M, older runs' default
    models_dir: str | None = None  # where GGUF conversions and tiny models are cached (translator sources)
    extras: dict[str, Any] = field(default_factory=dict)


def base_rows(mix: Dataset, context: AugmentContext) -> Dataset:
    """The rows a strategy builds on: the mix so far, or the original table when it comes first."""
    return mix if len(mix) else context.original


class Strategy:
    """Base class. Override `generate` to add rows to the mix (return an empty table to
    add none), `rewrite_mix` to change the mix so far (drop or relabel rows), and/or
    `transform_inputs` for an input-side strategy (e.g. `pivot`), which
    rewrites every table the model reads: the training mix, dev, and files scored by
    `relevance.predict`. `self.options` holds the strategy's options (its dataclass);
    `counters` are logged to MLflow as `augment_<name>_<key>` (e.g. cache hits), `artifacts`
    (file name -> JSON-able value) as `augment/<name>/<file name>`. `source_runs` checks,
    before anything loads, the other runs the options name (a strategy that reads none has
    nothing to check)."""

    name = "strategy"
    version = "1"  # bump when a change makes the strategy produce different rows: runs re-train on it
    options_type: type = NoOptions

    def __init__(self, options: Any = None):
        self.options = self.options_type() if options is None else options
        self.counters: dict[str, float] = {}
        self.artifacts: dict[str, Any] = {}
        self.changed_rows: list[tuple[str, int]] = []  # a filter's dropped or relabelled rows: (language, label)

    @property
    def settings(self) -> dict[str, Any]:
        """The options as a plain dict (for cache keys and logs)."""
        return dataclasses.asdict(self.options)

    def count(self, key: str, amount: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + amount

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        return context.original.select([])

    def rewrite_mix(self, mix: Dataset, context: AugmentContext) -> Dataset:
        """The whole mix after this strategy (a filter drops or relabels rows of `mix`, the mix so far or
        the original table when it comes first)."""
        return mix

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        return table

    def source_runs(self, runs: RunReader) -> dict[str, list[str]]:
        """`{option key: [run ids]}`: the runs whose models decide this strategy's rows, checked before
        anything loads: raise ValueError, naming the option, when one cannot serve; the run then checks
        that none of them trained on its dev or test rows (relevance.tracking.lineage_checks)."""
        return {}

    @classmethod
    def rewrites_mix(cls) -> bool:
        """Whether it is a filtering strategy (overrides `rewrite_mix`)."""
        return cls.rewrite_mix is not Strategy.rewrite_mix

    @classmethod
    def rewrites_inputs(cls) -> bool:
        """Whether it is an input-side strategy (overrides `transform_inputs`)."""
        return cls.transform_inputs is not Strategy.transform_inputs
