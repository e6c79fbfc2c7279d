"""A run's identity is config + data + code + numerics: a re-run reuses a finished run only when
none of them changed, and says which part did when one has."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from relevance.tracking.identity import (changed_parts, code_digest, numerics, package_source_digest,
                                         run_identity)
from tests.conftest import REPO, compose_train
from tests.sweep_fixtures import run_sweep


def copy_of_the_package(target: Path) -> Path:
    """relevance/ and conf/ copied under `target` (importable from there through PYTHONPATH)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "relevance", target / "relevance", ignore=ignore)
    shutil.copytree(REPO / "conf", target / "conf", ignore=ignore)
    return target


def test_the_code_digest_is_the_package_source_and_nothing_else(tmp_path):
    copy = copy_of_the_package(tmp_path / "src") / "relevance"
    before = package_source_digest(copy)
    assert before == package_source_digest.__wrapped__(REPO / "relevance")  # the same files, the same digest
    (tmp_path / "src" / "README.md").write_text("docs only\n")  # beside the package: not code
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert package_source_digest.__wrapped__(copy) == before
    metrics = copy / "evaluation" / "metrics.py"
    metrics.write_text(metrics.read_text().replace("2.0 * tp /", "1.0 * tp /"))
    assert package_source_digest.__wrapped__(copy) != before


def test_numerics_name_the_dtype_the_backbone_and_the_numeric_libraries(tmp_path):
    cfg = compose_train(["model=tiny_random", f"paths.cache_dir={tmp_path}", "quant.compute_dtype=float32"])
    values = numerics(cfg)
    assert values["compute_dtype"] == "float32"
    assert values["backbone"].startswith("tiny:")
    assert set(values) == {"compute_dtype", "backbone", "torch", "transformers", "peft", "bitsandbytes"}
    import torch

    assert values["torch"] == torch.__version__
    other = numerics(compose_train(["model=tiny_random", f"paths.cache_dir={tmp_path}",
                                    "quant.compute_dtype=bfloat16", "model.tiny.hidden_size=32"]))
    assert other["compute_dtype"] == "bfloat16" and other["backbone"] != values["backbone"]


def test_changed_parts_name_what_differs(tmp_path):
    cfg = compose_train(["model=tiny_random", f"paths.cache_dir={tmp_path}"])
    identity = run_identity(cfg)
    assert changed_parts(identity.tags(), identity) == []
    old = identity.tags()
    old["relevance.code_digest"] = "0" * 16
    numbers = json.loads(old["relevance.numerics"])
    numbers["torch"] = "1.0"
    old["relevance.numerics"] = json.dumps(numbers)
    changes = changed_parts(old, identity)
    assert changes == [f"code {'0' * 16} → {identity.code_digest}", f"numerics: torch 1.0 → {numbers_torch()}"]
    assert changed_parts({}, identity)[0].startswith("config (not recorded) → ")


def numbers_torch() -> str:
    import torch

    return torch.__version__


def test_a_strategy_from_outside_the_package_is_part_of_the_code(tmp_path, monkeypatch):
    from relevance.augment.base import STRATEGIES, Strategy

    module = tmp_path / "my_strategy.py"
    module.write_text("from relevance.augment.base import Strategy\nclass Mine(Strategy):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_strategy

    monkeypatch.setitem(STRATEGIES, "mine", my_strategy.Mine)
    inside = code_digest(["original"])
    with_mine = code_digest(["original", "mine"])
    assert inside == package_source_digest() and with_mine != inside
    module.write_text(module.read_text() + "# a fix\n")
    assert code_digest(["original", "mine"]) != with_mine
    assert issubclass(my_strategy.Mine, Strategy)


@pytest.mark.integration  # three sweeps through the real CLI, like tests/test_sweep.py: make test-integration
def test_an_edited_module_trains_again_saying_so_and_an_unedited_rerun_skips(tmp_path, shared_cache, monkeypatch):
    """The CEO's case: a sweep, then the F1 code edited (F1 halves), then the same sweep again."""
    source = copy_of_the_package(tmp_path / "src")
    monkeypatch.setenv("PYTHONPATH", str(source))
    args = ["experiment=smoke_sweep", "trainer.lr=0.003"]
    (first,) = run_sweep(tmp_path, shared_cache, *args).children
    assert first.data.tags["relevance.code_digest"] == package_source_digest.__wrapped__(source / "relevance")

    unchanged = run_sweep(tmp_path, shared_cache, *args)
    assert unchanged.children == [] and unchanged.parent.data.metrics["jobs_skipped"] == 1

    metrics = source / "relevance" / "evaluation" / "metrics.py"
    halved = metrics.read_text().replace('"f1": f1,', '"f1": f1 / 2,')
    assert halved != metrics.read_text()
    metrics.write_text(halved)
    edited = run_sweep(tmp_path, shared_cache, *args)
    (second,) = edited.children
    output = edited.result.stdout + edited.result.stderr
    assert edited.parent.data.metrics["jobs_skipped"] == 0 and "skipping" not in output
    new_code = second.data.tags["relevance.code_digest"]
    assert new_code != first.data.tags["relevance.code_digest"]
    assert (f"training again: finished run {first.info.run_id} has this config, but its code "
            f"{first.data.tags['relevance.code_digest']} → {new_code}") in output
    assert second.data.tags["relevance.config_hash"] == first.data.tags["relevance.config_hash"]
    assert second.data.metrics["dev_f1"] == pytest.approx(first.data.metrics["dev_f1"] / 2, abs=1e-6)
