"""Translation throughput per backend, and a re-run served from the content-keyed cache.

Each translator is a `translator=` option (conf/translator/<name>.yaml) composed as a run
composes it. For each: the model is loaded (timed apart), `--rows` distinct queries are
translated from `--source` to `--target` (rows/s), then a new translator over the same
cache translates them again (what the next run of a sweep does). The table gives the re-run's
cost as a share of the first run's (load + translation): the target is at most 5 %.

    .venv/bin/python benchmarks/bench_translation.py                       # tiny random seq2seq + causal LM
    .venv/bin/python benchmarks/bench_translation.py --translators gemma3_270m --rows 256   # the real 270M

The tiny models' numbers measure the machinery (batching, cache), not translation quality.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from relevance.augment.translator import make_translator
from relevance.config import register_configs
from relevance.data.demo import MODIFIERS, PRODUCTS
from relevance.text_tables import markdown_table

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def queries(language: str, rows: int) -> list[str]:
    """Up to `rows` distinct demo-lexicon queries in `language` (product × modifier)."""
    out = []
    for product in PRODUCTS:
        name = product.names.get(language)
        if name is None:
            raise SystemExit(f"--source {language}: the demo lexicon has {sorted(product.names)}")
        out.append(name)
        out += [template.format(name) for tag, template in MODIFIERS.get(language, ()) if tag not in product.skip]
    distinct = list(dict.fromkeys(out))
    return (distinct * (rows // max(1, len(distinct)) + 1))[:rows] if rows > len(distinct) else distinct[:rows]


def translator_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"translator={name}", *overrides]).translator


def measure(name: str, texts: list[str], source: str, target: str, overrides: list[str], cache_root: Path) -> dict:
    config = translator_config(name, overrides)
    cache_dir = cache_root / name / "augment"
    models_dir = Path(os.environ.get("RELEVANCE_CACHE", cache_root)) / "models"  # reuse a converted GGUF
    first = make_translator(config, cache_dir=cache_dir, models_dir=models_dir, progress=False)
    started = time.perf_counter()
    first.load()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    out = first.translate(texts, source, target)
    translate_s = time.perf_counter() - started
    again = make_translator(config, cache_dir=cache_dir, models_dir=models_dir, progress=False)
    started = time.perf_counter()
    assert again.translate(texts, source, target) == out
    rerun_s = time.perf_counter() - started
    assert again.counters["model_loads"] == 0 and again.counters["cache_misses"] == 0
    distinct = len(set(texts))
    return {"translator": name, "backend": config.backend, "rows": distinct, "load_s": load_s,
            "translate_s": translate_s, "rows_per_s": distinct / translate_s, "rerun_s": rerun_s,
            "rerun_share": rerun_s / (load_s + translate_s), "example": f"{texts[0]} → {out[0]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--translators", default="tiny_seq2seq,tiny_causal",
                        help="comma-separated conf/translator options (e.g. gemma3_270m,smollm2_135m)")
    parser.add_argument("--rows", type=int, default=128, help="distinct queries to translate")
    parser.add_argument("--source", default="fr")
    parser.add_argument("--target", default="en")
    parser.add_argument("--override", action="append", default=[], help="e.g. translator.batch_size=32")
    parser.add_argument("--cache-dir", help="cache root (default: a temp folder, so the first run is cold)")
    args = parser.parse_args()
    register_configs()
    texts = queries(args.source, args.rows)
    with tempfile.TemporaryDirectory(prefix="bench_translation_") as tmp:
        root = Path(args.cache_dir or tmp)
        results = [measure(name, texts, args.source, args.target, args.override, root)
                   for name in args.translators.split(",")]
    print(f"{len(set(texts))} distinct {args.source}→{args.target} queries, {os.cpu_count()} CPUs, "
          f"torch threads {__import__('torch').get_num_threads()}\n")
    header = ["translator", "backend", "rows", "load (s)", "translate (s)", "rows/s", "cached re-run (s)",
              "re-run / first", "≤ 5 %"]
    print(markdown_table(header, [[r["translator"], r["backend"], r["rows"], f"{r['load_s']:.2f}",
                                   f"{r['translate_s']:.2f}", f"{r['rows_per_s']:.1f}", f"{r['rerun_s']:.4f}",
                                   f"{100 * r['rerun_share']:.2f} %", "yes" if r["rerun_share"] <= 0.05 else "no"]
                                  for r in results]))
    print("\n" + "\n".join(f"- {r['translator']}: {r['example']}" for r in results))


if __name__ == "__main__":
    main()
