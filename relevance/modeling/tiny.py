"""A tiny randomly initialised causal LM and a byte-level BPE tokenizer, built in
seconds, so tests and smoke runs exercise the real loading, quantization, LoRA,
training and saving paths without any downloaded weights."""

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


def build_tiny_model(tiny_cfg: DictConfig, models_dir: Path) -> ResolvedModel:
    spec = OmegaConf.to_container(tiny_cfg, resolve=True)
    corpus = tokenizer_corpus()
    key_text = json.dumps(spec, sort_keys=True) + "\n".join(corpus) + transformers.__version__
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    target = models_dir / f"tiny_random-{key}"
    if not (target / COMPLETE_MARKER).exists():
        write_directory_atomically(target, lambda tmp: _write_tiny_model(spec, corpus, tmp))
    return ResolvedModel(str(target), None, f"tiny:{key}")


def _write_tiny_model(spec: dict, corpus: list[str], out_dir: Path) -> None:
    tokenizer = train_tokenizer(corpus, spec["vocab_size"])
    dims = {k: v for k, v in spec.items() if k not in ("architecture", "seed")}
    dims["vocab_size"] = len(tokenizer)
    config = transformers.AutoConfig.for_model(
        spec["architecture"], **dims,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
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
