"""Machine translation between competition languages, one interface over several backends,
cached per text so that a second run translates nothing and needs no model at all.

The backend is the `translator=` config group (conf/translator/<name>.yaml, schema
`relevance.augment.translator_config.TranslatorConfig`); every translating strategy (`translated`, `pivot`,
`to_english`) gets its translator from `make_translator`:

* ``seq2seq`` — NLLB, M2M100, MADLAD-400 (T5) through ``AutoModelForSeq2SeqLM``. The input is
  ``[source_language_token] text </s>``; the target language is either forced as the first
  generated token (``target_language_as: forced_bos``: NLLB ``{flores}``, M2M100 ``__{iso}__``)
  or put before the input (``source_prefix``: MADLAD-400's ``<2{iso}>``). No model name is
  branched on: the YAML says which tokens.
* ``causal_lm`` — any instruction-tuned causal LM, with a few-shot prompt per language pair
  (``prompt``/``prompts`` + ``example`` over the parallel ``examples`` phrases), wrapped in the
  tokenizer's chat template when it has one; batched (left padding), greedy, stopped at
  ``stop`` (a newline), at most ``max_length_ratio`` × the source's tokens (+4) new tokens.
* ``ctranslate2`` — see `CTranslate2Translator` (only where the package is installed).

Each backend is one module in `relevance/augment/translators/` registering its class with
`@register_backend("<name>")`, plus the YAMLs in conf/translator/ that name it: a new backend edits
nothing else.

Shared by all: the language-code map (`relevance.augment.languages.language_fields`),
batches of `batch_size` texts sorted by length (less padding), a progress bar per language
pair, and the content-keyed cache: one JSON dict text → translation per (backend, the
translator's identity, languages, decoding mode and everything that shapes the output: language
tokens, the rendered prompt) in ``<cache_dir>/translations`` (`ContentCache.update_json`, safe
for parallel runs). The identity is the weights (a hub id at the commit its revision resolves to,
a directory by path, a GGUF package at its installed version, a tiny model by its spec) and the
numerics (device type and dtype: bf16 on CUDA, fp32 on CPU). A text's translation depends on
that text and that identity only, never on the other texts of its batch (which depend on what the
cache already held): batch size is not part of the key, and a causal LM's token budget is each
text's own (`CausalLMTranslator.token_budget`). `counters` counts distinct texts found
(``cache_hits``) and translated (``cache_misses``), and model loads. A long translation (the
competition's 300k queries into each missing language take a GPU most of an hour) is saved to the
cache every `CHECKPOINT_SECONDS` as it goes, so a run stopped or failed part-way keeps what it had
translated and its rerun translates only the rest.

Loading is offline-first: a local directory is used as is; a hub id is tried from the local
hub cache first, and only when the hub answers is it downloaded; ``gguf_package`` and
``tiny_random`` sources resolve as the backbone's do (`relevance.modeling.sources`). Without
network the run stops at once saying which setting to point at a local copy.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import string
import time
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from relevance.augment.cache import ContentCache, make_key
from relevance.augment.languages import FLORES, competition_code, to_flores
from relevance.augment.translator_config import TranslatorConfig
from relevance.modeling.pretrained import load_pretrained, model_identity, package_version, resolve_device
from relevance.plugins import Registry

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 60.0  # translations generated so far are merged into the cache at least this often

TINY_SEQ2SEQ = ("m2m100", "t5")  # tiny random seq2seq translators (relevance/augment/tiny_translators.py)


def translator_config(settings: TranslatorConfig | DictConfig | dict | None = None) -> TranslatorConfig:
    """`settings` (a composed `translator` node, a dict, or None for the NLLB default) as a TranslatorConfig."""
    if isinstance(settings, TranslatorConfig):
        return settings
    values = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else settings
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TranslatorConfig), values or {}))


TEMPLATE_FIELDS = {
    "language": {"code", "iso", "flores", "name"},
    "prompt": {"source_name", "target_name", "source", "target", "examples", "text"},
    "example": {"source_name", "target_name", "source_text", "target_text"},
}


def template_problem(template: str | None, kind: str) -> str | None:
    """What is wrong with a translator template (None: nothing). `kind`: language, prompt, example,
    or pair (a `prompts` key such as ``fr-de``)."""
    if template is None:
        return None
    if kind == "pair":
        parts = str(template).split("-")
        try:
            if len(parts) != 2:
                raise ValueError
            [competition_code(p) for p in parts]
        except ValueError:
            return f"write a language pair as <source>-<target> with competition codes ({', '.join(sorted(FLORES))})"
        return None
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        return f"not a valid template ({error})"
    unknown = sorted(used - TEMPLATE_FIELDS[kind])
    if unknown:
        return f"unknown field {{{unknown[0]}}}: a {kind} template may use {sorted(TEMPLATE_FIELDS[kind])}"
    if kind == "prompt" and "text" not in used:
        return "the prompt has no {text}: it must show the text to translate"
    return None


class Translator:
    """Translate texts between competition languages; see the module docstring. Subclasses load a
    model (`_load`) and translate one batch (`_translate_batch`); this class does the rest."""

    def __init__(self, config: TranslatorConfig | DictConfig | dict | None = None, *,
                 cache_dir: str | os.PathLike | None = None, models_dir: str | os.PathLike | None = None,
                 setting: str = "translator.model", progress: bool = True):
        self.config = translator_config(config)
        cfg = self.config
        if cfg.batch_size < 1 or cfg.num_beams < 1 or cfg.max_new_tokens < 1 or cfg.max_input_tokens < 1:
            raise ValueError("batch_size, num_beams, max_new_tokens and max_input_tokens must be positive")
        self.setting = setting
        self.progress = progress
        self.cache = ContentCache(Path(cache_dir) / "translations") if cache_dir else None
        self.models_dir = Path(models_dir) if models_dir else (Path(cache_dir).parent / "models" if cache_dir
                                                                  else None)
        self.counters: dict[str, int] = {"cache_hits": 0, "cache_misses": 0, "model_loads": 0}
        self.last_generation: dict | None = None  # kwargs and output ids of the last generate() call
        self._memory: dict[str, dict[str, str]] = {}
        self._tokenizer = None
        self._model = None
        self._device = None

    @property
    def weights_identity(self) -> str:
        """Which weights: a hub id at its commit, a directory, a GGUF package at its version, a tiny spec."""
        cfg = self.config
        if cfg.source == "tiny_random":
            return f"tiny:{make_key(dataclasses.asdict(cfg.tiny))[:16]}"
        if cfg.source == "gguf_package":
            return f"gguf:{cfg.model}=={package_version(cfg.model)}/{cfg.gguf_file}"
        return model_identity(cfg.model, cfg.revision)

    @property
    def identity(self) -> str:
        """The weights and the numerics they run in (device type, dtype): what a translation is a function of,
        with the text and the decoding settings."""
        device, dtype = self.runtime()
        return f"{self.weights_identity}|{device.split(':')[0]}|{str(dtype).removeprefix('torch.')}"

    def runtime(self):
        """(device, dtype) the model runs in: bf16 on CUDA, fp32 on CPU."""
        import torch

        device = resolve_device(self.config.device)
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32

    def output_settings(self, source: str, target: str) -> dict:
        """Everything besides the model and the languages that changes a translation."""
        return {"num_beams": self.config.num_beams, "max_new_tokens": self.config.max_new_tokens,
                "max_input_tokens": self.config.max_input_tokens}

    def cache_key(self, source: str, target: str) -> str:
        """One JSON dict per (backend, model, languages, decoding mode, tokens or prompt)."""
        src, tgt = competition_code(source), competition_code(target)
        return make_key("translations", self.config.backend, self.identity, to_flores(src), to_flores(tgt),
                        self.output_settings(src, tgt))

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translations of `texts` (competition or FLORES codes), in input order."""
        texts = [str(t) for t in texts]
        src, tgt = competition_code(source), competition_code(target)
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
            save = (lambda done: self.cache.update_json(key, done)) if self.cache else None
            fresh = self._generate(missing, src, tgt, save)
            known = self.cache.update_json(key, fresh) if self.cache else {**known, **fresh}
        self._memory[key] = known
        return [known[t] for t in texts]

    def _generate(self, texts: list[str], src: str, tgt: str, save=None) -> dict[str, str]:
        """Batches sorted by length, a progress bar, whitespace normalised; `save(results so far)` every
        `CHECKPOINT_SECONDS` (the cache merge), so that a failure part-way loses at most that much work."""
        from tqdm.auto import tqdm

        self.load()
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
        results: dict[str, str] = {}
        size = self.config.batch_size
        saved_at = time.monotonic()
        with tqdm(total=len(texts), desc=f"translating {src}→{tgt} ({self.config.name})", unit="text",
                  disable=not self.progress) as bar:
            for start in range(0, len(order), size):
                batch = [texts[i] for i in order[start:start + size]]
                outputs = self._translate_batch(batch, src, tgt)
                results.update({text: " ".join(out.split()) for text, out in zip(batch, outputs, strict=True)})
                bar.update(len(batch))
                if save is not None and time.monotonic() - saved_at >= CHECKPOINT_SECONDS and len(results) < len(texts):
                    save(results)
                    saved_at = time.monotonic()
        return results

    def example_pairs(self, source: str, target: str) -> dict[str, str]:
        """The few-shot pairs a prompt shows for this language pair, target phrase → source phrase
        (none but for causal LMs): a translation equal to one is an echo (relevance/augment/checks.py)."""
        return {}

    # -- the model -------------------------------------------------------------------------
    def load(self):
        """(tokenizer, model), loaded on first use."""
        if self._model is None:
            self._device, dtype = self.runtime()
            name, revision = self._weights()
            tokenizer = load_pretrained(lambda n, kw: self._load_tokenizer(n, kw), name, revision,
                                        what="translation model", setting=self.setting)
            model = load_pretrained(lambda n, kw: self._load_model(n, dtype, kw), name, revision,
                                    what="translation model", setting=self.setting)
            self._tokenizer, self._model = tokenizer, model
            self._prepare()
            self.counters["model_loads"] += 1
            log.info("translation model %s (%s) loaded on %s (%s)", self.identity, self.config.backend,
                     self._device, dtype)
        return self._tokenizer, self._model

    def _weights(self) -> tuple[str, str | None]:
        """What from_pretrained takes: a hub id or a directory (GGUF packages and tiny models resolved)."""
        cfg = self.config
        if cfg.source == "tiny_random" and cfg.tiny is not None and cfg.tiny.architecture in TINY_SEQ2SEQ:
            from relevance.augment.tiny_translators import build_tiny_seq2seq
            from relevance.modeling.sources import rng_untouched

            with rng_untouched():  # built on a cache miss only: the run's random streams must not see it
                return str(build_tiny_seq2seq(cfg.tiny, self._models_dir())), None
        if cfg.source in ("gguf_package", "tiny_random"):
            from relevance.modeling.sources import resolve_model

            node = OmegaConf.create({"name": cfg.name,  # gemma3_270m: the conversion model=gemma3_270m made
                                     "source": cfg.source, "id": cfg.model,
                                     "revision": cfg.revision, "gguf_file": cfg.gguf_file,
                                     "tiny": dataclasses.asdict(cfg.tiny) if cfg.tiny else None})
            # resolve_model takes the cache root and keeps models in its models/ (as model=... does)
            return resolve_model(node, self._models_dir().parent).path, None
        return cfg.model, cfg.revision

    def _models_dir(self) -> Path:
        if self.models_dir is None:
            raise ValueError(f"translator.source={self.config.source} needs a models folder (cache_dir)")
        return self.models_dir

    def _load_tokenizer(self, name: str, kwargs: dict):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name, **kwargs)

    def _load_model(self, name: str, dtype, kwargs: dict):
        raise NotImplementedError

    def _prepare(self) -> None:
        self._model = self._model.to(self._device).eval()

    def _token_id(self, token: str) -> int:
        tokenizer = self._tokenizer
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or (tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id):
            raise ValueError(f"the tokenizer of translation model {self.config.model!r} has no token {token!r} "
                             "(translator.source_language_token / target_language_token)")
        return int(token_id)

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        raise NotImplementedError


BACKENDS = Registry("translator backend", "relevance.augment.translators")
register_backend = BACKENDS.register  # `translator.backend=<name>` builds the Translator subclass it decorates
backend_names = BACKENDS.names


def make_translator(config: TranslatorConfig | DictConfig | dict | None, *, cache_dir=None, models_dir=None,
                    setting: str = "translator.model", progress: bool = True) -> Translator:
    """The translator `config` asks for (its ``backend``), caching under ``<cache_dir>/translations``."""
    config = translator_config(config)
    return BACKENDS.get(config.backend, "translator.backend")(config, cache_dir=cache_dir, models_dir=models_dir, setting=setting,
                                    progress=progress)
