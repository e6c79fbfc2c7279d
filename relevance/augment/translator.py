"""Machine translation with NLLB (or any NLLB-style seq2seq model) through transformers,
cached per text so that a second run translates nothing and needs no model at all.

* Model: ``AutoTokenizer`` + ``AutoModelForSeq2SeqLM`` from a hub id (default
  ``facebook/nllb-200-distilled-600M``, optional revision) or a local directory.
  Loaded lazily, on the first text missing from the cache; CPU in fp32, GPU in bf16.
* Languages: competition codes (``de``, ``vn``...) mapped to FLORES-200 codes
  (`relevance.augment.languages`). The source language is set through the tokenizer's
  ``src_lang`` when it supports it (NllbTokenizer); otherwise the language token is
  prepended to the input ids. The target language is forced as the first generated
  token: ``forced_bos_token_id = tokenizer.convert_tokens_to_ids(flores_code)``.
* Decoding: batches of `batch_size` texts sorted by length (less padding), greedy
  (``num_beams=1``) or beam search, at most `max_new_tokens` new tokens.
* Cache: one JSON dict text → translation per (model id + revision, source, target,
  decoding settings: num_beams, max_new_tokens) in ``<cache_dir>/translations``
  (`ContentCache.update_json`, safe for parallel runs); batch size is not part of the key.
  `counters` counts distinct texts found (``cache_hits``) and translated
  (``cache_misses``), and model loads.
* Offline-first loading: a local directory is used as is; a hub id is tried from the
  local hub cache first, and only when the hub answers is it downloaded. Without network
  the run stops at once with a message saying which setting to point at a local copy
  (instead of retrying for a minute).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from relevance.augment.cache import ContentCache, make_key
from relevance.augment.languages import to_flores

log = logging.getLogger(__name__)

DEFAULT_MODEL = "facebook/nllb-200-distilled-600M"


@dataclass
class TranslatorOptions:
    """The translation options of the strategies that translate (`translated`, `pivot`)."""

    model: str = DEFAULT_MODEL  # hub id or local directory of an NLLB-style seq2seq model
    revision: str | None = None  # hub revision; null: the default branch
    batch_size: int = 16  # texts per generate() call
    num_beams: int = 1  # 1: greedy; >1: beam search
    max_new_tokens: int = 64  # cap on the length of a translation, in tokens
    device: str = "auto"  # auto: cuda (bf16) when available, else cpu (fp32)

    def make_translator(self, cache_dir: str, setting: str) -> Translator:
        return Translator(model=self.model, revision=self.revision, batch_size=self.batch_size,
                          num_beams=self.num_beams, max_new_tokens=self.max_new_tokens, device=self.device,
                          cache_dir=cache_dir, setting=setting)


class ModelUnavailableError(RuntimeError):
    """A model named in an augmentation setting cannot be loaded here."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False when offline mode is on)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def _looks_like_path(model_id: str) -> bool:
    """A hub id is `name` or `org/name`; anything else is meant as a directory."""
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or "\\" in model_id


def load_pretrained(load: Callable[[str, dict], Any], model_id: str, revision: str | None, *, what: str,
                    setting: str) -> Any:
    """`load(name_or_path, kwargs)` offline-first; a clear `ModelUnavailableError` naming
    `setting` (e.g. ``augment.translated.model``) when the model cannot be had."""
    advice = (f"Download it where the hub is reachable (e.g. `huggingface-cli download {model_id}` or "
              f"save_pretrained) and pass {setting}=/path/to/local/dir")
    path = Path(model_id).expanduser()
    if path.is_dir():
        try:
            return load(str(path), {})
        except Exception as exc:
            raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded from that directory: {exc}. "
                                        f"Pass {setting}= a directory written by save_pretrained") from exc
    if _looks_like_path(model_id):
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded: no such directory. {advice}")
    try:  # already in the local hub cache?
        return load(model_id, {"revision": revision, "local_files_only": True})
    except Exception as exc:
        cached_error = exc
    if not hub_reachable():
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded (no network access to the hub?). "
                                    f"{advice}") from cached_error
    try:
        return load(model_id, {"revision": revision})
    except Exception as exc:
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded from the hub ({exc}). {advice}") from exc


def resolve_device(device: str = "auto") -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def model_identity(model_id: str, revision: str | None) -> str:
    """What goes into cache keys for a model: a local directory by absolute path, a hub id with its revision."""
    path = Path(model_id).expanduser()
    name = str(path.resolve()) if path.is_dir() else model_id
    return f"{name}@{revision}" if revision else name


class Translator:
    """Translate texts between competition languages; see the module docstring."""

    def __init__(self, model: str = DEFAULT_MODEL, revision: str | None = None, batch_size: int = 16,
                 num_beams: int = 1, max_new_tokens: int = 64, device: str = "auto",
                 cache_dir: str | os.PathLike | None = None, setting: str = "augment.translated.model",
                 max_input_tokens: int = 128, progress: bool = True):
        if batch_size < 1 or num_beams < 1 or max_new_tokens < 1:
            raise ValueError("batch_size, num_beams and max_new_tokens must be positive")
        self.model_id = str(model)
        self.revision = revision
        self.batch_size = int(batch_size)
        self.num_beams = int(num_beams)
        self.max_new_tokens = int(max_new_tokens)
        self.max_input_tokens = int(max_input_tokens)
        self.device_setting = device
        self.setting = setting
        self.progress = progress
        self.cache = ContentCache(Path(cache_dir) / "translations") if cache_dir else None
        self.counters: dict[str, int] = {"cache_hits": 0, "cache_misses": 0, "model_loads": 0}
        self.last_generation: dict | None = None  # kwargs and output ids of the last generate() call
        self._memory: dict[str, dict[str, str]] = {}
        self._tokenizer = None
        self._model = None
        self._device = None

    @property
    def identity(self) -> str:
        return model_identity(self.model_id, self.revision)

    def cache_key(self, source: str, target: str) -> str:
        """One JSON dict per (model, languages, decoding): beam search or a longer cap gives other texts."""
        decoding = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                    "max_input_tokens": self.max_input_tokens}
        return make_key("translations", self.identity, to_flores(source), to_flores(target), decoding)

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translations of `texts` (competition or FLORES codes), in input order."""
        texts = [str(t) for t in texts]
        src, tgt = to_flores(source), to_flores(target)
        if src == tgt or not texts:
            return list(texts)
        key = self.cache_key(src, tgt)
        known = self._memory.get(key)
        if known is None:
            known = (self.cache.get(key, "json") if self.cache else None) or {}
        distinct = sorted(set(texts))
        missing = [t for t in distinct if t not in known]
        self.counters["cache_hits"] += len(distinct) - len(missing)
        self.counters["cache_misses"] += len(missing)
        if missing:
            fresh = self._generate(missing, src, tgt)
            known = self.cache.update_json(key, fresh) if self.cache else {**known, **fresh}
        self._memory[key] = known
        return [known[t] for t in texts]

    # -- the model -------------------------------------------------------------------------
    def load(self):
        """(tokenizer, model), loaded on first use."""
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            self._device = resolve_device(self.device_setting)
            dtype = torch.bfloat16 if self._device.startswith("cuda") else torch.float32
            tokenizer = load_pretrained(lambda name, kw: AutoTokenizer.from_pretrained(name, **kw), self.model_id,
                                        self.revision, what="translation model", setting=self.setting)
            model = load_pretrained(lambda name, kw: AutoModelForSeq2SeqLM.from_pretrained(name, dtype=dtype, **kw),
                                    self.model_id, self.revision, what="translation model", setting=self.setting)
            self._tokenizer, self._model = tokenizer, model.to(self._device).eval()
            self.counters["model_loads"] += 1
            log.info("translation model %s loaded on %s (%s)", self.identity, self._device, dtype)
        return self._tokenizer, self._model

    def _language_id(self, tokenizer, flores: str) -> int:
        token_id = tokenizer.convert_tokens_to_ids(flores)
        if token_id is None or (tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id):
            raise ValueError(f"the tokenizer of translation model {self.model_id!r} has no language token {flores!r}")
        return int(token_id)

    def _encode(self, tokenizer, texts: list[str], src: str):
        """Input ids carrying the source language: through `src_lang` when the tokenizer
        supports it, else by prepending the language token."""
        lang_id = self._language_id(tokenizer, src)
        if isinstance(getattr(type(tokenizer), "src_lang", None), property):
            tokenizer.src_lang = src
        ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.max_input_tokens)["input_ids"]
        ids = [row if lang_id in row else [lang_id] + row[: self.max_input_tokens - 1] for row in ids]
        if tokenizer.pad_token_id is None:
            raise ValueError(f"the tokenizer of translation model {self.model_id!r} has no pad token")
        return tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")

    def _generate(self, texts: list[str], src: str, tgt: str) -> dict[str, str]:
        import torch
        from tqdm.auto import tqdm

        tokenizer, model = self.load()
        forced_bos = self._language_id(tokenizer, tgt)
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
        results: dict[str, str] = {}
        with tqdm(total=len(texts), desc=f"translating {src}→{tgt}", unit="text", disable=not self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                batch = [texts[i] for i in order[start:start + self.batch_size]]
                inputs = self._encode(tokenizer, batch, src).to(self._device)
                kwargs = {"forced_bos_token_id": forced_bos, "num_beams": self.num_beams,
                          "max_new_tokens": self.max_new_tokens, "do_sample": False}
                with torch.inference_mode():
                    output = model.generate(**inputs, **kwargs)
                self.last_generation = {"kwargs": kwargs, "output_ids": output.detach().cpu(), "source": src,
                                        "target": tgt}
                decoded = tokenizer.batch_decode(output, skip_special_tokens=True)
                results.update({text: " ".join(out.split()) for text, out in zip(batch, decoded)})
                bar.update(len(batch))
        return results
