"""Typed schemas for the Hydra configs, registered in Hydra's ConfigStore.

`conf/train.yaml` starts its defaults list with `train_schema`, so every group
option (model, quant, head, ...) merges into a typed node: an unknown key or a
value of the wrong type fails at compose time, before any model loads.
Cross-field rules (what only makes sense together) live in `validate_config`,
which every entry point calls right after composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from relevance.augment.translator import backend_names, template_problem
from relevance.augment.translator_config import TranslatorConfig
from relevance.evaluation.threshold_modes import THRESHOLD_MODES
from relevance.modeling.heads import head_class, head_names
from relevance.modeling.model_config import ModelConfig
from relevance.modeling.sources import source_names


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
    torch_compile: bool = False  # the training model through torch.compile; scoring (dev, test, predict) stays eager
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


class ConfigError(ValueError):
    """A composed config asks for something that cannot work; the message says what to change."""


NULL_TARGET_POLICIES = ("drop", "empty", "error")


def check_keys_against_schema(cfg: DictConfig, schema: type) -> None:
    """Every key of `cfg` is one the schema knows. Hydra lets `+group.key=value` add a key to a
    typed node (`+trainer.lr_rate=1`, what its own error message suggests after a typo); such a
    key is read by nothing, so it fails here, before any work, naming the key."""
    from omegaconf.errors import ConfigKeyError

    try:
        OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(cfg, resolve=False))
    except ConfigKeyError as error:
        key = getattr(error, "full_key", None) or str(error)
        raise ConfigError(f"unknown config key {key}: no code reads it (a typo?); "
                          f"remove it or use a key the schema of that group lists") from None


def validate_config(cfg: DictConfig) -> None:
    """Unknown keys, then cross-field checks that a schema cannot express. Raises ConfigError
    listing every problem."""
    check_keys_against_schema(cfg, TrainConfig)
    problems = list(_problems(cfg))
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _problems(cfg: DictConfig):
    yield from _task_problems(cfg)
    if cfg.model.source not in source_names():
        yield f"model.source={cfg.model.source!r}: use one of {source_names()}"
    if cfg.model.source == "tiny_random" and cfg.model.tiny is None:
        yield "model.source=tiny_random needs model.tiny (the tiny model's dimensions)"
    if cfg.model.source == "gguf_package" and not cfg.model.gguf_file:
        yield "model.source=gguf_package needs model.gguf_file (the GGUF file name inside the package)"
    if cfg.data.dev_file is None and cfg.data.folds is None and not 0 < cfg.data.dev_fraction < 1:
        yield f"data.dev_fraction={cfg.data.dev_fraction}: must be between 0 and 1 when data.dev_file is null"
    yield from _test_split_problems(cfg.data)
    yield from _fold_problems(cfg.data)
    if cfg.model.init_adapter is not None:
        yield from _init_adapter_problems(cfg)
    yield from _evaluation_problems(cfg.evaluation)
    for key in ("max_train_rows", "max_dev_rows", "max_test_rows"):
        if cfg.data[key] is not None and cfg.data[key] < 1:
            yield f"data.{key}={cfg.data[key]}: must be a positive number of rows, or null for all"
    if cfg.data.null_target not in NULL_TARGET_POLICIES:
        yield f"data.null_target={cfg.data.null_target!r}: use one of {NULL_TARGET_POLICIES}"
    yield from _query_overlap_problems(cfg.data)
    yield from _demo_data_problems(cfg)
    if cfg.data.generate is None and not cfg.data.dir:
        yield f"data={cfg.data.name} needs data.dir=PATH (the folder holding the JSON-lines files)"
    yield from _quant_peft_problems(cfg)
    yield from _head_problems(cfg)
    yield from _trainer_problems(cfg)
    yield from _tracking_problems(cfg.tracking)
    if not cfg.augment:
        yield "augment is empty: choose at least one strategy, e.g. augment=[original]"
    yield from _augment_problems(cfg)
    yield from translator_problems(cfg.translator)


def translator_problems(translator: DictConfig, prefix: str = "translator"):
    """What cannot work in a translator config, each naming its key."""
    if translator.backend not in backend_names():
        yield f"{prefix}.backend={translator.backend!r}: use one of {backend_names()}"
    if translator.source not in source_names():
        yield f"{prefix}.source={translator.source!r}: use one of {source_names()}"
    if translator.source == "tiny_random" and translator.tiny is None:
        yield f"{prefix}.source=tiny_random needs {prefix}.tiny (the tiny model's architecture and dimensions)"
    if translator.source == "gguf_package" and not translator.gguf_file:
        yield f"{prefix}.source=gguf_package needs {prefix}.gguf_file (the GGUF file name inside the package)"
    for key in ("batch_size", "num_beams", "max_new_tokens", "max_input_tokens"):
        if translator[key] < 1:
            yield f"{prefix}.{key}={translator[key]}: must be at least 1"
    if translator.backend in ("seq2seq", "ctranslate2"):
        if not translator.target_language_token:
            yield (f"{prefix}.backend={translator.backend} needs {prefix}.target_language_token, e.g. '{{flores}}' "
                   "(NLLB) or '<2{iso}>' (MADLAD-400)")
        if translator.target_language_as not in ("forced_bos", "source_prefix"):
            yield f"{prefix}.target_language_as={translator.target_language_as!r}: use forced_bos or source_prefix"
        for key in ("source_language_token", "target_language_token"):
            problem = template_problem(translator[key], "language")
            if problem:
                yield f"{prefix}.{key}={translator[key]!r}: {problem}"
    if translator.backend == "causal_lm":
        if not translator.prompt:
            yield f"{prefix}.backend=causal_lm needs {prefix}.prompt (a template with {{text}} and {{target_name}})"
        for key, template in [("prompt", translator.prompt), ("example", translator.example),
                              *((f"prompts.{pair}", text) for pair, text in translator.prompts.items())]:
            problem = template_problem(template, "prompt" if key != "example" else "example")
            if problem:
                yield f"{prefix}.{key}: {problem}"
        for pair in translator.prompts:
            problem = template_problem(pair, "pair")
            if problem:
                yield f"{prefix}.prompts has key {pair!r}: {problem}"
        lengths = {len(phrases) for phrases in translator.examples.values()}
        if len(lengths) > 1:
            yield f"{prefix}.examples: every language needs the same number of phrases (parallel), got {sorted(lengths)}"
        if not translator.max_length_ratio > 0:
            yield f"{prefix}.max_length_ratio={translator.max_length_ratio}: must be positive"
    checks = translator.checks
    if not 0 <= checks.min_length_ratio < checks.max_length_ratio:
        yield (f"{prefix}.checks.min_length_ratio={checks.min_length_ratio}, max_length_ratio="
               f"{checks.max_length_ratio}: need 0 <= min < max")
    if checks.language_top_k < 1:
        yield f"{prefix}.checks.language_top_k={checks.language_top_k}: must be at least 1"
    if checks.sample_size < 0:
        yield f"{prefix}.checks.sample_size={checks.sample_size}: must be 0 or more"


def _test_split_problems(data: DictConfig):
    if data.test_file and data.test_fraction is not None:
        yield (f"data.test_file={data.test_file} and data.test_fraction={data.test_fraction}: the test rows come "
               "from one of them; add data.test_fraction=null to use the file")
    if data.test_fraction is not None and not 0 < data.test_fraction < 1:
        yield f"data.test_fraction={data.test_fraction}: the share of dev carved as test, between 0 and 1 (or null)"


def _query_overlap_problems(data: DictConfig):
    from relevance.data.overlap import QUERY_OVERLAP_POLICIES

    if data.query_overlap not in QUERY_OVERLAP_POLICIES:
        yield (f"data.query_overlap={data.query_overlap!r}: use one of {QUERY_OVERLAP_POLICIES} (what to do with dev "
               "and test rows whose query also occurs among the training rows; drop is the default)")


def _fold_problems(data: DictConfig):
    folds, fold = data.folds, data.fold
    if folds is None:
        if fold is not None:
            yield f"data.fold={fold} needs data.folds (how many folds), e.g. data.folds=5 data.fold={fold}"
        return
    if folds < 2:
        yield f"data.folds={folds}: k-fold needs at least 2 folds (or null for none)"
    if fold is None or not 0 <= fold < max(folds, 1):
        yield (f"data.fold={fold}: with data.folds={folds} choose the dev fold, 0 to {folds - 1} "
               f"(a sweep over all of them: experiment=folds)")
    if data.max_dev_rows is not None:
        yield (f"data.max_dev_rows={data.max_dev_rows} with data.folds={folds}: dev is a fold of the training pool, "
               "so every pool row gets one out-of-fold score; cap the pool with data.max_train_rows instead")
    if data.dev_file is None and data.test_fraction is not None and not data.test_file:
        yield (f"data.folds={folds} with data.dev_file=null and data.test_fraction={data.test_fraction}: the test "
               "rows are carved from the dev file, and with folds every fold has its own dev; keep a dev file "
               "(data.dev_file=...) or give the test rows a file (data.test_file=...), or data.test_fraction=null")


def _demo_data_problems(cfg: DictConfig):
    """Generated demo data is written under the cache only: a data.dir naming the user's own folder would
    have the generator write (and overwrite) files there and train on generated rows."""
    if cfg.data.generate is None:
        return
    raw = OmegaConf.to_container(cfg.data, resolve=False).get("dir")
    if not raw or str(raw).startswith("${paths.cache_dir}"):  # the preset's own folder, under the cache
        return
    from pathlib import Path

    folder, cache = Path(str(cfg.data.dir)).expanduser().resolve(), Path(str(cfg.paths.cache_dir)).resolve()
    if folder != cache and cache not in folder.parents:
        yield (f"data.dir={cfg.data.dir} with data={cfg.data.name}: the demo data is generated under the cache "
               f"({cache}), never in a folder of yours; to train on the files in {cfg.data.dir}, use "
               f"data=competition data.dir={cfg.data.dir}")


def _init_adapter_problems(cfg: DictConfig):
    if not str(cfg.model.init_adapter).strip():
        yield "model.init_adapter is empty: give a logged run's id, or null to start LoRA and the head afresh"
    if cfg.peft.name != "lora":
        yield (f"model.init_adapter={cfg.model.init_adapter} needs peft=lora: it starts LoRA and the head "
               "from that run's saved adapter")


def _evaluation_problems(evaluation: DictConfig):
    if evaluation.threshold not in THRESHOLD_MODES:
        yield f"evaluation.threshold={evaluation.threshold!r}: use one of {THRESHOLD_MODES}"
    if evaluation.min_rows_per_language < 1:
        yield f"evaluation.min_rows_per_language={evaluation.min_rows_per_language}: must be at least 1"


def _task_problems(cfg: DictConfig):
    task = cfg.task
    for key in ("name", "key", "target_field"):
        if not str(task[key]).strip():
            yield f"task.{key} is empty: set it in conf/task/<your task>.yaml"
    for slot in ("{query}", "{target}"):
        if slot not in task.prompt:
            yield f"task.prompt has no {slot}: the template must show both the query and the target"
    never = task.negatives.never_negative
    if never is not None:
        from relevance.augment.negatives import NEVER_NEGATIVE

        if never not in NEVER_NEGATIVE:
            yield (f"task.negatives.never_negative={never!r}: use one of {sorted(NEVER_NEGATIVE)} or null "
                   "(or register one with @never_negative in relevance/augment/negatives.py)")
    if cfg.data.generate is not None:
        from relevance.data.demo import TARGET_KINDS

        if task.demo_targets not in TARGET_KINDS:
            yield (f"data=demo makes {' or '.join(TARGET_KINDS)}, and task {task.name} sets "
                   f"task.demo_targets={task.demo_targets}: use data=competition data.dir=PATH for this task")


def _augment_problems(cfg: DictConfig):
    from relevance.augment.base import StrategyOptionsError, known_strategies, strategy_options

    known = known_strategies()
    for name in cfg.augment:
        if name not in known:
            yield (f"augment has {name!r}, which no module registers: add @register({name!r}) in "
                   f"relevance/augment/<module>.py (known: {', '.join(known)})")
            continue
        moved = [key for key in ("model", "revision", "batch_size", "num_beams", "max_new_tokens", "device")
                 if name in ("translated", "pivot", "to_english") and key in (cfg.augment[name] or {})]
        if moved:
            yield (f"augment.{name}.{moved[0]}: the translator's settings moved to the translator group: "
                   f"use translator.{moved[0]}=... (or translator=<one of conf/translator/>)")
            continue
        try:
            strategy_options(name, cfg.augment[name])  # also what compose lets through: +augment.<name>.<new key>
        except StrategyOptionsError as error:
            yield str(error)


def _quant_peft_problems(cfg: DictConfig):
    bits = cfg.quant.bits
    if bits not in (None, 4, 8):
        yield f"quant.bits={bits}: use 4, 8 or null"
    if bits is not None and cfg.peft.name == "none":
        yield (f"quant={cfg.quant.name} needs peft=lora: a {bits}-bit base cannot be trained in full "
               "(or use quant=none to fine-tune every weight)")
    if bits == 4 and cfg.quant.quant_type not in ("nf4", "fp4"):
        yield f"quant.quant_type={cfg.quant.quant_type!r}: 4-bit needs nf4 or fp4"
    if cfg.quant.compute_dtype not in ("auto", "float32", "bfloat16", "float16"):
        yield f"quant.compute_dtype={cfg.quant.compute_dtype!r}: use auto, float32, bfloat16 or float16"
    if cfg.peft.name == "lora":
        if not cfg.peft.r or cfg.peft.r < 1:
            yield f"peft.r={cfg.peft.r}: LoRA rank must be a positive integer"
        if not cfg.peft.target_modules:
            yield "peft.target_modules is empty: set model.lora_target_modules in the model's YAML"
    elif cfg.peft.name != "none":
        yield f"peft.name={cfg.peft.name!r}: use lora or none"


def _head_problems(cfg: DictConfig):
    head = cfg.head
    if head.padding_side not in ("left", "right"):
        yield f"head.padding_side={head.padding_side!r}: use left or right"
    if head.name not in head_names():
        yield f"head.name={head.name!r}: use one of {head_names()}"
    else:
        yield from head_class(head.name).problems(head)


def _trainer_problems(cfg: DictConfig):
    if cfg.trainer.batching not in ("rows", "tokens"):
        yield f"trainer.batching={cfg.trainer.batching!r}: use rows or tokens"
    elif cfg.trainer.batching == "tokens" and not (cfg.trainer.max_tokens_per_batch or 0) >= 1:
        yield "trainer.batching=tokens needs trainer.max_tokens_per_batch (padded tokens per batch, e.g. 512)"
    weights = cfg.trainer.class_weights
    if weights is not None and weights != "balanced":
        if not isinstance(weights, (list, ListConfig)) or len(weights) != 2:
            yield (f"trainer.class_weights={weights!r}: use null, balanced, "
                   "or [weight_of_label_0, weight_of_label_1]")
            weights = None
    if weights is not None:
        from relevance.training.losses import class_weight_problems

        yield from class_weight_problems(weights, list(cfg.augment.keys()))
    for key in ("batch_size", "eval_batch_size", "grad_accum"):
        if cfg.trainer[key] < 1:
            yield f"trainer.{key}={cfg.trainer[key]}: must be at least 1"
    if not cfg.trainer.lr > 0:
        yield f"trainer.lr={cfg.trainer.lr}: the learning rate must be positive"
    if cfg.trainer.weight_decay < 0:
        yield f"trainer.weight_decay={cfg.trainer.weight_decay}: must be 0 or more"
    if cfg.trainer.logging_steps < 1:
        yield f"trainer.logging_steps={cfg.trainer.logging_steps}: must be at least 1"
    if not 0 <= cfg.trainer.warmup_ratio < 1:
        yield f"trainer.warmup_ratio={cfg.trainer.warmup_ratio}: must be in [0, 1)"
    if cfg.trainer.epochs <= 0 and cfg.trainer.max_steps <= 0:
        yield "trainer.epochs or trainer.max_steps must be positive"
    every = cfg.trainer.checkpoint_every_steps
    if every is not None and every < 1:
        yield f"trainer.checkpoint_every_steps={every}: must be at least 1, or null for each epoch's end"
    if cfg.trainer.checkpoints_kept < 1:
        yield f"trainer.checkpoints_kept={cfg.trainer.checkpoints_kept}: must be at least 1"


def _tracking_problems(tracking: DictConfig):
    import signal

    unknown = [name for name in tracking.stop_signals if name not in signal.Signals.__members__]
    if unknown:
        yield f"tracking.stop_signals has {unknown}: use signal names such as SIGTERM, SIGUSR1"
    if not 0 < tracking.heartbeat_seconds < tracking.stale_after_seconds:
        yield (f"tracking.heartbeat_seconds={tracking.heartbeat_seconds}, stale_after_seconds="
               f"{tracking.stale_after_seconds}: the heartbeat must be positive and more frequent than "
               "the staleness limit (e.g. 30 and 300)")
    if tracking.system_metrics and not tracking.system_metrics_interval_s > 0:
        yield (f"tracking.system_metrics_interval_s={tracking.system_metrics_interval_s}: must be positive "
               "(e.g. 5), or set tracking.system_metrics=false")
