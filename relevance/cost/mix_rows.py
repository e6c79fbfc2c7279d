"""The rows a training mix will have, estimated from each strategy's own options and the data's
counts, without running any strategy (no translator, no embedder, no model: seconds at 300k rows).

The mix is built as `augment.mix.build_training_mix` builds it, on counts (`MixShape`: rows,
positives, queries with a positive, rows per language) instead of rows. Each strategy sees the
mix so far, or the original rows when it comes first (`augment.base.base_rows`):

* a strategy that adds rows has an estimator in `ADDED_ROWS`, from its own options:
  - `original`: the training rows;
  - `translated`: per target language (its `target_languages`, else the dev/test languages training
    lacks), every row of another language, at most `max_rows_per_language`, as if every translation
    passed its checks (an upper bound: a real run drops the failures);
  - `easy_neg`, `hard_neg`: `per_query` negatives per query with a positive (`easy_neg.ratio`: that
    many per positive row; `hard_neg.max_queries` caps the queries), as if every query found its
    candidates (an upper bound);
  - `balance`: the rows `balance.rows_needed` asks for; `query_noise`: `share` of the positives;
* a filter (`noise_filter`, `label_noise`, `reorder`: `Strategy.rewrites_mix`) keeps the row count
  (`noise_filter` drops some: an upper bound);
* an input-side strategy (`pivot`, `to_english`: `Strategy.rewrites_inputs`) adds no rows and
  lengthens the prompt of every row (`PROMPT_CHANGES`), which the token count applies.

Added rows take the language and label shares of the rows they are made from, unless the strategy
fixes them (negatives: label 0; translations: the target language). A strategy that adds rows and
has no estimator is an error naming it (see docs/scale.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset
from omegaconf import DictConfig, OmegaConf

from relevance.augment.base import strategy_class, strategy_options
from relevance.augment.languages import competition_code
from relevance.data.columns import column_values


@dataclass(frozen=True)
class MixShape:
    """What the estimators need to know of a table: its counts, not its rows."""

    rows: int = 0
    positives: int = 0
    positive_queries: int = 0  # distinct (language, query) with a positive target
    by_language: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, table: Dataset) -> MixShape:
        labels, languages, queries = column_values(table, "label", "language", "query")
        positive = {(lang, query) for lang, query, label in zip(languages, queries, labels) if label == 1}
        return cls(len(table), int(sum(labels)), len(positive), Counter(languages))

    def drawn(self, rows: int, label: int | None = None, language: str | None = None) -> MixShape:
        """`rows` rows made from this table's rows: of label `label` (None: its positive share), of
        language `language` (None: its language shares)."""
        rows = max(0, int(rows))
        if not rows or not self.rows:
            return MixShape()
        positives = rows if label == 1 else 0 if label == 0 else round(rows * self.positives / self.rows)
        queries = round(positives * self.positive_queries / self.positives) if self.positives else 0
        languages = (Counter({language: rows}) if language is not None
                     else Counter({lang: round(rows * n / self.rows) for lang, n in self.by_language.items()}))
        return MixShape(rows, positives, queries, languages)

    def __add__(self, other: MixShape) -> MixShape:
        return MixShape(self.rows + other.rows, self.positives + other.positives,
                        self.positive_queries + other.positive_queries, self.by_language + other.by_language)


@dataclass(frozen=True)
class DataFacts:
    """The run's rows as its strategies see them (`augment.base.AugmentContext`)."""

    original: MixShape
    train_languages: list[str]
    eval_languages: list[str]  # of the dev and test rows


@dataclass(frozen=True)
class PromptChange:
    """How an input-side strategy rewrites the query every prompt shows (for counting tokens)."""

    pivot: bool = False  # a non-English query gets its English translation after it (`task.pivot_prompt`)
    join_template: str | None = None  # the query becomes this template over {query} and {english}


@dataclass
class MixEstimate:
    shape: MixShape
    rows_added: dict[str, int]  # per strategy that adds rows or filters them (0), in mix order
    prompt_changes: dict[str, PromptChange]  # per input-side strategy


def _original(opts, base: MixShape, facts: DataFacts) -> MixShape:
    return facts.original


def _translated(opts, base: MixShape, facts: DataFacts) -> MixShape:
    trained = {competition_code(code) for code in facts.train_languages}
    targets = opts.target_languages or sorted({competition_code(c) for c in facts.eval_languages} - trained)
    added = MixShape()
    for target in targets:
        rows = base.rows - base.by_language.get(target, 0)
        if opts.max_rows_per_language is not None:
            rows = min(rows, opts.max_rows_per_language)
        added = added + base.drawn(rows, language=target)
    return added


def _easy_neg(opts, base: MixShape, facts: DataFacts) -> MixShape:
    rows = round(opts.ratio * base.positives) if opts.ratio is not None else opts.per_query * base.positive_queries
    return base.drawn(rows, label=0)


def _hard_neg(opts, base: MixShape, facts: DataFacts) -> MixShape:
    queries = min(opts.max_queries, base.positive_queries) if opts.max_queries else base.positive_queries
    return base.drawn(opts.per_query * queries, label=0)


def _balance(opts, base: MixShape, facts: DataFacts) -> MixShape:
    from relevance.augment.balance import rows_needed

    label, rows = rows_needed(base.positives, base.rows - base.positives, float(opts.target_positive_ratio))
    return base.drawn(rows, label=label)


def _query_noise(opts, base: MixShape, facts: DataFacts) -> MixShape:
    return base.drawn(round(opts.share * base.positives), label=1)


# strategy -> the rows it adds, from its options, the rows it builds on and the run's data
ADDED_ROWS: dict[str, Callable] = {"original": _original, "translated": _translated, "easy_neg": _easy_neg,
                                   "hard_neg": _hard_neg, "balance": _balance, "query_noise": _query_noise}
# input-side strategy -> how it rewrites every prompt's query
PROMPT_CHANGES: dict[str, Callable] = {
    "pivot": lambda opts: PromptChange(pivot=True),
    "to_english": lambda opts: PromptChange(join_template=None if opts.how == "replace" else opts.join_template),
}


def estimate_mix(augment_cfg: DictConfig, facts: DataFacts) -> MixEstimate:
    """The mix `augment=[...]` builds from these rows, estimated (see the module docstring)."""
    mix, added, changes = MixShape(), {}, {}
    for name, settings in augment_cfg.items():
        kind = strategy_class(name)
        values = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else settings
        base = mix if mix.rows else facts.original
        if kind.rewrites_mix():
            mix, added[name] = base, 0
        elif kind.rewrites_inputs():
            if name not in PROMPT_CHANGES:
                raise KeyError(f"augment={name}: no estimate of how it changes the prompts; add one to "
                               "relevance/cost/mix_rows.py (PROMPT_CHANGES)")
            changes[name] = PROMPT_CHANGES[name](strategy_options(name, values))
        else:
            if name not in ADDED_ROWS:
                raise KeyError(f"augment={name}: no estimate of the rows it adds; add one to "
                               f"relevance/cost/mix_rows.py (ADDED_ROWS knows {', '.join(sorted(ADDED_ROWS))})")
            rows = ADDED_ROWS[name](strategy_options(name, values), base, facts)
            mix, added[name] = mix + rows, rows.rows
    return MixEstimate(mix, added, changes)
