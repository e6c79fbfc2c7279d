"""`model.source: tiny_random`: a tiny randomly initialised model built from its spec (relevance/modeling/tiny.py)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from relevance.modeling.sources import ModelSource, ResolvedModel, register_source
from relevance.modeling.tiny import build_tiny_model, tiny_model_digest


@register_source("tiny_random")
class TinyRandomSource(ModelSource):
    def resolve(self, model_cfg: DictConfig, cache_dir: Path) -> ResolvedModel:
        return build_tiny_model(model_cfg.tiny, cache_dir / "models")

    def digest(self, model_cfg: DictConfig, cache_dir: Path) -> str:
        return tiny_model_digest(model_cfg.tiny)
