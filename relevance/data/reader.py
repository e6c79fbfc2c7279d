"""Strict reader for the competition's JSON-lines files.

Every line is validated and the first problem stops the run with a
:class:`~relevance.data.schema.DataError` that names file, line and field: a
silently mis-parsed row (a label ``"1"`` read as truthy, a QI file passed to a QC
run) would otherwise surface hours later as a puzzling metric.

Lines are parsed as JSON (RFC 8259), not as everything Python's ``json`` accepts: ``NaN``,
``Infinity``, numbers beyond a float (``1e400``), integers too long for Python to convert, lone
surrogates (``"\ud800"``) and a key twice in one object are refused, in any field (``predict`` writes
every field back out, and none of these can be written as JSON or UTF-8). Numbers keep the text the
file wrote, so a label is exactly 0 or 1 (``0.99999999999999999`` is not 1). docs/data.md lists every
class of bad input and what the reader does with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import datasets

from .language_codes import canonical_language
from .schema import COLUMNS, ORIGINAL_SOURCE, DataError
from .text import has_visible_text

TASKS_DIR = Path(__file__).resolve().parents[2] / "conf" / "task"  # one YAML per task: qc.yaml, qi.yaml

NULL_TARGET_POLICIES = ("drop", "empty", "error")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")  # ISO 639 with optional subtags: pt, pt-br, zh-hant
TRAIN_TASK_ADVICE = "pass task={file_task} or another file"


def table_features(labelled: bool = True) -> datasets.Features:
    """Explicit column types, so empty or odd files still give a stable schema."""
    cols = {c: datasets.Value("string") for c in COLUMNS}
    cols["label"] = datasets.Value("int64")
    if not labelled:
        del cols["label"]
    return datasets.Features(cols)


@dataclass
class ReadResult:
    """A validated table plus facts about how it was read."""

    dataset: datasets.Dataset
    path: str
    null_targets: int  # rows with a null or empty target, handled by the ``null_target`` policy


class JSONFloat(float):
    """A JSON number with a fraction or an exponent, keeping the text the file wrote: a label is
    checked on that text (``0.99999999999999999`` is a float 1.0 but not the label 1), and messages
    quote it."""

    text: str

    def __new__(cls, text: str) -> JSONFloat:
        number = super().__new__(cls, float(text))
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


class TooLongInteger:
    """An integer with more digits than Python converts (``sys.get_int_max_str_digits()``)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<an integer of {len(self.text.lstrip('-'))} digits>"


class JSONObject(dict):
    """An object as parsed, remembering the keys it had twice (Python keeps the last silently)."""

    repeated: tuple[str, ...] = ()


def _parse_object(pairs: list[tuple[str, object]]) -> JSONObject:
    obj = JSONObject(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.repeated = tuple(key for key, _ in pairs if key in seen or seen.add(key))
    return obj


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a line can spell a (lone) surrogate


class LineParser:
    """Parses lines as JSON: `JSONFloat` for every number with a fraction or an exponent (``NaN`` and
    ``Infinity`` included), `TooLongInteger` for an integer Python cannot convert, `JSONObject` for every
    object. `parse` also says whether the line may hold something JSON or UTF-8 cannot carry (a
    non-finite number, a too long integer, a key twice, a surrogate escape): only such a line is walked
    by `unwritable_value`, so a clean file is read at nearly the speed of plain `json.loads`."""

    def __init__(self) -> None:
        self.suspect = False
        self.decoder = json.JSONDecoder(parse_float=self._float, parse_constant=self._float, parse_int=self._int,
                                        object_pairs_hook=self._object)

    def _float(self, text: str) -> JSONFloat:
        number = JSONFloat(text)
        self.suspect = self.suspect or not math.isfinite(number)
        return number

    def _int(self, text: str) -> int | TooLongInteger:
        try:
            return int(text)
        except ValueError:
            self.suspect = True
            return TooLongInteger(text)

    def _object(self, pairs: list[tuple[str, object]]) -> JSONObject:
        obj = _parse_object(pairs)
        self.suspect = self.suspect or bool(obj.repeated)
        return obj

    def parse(self, text: str) -> tuple[object, bool]:
        """(the value, whether to walk it). Raises `json.JSONDecodeError` or `RecursionError`."""
        self.suspect = SURROGATE_ESCAPE.search(text) is not None
        return self.decoder.decode(text), self.suspect


def _shown(text: str) -> str:
    """A key as a message can print it (a lone surrogate escaped)."""
    return text if _encodes(text) else ascii(text)[1:-1]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unwritable_value(value) -> str | None:
    """What in `value` (anything a line parsed into) JSON or UTF-8 cannot carry, said for a message;
    None when nothing. Walks nested arrays and objects without recursion (a line may nest deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, JSONFloat) and not math.isfinite(item):
            return (f"{item.text} is not a JSON number" + (" (it overflows a float)" if item.text[-1].isdigit() else "")
                    + ": write a finite number, or null")
        if isinstance(item, TooLongInteger):
            return f"{item!r} is too long to read as a number"
        if isinstance(item, str) and not _encodes(item):
            return f"{ascii(item)} holds a lone surrogate (half of a UTF-16 pair), which is not text"
        if isinstance(item, JSONObject):
            if item.repeated:
                return f"key {_shown(item.repeated[0])!r} appears twice in one object"
            bad_key = next((key for key in item if not _encodes(key)), None)
            if bad_key is not None:
                return f"key {ascii(bad_key)} holds a lone surrogate (half of a UTF-16 pair), which is not text"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _check_writable(obj: JSONObject, path: str, line: int) -> None:
    """The first field of a row that JSON or UTF-8 cannot carry, as a DataError naming it."""
    if obj.repeated:
        raise DataError(path, line, _shown(obj.repeated[0]), "this key appears twice in the row: JSON readers "
                                                             "disagree on which value counts; keep one")
    for name, value in obj.items():
        problem = unwritable_value(value) if _encodes(name) else "the key holds a lone surrogate"
        if problem:
            raise DataError(path, line, _shown(name), problem)


def check_row_writable(obj: JSONObject, path: str, line: int) -> None:
    """Refuse, naming the field, a row holding what JSON or UTF-8 cannot carry (a non-finite number, a too
    long integer, a key twice, a lone surrogate): for readers of other JSON-lines files (submission)."""
    _check_writable(obj, path, line)


def json_type(value) -> str:
    """The JSON name of a parsed value's type (null, boolean, number, string, array, object)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, TooLongInteger)):
        return "number"
    return {str: "string", list: "array"}.get(type(value), "object")


def _label(value, path: str, line: int) -> int:
    # bool is a subclass of int: reject it explicitly, as well as strings like "1",
    # which would otherwise be accepted by a lenient int() conversion. A float is read
    # from the file's text: 1.0 and 1e0 are 1, 0.99999999999999999 is not.
    if type(value) is int and value in (0, 1):  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    exact = Decimal(value.text) if isinstance(value, JSONFloat) else Decimal(value)
    if exact not in (0, 1):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    return int(exact)


def known_tasks() -> list[str]:
    """The tasks a run can be given (`task=<key>`): the YAML files of conf/task/."""
    return sorted(path.stem for path in TASKS_DIR.glob("*.yaml"))


def _task_mismatch(file_task, run_task: str, task_advice: str) -> str:
    """What the file says against the run, and what to do: `task=<it>` only when that task exists
    (advising a task that does not would fail again); else the tasks that exist."""
    said = str(file_task).strip().lower()
    known = known_tasks()
    if said in known:
        return f"file says {file_task!r} but the run's task is {run_task}: " + task_advice.format(file_task=said)
    return (f"file says {file_task!r} but the run's task is {run_task}, and there is no task {said!r} "
            f"(tasks: {', '.join(known)}): fix the row's task field")


def _json_error(error: json.JSONDecodeError) -> str:
    """Where JSON broke, as a column of the line (its line ending stripped: a line cut short breaks at
    its end, not at "line 2 column 1")."""
    if error.pos >= len(error.doc):
        ended = " (the line ends there: cut short?)"
    elif error.msg.startswith("Unterminated string"):  # JSON reports where the string started
        ended = " (the line ends inside it: cut short?)"
    else:
        ended = ""
    return f"malformed JSON: {error.msg} (column {error.pos + 1}){ended}"


def _check_language(code: str, known: set[str] | None, path: str, line: int) -> None:
    if not LANGUAGE_CODE.match(code):
        raise DataError(path, line, "language", f"{code!r} is not a language code (expected e.g. en, pt, pt-br)")
    if known is not None and code not in known:
        raise DataError(path, line, "language", f"unknown language code {code!r}: data.languages accepts "
                                                f"{', '.join(sorted(known))} (add it there, or null to accept any code)")


def read_jsonl(
    path: str | Path,
    task_cfg,
    *,
    require_label: bool = True,
    null_target: str = "drop",
    languages: Collection[str] | None = None,
    task_advice: str = TRAIN_TASK_ADVICE,
) -> ReadResult:
    """Read and validate one competition file into the internal table (see ``COLUMNS``).

    ``task_cfg`` is the run's task config (``conf/task/<key>.yaml``): rows must say
    ``task: <task_cfg.name>`` (case-insensitive) and carry the target in
    ``task_cfg.target_field``.

    ``null_target`` decides what happens to rows whose target (category path or
    item title) is JSON ``null`` — the real QI training set has a few hundred — or
    a string with no visible character (``""``, blanks, zero-width or control characters):
    ``"drop"`` removes them, ``"empty"`` keeps them with target ``""`` and
    ``"error"`` raises.  When ``require_label`` is false the label is optional,
    but it must then be present on all rows or on none; it is kept when present
    (scoring a labelled dev file still yields metrics).

    ``languages`` is the set of accepted language codes (``data.languages``; None:
    any well-formed code). A code is read in its canonical spelling (``vn`` → ``vi``,
    `relevance.data.language_codes`), in the rows and in ``languages`` alike. Ids must be
    unique within a file. ``task_advice`` ends the message of a task mismatch: what the
    user should type, with ``{file_task}`` for the file's task in lower case.
    """
    task = str(task_cfg.name).strip().upper()
    if null_target not in NULL_TARGET_POLICIES:
        raise ValueError(
            f"unknown null_target policy {null_target!r}: expected one of {', '.join(NULL_TARGET_POLICIES)}"
        )
    target_field = str(task_cfg.target_field)
    # The target field is checked after the task value: a QI file passed to a QC
    # run should be reported as a task mismatch, not as lacking category_path.
    required = ("id", "task", "language", "origin_query")
    p = Path(path)
    spath = str(path)
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {spath}")

    known_languages = None if languages is None else {canonical_language(str(code)) for code in languages}
    first_line_of_id: dict[str, int] = {}
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    n_rows = 0
    n_null = 0
    labelled: bool | None = None  # decided by the first row
    first_line = 0
    parser = LineParser()

    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(spath, lineno, "<json>", f"line is not valid UTF-8 ({e.reason})") from None
            if not text.strip(" \t\r\n"):  # blank: JSON's whitespace only (a BOM alone on line 1 too)
                continue
            if text.startswith("\ufeff"):  # allowed before line 1 only (decoded away there)
                raise DataError(spath, lineno, "<json>", "a byte order mark (BOM) starts this line, not the file: "
                                                         "files joined together? remove it")
            try:
                obj, suspect = parser.parse(text.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                raise DataError(spath, lineno, "<json>", _json_error(e)) from None
            except RecursionError:
                raise DataError(spath, lineno, "<json>", "arrays or objects nested too deeply to read") from None
            if not isinstance(obj, dict):
                raise DataError(spath, lineno, "<json>", f"expected a JSON object, got {json_type(obj)}")
            n_rows += 1
            if suspect:
                _check_writable(obj, spath, lineno)

            for name in required:
                if name not in obj:
                    raise DataError(spath, lineno, name, "missing required field")

            rid = obj["id"]
            if (isinstance(rid, bool) or not isinstance(rid, (int, str))
                    or (isinstance(rid, str) and not has_visible_text(rid))):
                raise DataError(spath, lineno, "id", f"expected an integer or non-empty string, got {rid!r}")

            ftask = obj["task"]
            if not isinstance(ftask, str) or ftask.strip().upper() != task:
                raise DataError(spath, lineno, "task", _task_mismatch(ftask, task, task_advice))

            if target_field not in obj:
                raise DataError(spath, lineno, target_field, "missing required field")

            lang = obj["language"]
            if not isinstance(lang, str) or not lang.strip():
                raise DataError(spath, lineno, "language", f"expected a non-empty language code, got {lang!r}")
            lang = canonical_language(lang)
            _check_language(lang, known_languages, spath, lineno)

            query = obj["origin_query"]
            if not isinstance(query, str) or not has_visible_text(query):
                raise DataError(spath, lineno, "origin_query", f"expected a non-empty string, got {query!r}")

            # A target with nothing to read (null, "", blank, only control or zero-width characters) is a
            # missing target, whichever way the file spells it: the null_target policy decides.
            target = obj[target_field]
            if target is not None and not isinstance(target, str):
                raise DataError(spath, lineno, target_field, f"expected a string, got {target!r}")
            is_null = target is None or not has_visible_text(target)
            if is_null:
                if null_target == "error":
                    said = "is null" if target is None else f"has no text ({target!r})"
                    raise DataError(spath, lineno, target_field,
                                    f"{said} (use null_target='drop' or 'empty' to drop or keep such rows)")
                n_null += 1

            # A label is "present" when the key exists and is not null.
            has_label = obj.get("label") is not None
            if require_label and "label" not in obj:
                raise DataError(spath, lineno, "label", "missing required field")
            if require_label or has_label:
                label = _label(obj.get("label"), spath, lineno)
            if labelled is None:
                labelled, first_line = has_label, lineno
            elif has_label != labelled:
                state = "has a label" if has_label else "has no label"
                other = "have none" if has_label else "have one"
                raise DataError(
                    spath, lineno, "label",
                    f"this row {state} but earlier rows (from line {first_line}) {other}: "
                    "label every row or none",
                )

            first = first_line_of_id.setdefault(str(rid), lineno)
            if first != lineno:
                raise DataError(spath, lineno, "id", f"id {rid!r} is already used on line {first}: "
                                                     "ids must be unique within a file")
            if is_null and null_target == "drop":
                continue
            cols["id"].append(str(rid))
            cols["task"].append(task)
            cols["language"].append(lang)
            cols["query"].append(query.strip())
            cols["target"].append("" if is_null else target.strip())
            if labelled:
                cols["label"].append(label)

    if n_rows == 0:
        raise DataError(spath, 0, "<file>", "file has no rows")
    if not cols["id"]:
        raise DataError(spath, 0, "<file>", f"all {n_rows} rows had a null or empty {target_field} and were dropped "
                                         "(null_target='drop')")

    n_kept = len(cols["id"])
    cols["source"] = [ORIGINAL_SOURCE] * n_kept
    if not labelled:
        del cols["label"]
    dataset = datasets.Dataset.from_dict(cols, features=table_features(bool(labelled)))
    return ReadResult(dataset=dataset, path=spath, null_targets=n_null)
