"""`hard_neg`: negatives that look like the positive — near, but not too near.

For each distinct (language, query) with positive targets ("anchors") in the rows the
strategy builds on (the mix so far, or the original table when it comes first):

1. candidates are the OTHER distinct targets of the original table and the mix; all are
   embedded once (`Embedder`, normalised, so cosine = dot product);
2. band: a candidate qualifies when its similarity to one of the query's anchors lies in
   ``[min_similarity, max_similarity]``; its score is the highest such similarity;
3. guard: a candidate is dropped when its similarity to ANY known positive of the query
   (all positive targets of the same normalised query text in the original table and
   the mix, any language) exceeds ``guard_similarity`` — hard negatives that are
   near-duplicates of a positive tend to be false negatives (the competition write-ups
   saw this), so the band and the guard are the knobs to tune;
4. existing pairs (either label, compared as normalised text) are excluded, so no
   positive becomes a negative; so are the candidates a known positive of the query
   protects as the task says (`task.negatives.never_negative`; QC: `category_family`, an
   ancestor, descendant or sibling of a positive path, whatever its similarity);
5. the `per_query` best-scoring candidates are kept (ties: the earlier target in sorted
   order), so the result is deterministic; `max_queries` caps the queries (a sample that
   is the same for the same seed).

Similarities are exact: float64 dot products of the stored (float16) vectors, rounded to
float32, so the picks do not depend on how the work is split.

How it scales (the QI training set: ~300k distinct titles; memory linear in the targets,
never targets² or queries × targets):

* screening (`BandScreen`): every anchor against every target, by matrix products in
  bfloat16 (float32 on CPUs without native bf16 units), one anchor block × target tile at
  a time. Per anchor only the `depth` highest products inside the band — widened by the
  products' proven error bound — are kept, by integer comparisons on the products' bit
  patterns (no Python loop over pairs);
* exact selection (`best_targets`): per query, its anchors' shortlisted targets are scored
  exactly for the band, the guard, the exclusions and the ties;
* proof (`proven`): a target missing from an anchor's full shortlist is at most `bound`
  similar to that anchor (the depth-th screened value plus the error bound). When the
  query's k-th pick does not beat every such bound, its anchors are screened again,
  deeper (x4), until it does or the shortlists hold the whole band. The picks are thus
  those of scoring every (anchor, target) pair exactly (tests/test_hard_neg_scale.py
  compares the two on thousands of targets).

Embeddings are cached by content, in chunks (see `embedder`); the strategy's output table
is cached per (input rows, settings, embedder), so a rerun loads no embedder at all.
Counters: ``cache_hits`` / ``cache_misses`` (output table: 1 or 0), the embedder's
``embedding_cache_*``/``texts_embedded`` (all 0 when the table came from the cache),
``queries``, ``queries_without_candidates``, ``screening_rounds`` (1 when every query was
settled by the first shortlists).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import ContentCache, digest_table, make_key
from relevance.augment.embedder import PACKAGE_MODEL, Embedder
from relevance.hardware import cpu_bf16_units
from relevance.augment.negatives import (PairIndex, ProtectedRows, QueryPositives, negative_row, per_query_for,
                                         positive_queries, protected_rows_for, rows_to_table, sample_queries,
                                         take_round_robin)
from relevance.data.text import normalise_text

log = logging.getLogger(__name__)

VERSION = 3  # part of the output cache key: bump it when the selection logic changes (3: never_negative)
QUERY_CHUNK = 4096  # queries mined together: bounds the shortlists and plans held at once
FIRST_DEPTH = 16  # screened candidates kept per anchor in the first round, on top of per_query
DEPTH_GROWTH = 4  # how much deeper each further screening round looks
MAX_UNSETTLED = 0.1  # share of a chunk's queries left for a second round above which the next chunks start deeper
ANCHOR_BLOCK = 512  # anchors per matrix product
TARGET_TILE = 8192  # targets per matrix product
FIRST_TILE = 1024  # targets in the first product of a block


@dataclass
class HardNegativeBand:
    """The embedder and the selection band: the options `hard_neg` and `balance` (negatives_from=hard) share."""

    embedder: str = PACKAGE_MODEL  # the offline PyPI package's all-MiniLM-L6-v2; or a local dir / hub id
    batch_size: int = 64  # texts per embedding batch
    min_similarity: float = 0.5  # lower edge of the band: less similar candidates are not "hard"
    max_similarity: float = 0.85  # upper edge of the band
    guard_similarity: float = 0.85  # drop a candidate more similar than this to any known positive of the query
    max_queries: int | None = None  # cap on queries used (seeded sample), to bound CPU time; null: all
    device: str = "auto"  # auto: cuda when available, else cpu

    def __post_init__(self):
        if not -1.0 <= self.min_similarity <= self.max_similarity <= 1.0:
            raise ValueError("need -1 <= min_similarity <= max_similarity <= 1, "
                             f"got [{self.min_similarity}, {self.max_similarity}]")
        if not -1.0 <= self.guard_similarity <= 1.0:
            raise ValueError(f"guard_similarity={self.guard_similarity}: must be within [-1, 1]")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries={self.max_queries}: must be positive or null")

    def selection(self) -> dict:
        """The keyword arguments of `hard_negatives` that these options set."""
        return dict(min_similarity=float(self.min_similarity), max_similarity=float(self.max_similarity),
                    guard_similarity=float(self.guard_similarity), max_queries=self.max_queries)

    def make_embedder(self, cache_dir: str, setting: str) -> Embedder:
        return Embedder(model=self.embedder, batch_size=self.batch_size, device=self.device, cache_dir=cache_dir,
                        setting=setting)


@dataclass(frozen=True)
class Band:
    low: float  # min_similarity
    high: float  # max_similarity
    guard: float  # guard_similarity


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


# -- screening: shortlists of the most similar targets in the band --------------------------------

@dataclass(frozen=True)
class ScreenPrecision:
    """A dtype the screening products run in: its bit patterns and its rounding unit."""

    dtype: torch.dtype
    bits: torch.dtype  # same-width signed integers: non-negative floats order like their bit patterns
    unit: float  # relative error of one rounding to this dtype, any rounding mode (one ulp)

    @property
    def numpy_bits(self):
        return {torch.int16: np.int16, torch.int32: np.int32}[self.bits]

    def to_bits(self, value: float) -> int:
        return int(torch.tensor(value, dtype=torch.float32).to(self.dtype).view(self.bits))

    def to_values(self, bits: np.ndarray) -> np.ndarray:
        if self.bits == torch.int16:
            return (bits.astype(np.int32) << 16).view(np.float32)
        return bits.astype(np.int32).view(np.float32)

    def round_down(self, value: float) -> float:
        """A number of this dtype at most `value` (and within two units of it)."""
        for candidate in (value, value - (abs(value) + 1e-3) * self.unit):
            rounded = float(torch.tensor(candidate, dtype=torch.float32).to(self.dtype))
            if rounded <= value:
                return rounded
        raise ArithmeticError(f"cannot round {value} down to {self.dtype}")


BFLOAT16 = ScreenPrecision(torch.bfloat16, torch.int16, 2.0 ** -7)
FLOAT32 = ScreenPrecision(torch.float32, torch.int32, 2.0 ** -23)


def default_precision() -> ScreenPrecision:
    """bfloat16 products where the CPU multiplies bf16 natively (several times faster), float32 elsewhere."""
    return BFLOAT16 if cpu_bf16_units() else FLOAT32


@dataclass(frozen=True)
class Shortlists:
    cols: np.ndarray  # (anchors, depth) pool rows, best screened first; -1 pads a list shorter than depth
    bound: np.ndarray  # (anchors,) float32 at least the score of any target left out of the list; -inf: none


class BandScreen:
    """Shortlists of the targets most similar to each anchor inside the band, by matrix products in
    `precision`.

    The products are exact up to rounding, and bounded: for anchor a and target b,
    |screened - exact| <= |a| * max_b|b - b~| + |a - a~| * max_b|b~| + accumulation + one rounding
    of the result (x~: x rounded to the dtype). Every product carries an offset column (-c0 on
    the anchor side, 1 on the target side) so the screened value is similarity - c0 > 0 over the
    widened band: positive floats order like their bit patterns, so the band is an integer range
    test, and the rounding of the result is relative to the (smaller) shifted value.
    """

    def __init__(self, vectors: np.ndarray, band: Band, precision: ScreenPrecision | None = None,
                 workers: int | None = None):
        self.precision = precision or default_precision()
        self.size, dim = vectors.shape
        self.dim = dim
        self.matrix, errors, norms, rounded_norms = _screen_matrix(vectors, self.precision.dtype)
        self.errors, self.norms = errors, norms
        self.max_error, self.max_rounded_norm = float(errors.max(initial=0)), float(rounded_norms.max(initial=0))
        self.workers = max(1, workers or torch.get_num_threads())
        # fp32 accumulation of dim + 1 products (the offset is within [-2, 1]), plus float32 rounding of the exact
        self.accumulation = (dim + 1) * 2.0 ** -24 * (self.max_rounded_norm ** 2 + 2) * 1.1 + 1e-7
        widest = float(self.input_error(np.arange(self.size)).max(initial=0))
        margin = 2 * (widest + self.result_error(band.high - band.low + 0.25)) + 1e-3
        self.offset = self.precision.round_down(band.low - margin)
        edge = widest + self.result_error(band.high - self.offset + widest)
        lowest = band.low - self.offset - edge
        if lowest <= 0:
            raise ValueError(f"band screening: the offset {self.offset} leaves the band's lower edge at {lowest}")
        self.low_bits = self.precision.to_bits(lowest) - 1
        self.high_bits = self.precision.to_bits(band.high - self.offset + edge) + 1

    def input_error(self, anchors: np.ndarray) -> np.ndarray:
        """Bound on |exact - product of the rounded vectors| for each anchor against any target."""
        return self.norms[anchors] * self.max_error + self.errors[anchors] * self.max_rounded_norm

    def result_error(self, shifted: float | np.ndarray) -> float | np.ndarray:
        """Bound on the accumulation and the final rounding of a product whose value is about `shifted`."""
        unit = self.precision.unit
        return self.accumulation + unit * (np.abs(shifted) + self.accumulation) / (1 - unit)

    def shortlists(self, anchors: np.ndarray, depth: int) -> Shortlists:
        blocks = [anchors[start:start + ANCHOR_BLOCK] for start in range(0, len(anchors), ANCHOR_BLOCK)]
        if self.workers == 1 or len(blocks) == 1:
            parts = [self._screen_block(block, depth) for block in blocks]
        else:
            with torch_threads(1), ThreadPoolExecutor(self.workers) as pool:
                parts = list(pool.map(lambda block: self._screen_block(block, depth), blocks))
        return Shortlists(np.concatenate([p.cols for p in parts]), np.concatenate([p.bound for p in parts]))

    def _screen_block(self, anchors: np.ndarray, depth: int) -> Shortlists:
        """One block of anchors against every target tile, keeping the `depth` best per anchor."""
        rows = self.matrix[torch.from_numpy(anchors)]
        rows[:, self.dim] = -self.offset
        n, bits = len(anchors), self.precision.numpy_bits
        best = RunningBest(n, depth, bits)
        low = np.full(n, self.low_bits, dtype=bits)
        product = torch.empty(n * TARGET_TILE, dtype=self.precision.dtype)
        scratch = np.empty(n * TARGET_TILE, dtype=bits)
        hits = np.empty(n * TARGET_TILE, dtype=bool)
        for start, stop in target_tiles(self.size):
            tile = self.matrix[start:stop]
            width = len(tile)
            values = product[:n * width].view(n, width)
            torch.matmul(rows, tile.T, out=values)
            values = values.view(self.precision.bits).numpy()
            hit_rows, hit_cols = band_hits(values, low, self.high_bits, scratch[:n * width].reshape(n, width),
                                           hits[:n * width].reshape(n, width))
            if best.add(hit_rows, hit_cols + start, values[hit_rows, hit_cols]):
                low = best.thresholds(low, self.high_bits)
        best.merge()
        return Shortlists(best.cols, self._bounds(anchors, best, depth))

    def _bounds(self, anchors: np.ndarray, best: RunningBest, depth: int) -> np.ndarray:
        """Per anchor, the highest exact similarity of a target its list left out (-inf: nothing in the band was)."""
        if depth >= self.size:
            return np.full(len(anchors), -np.inf)
        last = self.precision.to_values(best.values[:, -1]).astype(np.float64)
        bound = last + self.offset + self.input_error(anchors) + self.result_error(last)
        bound = np.nextafter(bound.astype(np.float32), np.float32(np.inf))  # also bounds the float32 scores
        return np.where(best.full, bound, -np.inf)


def target_tiles(size: int) -> list[tuple[int, int]]:
    """(start, stop) of the target tiles: a small first one, so that every anchor's threshold rises
    above the band's lower edge before the full-size tiles (fewer hits to merge)."""
    edges = [0, min(size, FIRST_TILE), *range(FIRST_TILE + TARGET_TILE, size, TARGET_TILE), size]
    edges = sorted(set(edges))
    return list(zip(edges[:-1], edges[1:]))


def _screen_matrix(vectors: np.ndarray, dtype: torch.dtype, rows_at_once: int = 65536):
    """The targets in `dtype` with a column of ones (for the offset) padded to a multiple of 32, and per
    target: |v - v~| (its rounding error), |v| and |v~|, in float64; converted a slice at a time."""
    size, dim = vectors.shape
    matrix = torch.zeros((size, -(-(dim + 1) // 32) * 32), dtype=dtype)
    matrix[:, dim] = 1
    errors, norms, rounded_norms = (np.empty(size) for _ in range(3))
    for start in range(0, size, rows_at_once):
        part = slice(start, start + rows_at_once)
        exact = torch.from_numpy(np.asarray(vectors[part], dtype=np.float32))
        rounded = exact.to(dtype)
        matrix[part, :dim] = rounded
        errors[part] = torch.linalg.vector_norm(exact.double() - rounded.double(), dim=1).numpy()
        norms[part] = torch.linalg.vector_norm(exact.double(), dim=1).numpy()
        rounded_norms[part] = torch.linalg.vector_norm(rounded.double(), dim=1).numpy()
    return matrix, errors, norms, rounded_norms


def band_hits(values: np.ndarray, low: np.ndarray, high: int, scratch: np.ndarray,
              hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) where low[row] <= values <= high, on bit patterns of floats (low >= 0): one
    wrapping subtraction and one unsigned comparison per cell."""
    unsigned = scratch.dtype.str.replace("i", "u")
    np.subtract(values, low[:, None], out=scratch)
    np.less_equal(scratch.view(unsigned), (high - low.astype(np.int64)).astype(unsigned)[:, None], out=hits)
    return np.divmod(np.flatnonzero(hits), values.shape[1])


class RunningBest:
    """The `depth` largest values seen per row (bit patterns of non-negative floats), and their columns."""

    def __init__(self, rows: int, depth: int, bits):
        self.depth = depth
        self.empty = np.iinfo(bits).min
        self.values = np.full((rows, depth), self.empty, dtype=bits)
        self.cols = np.full((rows, depth), -1, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_count = 0

    @property
    def full(self) -> np.ndarray:
        return self.cols[:, -1] >= 0

    def add(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> bool:
        """Buffer hits; merge them in (and return True) once they outnumber the kept values."""
        if len(rows):
            self.pending.append((rows, cols, values))
            self.pending_count += len(rows)
        if self.pending_count <= self.values.size:
            return False
        self.merge()
        return True

    def merge(self) -> None:
        if not self.pending:
            return
        kept_rows, kept_slots = np.nonzero(self.cols >= 0)
        rows = np.concatenate([kept_rows, *(p[0] for p in self.pending)])
        cols = np.concatenate([self.cols[kept_rows, kept_slots], *(p[1] for p in self.pending)])
        values = np.concatenate([self.values[kept_rows, kept_slots], *(p[2] for p in self.pending)])
        order = np.argsort((rows.astype(np.int64) << 32) - values, kind="stable")  # by row, then value descending
        rows, cols, values = rows[order], cols[order], values[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        keep = rank < self.depth
        self.values.fill(self.empty)
        self.cols.fill(-1)
        self.values[rows[keep], rank[keep]] = values[keep]
        self.cols[rows[keep], rank[keep]] = cols[keep]
        self.pending, self.pending_count = [], 0

    def thresholds(self, low: np.ndarray, high: int) -> np.ndarray:
        """The band's lower edge per row, raised above the depth-th value of the full rows."""
        raised = np.where(self.full, self.values[:, -1].astype(np.int64) + 1, low)
        return np.minimum(raised, high).astype(low.dtype)


@contextlib.contextmanager
def torch_threads(count: int):
    """Run torch ops single-threaded inside (our own threads split the work), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
                   precision: ScreenPrecision | None = None, never_negative: str | None = None) -> list[dict]:
    """Hard negatives for the positive queries of `base` (see the module docstring): row dicts,
    `per_query` per query, or `count` in all (round-robin over queries). `never_negative` names the
    task's rule for candidates a known positive protects (`task.negatives.never_negative`)."""
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
    screen = BandScreen(vectors, band, precision)
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


@dataclass
class HardNegOptions(HardNegativeBand):
    per_query: int = 1  # negatives per query (the best-scoring candidates)

    def __post_init__(self):
        super().__post_init__()
        if self.per_query < 1:
            raise ValueError(f"per_query={self.per_query}: must be at least 1")

    def selection(self) -> dict:
        return {**super().selection(), "per_query": int(self.per_query)}


@register("hard_neg", options=HardNegOptions)
class HardNeg(Strategy):
    options: HardNegOptions
    version = str(VERSION)

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        embedder = self.options.make_embedder(context.cache_dir, setting="augment.hard_neg.embedder")
        selection = self.options.selection()
        cache = ContentCache(Path(context.cache_dir) / "hard_neg")
        key = make_key(self.name, VERSION, digest_table(base), digest_table(context.original), selection,
                       embedder.identity, context.task, context.seed, context.never_negative)
        stats: dict = {}

        def compute() -> Dataset:
            pairs = PairIndex.of(context.original, mix)
            rows = hard_negatives(base, pairs, context.task, embedder, seed=context.seed, source=self.name,
                                  stats=stats, never_negative=context.never_negative, **selection)
            cache.put(key, stats, "json")  # the selection's own counters, reported again on a hit
            return rows_to_table(rows, context.original.features)

        table, hit = cache.get_or_compute(key, compute, "table")
        self.count("cache_hits", int(hit))
        self.count("cache_misses", int(not hit))
        if hit:
            stats.update(cache.get(key, "json") or {})
        for name, value in {**stats, **embedder.counters}.items():
            self.count(name, value)
        return table
