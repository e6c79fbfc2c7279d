"""A tiny randomly initialised causal LM and a byte-level BPE tokenizer, built in
seconds, so tests and smoke runs exercise the real loading, quantization, LoRA,
training and saving paths without any downloaded weights. Any architecture
transformers builds from a config: text-only (llama, qwen2, gemma3_text) or
composite (gemma3: a text sub-config beside a vision one, `text_config`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers
from omegaconf import DictConfig, OmegaConf

from relevance.data.demo import TARGET_KINDS, generate_demo_rows
from relevance.modeling.sources import COMPLETE_MARKER, ResolvedModel, write_directory_atomically

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
# Repeated so that BPE learns these as single tokens: the yes/no head needs " yes" and " no".
PROMPT_WORDS = ("Search query: Product category: Product title: Does the category match the query? "
                "Is this product relevant to the query? Query in English: Answer (yes or no): yes no ")


def tokenizer_corpus() -> list[str]:
    lines = [PROMPT_WORDS] * 400
    for kind in TARGET_KINDS:
        task = SimpleNamespace(name="demo", target_field="target", demo_targets=kind)
        for split in ("train", "dev"):
            for row in generate_demo_rows(task, split, seed=0, n_rows=400):
                lines.append(f"{row['origin_query']} {row['target']}")
    return lines


# Spec fields with an empty default: left out of the key when empty, so the models built before they existed
# keep their key (and the runs on them their identity).
OPTIONAL_SPEC = {"config_fields": {}, "text_config": None, "composite_fields": {}}


def tiny_model_key(spec: dict, corpus: list[str]) -> str:
    """What a tiny model is built from: its spec, its tokenizer's corpus and the versions of what builds it
    (transformers: the config and the layers; tokenizers: the BPE training; torch: the random initialisation)."""
    import tokenizers

    spec = {k: v for k, v in spec.items() if not (k in OPTIONAL_SPEC and v == OPTIONAL_SPEC[k])}
    versions = f"|tokenizers={tokenizers.__version__}|torch={torch.__version__.split('+')[0]}"
    key_text = json.dumps(spec, sort_keys=True) + "\n".join(corpus) + transformers.__version__ + versions
    return hashlib.sha256(key_text.encode()).hexdigest()[:16]


def tiny_model_digest(tiny_cfg: DictConfig) -> str:
    """The digest `build_tiny_model` gives the model, without building it (a run's identity needs it
    before anything loads)."""
    return f"tiny:{tiny_model_key(OmegaConf.to_container(tiny_cfg, resolve=True), tokenizer_corpus())}"


def build_tiny_model(tiny_cfg: DictConfig, models_dir: Path) -> ResolvedModel:
    spec = OmegaConf.to_container(tiny_cfg, resolve=True)
    corpus = tokenizer_corpus()
    key = tiny_model_key(spec, corpus)
    target = models_dir / f"tiny_random-{key}"
    if not (target / COMPLETE_MARKER).exists():
        write_directory_atomically(target, lambda tmp: _write_tiny_model(spec, corpus, tmp))
    return ResolvedModel(str(target), None, f"tiny:{key}")


def _write_tiny_model(spec: dict, corpus: list[str], out_dir: Path) -> None:
    tokenizer = train_tokenizer(corpus, spec["vocab_size"])
    dims = {k: v for k, v in spec.items() if k not in ("architecture", "seed", *OPTIONAL_SPEC)}
    dims.update(spec.get("config_fields") or {})
    dims["vocab_size"] = len(tokenizer)
    special = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                   eos_token_id=tokenizer.eos_token_id)
    if spec.get("text_config"):
        # A composite model: the sizes build its text sub-config. The special ids go to the top level and the
        # sub-config's pad id stays unset, as a hub config need not state it there: the loader must put the
        # tokenizer's pad id where the classifier head reads it (tests/test_paper_shapes.py).
        fields = {spec["text_config"]: {**dims, "pad_token_id": None}, **special,
                  **(spec.get("composite_fields") or {})}
    else:
        fields = {**dims, **special}
    config = transformers.AutoConfig.for_model(spec["architecture"], **fields, tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):  # the run's own RNG stream stays untouched
        torch.manual_seed(spec["seed"])
        model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def train_tokenizer(corpus: list[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
