"""Checks of a translator config (`translator.*`, or any node with its schema under another
`prefix`): backend and model source, language-token and prompt templates, the output checks.
`translator_problems` yields one message per problem, naming the key; `relevance.config.validation`
collects them for the run's translator.
"""

from __future__ import annotations

from omegaconf import DictConfig

from relevance.augment.translator import backend_names, template_problem
from relevance.modeling.sources import source_names


def translator_problems(translator: DictConfig, prefix: str = "translator"):
    """What cannot work in a translator config, each naming its key."""
    if translator.backend not in backend_names():
        yield f"{prefix}.backend={translator.backend!r}: use one of {backend_names()}"
    if translator.source not in source_names():
        yield f"{prefix}.source={translator.source!r}: use one of {source_names()}"
    if translator.source == "tiny_random" and translator.tiny is None:
        yield f"{prefix}.source=tiny_random needs {prefix}.tiny (the tiny model's architecture and dimensions)"
    if translator.source == "gguf_package" and not translator.gguf_file:
        yield f"{prefix}.source=gguf_package needs {prefix}.gguf_file (the GGUF file name inside the package)"
    for key in ("batch_size", "num_beams", "max_new_tokens", "max_input_tokens"):
        if translator[key] < 1:
            yield f"{prefix}.{key}={translator[key]}: must be at least 1"
    if translator.backend in ("seq2seq", "ctranslate2"):
        if not translator.target_language_token:
            yield (f"{prefix}.backend={translator.backend} needs {prefix}.target_language_token, e.g. '{{flores}}' "
                   "(NLLB) or '<2{iso}>' (MADLAD-400)")
        if translator.target_language_as not in ("forced_bos", "source_prefix"):
            yield f"{prefix}.target_language_as={translator.target_language_as!r}: use forced_bos or source_prefix"
        for key in ("source_language_token", "target_language_token"):
            problem = template_problem(translator[key], "language")
            if problem:
                yield f"{prefix}.{key}={translator[key]!r}: {problem}"
    if translator.backend == "causal_lm":
        if not translator.prompt:
            yield f"{prefix}.backend=causal_lm needs {prefix}.prompt (a template with {{text}} and {{target_name}})"
        for key, template in [("prompt", translator.prompt), ("example", translator.example),
                              *((f"prompts.{pair}", text) for pair, text in translator.prompts.items())]:
            problem = template_problem(template, "prompt" if key != "example" else "example")
            if problem:
                yield f"{prefix}.{key}: {problem}"
        for pair in translator.prompts:
            problem = template_problem(pair, "pair")
            if problem:
                yield f"{prefix}.prompts has key {pair!r}: {problem}"
        lengths = {len(phrases) for phrases in translator.examples.values()}
        if len(lengths) > 1:
            yield f"{prefix}.examples: every language needs the same number of phrases (parallel), got {sorted(lengths)}"
        if not translator.max_length_ratio > 0:
            yield f"{prefix}.max_length_ratio={translator.max_length_ratio}: must be positive"
    checks = translator.checks
    if not 0 <= checks.min_length_ratio < checks.max_length_ratio:
        yield (f"{prefix}.checks.min_length_ratio={checks.min_length_ratio}, max_length_ratio="
               f"{checks.max_length_ratio}: need 0 <= min < max")
    if checks.language_top_k < 1:
        yield f"{prefix}.checks.language_top_k={checks.language_top_k}: must be at least 1"
    if checks.sample_size < 0:
        yield f"{prefix}.checks.sample_size={checks.sample_size}: must be 0 or more"
