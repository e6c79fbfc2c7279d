"""A content-keyed disk cache for augmentation results (translations, embeddings, tables).

Keys are SHA-256 digests of *what the value depends on*: a digest of the input rows,
the strategy's settings and the model id/revision (`make_key`). Same inputs → same key
→ the stored value, from any run, process or sweep job; change any input and the key
changes, so stale values are never read and nothing has to be invalidated by hand.

Layout: ``<root>/<key[:2]>/<key>.<ext>`` with ``.json`` (dicts, lists),
``.npy`` (numpy arrays: embeddings) or ``.parquet`` (``datasets.Dataset`` tables).

Safety with parallel writers (e.g. a Hydra sweep running jobs side by side):

* every value is written to a temporary file in the same folder, flushed, fsync'ed and
  renamed over the final name with ``os.replace`` (atomic on POSIX and Windows), so a
  reader sees either no file or a complete one, never a partial write;
* `get_or_compute` holds a per-key `filelock.FileLock` (in ``<root>/.locks``) around
  "check again, compute, write", so two processes asking for the same missing key
  compute it once: the second waits, then reads the first one's file;
* `update_json` merges new entries into a JSON dict under the same lock (re-reading
  the file inside the lock), so concurrent translators of different texts do not drop
  each other's entries.

A file that fails to parse (e.g. damaged by hand) is treated as a miss and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from filelock import FileLock

from relevance.data.columns import column_values
from relevance.files import atomic_open

log = logging.getLogger(__name__)

SUFFIXES = {"json": ".json", "npy": ".npy", "table": ".parquet"}
LOCK_DIR = ".locks"
_MISSING = object()


def make_key(*parts: Any) -> str:
    """SHA-256 hex digest of `parts` (strings, numbers, lists, dicts; dicts in key order
    independent form). Use it as ``make_key("hard_neg", input_digest, settings, model_id)``."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_seed(*parts: Any) -> int:
    """A 64-bit random seed from `parts`, the same in every process (unlike hash(), which
    Python salts per process): e.g. ``stable_seed(seed, "easy_neg", language, query)``."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def digest_texts(texts: Iterable[str]) -> str:
    """Stable digest of a sequence of strings (order matters)."""
    h = hashlib.sha256()
    for text in texts:
        encoded = str(text).encode("utf-8")
        h.update(len(encoded).to_bytes(8, "big"))
        h.update(encoded)
    return h.hexdigest()


def digest_table(dataset: Dataset, columns: Iterable[str] | None = None) -> str:
    """Stable content digest of a table's rows (column names, order and values), the same
    in every process and session (unlike Python's salted hash() or a datasets fingerprint,
    which depends on how the table was built)."""
    names = sorted(columns if columns is not None else dataset.column_names)
    h = hashlib.sha256()
    h.update(str(len(dataset)).encode())
    for name, values in zip(names, column_values(dataset, *names)):
        h.update(b"\x00col\x00" + name.encode("utf-8") + b"\x00")
        h.update(json.dumps(values, ensure_ascii=False, default=str).encode("utf-8"))
    return h.hexdigest()


def _kind_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "npy"
    if isinstance(value, Dataset):
        return "table"
    return "json"


class ContentCache:
    """Values by content key under `root` (one folder per use, e.g. ``<cache_dir>/embeddings``).

    `hits` / `misses` count `get_or_compute` outcomes, for a strategy's counters.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    # -- paths and locks -------------------------------------------------------------------
    def path(self, key: str, kind: str = "json") -> Path:
        if kind not in SUFFIXES:
            raise ValueError(f"unknown cache value kind {kind!r}: use one of {sorted(SUFFIXES)}")
        if not key or any(c in key for c in "/\\") or key.startswith("."):
            raise ValueError(f"bad cache key {key!r}: use make_key(...)")
        return self.root / key[:2] / f"{key}{SUFFIXES[kind]}"

    def lock(self, key: str) -> FileLock:
        """The inter-process lock of one key (the lock file is kept: deleting lock files
        while others wait on them is racy)."""
        lock_dir = self.root / LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(lock_dir / f"{key}.lock", preserve_lock_file=True)

    # -- read / write ----------------------------------------------------------------------
    def get(self, key: str, kind: str | None = None, default: Any = None) -> Any:
        """The stored value, or `default` when there is none. `kind` None probes every kind."""
        for candidate in ([kind] if kind else list(SUFFIXES)):
            path = self.path(key, candidate)
            if not path.exists():
                continue
            try:
                return self._read(path, candidate)
            except FileNotFoundError:
                continue
            except Exception as exc:  # a damaged file: recompute rather than fail the run
                log.warning("cache file %s is unreadable (%s): treating it as missing", path, exc)
        return default

    def contains(self, key: str, kind: str | None = None) -> bool:
        return self.get(key, kind, _MISSING) is not _MISSING

    def put(self, key: str, value: Any, kind: str | None = None) -> Path:
        """Store `value` atomically (temp file in the same folder + os.replace)."""
        kind = kind or _kind_of(value)
        path = self.path(key, kind)
        with atomic_open(path, "wb") as fh:
            self._write(fh, value, kind)
        return path

    def get_or_compute(self, key: str, compute: Callable[[], Any], kind: str | None = None) -> tuple[Any, bool]:
        """(value, hit). On a miss, `compute()` runs under the key's lock and its result is
        stored; a process that waited on the lock then finds the value and does not compute."""
        value = self.get(key, kind, _MISSING)
        if value is _MISSING:
            with self.lock(key):
                value = self.get(key, kind, _MISSING)
                if value is _MISSING:
                    value = compute()
                    self.put(key, value, kind)
                    self.misses += 1
                    return value, False
        self.hits += 1
        return value, True

    def update_json(self, key: str, entries: dict) -> dict:
        """Merge `entries` into the JSON dict stored under `key` (created if missing), under
        the key's lock; returns the merged dict."""
        with self.lock(key):
            current = self.get(key, "json", None) or {}
            if not isinstance(current, dict):
                raise TypeError(f"cache entry {key} holds a {type(current).__name__}, not a dict")
            if entries:
                current.update(entries)
                self.put(key, current, "json")
            return current

    # -- formats ---------------------------------------------------------------------------
    @staticmethod
    def _write(fh, value: Any, kind: str) -> None:
        if kind == "json":
            fh.write(json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        elif kind == "npy":
            np.save(fh, np.asarray(value), allow_pickle=False)
        else:
            import pyarrow.parquet as pq

            if not isinstance(value, Dataset):
                raise TypeError(f"a table cache value must be a datasets.Dataset, got {type(value).__name__}")
            pq.write_table(value.with_format("arrow")[:], fh)

    @staticmethod
    def _read(path: Path, kind: str) -> Any:
        if kind == "json":
            return json.loads(path.read_text(encoding="utf-8"))
        if kind == "npy":
            return np.load(path, allow_pickle=False)
        import pyarrow.parquet as pq

        return Dataset(pq.read_table(path, memory_map=False))
