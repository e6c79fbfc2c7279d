"""What every negative-making strategy shares (`easy_neg`, `hard_neg`, `balance`): the pairs
that exist already, the queries to make negatives for, the rows they become, and the
registry of what makes two targets *related*.

Relatedness is a task setting (`conf/task/<task>.yaml`: `negatives.related_by`), looked
up here by name, so no strategy branches on the task: a target's *keys* are computed by a
registered function, and two targets sharing a key are related.

* ``top_level_category`` (QC): the key of a category path is its top-level category
  (level names may contain ", " — "automobiles, parts & accessories" — while real
  separators are a bare ",").
* ``title_tokens`` (QI): the keys of a title are its word tokens (lower-case, ≥ 3
  characters, a few filler words left out). The query's own tokens are keys too: a title
  that repeats the query's words is not clearly irrelevant.

A new task picks one of these in its YAML, or registers one more function with
`@relatedness("<name>")`.

Some candidates are never a negative of a query with a known positive, however they score
(`task.negatives.never_negative`, registered with `@never_negative("<name>")`):

* ``category_family`` (QC): an ancestor, a descendant or a sibling of a known positive
  path, or a sibling's descendant: any path that is a prefix of the positive or starts
  with the positive's parent ("toys & hobbies,remote control toys" guards
  "toys & hobbies,remote control toys,rc trucks" and "toys & hobbies,remote control
  toys,rc cars"; a one-level positive guards itself and what lies under it). A sibling
  leaf of the right product line is a likely false negative: the label of the real data
  says "relevant" for many of them.

"Known positives" of a query are all positive targets of the same normalised query text
(`normalise_text`: case-folded, whitespace collapsed; any language) in the original table
and the mix; `PairIndex` holds them with every existing pair, so no strategy turns a
positive into a negative or repeats a pair.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset

from relevance.augment.cache import stable_seed
from relevance.data.columns import column_values
from relevance.data.text import normalise_text

# -- relatedness: what makes two targets related -----------------------------------------------

_LEVEL_SEPARATOR = re.compile(r",(?! )")  # a comma followed by a space is part of a level name
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
FILLER_WORDS = frozenset({"and", "for", "the", "with", "new", "pcs", "set", "from", "your", "of"})


@dataclass(frozen=True)
class Relatedness:
    keys: Callable[[str], set[str]]  # a target's keys: targets sharing a key are related
    query_keys_block: bool  # whether the query's own keys also rule targets out


RELATEDNESS: dict[str, Relatedness] = {}


def relatedness(name: str, *, query_keys_block: bool = False):
    """Register `keys(text) -> set[str]` as the relatedness `name` (a value of `task.negatives.related_by`)."""

    def decorate(keys: Callable[[str], set[str]]):
        RELATEDNESS[name] = Relatedness(keys, query_keys_block)
        return keys

    return decorate


def relatedness_named(name: str | None) -> Relatedness:
    if name not in RELATEDNESS:
        raise ValueError(f"task.negatives.related_by={name!r}: set it in conf/task/<task>.yaml to one of "
                         f"{sorted(RELATEDNESS)} (or register one with @relatedness in relevance/augment/negatives.py)")
    return RELATEDNESS[name]


def category_levels(path: str) -> list[str]:
    """Levels of a category path: ``"automobiles, parts & accessories,tools"`` → 2 levels."""
    return [level.strip() for level in _LEVEL_SEPARATOR.split(str(path)) if level.strip()]


def top_level_category(path: str) -> str:
    levels = category_levels(path)
    return normalise_text(levels[0]) if levels else ""


@relatedness("top_level_category")
def top_level_category_keys(path: str) -> set[str]:
    return {top_level_category(path)}


@relatedness("title_tokens", query_keys_block=True)
def title_tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(str(text).casefold()) if len(t) >= 3 and t not in FILLER_WORDS}


# -- never a negative: candidates a known positive protects ----------------------------------------

class ProtectedRows:
    """Rows of a target pool a known positive protects: `rows(positive)`, sorted int64."""

    def rows(self, positive: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


NEVER_NEGATIVE: dict[str, Callable[[list[str]], ProtectedRows]] = {}


def never_negative(name: str):
    """Register `factory(pool) -> ProtectedRows` as the rule `name` (a value of `task.negatives.never_negative`)."""

    def decorate(factory):
        NEVER_NEGATIVE[name] = factory
        return factory

    return decorate


def protected_rows_for(name: str | None, pool: list[str]) -> ProtectedRows | None:
    """The rule `name` over `pool`, or None when the task has none."""
    if name is None:
        return None
    if name not in NEVER_NEGATIVE:
        raise ValueError(f"task.negatives.never_negative={name!r}: set it in conf/task/<task>.yaml to one of "
                         f"{sorted(NEVER_NEGATIVE)} or null (or register one with @never_negative in "
                         "relevance/augment/negatives.py)")
    return NEVER_NEGATIVE[name](pool)


def normalised_levels(path: str) -> tuple[str, ...]:
    return tuple(normalise_text(level) for level in category_levels(path))


def family_prefix(levels: tuple[str, ...]) -> tuple[str, ...]:
    """What a path's relatives start with: its parent (siblings and their descendants), or for a
    one-level path the path itself."""
    return levels[:-1] if len(levels) >= 2 else levels


def is_category_family(positive: str, candidate: str) -> bool:
    """Whether `candidate` is an ancestor, descendant or sibling (or a sibling's descendant) of
    the category path `positive`, or the path itself (levels compared as normalised text)."""
    p, c = normalised_levels(positive), normalised_levels(candidate)
    if not p or not c:
        return False
    prefix = family_prefix(p)
    return p[:len(c)] == c or c[:len(prefix)] == prefix


@never_negative("category_family")
class CategoryFamily(ProtectedRows):
    """`is_category_family` over a pool, by two lookups per level instead of a scan of the pool."""

    def __init__(self, pool: list[str]):
        exact: dict[tuple[str, ...], list[int]] = defaultdict(list)  # a path's levels -> its rows
        under: dict[tuple[str, ...], list[int]] = defaultdict(list)  # any prefix -> rows of paths starting with it
        for j, target in enumerate(pool):
            levels = normalised_levels(target)
            exact[levels].append(j)
            for depth in range(1, len(levels) + 1):
                under[levels[:depth]].append(j)
        self.exact, self.under = exact, under

    def rows(self, positive: str) -> np.ndarray:
        levels = normalised_levels(positive)
        if not levels:
            return np.zeros(0, dtype=np.int64)
        found = set(self.under.get(family_prefix(levels), ()))
        for depth in range(1, len(levels) + 1):  # ancestors (and the path itself)
            found.update(self.exact.get(levels[:depth], ()))
        return np.array(sorted(found), dtype=np.int64)


# -- what exists already, and the queries to make negatives for --------------------------------

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
            for query, target, label in zip(*column_values(table, "query", "target", "label")):
                key = normalise_text(query)
                index.existing[key].add(normalise_text(target))
                if label == 1:
                    index.positives[key].add(target)
                if target and target.strip():
                    targets.add(target)
        index.pool = sorted(targets)
        return index

    def exists(self, query: str, target: str) -> bool:
        return normalise_text(target) in self.existing.get(normalise_text(query), ())

    def is_positive(self, query: str, target: str) -> bool:
        return normalise_text(target) in {normalise_text(t) for t in self.positives.get(normalise_text(query), ())}


@dataclass(frozen=True)
class QueryPositives:
    language: str
    query: str
    targets: tuple[str, ...]  # positive targets of this (language, query) in the base rows


def positive_queries(table: Dataset) -> list[QueryPositives]:
    """Distinct (language, query) with their positive targets, sorted."""
    grouped: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    for language, query, target, label in zip(*column_values(table, "language", "query", "target", "label")):
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


# -- picks to rows -----------------------------------------------------------------------------

def per_query_for(count: int | None, n_queries: int, per_query: int) -> int:
    """Picks to draw per query: `per_query`, or enough to reach `count` with a little slack."""
    if count is None:
        return per_query
    return max(1, math.ceil(count / max(n_queries, 1)) + 1)


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
