"""`head=yes_no`: the two answer logits computed from the last hidden state (the head today) against the LM's
own `logits_to_keep=1` forward (the head before 2026-12-03), on the same left-padded batch of real QC prompts,
through the LoRA adapter, forward and backward, in the compute dtype the run would use.

    .venv/bin/python benchmarks/bench_yes_no_head.py                       # Gemma-3 270M, 48 rows
    .venv/bin/python benchmarks/bench_yes_no_head.py --model tiny_random   # a quick look

The LM's forward runs its vocabulary-wide output layer on a strided slice of the hidden states
(`hidden[:, -1:, :]`), which PyTorch's CPU bf16 matmul runs about a thousand times slower than on a contiguous
tensor. Prints seconds per step of each path, their ratio and the largest difference of the two paths'
logits; writes benchmarks/results/yes_no_head-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from speed_harness import REPO, compose_train_config

from relevance.modeling.loader import load_for_training

SHARED_QC = REPO.parent / "shared" / "data" / "qc"
DEMO_PROMPTS = ["Search query: running shoes\nProduct category: Sports > Shoes", "Search query: a red phone case"]


def prompts(rows: int) -> list[str]:
    path = SHARED_QC / "train.jsonl"
    if not path.exists():
        return [DEMO_PROMPTS[i % 2] for i in range(rows)]
    lines = path.read_text(encoding="utf-8").splitlines()[:rows]
    return [f"Search query: {r['origin_query']}\nProduct category: {r['category_path']}\nDoes the category match "
            "the query?\nAnswer (yes or no):" for r in map(json.loads, lines)]


def lm_path(head, model, batch):
    """The head before 2026-12-03: the LM's own forward, logits at the last position only."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
    return out.logits[:, -1, :][:, [head.negative_id, head.positive_id]]


def time_step(pair_logits, repeats: int) -> tuple[float, torch.Tensor]:
    times, logits = [], None
    for _ in range(repeats + 1):  # the first is warm-up
        start = time.perf_counter()
        logits = pair_logits()
        logits.float().sum().backward()
        times.append(time.perf_counter() - start)
    return min(times[1:]), logits.detach().float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma3_270m")
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", default=str(REPO / ".cache"))
    parser.add_argument("--results-dir", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()

    cfg = compose_train_config([f"model={args.model}", "head=yes_no", "quant=none", f"paths.cache_dir={args.cache_dir}",
                                "paths.root=/tmp"])
    loaded = load_for_training(cfg)
    batch = loaded.tokenizer(prompts(args.rows), padding=True, return_tensors="pt").to(loaded.model.device)
    dtype = loaded.compute_dtype
    with torch.autocast(loaded.model.device.type, dtype=dtype, enabled=dtype != torch.float32):
        head_s, head_logits = time_step(lambda: loaded.head.pair_logits(loaded.model, batch), args.repeats)
        lm_s, lm_logits = time_step(lambda: lm_path(loaded.head, loaded.model, batch), args.repeats)
    result = {"model": args.model, "rows": args.rows, "tokens_per_row": batch["input_ids"].shape[1],
              "compute_dtype": str(dtype), "threads": torch.get_num_threads(),
              "head_seconds_per_step": head_s, "lm_logits_to_keep_seconds_per_step": lm_s,
              "speedup": lm_s / head_s, "max_abs_logit_difference": float((head_logits - lm_logits).abs().max())}
    print(f"| path | s/step (forward + backward, {args.rows} rows, {dtype}) |\n|---|---:|\n"
          f"| LM forward, logits_to_keep=1 (before) | {lm_s:.3f} |\n| yes_no head: two output rows | {head_s:.3f} |")
    print(f"speed-up {result['speedup']:.1f}x; largest logit difference {result['max_abs_logit_difference']:.2e}")
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"yes_no_head-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
