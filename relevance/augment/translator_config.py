"""The `translator` group's schema (conf/translator/<name>.yaml) and the checks every translation must
pass. It lives beside the translators (`translator.py`, `checks.py`); `relevance.config` composes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from relevance.modeling.model_config import TinyModelConfig


@dataclass
class TranslationChecksConfig:
    """What a machine translation must pass to be used (relevance/augment/checks.py)."""

    language: bool = True  # langid (restricted to the 13 competition languages) must name the target language
    language_top_k: int = 1  # ... among its top k guesses (short queries are hard to identify)
    min_length_ratio: float = 0.25  # characters of the translation / characters of the source, at least
    max_length_ratio: float = 4.0  # ... and at most
    reject_copies: bool = True  # a translation equal to its source (case and spaces aside) is no translation
    sample_size: int = 20  # accepted and rejected pairs kept per language for the run's artifact


@dataclass
class TranslatorConfig:
    """`translator=<name>` (conf/translator/<name>.yaml): the machine translator every translating strategy
    uses (`translated`, `pivot`, `to_english`). The defaults are NLLB-600M's, the translator of older runs."""

    name: str = "nllb_600m"
    backend: str = "seq2seq"  # seq2seq | causal_lm | ctranslate2 (one module each in relevance/augment/translators/)
    source: str = "hub"  # hub | local | gguf_package | tiny_random, as model.source
    model: str = "facebook/nllb-200-distilled-600M"  # hub id, local directory, or the package shipping a GGUF
    revision: Optional[str] = None
    gguf_file: Optional[str] = None  # source=gguf_package: the file inside the package
    tiny: Optional[TinyModelConfig] = None  # source=tiny_random: architecture m2m100 | t5 | llama ...
    # seq2seq: how the model is told the languages; templates over {flores} {iso} {name} {code}
    source_language_token: Optional[str] = "{flores}"  # set as src_lang / prepended to the input; null: none
    target_language_token: Optional[str] = "{flores}"  # NLLB {flores}, M2M100 __{iso}__, MADLAD-400 <2{iso}>
    target_language_as: str = "forced_bos"  # forced_bos: first generated token | source_prefix: before the input
    # causal_lm: a few-shot prompt per language pair, greedy, cut at `stop`
    prompt: Optional[str] = None  # {source_name} {target_name} {source} {target} {examples} {text}
    example: Optional[str] = None  # one few-shot pair: {source_name} {target_name} {source_text} {target_text}
    prompts: dict[str, str] = field(default_factory=dict)  # per pair, e.g. {"fr-de": "..."}: replaces `prompt`
    examples: dict[str, list[str]] = field(default_factory=dict)  # parallel phrases per language (same order)
    chat_template: bool = True  # wrap the prompt in the tokenizer's chat template, when it has one
    stop: str = "\n"  # the translation ends where this string first appears (a newline: one line)
    max_length_ratio: float = 3.0  # new tokens <= ratio x source tokens + 4 (and <= max_new_tokens)
    pad_token: Optional[str] = None  # used when the tokenizer has none (else its eos)
    # decoding, all backends
    batch_size: int = 16  # texts per generate() call, sorted by length
    num_beams: int = 1  # 1: greedy
    max_new_tokens: int = 64
    max_input_tokens: int = 128
    device: str = "auto"  # auto: cuda (bf16) when available, else cpu (fp32)
    checks: TranslationChecksConfig = field(default_factory=TranslationChecksConfig)
