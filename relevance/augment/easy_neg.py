"""`easy_neg`: clearly irrelevant (query, target) pairs, plus the helpers every
negative-making strategy shares (`hard_neg` and `balance` import them from here).

For each distinct (language, query) with a positive target in the rows the strategy
builds on (the mix so far, or the original table when it comes first), it draws targets
from the pool of distinct targets of the original table and the mix that are *blocked*
from no key of the query's known positives:

* QC: the key of a category path is its top-level category (`top_level_category`; level
  names may contain ", " — "automobiles, parts & accessories" — while real separators are
  a bare ","). A negative therefore comes from another top-level category than every
  known positive of the query.
* QI: the keys of a title are its word tokens (`title_tokens`: lower-case, ≥ 3
  characters, a few filler words left out). A negative shares no token with any known
  positive title of the query, nor with the query itself. No title → category map is
  used (there is none in the QI data), so this is the whole rule.

"Known positives" of a query are all positive targets of the same normalised query text
(case-folded, whitespace collapsed; any language) in the original table and the mix.
A pair that already exists there — as a positive or a negative — is never emitted, so no
positive is ever turned into a negative and nothing is duplicated.

Settings: `per_query` negatives per query, or `ratio` (when set: that many negatives per
positive row, spread round-robin over the queries). Draws use a random generator seeded
per query from (seed, strategy, language, query): the same seed gives the same rows, and
a query's draws do not change when other queries come or go. Added rows: label 0,
``source`` = ``easy_neg``, ``language`` = the query's language.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.cache import stable_seed

# -- shared helpers ----------------------------------------------------------------------------

_LEVEL_SEPARATOR = re.compile(r",(?! )")  # a comma followed by a space is part of a level name
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
FILLER_WORDS = frozenset({"and", "for", "the", "with", "new", "pcs", "set", "from", "your", "of"})


def normalise(text: str) -> str:
    """Case-folded, whitespace-collapsed text: the identity of a query or target."""
    return " ".join(str(text).casefold().split())


def category_levels(path: str) -> list[str]:
    """Levels of a category path: ``"automobiles, parts & accessories,tools"`` → 2 levels."""
    return [level.strip() for level in _LEVEL_SEPARATOR.split(str(path)) if level.strip()]


def top_level_category(path: str) -> str:
    levels = category_levels(path)
    return normalise(levels[0]) if levels else ""


def title_tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(str(text).casefold()) if len(t) >= 3 and t not in FILLER_WORDS}


def blocking_keys(task: str) -> Callable[[str], set[str]]:
    """What makes two targets "related" for easy negatives: QC top-level category, QI tokens."""
    if task.upper() == "QC":
        return lambda target: {top_level_category(target)}
    return title_tokens


def base_rows(mix: Dataset, context: AugmentContext) -> Dataset:
    """The rows a strategy builds on: the mix so far, or the original table when it comes first."""
    return mix if len(mix) else context.original


@dataclass
class PairIndex:
    """What exists already (original ∪ mix): pairs of any label, known positives by
    normalised query, and the pool of distinct targets (sorted, for determinism)."""

    existing: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # norm query -> norm targets
    positives: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # norm query -> raw targets
    pool: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, *tables: Dataset) -> PairIndex:
        index = cls()
        targets: set[str] = set()
        for table in tables:
            if not len(table):
                continue
            for query, target, label in zip(table["query"], table["target"], table["label"]):
                key = normalise(query)
                index.existing[key].add(normalise(target))
                if label == 1:
                    index.positives[key].add(target)
                if target and target.strip():
                    targets.add(target)
        index.pool = sorted(targets)
        return index

    def exists(self, query: str, target: str) -> bool:
        return normalise(target) in self.existing.get(normalise(query), ())

    def is_positive(self, query: str, target: str) -> bool:
        return normalise(target) in {normalise(t) for t in self.positives.get(normalise(query), ())}


@dataclass(frozen=True)
class QueryPositives:
    language: str
    query: str
    targets: tuple[str, ...]  # positive targets of this (language, query) in the base rows


def positive_queries(table: Dataset) -> list[QueryPositives]:
    """Distinct (language, query) with their positive targets, sorted."""
    grouped: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    for language, query, target, label in zip(table["language"], table["query"], table["target"], table["label"]):
        if label == 1 and target and target.strip():
            grouped[(language, query)][target] = None
    return [QueryPositives(lang, query, tuple(sorted(targets))) for (lang, query), targets in sorted(grouped.items())]


def sample_queries(queries: list[QueryPositives], max_queries: int | None, seed: int,
                   salt: str) -> list[QueryPositives]:
    """At most `max_queries` of them, the same sample for the same seed."""
    if not max_queries or len(queries) <= max_queries:
        return queries
    rng = np.random.default_rng(stable_seed(seed, salt, "queries"))
    return [queries[i] for i in sorted(rng.choice(len(queries), size=max_queries, replace=False).tolist())]


def take_round_robin(per_query: list[list[dict]], count: int | None, seed: int, salt: str) -> list[dict]:
    """Every query's picks (count None), or `count` of them: first pick of every query (in a
    seeded order), then second picks..., so negatives spread over as many queries as possible."""
    if count is None:
        return [row for rows in per_query for row in rows]
    order = np.random.default_rng(stable_seed(seed, salt, "order")).permutation(len(per_query)).tolist()
    taken: list[dict] = []
    depth = max((len(rows) for rows in per_query), default=0)
    for round_ in range(depth):
        for q in order:
            if round_ < len(per_query[q]):
                taken.append(per_query[q][round_])
                if len(taken) >= count:
                    return taken
    return taken


def negative_row(task: str, language: str, query: str, target: str, source: str, number: int) -> dict:
    return {"id": f"{source}-{number}", "task": task, "language": language, "query": query, "target": target,
            "label": 0, "source": source}


def rows_to_table(rows: Iterable[dict], features) -> Dataset:
    rows = list(rows)
    return Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)


def per_query_for(count: int | None, n_queries: int, per_query: int) -> int:
    """Picks to draw per query: `per_query`, or enough to reach `count` with a little slack."""
    if count is None:
        return per_query
    return max(1, math.ceil(count / max(n_queries, 1)) + 1)


# -- the easy-negative generator ---------------------------------------------------------------

def easy_negatives(base: Dataset, pairs: PairIndex, task: str, *, per_query: int = 1, count: int | None = None,
                   seed: int = 0, source: str = "easy_neg") -> list[dict]:
    """Easy negatives for the positive queries of `base` (see the module docstring): a list of
    row dicts, `per_query` per query, or `count` in all (round-robin over queries)."""
    if count is not None and count <= 0:
        return []
    queries = positive_queries(base)
    pool = pairs.pool
    if not queries or not pool:
        return []
    keys_of = blocking_keys(task)
    inverted: dict[str, list[int]] = defaultdict(list)
    for j, target in enumerate(pool):
        for key in keys_of(target):
            inverted[key].append(j)
    inverted_arrays = {key: np.asarray(idx, dtype=np.int64) for key, idx in inverted.items()}
    normalised_pool = {normalise(t): j for j, t in enumerate(pool)}
    k = per_query_for(count, len(queries), per_query)

    picks: list[list[tuple[str, str, str]]] = []
    for qp in queries:
        norm_query = normalise(qp.query)
        blocked_keys: set[str] = set()
        for target in set(qp.targets) | pairs.positives.get(norm_query, set()):
            blocked_keys |= keys_of(target)
        if task.upper() != "QC":
            blocked_keys |= title_tokens(qp.query)
        allowed = np.ones(len(pool), dtype=bool)
        for key in blocked_keys:
            if key in inverted_arrays:
                allowed[inverted_arrays[key]] = False
        for target in pairs.existing.get(norm_query, ()):
            if target in normalised_pool:
                allowed[normalised_pool[target]] = False
        candidates = np.flatnonzero(allowed)
        if not len(candidates):
            picks.append([])
            continue
        rng = np.random.default_rng(stable_seed(seed, source, qp.language, qp.query))
        chosen = rng.choice(candidates, size=min(k, len(candidates)), replace=False)
        picks.append([(qp.language, qp.query, pool[j]) for j in chosen.tolist()])
    chosen_rows = take_round_robin(picks, count, seed, source)
    return [negative_row(task, lang, query, target, source, n) for n, (lang, query, target) in enumerate(chosen_rows)]


@register("easy_neg")
class EasyNeg(Strategy):
    def __init__(self, per_query: int = 1, ratio: float | None = None):
        super().__init__(per_query=per_query, ratio=ratio)
        if per_query < 1:
            raise ValueError(f"augment.easy_neg.per_query={per_query}: must be at least 1")
        if ratio is not None and ratio <= 0:
            raise ValueError(f"augment.easy_neg.ratio={ratio}: must be positive or null")
        self.per_query = int(per_query)
        self.ratio = ratio

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        pairs = PairIndex.of(context.original, mix)
        count = None if self.ratio is None else round(self.ratio * sum(base["label"]))
        rows = easy_negatives(base, pairs, context.task, per_query=self.per_query, count=count, seed=context.seed,
                              source=self.name)
        self.count("queries", len(positive_queries(base)))
        return rows_to_table(rows, context.original.features)
