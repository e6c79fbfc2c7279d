"""Typed schemas for the Hydra configs, registered in Hydra's ConfigStore.

`conf/train.yaml` starts its defaults list with `train_schema`, so every group
option (model, quant, head, ...) merges into a typed node: an unknown key or a
value of the wrong type fails at compose time, before any model loads.
`predict_schema` types `conf/predict.yaml` the same way. Two groups keep their
schema beside their code (`relevance.modeling.model_config.ModelConfig`,
`relevance.augment.translator_config.TranslatorConfig`); this module composes them.
Cross-field rules live in `relevance.config.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from relevance.augment.translator_config import TranslatorConfig
from relevance.modeling.model_config import ModelConfig


COMPETITION_LANGUAGES = ("ar", "de", "en", "es", "fr", "id", "it", "ja", "ko", "pl", "pt", "th", "vi")


@dataclass
class TaskNegativesConfig:
    # What makes two targets related, for negatives: a name registered in relevance/augment/negatives.py.
    # The default, word tokens shared with the positives or the query, suits any short text target.
    related_by: str = "title_tokens"
    # Candidates that are never a negative of a query with a known positive, whatever their similarity: a
    # name registered in relevance/augment/negatives.py (`category_family`: an ancestor, descendant or
    # sibling of a positive category path), or null for none.
    never_negative: Optional[str] = None


@dataclass
class TaskConfig:
    """A task is its YAML (`conf/task/<key>.yaml`): nothing in the code names QC or QI."""

    name: str = MISSING  # the `task` value of the data files' rows, e.g. QC
    key: str = MISSING  # lower-case name used in file names, experiment names and the `task=` option
    target_field: str = MISSING  # the data files' field the query is matched against, e.g. category_path
    prompt: str = MISSING  # template with {query} and {target}
    pivot_prompt: str = "\nQuery in English: {pivot}"  # inserted after the query when rows carry a pivot
    demo_targets: Optional[str] = None  # what data=demo pairs queries with: category_paths | item_titles
    negatives: TaskNegativesConfig = field(default_factory=TaskNegativesConfig)  # for easy_neg, balance


@dataclass
class DemoDataConfig:
    seed: int = 0
    train_rows: int = 480
    dev_rows: int = 480


@dataclass
class DataConfig:
    """Three roles for rows: train; dev (threshold, selection); test (reporting only)."""

    name: str = MISSING
    dir: Optional[str] = None
    train_file: str = MISSING
    dev_file: Optional[str] = None  # null: split the training file, grouped by query
    dev_fraction: float = 0.2
    test_file: Optional[str] = None  # a labelled file scored only for reporting (test_* metrics)
    test_fraction: Optional[float] = None  # or carve this share of dev as test (grouped by query); null: no test
    seed: int = 42  # fixes the splits, subsamples and augmentation mix, whatever the model's `seed` (42: as before)
    # k-fold: the training pool (training file + the dev file's non-test rows) in `folds` query-grouped folds,
    # fold `fold` as dev; null: no folds (dev from dev_file or dev_fraction)
    folds: Optional[int] = None
    fold: Optional[int] = None
    null_target: str = "drop"  # drop | empty | error
    # dev/test rows whose (case/space-folded) query occurs among the training rows: drop (counted, warned) |
    # keep (counted) | error (relevance/data/overlap.py)
    query_overlap: str = "drop"
    max_train_rows: Optional[int] = None  # stratified subsample, for CPU runs
    max_dev_rows: Optional[int] = None
    max_test_rows: Optional[int] = None
    generate: Optional[DemoDataConfig] = None  # only the embedded demo data sets this
    # Language codes a row may carry (the competition's 13); null accepts any well-formed code.
    languages: Optional[list[str]] = field(default_factory=lambda: list(COMPETITION_LANGUAGES))


@dataclass
class QuantConfig:
    name: str = MISSING
    bits: Optional[int] = None  # 4, 8, or null for no quantization
    quant_type: Optional[str] = None  # nf4 | fp4 (4-bit only)
    double_quant: Optional[bool] = None  # 4-bit only
    compute_dtype: str = "auto"  # auto: bf16 on a bf16-capable GPU, fp32 on CPU


@dataclass
class PeftConfig:
    name: str = MISSING
    r: Optional[int] = None
    alpha: Optional[int] = None
    dropout: Optional[float] = None
    target_modules: Any = None
    # decoder layers (0-based indices) whose target modules get LoRA; null: every layer. Training back-propagates
    # only down to the lowest one listed, so LoRA on the top layers only makes every step cheaper
    layers_to_transform: Optional[list[int]] = None


@dataclass
class HeadConfig:
    name: str = MISSING  # classifier | yes_no
    padding_side: str = "right"
    answer_suffix: Optional[str] = None  # yes_no: appended after the prompt, never truncated
    positive_token: Optional[str] = None  # yes_no: the single token that means "relevant"
    negative_token: Optional[str] = None


@dataclass
class TrainerConfig:
    name: str = MISSING
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    eval_batch_size: int = 32
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: str = "linear"
    class_weights: Any = None  # null | balanced | [w_negative, w_positive]
    group_by_length: bool = True
    batching: str = "rows"  # rows: batch_size rows per batch | tokens: rows x longest row <= max_tokens_per_batch
    max_tokens_per_batch: Optional[int] = None  # batching=tokens: padded-token budget of a training batch
    eval_max_tokens_per_batch: Optional[int] = None  # batching=tokens: of evaluation/scoring batches (null: same)
    gradient_checkpointing: bool = False
    # the training model through torch.compile (scoring: dev, test, predict stays eager): true | false | auto
    # (auto: compile on CPU when the run trains at least compile_min_steps optimizer steps; relevance.training.compile_choice)
    torch_compile: Any = "auto"
    compile_min_steps: int = 300
    logging_steps: int = 10
    save_checkpoints: bool = True  # resumable checkpoints (weights, optimizer, scheduler, RNG, step)
    checkpoint_every_steps: Optional[int] = None  # every N optimizer steps; null: at each epoch's end
    checkpoints_kept: int = 2  # the newest N; older ones are deleted, all of them once the run finishes
    num_threads: Optional[int] = None  # torch CPU threads; null: torch's default


@dataclass
class EvaluationConfig:
    threshold: str = "global"  # global | per_language: tuned on dev F1, applied unchanged to test and by predict
    min_rows_per_language: int = 50  # per_language: fewer dev rows (or one label) → the global threshold
    # true: let the runs this run builds on (model.init_adapter, augment.noise_filter.oof_from) have trained on
    # its dev or test rows (checked before anything loads: relevance.tracking.lineage_checks); false refuses them
    allow_seen_rows: bool = False


@dataclass
class TrackingConfig:
    tracking_uri: str = MISSING
    experiment_name: str = MISSING
    artifact_location: Optional[str] = None
    run_name: Optional[str] = None  # null: built from the command-line overrides
    log_adapter: bool = True
    log_datasets: bool = True
    resume: bool = True  # multirun only: skip a job whose identity (config, data, code, numerics) has a FINISHED run
    # Continue the KILLED run of the same identity (or one whose process vanished) from its last checkpoint.
    resume_killed: bool = True
    heartbeat_seconds: float = 30.0  # a running run's `relevance.heartbeat` tag is refreshed this often
    stale_after_seconds: float = 300.0  # a RUNNING run silent this long has vanished (kill -9, node loss)
    # A store locked by another process: each call tried again this many times, waiting store_retry_seconds,
    # doubled after each try (relevance.tracking.store_retry; docs/failures.md)
    store_retries: int = 5
    store_retry_seconds: float = 2.0
    # Signals that stop a run as KILLED after a checkpoint: SIGTERM (timeout, SLURM, Kubernetes), SIGUSR1
    # (SLURM's pre-timeout signal with `#SBATCH --signal=USR1@120`).
    stop_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1"])
    # MLflow system metrics (system/cpu_utilization_percentage, memory; GPU with nvidia-ml-py) every N seconds
    system_metrics: bool = True
    system_metrics_interval_s: float = 5.0


@dataclass
class PathsConfig:
    root: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class TrainConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    augment: dict[str, Any] = field(default_factory=dict)
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 42  # model initialisation, data order, dropout (data.seed fixes the rows)


@dataclass
class PredictConfig:
    # an MLflow run id, "latest" (the newest finished run with a model), or a fold ensemble: a list of
    # fold runs' ids ([id1,id2]) or a sweep parent's id (its finished children)
    run: Any = "latest"
    input: str = MISSING
    output: str = MISSING
    task: Optional[TaskConfig] = None  # task=<key>: run=latest picks that task's newest run; null: any task
    batch_size: Optional[int] = None  # null: as the run's final scoring batched (reproduces its scores exactly)
    null_target: str = "empty"
    compute_dtype: Optional[str] = None  # null: the dtype the run trained in; float32|bfloat16|float16: override
    allow_partial_folds: bool = False  # a fold ensemble averages all K folds; true: the folds named, even fewer
    trust_remote_code: bool = False  # true: run the remote code a run's backbone/model folder names (never from the store)
    allow_unverified: bool = False  # true: load a run logged before model digests (model/digests.json), unverified
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="predict_schema", node=PredictConfig)
    from relevance.augment.base import register_strategy_schemas
    from relevance.resolvers import register_resolvers

    register_resolvers()  # ${short_id:}: run folders unique per run, not per second

    register_strategy_schemas()  # augment_schema/<name>: each strategy's options, named by conf/augment/<name>.yaml
