"""Messages that point the right way, and atomic writes that leave the process alone.

A row whose task does not exist names the tasks that do (not `task=qx`, which would fail
again); a JSON line cut short is reported at the column where JSON broke; a full disk
under an atomic write names the path that ran out of space. `atomic_open` computes the
new file's mode without touching the process-wide umask (the heartbeat thread may create
files meanwhile). Real CLI and tiny model for the data messages; the writes as unit tests.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance import files
from relevance.data.demo import write_demo_data
from relevance.data.reader import read_jsonl
from relevance.data.schema import DataError
from tests.conftest import run_cli, task_config



@pytest.fixture
def user_data(tmp_path) -> Path:
    folder = tmp_path / "user"
    write_demo_data(folder, task_config("qc"), seed=1, train_rows=96, dev_rows=48)
    return folder


def rewrite_line(path: Path, number: int, change) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = change(lines[number - 1].rstrip("\n")) + "\n"
    path.write_text("".join(lines))


def train_fails_before_loading(data: Path, tmp_path: Path, shared_cache: Path) -> str:
    """`relevance.train` on the user's files: it must fail, its run FAILED with the message, before the
    model loads for training (no `model_load_seconds`); its stderr."""
    result = run_cli("train", ["model=tiny_random", "trainer=smoke", "data=competition", f"data.dir={data}",
                               "data.train_file=qc_train.jsonl", "data.dev_file=qc_dev.jsonl",
                               f"paths.root={tmp_path}", f"paths.cache_dir={shared_cache}"], cwd=tmp_path,
                     check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["error"].split(": ", 1)[1] in result.stderr
    assert "model_load_seconds" not in run.data.metrics, "the model was loaded before the error"
    return result.stderr


def with_task(task: str):
    return lambda line: json.dumps({**json.loads(line), "task": task})


# --------------------------------------------------------------------------- a task that does not exist

def test_a_task_that_does_not_exist_names_the_tasks_that_do(user_data, tmp_path, shared_cache):
    rewrite_line(user_data / "qc_train.jsonl", 3, with_task("QX"))
    stderr = train_fails_before_loading(user_data, tmp_path, shared_cache)
    assert "qc_train.jsonl:3: field 'task'" in stderr
    assert "task=qx" not in stderr  # advice that would fail again
    assert "no task 'qx'" in stderr and "qc, qi" in stderr


def test_an_existing_task_still_says_what_to_type(user_data):
    rewrite_line(user_data / "qc_train.jsonl", 2, with_task("qi"))
    with pytest.raises(DataError, match="pass task=qi"):
        read_jsonl(user_data / "qc_train.jsonl", task_config("qc"))


def test_a_task_of_another_type_names_the_tasks_that_exist(user_data):
    rewrite_line(user_data / "qc_train.jsonl", 2, lambda line: json.dumps({**json.loads(line), "task": 7}))
    with pytest.raises(DataError, match=r"no task '7'.*qc, qi") as error:
        read_jsonl(user_data / "qc_train.jsonl", task_config("qc"))
    assert "task=7" not in str(error.value)


# --------------------------------------------------------------------------- where JSON broke

def cut_after_a_value(line: str) -> str:
    """The line cut right after a complete value (`..."language": "en"`): JSON breaks one column later,
    where the `,` or `}` should be; the parser, given the line ending too, said "line 2 column 1"."""
    return line[:line.index(', "origin_query"')]


def test_a_line_cut_short_is_reported_where_json_broke(user_data, tmp_path, shared_cache):
    train = user_data / "qc_train.jsonl"
    rewrite_line(train, 2, cut_after_a_value)
    broken_at = len(train.read_text().splitlines()[1]) + 1
    stderr = train_fails_before_loading(user_data, tmp_path, shared_cache)
    assert "qc_train.jsonl:2: field '<json>'" in stderr
    assert f"column {broken_at}" in stderr and "column 1)" not in stderr


def test_the_column_counts_characters_after_a_bom_and_before_a_crlf(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "task": "QC", "language" "en"}\r\n')
    with pytest.raises(DataError, match=r"column 38\b"):  # the missing ':' after "language"
        read_jsonl(path, task_config("qc"))


# --------------------------------------------------------------------------- a full disk names the path

def raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_full_disk_under_an_atomic_write_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "cache" / "entry.json"
    path.parent.mkdir()
    path.write_text("old")
    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", raise_enospc)
    if where == "replace":
        monkeypatch.setattr(files.os, "replace", raise_enospc)
    with pytest.raises(OSError) as error:
        with files.atomic_open(path) as handle:
            if where == "write":
                raise_enospc()
            handle.write("new")
    assert error.value.errno == errno.ENOSPC  # still an OSError of that kind, for handlers that check it
    assert str(path) in str(error.value) and "no space left" in str(error.value).lower()
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["entry.json"]


def test_other_os_errors_pass_through_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(PermissionError(errno.EACCES, "no")))
    with pytest.raises(PermissionError, match="no"):
        with files.atomic_open(tmp_path / "x.txt") as handle:
            handle.write("x")


# --------------------------------------------------------------------------- the umask is left alone

def test_atomic_open_never_changes_the_umask(tmp_path, monkeypatch):
    """The umask is process-wide: setting it to 0, even for an instant, lets a file another
    thread creates then (the heartbeat's, the store's) come out world-writable."""
    old = os.umask(0o027)
    try:
        def umask_forbidden(mask):
            raise AssertionError(f"os.umask({mask:o}) called while writing")

        monkeypatch.setattr(files.os, "umask", umask_forbidden)
        with files.atomic_open(tmp_path / "new.txt") as handle:
            handle.write("x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640  # 0666 less the umask, as open() gives


def test_an_existing_files_mode_is_kept(tmp_path):
    path = tmp_path / "kept.txt"
    path.write_text("old")
    path.chmod(0o600)
    with files.atomic_open(path) as handle:
        handle.write("new")
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_text() == "new"
