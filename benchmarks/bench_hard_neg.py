"""Hard negatives at QI scale: the `hard_neg` strategy on N generated item titles against the naive
all-pairs path, measured in the same run.

    .venv/bin/python benchmarks/bench_hard_neg.py                                  # 300k titles, baseline at 20k
    .venv/bin/python benchmarks/bench_hard_neg.py --targets 20000 --baseline-targets 5000   # a quick look
    .venv/bin/python benchmarks/bench_hard_neg.py --exact-max-targets none   # every pool screened exhaustively

Data (deterministic, from the demo lexicon in relevance/data/demo.py): QI-shaped rows, one distinct
generated item title per row, `--rows-per-query` rows per query (the first positive, the others positive
with probability 0.68), queries in eight languages ("<brand> <product name with a modifier>"), positives
titles of the query's product and brand, negatives titles of another product.

Cases, each in its own process (so each peak resident memory is its own):
  new    the real strategy path: build_strategy("hard_neg") with the shipped settings and a fresh cache.
         Phases: embed (Embedder.encode of every distinct title: bf16 where the CPU has native bf16 units,
         chunked content cache), mine (strategy.generate: embeddings from the cache, screening -- every pair
         up to `exact_max_targets` targets, a k-means cell index above -- and exact selection, output table
         written), rerun (a second strategy.generate: the output table's cache hit).
  naive  the path before issue 8 at --baseline-targets: fp32 embeddings through SentenceTransformer.encode
         (rate measured on --baseline-embed titles), then every anchor and every known positive against ALL
         targets in float32, a chunk of queries at a time. Mining runs on the `new` case's vectors, so the
         two paths' picks are compared too.

Prints a Markdown table (targets, queries, embedding rows/s, mining rows/s, total seconds, peak RSS,
x naive) and writes everything to benchmarks/results/hard-neg-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from relevance.augment.base import AugmentContext
from relevance.data.columns import column_values
from relevance.augment.embedder import Embedder
from relevance.augment.hard_neg import EXACT_MAX_TARGETS, Band, PoolRows, QueryTargets
from relevance.augment.mix import build_strategy
from relevance.augment.negatives import PairIndex, per_query_for, positive_queries, rows_to_table
from relevance.data.demo import DEMO_LANGUAGES, MODIFIERS, PRODUCTS
from relevance.data.reader import table_features
from relevance.text_tables import markdown_table

REPO = Path(__file__).resolve().parents[1]
POSITIVE_RATE = 0.68
SYLLABLES = ("ka", "lo", "mi", "zen", "tra", "vo", "rix", "nu", "sa", "pe", "dor", "quin", "el", "fy", "ta", "mo",
             "bex", "ar", "li", "ux")
EXTRAS = ("Free Shipping", "2025 New", "Hot Sale", "High Quality", "Original", "Gift", "Portable", "Mini", "Pro",
          "Plus", "Upgraded", "Durable", "Premium", "Classic", "Universal", "Travel")
COLOURS = ("Black", "White", "Blue", "Grey", "Green", "Red", "Pink", "Beige", "Brown", "Purple")
TEMPLATES = ("{brand} {title} {attrs} {colour}", "{brand} {attrs} {title} {extra} {colour}",
             "{title} {attrs} {colour} - {brand} {code}", "{extra} {brand} {title} {attrs} {colour}",
             "{brand} {code} {title} {attrs} {extra}")


# -- data ------------------------------------------------------------------------------------------

def brand_names(count: int, rng: random.Random) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < count:
        names["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()] = None
    return list(names)


def item_title(rng: random.Random, product, brand: str, colour: str | None) -> str:
    attrs = " ".join(rng.sample(product.attrs, rng.randint(1, 3)))
    code = f"{rng.choice('ABCDEFGHKLMX')}{rng.randint(1, 999)}"
    return rng.choice(TEMPLATES).format(brand=brand, title=product.title, attrs=attrs, extra=rng.choice(EXTRAS),
                                        code=code, colour=colour or rng.choice(COLOURS))


class DistinctTitles:
    """Titles never seen before (drawn again on a repeat)."""

    def __init__(self, rng: random.Random):
        self.rng, self.seen = rng, set()

    def draw(self, product, brand: str, colour: str | None) -> str:
        while True:
            title = item_title(self.rng, product, brand, colour)
            if title not in self.seen:
                self.seen.add(title)
                return title


def other_product(rng: random.Random, index: int) -> int:
    """Another product: half the time from the same top-level category (harder), else any other."""
    same = [i for i, p in enumerate(PRODUCTS) if p.top == PRODUCTS[index].top and i != index]
    if same and rng.random() < 0.5:
        return rng.choice(same)
    return rng.choice([i for i in range(len(PRODUCTS)) if i != index])


def qi_rows(targets: int, rows_per_query: int = 5, seed: int = 0) -> list[dict]:
    """`targets` QI rows with `targets` distinct titles, `rows_per_query` rows per distinct query."""
    rng = random.Random(f"bench-hard-neg:{seed}")
    brands = brand_names(max(50, targets // 200), rng)
    titles = DistinctTitles(rng)
    queries: set[str] = set()
    rows: list[dict] = []
    while len(rows) < targets:
        index, brand, language = rng.randrange(len(PRODUCTS)), rng.choice(brands), rng.choice(DEMO_LANGUAGES)
        tag, template = rng.choice(MODIFIERS[language])
        query = f"{brand.lower()} {template.format(PRODUCTS[index].names[language])}"
        if query in queries:
            continue
        queries.add(query)
        colour = {"black": "Black", "pink": "Pink"}.get(tag)
        for n in range(min(rows_per_query, targets - len(rows))):
            label = int(n == 0 or rng.random() < POSITIVE_RATE)
            product = PRODUCTS[index] if label else PRODUCTS[other_product(rng, index)]
            target = titles.draw(product, brand if label else rng.choice(brands), colour if label else None)
            rows.append({"id": str(len(rows) + 1), "task": "QI", "language": language, "query": query,
                         "target": target, "label": label, "source": "original"})
    return rows


def qi_table(targets: int, rows_per_query: int, seed: int):
    return rows_to_table(qi_rows(targets, rows_per_query, seed), table_features(True))


# -- the naive path: every anchor and every known positive against all targets ----------------------

def all_pairs_picks(vectors: np.ndarray, targets: list[QueryTargets], band: Band, k: int,
                    chunk_cells: int = 4_000_000) -> list[list[int]]:
    """The selection before issue 8: a chunk of queries at a time, (anchors x ALL targets) and (known
    positives x ALL targets) similarity matrices in float32, the band, guard and exclusions applied to
    every cell, then the k best per query."""
    size = len(vectors)
    chunk = max(1, chunk_cells // size)
    picks = []
    for start in range(0, len(targets), chunk):
        part = targets[start:start + chunk]
        score = grouped_max(vectors, [t.anchors for t in part], band)
        nearest = grouped_max(vectors, [t.guards for t in part], None)
        score[nearest > band.guard] = -np.inf
        blocked_rows = np.concatenate([np.full(len(t.blocked), i) for i, t in enumerate(part)])
        score[blocked_rows, np.concatenate([t.blocked for t in part])] = -np.inf
        top = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < size else np.tile(np.arange(size), (len(part), 1))
        for i in range(len(part)):
            cols, values = top[i], score[i, top[i]]
            keep = np.isfinite(values)
            picks.append(cols[keep][np.lexsort((cols[keep], -values[keep]))].tolist())
    return picks


def grouped_max(vectors: np.ndarray, groups: list[np.ndarray], band: Band | None) -> np.ndarray:
    """Per group of pool rows, the highest similarity (inside `band` when given) to every target."""
    rows = np.concatenate(groups)
    sims = vectors[rows] @ vectors.T
    if band is not None:
        sims = np.where((sims >= band.low) & (sims <= band.high), sims, -np.inf)
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    return np.maximum.reduceat(sims, starts, axis=0)


# -- cases -------------------------------------------------------------------------------------------

def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def context_for(table, cache_dir: Path) -> AugmentContext:
    (languages,) = column_values(table, "language")
    languages = sorted(set(languages))
    return AugmentContext(task="QI", original=table, train_languages=languages, eval_languages=languages, seed=0,
                          cache_dir=str(cache_dir), related_by="title_tokens")


def timed(work):
    started = time.perf_counter()
    value = work()
    return value, time.perf_counter() - started


def run_new(args) -> dict:
    table = qi_table(args.targets, args.rows_per_query, args.seed)
    cache_dir = Path(args.cache_dir)
    pool = PairIndex.of(table).pool
    embedder = Embedder(cache_dir=cache_dir)
    _, embed_s = timed(lambda: embedder.encode(pool, dtype=np.float16))
    context = context_for(table, cache_dir)
    options = {"exact_max_targets": args.exact_max_targets}
    strategy = build_strategy("hard_neg", options)
    added, mine_s = timed(lambda: strategy.generate(table, context))
    again = build_strategy("hard_neg", options)
    _, rerun_s = timed(lambda: again.generate(table, context))
    result = {"case": "new", "targets": len(pool), "rows": len(table), "queries": strategy.counters["queries"],
              "embed_s": embed_s, "mine_s": mine_s, "rerun_s": rerun_s, "embedder": embedder.identity,
              "rows_added": len(added), "counters": strategy.counters, "rerun_counters": again.counters,
              "peak_rss_mib": peak_rss_mib()}
    if args.with_picks:
        result["picks"] = sorted(zip(*column_values(added, "query", "target")))
    return result


def run_naive(args) -> dict:
    table = qi_table(args.targets, args.rows_per_query, args.seed)
    pairs = PairIndex.of(table)
    sample = pairs.pool[:args.baseline_embed]
    model = Embedder(dtype="float32").load()
    _, sample_s = timed(lambda: model.encode(sample, batch_size=64, convert_to_numpy=True, normalize_embeddings=True))
    vectors = Embedder(cache_dir=Path(args.cache_dir)).encode(pairs.pool)  # the `new` case's vectors, cached
    queries = positive_queries(table)
    rows_of = PoolRows(pairs.pool)
    band = Band(0.5, 0.85, 0.85)
    started = time.perf_counter()
    targets = [rows_of.targets_of(query, pairs) for query in queries]
    picks = all_pairs_picks(vectors, targets, band, min(per_query_for(None, len(queries), 1), len(pairs.pool)))
    mine_s = time.perf_counter() - started
    return {"case": "naive", "targets": len(pairs.pool), "rows": len(table), "queries": len(queries),
            "embed_s": len(pairs.pool) * sample_s / len(sample), "embed_sample": len(sample), "mine_s": mine_s,
            "peak_rss_mib": peak_rss_mib(),
            "picks": sorted((q.query, pairs.pool[j]) for q, rows in zip(queries, picks) for j in rows)}


CASES = {"new": run_new, "naive": run_naive}


def run_case(case: str, targets: int, args, cache_dir: Path, with_picks: bool = False) -> dict:
    """One case in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--case", case, "--targets", str(targets), "--cache-dir", str(cache_dir),
                   "--rows-per-query", str(args.rows_per_query), "--seed", str(args.seed),
                   "--baseline-embed", str(args.baseline_embed), "--json-out", str(out),
                   "--exact-max-targets", str(args.exact_max_targets)]
        done = subprocess.run(command + (["--with-picks"] if with_picks else []), cwd=REPO, text=True)
        if done.returncode != 0:
            raise SystemExit(f"case {case} at {targets} targets failed (exit {done.returncode})")
        return json.loads(out.read_text())


# -- report ------------------------------------------------------------------------------------------

def summary_rows(new_small: dict, naive: dict, new_big: dict) -> list[list[str]]:
    naive_total = naive["embed_s"] + naive["mine_s"]
    scale = new_big["targets"] / naive["targets"]
    naive_big_total = naive["embed_s"] * scale + naive["mine_s"] * scale ** 2

    def row(label, r, total, versus, rerun=False):
        embed = "cached" if rerun else f"{r['targets'] / r['embed_s']:.0f}"
        mine = f"{r['rows'] / (r['rerun_s'] if rerun else r['mine_s']):.0f}"
        return [label, f"{r['targets']:,}", f"{r['queries']:,}", embed, mine, f"{total:.1f}",
                f"{r['peak_rss_mib']:.0f}", f"{versus / total:.1f}"]

    return [
        ["naive: fp32 embeddings, all pairs fp32", f"{naive['targets']:,}", f"{naive['queries']:,}",
         f"{naive['targets'] / naive['embed_s']:.0f}", f"{naive['rows'] / naive['mine_s']:.0f}", f"{naive_total:.1f}",
         f"{naive['peak_rss_mib']:.0f}", "1.0"],
        row("new: hard_neg strategy", new_small, new_small["embed_s"] + new_small["mine_s"], naive_total),
        row("new: hard_neg strategy", new_big, new_big["embed_s"] + new_big["mine_s"], naive_big_total),
        row("new: second run (output cache hit)", new_big, new_big["rerun_s"], naive_big_total, rerun=True),
    ]


def screen_name(counters: dict) -> str:
    cells = int(counters.get("index_cells", 0))
    return f"cell index ({cells:,} cells)" if cells else "exact (every pair screened)"


def report(new_small: dict, naive: dict, new_big: dict, threads: int) -> str:
    header = ["path", "targets", "queries", "embedding rows/s", "mining rows/s", "total s", "peak RSS MiB",
              "x naive"]
    table = markdown_table(header, summary_rows(new_small, naive, new_big))
    same = new_small["picks"] == naive["picks"]
    differing = len(set(map(tuple, new_small["picks"])) ^ set(map(tuple, naive["picks"])))
    big = new_big["counters"]
    notes = [
        f"- {threads} torch threads; embedder {new_big['embedder']}; naive embedding rate measured on "
        f"{naive['embed_sample']:,} titles, its total at {new_big['targets']:,} targets extrapolated "
        "(embedding x N, all-pairs mining x N²) for the x naive column of the last two rows.",
        f"- mining rows/s: input rows (one distinct title each) per second of `strategy.generate` with the embeddings "
        "cached (reading them, screening, exact selection, writing the output table).",
        f"- screen at {new_small['targets']:,} targets: {screen_name(new_small['counters'])} (pools above "
        f"`exact_max_targets`, {EXACT_MAX_TARGETS:,} by default, use the k-means cell index).",
        f"- same picks as the naive path at {naive['targets']:,} targets: {'yes' if same else 'NO'}"
        + ("" if same else f" ({differing} (query, target) pairs differ)") + ".",
        f"- at {new_big['targets']:,} targets: embed {new_big['embed_s']:.1f} s, mine {new_big['mine_s']:.1f} s, "
        f"{screen_name(big)}, {big.get('screening_rounds', 0):.0f} screening rounds, "
        f"{new_big['rows_added']:,} negatives, "
        f"{big.get('queries_without_candidates', 0):.0f} queries without candidates; second run "
        f"{new_big['rerun_s']:.1f} s (table cache hits: {new_big['rerun_counters'].get('cache_hits', 0):.0f}).",
    ]
    return "\n".join([table, "", *notes])


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=300_000, help="generated titles (= rows) of the big run")
    parser.add_argument("--baseline-targets", type=int, default=20_000, help="size of the naive vs new comparison")
    parser.add_argument("--baseline-embed", type=int, default=4000, help="titles the naive fp32 embedding rate uses")
    parser.add_argument("--rows-per-query", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-max-targets", type=lambda v: None if v.lower() in ("none", "null") else int(v),
                        default=EXACT_MAX_TARGETS,
                        help="the strategy's exact_max_targets (none: every pool exhaustive, as before the cell index)")
    parser.add_argument("--results-dir", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--with-picks", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.case:
        Path(args.json_out).write_text(json.dumps(CASES[args.case](args)))
        return
    import torch

    with tempfile.TemporaryDirectory() as small_cache, tempfile.TemporaryDirectory() as big_cache:
        print(f"[1/3] new path, {args.baseline_targets:,} targets", flush=True)
        new_small = run_case("new", args.baseline_targets, args, Path(small_cache), with_picks=True)
        print(f"[2/3] naive path, {args.baseline_targets:,} targets", flush=True)
        naive = run_case("naive", args.baseline_targets, args, Path(small_cache))
        print(f"[3/3] new path, {args.targets:,} targets", flush=True)
        new_big = run_case("new", args.targets, args, Path(big_cache))
    text = report(new_small, naive, new_big, torch.get_num_threads())
    print(text)
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"hard-neg-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "new_small": new_small, "naive": naive, "new": new_big,
                               "table": text}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
