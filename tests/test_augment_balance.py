"""balance: reaches the target positive ratio, with easy / hard / resampled negatives or copied positives."""

from __future__ import annotations

import pytest
from datasets import concatenate_datasets

from relevance.augment.balance import BalanceOptions, resample_rows, rows_needed
from relevance.augment.base import StrategyOptionsError
from relevance.augment.embedder import Embedder
from relevance.augment.mix import build_strategy
from relevance.augment.negatives import top_level_category
from relevance.data.text import normalise_text
from tests.augment_fixtures import context_for, demo_table, pair_set


@pytest.fixture(scope="module")
def demo_qc(tmp_path_factory):
    return demo_table(tmp_path_factory.mktemp("demo"), "qc", rows=300)  # 68 % positive


def ratio_after(mix, added) -> tuple[int, int]:
    both = concatenate_datasets([mix, added])
    return sum(both["label"]), len(both)


def assert_reaches(mix, added, target: float) -> None:
    positives, total = ratio_after(mix, added)
    assert abs(positives - target * total) <= 1.0, (positives, total, target)  # within a row or two


def test_rows_needed():
    assert rows_needed(70, 30, 0.5) == (0, 40)
    assert rows_needed(30, 70, 0.5) == (1, 40)
    assert rows_needed(50, 50, 0.5) == (1, 0)
    assert rows_needed(60, 40, 0.6) == (1, 0)
    assert rows_needed(0, 0, 0.5) == (1, 0)
    label, k = rows_needed(69, 31, 0.55)
    assert label == 0 and abs(69 / (100 + k) - 0.55) < 0.005


@pytest.mark.parametrize("target", [0.5, 0.6])
def test_easy_negatives_bring_the_mix_to_the_target(demo_qc, tmp_path, target):
    context = context_for(demo_qc, tmp_path)
    settings = {"target_positive_ratio": target, "negatives_from": "easy"}
    strategy = build_strategy("balance", settings)
    added = strategy.generate(demo_qc, context)
    assert_reaches(demo_qc, added, target)
    assert set(added["label"]) == {0} and set(added["source"]) == {"balance"}
    assert not pair_set(added) & pair_set(demo_qc)
    positives = {}
    for q, t, label in zip(demo_qc["query"], demo_qc["target"], demo_qc["label"]):
        if label:
            positives.setdefault(normalise_text(q), set()).add(top_level_category(t))
    assert all(top_level_category(t) not in positives[normalise_text(q)]
               for q, t in zip(added["query"], added["target"]))
    assert strategy.counters["shortfall"] == 0 and strategy.counters["needed"] == len(added)
    again = build_strategy("balance", settings).generate(demo_qc, context)
    assert again.to_list() == added.to_list()


def test_resampled_negatives_are_copies_of_the_mix_negatives(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path)
    added = build_strategy("balance", {"negatives_from": "resample"}).generate(demo_qc, context)
    assert_reaches(demo_qc, added, 0.5)
    assert pair_set(added) <= pair_set(demo_qc, label=0)
    assert set(added["label"]) == {0} and len(set(added["id"])) == len(added)
    seed3 = context_for(demo_qc, tmp_path, seed=3)
    other_seed = build_strategy("balance", {"negatives_from": "resample"}).generate(demo_qc, seed3)
    assert len(other_seed) == len(added) and other_seed["id"] != added["id"]


def test_when_negatives_dominate_positives_are_copied(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path)
    negatives = build_strategy("easy_neg", {"per_query": 3}).generate(demo_qc, context)
    mix = concatenate_datasets([demo_qc, negatives])
    assert sum(mix["label"]) / len(mix) < 0.4
    for source in ("easy", "hard", "resample"):  # positives are copied whatever `negatives_from` says
        added = build_strategy("balance", {"negatives_from": source}).generate(mix, context)
        assert_reaches(mix, added, 0.5)
        assert set(added["label"]) == {1} and pair_set(added) <= pair_set(demo_qc, label=1)
    fewer = build_strategy("balance", {"target_positive_ratio": 0.3}).generate(mix, context)
    assert_reaches(mix, fewer, 0.3) and set(fewer["label"]) == {1}
    copies = resample_rows([{"n": i} for i in range(5)], 12, seed=0, salt="x")
    assert sorted(r["n"] for r in copies) == sorted(list(range(5)) * 2 + [r["n"] for r in copies[10:]])
    assert len({r["n"] for r in copies[10:]}) == 2


def test_hard_negatives_for_balance_respect_the_band(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path / "cache")
    settings = {"negatives_from": "hard", "min_similarity": 0.2, "max_similarity": 0.95, "guard_similarity": 0.9}
    strategy = build_strategy("balance", settings)
    added = strategy.generate(demo_qc, context)
    assert set(added["label"]) == {0} and not pair_set(added) & pair_set(demo_qc)
    assert strategy.counters["shortfall"] == 0 and strategy.counters["needed"] == len(added)
    assert_reaches(demo_qc, added, 0.5)
    embedder = Embedder()
    texts = sorted(set(demo_qc["target"]))
    vectors = dict(zip(texts, embedder.encode(texts)))
    anchors = {}
    for q, lang, t, label in zip(demo_qc["query"], demo_qc["language"], demo_qc["target"], demo_qc["label"]):
        if label:
            anchors.setdefault((lang, q), []).append(t)
    for q, lang, t in zip(added["query"], added["language"], added["target"]):
        sims = [float(vectors[a] @ vectors[t]) for a in anchors[(lang, q)]]
        assert any(0.2 - 1e-4 <= s <= 0.95 + 1e-4 for s in sims) and max(sims) <= 0.9 + 1e-4
    assert strategy.counters["embedding_cache_misses"] == 1
    second = build_strategy("balance", settings)
    assert second.generate(demo_qc, context).to_list() == added.to_list()
    assert second.counters["embedding_cache_hits"] == 1 and second.counters["texts_embedded"] == 0
    # A band nothing falls into: fewer rows than needed, and the shortfall says so.
    narrow = build_strategy("balance", {"negatives_from": "hard", "min_similarity": 0.995, "max_similarity": 1.0,
                                        "guard_similarity": 1.0})
    few = narrow.generate(demo_qc, context)
    assert narrow.counters["shortfall"] > 0 and len(few) + narrow.counters["shortfall"] == narrow.counters["needed"]


def test_balance_builds_on_the_original_table_when_first_and_checks_its_settings(demo_qc, tmp_path):
    context = context_for(demo_qc, tmp_path)
    first = build_strategy("balance", {"negatives_from": "resample"}).generate(demo_qc.select([]), context)
    assert_reaches(demo_qc, first, 0.5)
    with pytest.raises(ValueError, match="negatives_from='nearest'"):
        BalanceOptions(negatives_from="nearest")
    with pytest.raises(ValueError, match="target_positive_ratio"):
        BalanceOptions(target_positive_ratio=1.0)
    with pytest.raises(StrategyOptionsError, match=r"augment\.balance: Key 'from' not in 'BalanceOptions'"):
        build_strategy("balance", {"from": "easy"})  # the key's name before negatives_from
