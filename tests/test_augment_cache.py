"""The content-keyed augmentation cache: round trips, reuse, keys, concurrent writers."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import numpy as np
import pytest

from relevance.augment.cache import ContentCache, digest_table, digest_texts, make_key, stable_seed
from tests.augment_fixtures import cache_worker, check_value, expected_value, table_of

ROW = {"id": "1", "task": "QC", "language": "en", "query": "yoga mat", "target": "sports,yoga", "label": 1,
       "source": "original"}


def test_round_trips_for_every_kind(tmp_path):
    cache = ContentCache(tmp_path)
    table = table_of([ROW, {**ROW, "id": "2", "label": 0, "target": "home,candles"}])
    values = {"json": {"a": [1, 2], "ü": "ß"}, "npy": np.eye(3, dtype=np.float32), "table": table}
    for kind, value in values.items():
        key = make_key("round-trip", kind)
        assert cache.get(key, kind) is None and not cache.contains(key)
        path = cache.put(key, value)
        assert path.suffix == {"json": ".json", "npy": ".npy", "table": ".parquet"}[kind]
        assert cache.contains(key) and cache.contains(key, kind)
    assert cache.get(make_key("round-trip", "json")) == values["json"]
    got = cache.get(make_key("round-trip", "npy"))
    assert got.dtype == np.float32 and np.array_equal(got, values["npy"])
    back = cache.get(make_key("round-trip", "table"), "table")
    assert back.features == table.features and back.to_list() == table.to_list()
    empty = table.select([])
    cache.put(make_key("empty"), empty)
    assert len(cache.get(make_key("empty"), "table")) == 0
    with pytest.raises(ValueError, match="bad cache key"):
        cache.path("../escape")


def test_get_or_compute_reuses_and_never_calls_compute_on_a_hit(tmp_path):
    cache = ContentCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 41 + len(calls)}

    key = make_key("reuse", {"setting": 1})
    assert cache.get_or_compute(key, compute) == ({"value": 42}, False)

    def must_not_run():
        raise AssertionError("compute was called on a cache hit")

    again = ContentCache(tmp_path)  # a new process would start like this
    assert again.get_or_compute(key, must_not_run) == ({"value": 42}, True)
    assert again.get_or_compute(key, must_not_run, "json") == ({"value": 42}, True)
    assert (cache.hits, cache.misses, again.hits, again.misses, len(calls)) == (0, 1, 2, 0, 1)


def test_an_unreadable_file_is_a_miss_and_gets_rewritten(tmp_path):
    cache = ContentCache(tmp_path)
    key = make_key("damaged")
    path = cache.put(key, np.ones(4))
    path.write_bytes(b"not a numpy file")
    value, hit = cache.get_or_compute(key, lambda: np.zeros(4), "npy")
    assert not hit and np.array_equal(value, np.zeros(4))
    assert np.array_equal(cache.get(key, "npy"), np.zeros(4))


def test_key_changes_with_input_config_and_model():
    rows = table_of([ROW, {**ROW, "id": "2", "label": 0, "target": "home,candles"}])
    base = make_key("hard_neg", digest_table(rows), {"per_query": 1, "band": [0.5, 0.85]}, "model-a@v1")
    assert base == make_key("hard_neg", digest_table(rows), {"band": [0.5, 0.85], "per_query": 1}, "model-a@v1")
    changed_input = table_of([ROW, {**ROW, "id": "2", "label": 1, "target": "home,candles"}])
    variants = [
        make_key("hard_neg", digest_table(changed_input), {"per_query": 1, "band": [0.5, 0.85]}, "model-a@v1"),
        make_key("hard_neg", digest_table(rows), {"per_query": 2, "band": [0.5, 0.85]}, "model-a@v1"),
        make_key("hard_neg", digest_table(rows), {"per_query": 1, "band": [0.5, 0.85]}, "model-b@v1"),
        make_key("hard_neg", digest_table(rows), {"per_query": 1, "band": [0.5, 0.85]}, "model-a@v2"),
    ]
    assert len({base, *variants}) == 5


def test_table_digest_is_content_based_and_stable():
    rows = [ROW, {**ROW, "id": "2", "label": 0, "target": "home,candles"}]
    a, b = table_of(rows), table_of([dict(r) for r in rows])
    assert digest_table(a) == digest_table(b)
    assert digest_table(a) == digest_table(table_of(rows + rows).select([0, 1]))  # built differently, same rows
    assert digest_table(a) != digest_table(table_of(rows[::-1]))  # order is content
    assert digest_table(a) != digest_table(table_of([rows[0], {**rows[1], "query": "yoga  mat"}]))
    assert digest_table(a, ["query", "target"]) == digest_table(table_of([{**r, "id": "x"} for r in rows]),
                                                                ["query", "target"])
    assert digest_texts(["ab", "c"]) != digest_texts(["a", "bc"])
    assert stable_seed(1, "x") == stable_seed(1, "x") != stable_seed(2, "x")


def test_concurrent_writers_leave_complete_correct_files_and_no_temp_files(tmp_path):
    """Four spawned processes get_or_compute / put / get the same keys and merge into one
    JSON dict at the same time. Each key is computed once (the lock), every read is
    complete (atomic replace), no entry of the shared dict is lost, no temp file remains."""
    root = tmp_path / "cache"
    log_path = tmp_path / "computes.log"
    log_path.touch()
    workers, rounds = 4, 3
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=cache_worker, args=(str(root), w, rounds, str(log_path))) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * workers, "a worker failed (see its traceback above)"

    computes = Counter(log_path.read_text().split())
    assert computes == Counter({f"{kind}:{n}": 1 for kind in ("npy", "json", "table") for n in range(6)})
    cache = ContentCache(root)
    for kind in ("npy", "json", "table"):
        for n in range(6):
            check_value(kind, n, cache.get(make_key("concurrent", kind, n), kind))
    shared = cache.get(make_key("concurrent", "shared-dict"), "json")
    assert shared == {f"w{w}-r{r}": w * 1000 + r for w in range(workers) for r in range(rounds)}
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")]
    data_files = [p for p in files if p.parent.name != ".locks"]
    assert len(data_files) == 3 * 6 + 1
    assert expected_value("npy", 0).nbytes < max(p.stat().st_size for p in data_files)
