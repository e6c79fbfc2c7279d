"""`model.source: hub`: a hub id at a revision; from_pretrained fetches it (offline: from the local hub cache)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from relevance.modeling.sources import ModelSource, ResolvedModel, register_source


@register_source("hub")
class HubSource(ModelSource):
    def resolve(self, model_cfg: DictConfig, cache_dir: Path) -> ResolvedModel:
        revision = model_cfg.revision or "main"
        return ResolvedModel(model_cfg.id, revision, f"hub:{model_cfg.id}@{revision}")
