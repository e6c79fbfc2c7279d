"""Band screening for `hard_neg`: per anchor, a shortlist of the targets most similar to it inside
the band, and a proven bound on what the shortlist left out.

Every anchor is screened against every target by matrix products in bfloat16 (float32 on CPUs
without native bf16 units), one anchor block x target tile at a time. Per anchor only the `depth`
highest products inside the band (widened by the products' proven error bound) are kept, by
integer comparisons on the products' bit patterns (no Python loop over pairs). Memory is linear in
the targets, never targets² or queries x targets. `hard_neg_mining` scores the shortlists exactly.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from relevance.hardware import cpu_bf16_units

ANCHOR_BLOCK = 512  # anchors per matrix product
TARGET_TILE = 8192  # targets per matrix product
FIRST_TILE = 1024  # targets in the first product of a block


@dataclass(frozen=True)
class Band:
    """The selection band and guard, as `BandScreen` and `hard_neg_mining.best_targets` read them."""

    low: float  # min_similarity
    high: float  # max_similarity
    guard: float  # guard_similarity


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


# -- large pools: a cell index instead of every anchor against every target -----------------------------

CELL_TARGETS = 128  # targets per k-means cell on average
CELL_PROBES = 16  # cells searched per anchor: its nearest centroids
KMEANS_ROUNDS = 6  # Lloyd iterations of the (spherical) k-means
KMEANS_SAMPLE = 48  # training targets per cell (a seeded sample)
CELL_SLACK = 1e-4  # bound on |float32 product - exact| for unit float16 vectors (384 dims: < 3e-5)


class CellIndex:
    """Shortlists like `BandScreen`'s, searched in the targets' nearest k-means cells only.

    The targets are clustered (spherical k-means on a seeded sample, every target then put in the cell of
    its nearest centroid); an anchor is compared, in float32, only with the targets of its `probes` nearest
    cells (~probes x CELL_TARGETS targets instead of all of them). Inside those cells the shortlist and its
    bound are exact as `BandScreen`'s are (a target left out is at most `bound` similar to the anchor), so
    `hard_neg_mining.mine` picks, per query, the exact best of its anchors' probed cells; a target in a cell
    none of them probes is never seen, which is where the picks can differ from scoring every pair
    (tests/test_hard_neg_scale.py measures how often). Memory: the targets in float32 in cell order.
    """

    def __init__(self, vectors: np.ndarray, band: Band, probes: int = CELL_PROBES,
                 cell_targets: int = CELL_TARGETS, seed: int = 0):
        self.size, self.dim = vectors.shape
        self.band = band
        self.cells = max(1, self.size // cell_targets)
        self.probes = min(probes, self.cells)
        self.centroids = spherical_kmeans(vectors, self.cells, seed)
        assigned = nearest_cells(vectors, self.centroids, 1)[:, 0]
        self.order = np.argsort(assigned, kind="stable")  # pool rows in cell order
        self.position = np.argsort(self.order)  # where each pool row is in cell order
        self.starts = np.searchsorted(assigned[self.order], np.arange(self.cells + 1))
        self.matrix = np.asarray(vectors, dtype=np.float32)[self.order]  # the targets in cell order

    def shortlists(self, anchors: np.ndarray, depth: int) -> Shortlists:
        n = len(anchors)
        rows = self.matrix[self.position[anchors]] if n else np.zeros((0, self.dim), np.float32)
        probed = nearest_cells(rows, self.centroids, self.probes)  # (n, probes)
        entries = np.argsort(probed.ravel(), kind="stable")  # (anchor, probe) entries, i * probes + j, by cell
        cells = probed.ravel()[entries]
        bounds = np.searchsorted(cells, np.arange(self.cells + 1))
        low, high = self.band.low - CELL_SLACK, self.band.high + CELL_SLACK
        # per (anchor, probe): the cell's `depth` best in-band hits (-inf / -1 pad)
        values = np.full((n * self.probes, depth), -np.inf, dtype=np.float32)
        cols = np.full((n * self.probes, depth), -1, dtype=np.int64)
        dropped = np.zeros(n, dtype=bool)  # an anchor with in-band hits a cell's own top `depth` left out
        for cell in np.flatnonzero(np.diff(bounds)):
            start, stop = self.starts[cell], self.starts[cell + 1]
            if stop == start:
                continue
            here = entries[bounds[cell]:bounds[cell + 1]]
            sims = rows[here // self.probes] @ self.matrix[start:stop].T
            sims[(sims < low) | (sims > high)] = -np.inf
            keep = min(depth, stop - start)
            if keep < stop - start:
                top = np.argpartition(-sims, keep - 1, axis=1)[:, :keep]
                dropped[here // self.probes] |= np.isfinite(sims).sum(axis=1) > keep
            else:
                top = np.broadcast_to(np.arange(keep), sims.shape)
            values[here, :keep] = np.take_along_axis(sims, top, axis=1)
            cols[here, :keep] = self.order[start + top]
        return _best(values.reshape(n, -1), cols.reshape(n, -1), depth, dropped)


def _best(values: np.ndarray, cols: np.ndarray, depth: int, dropped: np.ndarray) -> Shortlists:
    """Per row, the `depth` best hits (ties: lower pool row first) and the bound on the hits left out."""
    left_out = (np.isfinite(values).sum(axis=1) > depth) | dropped  # then the list is full
    if values.shape[1] > depth:
        top = np.argpartition(-values, depth - 1, axis=1)[:, :depth]
        values, cols = np.take_along_axis(values, top, axis=1), np.take_along_axis(cols, top, axis=1)
    order = np.lexsort((cols, -values), axis=1)
    values, cols = np.take_along_axis(values, order, axis=1), np.take_along_axis(cols, order, axis=1)
    # every hit left out is at most the list's last value, up to the products' error
    bound = np.nextafter((values[:, -1].astype(np.float64) + CELL_SLACK).astype(np.float32), np.float32(np.inf))
    return Shortlists(np.where(np.isfinite(values), cols, -1), np.where(left_out, bound, -np.inf))


def nearest_cells(vectors: np.ndarray, centroids: np.ndarray, count: int, rows_at_once: int = 8192) -> np.ndarray:
    """Per vector, the `count` centroids with the highest dot product (any order), a slice at a time."""
    out = np.empty((len(vectors), count), dtype=np.int64)
    for start in range(0, len(vectors), rows_at_once):
        sims = np.asarray(vectors[start:start + rows_at_once], dtype=np.float32) @ centroids.T
        if count == 1:
            out[start:start + len(sims), 0] = sims.argmax(axis=1)
        else:
            out[start:start + len(sims)] = np.argpartition(-sims, count - 1, axis=1)[:, :count]
    return out


def spherical_kmeans(vectors: np.ndarray, cells: int, seed: int = 0) -> np.ndarray:
    """Unit centroids of `cells` clusters of a seeded sample of `vectors` (Lloyd's iterations on cosine)."""
    rng = np.random.default_rng(seed)
    sample_size = min(len(vectors), cells * KMEANS_SAMPLE)
    sample = np.asarray(vectors[np.sort(rng.choice(len(vectors), sample_size, replace=False))], dtype=np.float32)
    centroids = sample[rng.choice(sample_size, cells, replace=False)]
    for _ in range(KMEANS_ROUNDS):
        assigned = nearest_cells(sample, centroids, 1)[:, 0]
        sums = torch.zeros(centroids.shape).index_add_(0, torch.from_numpy(assigned), torch.from_numpy(sample)).numpy()
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids)  # an empty cell keeps its centroid
    return centroids.astype(np.float32)
