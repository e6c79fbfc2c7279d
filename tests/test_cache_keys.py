"""Generated data, caches and outputs are keyed by everything that makes them (issue 24, item 3): two settings
that make different contents never share a folder or a key, so one run never reads or overwrites another's
(docs/portable-model.md, "What the caches are keyed by"); and a command run from a folder writes only there."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import relevance.data.demo as demo
from relevance.augment.embedder import Embedder
from relevance.data.loading import load_splits
from relevance.modeling.sources.gguf_package import gguf_conversion_key, locate_packaged_gguf
from relevance.modeling.tiny import tiny_model_key, tokenizer_corpus
from tests.conftest import compose_train, run_cli


def demo_dir(tmp_path, *overrides) -> Path:
    return Path(compose_train([f"paths.cache_dir={tmp_path}", *overrides]).data.dir)


@pytest.mark.parametrize("setting", ["data.generate.seed=1", "data.generate.train_rows=96",
                                     "data.generate.dev_rows=96", "task=qi", "task.target_field=category",
                                     "task.name=QC2"])
def test_demo_configurations_differing_in_one_setting_get_their_own_folders(tmp_path, setting):
    default, other = demo_dir(tmp_path), demo_dir(tmp_path, setting)
    assert default.parent == other.parent == tmp_path / "demo"
    assert default != other, setting


def test_every_generator_setting_is_in_the_folder_name_even_one_added_later():
    task = compose_train().task
    settings = {"seed": 0, "train_rows": 480, "dev_rows": 480}
    name = demo.demo_folder_name(settings, task)
    assert name.startswith("seed0-train480-dev480-")
    assert demo.demo_folder_name({**settings, "positive_rate": 0.5}, task) != name  # a field the schema lacks today
    assert demo.demo_folder_name(dict(settings), task) == name  # and the same settings, the same folder


def edited_generator(tmp_path, monkeypatch, old: str, new: str):
    """relevance/data/demo.py with one edit, loaded as a module of its own."""
    source = Path(demo.__file__).read_text()
    assert old in source
    name = f"demo_edited_{len(list(tmp_path.iterdir()))}"
    edited = tmp_path / f"{name}.py"
    edited.write_text(source.replace(old, new, 1))
    spec = importlib.util.spec_from_file_location(name, edited)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_changed_generator_gets_another_folder_and_a_docstring_edit_keeps_it(tmp_path, monkeypatch):
    """The folder is keyed by the rows the generator makes: an edited rate or lexicon never reuses the old
    rows; an edit that changes no row keeps the folder (and the README's paths)."""
    task, settings = compose_train().task, {"seed": 0, "train_rows": 480, "dev_rows": 480}
    rate = edited_generator(tmp_path, monkeypatch, "POSITIVE_RATE = 0.68", "POSITIVE_RATE = 0.5")
    assert rate.generate_demo_rows(task, "train", 0, 100) != demo.generate_demo_rows(task, "train", 0, 100)
    assert rate.demo_folder_name(settings, task) != demo.demo_folder_name(settings, task)
    words = tmp_path / "demo_words.json"  # the word list with a brand of QI titles edited
    words.write_text(demo.WORDS_FILE.read_text(encoding="utf-8").replace('"Xiaomo", ', '"Xiaomi", ', 1), "utf-8")
    lexicon = edited_generator(tmp_path, monkeypatch, 'resources.files("relevance.data") / "demo_words.json"',
                               f"Path({str(words)!r})")
    qi = compose_train(["task=qi"]).task
    assert lexicon.demo_folder_name(settings, qi) != demo.demo_folder_name(settings, qi)
    docstring = edited_generator(tmp_path, monkeypatch, "Small generated QC/QI data", "Small generated data")
    assert docstring.demo_folder_name(settings, task) == demo.demo_folder_name(settings, task)


def test_one_demo_setting_never_overwrites_another_settings_rows(tmp_path):
    """The issue's case: `make sweep-smoke` rewrote the demo's 1,440-row training file with 480 rows."""
    big = compose_train([f"paths.cache_dir={tmp_path}", "experiment=demo"])
    load_splits(big.data, big.task)
    train_file = Path(big.data.dir) / big.data.train_file
    before = train_file.read_bytes()
    assert len(before.splitlines()) == big.data.generate.train_rows == 1440
    small = compose_train([f"paths.cache_dir={tmp_path}", "experiment=smoke_sweep"])
    load_splits(small.data, small.task)
    assert Path(small.data.dir) != Path(big.data.dir)
    assert train_file.read_bytes() == before


def test_a_tiny_model_is_keyed_by_the_versions_that_build_it(monkeypatch):
    import tokenizers
    import torch

    spec, corpus = {"architecture": "llama", "vocab_size": 1024, "seed": 0}, tokenizer_corpus()
    key = tiny_model_key(spec, corpus)
    assert tiny_model_key({**spec, "seed": 1}, corpus) != key
    monkeypatch.setattr(tokenizers, "__version__", "0.0.1")  # another BPE trainer: another tokenizer
    assert tiny_model_key(spec, corpus) != key
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "1.0.0+cpu")  # another initialisation
    assert tiny_model_key(spec, corpus) != key


def test_a_gguf_conversion_is_keyed_by_content_and_the_gguf_reader(tmp_path, monkeypatch):
    gguf = tmp_path / "a.gguf"
    gguf.write_bytes(b"GGUF one")
    key = gguf_conversion_key(gguf)
    other = tmp_path / "b.gguf"
    other.write_bytes(b"GGUF two")
    assert gguf_conversion_key(other) != key
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.0.1" if name == "gguf" else real_version(name))  # another dequantizer
    assert gguf_conversion_key(gguf) != key


def fake_weights_release(site: Path, version: str) -> None:
    """An installed weights package `fake_weights_pkg` (distribution fake-weights) whose GGUF is assembled."""
    for old in site.glob("fake_weights-*.dist-info"):
        for path in old.iterdir():
            path.unlink()
        old.rmdir()
    package = site / "fake_weights_pkg"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        f"def assemble(output_path, overwrite=False):\n    Path(output_path).write_text('weights {version}')\n")
    info = site / f"fake_weights-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-weights\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fake_weights_pkg\n")
    importlib.invalidate_caches()
    sys.modules.pop("fake_weights_pkg", None)


def test_an_assembled_gguf_is_kept_per_package_release(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    fake_weights_release(site, "1.0.0")
    first = locate_packaged_gguf("fake_weights_pkg", "w.gguf", tmp_path / "gguf")
    assert first == tmp_path / "gguf" / "fake-weights-1.0.0" / "w.gguf" and first.read_text() == "weights 1.0.0"
    fake_weights_release(site, "1.1.0")
    second = locate_packaged_gguf("fake_weights_pkg", "w.gguf", tmp_path / "gguf")
    assert second.parent.name == "fake-weights-1.1.0" and second.read_text() == "weights 1.1.0"
    assert first.read_text() == "weights 1.0.0"  # the older release's file is neither reused nor overwritten
    sys.modules.pop("fake_weights_pkg", None)


def test_embeddings_are_keyed_by_batch_size_and_device_kind(tmp_path):
    texts = ["running shoes", "yoga mat"]
    one = Embedder(batch_size=64, device="cpu", dtype="float32", cache_dir=tmp_path)
    assert one.cache_key(texts) != Embedder(batch_size=32, device="cpu", dtype="float32",
                                            cache_dir=tmp_path).cache_key(texts)
    assert one.identity != Embedder(batch_size=64, device="cuda:1", dtype="float32").identity
    assert Embedder(batch_size=64, device="cuda:0", dtype="float32").identity == Embedder(
        batch_size=64, device="cuda:1", dtype="float32").identity  # the kind of device, not which one
    assert one.cache_key(texts) == Embedder(batch_size=64, device="cpu", dtype="float32").cache_key(texts)


def test_a_command_run_from_a_folder_writes_only_under_it(tmp_path):
    """No paths given: everything the run writes (run folder, demo rows, models, store, artifacts) is under the
    folder it runs from, as the default paths say (paths.root: the current folder), never under this checkout."""
    here = tmp_path / "project"
    here.mkdir()
    run_cli("train", ["model=tiny_random", "trainer=smoke", "trainer.epochs=1", "data.generate.train_rows=96",
                      "data.generate.dev_rows=96"], cwd=here)
    client = MlflowClient(f"sqlite:///{here}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    params = run.data.params
    written = [Path(run.info.artifact_uri.removeprefix("file://")), Path(params["paths.root"]),
               Path(params["paths.cache_dir"]), Path(params["data.train_path"]), Path(params["data.dev_path"])]
    assert all(path == here or here in path.parents for path in written), written
    assert {p.name for p in here.iterdir()} <= {".cache", "mlartifacts", "mlflow.db", "mlflow.db.lock", "outputs"}
    (run_folder,) = (here / "outputs" / "runs").iterdir()
    assert (run_folder / "model" / "digests.json").is_file()
    checkout = str(Path(__file__).resolve().parents[1])
    assert not [key for key, value in params.items() if value.startswith(checkout)]  # nothing names this checkout
