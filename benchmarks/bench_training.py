"""Training and scoring speed of the new defaults against the naive and today's paths,
measured on the same rows and model in one run.

    .venv/bin/python benchmarks/bench_training.py                      # Gemma-3 270M, real QC rows
    .venv/bin/python benchmarks/bench_training.py --model tiny_random --steps 2   # a quick look

Variants (each in its own process, so memory peaks are separate and nothing is shared):
  naive         Hugging Face Trainer, every row padded to model.max_length, fp32 compute, eager, nf4
  today         dynamic padding, length-grouped rows, fp32 compute, eager, nf4 (the path before issue 8)
  new           the new defaults: bf16 compute where the hardware has it, SDPA, token-budget batches, nf4
  bf16_weights  the new defaults without quantization (a frozen base stored in the compute dtype)
  compiled      the new defaults + compiled decoder layers in training (scoring eager, as every run scores)
  long_run      the path a long CPU run takes by default (experiment=cpu_recipe): bf16 weights, compiled
                decoder layers (trainer.torch_compile=auto compiles runs of >= compile_min_steps steps)

For each: training rows/s and tokens/s over `--steps` optimizer steps after `--warmup-steps`, and
over every step (warm-up and compiling included), scoring rows/s on the dev rows, peak resident
memory, the ratio to naive, and the achieved
FLOP/s (6 x matmul weights x tokens for training, 2 x for scoring; real tokens, not padding)
as a share of this machine's bf16 matmul peak, measured in the same run. Prints a Markdown
table; writes everything to benchmarks/results/training-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speed_harness import REPO, compose_train_config, matmul_peak, measure_run

SHARED_QC = REPO.parent / "shared" / "data" / "qc"
MATMUL_SHAPE = (526, 640, 2048)


@dataclass
class Variant:
    label: str
    overrides: list[str] = field(default_factory=list)
    pad_to_max_length: bool = False  # naive padding, in training and scoring
    compile_model: bool = False
    eager_twin: str | None = None  # the same path uncompiled: what the compile's break-even is counted against


OLD_PATH = ["quant.compute_dtype=float32", "model.attn_implementation=eager", "trainer.batching=rows",
            "trainer.grad_accum=2", "peft.dropout=0.05"]  # the path before issue 8, its LoRA dropout included
VARIANTS = {
    "naive": Variant("naive HF: pad to max_length, fp32, eager, nf4",
                     [*OLD_PATH, "trainer.group_by_length=false"], pad_to_max_length=True),
    "today": Variant("today: dynamic padding, fp32, eager, nf4", [*OLD_PATH, "trainer.group_by_length=true"]),
    "new": Variant("new defaults: bf16 auto, SDPA, token budget, nf4"),
    "bf16_weights": Variant("new defaults, no quantization (bf16 weights)", ["quant=none"]),
    "compiled": Variant("new defaults + compiled layers", compile_model=True, eager_twin="new"),
    "long_run": Variant("long CPU run's default: bf16 weights + compiled layers", ["quant=none"],
                        compile_model=True, eager_twin="bf16_weights"),
}


def data_overrides(train_rows: int, dev_rows: int) -> list[str]:
    """Real QC rows beside the repository when present, else the generated demo rows."""
    rows = [f"data.max_train_rows={train_rows}", f"data.max_dev_rows={dev_rows}"]
    if (SHARED_QC / "train.jsonl").is_file():
        return ["data=competition", f"data.dir={SHARED_QC}", *rows]
    return ["data=demo", *rows]


def run_variant(name: str, args) -> dict:
    """One variant, in this process."""
    variant = VARIANTS[name]
    cfg = compose_train_config([f"model={args.model}", f"paths.cache_dir={args.cache_dir}", f"paths.root={REPO}",
                                *data_overrides(args.train_rows, args.dev_rows), *variant.overrides, *args.override])
    with tempfile.TemporaryDirectory() as work_dir:
        measured = measure_run(cfg, args.warmup_steps, args.steps, Path(work_dir), variant.pad_to_max_length,
                               variant.compile_model)
    return {"variant": name, "label": variant.label, "overrides": list(variant.overrides), "model": args.model,
            "torch_threads": torch.get_num_threads(), **measured}


def run_in_subprocess(name: str, args, argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, *argv, "--run-variant", name, "--json-out", str(out)],
                              cwd=REPO, text=True, capture_output=not args.verbose)
        if done.returncode != 0:
            tail = (done.stderr or "")[-3000:]
            return {"variant": name, "label": VARIANTS[name].label, "error": f"exit {done.returncode}: {tail}"}
        return json.loads(out.read_text())


def add_ratios_and_shares(results: list[dict], peaks: dict) -> None:
    naive = next((r for r in results if r["variant"] == "naive" and "error" not in r), None)
    for r in results:
        if "error" in r:
            continue
        n = r["matmul_weights"]
        for phase, flops_per_token in (("training", 6), ("scoring", 2)):
            measured = r[phase]
            measured["flop_per_s"] = flops_per_token * n * measured["tokens_per_s"]
            measured["share_of_bf16_peak"] = measured["flop_per_s"] / peaks["bfloat16"]
            if naive:
                measured["rows_per_s_vs_naive"] = measured["rows_per_s"] / naive[phase]["rows_per_s"]
        twin_name = VARIANTS[r["variant"]].eager_twin
        twin = next((t for t in results if t["variant"] == twin_name and "error" not in t), None)
        if twin:  # same seed, rows and batches as its eager twin: same numbers? when does compiling pay?
            r["eager_twin"] = twin_name
            r["max_abs_loss_diff_vs_twin"] = max_abs_diff(r["training"]["losses"], twin["training"]["losses"])
            r["max_abs_score_diff_vs_twin"] = max_abs_diff(r["scoring"]["scores"], twin["scoring"]["scores"])
            r["compile"] = compile_cost(r["training"], twin["training"])


def compile_cost(compiled: dict, eager: dict) -> dict:
    """The compile's one-off seconds (every step's time minus what the steps would take at the steady
    compiled rate) and the optimizer steps after which it has paid for itself against the eager twin."""
    compiled_step = compiled["seconds"] / timed_steps(compiled)
    eager_step = eager["seconds"] / timed_steps(eager)
    overhead = compiled["all_seconds"] - compiled["all_steps"] * compiled_step
    saved = eager_step - compiled_step
    return {"seconds": overhead, "step_seconds": compiled_step, "eager_step_seconds": eager_step,
            "break_even_steps": overhead / saved if saved > 0 else None}


def timed_steps(training: dict) -> int:
    return training["all_steps"] - training["warmup_steps"]


def max_abs_diff(a: list[float], b: list[float]) -> float | None:
    if len(a) != len(b) or not a:
        return None
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def markdown_table(results: list[dict], peaks: dict) -> str:
    lines = [f"bf16 matmul peak {peaks['bfloat16'] / 1e9:.0f} GFLOP/s, fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s "
             f"({'x'.join(map(str, MATMUL_SHAPE))}, {torch.get_num_threads()} threads)", "",
             "| variant | compute | train rows/s | train tok/s | x naive | train % bf16 peak | padding "
             "| train rows/s, every step | first step s "
             "| score rows/s | x naive | score % bf16 peak | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {r['error'].splitlines()[0][:80]} |" + " |" * 11)
            continue
        t, s = r["training"], r["scoring"]
        padding = 1 - t["tokens"] / t["padded_tokens"]
        lines.append(
            f"| {r['label']} | {r['compute_dtype'].removeprefix('torch.')}, {r['attn_implementation']} "
            f"| {t['rows_per_s']:.1f} | {t['tokens_per_s']:.0f} | {t.get('rows_per_s_vs_naive', float('nan')):.2f} "
            f"| {100 * t['share_of_bf16_peak']:.1f} % | {100 * padding:.0f} % "
            f"| {t['all_rows_per_s']:.1f} | {t['first_step_seconds']:.1f} "
            f"| {s['rows_per_s']:.1f} | {s.get('rows_per_s_vs_naive', float('nan')):.2f} "
            f"| {100 * s['share_of_bf16_peak']:.1f} % | {r['peak_rss_mib']:.0f} |")
    notes = [f"- {r['variant']} vs {r['eager_twin']}: max |loss difference| {r['max_abs_loss_diff_vs_twin']:.2e}, "
             f"max |score difference| {r['max_abs_score_diff_vs_twin']:.2e}; compiling cost "
             f"{r['compile']['seconds']:.0f} s once, then {r['compile']['step_seconds']:.2f} s a step against "
             f"{r['compile']['eager_step_seconds']:.2f} s eager: it pays after "
             + (f"{r['compile']['break_even_steps']:.0f} optimizer steps" if r['compile']['break_even_steps'] else "never")
             for r in results if r.get("eager_twin")]
    notes += [f"- {r['variant']}: NOT HEALTHY (non-finite loss or score, or no trained weight moved)"
              for r in results if r.get("healthy") is False]
    return "\n".join(lines + ([""] + notes if notes else []))


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3_270m", help="a conf/model option (tiny_random for a quick look)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--train-rows", type=int, default=512)
    parser.add_argument("--dev-rows", type=int, default=256)
    parser.add_argument("--warmup-steps", type=int, default=12,
                        help="untimed steps first (compiling happens here; dynamic-shape graphs are still being "
                             "added in the first ~10 steps, so fewer leave recompiles in the timed window)")
    parser.add_argument("--steps", type=int, default=24, help="timed optimizer steps")
    parser.add_argument("--cache-dir", default=str(REPO / ".cache"), help="where models are converted/built once")
    parser.add_argument("--results-dir", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override for every variant")
    parser.add_argument("--verbose", action="store_true", help="show each variant's own output")
    parser.add_argument("--run-variant", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.run_variant:
        Path(args.json_out).write_text(json.dumps(run_variant(args.run_variant, args)))
        return
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}: choose from {list(VARIANTS)}")
    peaks = {str(dtype).removeprefix("torch."): matmul_peak(dtype, MATMUL_SHAPE)
             for dtype in (torch.bfloat16, torch.float32)}
    results = []
    for name in names:
        print(f"[{name}] {VARIANTS[name].label}", flush=True)
        results.append(run_in_subprocess(name, args, argv))
    add_ratios_and_shares(results, peaks)
    table = markdown_table(results, peaks)
    print(table)
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"training-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"matmul_peak_flop_per_s": peaks, "matmul_shape": MATMUL_SHAPE,
                               "args": vars(args), "results": results, "table": table}, indent=2))
    print(f"wrote {out}")
    if any("error" in r or not r["healthy"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
