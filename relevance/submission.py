"""`python -m relevance.submission qc=<QC predictions> qi=<QI predictions> [out=submission.zip]`

Packs the prediction files `relevance.predict` wrote for the official test files into the
competition's archive: one zip holding `submit_QC.txt` and `submit_QI.txt` (`member` in
conf/submission.yaml), one JSON object a line, `{"id": <the row's id>, "prediction": 0|1}`, in
the order of the predictions file (the test file's order).

The line format is the one the 4th-place team's published pipeline writes into the same two
files (github.com/2noweyh/DILAB-Alibaba-Ecommerce-Search, src/inference.py); the organisers'
own specification was not found, so check it against the competition page before submitting
(docs/competition.md).

Every input is checked before anything is written, and the first problem stops the command with
`file:line: field 'name': ...`: each row a JSON object with an `id` (an integer or a non-empty
string) and a `prediction` (0 or 1), the file's task (a row's `task`, when it has one) the one its
key names, every id once. The archive is written atomically: a failure leaves no partial zip and
an earlier archive at `out` whole.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from relevance.data.reader import LineParser, check_row_writable, json_type
from relevance.data.schema import DataError
from relevance.files import atomic_open


@dataclass(frozen=True)
class TaskPredictions:
    """One task's validated predictions, in file order."""

    task: str  # the task's name, as its rows and the archive member say it (QC, QI)
    path: Path
    rows: list[tuple[int | str, int]]  # (id, prediction)

    def lines(self) -> str:
        return "".join(json.dumps({"id": rid, "prediction": p}, ensure_ascii=False) + "\n" for rid, p in self.rows)


def read_predictions(path: Path, task: str, key: str) -> TaskPredictions:
    """The (id, prediction) rows of `path`, checked (see the module docstring); `key` is the
    command's key for this task (`qc`), named in the advice of a task mismatch."""
    if not path.is_file():
        raise FileNotFoundError(f"{key}={path}: no such file (relevance.predict's output for the {task} test file)")
    rows: list[tuple[int | str, int]] = []
    first_line_of_id: dict[str, int] = {}
    parser = LineParser()  # strict JSON, as the reader of the competition's files: no NaN, no key twice
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj, suspect = parser.parse(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
            except UnicodeDecodeError as error:
                raise DataError(path, lineno, "<json>", f"line is not valid UTF-8 ({error.reason})") from None
            except json.JSONDecodeError as error:
                raise DataError(path, lineno, "<json>", f"malformed JSON: {error.msg} (column {error.colno})") from None
            except RecursionError:
                raise DataError(path, lineno, "<json>", "nested too deeply to be a row") from None
            if not isinstance(obj, dict):
                raise DataError(path, lineno, "<json>", f"expected a JSON object, got {json_type(obj)}")
            if suspect:
                check_row_writable(obj, path, lineno)
            _check_task(obj, task, key, path, lineno)
            rows.append((_row_id(obj, path, lineno), _prediction(obj, path, lineno)))
            first = first_line_of_id.setdefault(str(rows[-1][0]), lineno)
            if first != lineno:
                raise DataError(path, lineno, "id", f"id {rows[-1][0]!r} is already used on line {first}: "
                                                    "each test row is predicted once")
    if not rows:
        raise DataError(path, 0, "<file>", "file has no rows")
    return TaskPredictions(task, path, rows)


def _row_id(obj: dict, path: Path, lineno: int) -> int | str:
    if "id" not in obj:
        raise DataError(path, lineno, "id", "missing required field")
    rid = obj["id"]
    if isinstance(rid, bool) or not isinstance(rid, (int, str)) or (isinstance(rid, str) and not rid.strip()):
        raise DataError(path, lineno, "id", f"expected an integer or non-empty string, got {rid!r}")
    return rid


def _prediction(obj: dict, path: Path, lineno: int) -> int:
    if "prediction" not in obj:
        raise DataError(path, lineno, "prediction", "missing required field (is this relevance.predict's output?)")
    value = obj["prediction"]
    if isinstance(value, bool) or value not in (0, 1) or not isinstance(value, int):
        raise DataError(path, lineno, "prediction", f"expected 0 or 1, got {value!r}")
    return value


def _check_task(obj: dict, task: str, key: str, path: Path, lineno: int) -> None:
    if "task" in obj and str(obj["task"]).strip().upper() != task.upper():
        other = str(obj["task"]).strip().lower()
        raise DataError(path, lineno, "task", f"file says {obj['task']!r} but {key}= takes the {task} predictions: "
                                              f"pass this file as {other}=")


def write_archive(out: Path, member: str, predictions: list[TaskPredictions]) -> None:
    """The zip at `out`, one member per task (`member` with {task}), written atomically."""
    with atomic_open(out, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for task_predictions in predictions:
            archive.writestr(member.format(task=task_predictions.task), task_predictions.lines())


def build_submission(cfg: DictConfig) -> list[TaskPredictions]:
    """Read and check every task's predictions (conf/submission.yaml's `tasks`), then write `out`."""
    out = Path(cfg.out)
    missing = [key for key in cfg.tasks if OmegaConf.is_missing(cfg, key)]
    if missing:
        raise ValueError("missing " + ", ".join(f"{key}=<{cfg.tasks[key].name} predictions file>" for key in missing)
                         + ": relevance.predict's output for each task's test file")
    inputs = {key: Path(cfg[key]) for key in cfg.tasks}
    for key, path in inputs.items():
        if out.exists() and out.resolve() == path.resolve():
            raise ValueError(f"out={out} is the {key}= input: choose another archive path")
    predictions = [read_predictions(path, str(cfg.tasks[key].name), key) for key, path in inputs.items()]
    write_archive(out, str(cfg.member), predictions)
    return predictions


@hydra.main(config_path="../conf", config_name="submission", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        predictions = build_submission(cfg)
    except (DataError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"relevance.submission: {error}") from None
    members = ", ".join(f"{cfg.member.format(task=p.task)} ({len(p.rows)} rows, "
                        f"{sum(pred for _, pred in p.rows)} relevant)" for p in predictions)
    print(f"wrote {cfg.out}: {members}")


if __name__ == "__main__":
    main()
