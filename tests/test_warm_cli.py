"""tests/warm_cli.py: a run forked from the warm interpreter ends as the same run started as a plain subprocess
(exit status, output), and a run it cannot stand in for is started as a plain subprocess."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, warm_cli
from tests.warm_cli import COLD_ENV, _exit_status


def both_ways(monkeypatch, module: str, args: list[str], cwd):
    """The run forked from the warm interpreter, then the same run as a plain subprocess."""
    monkeypatch.delenv(COLD_ENV, raising=False)
    forked = warm_cli().runs
    warm = run_cli(module, args, cwd=cwd, check=False)
    assert warm_cli().runs == forked + 1, "the first run was not forked from the warm interpreter"
    monkeypatch.setenv(COLD_ENV, "1")
    cold = run_cli(module, args, cwd=cwd, check=False)
    assert warm_cli().runs == forked + 1, "the second run was not a plain subprocess"
    return warm, cold


def test_a_refused_command_ends_alike_warm_and_cold(tmp_path, monkeypatch):
    # argparse's usage error (exit 2), then a run of the submission CLI missing a task (exit 1, its message)
    for module, args in (("train", ["--no-such-flag"]), ("submission", ["qc=qc.jsonl"])):
        warm, cold = both_ways(monkeypatch, module, args, tmp_path)
        assert warm.returncode == cold.returncode != 0, (warm, cold)
        assert warm.stderr.splitlines()[-1] == cold.stderr.splitlines()[-1], (warm.stderr, cold.stderr)


def test_a_run_prints_the_same_output_warm_and_cold(tmp_path, monkeypatch):
    """`relevance.train --cfg job` prints the composed config: the same text both ways."""
    warm, cold = both_ways(monkeypatch, "train", ["--cfg", "job", "model=tiny_random"], tmp_path)
    assert warm.returncode == cold.returncode == 0
    assert warm.stdout == cold.stdout and "tiny_random" in warm.stdout


def test_a_run_sees_its_own_environment_at_import_time(tmp_path, monkeypatch):
    """A variable set for one run is what the run's imports see: `python -c` cannot be forked, so the run is
    `relevance.train --cfg job` under PYTHONPATH holding a `sitecustomize` that prints what it sees."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text("import os\nprint('hook sees', os.environ['HOOK_WORD'])\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hook"))
    for word in ("first", "second"):
        monkeypatch.setenv("HOOK_WORD", word)
        warm, cold = both_ways(monkeypatch, "train", ["--cfg", "job"], tmp_path)
        assert warm.stdout.splitlines()[0] == cold.stdout.splitlines()[0] == f"hook sees {word}"


@pytest.mark.parametrize("code, status", [(None, 0), (0, 0), (3, 3), (256 + 7, 7), ("a message", 1)])
def test_sys_exit_codes_become_the_interpreters_exit_status(code, status, capsys):
    assert _exit_status(code) == status
    assert capsys.readouterr().err == ("a message\n" if isinstance(code, str) else "")


def test_a_module_edited_between_runs_is_the_edited_one_in_the_next_run(tmp_path, monkeypatch):
    """A test that edits a module the warm interpreter has imported (tests/test_identity.py edits the F1 code)
    gets the edited module in its next run, as a fresh process would: the warm interpreter starts again."""
    (tmp_path / "hook").mkdir()
    hook = tmp_path / "hook" / "sitecustomize.py"
    hook.write_text("print('hook version 1')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hook"))
    warm, cold = both_ways(monkeypatch, "train", ["--cfg", "job"], tmp_path)
    assert warm.stdout.splitlines()[0] == cold.stdout.splitlines()[0] == "hook version 1"
    hook.write_text("print('hook version 2, longer')\n")
    restarts = warm_cli().restarts_for_edits
    warm, cold = both_ways(monkeypatch, "train", ["--cfg", "job"], tmp_path)
    assert warm.stdout.splitlines()[0] == cold.stdout.splitlines()[0] == "hook version 2, longer"
    assert warm_cli().restarts_for_edits == restarts + 1


def test_a_folder_with_its_own_copy_of_a_module_runs_that_copy(tmp_path, monkeypatch):
    """`python -m relevance.train` from a folder holding a `relevance` package of its own runs that package
    (the working folder comes first on sys.path): the run is started as a plain subprocess, not forked."""
    package = tmp_path / "relevance"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("print('the copy in the working folder')\n")
    monkeypatch.delenv(COLD_ENV, raising=False)
    forked = warm_cli().runs
    result = run_cli("train", [], cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout) == (0, "the copy in the working folder\n"), result
    assert warm_cli().runs == forked, "the run was forked from the warm interpreter"
