"""What a test needs from the machine, one rule for all: a program, a Python package (a Hydra
plugin, a driver), a file or folder (the real QC rows), root.

On a developer's machine a test whose requirement is missing is skipped, saying what to install.
Under CI (`CI=true`, as CI services set it and `.ci/run` expects) it fails instead, naming what is
missing: a green CI then means that every server, plugin and real-data test ran. A GPU is not such
a requirement: CI has none, as expected, so a GPU-only test keeps a plain `skipif` that says so
(the suite has none today; `benchmarks/gpu_check.py` is the GPU check).
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

SBIN = ("/usr/sbin", "/sbin")


def in_ci() -> bool:
    """`CI=true` (or 1/yes): what GitHub Actions, GitLab CI and most others set."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, install: str) -> NoReturn:
    """Skip (a developer's machine) or fail (CI) the current test, or module when called at import."""
    message = f"{what} is missing: {install}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_program(program: str, install: str) -> str:
    """The program's full path, found on PATH (and in /usr/sbin, /sbin, where Debian puts daemons)."""
    found = shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if not found:
        missing(f"program {program!r}", install)
    return found


def require_module(name: str, install: str) -> ModuleType:
    """The imported module (a plugin such as `hydra_plugins.hydra_ray_launcher`, a driver such as `psycopg`)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"Python package {name!r} ({error})", install)


def require_path(path: Path, what: str, install: str = "") -> Path:
    """An existing file or folder, e.g. the real QC rows in ../shared/data/qc."""
    if not Path(path).exists():
        missing(f"{what} ({path})", install or "put it there")
    return Path(path)


def require_root(why: str) -> None:
    """Root, for daemons that need it (slurmd runs jobs as their user)."""
    if os.geteuid() != 0:
        missing(f"root ({why})", "run the tests as root, as .ci/run does in its container")

