"""`head=yes_no`: the two answer logits computed from the last hidden state (the head today) against the LM's
own `logits_to_keep=1` forward (the head before 2026-12-03, `YesNoHead.lm_pair_logits`), on the same left-padded
batch of real QC rows encoded as a run encodes them (the task's prompt, the answer suffix), through the LoRA
adapter, forward and backward, in the compute dtype the run would use.

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

from relevance.modeling.inputs import PromptIds
from relevance.modeling.loader import load_for_training

SHARED_QC = REPO.parent / "shared" / "data" / "qc"
DEMO_ROWS = [{"query": "running shoes", "target": "Sports > Shoes"}, {"query": "a red phone case", "target": "Phones"}]


def rows(count: int) -> list[dict]:
    """The first `count` real QC rows (query, target), or two demo rows repeated where ../shared is absent."""
    path = SHARED_QC / "train.jsonl"
    if not path.exists():
        return [DEMO_ROWS[i % 2] for i in range(count)]
    lines = path.read_text(encoding="utf-8").splitlines()[:count]
    return [{"query": r["origin_query"], "target": r["category_path"]} for r in map(json.loads, lines)]


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
    ids = PromptIds(loaded.tokenizer, cfg.task, cfg.head, cfg.model.max_length)(rows(args.rows))  # as a run encodes
    batch = loaded.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(loaded.model.device)
    dtype = loaded.compute_dtype
    with torch.autocast(loaded.model.device.type, dtype=dtype, enabled=dtype != torch.float32):
        head_s, head_logits = time_step(lambda: loaded.head.pair_logits(loaded.model, batch), args.repeats)
        lm_s, lm_logits = time_step(lambda: loaded.head.lm_pair_logits(loaded.model, batch), args.repeats)
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
