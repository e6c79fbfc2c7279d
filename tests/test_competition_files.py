"""The official files as they are: `data=cikm2025` reads `train_QC.txt`, `dev_QC.txt` (and the QI
ones) as the task picks them, `predict` scores the unlabelled `test_*.txt`, and
`relevance.submission` packs the two prediction files into the archive. Vietnamese is one
language whether a file writes `vi` or `vn`, in the reader and in the translating strategies.
Real CLI, tiny model, temp MLflow store; the files are written here in the official layout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.augment.base import AugmentContext
from relevance.augment.languages import competition_code, to_flores
from relevance.augment.mix import build_strategy
from relevance.data.demo import generate_demo_rows
from relevance.data.language_codes import canonical_language
from relevance.data.reader import read_jsonl
from tests.conftest import run_cli, task_config, tiny_run_args

TASKS = {"qc": "QC", "qi": "QI"}


def write_official_files(folder: Path, vietnamese: dict[str, str] | None = None) -> Path:
    """`train_<TASK>.txt` and `dev_<TASK>.txt` (labelled) and `test_<TASK>.txt` (no label) for QC and QI,
    in the competition's JSON-lines layout; every 7th row is Vietnamese, spelled per file kind as
    `vietnamese` says (default: `vi` in training, `vn` in dev and test)."""
    spelling = {"train": "vi", "dev": "vn", "test": "vn", **(vietnamese or {})}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in TASKS.items():
        task = task_config(key)
        files = {"train": generate_demo_rows(task, "train", seed=3, n_rows=240),
                 "dev": generate_demo_rows(task, "dev", seed=3, n_rows=120),
                 "test": generate_demo_rows(task, "dev", seed=4, n_rows=60)}
        for kind, rows in files.items():
            for i, row in enumerate(rows):
                if i % 7 == 3:
                    row["language"] = spelling[kind]
                if kind == "test":
                    row.pop("label")
            (folder / f"{kind}_{name}.txt").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


# -- Vietnamese: one code, whatever the spelling -------------------------------------------------

def test_vi_and_vn_are_one_language_in_the_reader_whatever_data_languages_says(tmp_path):
    rows = [{"id": i, "task": "QC", "language": code, "origin_query": f"áo khoác {i}", "category_path": "apparel",
             "label": i % 2} for i, code in enumerate(["vi", "vn", "VN", " Vi "])]
    path = tmp_path / "train_QC.txt"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for languages in (None, ["vi"], ["vn"], ["en", "VN"]):
        table = read_jsonl(path, task_config("qc"), languages=languages).dataset
        assert set(table["language"]) == {"vi"}, languages


def test_the_translating_strategies_use_the_readers_code():
    assert canonical_language("vn") == competition_code("vn") == competition_code("vi") == "vi"
    assert to_flores("vn") == to_flores("vi") == "vie_Latn"
    translated = build_strategy("translated", {})
    context = lambda train, evaluation: AugmentContext(task="QC", original=None, train_languages=train,  # noqa: E731
                                                       eval_languages=evaluation, seed=0, cache_dir="", related_by=None)
    assert translated.languages_for(context(["en", "vi"], ["vn", "de"])) == ["de"]  # vi is trained: not missing
    assert translated.languages_for(context(["en"], ["vn", "vi"])) == ["vi"]  # one target, not two
    assert build_strategy("translated", {"target_languages": ["vn", "vi"]}).options.target_languages == ["vi"]


# -- the official files, end to end ------------------------------------------------------------

@pytest.fixture(scope="module")
def submitted(tmp_path_factory, shared_cache):
    """Two tiny runs on the official files (QC, QI), each task's test file predicted, the archive built."""
    root = tmp_path_factory.mktemp("project")
    data = write_official_files(root / "cikm")
    predictions = {}
    for key, name in TASKS.items():
        run_cli("train", tiny_run_args(root, shared_cache, "data=cikm2025", f"data.dir={data}", f"task={key}",
                                       "trainer.epochs=1"), cwd=root)
        predictions[key] = root / f"pred_{name}.jsonl"
        result = run_cli("predict", ["run=latest", f"task={key}", f"input={data}/test_{name}.txt",
                                     f"output={predictions[key]}", f"paths.root={root}",
                                     f"paths.cache_dir={shared_cache}"], cwd=root)
        assert "overall" not in result.stdout  # unlabelled: nothing to score against
    result = run_cli("submission", [f"{key}={path}" for key, path in predictions.items()] + ["out=submission.zip"],
                     cwd=root)
    return root, data, predictions, result


def test_cikm2025_reads_the_files_the_task_names(submitted):
    root, data, _, _ = submitted
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    for key, name in TASKS.items():
        (run,) = client.search_runs([client.get_experiment_by_name(f"relevance-{key}").experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.params["data.train_file"] == f"train_{name}.txt"
        assert run.data.params["data.dev_file"] == f"dev_{name}.txt"
        assert run.data.params["data.train_rows"] == "240"
        metrics = run.data.metrics
        assert "dev_f1_lang_vi" in metrics and not any("lang_vn" in m for m in metrics)  # `vn` read as `vi`
        assert not any(m.startswith("test_") for m in metrics)  # the official test file is no test split


def test_the_archive_holds_one_file_per_task_with_every_test_row(submitted):
    root, data, predictions, result = submitted
    archive = root / "submission.zip"
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["submit_QC.txt", "submit_QI.txt"]
        for key, name in TASKS.items():
            lines = zipped.read(f"submit_{name}.txt").decode().splitlines()
            rows = [json.loads(line) for line in lines]
            test_ids = [json.loads(line)["id"] for line in (data / f"test_{name}.txt").read_text().splitlines()]
            predicted = [json.loads(line) for line in predictions[key].read_text().splitlines()]
            assert [r["id"] for r in rows] == test_ids  # every test row, in the file's order
            assert all(set(r) == {"id", "prediction"} and r["prediction"] in (0, 1) for r in rows)
            assert [r["prediction"] for r in rows] == [p["prediction"] for p in predicted]
    assert "submit_QC.txt (60 rows" in result.stdout and "submit_QI.txt (60 rows" in result.stdout


# -- bad input to the submission command ---------------------------------------------------------

def lines_of(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


GOOD_QC = lines_of({"id": 1, "task": "QC", "prediction": 1}, {"id": 2, "task": "QC", "prediction": 0})
GOOD_QI = lines_of({"id": 1, "task": "QI", "prediction": 0})


@pytest.mark.parametrize("qc_text, message", [
    (lines_of({"id": 1, "prediction": 1}, {"id": 2, "task": "QC"}), "qc.jsonl:2: field 'prediction': missing"),
    (lines_of({"id": 1, "prediction": 2}), "qc.jsonl:1: field 'prediction': expected 0 or 1, got 2"),
    (lines_of({"id": 1, "prediction": True}), "qc.jsonl:1: field 'prediction': expected 0 or 1, got True"),
    (lines_of({"prediction": 1}), "qc.jsonl:1: field 'id': missing"),
    (lines_of({"id": 7, "prediction": 1}, {"id": 8, "prediction": 0}, {"id": 7, "prediction": 1}),
     "qc.jsonl:3: field 'id': id 7 is already used on line 1"),
    (lines_of({"id": 1, "task": "QI", "prediction": 1}),
     "qc.jsonl:1: field 'task': file says 'QI'.*pass this file as qi="),
    (lines_of({"id": 1, "prediction": 1}, "{not json"), "qc.jsonl:2: field '<json>': malformed JSON"),
    ("", "qc.jsonl:0: field '<file>': file has no rows"),
    # what Python's json accepts and JSON does not: refused as the training files' reader refuses it
    ('{"id": 1, "prediction": 0, "prediction": 1}\n', "qc.jsonl:1: field 'prediction': this key appears twice"),
    ('{"id": 1, "prediction": 1, "score": NaN}\n', "qc.jsonl:1: field 'score': NaN is not a JSON number"),
    ('{"id": ' + "9" * 5000 + ', "prediction": 1}\n', "qc.jsonl:1: field 'id': .*too long"),
    ('[1, 0]\n', "qc.jsonl:1: field '<json>': expected a JSON object, got array"),
])
def test_bad_predictions_name_file_line_and_field_and_leave_the_archive_whole(tmp_path, qc_text, message):
    import re

    (tmp_path / "qc.jsonl").write_text(qc_text)
    (tmp_path / "qi.jsonl").write_text(GOOD_QI)
    archive = tmp_path / "submission.zip"
    archive.write_bytes(b"an earlier archive")
    result = run_cli("submission", ["qc=qc.jsonl", "qi=qi.jsonl", "out=submission.zip"], cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert re.search(message, result.stderr), result.stderr[-2000:]
    assert archive.read_bytes() == b"an earlier archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qc.jsonl", "qi.jsonl", "submission.zip"]  # no temp file


def test_missing_inputs_and_unknown_keys_are_refused(tmp_path):
    (tmp_path / "qc.jsonl").write_text(GOOD_QC)
    missing_key = run_cli("submission", ["qc=qc.jsonl"], cwd=tmp_path, check=False)
    assert missing_key.returncode != 0 and "missing qi=<QI predictions file>" in missing_key.stderr
    missing_file = run_cli("submission", ["qc=qc.jsonl", "qi=nowhere.jsonl"], cwd=tmp_path, check=False)
    assert missing_file.returncode != 0 and "qi=nowhere.jsonl: no such file" in missing_file.stderr
    unknown = run_cli("submission", ["qc=qc.jsonl", "qi=qc.jsonl", "qx=qc.jsonl"], cwd=tmp_path, check=False)
    assert unknown.returncode != 0 and "qx" in unknown.stderr
    assert not (tmp_path / "submission.zip").exists()
