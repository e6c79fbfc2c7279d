"""Mining for `hard_neg` (and `balance`, negatives_from=hard): the selection rules of the strategy
(see `relevance.augment.hard_neg`), applied exactly and at scale.

* which targets a query may get (`PoolRows`, `QueryTargets`): its anchors, its guards and the
  rows it must never get;
* exact selection (`best_targets`): per query, its anchors' shortlisted targets (from
  `hard_neg_screen.BandScreen`) are scored exactly for the band, the guard, the exclusions and
  the ties. Similarities are exact: float64 dot products of the stored (float16) vectors, rounded
  to float32, so the picks do not depend on how the work is split;
* proof (`proven`): a target missing from an anchor's full shortlist is at most `bound` similar
  to that anchor (the depth-th screened value plus the error bound). When the query's k-th pick
  does not beat every such bound, its anchors are screened again, deeper (x4), until it does or
  the shortlists hold the whole band. The picks are thus those of scoring every (anchor, target)
  pair exactly (tests/test_hard_neg_scale.py compares the two on thousands of targets);
* large pools (more than `exact_max_targets` distinct targets): the shortlists come from a
  `hard_neg_screen.CellIndex` instead, the same proof holds inside each anchor's probed cells, and
  the picks are the exact best of those cells (measured against every pair in the same tests).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm

from relevance.augment.embedder import Embedder
from relevance.augment.hard_neg_screen import Band, BandScreen, CellIndex, ScreenPrecision
from relevance.augment.negatives import (PairIndex, ProtectedRows, QueryPositives, negative_row, per_query_for,
                                         positive_queries, protected_rows_for, sample_queries, take_round_robin)
from relevance.data.text import normalise_text

QUERY_CHUNK = 4096  # queries mined together: bounds the shortlists and plans held at once
FIRST_DEPTH = 16  # screened candidates kept per anchor in the first round, on top of per_query
DEPTH_GROWTH = 4  # how much deeper each further screening round looks
EXACT_MAX_TARGETS = 50_000  # larger pools are searched through a cell index (the option `exact_max_targets`)
MAX_UNSETTLED = 0.1  # share of a chunk's queries left for a second round above which the next chunks start deeper


# -- which targets a query may get -------------------------------------------------------------

@dataclass(frozen=True)
class QueryTargets:
    """Pool rows that matter to one query (sorted int64 arrays)."""

    anchors: np.ndarray  # its positive targets in the base rows: the band is measured from them
    guards: np.ndarray  # every known positive of its normalised text (anchors included): the guard
    blocked: np.ndarray  # never picked: the known positives, the targets of existing pairs, protected ones

    @property
    def anchor_rows(self) -> np.ndarray:
        """Where the anchors are among the guards."""
        return np.searchsorted(self.guards, self.anchors)


class PoolRows:
    """Rows of the pool (sorted distinct targets) by text and by normalised text."""

    def __init__(self, pool: list[str], protected: ProtectedRows | None = None):
        self.row = {target: j for j, target in enumerate(pool)}
        self.rows_by_norm: dict[str, list[int]] = defaultdict(list)
        for j, target in enumerate(pool):
            self.rows_by_norm[normalise_text(target)].append(j)
        self.protected = protected
        self._protected_by: dict[str, np.ndarray] = {}  # positive -> the rows it protects (queries share positives)

    def protected_by(self, positive: str) -> np.ndarray:
        if positive not in self._protected_by:
            self._protected_by[positive] = self.protected.rows(positive)
        return self._protected_by[positive]

    def targets_of(self, query: QueryPositives, pairs: PairIndex) -> QueryTargets:
        norm_query = normalise_text(query.query)
        anchors = {self.row[t] for t in query.targets}
        positives = set(query.targets) | set(pairs.positives.get(norm_query, ()))
        guards = anchors | {self.row[t] for t in positives if t in self.row}
        existing = {j for t in pairs.existing.get(norm_query, ()) for j in self.rows_by_norm.get(t, ())}
        blocked = _sorted_rows(guards | existing)
        if self.protected is not None and positives:
            blocked = np.union1d(blocked, np.concatenate([self.protected_by(t) for t in sorted(positives)]))
        return QueryTargets(_sorted_rows(anchors), _sorted_rows(guards), blocked)


def _sorted_rows(rows: set[int]) -> np.ndarray:
    return np.array(sorted(rows), dtype=np.int64)


# -- exact selection for one query ---------------------------------------------------------------

def exact_similarities(vectors: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine similarities of vectors[rows] x vectors[cols]: float64 dot products of the stored values
    rounded to float32, the same however the work is split."""
    return (vectors[rows].astype(np.float64) @ vectors[cols].astype(np.float64).T).astype(np.float32)


def best_targets(vectors: np.ndarray, targets: QueryTargets, candidates: np.ndarray, band: Band,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best of `candidates` for one query: (rows, scores), best first, ties by row."""
    candidates = candidates[~sorted_contains(targets.blocked, candidates)]
    sims = exact_similarities(vectors, targets.guards, candidates)
    to_anchors = sims[targets.anchor_rows]
    in_band = (to_anchors >= band.low) & (to_anchors <= band.high)
    score = np.where(in_band, to_anchors, -np.inf).max(axis=0, initial=-np.inf)
    allowed = np.isfinite(score) & (sims.max(axis=0, initial=-np.inf) <= band.guard)
    rows, score = candidates[allowed], score[allowed]
    order = np.lexsort((rows, -score))[:k]
    return rows[order], score[order]


def sorted_contains(sorted_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether each of `rows` is in `sorted_rows`."""
    if not len(sorted_rows):
        return np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return sorted_rows[at] == rows


def proven(scores: np.ndarray, bound: float, k: int) -> bool:
    """Whether these picks are final: no target left out of the shortlists (each at most `bound`
    similar to every anchor that could rank it) can reach the k-th pick's score."""
    return bound == -np.inf or (len(scores) == k and float(scores[-1]) > bound)


# -- mining: screening rounds until every query's picks are proven ---------------------------------

def mine(vectors: np.ndarray, targets: list[QueryTargets], band: Band, k: int, screen: BandScreen, stats: dict,
         depth: int | None = None) -> tuple[list[np.ndarray], float]:
    """The picks (pool rows, best first) of each query, screening `depth` deep first (then deeper for the
    queries left unsettled), and the share of queries the first round left unsettled."""
    picks: list[np.ndarray | None] = [None] * len(targets)
    pending, depth, rounds = list(range(len(targets))), depth or k + FIRST_DEPTH, 0
    first_unsettled = 0.0
    while pending:
        rounds += 1
        anchors = np.unique(np.concatenate([targets[i].anchors for i in pending]))
        lists = screen.shortlists(anchors, min(depth, screen.size))
        unsettled = []
        for i in pending:
            at = np.searchsorted(anchors, targets[i].anchors)
            cols = lists.cols[at]
            rows, scores = best_targets(vectors, targets[i], np.unique(cols[cols >= 0]), band, k)
            if proven(scores, float(lists.bound[at].max()), k):
                picks[i] = rows
            else:
                unsettled.append(i)
        if rounds == 1:
            first_unsettled = len(unsettled) / len(targets)
        pending, depth = unsettled, depth * DEPTH_GROWTH
    stats["screening_rounds"] = max(stats.get("screening_rounds", 0), rounds)
    return picks, first_unsettled


def hard_negatives(base: Dataset, pairs: PairIndex, task: str, embedder: Embedder, *, per_query: int = 1,
                   min_similarity: float = 0.5, max_similarity: float = 0.85, guard_similarity: float = 0.85,
                   max_queries: int | None = None, count: int | None = None, seed: int = 0,
                   source: str = "hard_neg", stats: dict | None = None,
                   precision: ScreenPrecision | None = None, never_negative: str | None = None,
                   exact_max_targets: int | None = EXACT_MAX_TARGETS) -> list[dict]:
    """Hard negatives for the positive queries of `base` (see the module docstring): row dicts,
    `per_query` per query, or `count` in all (round-robin over queries). `never_negative` names the
    task's rule for candidates a known positive protects (`task.negatives.never_negative`). A pool of
    more than `exact_max_targets` distinct targets is searched through a `CellIndex` (None: always exact)."""
    stats = {} if stats is None else stats
    if count is not None and count <= 0:
        return []
    queries = sample_queries(positive_queries(base), max_queries, seed, source)
    pool = pairs.pool
    stats["queries"] = len(queries)
    if not queries or len(pool) < 2:
        return []
    vectors = embedder.encode(pool, dtype=np.float16)
    band = Band(min_similarity, max_similarity, guard_similarity)
    indexed = exact_max_targets is not None and len(pool) > exact_max_targets
    screen = CellIndex(vectors, band) if indexed else BandScreen(vectors, band, precision)
    stats["index_cells"] = screen.cells if indexed else 0
    k = min(per_query_for(count, len(queries), per_query), len(pool))
    rows_of = PoolRows(pool, protected_rows_for(never_negative, pool))
    picks: list[list[tuple[str, str, str]]] = []
    depth = k + FIRST_DEPTH
    with tqdm(total=len(queries), desc="hard negatives", unit="query", disable=len(queries) < QUERY_CHUNK) as bar:
        for start in range(0, len(queries), QUERY_CHUNK):
            part = queries[start:start + QUERY_CHUNK]
            targets = [rows_of.targets_of(query, pairs) for query in part]
            chosen, unsettled = mine(vectors, targets, band, k, screen, stats, depth)
            picks += [[(query.language, query.query, pool[j]) for j in rows.tolist()]
                      for query, rows in zip(part, chosen)]
            if unsettled > MAX_UNSETTLED:  # dense targets: start the next chunks deeper (same picks, fewer rescans)
                depth *= DEPTH_GROWTH
            bar.update(len(part))
    stats["queries_without_candidates"] = sum(not chosen for chosen in picks)
    chosen_rows = take_round_robin(picks, count, seed, source)
    return [negative_row(task, lang, query, target, source, n) for n, (lang, query, target) in enumerate(chosen_rows)]
