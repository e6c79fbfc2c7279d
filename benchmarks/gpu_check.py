"""QLoRA on a GPU through the project's own code, against a naive Hugging Face loop.

    .venv/bin/python benchmarks/gpu_check.py          # CUDA: a random ~1B-parameter Gemma-3, nf4 + bf16 compute
    .venv/bin/python benchmarks/gpu_check.py --tiny   # any machine, seconds: a tiny Gemma-3 (tests run this)

The model is a randomly initialised Gemma-3 text model built from a config (no download):
Gemma-3 1B's layer shapes (hidden 1152, MLP 6912, 4 query heads of 256, 1 KV head,
sliding window 512 on 5 layers of 6) with 38 layers, so that its ~1B weights are all
multiplied per token (the tiny BPE tokenizer's ~1k vocabulary stands in for Gemma's 262k).
It is saved once (`relevance.modeling.tiny.build_tiny_model`, cached by content) and
loaded like any local model (`model.source=local`): nf4 + LoRA, SDPA, token-budget
batches, trained by `RelevanceTrainer` with gradient checkpointing off and on, then the
dev rows scored by `score_rows`. The naive loop is the same model and Trainer with eager
attention and every row padded to `model.max_length`. Every run does one batch per
optimizer step of the same padded-token size (16 rows x max_length for the naive loop, a
budget of that many tokens for the project). Prints tokens/s, rows/s and peak GPU memory
per run; exits 1 if a run's losses or scores are not finite or LoRA did not move.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from speed_harness import REPO, compose_train_config, measure_run

GEMMA3_1B_LIKE = dict(architecture="gemma3_text", vocab_size=1024, hidden_size=1152, intermediate_size=6912,
                      num_hidden_layers=38, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                      sliding_window=512, max_position_embeddings=2048, seed=0)
GEMMA3_TINY = dict(architecture="gemma3_text", vocab_size=1024, hidden_size=64, intermediate_size=128,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=8,
                   layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256, seed=0)

RUNS = {  # name: (overrides, pad every row to max_length)
    "project, grad ckpt off": (["trainer.gradient_checkpointing=false"], False),
    "project, grad ckpt on": (["trainer.gradient_checkpointing=true"], False),
    "naive HF loop (eager, pad to max)": (["trainer.gradient_checkpointing=false", "model.attn_implementation=eager",
                                           "trainer.batching=rows", "trainer.group_by_length=false"], True),
}


def base_overrides(model_dir: str, cache_dir: str, tiny: bool) -> list[str]:
    """trainer=gpu, with one batch per optimizer step of the same padded tokens in every run:
    16 rows x max_length for the naive loop, that many tokens of budget for the project."""
    max_length = 64 if tiny else 256
    return ["model=tiny_random", "model.name=random_gemma3", "model.source=local", f"model.id={model_dir}",
            f"model.max_length={max_length}", "model.attn_implementation=sdpa", "quant=nf4",
            "trainer=gpu", "trainer.save_checkpoints=false", "trainer.grad_accum=1", "trainer.batch_size=16",
            f"trainer.max_tokens_per_batch={16 * max_length}", "trainer.eval_batch_size=32",
            f"trainer.eval_max_tokens_per_batch={32 * max_length}", "data=demo", f"paths.cache_dir={cache_dir}",
            f"paths.root={REPO}"]


def one_run(name: str, overrides: list[str], pad_to_max_length: bool, args) -> dict:
    cfg = compose_train_config([*args.base_overrides, *overrides])
    result = {"run": name, **measure_run(cfg, args.warmup_steps, args.steps, Path(args.work_dir),
                                         pad_to_max_length, max_dev_rows=args.score_rows)}
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def table(results: list[dict]) -> str:
    naive = results[-1]["training"]["tokens_per_s"]
    lines = ["| run | train tok/s | train rows/s | x naive | score rows/s | peak GPU MiB | peak RSS MiB | healthy |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        t, s = r["training"], r["scoring"]
        gpu = f"{r['gpu_peak_mib']:.0f}" if "gpu_peak_mib" in r else "-"
        lines.append(f"| {r['run']} | {t['tokens_per_s']:.0f} | {t['rows_per_s']:.1f} "
                     f"| {t['tokens_per_s'] / naive:.2f} | {s['rows_per_s']:.1f} | {gpu} | {r['peak_rss_mib']:.0f} "
                     f"| {'yes' if r['healthy'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    from relevance.modeling.tiny import build_tiny_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny Gemma-3 (CPU-friendly, seconds)")
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per run")
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--score-rows", type=int, default=240, help="dev rows scored (the demo has 240)")
    parser.add_argument("--cache-dir", default=str(REPO / ".cache"))
    args = parser.parse_args()
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --tiny, or on a GPU machine")
    spec = GEMMA3_TINY if args.tiny else GEMMA3_1B_LIKE
    model_dir = build_tiny_model(OmegaConf.create(spec), Path(args.cache_dir) / "models").path
    args.base_overrides = base_overrides(model_dir, args.cache_dir, args.tiny)
    args.work_dir = str(Path(args.cache_dir) / "gpu_check")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    results = [one_run(name, overrides, pad, args) for name, (overrides, pad) in RUNS.items()]
    print(f"{device}: random Gemma-3, {results[0]['matmul_weights'] / 1e6:.1f}M matmul weights, nf4, "
          f"compute {results[0]['compute_dtype']} ({results[0]['compute_dtype_reason']})")
    print(table(results))
    sys.exit(0 if all(r["healthy"] for r in results) else 1)


if __name__ == "__main__":
    main()
