"""`model.source: local`: a directory written by save_pretrained."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import DictConfig

from relevance.modeling.sources import ModelSource, ModelSourceError, ResolvedModel, register_source


@register_source("local")
class LocalSource(ModelSource):
    def resolve(self, model_cfg: DictConfig, cache_dir: Path) -> ResolvedModel:
        path = Path(model_cfg.id).expanduser()
        if not (path / "config.json").is_file():
            raise ModelSourceError(
                f"model.id={model_cfg.id!r}: no config.json there; model.source=local needs a directory "
                "written by save_pretrained")
        return ResolvedModel(str(path), None, f"local:{path.resolve()}")

    def digest(self, model_cfg: DictConfig, cache_dir: Path) -> str:
        path = Path(model_cfg.id).expanduser()
        files = sorted((p.name, p.stat().st_size) for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        config = (path / "config.json").read_bytes() if (path / "config.json").is_file() else b""
        listing = hashlib.sha256(config + repr(files).encode()).hexdigest()[:16]
        return f"local:{listing}"
