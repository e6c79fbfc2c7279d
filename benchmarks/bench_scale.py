"""Competition scale: every data stage the pipeline runs before the model, timed on a generated input of
the competition's size (300,000 training rows per task), with each stage's peak memory.

    .venv/bin/python benchmarks/bench_scale.py                       # 300k rows per task, QC and QI (idle machine)
    .venv/bin/python benchmarks/bench_scale.py --rows 3000 --tasks qc --tokenizer tiny_random --in-process  # seconds

Input (deterministic, `--seed`; written to a temporary folder, never committed): the official files, as
`data=cikm2025` reads them: `train_QC.txt` (`--rows`), `dev_QC.txt` (rows/10) and `test_QC.txt` (rows/3,
no labels, as the official test file), the same for QI. Drawn from the real QC rows' distribution when
`../shared/data/qc` exists (else the demo generator's rows): each row copies a source row's language, label
and target, and gets a new query of the source query's word count from the words of that language's queries,
so queries are mostly distinct and lengths are realistic; ~1 in 12 rows repeats an earlier query of its
language (QC, as in the real file) or each query has several rows (QI, 5 on average). QI titles are the
demo's item titles with a marketing word and a model code appended, so nearly every title is distinct
(the hard-negative pool is as large as the file).

Stages, per task, each in its own process (`--in-process`: all in this one, for a quick look), after its
inputs are prepared untimed in that process:

    raw_parse  baseline: `json.loads` of every line of the three files, the least any reader does
    read       read + validate the three files (`read_jsonl`, as training and predict read them)
    splits     the query overlap of dev with training (`data.query_overlap=drop`) and a 5-fold assignment of
               the training rows (grouped by query, stratified by language x label)
    easy_neg, hard_neg, balance
               each strategy's `generate` on the training rows with its shipped options and a cold cache
               (hard_neg: the offline MiniLM embedder)
    translated `translated` (its shipped options: every training row's query into each dev language training
               lacks) with the tiny random translator (`translator=tiny_seq2seq`, `--translate-batch` texts per
               batch; built and loaded untimed): the translator's generation is model compute, the rest
               (distinct texts, the translation cache, the checks, the new rows) is not. A random model's
               output would fail the checks, so they are opened (no language check, any length, copies
               kept) and every translation becomes a row, as a real translator's mostly do; the language
               check is priced apart: `langid_rows_per_s` (its speed on the training queries, timed after
               the stage) and `langid_seconds_estimate` (the rows added at that speed)
    noise_filter
               `noise_filter` (drop, confidence 0.9) reading a 5-fold sweep from an MLflow SQLite store:
               prepared untimed as `experiment=folds` logs one (a sweep parent, five FINISHED fold runs with
               `evaluation/oof_predictions.jsonl` of their rows: synthetic scores that agree with the label
               but for ~2 % of rows); timed: finding and checking the folds, downloading and pooling their
               scores, the drop
    mix        `build_training_mix` of [original, easy_neg, hard_neg, balance] after the strategy stages:
               the mix as a second job of a sweep builds it (embeddings cached, mining and assembly redone)
    tokenize   the training and dev rows through the task's prompt and the model's tokenizer (`encode_table`;
               `--tokenizer`, Gemma-3 270M by default; loading it is not timed)
    digests    the data digest of the files (run identity) and the row lineage of train, dev and test

and once for all tasks: `grid_cost`, the estimate of `experiment=paper_ablation_gpu` on these files
(`relevance.grid_cost`, tokens counted with `--tokenizer`, priced at `--throughput` tokens/s).

Columns: rows processed, seconds, of which model compute (`model s`: the MiniLM embedder's and the
translator's forward passes, timed around `Embedder._embed` and `Translator._generate`), rows/s, `x raw parse` (the stage's seconds over the same task's raw parse,
measured in the same run: the ratio to compare between machines), the RSS of the stage's process when the
stage started (libraries and the stage's inputs) and its peak while the stage ran (a sampling thread, every
20 ms), and the targets of issue 17 (≤ 2 min without the model compute, ≤ 4 GiB on 2 cores).
Under the table: all stages of a task against the GPU training time of one job of that task from the grid
estimate (target ≤ 5 %), with and without their model compute, and the stages one job of a sweep runs (read, splits, mix, tokenize, digests: the
strategies inside the mix, not counted twice). Writes everything to benchmarks/results/scale-<time>.json (or `--json-out`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_QC = REPO.parent / "shared" / "data" / "qc"
PAPER_MIX = "[original,easy_neg,hard_neg,balance]"
TASK_STAGES = ("raw_parse", "read", "splits", "easy_neg", "hard_neg", "balance", "translated", "noise_filter", "mix",
               "tokenize", "digests")
GLOBAL_STAGES = ("grid_cost",)
STRATEGY_STAGES = ("easy_neg", "hard_neg", "balance", "translated")
MAX_SECONDS, MAX_RSS_MIB, MAX_SHARE_OF_JOB = 120.0, 4096.0, 0.05
TINY_TRANSLATOR = "tiny_seq2seq"  # conf/translator/: a random M2M100 (NLLB's architecture), built on the spot
FOLDS = 5  # noise_filter: the folds whose out-of-fold scores it reads
GPU_TOKENS_PER_S = 6136.0  # benchmarks/gpu_check.py, project path on one H100 (a ~1B model): replace with 12B figures
QC_REPEAT_RATE = 0.085  # share of QC rows that reuse an earlier query (the real file: 6,436 queries, 7,034 rows)
QI_ROWS_PER_QUERY = 5
EXTRAS = ("Free Shipping", "2025 New", "Hot Sale", "High Quality", "Original", "Gift", "Portable", "Mini", "Pro",
          "Plus", "Upgraded", "Durable", "Premium", "Classic", "Universal", "Travel")


# -- input -------------------------------------------------------------------------------------------

def file_sizes(rows: int) -> dict[str, int]:
    """Rows per file: training, dev (a tenth) and test (a third), at least 50 each."""
    return {"train": rows, "dev": max(50, rows // 10), "test": max(50, rows // 3)}


def task_config(key: str):
    from omegaconf import OmegaConf

    from relevance.config import TaskConfig

    return OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(REPO / "conf" / "task" / f"{key}.yaml"))


def source_rows(task_key: str, split: str) -> list[dict]:
    """The rows whose distribution the generated ones follow: the real QC files when present, else the demo's."""
    task = task_config(task_key)
    real = SHARED_QC / f"{split}.jsonl"
    if task_key == "qc" and real.is_file():
        rows = [json.loads(line) for line in real.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        from relevance.data.demo import generate_demo_rows

        rows = generate_demo_rows(task, split, seed=0, n_rows=2000)
    field = str(task.target_field)
    return [{"language": r["language"], "query": str(r["origin_query"]), "target": str(r[field]),
             "label": int(r["label"])} for r in rows if r.get(field) and r.get("origin_query")]


def generated_rows(task_key: str, split: str, n_rows: int, seed: int) -> list[dict]:
    """`n_rows` rows in the competition's format (see the module docstring); no label in the test file."""
    task = task_config(task_key)
    sources = source_rows(task_key, "train" if split == "train" else "dev")
    words: dict[str, list[str]] = {}
    for row in sources:
        words.setdefault(row["language"], []).extend(row["query"].split())
    rng = random.Random(f"bench-scale:{seed}:{task_key}:{split}")
    earlier: dict[str, list[str]] = {}
    rows: list[dict] = []
    current: tuple[str, str] | None = None  # QI: the query its next rows share
    for i in range(1, n_rows + 1):
        source = rng.choice(sources)
        language = source["language"]
        if task_key == "qi" and current is not None and rng.random() > 1 / QI_ROWS_PER_QUERY:
            language, query = current
        elif task_key == "qc" and earlier.get(language) and rng.random() < QC_REPEAT_RATE:
            query = rng.choice(earlier[language])
        else:
            length = max(1, len(source["query"].split()))
            query = " ".join([source["query"].split()[0], *rng.choices(words[language], k=length - 1)])
            earlier.setdefault(language, []).append(query)
        current = (language, query)
        target = source["target"]
        if task_key == "qi":
            target = f"{target} {rng.choice(EXTRAS)} {rng.choice('ABCDEFGHKLMX')}{rng.randint(1, 99999)}"
        row = {"id": i, "task": str(task.name), "language": language, "origin_query": query,
               str(task.target_field): target}
        if split != "test":
            row["label"] = source["label"]
        rows.append(row)
    return rows


def official_name(task_key: str, split: str) -> str:
    return f"{split}_{task_key.upper()}.txt"


def write_input(folder: Path, tasks: list[str], rows: int, seed: int) -> dict[str, dict[str, int]]:
    """The official files of every task in `folder`; task → split → rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, int]] = {}
    for task in tasks:
        written[task] = {}
        for split, n in file_sizes(rows).items():
            lines = (json.dumps(r, ensure_ascii=False) for r in generated_rows(task, split, n, seed))
            (folder / official_name(task, split)).write_text("\n".join(lines) + "\n", encoding="utf-8")
            written[task][split] = n
    return written


# -- measuring ---------------------------------------------------------------------------------------

class PeakRss:
    """The largest resident set size of this process while the block runs (sampled every 20 ms)."""

    def __init__(self, interval_s: float = 0.02):
        import psutil

        self.process, self.interval_s = psutil.Process(), interval_s
        self.peak = self.before = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRss":
        self.before = self.peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


class ModelClock:
    """Seconds spent in model compute while the block runs: the MiniLM embedder's forward passes
    (`Embedder._embed`) and the translator's generation (`Translator._generate`), timed by wrapping them."""

    TIMED = (("relevance.augment.embedder", "Embedder", "_embed"), ("relevance.augment.translator", "Translator",
                                                                   "_generate"))

    def __init__(self):
        self.seconds = 0.0
        self._saved: list[tuple[type, str, object]] = []

    def __enter__(self) -> "ModelClock":
        import importlib

        for module, cls_name, method in self.TIMED:
            cls = getattr(importlib.import_module(module), cls_name)
            original = cls.__dict__[method]
            self._saved.append((cls, method, original))
            setattr(cls, method, self._timed(original))
        return self

    def _timed(self, original):
        clock = self

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started
        return timed

    def __exit__(self, *exc) -> None:
        for cls, method, original in self._saved:
            setattr(cls, method, original)


def stage_overrides(stage: str, args) -> tuple[str, ...]:
    """Config overrides a stage needs beyond the paper mix (the translated stage's tiny translator)."""
    if stage == "translated":  # every translation kept, as a real translator's mostly are (see the docstring)
        return (f"translator={TINY_TRANSLATOR}", f"translator.batch_size={args.translate_batch}",
                "translator.checks.language=false", "translator.checks.reject_copies=false",
                "translator.checks.min_length_ratio=0", "translator.checks.max_length_ratio=1e9")
    return ()


def compose(task: str, data_dir: Path, work: Path, tokenizer: str, extra: tuple[str, ...] = ()):
    """The training config of one task on the generated files, as `relevance.train` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from relevance.config import register_configs, validate_config

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=[
            f"task={task}", "data=cikm2025", f"data.dir={data_dir}", f"model={tokenizer}", f"augment={PAPER_MIX}",
            f"paths.root={work}", f"paths.cache_dir={work / 'cache'}", *extra])
    validate_config(cfg)
    return cfg


def read_files(cfg, data_dir: Path, task: str) -> dict:
    """The three files as the pipeline reads them (`read_jsonl`): train and dev labelled, test as predict reads it."""
    from relevance.data.reader import read_jsonl

    def read(split: str, **options):
        options.setdefault("null_target", cfg.data.null_target)
        return read_jsonl(data_dir / official_name(task, split), cfg.task, languages=cfg.data.languages,
                          **options).dataset

    return {"train": read("train"), "dev": read("dev"), "test": read("test", require_label=False, null_target="empty")}


def strategy_context(cfg, tables: dict, runs=None):
    from relevance.augment.mix import augment_context
    from relevance.data.splits import languages

    return augment_context(cfg, tables["train"], languages(tables["train"]), languages(tables["dev"]), runs=runs)


def run_stage(stage: str, task: str | None, data_dir: Path, work: Path, args) -> dict:
    """Prepare the stage's inputs (untimed), then time the stage and sample its memory."""
    import datasets

    datasets.disable_progress_bars()
    result: dict = {"stage": stage, "task": task}
    if stage == "grid_cost":
        from relevance.grid_cost import GridCostOptions, cost_grid

        tasks = args.tasks.split(",")
        options = GridCostOptions(gpus=args.gpus, throughput_tokens_per_s=args.throughput, tokenizer=args.tokenizer)
        overrides = ["experiment=paper_ablation_gpu", "data=cikm2025", f"data.dir={data_dir}", f"paths.root={work}",
                     f"paths.cache_dir={args.cache_dir}",
                     f"task={tasks[0]}" if len(tasks) == 1 else f"hydra.sweeper.params.task='{','.join(tasks)}'"]
        with PeakRss() as rss:
            started = time.perf_counter()
            costs, _ = cost_grid(options, overrides)
            seconds = time.perf_counter() - started
        sizes = file_sizes(args.rows)
        result.update(rows=len(tasks) * (sizes["train"] + sizes["dev"]), jobs=len(costs),
                      job_gpu_seconds={t: sorted(c.seconds for c in costs if c.task.lower() == t) for t in tasks})
        return {**result, "seconds": seconds, "peak_rss_mib": rss.peak / 2**20, "rss_before_mib": rss.before / 2**20}

    cfg = compose(task, data_dir, work, args.tokenizer, stage_overrides(stage, args))
    paths = [data_dir / official_name(task, split) for split in ("train", "dev", "test")]
    tables = read_files(cfg, data_dir, task) if stage not in ("raw_parse", "read") else None
    work_fn, extra = stage_work(stage, cfg, task, data_dir, paths, tables, args, work)
    with PeakRss() as rss, ModelClock() as model:
        started = time.perf_counter()
        rows, details = work_fn()
        seconds = time.perf_counter() - started
    if stage == "translated":  # the language check, off in the stage, priced on every translation it would check
        details["langid_rows_per_s"] = langid_speed(tables["train"])
        details["langid_seconds_estimate"] = details["rows_added"] / details["langid_rows_per_s"]
    return {**result, **extra, **details, "rows": rows, "seconds": seconds, "model_seconds": model.seconds,
            "peak_rss_mib": rss.peak / 2**20, "rss_before_mib": rss.before / 2**20}


def langid_speed(train, limit: int = 100_000) -> float:
    """Texts/s of the translation checks' language identifier on (up to `limit` of) the training queries."""
    from relevance.augment.checks import identify
    from relevance.data.columns import column_values

    (queries,) = column_values(train.select(range(min(limit, len(train)))), "query")
    identify("warm up")
    started = time.perf_counter()
    for query in queries:
        identify(query, 3)
    return len(queries) / (time.perf_counter() - started)


def stage_work(stage: str, cfg, task: str, data_dir: Path, paths: list[Path], tables: dict | None, args,
               work: Path):
    """(the timed work: returns (rows processed, details), untimed details)."""
    if stage == "raw_parse":
        def parse():
            count = 0
            for path in paths:
                with open(path, encoding="utf-8") as handle:
                    for line in handle:
                        json.loads(line)
                        count += 1
            return count, {}
        return parse, {}
    if stage == "read":
        def read():
            read_tables = read_files(cfg, data_dir, task)
            return sum(len(t) for t in read_tables.values()), {}
        return read, {}
    if stage == "splits":
        from relevance.data.overlap import handle_query_overlap, training_queries
        from relevance.data.splits import fold_assignment

        def splits():
            seen = training_queries(tables["train"])
            dev, overlap = handle_query_overlap(tables["dev"], "dev", paths[1], seen, "drop", paths[0])
            folds = fold_assignment(tables["train"], 5, int(cfg.data.seed))
            return len(tables["train"]) + len(tables["dev"]), {"dev_rows_dropped": overlap.dropped,
                                                               "folds": int(folds.max()) + 1}
        return splits, {}
    if stage in STRATEGY_STAGES:
        from relevance.augment.mix import build_strategy
        from relevance.augment.translating import TranslatingStrategy

        context = strategy_context(cfg, tables)
        strategy = build_strategy(stage, cfg.augment.get(stage))  # the paper mix's options, else the shipped ones
        extra = {}
        if isinstance(strategy, TranslatingStrategy):
            strategy.translator_for(context).load()  # built and loaded before the clock starts
            extra["translator"] = str(cfg.translator.name)

        def augment():
            added = strategy.generate(tables["train"], context)
            return len(tables["train"]), {"rows_added": len(added), "counters": strategy.counters}
        return augment, extra
    if stage == "noise_filter":
        from relevance.augment.mix import build_strategy
        from relevance.tracking.fold_reader import TrackedFoldRuns

        uri, parent = fold_sweep(cfg, tables["train"], work)
        context = strategy_context(cfg, tables, runs=TrackedFoldRuns(uri))
        strategy = build_strategy("noise_filter", {"oof_from": parent})

        def noise_filter():
            strategy.source_runs(context.runs)  # what a run checks before any model loads
            kept = strategy.rewrite_mix(tables["train"], context)
            return len(tables["train"]), {"rows_dropped": len(tables["train"]) - len(kept),
                                          "counters": strategy.counters}
        return noise_filter, {}
    if stage == "mix":
        from relevance.augment.mix import build_training_mix

        context = strategy_context(cfg, tables)

        def mix():
            built = build_training_mix(cfg.augment, context)
            return len(tables["train"]), {"mix_rows": len(built.table)}
        return mix, {}
    if stage == "tokenize":
        from relevance.modeling.inputs import encode_table
        from relevance.modeling.loader import load_tokenizer
        from relevance.modeling.sources import resolve_model

        started = time.perf_counter()
        tokenizer = load_tokenizer(resolve_model(cfg.model, args.cache_dir), cfg.model, cfg.head)
        load_s = time.perf_counter() - started

        def tokenize():
            lengths = [sum(encode_table(tables[role], tokenizer, cfg.task, cfg.head, cfg.model.max_length)["length"])
                       for role in ("train", "dev")]
            return len(tables["train"]) + len(tables["dev"]), {"tokens": int(sum(lengths))}
        return tokenize, {"tokenizer": str(cfg.model.name), "tokenizer_load_s": load_s}
    if stage == "digests":
        from relevance.data.lineage import RunLineage
        from relevance.tracking.identity import data_digest, file_sha256

        def digests():
            digest = data_digest(cfg.data)
            file_sha256(paths[2])  # the test file, which predict reads
            tags = RunLineage.of(train=tables["train"], dev=tables["dev"], test=tables["test"]).summary_tags()
            return sum(len(t) for t in tables.values()), {"data_digest": digest, "lineage": tags}
        return digests, {}
    raise ValueError(f"unknown stage {stage!r}")


def fold_sweep(cfg, train, work: Path, noise: float = 0.02) -> tuple[str, str]:
    """(tracking URI, sweep parent id) of a `FOLDS`-fold sweep over `train` as `experiment=folds` logs it:
    a parent and one FINISHED run per fold with its rows' out-of-fold scores (`evaluation/oof_predictions.jsonl`),
    drawn to agree with the label but for a share `noise` of rows, which they confidently contradict."""
    import numpy as np
    from mlflow.tracking import MlflowClient

    from relevance.data.columns import column_values
    from relevance.data.splits import fold_assignment
    from relevance.evaluation.oof import oof_frame, write_oof
    from relevance.tracking.tags import DATA_DIGEST_TAG, SWEEP_ID_TAG, SWEEP_TAG

    uri = f"sqlite:///{work / 'folds.db'}"
    work.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"bench-scale-folds-{cfg.task.name}",
                                          artifact_location=(work / "fold-artifacts").as_uri())
    sweep = {SWEEP_ID_TAG: f"bench-scale-folds-{cfg.task.name}"}
    parent = client.create_run(experiment, tags={SWEEP_TAG: "true", **sweep}).info.run_id
    seed = int(cfg.data.seed)
    folds = fold_assignment(train, FOLDS, seed)
    labels = np.asarray(column_values(train, "label")[0])
    rng = np.random.default_rng(seed)
    agree = np.where(rng.random(len(train)) < noise, 1 - labels, labels)
    probability = np.clip(np.where(agree == 1, 0.97, 0.03) + rng.normal(0, 0.05, len(train)), 0, 1)
    for fold in range(FOLDS):
        rows = np.flatnonzero(folds == fold)
        run = client.create_run(experiment, tags={"mlflow.parentRunId": parent, "task": str(cfg.task.name),
                                                  DATA_DIGEST_TAG: "bench-scale"}).info.run_id
        for name, value in {"data.folds": FOLDS, "data.fold": fold, "data.seed": seed}.items():
            client.log_param(run, name, value)
        path = write_oof(oof_frame(train.select(rows), probability[rows], fold), work / "oof" / str(fold))
        client.log_artifact(run, str(path), "evaluation")
        client.set_terminated(run)
    client.set_terminated(parent)
    return uri, parent


def run_in_own_process(stage: str, task: str | None, data_dir: Path, work: Path, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stage.json"
        command = [sys.executable, __file__, "--stage", stage, "--task", task or "", "--data-dir", str(data_dir),
                   "--work", str(work), "--stage-json", str(out), *passed_on(args)]
        done = subprocess.run(command, cwd=REPO, text=True)
        if done.returncode != 0:
            raise SystemExit(f"stage {stage} ({task or 'all tasks'}) failed (exit {done.returncode})")
        return json.loads(out.read_text())


def passed_on(args) -> list[str]:
    return ["--rows", str(args.rows), "--tasks", args.tasks, "--tokenizer", args.tokenizer, "--cache-dir",
            str(args.cache_dir), "--throughput", str(args.throughput), "--gpus", str(args.gpus), "--seed",
            str(args.seed), "--translate-batch", str(args.translate_batch)]


# -- report ------------------------------------------------------------------------------------------

def stage_rows(results: list[dict]) -> list[list[str]]:
    baselines = {r["task"]: r["seconds"] for r in results if r["stage"] == "raw_parse"}
    rows = []
    for r in results:
        base = baselines.get(r["task"]) or sum(baselines.values())
        model = r.get("model_seconds") or 0.0
        rows.append([r["task"] or "all", r["stage"], f"{r['rows']:,}", f"{r['seconds']:.2f}",
                     f"{model:.2f}" if model else "-",
                     f"{r['rows'] / r['seconds']:,.0f}" if r["seconds"] > 0 else "-",
                     f"{r['seconds'] / base:.1f}" if base else "-", f"{r['rss_before_mib']:.0f}",
                     f"{r['peak_rss_mib']:.0f}", "yes" if r["seconds"] - model <= MAX_SECONDS else "NO",
                     "yes" if r["peak_rss_mib"] <= MAX_RSS_MIB else "NO"])
    return rows


# what one job of a sweep runs on its data: the mix rebuilds its strategies (embeddings cached by an earlier job)
JOB_STAGES = ("read", "splits", "mix", "tokenize", "digests")


def job_shares(results: list[dict]) -> dict[str, dict]:
    """Per task, against one job's estimated GPU time (the cheapest of its grid): all its stages (not the
    baseline; the strategies count twice, on their own and inside the mix), and the stages one job of a sweep
    runs (JOB_STAGES)."""
    grid = next((r for r in results if r["stage"] == "grid_cost"), None)
    shares = {}
    for task in sorted({r["task"] for r in results if r["task"]}):
        stages = [r for r in results if r["task"] == task and r["stage"] != "raw_parse"]
        seconds = sum(r["seconds"] for r in stages)
        model_seconds = sum(r.get("model_seconds") or 0.0 for r in stages)
        job_seconds = sum(r["seconds"] for r in stages if r["stage"] in JOB_STAGES)
        jobs = (grid or {}).get("job_gpu_seconds", {}).get(task) or []
        shares[task] = {"stage_seconds": seconds, "model_seconds": model_seconds, "job_stage_seconds": job_seconds,
                        "job_gpu_seconds": jobs[0] if jobs else None,
                        "share": seconds / jobs[0] if jobs else None,
                        "share_without_model": (seconds - model_seconds) / jobs[0] if jobs else None,
                        "job_share": job_seconds / jobs[0] if jobs else None}
    return shares


def report(results: list[dict], args, written: dict) -> str:
    from relevance.text_tables import markdown_table

    header = ["task", "stage", "rows", "seconds", "model s", "rows/s", "x raw parse", "RSS at start MiB",
              "peak RSS MiB", "≤ 2 min but model", "≤ 4 GiB"]
    lines = [markdown_table(header, stage_rows(results)), ""]
    for task, share in job_shares(results).items():
        if share["share"] is None:
            continue
        lines.append(f"- {task.upper()}: all stages {share['stage_seconds']:.1f} s = {100 * share['share']:.2f} % of "
                     f"the cheapest {task.upper()} job's estimated GPU training time "
                     f"({share['job_gpu_seconds'] / 3600:.2f} h at {args.throughput:g} tokens/s; target ≤ 5 %: "
                     f"{'yes' if share['share'] <= MAX_SHARE_OF_JOB else 'NO'}); without the model compute "
                     f"({share['model_seconds']:.1f} s) {100 * share['share_without_model']:.2f} % "
                     f"({'yes' if share['share_without_model'] <= MAX_SHARE_OF_JOB else 'NO'}); "
                     "what one job of a sweep runs "
                     f"({', '.join(JOB_STAGES)}) {share['job_stage_seconds']:.1f} s = {100 * share['job_share']:.2f} % "
                     f"({'yes' if share['job_share'] <= MAX_SHARE_OF_JOB else 'NO'}).")
    for r in results:
        notes = {k: v for k, v in r.items() if k in ("rows_added", "rows_dropped", "mix_rows", "tokens",
                                                       "tokenizer_load_s", "dev_rows_dropped", "jobs",
                                                       "langid_rows_per_s", "langid_seconds_estimate")}
        if notes:
            lines.append(f"- {r['task'] or 'all'} {r['stage']}: " + ", ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                for k, v in notes.items()))
    sizes = ", ".join(f"{t.upper()} " + "/".join(f"{n:,}" for n in s.values()) for t, s in written.items())
    processes = "one process" if args.in_process else "a process per stage"
    lines.append(f"- input: {sizes} rows (train/dev/test); {processes}; tokenizer {args.tokenizer}; "
                 f"{os.cpu_count()} CPUs visible.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000,
                        help="training rows per task (dev: a tenth, test: a third)")
    parser.add_argument("--tasks", default="qc,qi", help="comma-separated task keys")
    parser.add_argument("--tokenizer", default="gemma3_270m", help="model preset whose tokenizer tokenises")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache",
                        help="where converted models are cached (the augmentation cache is always fresh)")
    parser.add_argument("--throughput", type=float, default=GPU_TOKENS_PER_S,
                        help="GPU training tokens/s for grid_cost")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--translate-batch", type=int, default=256,
                        help="texts per batch of the tiny translator (translated stage)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(TASK_STAGES + GLOBAL_STAGES),
                        help="comma-separated stages to run (default: all, in their order)")
    parser.add_argument("--in-process", action="store_true", help="every stage in this process (RSS less meaningful)")
    parser.add_argument("--json-out", type=Path, help="where to write the results (default benchmarks/results/)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tasks = [t.strip().lower() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if not (REPO / "conf" / "task" / f"{t}.yaml").is_file()]
    if unknown or not tasks:
        parser.error(f"--tasks {args.tasks!r}: no conf/task/<key>.yaml for {unknown or 'an empty list'}")
    if args.rows < 100:
        parser.error(f"--rows {args.rows}: at least 100 (5 folds need distinct queries)")
    args.tasks = ",".join(tasks)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in TASK_STAGES + GLOBAL_STAGES]
    if unknown or not stages:
        parser.error(f"--stages {args.stages!r}: unknown {unknown or 'an empty list'}; the stages are "
                     f"{', '.join(TASK_STAGES + GLOBAL_STAGES)}")
    args.stages = ",".join(stages)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage:  # one stage, in the process the parent started for it
        from relevance.runtime import quiet_third_party_logs

        quiet_third_party_logs()
        result = run_stage(args.stage, args.task or None, args.data_dir, args.work, args)
        args.stage_json.write_text(json.dumps(result, default=str))
        return
    tasks = args.tasks.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        data_dir, work = Path(tmp) / "cikm2025", Path(tmp) / "work"
        started = time.perf_counter()
        written = write_input(data_dir, tasks, args.rows, args.seed)
        print(f"generated {', '.join(sorted(p.name for p in data_dir.iterdir()))} in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        chosen = args.stages.split(",")
        plan = ([(stage, task) for task in tasks for stage in TASK_STAGES if stage in chosen]
                + [(s, None) for s in GLOBAL_STAGES if s in chosen])
        results = []
        for number, (stage, task) in enumerate(plan, start=1):
            print(f"[{number}/{len(plan)}] {task or 'all tasks'}: {stage}", flush=True)
            run = run_stage if args.in_process else run_in_own_process
            results.append(json.loads(json.dumps(run(stage, task, data_dir, work, args), default=str)))
    text = report(results, args, written)
    print(text)
    out = args.json_out or REPO / "benchmarks" / "results" / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "input_rows": written,
                               "stages": results, "job_shares": job_shares(results), "table": text}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
