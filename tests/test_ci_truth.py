"""CI that tells the truth (tests/requirements.py): a test that cannot run because a program, a Python
package or a data folder is missing skips on a developer's machine, saying what to install, and FAILS
under CI=true, naming what is missing; pytest, with the project's options, lists every skip's reason.
And no test bounds how long the code under test may take."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

NEEDS_WHAT_IS_MISSING = '''
from pathlib import Path

from tests.requirements import require_module, require_path, require_program


def test_a_program():
    require_program("no-such-program-for-relevance", "apt-get install -y no-such-package")


def test_a_plugin():
    require_module("no_such_plugin_for_relevance", "pip install no-such-plugin")


def test_the_real_rows():
    require_path(Path("/nonexistent/shared/data/qc"), "the real QC rows")


def test_what_is_there_runs():
    assert require_program("sh", "apt-get install -y dash").endswith("/sh")
'''

NEEDS_IT_AT_IMPORT = '''
from tests.requirements import require_module

require_module("no_such_plugin_for_relevance", "pip install no-such-plugin")


def test_anything():
    pass
'''


def run_pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    """pytest with the project's own options (pyproject.toml: -rfEs ...) on the files in `folder`."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = str(REPO)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir",
                           str(folder), "-p", "no:xdist", str(folder)], cwd=folder, env=env, capture_output=True,
                          text=True)


def test_a_missing_requirement_skips_with_its_reason_on_a_developers_machine(tmp_path):
    (tmp_path / "test_needs.py").write_text(NEEDS_WHAT_IS_MISSING)
    (tmp_path / "test_at_import.py").write_text(NEEDS_IT_AT_IMPORT)
    result = run_pytest(tmp_path, ci=None)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "1 passed, 4 skipped" in out, out
    # the short summary (-rs through pyproject's addopts) names each missing thing and how to get it
    assert "SKIPPED" in out and "program 'no-such-program-for-relevance' is missing: apt-get install -y " \
                                "no-such-package" in out, out
    assert "Python package 'no_such_plugin_for_relevance'" in out and "pip install no-such-plugin" in out, out
    assert "the real QC rows (/nonexistent/shared/data/qc) is missing" in out, out
    assert "CI=true" not in out
    assert run_pytest(tmp_path, ci="false").returncode == 0


def test_under_ci_a_missing_requirement_fails_naming_it(tmp_path):
    (tmp_path / "test_needs.py").write_text(NEEDS_WHAT_IS_MISSING)
    result = run_pytest(tmp_path, ci="true")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "3 failed, 1 passed" in out and "skipped" not in out, out
    assert "CI=true and program 'no-such-program-for-relevance' is missing: apt-get install -y no-such-package" in out
    assert "CI=true and Python package 'no_such_plugin_for_relevance'" in out, out
    assert "CI=true and the real QC rows (/nonexistent/shared/data/qc) is missing" in out, out


def test_under_ci_a_module_that_needs_a_missing_plugin_fails_at_collection(tmp_path):
    (tmp_path / "test_at_import.py").write_text(NEEDS_IT_AT_IMPORT)
    result = run_pytest(tmp_path, ci="true")
    assert result.returncode != 0 and "skipped" not in result.stdout, result.stdout
    assert "CI=true and Python package 'no_such_plugin_for_relevance'" in result.stdout, result.stdout


# A test asserts behaviour; how long the code may take belongs to a benchmark or to CI's own limit. Bounds
# are left only where a helper waits for a server it started to come up, or stops one (tests/servers.py),
# or where the call's lines say why with a `# bound: <reason>` comment (e.g. `# bound: server start-up`).
TIMEOUTS_ALLOWED = {
    ("servers.py", "stop_group"),  # SIGTERM, wait, then SIGKILL: stopping a server, never a verdict
    ("servers.py", "tracking_server"),  # the MLflow server's health polling at start-up
    ("servers.py", "ray_head"),  # stop_group(timeout=5) on the Ray head
    ("servers.py", "run"),  # SlurmCluster.run: sinfo polled while slurmd starts (a timeout there: not ready yet)
}


def test_no_test_puts_a_time_limit_on_the_code_it_runs():
    found = []
    for path in sorted((REPO / "tests").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for function in [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
                if not any(k.arg == "timeout" for k in call.keywords) or (path.name, function.name) in TIMEOUTS_ALLOWED:
                    continue
                if not any("# bound:" in line for line in lines[call.lineno - 1:call.end_lineno]):
                    found.append(f"{path.name}:{call.lineno} ({function.name})")
    assert not found, (f"timeout= in tests: {sorted(set(found))}; remove it, or say why it is a start-up poll "
                       "or a stop with `# bound: <reason>` on the call's lines")
