"""The strategies inside `build_training_mix`, configured from the shipped YAMLs."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest
from omegaconf import OmegaConf

from relevance.augment.base import STRATEGIES, known_strategies
from relevance.augment.embedder import Embedder
from relevance.augment.mix import build_strategy, build_training_mix
from relevance.augment.translator import Translator
from relevance.predict import apply_input_strategies
from tests.augment_fixtures import build_tiny_nllb, context_for, demo_table, local_translator, pair_set
from tests.conftest import CONF_DIR, augment_strategy_of, compose_train

NEW = ["translated", "pivot", "to_english", "easy_neg", "hard_neg", "balance"]


def augment_config(names: list[str], overrides: dict | None = None):
    """`augment=[...]` composed by Hydra from conf/augment/<name>.yaml, with `{name: {key: value}}` overrides."""
    dotlist = [f"augment.{name}.{key}={value}" for name, settings in (overrides or {}).items()
               for key, value in settings.items()]
    return compose_train([f"augment=[{','.join(names)}]", *dotlist]).augment


def test_every_yaml_names_its_schema_and_holds_exactly_its_options():
    yamls = sorted(p.stem for p in (CONF_DIR / "augment").glob("*.yaml") if augment_strategy_of(p.stem) == p.stem)
    assert set(NEW) <= set(known_strategies()) and yamls == known_strategies()
    cfg = compose_train([f"augment=[{','.join(yamls)}]", "augment.noise_filter.oof_from=a_run_id"])  # no default
    assert list(cfg.augment) == yamls
    for name in yamls:
        text = (CONF_DIR / "augment" / f"{name}.yaml").read_text()
        assert text.startswith(f"# @package augment.{name}\n")
        assert f"defaults:\n  - /augment_schema/{name}@_here_" in text, name
        options_type = STRATEGIES[name].options_type
        assert OmegaConf.get_type(cfg.augment[name]) is options_type, name  # typed at compose time
        assert set(cfg.augment[name]) == {f.name for f in dataclasses.fields(options_type)}, name
        yaml_keys = set(OmegaConf.load(CONF_DIR / "augment" / f"{name}.yaml")) - {"defaults"}
        assert yaml_keys == set(cfg.augment[name]), name  # each option is stated (and commented) in the YAML
        strategy = build_strategy(name, cfg.augment[name])
        assert isinstance(strategy.options, options_type)
        assert strategy.settings == OmegaConf.to_container(cfg.augment[name]), name


def test_a_preset_is_its_strategy_with_some_options_set():
    """A YAML packaged as another strategy (`translated_cpu` → augment.translated) is that strategy, typed
    by its schema, with a few options changed: a mix names it like a strategy and runs the strategy."""
    presets = {p.stem: augment_strategy_of(p.stem) for p in (CONF_DIR / "augment").glob("*.yaml")
               if augment_strategy_of(p.stem) != p.stem}
    assert presets == {"translated_cpu": "translated", "label_noise_all": "label_noise"}
    for preset, strategy in presets.items():
        text = (CONF_DIR / "augment" / f"{preset}.yaml").read_text()
        assert f"defaults:\n  - {strategy}\n  - _self_\n" in text, preset
        plain, cfg = augment_config(["original", strategy]), augment_config(["original", preset])
        assert list(cfg) == ["original", strategy]
        assert OmegaConf.get_type(cfg[strategy]) is STRATEGIES[strategy].options_type
        changed = set(OmegaConf.load(CONF_DIR / "augment" / f"{preset}.yaml")) - {"defaults"}
        assert changed and {k for k in cfg[strategy] if cfg[strategy][k] != plain[strategy][k]} == changed
        assert isinstance(build_strategy(strategy, cfg[strategy]), STRATEGIES[strategy])
    assert augment_config(["original", "translated_cpu"]).translated.max_rows_per_language == 250


def test_original_easy_hard_balance_mix_then_cached_rebuild(tmp_path, monkeypatch):
    original = demo_table(tmp_path / "demo", "qc", rows=240)
    assert not pair_set(original, 0) & pair_set(original, 1)
    context = context_for(original, tmp_path / "cache")
    cfg = augment_config(["original", "easy_neg", "hard_neg", "balance"])

    result = build_training_mix(cfg, context)
    mix = result.table
    assert set(mix["source"]) == {"original", "easy_neg", "hard_neg", "balance"}
    assert [s.name for s in result.stats] == ["original", "easy_neg", "hard_neg", "balance"]
    assert all(s.rows_added > 0 for s in result.stats)
    assert mix.select(range(len(original))).to_list() == original.to_list()  # no positive turned negative
    assert not pair_set(mix, 0) & pair_set(mix, 1)  # no negative equals a positive pair
    composition = result.composition()
    assert composition["rows"].sum() == len(mix)
    by_source = composition.groupby("source")["rows"].sum().to_dict()
    assert by_source == {s.name: s.rows_added for s in result.stats}
    assert abs(sum(mix["label"]) - 0.5 * len(mix)) <= 1  # balance: the configured 0.5
    hard = next(s for s in result.stats if s.name == "hard_neg")
    assert hard.counters["cache_misses"] == 1 and hard.counters["texts_embedded"] > 0
    assert sum(hard.by_language_label.values()) == hard.rows_added

    monkeypatch.setattr(Embedder, "load", lambda self: pytest.fail("embedder loaded on a cached rebuild"))
    again = build_training_mix(cfg, context)
    assert again.table.to_list() == mix.to_list()
    hard_again = next(s for s in again.stats if s.name == "hard_neg")
    assert (hard_again.counters["cache_hits"], hard_again.counters["cache_misses"]) == (1, 0)
    assert hard_again.counters["texts_embedded"] == 0 and hard_again.counters["queries"] == hard.counters["queries"]

    # The mix is the concatenation base.py promises: each strategy's rows, generated on the mix so far, in
    # order; and its stats count exactly those rows by language and label.
    start = 0
    for stat in again.stats:
        added = build_strategy(stat.name, cfg[stat.name]).generate(mix.select(range(start)), context)
        assert len(added) == stat.rows_added
        assert mix.select(range(start, start + len(added))).to_list() == added.to_list(), stat.name
        by_hand = Counter(f"{row['language']}|{row['label']}" for row in added.to_list())
        assert stat.by_language_label == dict(sorted(by_hand.items())), stat.name
        start += len(added)
    assert start == len(mix) and [s.rows_added for s in again.stats] == [s.rows_added for s in result.stats]


def test_translated_and_pivot_in_the_mix(tmp_path, monkeypatch):
    model = build_tiny_nllb(tmp_path / "tiny_nllb")
    original = demo_table(tmp_path / "demo", "qc", rows=36)
    translator = local_translator(model, max_new_tokens=5, batch_size=8)
    context = context_for(original, tmp_path / "cache" / "augment",
                          eval_languages=[*sorted(set(original["language"])), "de"], translator=translator)
    cfg = augment_config(["original", "translated", "pivot"])
    result = build_training_mix(cfg, context)
    translated = result.table.filter(lambda r: r["source"] == "translated")
    assert set(translated["language"]) == {"de"} and len(translated) == len(original)
    assert [s.name for s in result.input_strategies] == ["pivot"]
    assert "pivot" in result.table.column_names
    english = result.table.filter(lambda r: r["language"] == "en")
    assert english["pivot"] == english["query"]
    # Dev goes through the same input strategies, as the pipeline does (its queries are new: translated now).
    dev = demo_table(tmp_path / "demo", "qc", split="dev", rows=36)
    dev_in = result.transform_inputs(dev, context)
    assert dev_in.column_names == dev.column_names + ["pivot"] and len(dev_in) == len(dev)
    assert all(p.strip() for p in dev_in["pivot"])
    # A rebuild is fully cached.
    monkeypatch.setattr(Translator, "load", lambda self: pytest.fail("the model was loaded on a cached rebuild"))
    again = build_training_mix(cfg, context)
    assert again.table.to_list() == result.table.to_list()
    stats = {s.name: s.counters for s in again.stats}
    assert stats["translated"]["cache_misses"] == 0 and stats["translated"]["cache_hits"] > 0
    assert stats["pivot"]["cache_misses"] == 0 and stats["pivot"]["cache_hits"] > 0
    # `relevance.predict` rewrites an unlabelled file the same way, from the same cache.
    run_cfg = OmegaConf.create({"augment": cfg, "task": {"name": "QC"}, "seed": context.seed,
                                "translator": translator, "paths": {"cache_dir": str(tmp_path / "cache")}})
    unlabelled = dev.remove_columns(["label"])
    scored_in = apply_input_strategies(run_cfg, unlabelled, context.train_languages)
    assert scored_in["pivot"] == dev_in["pivot"]


def test_the_worked_example_in_experiments_readme_is_the_shipped_query_noise(tmp_path):
    readme = (CONF_DIR.parent / "experiments" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", readme, flags=re.DOTALL)
    python_blocks = [body for lang, body in blocks if lang == "python"]
    yaml_blocks = [body for lang, body in blocks if lang == "yaml"]
    assert python_blocks[0] == (CONF_DIR.parent / "relevance" / "augment" / "query_noise.py").read_text()
    assert yaml_blocks[0] == (CONF_DIR / "augment" / "query_noise.yaml").read_text()
    assert "augment=[original,query_noise]" in readme

    original = demo_table(tmp_path / "demo", "qc", rows=240)
    context = context_for(original, tmp_path / "cache")
    cfg = compose_train(["augment=[original,query_noise]", "augment.query_noise.share=0.5"]).augment
    result = build_training_mix(cfg, context)
    noisy = result.table.filter(lambda r: r["source"] == "query_noise")
    by_id = {r["id"]: r for r in original.to_list()}
    assert 0.3 * sum(original["label"]) < len(noisy) < 0.7 * sum(original["label"])
    for row in noisy.to_list():
        source = by_id[row["id"].removesuffix("~noise")]
        assert row["label"] == source["label"] == 1 and row["target"] == source["target"]
        assert row["query"] != source["query"] and abs(len(row["query"]) - len(source["query"])) <= 1
    stats = {s.name: s for s in result.stats}["query_noise"]
    assert stats.counters["positives_seen"] == sum(original["label"])
    assert build_training_mix(cfg, context).table.to_list() == result.table.to_list()
