"""Writing files so that a crash or a parallel writer never leaves a partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Temp files of `path` left by a writer that was killed (SIGKILL, power loss): their name
    carries the writer's pid, and a temp file whose writer is gone is removed."""
    removed = []
    for candidate in path.parent.glob(f"{_temp_prefix(path)}*.tmp"):
        pid = candidate.name[len(_temp_prefix(path)):].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _default_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give: the existing file's, or 0666 less the umask."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **open_kwargs) -> Iterator:
    """Write to a temp file beside `path`, then rename it over `path` in one step (atomic
    on POSIX): readers see the old file or the new one, never half of one; on an error
    the old file stays as it was. The result has the mode a plain write would give, and
    temp files of earlier writers that were killed are cleaned up first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, _default_mode(path))
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
