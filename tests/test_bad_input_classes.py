"""Bad input by class, not by case: every field the reader reads × every JSON type it can arrive as,
every value a JSON parser accepts (Python's included: NaN, Infinity, duplicate keys, lone surrogates,
huge integers), and every shape a file can have (BOM, CRLF, blank lines, non-object lines, cut short).
Each gets an error naming file:line:field, or an acceptance the docs state.

One list drives both the test and the docs: `GRID` and `CLASSES` below are what the tests walk, and
`render_tables()` writes them as the tables of docs/data.md (between the `bad-input-classes` markers);
`test_the_docs_tables_are_these_classes` fails when the two differ. After changing a class here,
regenerate the doc's tables with `.venv/bin/python -m tests.test_bad_input_classes --write`.

Most classes are read by `read_jsonl` directly (fast); a few go through the real CLI (train and
predict) to prove the error comes before any model loads (an empty cache of its own: the tiny model
is built there on load, so an absent `models/` folder proves it never loaded).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.config import COMPETITION_LANGUAGES
from relevance.data.demo import write_demo_data
from relevance.data.loading import load_splits
from relevance.data.reader import ReadResult, read_jsonl
from relevance.data.schema import DataError
from tests.conftest import REPO, compose_train, run_cli, task_config, tiny_run_args

DOC = REPO / "docs" / "data.md"
BEGIN, END = "<!-- bad-input-classes:begin -->", "<!-- bad-input-classes:end -->"

# --------------------------------------------------------------------------- rows, as JSON text

TARGET = {"qc": "category_path", "qi": "item_title"}
# The two good rows every test file starts with; the row under test is line 3.
GOOD = [
    {"id": "1", "task": '"QC"', "language": '"fr"', "origin_query": '"bracelet montre"',
     "target": '"watches,watch accessories,watchbands"', "label": "1"},
    {"id": "2", "task": '"QC"', "language": '"ja"', "origin_query": '"ヨガマット"',
     "target": '"sports & entertainment,fitness,yoga mats"', "label": "0"},
]
ROW = {"id": "3", "task": '"QC"', "language": '"en"', "origin_query": '"phone case"',
       "target": '"phones & telecommunications,cases"', "label": "0"}
ABSENT = None  # a field's value that leaves the field out


def line(raw: dict[str, str | None], task: str = "qc", extra: str = "") -> str:
    """A JSON object written field by field from JSON text (so NaN, a key twice or a lone surrogate can
    be written at all); `target` is the task's target field; `extra` is appended text (`, "k": v`)."""
    names = {**{k: k for k in raw}, "target": TARGET[task]}
    fields = [f'"{names[k]}": {v}' for k, v in raw.items() if v is not ABSENT]
    text = "{" + ", ".join(fields) + extra + "}"
    return text.replace('"QC"', f'"{task.upper()}"', 1) if task != "qc" else text


def rows_file(tmp_path: Path, lines: list[str | bytes], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode("utf-8", "surrogatepass")) + b"\n"
                              for ln in lines))
    return path


def with_row(raw_changes: dict[str, str | None] = {}, extra: str = "", task: str = "qc") -> list[str]:  # noqa: B006
    return [line(r, task) for r in GOOD] + [line({**ROW, **raw_changes}, task, extra)]


# --------------------------------------------------------------------------- outcomes

@dataclass(frozen=True)
class Refused:
    """A DataError at `line` (3: the row under test) naming `field`, whose message holds `says`."""

    says: str
    field: str | None = None  # None: the grid's field
    line: int = 3

    def cell(self) -> str:
        return "error"

    def doc(self) -> str:
        return f"error: `{self.says}`"


@dataclass(frozen=True)
class Accepted:
    """Read without error; `holds` states what the table then has."""

    note: str
    holds: Callable[[ReadResult], bool] = field(default=lambda result: len(result.dataset) == 3, compare=False)

    def cell(self) -> str:
        return self.note

    def doc(self) -> str:
        return f"accepted: {self.note}"


def last(result: ReadResult, column: str):
    return result.dataset[column][-1]


def dropped_as_null(result: ReadResult) -> bool:
    return len(result.dataset) == 2 and result.null_targets == 1


# --------------------------------------------------------------------------- the grid: field × type

TYPES = {  # the JSON text each type arrives as, unless the cell says otherwise
    "string": '"abc"', "integer": "7", "float": "0.5", "boolean": "true", "null": "null", "array": '["en"]',
    "object": '{"a": 1}', "missing": ABSENT, "empty `\"\"`": '""', "blank `\" \\t\\u3000\"`": '" \\t\\u3000"',
}


@dataclass(frozen=True)
class Cell:
    outcome: Refused | Accepted
    value: str | None = "<type>"  # the JSON text, when not the type's own


def E(says: str, value: str | None = "<type>") -> Cell:
    return Cell(Refused(says), value)


def A(note: str, holds: Callable[[ReadResult], bool] | None = None, value: str | None = "<type>") -> Cell:
    return Cell(Accepted(note, holds) if holds else Accepted(note), value)


def row_of(**cells: Cell) -> dict[str, Cell]:
    names = dict(zip(("string", "integer", "float", "boolean", "null", "array", "object", "missing", "empty",
                      "blank"), TYPES))
    return {names[k]: v for k, v in cells.items()}


ID = "expected an integer or non-empty string"
LANG = "expected a non-empty language code"
QUERY = "expected a non-empty string"
LABEL = "expected 0 or 1"
MISSING = "missing required field"
NULL_POLICY = "a missing target: `null_target` decides"

# Rows: what the reader reads. "label (predict)" is `predict`'s input, where labels are optional: the
# cell's value is then on every row of the file (labels are on all rows or none), so an error is on line 1.
GRID: dict[str, dict[str, Cell]] = {
    "id": row_of(
        string=A('kept as written (`" 7"` and `"7"` are two ids)', lambda r: last(r, "id") == "a7", '"a7"'),
        integer=A('read as the string `"7"` (so `7` and `"7"` are one id)', lambda r: last(r, "id") == "7"),
        float=E(ID, "7.0"), boolean=E(ID), null=E(ID), array=E(ID), object=E(ID), missing=E(MISSING),
        empty=E(ID), blank=E(ID)),
    "task": row_of(
        string=A("the run's task, case and blanks ignored", lambda r: last(r, "task") == "QC", '" qc "'),
        integer=E("no task '7'"), float=E("no task '0.5'"), boolean=E("no task 'true'"),
        null=E("no task 'none'"), array=E("no task"), object=E("no task"), missing=E(MISSING),
        empty=E("no task ''"), blank=E("no task ''")),
    "language": row_of(
        string=A("read in its canonical spelling: `\" VN \"` is `vi`", lambda r: last(r, "language") == "vi",
                 '" VN "'),
        integer=E(LANG), float=E(LANG), boolean=E(LANG), null=E(LANG), array=E(LANG), object=E(LANG),
        missing=E(MISSING), empty=E(LANG), blank=E(LANG)),
    "origin_query": row_of(
        string=A("surrounding blanks trimmed", lambda r: last(r, "query") == "phone case", '"  phone case "'),
        integer=E(QUERY), float=E(QUERY), boolean=E(QUERY), null=E(QUERY), array=E(QUERY), object=E(QUERY),
        missing=E(MISSING), empty=E(QUERY), blank=E(QUERY)),
    "category_path / item_title": row_of(
        string=A("surrounding blanks trimmed", lambda r: last(r, "target") == "phones", '" phones "'),
        integer=E("expected a string"), float=E("expected a string"), boolean=E("expected a string"),
        null=A(NULL_POLICY, dropped_as_null), array=E("expected a string"), object=E("expected a string"),
        missing=E(MISSING), empty=A(NULL_POLICY, dropped_as_null), blank=A(NULL_POLICY, dropped_as_null)),
    "label": row_of(
        string=E(LABEL, '"1"'),
        integer=A("0 or 1; any other integer is an error", lambda r: last(r, "label") == 1, "1"),
        float=A("exactly 0 or 1 (`1.0`, `1e0`, `-0.0`); `0.5` is an error", lambda r: last(r, "label") == 1, "1.0"),
        boolean=E(LABEL), null=E(LABEL), array=E(LABEL), object=E(LABEL), missing=E(MISSING), empty=E(LABEL),
        blank=E(LABEL)),
    "label (predict)": row_of(
        string=E(LABEL, '"1"'),
        integer=A("0 or 1: the metrics are printed", lambda r: r.dataset["label"] == [1, 1, 1], "1"),
        float=A("as in training", lambda r: r.dataset["label"] == [1, 1, 1], "1.0"),
        boolean=E(LABEL),
        null=A("no label (on every row, or on none)", lambda r: "label" not in r.dataset.column_names),
        array=E(LABEL), object=E(LABEL),
        missing=A("no label (on every row, or on none)", lambda r: "label" not in r.dataset.column_names),
        empty=E(LABEL), blank=E(LABEL)),
    "any other field": row_of(**{k: A("passed through") for k in (
        "string", "integer", "float", "boolean", "null", "array", "object", "missing", "empty", "blank")}),
}
GRID_FIELDS = {"category_path / item_title": "target", "label (predict)": "label", "any other field": "note"}


def grid_input(row: str, kind: str, task: str) -> tuple[list[str], dict]:
    """The file for one cell, and how the reader is called."""
    cell = GRID[row][kind]
    value = TYPES[kind] if cell.value == "<type>" else cell.value
    name = GRID_FIELDS.get(row, row)
    kwargs = {"require_label": row != "label (predict)", "languages": COMPETITION_LANGUAGES}
    if row == "label (predict)":
        kwargs["null_target"] = "empty"
        return [line({**r, "label": value}, task) for r in (*GOOD, ROW)], kwargs
    if name == "note":
        extra = "" if value is ABSENT else f', "note": {value}'
        return with_row(extra=extra, task=task), kwargs
    return with_row({name: value}, task=task), kwargs


GRID_CASES = [pytest.param(row, kind, task, id=f"{task}-{row}-{kind.split()[0]}")
              for row in GRID for kind in TYPES
              for task in (("qc", "qi") if row == "category_path / item_title" else ("qc",))]


@pytest.mark.parametrize("row, kind, task", GRID_CASES)
def test_every_field_by_every_type(tmp_path, row, kind, task):
    lines, kwargs = grid_input(row, kind, task)
    path = rows_file(tmp_path, lines)
    outcome = GRID[row][kind].outcome
    # predict's label is on every row (all or none): a refused one is refused on line 1
    expect_read(path, task, kwargs, outcome, row_field(row, task), line_no=1 if row == "label (predict)" else None)


def row_field(row: str, task: str) -> str:
    return {"category_path / item_title": TARGET[task], "label (predict)": "label"}.get(row, row)


def expect_read(path: Path, task: str, kwargs: dict, outcome: Refused | Accepted, default_field: str | None = None,
                line_no: int | None = None):
    if isinstance(outcome, Refused):
        with pytest.raises(DataError) as error:
            read_jsonl(path, task_config(task), **kwargs)
        where = outcome.field or default_field
        line_no = line_no or outcome.line
        assert (error.value.path, error.value.line, error.value.field) == (str(path), line_no, where), error.value
        assert outcome.says in error.value.detail, error.value
        assert str(error.value).startswith(f"{path}:{line_no}: field '{where}': ")
    else:
        result = read_jsonl(path, task_config(task), **kwargs)
        assert outcome.holds(result), result.dataset.to_dict()


# --------------------------------------------------------------------------- classes of values and of files

@dataclass(frozen=True)
class Class:
    name: str
    shown: str  # what the file has, as the docs show it
    lines: Callable[[], list[str | bytes]]
    outcome: Refused | Accepted
    options: dict = field(default_factory=dict)  # read_jsonl's keyword arguments
    task: str = "qc"


def raw_row(**changes: str | None) -> Callable[[], list[str]]:
    return lambda: with_row(changes)


def raw_extra(extra: str, **changes: str | None) -> Callable[[], list[str]]:
    return lambda: with_row(changes, extra)


def good_lines() -> list[str]:
    return [line(r) for r in GOOD] + [line(ROW)]


NOT_JSON = "is not a JSON number"
SURROGATE = "lone surrogate"
HUGE = "1" + "0" * 5000

CLASSES: list[Class] = [
    # numbers Python's json reads and JSON forbids (or cannot represent)
    Class("NaN", '`"label": NaN`', raw_row(label="NaN"), Refused(f"NaN {NOT_JSON}", "label")),
    Class("Infinity in any field", '`"score": Infinity`', raw_extra(', "score": Infinity'),
          Refused(f"Infinity {NOT_JSON}", "score")),
    Class("-Infinity", '`"id": -Infinity`', raw_row(id="-Infinity"), Refused(f"-Infinity {NOT_JSON}", "id")),
    Class("a number beyond a float", '`"price": 1e400` (Python reads `inf`)', raw_extra(', "price": 1e400'),
          Refused("overflows a float", "price")),
    Class("an integer too long to convert", '`"id": 1000…0` (5,001 digits)', raw_row(id=HUGE),
          Refused("too long to read as a number", "id")),
    Class("a long integer id", '`"id": 123456789012345678901234567890`',
          raw_row(id="123456789012345678901234567890"),
          Accepted("read as its digits", lambda r: last(r, "id") == "123456789012345678901234567890")),
    Class("a label that rounds to 1", '`"label": 0.99999999999999999`', raw_row(label="0.99999999999999999"),
          Refused("expected 0 or 1, got 0.99999999999999999", "label")),
    Class("a label written with an exponent", '`"label": 1e0`', raw_row(label="1e0"),
          Accepted("the number it is: 1", lambda r: last(r, "label") == 1)),
    Class("a negative zero label", '`"label": -0.0`', raw_row(label="-0.0"),
          Accepted("the number it is: 0", lambda r: last(r, "label") == 0)),
    Class("a fractional label", '`"label": 0.5`', raw_row(label="0.5"), Refused("expected 0 or 1, got 0.5", "label")),
    Class("a boolean label (Python: True == 1)", '`"label": true`', raw_row(label="true"),
          Refused("expected 0 or 1, got True", "label")),
    Class("another integer label", '`"label": 2`', raw_row(label="2"), Refused("expected 0 or 1, got 2", "label")),
    # objects
    Class("a key twice", '`"label": 0, "label": 1`', raw_extra(', "label": 1'),
          Refused("appears twice in the row", "label")),
    Class("a key twice, nested", '`"meta": {"a": 1, "a": 2}`', raw_extra(', "meta": {"a": 1, "a": 2}'),
          Refused("key 'a' appears twice in one object", "meta")),
    Class("a field name in another case", '`"Label": 1` and no `label`', raw_extra(', "Label": 1', label=ABSENT),
          Refused(MISSING, "label")),
    # strings
    Class("a lone surrogate", '`"origin_query": "\\ud800"`', raw_row(origin_query='"\\ud800"'),
          Refused(SURROGATE, "origin_query")),
    Class("a lone surrogate in any field", '`"note": ["\\udc00"]`', raw_extra(', "note": ["\\udc00"]'),
          Refused(SURROGATE, "note")),
    Class("a surrogate pair", '`"origin_query": "\\ud83d\\ude00"` (😀)', raw_row(origin_query='"\\ud83d\\ude00"'),
          Accepted("one character", lambda r: last(r, "query") == "\U0001F600")),
    Class("no visible character in the query", '`"origin_query": "\\u200b\\u0000"`',
          raw_row(origin_query='"\\u200b\\u0000"'), Refused(QUERY, "origin_query")),
    Class("no visible character in the target", '`"category_path": "\\u200b"`', raw_row(target='"\\u200b"'),
          Accepted(NULL_POLICY, dropped_as_null)),
    Class("no visible character in the id", '`"id": "\\u0000"`', raw_row(id='"\\u0000"'), Refused(ID, "id")),
    Class("a null or empty target, `null_target=error`", '`"category_path": ""`', raw_row(target='""'),
          Refused("has no text ('')", "category_path"), {"null_target": "error"}),
    Class("every target null or empty", 'all three rows `"category_path": null`',
          lambda: [line({**r, "target": "null"}) for r in (*GOOD, ROW)],
          Refused("all 3 rows had a null or empty category_path", "<file>", line=0)),
    Class("control characters inside a text (escaped)", '`"origin_query": "phone\\u0001case"`',
          raw_row(origin_query='"phone\\u0001case"'),
          Accepted("kept as written: the tokenizer reads them", lambda r: last(r, "query") == "phone\x01case")),
    Class("a raw control character inside a string", '`"origin_query": "phone<TAB byte>case"`',
          raw_row(origin_query='"phone\tcase"'), Refused("Invalid control character", "<json>")),
    Class("a language code that is not one", '`"language": "pt/"`', raw_row(language='"pt/"'),
          Refused("'pt/' is not a language code", "language")),
    Class("a language outside `data.languages`", '`"language": "xx"`', raw_row(language='"xx"'),
          Refused("unknown language code 'xx'", "language"), {"languages": COMPETITION_LANGUAGES}),
    Class("another task's row", '`"task": "QI"` in a QC run', raw_row(task='"QI"'),
          Refused("pass task=qi", "task")),
    # lines and files
    Class("a UTF-8 BOM", "`EF BB BF` before line 1", lambda: [b"\xef\xbb\xbf" + good_lines()[0].encode(),
                                                              *good_lines()[1:]],
          Accepted("ignored (in training and in `predict`)")),
    Class("a BOM on a later line (files joined)", "`EF BB BF` before line 3",
          lambda: [*good_lines()[:2], b"\xef\xbb\xbf" + good_lines()[2].encode()],
          Refused("a byte order mark (BOM) starts this line, not the file", "<json>")),
    Class("CRLF line endings", "`\\r\\n` after every line", lambda: [ln + "\r" for ln in good_lines()],
          Accepted("read as LF")),
    Class("a CR inside a line", '`{"id": 3,\\r "task": …}`',
          lambda: [*good_lines()[:2], good_lines()[2].replace(", ", ",\r ", 1)],
          Accepted("JSON whitespace (lines end at LF only, in `predict`'s output too)")),
    Class("blank or whitespace-only lines", "an empty line, a line of spaces", lambda: ["", good_lines()[0], "  \t",
                                                                                      *good_lines()[1:]],
          Accepted("skipped; line numbers still count them", lambda r: len(r.dataset) == 3)),
    *(Class(f"a line that is {kind}", f"`{text}`", lambda text=text: [*good_lines()[:2], text],
            Refused(f"expected a JSON object, got {kind.split()[-1]}", "<json>"))
      for kind, text in (("an array", "[1, 2]"), ("a number", "3"), ("a string", '"row"'), ("null", "null"))),
    Class("a trailing comma", '`{"id": 3, …, "label": 0,}`', lambda: [*good_lines()[:2], good_lines()[2][:-1] + ",}"],
          Refused("malformed JSON: Expecting property name", "<json>")),
    Class("a last line cut short", '`{"id": 3, "task": "QC", "lang`',
          lambda: [*good_lines()[:2], good_lines()[2][:25]], Refused("cut short?", "<json>")),
    Class("two objects on one line", "`{…} {…}`",
          lambda: [*good_lines()[:2], good_lines()[2] + " " + good_lines()[0]],
          Refused("malformed JSON: Extra data", "<json>")),
    Class("nesting deeper than Python reads", '`"note": [[[[…]]]]` (100,000 deep)',
          raw_extra(', "note": ' + "[" * 100_000 + "]" * 100_000), Refused("nested too deeply", "<json>")),
    Class("bytes that are not UTF-8", "`E9` (Latin-1 `é`) in a query",
          lambda: [*good_lines()[:2], good_lines()[2].encode().replace(b"phone", b"t\xe9l\xe9phone")],
          Refused("line is not valid UTF-8", "<json>")),
    Class("an empty file", "no rows (or only blank lines)", lambda: ["", "  "], Refused("file has no rows", "<file>",
                                                                                          line=0)),
    Class("an id twice in a file", '`"id": 1` on lines 1 and 3', raw_row(id="1"),
          Refused("id 1 is already used on line 1", "id")),
    Class("one id as a number and as a string", '`"id": 1` on line 1, `"id": "1"` on line 3', raw_row(id='"1"'),
          Refused("id '1' is already used on line 1", "id")),
    Class("labels on some rows only (`predict`)", "a label on line 1, none on line 3",
          raw_row(label=ABSENT), Refused("label every row or none", "label"), {"require_label": False,
                                                                                 "null_target": "empty"}),
]


@pytest.mark.parametrize("case", CLASSES, ids=[c.name for c in CLASSES])
def test_every_class_of_value_and_of_file(tmp_path, case):
    path = rows_file(tmp_path, case.lines())
    expect_read(path, case.task, case.options, case.outcome)


def test_an_id_in_two_files_is_two_rows(tmp_path):
    """Ids are unique per file: the demo's train and dev files (and the competition's) each number their
    rows from 1. The same row in two files is found by its query instead (`data.query_overlap`)."""
    folder = tmp_path / "data"
    write_demo_data(folder, task_config("qc"), seed=3, train_rows=60, dev_rows=40)
    cfg = compose_train(["data=competition", f"data.dir={folder}", "data.train_file=qc_train.jsonl",
                         "data.dev_file=qc_dev.jsonl"])
    splits = load_splits(cfg.data, cfg.task)
    assert set(splits.train["id"]) & set(splits.dev["id"]), "the demo files no longer share ids: test nothing"
    assert len(splits.train) == 60


# --------------------------------------------------------------------------- the docs' tables are these

def cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def render_tables() -> str:
    kinds = list(TYPES)
    grid = ["| field | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for row, cells in GRID.items():
        shown = {"category_path / item_title": "`category_path` / `item_title`",
                 "label (predict)": "`label` (`predict`)", "any other field": "any other field"}.get(row, f"`{row}`")
        grid.append(f"| {shown} | " + " | ".join(cell_text(cells[k].outcome.cell()) for k in kinds) + " |")
    classes = ["| class | in the file | what happens |", "|---|---|---|"]
    classes += [f"| {cell_text(c.name)} | {cell_text(c.shown)} | {cell_text(c.outcome.doc())} |" for c in CLASSES]
    return "\n".join(["", "### Every field by every type", "", *grid, "", "### Values and files", "", *classes, ""])


def doc_tables() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)]


def test_the_docs_tables_are_these_classes():
    assert doc_tables().strip("\n") == render_tables().strip("\n"), (
        "docs/data.md's bad-input tables differ from the classes tested here: "
        "regenerate them with `.venv/bin/python -m tests.test_bad_input_classes --write`")


def write_doc_tables() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + render_tables() + "\n" + text[end:], encoding="utf-8")


# --------------------------------------------------------------------------- through the real CLI

def demo_lines(folder: Path, split: str) -> list[str]:
    return (folder / f"qc_{split}.jsonl").read_text(encoding="utf-8").splitlines()


def set_field(text: str, name: str, raw: str) -> str:
    """A line with one field's JSON text replaced (the text as written, NaN or a surrogate included)."""
    value = re.escape(json.dumps(json.loads(text)[name], ensure_ascii=False))
    changed, count = re.subn(f'"{name}": {value}', lambda _: f'"{name}": {raw}', text, count=1)
    assert count == 1, text
    return changed


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    """A finished QC run trained on files whose targets are empty on three rows (the class that trained
    silently, as if those rows had a target): they count as null targets and are dropped, logged."""
    root = tmp_path_factory.mktemp("classes")
    data = root / "data"
    write_demo_data(data, task_config("qc"), seed=1, train_rows=96, dev_rows=48)
    train = demo_lines(data, "train")
    for number, raw in ((4, '""'), (9, '"   "'), (17, '"\\u200b"')):
        train[number - 1] = set_field(train[number - 1], "category_path", raw)
    (data / "qc_train.jsonl").write_text("\n".join(train) + "\n", encoding="utf-8")
    result = run_cli("train", tiny_run_args(root, shared_cache, "data=competition", f"data.dir={data}",
                                            "data.train_file=qc_train.jsonl", "data.dev_file=qc_dev.jsonl",
                                            "trainer.epochs=1"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return root, data, run, result


def test_empty_targets_are_null_targets_in_a_real_run(trained):
    _, _, run, result = trained
    assert run.info.status == "FINISHED"
    assert run.data.params["data.null_targets"] == "3"
    assert "3 rows had a null category_path" in result.stderr + result.stdout


def fails_before_loading(module: str, args: list[str], root: Path, tmp_path: Path) -> str:
    own_cache = tmp_path / "empty_cache"
    result = run_cli(module, [*args, f"paths.root={root}", f"paths.cache_dir={own_cache}"], cwd=root, check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    assert not (own_cache / "models").exists(), "the model was loaded before the error"
    return result.stderr


@pytest.mark.parametrize("role, number, name, raw, message", [
    ("train", 5, "origin_query", '"\\ud800"', "field 'origin_query': '\\ud800' holds a lone surrogate"),
    ("dev", 7, "label", "NaN", "field 'label': NaN is not a JSON number"),
])
def test_train_refuses_before_any_model_loads(trained, tmp_path, role, number, name, raw, message):
    root, data, _, _ = trained
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "dev"):
        lines = demo_lines(data, split)
        if split == role:
            lines[number - 1] = set_field(lines[number - 1], name, raw)
        (folder / f"qc_{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    stderr = fails_before_loading("train", ["model=tiny_random", "trainer=smoke", "data=competition",
                                            f"data.dir={folder}", "data.train_file=qc_train.jsonl",
                                            "data.dev_file=qc_dev.jsonl"], root, tmp_path)
    assert f"qc_{role}.jsonl:{number}: {message}" in stderr, stderr[-3000:]


def test_predict_refuses_before_the_model_loads(trained, tmp_path):
    """A value `predict` would have written back as invalid JSON (`"score": Infinity`)."""
    root, data, run, _ = trained
    lines = demo_lines(data, "dev")
    lines[5] = lines[5][:-1] + ', "score": Infinity}'
    source = tmp_path / "input.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    stderr = fails_before_loading("predict", [f"run={run.info.run_id}", f"input={source}", f"output={output}"],
                                  root, tmp_path)
    assert "input.jsonl:6: field 'score': Infinity is not a JSON number" in stderr, stderr[-3000:]
    assert not output.exists()


def test_predict_writes_every_accepted_row_back_whole(trained, shared_cache, tmp_path):
    """A CR between tokens, a BOM, CRLF endings, blank lines and fields the reader ignores: every row
    comes back as it was, plus its prediction (the output re-reads the input line by line)."""
    root, data, run, _ = trained
    lines = demo_lines(data, "dev")[:12]
    lines[2] = lines[2].replace(", ", ",\r ", 1)
    lines[4] = lines[4][:-1] + ', "note": {"seen": [null, true, 1.5]}}'
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines[:6] + ["", "  "] + lines[6:]).encode() + b"\r\n")
    output = tmp_path / "out.jsonl"
    run_cli("predict", [f"run={run.info.run_id}", f"input={source}", f"output={output}", f"paths.root={root}",
                        f"paths.cache_dir={shared_cache}"], cwd=root)
    written = [json.loads(text) for text in output.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in row.items() if k not in ("prediction", "score")} for row in written] == \
        [json.loads(text) for text in lines]
    assert all(row["prediction"] in (0, 1) for row in written)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_doc_tables()
    else:
        print(render_tables())
