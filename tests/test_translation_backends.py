"""The `translator=` group: seq2seq (NLLB-style forced BOS, MADLAD-style <2xx> prefix) and
causal-LM backends on tiny random models built here, the checks every translation passes,
the `to_english` mode on training, dev, test and predict inputs alike, and a real run that
logs the rejections per language and the sample of pairs."""

from __future__ import annotations

import json
import math

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.augment.checks import TranslationChecker, identify
from relevance.augment.mix import build_training_mix
from relevance.augment.translator import Translator, make_translator
from relevance.augment.translators.causal_lm import CausalLMTranslator
from relevance.augment.translators.seq2seq import Seq2SeqTranslator
from relevance.augment.translator_config import TranslationChecksConfig
from relevance.config import ConfigError, validate_config
from relevance.predict import apply_input_strategies
from tests.augment_fixtures import (NO_CHECKS, build_tiny_madlad, build_tiny_nllb, context_for, demo_table,
                                    local_translator, table_of)
from tests.conftest import compose_train, run_cli, tiny_run_args
from tests.requirements import require_module


def translator_group(name: str, *overrides: str) -> dict:
    """`translator=<name>` as a run composes it, as a plain dict."""
    return OmegaConf.to_container(compose_train([f"translator={name}", *overrides]).translator)


# -- seq2seq: MADLAD-400 style ----------------------------------------------------------------

def test_madlad_style_puts_the_target_token_before_the_input_and_forces_nothing(tmp_path):
    model_dir = build_tiny_madlad(tmp_path / "madlad")
    config = {**translator_group("madlad400_3b"), **local_translator(model_dir, max_new_tokens=5, batch_size=2)}
    translator = make_translator(config, cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(translator, Seq2SeqTranslator)
    tokenizer, _ = translator.load()
    out = translator.translate(["tapis de yoga", "coque", "chaussures de course"], "fr", "vn")
    assert len(out) == 3
    last = translator.last_generation
    to_vietnamese = tokenizer.convert_tokens_to_ids("<2vi>")  # `vn`, the other spelling, is read as `vi`
    assert last["input_ids"][:, 0].tolist() == [to_vietnamese] * last["input_ids"].shape[0]
    assert "forced_bos_token_id" not in last["kwargs"]
    assert not set(tokenizer.convert_tokens_to_ids(["<2fr>", "<2en>"])) & set(last["input_ids"].flatten().tolist())
    unknown = make_translator({**config, "target_language_token": "<2{iso}x>"}, progress=False)
    unknown.load()
    with pytest.raises(ValueError, match=r"no token '<2dex>'"):
        unknown.encode(["a"], "fr", "de")


# -- causal LM ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory):
    """translator=tiny_causal (a tiny random llama built from its YAML), checks off."""
    config = {**translator_group("tiny_causal"), "checks": dict(NO_CHECKS)}
    return config, tmp_path_factory.mktemp("causal_cache")


def test_causal_lm_prompts_per_pair_batches_greedily_and_stops_at_a_newline(tiny_causal, tmp_path):
    config, cache = tiny_causal
    translator = make_translator(config, cache_dir=cache / "augment", progress=False)
    assert isinstance(translator, CausalLMTranslator)
    prompt = translator.prompt_template("fr", "de")
    assert "from French to German" in prompt and prompt.endswith("French: {text}\nGerman:")
    assert "French: chaussures de course\nGerman: Laufschuhe" in prompt  # few-shot pairs of both languages
    texts = ["tapis de yoga", "coque de téléphone pour iphone", "robe"]
    out = translator.translate(texts, "fr", "de")
    assert len(out) == 3 and all("\n" not in text for text in out)
    last = translator.last_generation
    longest = max(len(ids) for ids in translator._tokenizer(texts, add_special_tokens=False)["input_ids"])
    assert last["kwargs"]["max_new_tokens"] == min(config["max_new_tokens"], math.ceil(3.0 * longest) + 4)
    assert last["kwargs"]["stop_strings"] == ["\n"] and last["kwargs"]["num_beams"] == 1
    assert last["kwargs"]["do_sample"] is False
    assert [p.split("French: ")[-1].split("\n")[0] for p in last["prompts"]] == sorted(texts, key=len)
    assert translator._tokenizer.padding_side == "left"
    assert translator.clean(" German: Laufschuhe\nFrench: x", "de") == "Laufschuhe"
    assert translator.example_pairs("fr", "de")["Laufschuhe"] == "chaussures de course"

    # A pair's own prompt replaces the default one, and changes the cache key.
    own = make_translator({**config, "prompts": {"fr-de": "FR: {text}\nDE:"}}, cache_dir=cache / "augment",
                          progress=False)
    assert own.prompt_template("fr", "de") == "FR: {text}\nDE:" and own.prompt_template("fr", "it") != "FR: {text}\nDE:"
    assert own.cache_key("fr", "de") != translator.cache_key("fr", "de")
    assert own.cache_key("fr", "it") == translator.cache_key("fr", "it")


def test_causal_lm_rerun_is_served_from_the_cache_without_a_model(tiny_causal, monkeypatch):
    config, cache = tiny_causal
    texts = ["esterilla de yoga", "funda de móvil"]
    first = make_translator(config, cache_dir=cache / "augment", progress=False)
    out = first.translate(texts, "es", "it")
    monkeypatch.setattr(Translator, "load", lambda self: pytest.fail("the model was loaded on a cached re-run"))
    again = make_translator(config, cache_dir=cache / "augment", progress=False)
    assert again.translate(texts, "es", "it") == out
    assert again.counters == {"cache_hits": 2, "cache_misses": 0, "model_loads": 0}


# -- checks ------------------------------------------------------------------------------------

def test_checks_reject_copies_wrong_languages_and_runaway_lengths_and_keep_a_sample():
    checker = TranslationChecker(TranslationChecksConfig(sample_size=2))
    assert identify("schwarzes Kleid für Damen") == ["de"]
    assert checker.problem("black dress for women", "schwarzes Kleid für Damen", "de") is None
    assert checker.problem("running shoes", "Running  Shoes", "de") == "copy"
    assert checker.problem("chaussures de course", "zapatillas para correr de mujer", "de") == "language"
    assert checker.problem("phone case", "Handyhülle " * 20, "de") == "length_ratio"
    assert checker.problem("phone case", "  ", "de") == "empty"
    # a small LLM echoing a few-shot example is rejected, unless that example's source is the source
    examples = {"Handyhülle": "phone case", "Laufschuhe": "running shoes"}
    assert checker.problem("iphone 13 case", "handyhülle", "de", examples) == "example_echo"
    assert checker.problem("coque iphone 13", "schwarze Damenkleid", "de",
                           {"schwarzes Damenkleid": "robe noire femme"}) == "example_echo"
    assert checker.problem("phone case", "Handyhülle", "de", examples) != "example_echo"
    assert TranslationChecker(TranslationChecksConfig(reject_copies=False, language=False)).problem(
        "nike air max", "nike air max", "de") is None

    pairs = [("black dress for women", "schwarzes Kleid für Damen"), ("running shoes", "running shoes"),
             ("yoga mat", "Yogamatte für Anfänger"), ("phone case", "x"), ("power bank", "power bank")]
    outcomes = [checker.check(src, out, "en", "de", "de") for src, out in pairs]
    assert outcomes == [True, False, True, False, False]
    counters = checker.counters()
    assert counters["rejected_de"] == 3 and counters["accepted_de"] == 2
    assert counters["rejected_copy"] == 2 and counters["rejected_length_ratio"] == 1
    report = checker.report()["per_language"]["de"]
    assert len(report["sample"]["rejected"]) == 2 and len(report["sample"]["accepted"]) == 2  # capped
    assert report["sample"]["rejected"][0] == {"source_language": "en", "target_language": "de",
                                               "source": "running shoes", "translation": "running shoes",
                                               "reason": "copy"}


def test_translated_drops_rows_failing_the_checks_and_counts_them_per_language(tmp_path):
    model = build_tiny_nllb(tmp_path / "nllb")
    rows = [{"id": f"en{i}", "task": "QC", "language": "en", "query": q, "target": "home,decor", "label": i % 2,
             "source": "original"} for i, q in enumerate(["running shoes", "yoga mat", "phone case"])]
    original = table_of(rows)
    copies = local_translator(model, max_new_tokens=4, checks={"language": False})  # copies: the default check
    context = context_for(original, tmp_path / "cache", eval_languages=["de", "en"], translator=copies)
    from relevance.augment.mix import build_strategy

    strategy = build_strategy("translated", {})
    translator = strategy.translator_for(context)
    # The "model" returns two sources unchanged (copies) and one real translation.
    key = translator.cache_key("en", "de")
    translator.cache.update_json(key, {"running shoes": "running shoes", "yoga mat": "Yogamatte",
                                       "phone case": "Phone Case"})
    added = strategy.generate(original.select([]), context)
    assert added["query"] == ["Yogamatte"] and added["id"] == ["en1~de"]
    assert strategy.counters["rejected_de"] == 2 and strategy.counters["accepted_de"] == 1
    assert strategy.counters["rejected_copy"] == 2 and strategy.counters["model_loads"] == 0
    sample = strategy.artifacts["translation_checks.json"]["per_language"]["de"]["sample"]
    assert {p["source"] for p in sample["rejected"]} == {"running shoes", "phone case"}


# -- to_english --------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["replace", "join"])
def test_to_english_rewrites_training_dev_test_and_predict_queries_alike(tmp_path, how):
    model = build_tiny_nllb(tmp_path / "nllb")
    original = demo_table(tmp_path / "demo", "qc", rows=36)
    dev_and_test = demo_table(tmp_path / "demo", "qc", split="dev", rows=36)
    dev, test = dev_and_test.select(range(0, 18)), dev_and_test.select(range(18, 36))
    translator = local_translator(model, max_new_tokens=5, batch_size=8)
    context = context_for(original, tmp_path / "cache" / "augment", translator=translator,
                          eval_languages=sorted(set(dev_and_test["language"])))
    cfg = compose_train(["augment=[original,to_english]", f"augment.to_english.how={how}"]).augment
    result = build_training_mix(cfg, context)
    assert [s.name for s in result.input_strategies] == ["to_english"]
    reference = make_translator(translator, cache_dir=tmp_path / "cache" / "augment", progress=False)

    def expected(table):
        out = []
        for row in table.to_list():
            english = reference.translate([row["query"]], row["language"], "en")[0]
            if row["language"] == "en" or not english or english == row["query"]:  # kept as it was
                out.append(row["query"])
            else:
                out.append(english if how == "replace" else f"{row['query']} ({english})")
        return out

    dev_in, test_in = result.transform_inputs(dev, context), result.transform_inputs(test, context)
    # relevance.predict rewrites an unlabelled file the same way, from the same cache
    run_cfg = OmegaConf.create({"augment": cfg, "task": {"name": "QC"}, "seed": context.seed,
                                "translator": translator, "paths": {"cache_dir": str(tmp_path / "cache")}})
    scored_in = apply_input_strategies(run_cfg, dev.remove_columns(["label"]), context.train_languages)
    assert scored_in["query"] == dev_in["query"]

    assert result.table["query"] == expected(original)  # the training mix
    assert result.table.column_names == original.column_names
    assert dev_in["query"] == expected(dev) and test_in["query"] == expected(test)
    assert reference.counters["model_loads"] == 0  # the translations the strategy made, from the one cache
    assert any(q != o for q, o in zip(dev_in["query"], dev["query"]))
    assert [r["query"] for r in dev_in.to_list() if r["language"] == "en"] == \
        [r["query"] for r in dev.to_list() if r["language"] == "en"]


# -- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize("override,message", [
    ("translator.batch_size=0", "translator.batch_size=0: must be at least 1"),
    ("translator.backend=rnn", "translator.backend='rnn': use one of"),
    ("translator.checks.min_length_ratio=5", "translator.checks.min_length_ratio=5.0"),
    ("translator.target_language_token='<2{lang}>'", "translator.target_language_token='<2{lang}>': unknown field"),
    ("translator.source=gguf_package", "translator.source=gguf_package needs translator.gguf_file"),
])
def test_bad_translator_values_fail_at_start_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=None) as err:
        validate_config(compose_train(["augment=[original,translated]", override]))
    assert message in str(err.value)


@pytest.mark.parametrize("override,message", [
    ("translator.prompt='Translate: {query}'", "translator.prompt: unknown field {query}"),
    ("translator.prompt='Translate to {target_name}.'", "translator.prompt: the prompt has no {text}"),
    ("+translator.prompts.xx-de='{text}'", "translator.prompts has key 'xx-de'"),
])
def test_bad_causal_prompts_fail_at_start_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        validate_config(compose_train(["translator=gemma3_270m", override]))
    assert message in str(err.value)


def test_old_per_strategy_translator_keys_say_where_they_moved():
    with pytest.raises(ConfigError, match=r"augment.translated.model: .*use translator.model="):
        validate_config(compose_train(["augment=[original,translated]", "+augment.translated.model=/x"]))


# -- a real run --------------------------------------------------------------------------------

def test_a_run_logs_rejections_per_language_and_the_sample_of_pairs(tmp_path, shared_cache):
    root = tmp_path / "project"
    root.mkdir()
    run_cli("train", tiny_run_args(root, shared_cache, "augment=[original,translated,to_english]",
                                   "translator=tiny_seq2seq", "augment.translated.max_rows_per_language=12"),
            cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    metrics = run.data.metrics
    # Random tokens hardly ever pass as German or Italian: rejected rows are counted per language and
    # dropped, and the run trains on what is left.
    for lang in ("de", "it"):
        assert metrics[f"augment_translated_rejected_{lang}"] + metrics.get(f"augment_translated_accepted_{lang}", 0) == 12
        assert metrics[f"augment_translated_rejected_{lang}"] >= 6
    assert metrics["augment_translated_rows"] == sum(metrics.get(f"augment_translated_accepted_{lang}", 0)
                                                      for lang in ("de", "it"))
    assert metrics["augment_translated_cache_misses"] > 0
    assert any(key.startswith("augment_to_english_rejected_") for key in metrics)
    assert run.data.params["translator.name"] == "tiny_seq2seq"
    local = client.download_artifacts(run.info.run_id, "augment/translated/translation_checks.json", str(tmp_path))
    report = json.loads(open(local, encoding="utf-8").read())
    assert set(report["per_language"]) == {"de", "it"}
    rejected = report["per_language"]["de"]["sample"]["rejected"]
    assert rejected and {"source", "translation", "reason"} <= set(rejected[0])
    assert client.download_artifacts(run.info.run_id, "augment/to_english/translation_checks.json", str(tmp_path))


# -- CTranslate2 ------------------------------------------------------------------------------

def test_ctranslate2_converts_once_and_decodes_as_transformers_does(tmp_path, monkeypatch):
    require_module("ctranslate2", "make install (pyproject's fast extra)")
    model = build_tiny_nllb(tmp_path / "nllb", seed=3)
    texts = ["tapis de yoga", "coque", "chaussures de course", "robe noire femme"]
    reference = make_translator(local_translator(model, max_new_tokens=6), cache_dir=tmp_path / "hf" / "augment",
                                progress=False).translate(texts, "fr", "de")
    config = {**translator_group("nllb_600m_ct2"), **local_translator(model, max_new_tokens=6, batch_size=2)}
    fast = make_translator(config, cache_dir=tmp_path / "ct2" / "augment", progress=False)
    assert type(fast).__name__ == "CTranslate2Translator"
    assert fast.translate(texts, "fr", "de") == reference  # same tokens in, same greedy tokens out
    tokens = fast.last_generation["tokens"]
    assert all(row[0] == "fra_Latn" and row[-1] == "</s>" for row in tokens)
    converted = list((tmp_path / "ct2" / "models").glob("ct2-*"))
    assert len(converted) == 1 and (converted[0] / "model.bin").is_file()
    # another translator over new texts reuses the conversion; the cache key is its own
    monkeypatch.setattr("ctranslate2.converters.TransformersConverter.convert",
                        lambda *a, **k: pytest.fail("converted twice"))
    again = make_translator(config, cache_dir=tmp_path / "ct2" / "augment", progress=False)
    assert len(again.translate(["cafetière"], "fr", "it")) == 1 and again.counters["model_loads"] == 1
    assert again.cache_key("fr", "de") != make_translator(local_translator(model)).cache_key("fr", "de")


def test_predict_reads_an_older_runs_translator_from_its_pivot_settings(tmp_path):
    """Runs logged before the translator group kept NLLB's settings under augment.pivot."""
    model = build_tiny_nllb(tmp_path / "nllb")
    table = demo_table(tmp_path / "demo", "qc", split="dev", rows=12).remove_columns(["label"])
    legacy = {"model": str(model), "revision": None, "batch_size": 4, "num_beams": 1, "max_new_tokens": 5,
              "device": "auto"}
    old_run = OmegaConf.create({"augment": {"original": {}, "pivot": legacy}, "task": {"name": "QC"}, "seed": 42,
                                "paths": {"cache_dir": str(tmp_path / "cache")}})
    scored_in = apply_input_strategies(old_run, table, ["en", "es"])
    new_run = OmegaConf.create({**OmegaConf.to_container(old_run), "augment": {"original": {}, "pivot": {}},
                                "translator": local_translator(model, batch_size=4, max_new_tokens=5)})
    assert apply_input_strategies(new_run, table, ["en", "es"])["pivot"] == scored_in["pivot"]
    # unchecked, as that run trained: its random-token pivots are all shown
    languages = table["language"]
    assert all(p != q for p, q, lang in zip(scored_in["pivot"], table["query"], languages) if lang != "en")
