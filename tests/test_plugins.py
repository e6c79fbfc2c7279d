"""One plug-in pattern: a new strategy, translator backend, model source and head are each one module + one
YAML, added to a copy of the package and its conf/ with no other file edited, and a training run through the
real CLI uses all four (docs/configuration.md, "Four kinds of plug-in")."""

from __future__ import annotations

import shutil

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, run_cli, tiny_run_args
from tests.test_identity import copy_of_the_package

pytestmark = pytest.mark.integration  # a training run from a copy of the package: make test-integration

STRATEGY = '''"""`copy_positives`: one more copy of every positive row of the mix so far."""

from relevance.augment.base import Strategy, base_rows, register


@register("copy_positives")
class CopyPositives(Strategy):
    def generate(self, mix, context):
        rows = base_rows(mix, context).filter(lambda row: row["label"] == 1)
        return rows.map(lambda row: {"source": "copy_positives"})
'''

BACKEND = '''"""`shout`: a backend without a model: a translation is the text in capitals."""

from relevance.augment.translator import Translator, register_backend


@register_backend("shout")
class ShoutTranslator(Translator):
    def load(self):
        return None, None

    def _translate_batch(self, batch, src, tgt):
        return [text.upper() for text in batch]
'''

SOURCE = '''"""`tiny_alias`: the tiny random model under another source name (a source resolves and names weights)."""

from relevance.modeling.sources import ModelSource, register_source
from relevance.modeling.tiny import build_tiny_model, tiny_model_digest


@register_source("tiny_alias")
class TinyAlias(ModelSource):
    def resolve(self, model_cfg, cache_dir):
        return build_tiny_model(model_cfg.tiny, cache_dir / "models")

    def digest(self, model_cfg, cache_dir):
        return "alias-" + tiny_model_digest(model_cfg.tiny)
'''

HEAD = '''"""`agree`: a causal LM's logits of two answer tokens at the last position, reversed in the YAML's order."""

from relevance.modeling.heads import Head, register_head, single_token_id


@register_head("agree")
class AgreeHead(Head):
    task_type = "CAUSAL_LM"
    backbone_class_key = "causal_lm_class"

    def __init__(self, head_cfg, tokenizer):
        super().__init__(head_cfg, tokenizer)
        self.ids = [single_token_id(tokenizer, head_cfg.negative_token, "head.negative_token"),
                    single_token_id(tokenizer, head_cfg.positive_token, "head.positive_token")]

    @classmethod
    def problems(cls, head_cfg):
        if head_cfg.padding_side != "left":
            yield "head=agree needs head.padding_side=left"

    def pair_logits(self, model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        return out.logits[:, -1, self.ids]
'''


def add_plugins(source) -> None:
    package, conf = source / "relevance", source / "conf"
    (package / "augment" / "copy_positives.py").write_text(STRATEGY)
    (conf / "augment" / "copy_positives.yaml").write_text(
        "# @package augment.copy_positives\ndefaults:\n  - /augment_schema/copy_positives@_here_\n")
    (package / "augment" / "translators" / "shout.py").write_text(BACKEND)
    (conf / "translator" / "shout.yaml").write_text(
        "name: shout\nbackend: shout\nsource: local\nmodel: none\ndevice: cpu\nchecks:\n  language: false\n")
    (package / "modeling" / "sources" / "tiny_alias.py").write_text(SOURCE)
    tiny = (conf / "model" / "tiny_random.yaml").read_text()
    (conf / "model" / "tiny_alias.yaml").write_text(
        tiny.replace("name: tiny_random", "name: tiny_alias").replace("source: tiny_random", "source: tiny_alias"))
    (package / "modeling" / "heads" / "agree.py").write_text(HEAD)
    (conf / "head" / "agree.yaml").write_text('name: agree\npadding_side: left\nanswer_suffix: "\\nAnswer (yes or no):"\n'
                                              'positive_token: " yes"\nnegative_token: " no"\n')


def test_a_module_and_a_yaml_of_each_kind_train_through_the_cli(tmp_path, shared_cache, monkeypatch):
    source = copy_of_the_package(tmp_path / "src")
    add_plugins(source)
    edited = {p.relative_to(source) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    original = {p.relative_to(REPO) for d in ("relevance", "conf") for p in (REPO / d).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert len(edited - original) == 8  # four modules, four YAMLs: nothing else is new
    monkeypatch.setenv("PYTHONPATH", str(source))

    root = tmp_path / "project"
    root.mkdir()
    args = tiny_run_args(root, shared_cache, "model=tiny_alias", "head=agree", "translator=shout",
                         "augment=[original,copy_positives,pivot]")
    run_cli("train", args, cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert run.info.status == "FINISHED"
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    # the strategy added its rows (one per positive of the original rows)
    assert metrics["augment_copy_positives_rows"] > 0 and tags["augment"] == "original+copy_positives+pivot"
    # the backend translated every query into English for the pivot, without any model
    assert params["translator.backend"] == "shout" and metrics["augment_pivot_rows"] == 0
    assert any(key.startswith("augment_pivot_") and value > 0 for key, value in metrics.items()
               if "accepted" in key or "cache_misses" in key), metrics
    # the source resolved the weights (built by the tiny builder) and named them in the run's identity
    assert tags["model.source_digest"].startswith("tiny:") and "alias-tiny:" in tags["relevance.numerics"]
    # the head scored dev
    assert tags["head"] == "agree" and 0.0 < metrics["dev_roc_auc"] < 1.0

    # the head's own check speaks for it, before any model loads
    refused = run_cli("train", [*args, "head.padding_side=right"], cwd=root, check=False)
    assert refused.returncode != 0 and "head=agree needs head.padding_side=left" in refused.stderr
    shutil.rmtree(source)
