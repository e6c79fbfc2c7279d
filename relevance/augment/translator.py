"""Machine translation between competition languages, one interface over several backends,
cached per text so that a second run translates nothing and needs no model at all.

The backend is the `translator=` config group (conf/translator/<name>.yaml, schema
`relevance.config.TranslatorConfig`); every translating strategy (`translated`, `pivot`,
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
(``cache_hits``) and translated (``cache_misses``), and model loads.

Loading is offline-first: a local directory is used as is; a hub id is tried from the local
hub cache first, and only when the hub answers is it downloaded; ``gguf_package`` and
``tiny_random`` sources resolve as the backbone's do (`relevance.modeling.sources`). Without
network the run stops at once saying which setting to point at a local copy.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import socket
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from relevance.augment.cache import ContentCache, make_key
from relevance.augment.languages import FLORES, competition_code, language_fields, to_flores
from relevance.config import TranslatorConfig

log = logging.getLogger(__name__)


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
    `setting` (e.g. ``translator.model``) when the model cannot be had."""
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
    """What goes into cache keys for a model: a local directory by absolute path, a hub id at the commit its
    revision resolves to (`hub_commit`)."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return f"{path.resolve()}@{revision}" if revision else str(path.resolve())
    return f"{model_id}@{hub_commit(model_id, revision)}"


def hub_commit(model_id: str, revision: str | None) -> str:
    """The commit a hub id's `revision` (None: ``main``) names, read from the local hub cache without network:
    a commit hash as is; a branch or tag by the commit the cache recorded for it. A revision the cache has
    not seen stays as written (``main``): its first download then keys the next run by its commit, so a
    moved branch is never served from the old commit's translations."""
    revision = revision or "main"
    if len(revision) == 40 and all(c in string.hexdigits for c in revision):
        return revision.lower()
    from huggingface_hub import constants

    ref = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "refs" / revision
    try:
        return ref.read_text(encoding="utf-8").strip() or revision
    except OSError:
        return revision


@functools.cache
def package_version(package: str) -> str:
    """The installed version of the distribution that provides import package `package` (a GGUF weights
    package: a new release may ship other weights under the same file name)."""
    from importlib import metadata

    for name in [package, *metadata.packages_distributions().get(package, [])]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not-installed"


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
            fresh = self._generate(missing, src, tgt)
            known = self.cache.update_json(key, fresh) if self.cache else {**known, **fresh}
        self._memory[key] = known
        return [known[t] for t in texts]

    def _generate(self, texts: list[str], src: str, tgt: str) -> dict[str, str]:
        """Batches sorted by length, a progress bar, whitespace normalised."""
        from tqdm.auto import tqdm

        self.load()
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
        results: dict[str, str] = {}
        size = self.config.batch_size
        with tqdm(total=len(texts), desc=f"translating {src}→{tgt} ({self.config.name})", unit="text",
                  disable=not self.progress) as bar:
            for start in range(0, len(order), size):
                batch = [texts[i] for i in order[start:start + size]]
                outputs = self._translate_batch(batch, src, tgt)
                results.update({text: " ".join(out.split()) for text, out in zip(batch, outputs, strict=True)})
                bar.update(len(batch))
        return results

    def example_pairs(self, source: str, target: str) -> dict[str, str]:
        """The few-shot pairs a prompt shows for this language pair, target phrase → source phrase
        (none but for causal LMs): a translation equal to one is an echo (relevance/augment/checks.py)."""
        return {}

    # -- the model -------------------------------------------------------------------------
    def load(self):
        """(tokenizer, model), loaded on first use."""
        if self._model is None:
            import torch

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


class Seq2SeqTranslator(Translator):
    """NLLB / M2M100 (target token forced first) and MADLAD-400 (target token before the input)."""

    def output_settings(self, source: str, target: str) -> dict:
        cfg = self.config
        return {**super().output_settings(source, target), "source_language_token": cfg.source_language_token,
                "target_language_token": cfg.target_language_token, "target_language_as": cfg.target_language_as}

    def _load_model(self, name: str, dtype, kwargs: dict):
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(name, dtype=dtype, **kwargs)

    def language_token(self, which: str, code: str) -> str | None:
        template = getattr(self.config, f"{which}_language_token")
        return template.format(**language_fields(code)) if template else None

    def encode(self, texts: list[str], src: str, tgt: str):
        """``[language token] text </s>`` per text, padded: the source's token (NLLB, M2M100) or, with
        ``target_language_as: source_prefix``, the target's (MADLAD-400's ``<2de>``)."""
        tokenizer = self._tokenizer
        if tokenizer.pad_token_id is None:
            raise ValueError(f"the tokenizer of translation model {self.config.model!r} has no pad token")
        return tokenizer.pad({"input_ids": self.input_ids(texts, src, tgt)}, padding=True, return_tensors="pt")

    def input_ids(self, texts: list[str], src: str, tgt: str) -> list[list[int]]:
        tokenizer = self._tokenizer
        prefix_token = (self.language_token("target", tgt) if self.config.target_language_as == "source_prefix"
                        else self.language_token("source", src))
        prefix = [self._token_id(prefix_token)] if prefix_token else []
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        room = self.config.max_input_tokens - len(prefix) - len(eos)
        return [prefix + row[:room] + eos for row in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        import torch

        tokenizer, model = self._tokenizer, self._model
        kwargs = {"num_beams": self.config.num_beams, "max_new_tokens": self.config.max_new_tokens,
                  "do_sample": False}
        if self.config.target_language_as == "forced_bos":
            kwargs["forced_bos_token_id"] = self._token_id(self.language_token("target", tgt))
        inputs = self.encode(batch, src, tgt).to(self._device)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        self.last_generation = {"kwargs": kwargs, "input_ids": inputs["input_ids"].detach().cpu(),
                                "output_ids": output.detach().cpu(), "source": src, "target": tgt}
        return tokenizer.batch_decode(output, skip_special_tokens=True)


class CausalLMTranslator(Translator):
    """An instruction-tuned causal LM prompted to translate; see the module docstring."""

    def prompt_template(self, src: str, tgt: str) -> str:
        """The prompt for one language pair, few-shot examples filled in, ``{text}`` left open."""
        cfg = self.config
        source, target = language_fields(src), language_fields(tgt)
        template = self.pair_prompt(source["code"], target["code"]) or cfg.prompt
        pairs = zip(self.examples_of(source["code"]), self.examples_of(target["code"]))
        examples = "".join((cfg.example or "").format(source_name=source["name"], target_name=target["name"],
                                                      source_text=a, target_text=b) for a, b in pairs)
        return template.format(source_name=source["name"], target_name=target["name"], source=source["code"],
                               target=target["code"], examples=examples, text="{text}")

    def example_pairs(self, source: str, target: str) -> dict[str, str]:
        src, tgt = competition_code(source), competition_code(target)
        return dict(zip(self.examples_of(tgt), self.examples_of(src)))

    def examples_of(self, code: str) -> list[str]:
        """The few-shot phrases of a language, whichever spelling `translator.examples` keys it by (`vn`, `vi`)."""
        return next((list(phrases) for key, phrases in self.config.examples.items()
                     if competition_code(key) == code), [])

    def pair_prompt(self, src: str, tgt: str) -> str | None:
        """`translator.prompts`' own template for this pair (`fr-vi`, or `fr-vn`), if it has one."""
        return next((template for pair, template in self.config.prompts.items()
                     if [competition_code(part) for part in pair.split("-")] == [src, tgt]), None)

    def output_settings(self, source: str, target: str) -> dict:
        cfg = self.config
        return {**super().output_settings(source, target), "prompt": self.prompt_template(source, target),
                "chat_template": cfg.chat_template, "stop": cfg.stop, "max_length_ratio": cfg.max_length_ratio}

    def _load_model(self, name: str, dtype, kwargs: dict):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)

    def _prepare(self) -> None:
        super()._prepare()
        tokenizer = self._tokenizer
        tokenizer.padding_side = "left"  # generation continues every row from its last real token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = self.config.pad_token or tokenizer.eos_token

    def prompts(self, batch: list[str], src: str, tgt: str) -> tuple[list[str], bool]:
        """The batch's prompts as text, and whether they already hold the special tokens (chat template)."""
        template = self.prompt_template(src, tgt)
        # {text} is the only field left: str.replace keeps braces inside the text intact
        plain = [template.replace("{text}", text) for text in batch]
        tokenizer = self._tokenizer
        if not (self.config.chat_template and getattr(tokenizer, "chat_template", None)):
            return plain, False
        return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                              add_generation_prompt=True) for p in plain], True

    def token_budget(self, text_tokens: int) -> int:
        """New tokens a text of `text_tokens` tokens may get: `max_length_ratio` x its (capped) tokens + 4,
        at most `max_new_tokens`. The text's own length, never its batch's longest: which texts share a
        batch depends on what the cache already held."""
        cfg = self.config
        return max(1, min(cfg.max_new_tokens, math.ceil(cfg.max_length_ratio * min(cfg.max_input_tokens,
                                                                                    text_tokens)) + 4))

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        cfg, tokenizer = self.config, self._tokenizer
        text_ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
        batch = [text if len(ids) <= cfg.max_input_tokens else tokenizer.decode(ids[:cfg.max_input_tokens])
                 for text, ids in zip(batch, text_ids)]  # a text's own tokens are capped, not the prompt's
        budgets = [self.token_budget(len(ids)) for ids in text_ids]
        # Greedy decoding: a row's first k tokens do not depend on how many more are generated, so one call
        # at the batch's largest budget, each row then cut at its own, gives each text what it gets alone.
        # Beam search ranks hypotheses that the length limit shapes: one call per budget.
        groups = ([list(range(len(batch)))] if cfg.num_beams == 1 else
                  [[i for i, b in enumerate(budgets) if b == budget] for budget in sorted(set(budgets))])
        generated: list[list[int]] = [[] for _ in batch]
        for rows in groups:
            output = self._generate_ids([batch[i] for i in rows], max(budgets[i] for i in rows), src, tgt)
            for i, ids in zip(rows, output):
                generated[i] = ids[:budgets[i]]
        self.last_generation["budgets"] = budgets
        return [self.clean(text, tgt) for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]

    def _generate_ids(self, texts: list[str], new_tokens: int, src: str, tgt: str) -> list[list[int]]:
        """The generated token ids of each text's prompt (left-padded batch, greedy or beam search)."""
        import torch

        cfg, tokenizer, model = self.config, self._tokenizer, self._model
        prompts, templated = self.prompts(texts, src, tgt)
        inputs = tokenizer(prompts, add_special_tokens=not templated, padding=True,
                           return_tensors="pt").to(self._device)
        kwargs = {"num_beams": cfg.num_beams, "max_new_tokens": new_tokens, "do_sample": False,
                  "pad_token_id": tokenizer.pad_token_id}
        if cfg.stop:
            kwargs.update(stop_strings=[cfg.stop], tokenizer=tokenizer)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        generated = output[:, inputs["input_ids"].shape[1]:].detach().cpu()
        self.last_generation = {"kwargs": {k: v for k, v in kwargs.items() if k != "tokenizer"},
                                "prompts": prompts, "output_ids": generated, "source": src, "target": tgt}
        return generated.tolist()

    def clean(self, text: str, tgt: str) -> str:
        """The first line (up to `stop`), without a repeated ``<Target language>:`` label."""
        if self.config.stop:
            text = text.lstrip().split(self.config.stop)[0]
        label = language_fields(tgt)["name"] + ":"
        text = text.strip()
        return text[len(label):].strip() if text.startswith(label) else text


class CTranslate2Translator(Seq2SeqTranslator):
    """The same seq2seq model (NLLB, M2M100) run by CTranslate2: converted once from the transformers
    weights into ``<models_dir>/ct2-<key>`` (keyed by the model's identity and the two packages' versions),
    then decoded by CTranslate2's C++ runtime with the same tokens as `Seq2SeqTranslator`."""

    def _load_model(self, name: str, dtype, kwargs: dict):
        try:
            import ctranslate2
            from ctranslate2.converters import TransformersConverter
        except ImportError as error:
            raise ModelUnavailableError("translator.backend=ctranslate2 needs the ctranslate2 package "
                                        "(pip install ctranslate2), or use translator.backend=seq2seq") from error
        import transformers

        from relevance.modeling.sources import COMPLETE_MARKER, write_directory_atomically

        versions = f"{ctranslate2.__version__}|{transformers.__version__}"
        target = self._models_dir() / f"ct2-{make_key(self.weights_identity, kwargs.get('revision'), versions)[:16]}"
        if not (target / COMPLETE_MARKER).exists():
            log.info("converting %s to CTranslate2 once (cached at %s)", name, target)
            write_directory_atomically(target, lambda tmp: TransformersConverter(
                name, revision=kwargs.get("revision")).convert(str(tmp), force=True))
        device = resolve_device(self.config.device)
        return ctranslate2.Translator(str(target), device="cuda" if device.startswith("cuda") else "cpu",
                                      compute_type="default")

    def _prepare(self) -> None:
        pass  # no torch module to move

    def _translate_batch(self, batch: list[str], src: str, tgt: str) -> list[str]:
        tokenizer = self._tokenizer
        tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in self.input_ids(batch, src, tgt)]
        prefix = None
        if self.config.target_language_as == "forced_bos":
            prefix = [[self.language_token("target", tgt)]] * len(batch)
        results = self._model.translate_batch(tokens, target_prefix=prefix, beam_size=self.config.num_beams,
                                              max_decoding_length=self.config.max_new_tokens,
                                              max_batch_size=self.config.batch_size)
        hypotheses = [result.hypotheses[0][1:] if prefix else result.hypotheses[0] for result in results]
        self.last_generation = {"tokens": tokens, "hypotheses": hypotheses, "source": src, "target": tgt}
        return [tokenizer.decode(tokenizer.convert_tokens_to_ids(h), skip_special_tokens=True) for h in hypotheses]


TINY_SEQ2SEQ = ("m2m100", "t5")  # tiny random seq2seq translators (relevance/augment/tiny_translators.py)
BACKENDS: dict[str, type[Translator]] = {"seq2seq": Seq2SeqTranslator, "causal_lm": CausalLMTranslator,
                                         "ctranslate2": CTranslate2Translator}


def make_translator(config: TranslatorConfig | DictConfig | dict | None, *, cache_dir=None, models_dir=None,
                    setting: str = "translator.model", progress: bool = True) -> Translator:
    """The translator `config` asks for (its ``backend``), caching under ``<cache_dir>/translations``."""
    config = translator_config(config)
    if config.backend not in BACKENDS:
        raise ValueError(f"translator.backend={config.backend!r}: use one of {tuple(BACKENDS)}")
    return BACKENDS[config.backend](config, cache_dir=cache_dir, models_dir=models_dir, setting=setting,
                                    progress=progress)
