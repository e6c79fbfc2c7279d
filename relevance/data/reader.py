"""Strict reader for the competition's JSON-lines files.

Every line is validated and the first problem stops the run with a
:class:`~relevance.data.schema.DataError` that names file, line and field: a
silently mis-parsed row (a label ``"1"`` read as truthy, a QI file passed to a QC
run) would otherwise surface hours later as a puzzling metric.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import datasets

from .language_codes import canonical_language
from .schema import COLUMNS, ORIGINAL_SOURCE, DataError

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
    null_targets: int  # rows with a null target, handled by the ``null_target`` policy


def _label(value, path: str, line: int) -> int:
    # bool is a subclass of int: reject it explicitly, as well as strings like "1",
    # which would otherwise be accepted by a lenient int() conversion.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    if int(value) not in (0, 1):
        raise DataError(path, line, "label", f"expected 0 or 1, got {value!r}")
    return int(value)


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
    ended = " (the line ends there: cut short?)" if error.pos >= len(error.doc) else ""
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
    item title) is JSON ``null`` — the real QI training set has a few hundred:
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

    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(spath, lineno, "<json>", f"line is not valid UTF-8 ({e.reason})") from None
            try:
                obj = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                raise DataError(spath, lineno, "<json>", _json_error(e)) from None
            if not isinstance(obj, dict):
                raise DataError(spath, lineno, "<json>", f"expected a JSON object, got {type(obj).__name__}")
            n_rows += 1

            for name in required:
                if name not in obj:
                    raise DataError(spath, lineno, name, "missing required field")

            rid = obj["id"]
            if isinstance(rid, bool) or not isinstance(rid, (int, str)) or (isinstance(rid, str) and not rid.strip()):
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
            if not isinstance(query, str) or not query.strip():
                raise DataError(spath, lineno, "origin_query", f"expected a non-empty string, got {query!r}")

            target = obj[target_field]
            is_null = target is None
            if is_null:
                if null_target == "error":
                    raise DataError(spath, lineno, target_field, "is null (use null_target='drop' or 'empty')")
                n_null += 1
            elif not isinstance(target, str):
                raise DataError(spath, lineno, target_field, f"expected a string, got {target!r}")

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
        raise DataError(spath, 0, "<file>", f"all {n_rows} rows had a null {target_field} and were dropped")

    n_kept = len(cols["id"])
    cols["source"] = [ORIGINAL_SOURCE] * n_kept
    if not labelled:
        del cols["label"]
    dataset = datasets.Dataset.from_dict(cols, features=table_features(bool(labelled)))
    return ReadResult(dataset=dataset, path=spath, null_targets=n_null)
