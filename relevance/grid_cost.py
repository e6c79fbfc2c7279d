"""`python -m relevance.grid_cost [relevance.train's overrides] [gpus=N] [throughput_tokens_per_s=X] ...`

What a sweep costs before it is launched. The grid is the one `python -m relevance.train -m` would
run with the same overrides (`experiment=paper_ablation_gpu` by default): the experiment's
`hydra.sweeper.params`, composed by Hydra job by job. For each job it reads the data files as the
run would (`load_splits`), estimates the rows of its training mix from each strategy's options
(`relevance.cost.mix_rows`), counts tokens per row with the job's tokenizer on a sample
(`relevance.cost.tokens`), and prints the token counts per task and mix and the GPU-hours and wall
time of the whole sweep on `gpus` GPUs at the given throughput (`relevance.cost.schedule`).

Its own keys (the `GridCostOptions` below); every other argument is one of relevance.train's
overrides, checked as train checks them. docs/scale.md has a worked example.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from relevance.config import ConfigError, register_configs, validate_config
from relevance.cost.mix_rows import DataFacts, MixEstimate, MixShape, estimate_mix
from relevance.cost.schedule import JobTokens, job_seconds, wall_seconds
from relevance.cost.sweep import swept_keys, sweep_jobs
from relevance.cost.throughput import run_speed, throughput_for, throughputs
from relevance.text_tables import text_table

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
DEFAULT_EXPERIMENT = "paper_ablation_gpu"
log = logging.getLogger(__name__)


@dataclass
class GridCostOptions:
    gpus: int = 1  # GPUs the jobs share, one job per GPU at a time
    # training tokens/s of one GPU (real tokens, as benchmarks/gpu_check.py prints): a number, or per model name
    throughput_tokens_per_s: Any = None
    throughput_runs: list[str] = field(default_factory=list)  # logged runs whose speed stands for their model's
    scoring_speedup: float = 3.0  # scoring tokens/s over training tokens/s (a forward pass only)
    tokenizer: Optional[str] = None  # a model preset whose tokenizer counts every job's tokens (e.g. gemma3_270m)
    tokens_per_row: Optional[float] = None  # or no tokenizer at all: this many tokens per row
    sample_rows: int = 2000  # rows tokenised per table (a seeded sample) for its mean tokens per row


def split_arguments(argv: list[str]) -> tuple[GridCostOptions, list[str]]:
    """The command's own keys as GridCostOptions (Hydra's override grammar for values, types checked);
    the other arguments are relevance.train's overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    own_keys = {f.name for f in fields(GridCostOptions)}
    own, train = {}, []
    for argument in argv:
        key = argument.split("=", 1)[0]
        if key in own_keys:
            own[key] = OverridesParser.create().parse_override(argument).value()
        else:
            train.append(argument)
    try:
        options = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GridCostOptions), own))
    except Exception as error:  # a wrong type: the message names the key
        raise ConfigError(f"grid_cost: {str(error).splitlines()[0]}") from None
    if options.gpus < 1 or options.scoring_speedup <= 0 or options.sample_rows < 1:
        raise ConfigError(f"grid_cost: gpus={options.gpus}, scoring_speedup={options.scoring_speedup} and "
                          f"sample_rows={options.sample_rows} must be positive")
    if not any(arg.split("=", 1)[0].lstrip("+~") == "experiment" for arg in train):
        train.insert(0, f"experiment={DEFAULT_EXPERIMENT}")
    if not any(arg.split("=", 1)[0] == "paths.root" for arg in train):
        train.append(f"paths.root={os.environ.get('RELEVANCE_ROOT', os.getcwd())}")
    return options, train


@dataclass
class JobCost:
    overrides: list[str]
    model: str
    task: str
    mix: str
    epochs: float
    estimate: MixEstimate
    train_rows: int
    tokens_per_row: float
    tokens: JobTokens
    seconds: float = 0.0


@dataclass
class TaskData:
    """One task's tables as its jobs read them, and the counts every job's mix estimate starts from."""

    splits: Any  # relevance.data.loading.Splits
    facts: DataFacts


class GridCoster:
    """Composes each job; shares across jobs what they have in common: each task's data (read and
    counted once), each tokenizer (loaded once) and each table's tokens per row (counted once per
    tokenizer, prompt and length limit). Only the mix estimate, from the job's own options, is per job."""

    def __init__(self, options: GridCostOptions):
        self.options = options
        self._task_data: dict[str, TaskData] = {}
        self._tokenizer_models: dict[str, DictConfig] = {}
        self._tokenizers: dict[str, Any] = {}
        self._per_row: dict[str, float] = {}

    def compose(self, overrides: list[str], hydra: bool = False) -> DictConfig:
        from hydra import compose

        return compose(config_name="train", overrides=overrides, return_hydra_config=hydra)

    def task_data(self, cfg: DictConfig) -> TaskData:
        """The job's tables and their counts, read and counted once per (data, task) config."""
        from relevance.data.loading import load_splits

        key = json.dumps(OmegaConf.to_container(OmegaConf.create({"data": cfg.data, "task": cfg.task}), resolve=True),
                         sort_keys=True)
        if key not in self._task_data:
            log.info("reading %s's data files", cfg.task.name)
            splits = load_splits(cfg.data, cfg.task)
            original = MixShape.of(splits.train)
            # sorted(original.by_language) is relevance.data.splits.languages(splits.train), without a second pass
            self._task_data[key] = TaskData(splits, DataFacts(original, sorted(original.by_language),
                                                              splits.evaluation_languages()))
        return self._task_data[key]

    def tokenizer(self, cfg: DictConfig, root_overrides: list[str]):
        from relevance.modeling.loader import load_tokenizer
        from relevance.modeling.sources import resolve_model

        preset = self.options.tokenizer
        model_cfg = self.tokenizer_model(preset, root_overrides) if preset else cfg.model
        if model_cfg.name not in self._tokenizers:
            try:
                source = resolve_model(model_cfg, Path(cfg.paths.cache_dir))
                self._tokenizers[model_cfg.name] = load_tokenizer(source, model_cfg, cfg.head)
            except (OSError, RuntimeError, ValueError) as error:
                reason = str(error).splitlines()[0]
                raise ConfigError(f"model {model_cfg.name}'s tokenizer could not be loaded ({reason}): "
                                  "pass tokenizer=gemma3_270m (Gemma-3's tokenizer, offline) or "
                                  "tokens_per_row=<tokens per row>") from None
        return model_cfg.name, self._tokenizers[model_cfg.name]

    def tokenizer_model(self, preset: str, root_overrides: list[str]) -> DictConfig:
        """The model config of `tokenizer=<preset>`, composed once."""
        if preset not in self._tokenizer_models:
            self._tokenizer_models[preset] = self.compose([f"model={preset}", *root_overrides]).model
        return self._tokenizer_models[preset]

    def tokens_per_row(self, table, cfg: DictConfig, estimate: MixEstimate, role: str,
                       root_overrides: list[str]) -> float:
        from relevance.cost.tokens import mean_tokens_per_row

        if self.options.tokens_per_row is not None:
            return float(self.options.tokens_per_row)
        name, tokenizer = self.tokenizer(cfg, root_overrides)
        key = json.dumps([name, role, cfg.task.name, cfg.model.max_length, cfg.head.name, repr(estimate.prompt_changes),
                          OmegaConf.to_container(cfg.data, resolve=True)], sort_keys=True, default=str)
        if key not in self._per_row:
            self._per_row[key] = mean_tokens_per_row(table, tokenizer, cfg, list(estimate.prompt_changes.values()),
                                                     self.options.sample_rows, int(cfg.data.seed))
        return self._per_row[key]

    def job(self, overrides: list[str], root_overrides: list[str]) -> JobCost:
        cfg = self.compose(overrides)
        validate_config(cfg)
        data = self.task_data(cfg)
        splits = data.splits
        estimate = estimate_mix(cfg.augment, data.facts)
        per_row = self.tokens_per_row(splits.train, cfg, estimate, "train", root_overrides)
        epochs = float(cfg.trainer.epochs)
        scored = sum(len(table) * self.tokens_per_row(table, cfg, estimate, role, root_overrides)
                     * (math.ceil(epochs) + 1 if role == "dev" else 1)
                     for role, table in splits.evaluation_tables().items())
        return JobCost(overrides, str(cfg.model.name), str(cfg.task.name), "+".join(cfg.augment.keys()), epochs,
                       estimate, len(splits.train), per_row, JobTokens(estimate.shape.rows * per_row * epochs, scored))


def cost_grid(options: GridCostOptions, train_overrides: list[str]) -> tuple[list[JobCost], dict[str, float]]:
    """Every job's cost, and the training tokens/s per model they were priced at."""
    from hydra import initialize_config_dir

    register_configs()
    root_overrides = [arg for arg in train_overrides if arg.split("=", 1)[0] in ("paths.root", "paths.cache_dir")]
    coster = GridCoster(options)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="grid_cost"):
        base = coster.compose(train_overrides, hydra=True)
        tracking_uri = str(base.tracking.tracking_uri)
        costs = [coster.job(job, root_overrides) for job in sweep_jobs(base.hydra, train_overrides)]
    speeds = []
    if options.throughput_runs:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        speeds = [run_speed(client, str(run_id)) for run_id in options.throughput_runs]
    by_model_task = {(c.model, c.task): c.tokens_per_row for c in costs}
    found = throughputs(options.throughput_tokens_per_s, speeds, lambda m, t: by_model_task.get((m, t)))
    for cost in costs:
        cost.seconds = job_seconds(cost.tokens, throughput_for(found, cost.model), options.scoring_speedup)
    return costs, found


def millions(value: float) -> str:
    return f"{value / 1e6:,.2f}M"


def duration(seconds: float) -> str:
    """`42 min`, `3.2 h` or `2.1 days`: what a person plans with."""
    hours = seconds / 3600
    if hours < 1:
        return f"{seconds / 60:.0f} min"
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def report(costs: list[JobCost], found: dict[str, float], options: GridCostOptions, train_overrides: list[str]) -> str:
    keys = swept_keys([c.overrides for c in costs])
    lines = [f"grid: {len(costs)} job{'s' if len(costs) > 1 else ''} ({' x '.join(keys) or 'no swept key'}) of "
             "relevance.train " + " ".join(a for a in train_overrides if not a.startswith("paths."))]
    mixes: dict[tuple[str, str], JobCost] = {}
    for c in sorted(costs, key=lambda c: c.task):
        mixes.setdefault((c.task, c.mix), c)
    rows = [[task, mix, f"{c.train_rows:,}", f"{c.estimate.shape.rows:,}",
             ", ".join([f"{name} {added:+,}" for name, added in c.estimate.rows_added.items() if name != "original"]
                       + [f"{name}: longer prompts" for name in c.estimate.prompt_changes]) or "-"]
            for (task, mix), c in mixes.items()]
    lines += ["", "Training rows per task and mix, estimated from each strategy's options (at most: translated "
                  "as if every translation passed its checks, easy_neg/hard_neg as if every query found negatives)",
              text_table(["task", "mix", "training rows", "mix rows", "rows added"], rows)]
    rows = [[c.model, c.task, c.mix, f"{c.tokens_per_row:.1f}", f"{c.epochs:g}", millions(c.tokens.trained),
             millions(c.tokens.scored), f"{c.seconds / 3600:,.2f}"] for c in costs]
    lines += ["", "Per job (real tokens, no padding; scored: dev after every epoch and at the end, then test)",
              text_table(["model", "task", "mix", "tokens/row", "epochs", "trained tokens", "scored tokens",
                          "GPU-hours"], rows)]
    per_task: dict[str, float] = {}
    for c in costs:
        per_task[c.task] = per_task.get(c.task, 0.0) + c.tokens.trained
    seconds = [c.seconds for c in costs]
    speed = ", ".join(f"{'every model' if model == '*' else model} {value:,.0f}" for model, value in found.items())
    lines += ["", "trained tokens per task: " + ", ".join(f"{task} {millions(t)}" for task, t in per_task.items()),
              f"throughput: {speed} training tokens/s per GPU; scoring {options.scoring_speedup:g}x faster",
              f"total: {sum(seconds) / 3600:,.1f} GPU-hours; wall time on {options.gpus} "
              f"GPU{'s' if options.gpus > 1 else ''}: {duration(wall_seconds(seconds, options.gpus))} "
              f"(the longest job: {duration(max(seconds))})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from relevance.runtime import quiet_third_party_logs

    quiet_third_party_logs()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import datasets

    datasets.disable_progress_bars()  # thousands of rows tokenised per table: seconds, no bars needed
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        options, train_overrides = split_arguments(list(sys.argv[1:] if argv is None else argv))
        costs, found = cost_grid(options, train_overrides)
    except (ConfigError, ValueError, KeyError, FileNotFoundError, HydraException, OmegaConfBaseException) as error:
        raise SystemExit(f"relevance.grid_cost: {error}") from None
    print(report(costs, found, options, train_overrides))


if __name__ == "__main__":
    main()
