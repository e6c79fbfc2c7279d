"""Writing files so that a crash or a parallel writer never leaves a partial one."""

from __future__ import annotations

import errno
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


def _umask_from_proc() -> int | None:
    """The process's umask as Linux reports it (`Umask:` in /proc/self/status), read without changing it;
    None where there is no such line."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting_it() -> int:
    """The umask read the only portable way, by setting it and setting it back: done once, at import,
    before the threads that create files (the heartbeat's, the store's) exist."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK_AT_IMPORT = _umask_from_proc()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting_it()


def current_umask() -> int:
    """The umask now, never changed to read it: the umask is process-wide, and setting it even for an
    instant lets a file another thread creates then come out with the wrong mode."""
    umask = _umask_from_proc()
    return _UMASK_AT_IMPORT if umask is None else umask


def _default_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give: the existing file's, or 0666 less the umask."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    return 0o666 & ~current_umask()


class DiskFullError(OSError):
    """No space left where a file was being written: names the file, so the user knows which disk to free
    (the cache, the output folder). Still an OSError with errno ENOSPC, for handlers that test it."""

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full(path: Path, cause: OSError) -> DiskFullError:
    """`cause` (errno ENOSPC) as a DiskFullError whose message names `path` and what to do."""
    other = f" ({cause.filename})" if cause.filename and str(cause.filename) != str(path) else ""
    return DiskFullError(errno.ENOSPC, f"no space left on the device while writing {path}{other}: "
                                       "free space on that disk, or write elsewhere", str(path))


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **open_kwargs) -> Iterator:
    """Write to a temp file beside `path`, then rename it over `path` in one step (atomic
    on POSIX): readers see the old file or the new one, never half of one; on an error
    the old file stays as it was. The result has the mode a plain write would give, and
    temp files of earlier writers that were killed are cleaned up first. A full disk raises
    DiskFullError naming `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp")
    except OSError as error:
        _raise_if_disk_full(error, path)
        raise
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        os.fchmod(fd, _default_mode(path))
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        _raise_if_disk_full(error, path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _raise_if_disk_full(error: OSError, path: Path) -> None:
    """A full disk becomes DiskFullError naming `path`; any other OSError is left to its raiser."""
    if error.errno == errno.ENOSPC and not isinstance(error, DiskFullError):
        raise disk_full(path, error) from error


# -- a full disk, wherever the error came from ---------------------------------------------------

DISK_FULL_WORDS = ("no space left on device", "storagefull", "database or disk is full")


def disk_full_in(exc: BaseException | None) -> BaseException | None:
    """The link of `exc`'s chain (its causes and contexts) that says a disk is full: an OSError with
    errno ENOSPC, or an error of a library that says it in words only (safetensors: "IoError(Os { code:
    28, kind: StorageFull, message: "No space left on device" })", SQLite: "database or disk is full");
    None when no link does."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        if any(words in str(exc).lower() for words in DISK_FULL_WORDS):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the disk that holds `path` (or would: its nearest existing parent); None if unknown."""
    import shutil

    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def human_bytes(count: int | None) -> str:
    if count is None:
        return "? bytes"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def full_disk_error(exc: BaseException, folders: dict[str, str | os.PathLike[str]], doing: str) -> DiskFullError:
    """`exc` (a full disk: `disk_full_in`) as a DiskFullError naming the disk that filled: of `folders`
    (what each is → its path: "the run's output folder" → …) and the files the error names, the one with
    the least space left, with how much is left and what to do."""
    cause = disk_full_in(exc) or exc
    folders = {label: Path(path) for label, path in folders.items() if path}
    named = [Path(str(name)) for name in (getattr(cause, "filename2", None), getattr(cause, "filename", None)) if name]
    ordered = [(next((label for label, folder in folders.items() if _is_within(file, folder)), "the file"), file)
               for file in named] + list(folders.items())  # on a tie, what the error names wins
    spaces = [free_bytes(path) for _, path in ordered]
    known = [index for index, space in enumerate(spaces) if space is not None]
    index = min(known, key=lambda i: spaces[i]) if known else 0
    label, path = ordered[index] if ordered else ("a disk", Path("?"))
    return DiskFullError(errno.ENOSPC, f"no space left on the device while {doing}: {label} ({path}) has "
                                       f"{human_bytes(spaces[index] if ordered else None)} free. Free space on "
                                       f"that disk, or point it elsewhere, and run again (the error: "
                                       f"{type(cause).__name__}: {str(cause)[:300]})", str(path))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.absolute().relative_to(folder.absolute())
        return True
    except ValueError:
        return False
