"""Tests for relevance.data.reader: round trips, every validation error, null-target policies."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from relevance.data import COLUMNS, DataError, read_jsonl
from tests.conftest import task_config
from tests.requirements import require_path

REAL_QC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qc"

QC_ROWS = [
    {"id": 1, "task": "QC", "language": "fr", "origin_query": " bracelet magnétique montre ",
     "category_path": "watches,watches accessories,watchbands", "label": 1},
    {"id": "a7", "task": "QC", "language": "EN", "origin_query": "phone case",
     "category_path": "automobiles, parts & accessories,tools", "label": 0},
    {"id": 3, "task": "qc", "language": "ja", "origin_query": "ヨガマット",
     "category_path": "sports & entertainment,fitness & body building,yoga mats", "label": 1.0},
]
QI_ROWS = [
    {"id": 10, "task": "QI", "language": "es", "origin_query": "auriculares inalámbricos",
     "item_title": "  Xiaomo Wireless Earbuds Bluetooth 5.3 Black ", "label": 1},
    {"id": 11, "task": "QI", "language": "ko", "origin_query": "유모차",
     "item_title": "Lumeo Frying Pan Non-Stick 28cm", "label": 0},
]


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


def test_qc_round_trip(tmp_path):
    res = read_jsonl(write_lines(tmp_path / "qc.jsonl", QC_ROWS), task_config("qc"))
    ds = res.dataset
    assert tuple(ds.column_names) == COLUMNS
    assert ds["id"] == ["1", "a7", "3"]
    assert ds["task"] == ["QC"] * 3
    assert ds["language"] == ["fr", "en", "ja"]
    assert ds["query"][0] == "bracelet magnétique montre"
    assert ds["target"][1] == "automobiles, parts & accessories,tools"
    assert ds["label"] == [1, 0, 1]
    assert ds["source"] == ["original"] * 3
    assert ds.features["label"].dtype == "int64"
    assert res.null_targets == 0 and res.path == str(tmp_path / "qc.jsonl")


def test_qi_round_trip(tmp_path):
    ds = read_jsonl(write_lines(tmp_path / "qi.jsonl", QI_ROWS), task_config("qi")).dataset
    assert tuple(ds.column_names) == COLUMNS
    assert ds["target"] == ["Xiaomo Wireless Earbuds Bluetooth 5.3 Black", "Lumeo Frying Pan Non-Stick 28cm"]
    assert ds["query"] == ["auriculares inalámbricos", "유모차"]
    assert ds["label"] == [1, 0]
    assert ds["task"] == ["QI", "QI"]


def _qc(**changes):
    row = dict(QC_ROWS[1])
    for key, value in changes.items():
        if value is _DELETE:
            row.pop(key)
        else:
            row[key] = value
    return row


_DELETE = object()


@pytest.mark.parametrize(
    "bad_line, field",
    [
        ('{"id": 5, "task": "QC", "language": "en", "origin_query": "x"', "<json>"),
        ("[1, 2, 3]", "<json>"),
        (_qc(language=_DELETE), "language"),
        (_qc(category_path=_DELETE), "category_path"),
        (_qc(label=_DELETE), "label"),
        (_qc(label=2), "label"),
        (_qc(label="1"), "label"),
        (_qc(label=True), "label"),
        (_qc(label=0.5), "label"),
        (_qc(origin_query="   "), "origin_query"),
        (_qc(origin_query=42), "origin_query"),
        (_qc(task="QI"), "task"),
        (_qc(language=""), "language"),
        (_qc(category_path=12345), "category_path"),
        (_qc(category_path=None), "category_path"),  # with null_target="error"
    ],
)
def test_errors_name_file_line_and_field(tmp_path, bad_line, field):
    # Two good rows, a blank line, then the bad one: it is on line 4.
    path = write_lines(tmp_path / "bad.jsonl", [QC_ROWS[0], QC_ROWS[1], "", bad_line, QC_ROWS[2]])
    with pytest.raises(DataError) as info:
        read_jsonl(path, task_config("qc"), null_target="error")
    err = info.value
    assert f"bad.jsonl:4: field '{field}'" in str(err)
    assert (err.line, err.field, err.path) == (4, field, str(path))


def test_wrong_task_message_tells_what_to_do(tmp_path):
    path = write_lines(tmp_path / "qi.jsonl", QI_ROWS)
    with pytest.raises(DataError, match="file says 'QI' but the run's task is QC: pass task=qi"):
        read_jsonl(path, task_config("qc"))


def test_blank_lines_keep_line_numbers(tmp_path):
    path = write_lines(tmp_path / "gaps.jsonl", ["", QC_ROWS[0], "   ", "", QC_ROWS[1], _qc(label=7)])
    with pytest.raises(DataError) as info:
        read_jsonl(path, task_config("qc"))
    assert info.value.line == 6
    ds = read_jsonl(write_lines(tmp_path / "ok.jsonl", ["", QC_ROWS[0], "", QC_ROWS[1]]), task_config("qc")).dataset
    assert len(ds) == 2


@pytest.mark.parametrize("policy, rows, nulls", [("drop", 1, 2), ("empty", 3, 2)])
def test_null_target_policies(tmp_path, policy, rows, nulls):
    lines = [QI_ROWS[0], dict(QI_ROWS[1], item_title=None), dict(QI_ROWS[1], id=12, item_title=None)]
    res = read_jsonl(write_lines(tmp_path / "qi.jsonl", lines), task_config("qi"), null_target=policy)
    assert len(res.dataset) == rows
    assert res.null_targets == nulls
    if policy == "empty":
        assert res.dataset["target"][1:] == ["", ""]


def test_unknown_null_policy_lists_allowed(tmp_path):
    path = write_lines(tmp_path / "qi.jsonl", QI_ROWS)
    with pytest.raises(ValueError, match="drop, empty, error"):
        read_jsonl(path, task_config("qi"), null_target="keep")


def test_unlabelled_file(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "label"} for r in QC_ROWS]
    path = write_lines(tmp_path / "test.jsonl", rows)
    ds = read_jsonl(path, task_config("qc"), require_label=False).dataset
    assert "label" not in ds.column_names
    assert tuple(ds.column_names) == tuple(c for c in COLUMNS if c != "label")
    with pytest.raises(DataError) as info:
        read_jsonl(path, task_config("qc"))
    assert (info.value.line, info.value.field) == (1, "label")


def test_labelled_file_keeps_label_when_not_required(tmp_path):
    ds = read_jsonl(write_lines(tmp_path / "dev.jsonl", QC_ROWS), task_config("qc"), require_label=False).dataset
    assert ds["label"] == [1, 0, 1]


def test_mixed_labelled_and_unlabelled_is_an_error(tmp_path):
    path = write_lines(tmp_path / "mixed.jsonl", [QC_ROWS[0], _qc(label=_DELETE)])
    with pytest.raises(DataError) as info:
        read_jsonl(path, task_config("qc"), require_label=False)
    assert "mixed.jsonl:2: field 'label'" in str(info.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_jsonl(tmp_path / "nope.jsonl", task_config("qc"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_jsonl(empty, task_config("qc"))
    assert (info.value.line, info.value.field) == (0, "<file>")
    assert "empty.jsonl:0: field '<file>'" in str(info.value)


def test_the_task_config_names_the_task_and_its_target_field(tmp_path):
    brand = SimpleNamespace(name="QB", target_field="brand")
    rows = [json.dumps({"id": 1, "task": "qb", "language": "en", "origin_query": "nike shoes", "brand": "Nike",
                        "label": 1})]
    table = read_jsonl(write_lines(tmp_path / "qb.jsonl", rows), brand).dataset
    assert (table["task"], table["target"]) == (["QB"], ["Nike"])
    with pytest.raises(DataError, match="run's task is QB") as info:
        read_jsonl(write_lines(tmp_path / "qc.jsonl", QC_ROWS), brand)
    assert info.value.field == "task"


def test_real_qc_train():
    path = REAL_QC / "train.jsonl"
    require_path(path, "the real QC rows")
    res = read_jsonl(path, task_config("qc"))
    assert len(res.dataset) == 7034
    assert sorted(set(res.dataset["language"])) == ["en", "es", "fr", "ja", "ko", "pt"]
    assert set(res.dataset["label"]) == {0, 1}


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_lines(tmp_path / "dup.jsonl", [QC_ROWS[0], QC_ROWS[1], {**QC_ROWS[2], "id": QC_ROWS[0]["id"]}])
    with pytest.raises(DataError, match="already used on line 1") as info:
        read_jsonl(path, task_config("qc"))
    assert (info.value.line, info.value.field) == (3, "id")


@pytest.mark.parametrize("code, known, message", [
    ("pt/", None, "not a language code"),
    ("xx", ["en", "fr"], "unknown language code 'xx'"),
])
def test_language_codes_are_checked(tmp_path, code, known, message):
    path = write_lines(tmp_path / "lang.jsonl", [QC_ROWS[0], {**QC_ROWS[1], "language": code}])
    with pytest.raises(DataError, match=message) as info:
        read_jsonl(path, task_config("qc"), languages=known)
    assert (info.value.line, info.value.field) == (2, "language")
