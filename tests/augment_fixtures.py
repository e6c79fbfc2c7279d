"""Helpers for the augmentation tests: demo/real tables, contexts, a tiny NLLB-style
translation model built in seconds, and the worker of the concurrent-cache test (a
module-level function, so `multiprocessing`'s spawn context can import it)."""

from __future__ import annotations

import json
import time
import functools
from pathlib import Path

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext
from relevance.augment.tiny_translators import write_tiny_m2m100, write_tiny_t5
from relevance.data import languages, read_jsonl, write_demo_data
from relevance.data.reader import table_features
from relevance.data.text import normalise_text
from tests.conftest import task_config

REPO = Path(__file__).resolve().parents[1]
SHARED_QC = REPO.parent / "shared" / "data" / "qc"


def demo_table(directory: Path, task: str = "qc", split: str = "train", rows: int = 240, seed: int = 0) -> Dataset:
    task_cfg = task_config(task)
    paths = write_demo_data(directory, task_cfg, seed=seed, train_rows=rows, dev_rows=rows)
    return read_jsonl(paths[split], task_cfg).dataset


def real_qc_rows(n: int, split: str = "train") -> Dataset:
    """The first `n` rows of the shared real QC file (callers skip when it is absent)."""
    rows = []
    with (SHARED_QC / f"{split}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            rows.append({"id": str(obj["id"]), "task": "QC", "language": obj["language"],
                         "query": obj["origin_query"], "target": obj["category_path"], "label": int(obj["label"]),
                         "source": "original"})
            if len(rows) >= n:
                break
    return table_of(rows)


def context_for(original: Dataset, cache_dir: Path, *, task: str = "QC", eval_languages=None,
                seed: int = 42, related_by: str | None = None, never_negative: str | None = "task",
                translator=None) -> AugmentContext:
    """The context of a run of `task`: its relatedness and its never-negative rule come from
    `conf/task/<task>.yaml` unless given; `translator`: the run's translator config (a dict or
    node; None: the NLLB default)."""
    train_languages = languages(original) if len(original) else []
    negatives = task_config(task).negatives
    return AugmentContext(task=task, original=original, train_languages=train_languages,
                          eval_languages=list(eval_languages if eval_languages is not None else train_languages),
                          seed=seed, cache_dir=str(cache_dir),
                          related_by=related_by or negatives.related_by,
                          never_negative=negatives.never_negative if never_negative == "task" else never_negative,
                          translator=translator, models_dir=str(Path(cache_dir) / "models"))


# Checks off: a tiny random model's translations are random tokens (what they are checked for is
# tested in tests/test_translation_backends.py).
NO_CHECKS = {"language": False, "reject_copies": False, "min_length_ratio": 0.0, "max_length_ratio": 1e6}


def local_translator(model_dir: Path, **settings) -> dict:
    """A translator config for a model directory the tests built (NLLB-style unless `settings` say)."""
    return {"source": "local", "model": str(model_dir), "checks": dict(NO_CHECKS), **settings}


def table_of(rows: list[dict], labelled: bool = True) -> Dataset:
    features = table_features(labelled)
    return Dataset.from_dict({name: [r[name] for r in rows] for name in features}, features=features)


def pair_set(table: Dataset, label: int | None = None) -> set[tuple[str, str]]:
    return {(normalise_text(q), normalise_text(t)) for q, t, lab in zip(table["query"], table["target"], table["label"])
            if label is None or lab == label}


# -- a tiny random NLLB-style translation model ------------------------------------------------

def build_tiny_nllb(directory: Path, *, generic_tokenizer: bool = False, seed: int = 0) -> Path:
    """Save a random M2M100 (NLLB's architecture) + a BPE tokenizer with every FLORES code of
    `relevance.augment.languages` as a special token (`relevance.augment.tiny_translators`).

    `generic_tokenizer=False`: a real `NllbTokenizer` (src_lang support, as the hub model);
    True: a plain `PreTrainedTokenizerFast` without src_lang."""
    return write_tiny_m2m100(directory, generic_tokenizer=generic_tokenizer, seed=seed)


def build_tiny_madlad(directory: Path, seed: int = 0) -> Path:
    """A random T5 whose tokenizer has MADLAD-400's ``<2xx>`` target-language tokens."""
    return write_tiny_t5(directory, seed=seed)


# -- concurrent cache worker -------------------------------------------------------------------

@functools.cache
def expected_value(kind: str, n: int):
    """The value stored under key n (cached per process: never mutate it)."""
    if kind == "npy":
        return np.arange(50_000, dtype=np.float32) * (n + 1)  # ~200 KB: a torn write would show
    if kind == "json":
        return {"key": n, "payload": [f"item-{n}-{i}" for i in range(5_000)]}
    return table_of([{"id": f"{n}-{i}", "task": "QC", "language": "en", "query": f"q{n}", "target": f"t{i}",
                      "label": i % 2, "source": "test"} for i in range(500)])


def cache_worker(root: str, worker: int, rounds: int, log_path: str) -> None:
    """Hammer the same keys as the other workers: get_or_compute, plain put over existing
    files, reads checked for completeness, and update_json on one shared dict."""
    from relevance.augment.cache import ContentCache, make_key

    cache = ContentCache(root)
    for r in range(rounds):
        for n in range(6):
            for kind in ("npy", "json", "table"):
                key = make_key("concurrent", kind, n)

                def compute(kind=kind, n=n):
                    with open(log_path, "a", encoding="utf-8") as log:  # O_APPEND: one line per compute
                        log.write(f"{kind}:{n}\n")
                    time.sleep(0.02)
                    return expected_value(kind, n)

                value, _ = cache.get_or_compute(key, compute, kind)
                check_value(kind, n, value)
                if (worker + r + n) % 3 == 0:  # rewrite the same (identical) value while others read it
                    cache.put(key, expected_value(kind, n), kind)
                got = cache.get(key, kind)
                check_value(kind, n, got)
        cache.update_json(make_key("concurrent", "shared-dict"), {f"w{worker}-r{r}": worker * 1000 + r})


def check_value(kind: str, n: int, value) -> None:
    expected = expected_value(kind, n)
    if kind == "npy":
        assert value is not None and np.array_equal(value, expected), f"npy {n} corrupt"
    elif kind == "json":
        assert value == expected, f"json {n} corrupt"
    else:
        assert value is not None and value.to_list() == _table_rows(n), f"table {n} corrupt"


@functools.cache
def _table_rows_cached(n: int) -> tuple:
    return tuple(tuple(sorted(row.items())) for row in expected_value("table", n).to_list())


def _table_rows(n: int) -> list[dict]:
    return [dict(items) for items in _table_rows_cached(n)]
