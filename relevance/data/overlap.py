"""Queries on both sides: dev or test rows whose query also occurs among the training rows.

Splits carved from one file are grouped by query, but separate files are not: the real QC
`dev.jsonl` shares 95 queries (127 rows) with `train.jsonl` once case and spacing are folded.
A model scores such rows partly from memory, so dev F1 (and the threshold tuned on it) or test
F1 would be optimistic. `data.query_overlap` says what to do with them: `drop` (the default)
removes them, `keep` scores them anyway, `error` stops the run. Either way they are counted.

"The same query" is `relevance.data.text.normalise_text`: case-folded, whitespace collapsed,
the key that groups splits and folds.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from relevance.data.columns import column_values
from relevance.data.schema import DataError
from relevance.data.text import normalise_text

log = logging.getLogger(__name__)

QUERY_OVERLAP_POLICIES = ("drop", "keep", "error")  # data.query_overlap
QUERY_OVERLAP_KEY = "data.query_overlap"


@dataclass(frozen=True)
class QueryOverlap:
    """The rows of one evaluation role (dev or test) whose query occurs among the training rows."""

    role: str  # "dev" or "test"
    rows: int  # overlapping rows, found before any were dropped
    queries: int  # distinct normalised queries among them
    dropped: int  # rows removed (data.query_overlap=drop), else 0
    first_id: str | None = None  # the first overlapping row, in table order
    first_query: str | None = None


def _queries(table: Dataset) -> list[str]:
    (queries,) = column_values(table, "query")
    return queries


def training_queries(table: Dataset) -> set[str]:
    """The normalised queries of a table's rows."""
    return {normalise_text(query) for query in _queries(table)}


def overlapping_rows(table: Dataset, seen: set[str]) -> np.ndarray:
    """Indices of `table`'s rows whose normalised query is in `seen`, in table order."""
    return _overlapping(_queries(table), seen)


def _overlapping(queries: list[str], seen: set[str]) -> np.ndarray:
    return np.flatnonzero([normalise_text(query) in seen for query in queries])


def handle_query_overlap(table: Dataset, role: str, path: Path, seen: set[str], policy: str,
                         training_path: Path) -> tuple[Dataset, QueryOverlap]:
    """`table` (dev or test rows read from `path`) as `policy` wants it, and the overlap it had
    with `seen` (the training rows' normalised queries, read from `training_path`)."""
    if policy not in QUERY_OVERLAP_POLICIES:
        raise ValueError(f"{QUERY_OVERLAP_KEY}={policy!r}: use one of {QUERY_OVERLAP_POLICIES}")
    table_queries = _queries(table)
    found = _overlapping(table_queries, seen)
    if not len(found):
        return table, QueryOverlap(role, 0, 0, 0)
    queries = {normalise_text(table_queries[i]) for i in found.tolist()}
    first = table[int(found[0])]
    if policy == "error":
        raise DataError(path, line_of_id(path, first["id"]), "origin_query",
                        f"query {first['query']!r} (id {first['id']}) also occurs among the training rows "
                        f"({training_path}), compared case- and space-folded; {len(found)} {role} rows "
                        f"({len(queries)} queries) do, and a model scores them partly from memory. Set "
                        f"{QUERY_OVERLAP_KEY}=drop to leave them out of {role} (counted and logged), or "
                        f"{QUERY_OVERLAP_KEY}=keep to score them anyway")
    overlap = QueryOverlap(role, len(found), len(queries), len(found) if policy == "drop" else 0,
                           str(first["id"]), first["query"])
    if policy == "drop":
        if len(found) == len(table):
            raise DataError(path, 0, "origin_query",
                            f"every one of the {len(table)} {role} rows has a query that also occurs among the "
                            f"training rows ({training_path}): dropping them ({QUERY_OVERLAP_KEY}=drop) leaves no "
                            f"{role} rows; use a {role} file with other queries, or {QUERY_OVERLAP_KEY}=keep")
        keep = np.ones(len(table), dtype=bool)
        keep[found] = False
        table = table.select(np.flatnonzero(keep).tolist())  # a list of ints, as before: the same fingerprint
    return table, overlap


def report_query_overlap(overlaps: list[QueryOverlap], policy: str, training_path: Path) -> None:
    """One log line for every role with overlapping rows: a warning when they were dropped."""
    found = [o for o in overlaps if o.rows]
    if not found:
        return
    counts = "; ".join(f"{o.rows} {o.role} rows ({o.queries} queries, e.g. {o.first_query!r} id {o.first_id})"
                       for o in found)
    if policy == "drop":
        log.warning("dropped %s whose query also occurs among the training rows (%s), compared case- and "
                    "space-folded: they would be scored partly from memory. %s=keep scores them anyway, "
                    "%s=error stops instead", counts, training_path, QUERY_OVERLAP_KEY, QUERY_OVERLAP_KEY)
    else:
        log.info("kept %s whose query also occurs among the training rows (%s=keep)", counts, QUERY_OVERLAP_KEY)


def line_of_id(path: Path, row_id) -> int:
    """The 1-based line of `path` holding the row with this id (ids are unique within a file), or
    0 when none does (e.g. an id prefixed to keep a k-fold pool's ids distinct)."""
    wanted = str(row_id)
    with Path(path).open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    if str(json.loads(line).get("id")) == wanted:
                        return number
                except (json.JSONDecodeError, AttributeError):
                    continue
    return 0
