"""Tiny randomly initialised seq2seq translators, built in seconds, for tests, benchmarks and
smoke runs (`translator=tiny_seq2seq`): the real loading, encoding, generation and cache paths
without downloaded weights. Their translations are random token strings.

* ``m2m100`` — NLLB's architecture with a real ``NllbTokenizer`` (or, ``generic_tokenizer``, a
  plain fast tokenizer without ``src_lang``), every FLORES code of the language map a token;
* ``t5`` — MADLAD-400's architecture, with a ``<2xx>`` token per language (ISO code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import transformers

from relevance.augment.languages import FLORES, iso_code

TINY_CORPUS = [
    "running shoes", "zapatillas para correr", "chaussures de course", "laufschuhe", "scarpe da corsa",
    "yoga mat", "esterilla de yoga", "tapis de yoga", "yogamatte", "tappetino yoga",
    "phone case", "funda de móvil", "coque de téléphone", "handyhülle", "cover cellulare",
    "black dress for women", "vestido negro", "robe noire femme", "schwarzes kleid", "vestito nero",
    "power bank", "batería externa", "batterie externe", "coffee maker", "cafetera", "cafetière",
]


def _bpe(specials: list[str], extra: list[str] | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.train_from_iterator(TINY_CORPUS * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=specials))
    if extra:
        bpe.add_special_tokens(extra)
    return bpe


def _save_random(model_class, config, tokenizer, directory: Path, seed: int) -> Path:
    """`model_class(config)` with weights drawn from `seed`, saved with `tokenizer` in `directory`."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def write_tiny_m2m100(directory: Path, *, generic_tokenizer: bool = False, seed: int = 0) -> Path:
    """A random M2M100 (NLLB's architecture) + a BPE tokenizer trained on TINY_CORPUS."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer, PreTrainedTokenizerFast

    lang_codes = sorted(set(FLORES.values()))
    if generic_tokenizer:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe(["<s>", "<pad>", "</s>", "<unk>"], lang_codes),
                                            bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    else:
        spec = json.loads(_bpe(["<s>", "<pad>", "</s>", "<unk>"]).to_str())["model"]
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in spec["merges"]]
        tokenizer = NllbTokenizer(vocab=spec["vocab"], merges=merges, extra_special_tokens=lang_codes,
                                  src_lang="eng_Latn")
    config = M2M100Config(vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, decoder_start_token_id=2, scale_embedding=True)
    return _save_random(M2M100ForConditionalGeneration, config, tokenizer, directory, seed)


def write_tiny_t5(directory: Path, *, seed: int = 0) -> Path:
    """A random T5 (MADLAD-400's architecture) whose tokenizer knows ``<2de>``, ``<2vi>``... (pad 0, eos 1)."""
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    lang_tokens = sorted({f"<2{iso_code(code)}>" for code in FLORES})
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe(["<pad>", "</s>", "<unk>"], lang_tokens),
                                        eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    config = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return _save_random(T5ForConditionalGeneration, config, tokenizer, directory, seed)


def build_tiny_seq2seq(tiny_cfg, models_dir: Path) -> Path:
    """The tiny translator `tiny_cfg.architecture` (m2m100 | t5) asks for, built once per content."""
    from relevance.modeling.sources import COMPLETE_MARKER, write_directory_atomically

    spec = dataclasses.asdict(tiny_cfg) if dataclasses.is_dataclass(tiny_cfg) else dict(tiny_cfg)
    writers = {"m2m100": lambda out: write_tiny_m2m100(out, seed=spec["seed"]),
               "t5": lambda out: write_tiny_t5(out, seed=spec["seed"])}
    if spec["architecture"] not in writers:
        raise ValueError(f"translator.tiny.architecture={spec['architecture']!r}: a tiny seq2seq translator is "
                         f"one of {sorted(writers)}")
    key_text = json.dumps([spec["architecture"], spec["seed"], TINY_CORPUS, transformers.__version__])
    target = Path(models_dir) / f"tiny_{spec['architecture']}-{hashlib.sha256(key_text.encode()).hexdigest()[:16]}"
    if not (target / COMPLETE_MARKER).exists():
        write_directory_atomically(target, writers[spec["architecture"]])
    return target
