"""What the training benchmarks share (bench_training.py, gpu_check.py): configs composed
like the CLI's, timed training steps through the project's Trainer, timed scoring, the
matmul peak of the machine, FLOP counts and memory peaks."""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from transformers import DataCollatorWithPadding, TrainerCallback

from relevance.config import register_configs, validate_config
from relevance.training.trainer import RelevanceTrainer, training_arguments

REPO = Path(__file__).resolve().parents[1]
register_configs()


def compose_train_config(overrides: list[str]):
    """`conf/train.yaml` with command-line style overrides, validated as `relevance.train` does."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    validate_config(cfg)
    return cfg


class CountingCollator:
    """Wraps a collator; counts the rows, real tokens and padded tokens it hands out."""

    def __init__(self, collate):
        self.collate = collate
        self.rows = self.tokens = self.padded_tokens = 0

    def __call__(self, features):
        batch = self.collate(features)
        self.rows += len(batch["input_ids"])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += batch["input_ids"].numel()
        return batch

    def counts(self) -> np.ndarray:
        return np.array([self.rows, self.tokens, self.padded_tokens])


def max_length_collator(tokenizer, max_length: int):
    """The naive baseline's padding: every row to `max_length` tokens."""
    pad = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    return lambda features: pad([{k: v for k, v in f.items() if k != "length"} for f in features])


class StepTimer(TrainerCallback):
    """Wall time, rows and tokens of each optimizer step after the warm-up steps, and every
    step's training loss. A step's batches are collated after the previous step ended
    (the Trainer fetches them at the step's start), so counter deltas between step ends
    are exactly the step's rows."""

    def __init__(self, counter: CountingCollator, warmup_steps: int):
        self.counter, self.warmup_steps = counter, warmup_steps
        self.seconds, self.counts, self.losses = 0.0, np.zeros(3, dtype=np.int64), []
        self.first_step_seconds = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now, counts = time.perf_counter(), self.counter.counts()
        if self.first_step_seconds is None:
            self.first_step_seconds = now - self.started
        if state.global_step > self.warmup_steps:
            self.seconds += now - self.started
            self.counts += counts - self.started_counts
        self._mark()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def _mark(self):
        self.started, self.started_counts = time.perf_counter(), self.counter.counts()


def measure_run(cfg, warmup_steps: int, steps: int, work_dir: Path, pad_to_max_length: bool = False,
                compile_model: bool = False, max_dev_rows: int | None = None) -> dict:
    """Load the configured model and rows as `relevance.train` does, train `warmup_steps + steps`
    optimizer steps and score the dev rows, timed; with `pad_to_max_length`, the naive
    baseline's batches (every row padded to `model.max_length`, Hugging Face's evaluation loop)."""
    import psutil
    from transformers import set_seed

    from relevance.data.loading import load_splits
    from relevance.modeling.inputs import collator, encode_table
    from relevance.modeling.loader import load_for_training

    splits = load_splits(cfg.data, cfg.task)
    dev = splits.dev.select(range(min(max_dev_rows or len(splits.dev), len(splits.dev))))
    set_seed(cfg.seed)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    loaded = load_for_training(cfg)
    rss_after_load = psutil.Process().memory_info().rss / 2**20
    encode = lambda table: encode_table(table, loaded.tokenizer, cfg.task, cfg.head, cfg.model.max_length)  # noqa: E731
    train_encoded, dev_encoded = encode(splits.train), encode(dev)
    naive_collate = max_length_collator(loaded.tokenizer, cfg.model.max_length) if pad_to_max_length else None
    trained = [p for p in loaded.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trained]
    training = timed_training(cfg, loaded, train_encoded, naive_collate or collator(loaded.tokenizer), warmup_steps,
                              steps, work_dir, compile_model)
    score = scorer(cfg, loaded, training.pop("trainer"), naive_collate)  # eager, as every run scores
    scoring = timed_scoring(score, dev_encoded, warmup_rows=2 * cfg.trainer.eval_batch_size)
    scores = np.asarray(scoring["scores"])
    weights_moved = any(not torch.equal(p.detach(), b) for p, b in zip(trained, before))
    healthy = bool(weights_moved and np.all(np.isfinite(training["losses"])) and np.all((scores >= 0) & (scores <= 1)))
    return {"training": training, "scoring": scoring, "healthy": healthy,
            "matmul_weights": matmul_weights(loaded.model),
            "compute_dtype": str(loaded.compute_dtype), "compute_dtype_reason": loaded.compute_dtype_reason,
            "attn_implementation": cfg.model.attn_implementation, "batching": cfg.trainer.batching,
            "train_rows": len(splits.train), "dev_rows": len(dev), "rss_after_load_mib": rss_after_load,
            **memory_peaks()}


def timed_training(cfg, loaded, train_encoded, collate, warmup_steps: int, steps: int, work_dir: Path,
                   compile_model: bool = False) -> dict:
    """`warmup_steps + steps` optimizer steps of the project's Trainer; throughput of the last `steps`."""
    counter = CountingCollator(collate)
    timer = StepTimer(counter, warmup_steps)
    args = training_arguments(cfg.trainer, str(work_dir), cfg.seed, loaded.compute_dtype)
    args = dataclasses.replace(args, max_steps=warmup_steps + steps, logging_steps=1, save_strategy="no",
                               disable_tqdm=True)
    trainer = RelevanceTrainer(model=loaded.model, args=args, train_dataset=train_encoded, data_collator=counter,
                               processing_class=loaded.tokenizer, head=loaded.head, callbacks=[timer],
                               compile_layers=compile_model)
    started = time.perf_counter()
    trainer.train()
    all_seconds = time.perf_counter() - started
    rows, tokens, padded = (int(x) for x in timer.counts)
    return {"seconds": timer.seconds, "rows": rows, "tokens": tokens, "padded_tokens": padded,
            "rows_per_s": rows / timer.seconds, "tokens_per_s": tokens / timer.seconds,
            # every step, warm-up (and so compiling) included: what a run of this length pays
            "warmup_steps": warmup_steps, "all_steps": warmup_steps + steps, "all_seconds": all_seconds,
            "all_rows": counter.rows, "all_rows_per_s": counter.rows / all_seconds,
            "first_step_seconds": timer.first_step_seconds,
            "losses": timer.losses, "trainer": trainer}


def scorer(cfg, loaded, trainer, naive_collate=None):
    """`table -> P(relevant)`: the project's `score_rows` with the run's scoring batches, or
    given `naive_collate`, Hugging Face's evaluation loop (`trainer.predict`) over its batches."""
    from relevance.modeling.batching import eval_token_budget
    from relevance.modeling.scoring import score_rows

    if naive_collate is not None:
        trainer.data_collator = naive_collate
        return lambda table: torch.softmax(torch.as_tensor(trainer.predict(table).predictions), -1)[:, 1]
    budget = eval_token_budget(cfg.trainer)
    return lambda table: score_rows(loaded.model, loaded.head, loaded.tokenizer, table, cfg.trainer.eval_batch_size, budget)


def timed_scoring(score, encoded, warmup_rows: int) -> dict:
    """`score(table) -> scores` on a few rows (warm-up), then timed on the whole table."""
    score(encoded.select(range(min(warmup_rows, len(encoded)))))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    scores = np.asarray(score(encoded))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = int(sum(encoded["length"]))
    return {"seconds": seconds, "rows": len(encoded), "tokens": tokens, "rows_per_s": len(encoded) / seconds,
            "tokens_per_s": tokens / seconds, "scores": scores.tolist()}


def matmul_weights(model) -> int:
    """Weights multiplied once per token: every linear layer (4-bit ones by their logical
    shape, LoRA's included) but the LM head, which the heads apply to one position at most.
    Embedding lookups are not matmuls."""
    return sum(m.in_features * m.out_features for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head"))


def matmul_peak(dtype: torch.dtype, shape=(526, 640, 2048), seconds: float = 2.0) -> float:
    """FLOP/s of repeated (m x k) @ (k x n) matmuls in `dtype` on this machine, now."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    m, k, n = shape
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(10):
            a @ b
        calls += 10
        if device == "cuda":
            torch.cuda.synchronize()
    return 2 * m * k * n * calls / (time.perf_counter() - started)


def memory_peaks() -> dict:
    """Peak resident memory of this process (MiB), and of the GPU when there is one."""
    peaks = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if torch.cuda.is_available():
        peaks["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peaks
