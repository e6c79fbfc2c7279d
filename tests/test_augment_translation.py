"""Translation: the language map, the `translated` and `pivot` strategies end to end on a
tiny random NLLB-style model built here (no download), the cache, and the offline error.
(Backends, checks and `to_english`: tests/test_translation_backends.py.)"""

from __future__ import annotations

import time

import pytest
from omegaconf import OmegaConf

from relevance.augment.languages import FLORES, UnknownLanguageError, competition_code, to_flores
from relevance.augment.mix import build_strategy
from relevance.augment.pivot import Pivot
from relevance.augment.translated import Translated, TranslatedOptions
from relevance.augment.translator import Translator, make_translator
from relevance.modeling.pretrained import ModelUnavailableError, resolve_device
from relevance.modeling.inputs import format_prompt
from tests.augment_fixtures import build_tiny_nllb, context_for, local_translator, table_of

COMPETITION_LANGUAGES = ["ar", "de", "en", "es", "fr", "id", "it", "ja", "ko", "pl", "pt", "th", "vi"]


def rows(n_per_language: int = 3) -> list[dict]:
    texts = {"en": ["running shoes", "yoga mat", "phone case", "black dress for women"],
             "fr": ["chaussures de course", "tapis de yoga", "coque de téléphone", "robe noire femme"],
             "es": ["zapatillas para correr", "esterilla de yoga", "funda de móvil", "vestido negro"]}
    out = []
    for lang, queries in texts.items():
        for i, query in enumerate(queries[:n_per_language]):
            out.append({"id": f"{lang}{i}", "task": "QC", "language": lang, "query": query,
                        "target": "sports & entertainment,yoga" if i % 2 else "home & garden,decor",
                        "label": i % 2, "source": "original"})
    return out


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory):
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny_nllb"))


def test_language_map_covers_the_competition_and_rejects_unknown_codes():
    assert sorted(FLORES) == COMPETITION_LANGUAGES
    assert (to_flores("de"), to_flores("vn"), to_flores("vi"), to_flores(" AR ")) == (
        "deu_Latn", "vie_Latn", "vie_Latn", "arb_Arab")
    assert competition_code("vn") == "vi" and competition_code(" VI ") == "vi" and competition_code("ita_Latn") == "it"
    assert to_flores("jpn_Jpan") == "jpn_Jpan"
    with pytest.raises(UnknownLanguageError, match="unknown language code 'xx'.*ar, de, en"):
        to_flores("xx")


def test_translated_end_to_end_then_fully_cached(tiny_nllb, tmp_path, monkeypatch):
    original = table_of(rows())
    context = context_for(original, tmp_path / "cache", eval_languages=["de", "en", "es", "fr", "it"],
                          translator=local_translator(tiny_nllb, batch_size=2, max_new_tokens=6))
    strategy = build_strategy("translated", {})
    added = strategy.generate(original.select([]), context)

    assert sorted(set(added["language"])) == ["de", "it"]  # eval languages training lacks
    assert len(added) == 2 * len(original)
    assert set(added["source"]) == {"translated"}
    assert all(q.strip() for q in added["query"])
    by_id = {r["id"]: r for r in original.to_list()}
    for row in added.to_list():
        source_row = by_id[row["id"].rsplit("~", 1)[0]]
        assert row["id"].endswith("~" + row["language"])
        assert (row["label"], row["target"], row["task"]) == (source_row["label"], source_row["target"], "QC")
    assert added.features == original.features

    # The target language was forced as the first generated token.
    translator = strategy.translator
    tokenizer, _ = translator.load()
    last = translator.last_generation
    source_token = tokenizer.convert_tokens_to_ids(to_flores(last["source"]))
    assert last["input_ids"][:, 0].tolist() == [source_token] * last["input_ids"].shape[0]  # [src] text </s>
    forced = tokenizer.convert_tokens_to_ids(to_flores(last["target"]))
    assert last["kwargs"]["forced_bos_token_id"] == forced
    assert last["kwargs"]["num_beams"] == 1 and last["kwargs"]["max_new_tokens"] == 6
    assert last["output_ids"][:, 1].tolist() == [forced] * last["output_ids"].shape[0]
    assert last["output_ids"][0, 0].item() == 2  # decoder start (</s>), as NLLB
    assert strategy.counters["cache_misses"] == 2 * len(original)  # distinct texts × target languages
    assert strategy.counters["cache_hits"] == 0 and strategy.counters["model_loads"] == 1

    # Second run: everything from the cache, no model load.
    monkeypatch.setattr(Translator, "load", lambda self: pytest.fail("the model was loaded on a fully cached run"))
    again = build_strategy("translated", {})
    second = again.generate(original.select([]), context)
    assert second.to_list() == added.to_list()
    assert again.counters["cache_hits"] == 2 * len(original)
    assert again.counters["cache_misses"] == 0 and again.counters["model_loads"] == 0


def test_a_translation_stopped_part_way_keeps_what_it_translated(tiny_nllb, tmp_path, monkeypatch):
    import relevance.augment.translator as translator_module

    texts = [r["query"] for r in rows(4) if r["language"] == "en"] + ["shoes", "a mat", "dress", "case for phone"]
    config = local_translator(tiny_nllb, batch_size=2, max_new_tokens=4)
    monkeypatch.setattr(translator_module, "CHECKPOINT_SECONDS", 0.0)  # save after every batch
    failing = make_translator(config, cache_dir=tmp_path / "cache", progress=False)
    batches = []
    translate_batch = type(failing)._translate_batch

    def fails_on_the_third(self, batch, src, tgt):
        batches.append(batch)
        if len(batches) == 3:
            raise RuntimeError("out of memory")  # a run killed or failed part-way
        return translate_batch(self, batch, src, tgt)

    monkeypatch.setattr(type(failing), "_translate_batch", fails_on_the_third)
    with pytest.raises(RuntimeError, match="out of memory"):
        failing.translate(texts, "en", "de")
    monkeypatch.setattr(type(failing), "_translate_batch", translate_batch)

    rerun = make_translator(config, cache_dir=tmp_path / "cache", progress=False)
    out = rerun.translate(texts, "en", "de")
    assert rerun.counters["cache_hits"] == 4 and rerun.counters["cache_misses"] == len(texts) - 4  # 2 batches kept
    assert {t for batch in batches[:2] for t in batch} <= set(rerun._memory[rerun.cache_key("en", "de")])
    fresh = make_translator(config, cache_dir=tmp_path / "fresh", progress=False).translate(texts, "en", "de")
    assert out == fresh  # what was kept is what an unbroken run translates


def test_translated_options_field_languages_and_sampling(tiny_nllb, tmp_path):
    original = table_of(rows(4))
    translator = local_translator(tiny_nllb, max_new_tokens=4)
    context = context_for(original, tmp_path / "cache", eval_languages=["de"], translator=translator)
    settings = {"target_languages": ["pl", "vn"], "max_rows_per_language": 5}  # vn: the reader's vi
    first = build_strategy("translated", settings).generate(original.select([]), context)
    assert sorted(set(first["language"])) == ["pl", "vi"]
    assert [first["language"].count(lang) for lang in ("pl", "vi")] == [5, 5]
    assert build_strategy("translated", settings).generate(original.select([]), context).to_list() == first.to_list()
    other_seed = context_for(original, tmp_path / "cache", eval_languages=["de"], seed=7, translator=translator)
    assert build_strategy("translated", settings).generate(original.select([]), other_seed)["id"] != first["id"]

    by_target = build_strategy("translated", {"field": "target", "target_languages": ["it"]})
    out = by_target.generate(original.select([]), context)
    assert out["query"] == original["query"] and all(t.strip() for t in out["target"])
    assert out["target"] != original["target"]
    with pytest.raises(ValueError, match="field='title'"):
        TranslatedOptions(field="title")
    with pytest.raises(UnknownLanguageError, match="'xx'"):
        TranslatedOptions(target_languages=["de", "xx"])


@pytest.mark.parametrize("generic", [False, True], ids=["nllb_tokenizer", "plain_tokenizer"])
def test_seq2seq_input_is_source_token_text_eos_whatever_the_tokenizer(tmp_path, generic):
    model_dir = build_tiny_nllb(tmp_path / "tiny", generic_tokenizer=generic)
    translator = make_translator(local_translator(model_dir, max_new_tokens=4), cache_dir=tmp_path / "cache",
                                 progress=False)
    tokenizer, _ = translator.load()
    assert hasattr(type(tokenizer), "src_lang") != generic
    batch = translator.encode(["tapis de yoga", "coque"], "fr", "de")
    french, english = tokenizer.convert_tokens_to_ids("fra_Latn"), tokenizer.convert_tokens_to_ids("eng_Latn")
    assert batch["input_ids"][:, 0].tolist() == [french] * 2
    assert english not in batch["input_ids"].flatten().tolist()  # not NllbTokenizer's default src_lang
    for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
        assert ids[sum(mask) - 1] == tokenizer.eos_token_id
    out = translator.translate(["tapis de yoga", "coque", "tapis de yoga"], "fr", "de")
    assert len(out) == 3 and out[0] == out[2]
    assert translator.last_generation["output_ids"][:, 1].tolist() == [tokenizer.convert_tokens_to_ids("deu_Latn")] * 2
    assert translator.counters == {"cache_hits": 0, "cache_misses": 2, "model_loads": 1}
    assert translator.translate(["x"], "en", "eng_Latn") == ["x"]  # same language: nothing to do


def test_pivot_adds_an_english_pivot_even_to_unlabelled_tables(tiny_nllb, tmp_path):
    unlabelled = table_of([{k: v for k, v in r.items() if k != "label"} for r in rows()], labelled=False)
    assert "label" not in unlabelled.column_names
    context = context_for(unlabelled, tmp_path / "cache",
                          translator=OmegaConf.create(local_translator(tiny_nllb, max_new_tokens=5)))
    strategy = build_strategy("pivot", OmegaConf.create({}))
    assert strategy.rewrites_inputs() and len(strategy.generate(unlabelled.select([]), context)) == 0
    out = strategy.transform_inputs(unlabelled, context)
    assert out.column_names == unlabelled.column_names + ["pivot"]
    task_cfg = OmegaConf.create({"prompt": "Q: {query} T: {target}", "pivot_prompt": " | EN: {pivot}"})
    for row in out.to_list():
        if row["language"] == "en":
            assert row["pivot"] == row["query"]
            assert "EN:" not in format_prompt(row, task_cfg)
        else:
            assert row["pivot"].strip()
    foreign = [r for r in out.to_list() if r["language"] != "en" and r["pivot"] != r["query"]]
    assert foreign and all(f"EN: {r['pivot']}" in format_prompt(r, task_cfg) for r in foreign)
    misses = strategy.counters["cache_misses"]
    assert misses == sum(1 for lang in unlabelled["language"] if lang != "en")
    # Applied again (dev, predict): the same pivots, from the cache, replacing the column.
    again = strategy.transform_inputs(out, context)
    assert again["pivot"] == out["pivot"] and again.column_names == out.column_names
    assert strategy.counters["cache_misses"] == misses and strategy.counters["cache_hits"] >= misses


def test_a_missing_model_fails_fast_and_says_which_setting_to_change(tmp_path):
    original = table_of(rows(1))
    context = context_for(original, tmp_path / "cache", eval_languages=["de", "en"])
    started = time.perf_counter()
    missing_hub = {"model": "no-such-org/no-such-nllb-model"}
    context = context_for(original, tmp_path / "cache", eval_languages=["de", "en"], translator=missing_hub)
    with pytest.raises(ModelUnavailableError, match=r"translator\.model=/path/to/local/dir") as err:
        Translated(TranslatedOptions()).generate(original.select([]), context)
    assert time.perf_counter() - started < 30
    assert "'no-such-org/no-such-nllb-model' could not be loaded" in str(err.value)
    missing_dir = context_for(original, tmp_path / "cache", translator={"model": str(tmp_path / "missing_dir")})
    with pytest.raises(ModelUnavailableError, match="no such directory.*translator.model"):
        Pivot().transform_inputs(original, missing_dir)
    # Nothing to translate → the model is never needed.
    nothing = context_for(original, tmp_path / "cache", eval_languages=["en", "es", "fr"], translator=missing_hub)
    assert len(Translated(TranslatedOptions()).generate(original.select([]), nothing)) == 0


def test_translation_cache_key_follows_model_languages_and_decoding(tmp_path):
    def key(**kw):
        settings = {"model": "org/model", "num_beams": 1, "max_new_tokens": 64, **kw}
        source, target = settings.pop("from_", "fr"), settings.pop("to", "de")
        return make_translator(settings).cache_key(source, target)

    base = key()
    # batch size, checks and code spelling do not matter; the device only as the one `auto` resolves to
    assert base == key(batch_size=3) == key(to="deu_Latn") == key(device=resolve_device("auto")) == \
        key(checks={"language": False})
    assert len({base, key(model="org/other"), key(revision="v2"), key(num_beams=4), key(max_new_tokens=32),
                key(from_="es"), key(to="it"), key(target_language_token="__{iso}__"),
                key(target_language_as="source_prefix"), key(backend="causal_lm", prompt="{text} ->"),
                key(backend="causal_lm", prompt="{text} =>")}) == 11
