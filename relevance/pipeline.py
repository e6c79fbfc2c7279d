"""One run: data → augmentation mix → model → fine-tune → evaluate → log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from transformers import set_seed

from relevance.artifacts import MODEL_ARTIFACT, fetch_init_adapter, save_model_folder
from relevance.augment.mix import MixResult, augment_context, build_training_mix
from relevance.data.lineage import RunLineage
from relevance.data.loading import Splits, load_splits
from relevance.data.splits import languages
from relevance.evaluation.dev_scoring import DevScorer
from relevance.evaluation.oof import oof_frame, write_oof
from relevance.evaluation.roles import RunEvaluation, evaluate_run, write_evaluation
from relevance.evaluation.threshold import ThresholdPolicy
from relevance.modeling.batching import eval_token_budget
from relevance.modeling.heads import head_class
from relevance.modeling.inputs import collator, encode_table
from relevance.modeling.loader import load_for_training
from relevance.runtime import expect_new_head
from relevance.tracking.fold_reader import TrackedFoldRuns
from relevance.tracking.mlflow_run import TrackedRun, config_params, run_name_from_overrides
from relevance.tracking.runs import PURPOSE_TAG, purpose_of
from relevance.tracking.trainer_callback import MlflowMetricsCallback
from relevance.tracking.training_run import open_training_run
from relevance.training.checkpoints import Checkpoints
from relevance.training.compile_choice import choose_compile, planned_optimizer_steps
from relevance.training.losses import class_weights
from relevance.training.step_rate import StepRate
from relevance.training.trainer import RelevanceTrainer, training_arguments

log = logging.getLogger(__name__)

@dataclass
class RunContext:
    """What Hydra knows about this job (the entry point fills it in)."""

    output_dir: Path
    overrides: list[str] = field(default_factory=list)
    hydra_dir: Path | None = None  # the job's .hydra/ folder


@dataclass
class RunResult:
    run_id: str
    metrics: dict[str, float]
    threshold: float


def run_training(cfg: DictConfig, context: RunContext) -> RunResult:
    set_seed(cfg.seed)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    context.output_dir.mkdir(parents=True, exist_ok=True)
    run_name = cfg.tracking.run_name or run_name_from_overrides(context.overrides, cfg)
    # a new MLflow run, or the KILLED run of the same identity continued from its last checkpoint
    with open_training_run(cfg, run_name, context.output_dir) as (run, checkpoints):
        run.set_tags({PURPOSE_TAG: purpose_of(cfg.model.source)})  # `run=latest` passes over smoke runs
        _log_config(run, cfg, context)
        splits = load_splits(cfg.data, cfg.task)
        train_languages = languages(splits.train)
        context_for_strategies = augment_context(cfg, splits.train, train_languages, splits.evaluation_languages(),
                                                 runs=TrackedFoldRuns(cfg.tracking.tracking_uri))
        mix = build_training_mix(cfg.augment, context_for_strategies)
        # e.g. the English pivot, on the dev and test side
        lineage_splits = (splits.dev, splits.test)  # as read: lineage names rows by what the files say
        splits.transform_evaluation_inputs(lambda table: mix.transform_inputs(table, context_for_strategies))
        _log_data(run, cfg, splits, mix, train_languages, context.output_dir, lineage_splits)
        result = _fine_tune_and_evaluate(run, cfg, context, splits, mix, train_languages, checkpoints)
    return result


def _log_config(run: TrackedRun, cfg: DictConfig, context: RunContext) -> None:
    run.log_params(config_params(cfg))
    resolved = context.output_dir / "resolved_config.yaml"
    resolved.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    run.log_artifact(resolved, "config")
    if context.hydra_dir and context.hydra_dir.is_dir():
        run.log_artifacts(context.hydra_dir, "config/.hydra")


def _log_data(run: TrackedRun, cfg: DictConfig, splits: Splits, mix: MixResult, train_languages: list[str],
              context_dir: Path, evaluation_rows: tuple) -> None:
    """The run's rows: counts, the mix's composition, its lineage (which rows it trains, tunes and reports
    on: relevance.data.lineage), and the tables as MLflow datasets."""
    unseen = sorted(set(splits.evaluation_languages()) - set(train_languages))
    if splits.fold is not None:
        run.log_params({"data.pool_rows": splits.fold.pool_rows,
                        "data.pool_paths": ",".join(str(p) for p in splits.fold.pool_paths)})
    run.log_params({
        "data.train_path": str(splits.train_path), "data.dev_path": str(splits.dev_path),
        "data.test_path": str(splits.test_path or "none"), "data.test_rows": len(splits.test or []),
        "data.train_rows": len(splits.train), "data.dev_rows": len(splits.dev), "data.mix_rows": len(mix.table),
        "data.null_targets": splits.null_targets, "data.train_languages": ",".join(train_languages),
        "data.unseen_languages": ",".join(unseen) or "none",
    })
    run.log_params(splits.query_overlap_params())  # dev/test rows whose query training has (data.query_overlap)
    run.log_metrics(splits.query_overlap_metrics())
    run.log_metrics({"data_null_targets": splits.null_targets, "data_mix_rows": len(mix.table),
                     "data_mix_positive_rate": float(np.mean(mix.table["label"]))})
    for stats in mix.stats:
        run.log_metrics({f"augment_{stats.name}_rows": stats.rows_added,
                         f"augment_{stats.name}_seconds": stats.seconds,
                         **{f"augment_{stats.name}_{key}": value for key, value in stats.counters.items()}})
        for file_name, value in stats.artifacts.items():  # e.g. translation_checks.json: pairs to read
            run.log_dict(value, f"augment/{stats.name}/{file_name}")
    dev_rows, test_rows = evaluation_rows
    lineage = RunLineage.of(train=mix.rows_trained_on, dev=dev_rows, test=test_rows)
    run.set_tags(lineage.summary_tags())
    run.log_artifact(lineage.write(context_dir / "data"), "data")
    run.log_table(mix.composition(), "data/mix_composition.json")
    run.log_dict({s.name: s.by_language_label for s in mix.stats}, "data/augment_rows_by_language_label.json")
    if cfg.tracking.log_datasets:
        run.log_dataset(mix.table.to_pandas(), f"{cfg.task.key}-train-mix", str(splits.train_path), "training")
        run.log_dataset(splits.dev.to_pandas(), f"{cfg.task.key}-dev", str(splits.dev_path), "eval")
        if splits.test is not None:
            run.log_dataset(splits.test.to_pandas(), f"{cfg.task.key}-test", str(splits.test_path), "test")


def _fine_tune_and_evaluate(run: TrackedRun, cfg: DictConfig, context: RunContext, splits: Splits,
                            mix: MixResult, train_languages: list[str], checkpoints: Checkpoints) -> RunResult:
    started = time.perf_counter()
    set_seed(cfg.seed)  # heads and LoRA start the same whatever ran before (cache misses, augmentation)
    init_adapter = fetch_init_adapter(cfg, context.output_dir / "init_adapter") if cfg.model.init_adapter else None
    new_modules = head_class(cfg.head.name).new_modules(cfg.model)
    if new_modules:
        expect_new_head(new_modules)  # transformers' MISSING report of them, replaced by:
        log.info("%s head `%s`: %s, trained in full with the LoRA adapter", cfg.head.name, ", ".join(new_modules),
                 "restored from model.init_adapter" if init_adapter else "new (random weights)")
    loaded = load_for_training(cfg, init_adapter)
    run.set_tags({"model.source_digest": loaded.source.digest})
    run.log_metrics({"model_load_seconds": time.perf_counter() - started,
                     "model_converted_now": float(loaded.source.converted_now)})
    run.log_params({"quant.compute_dtype_resolved": str(loaded.compute_dtype).removeprefix("torch.")})
    run.set_tags({"relevance.compute_dtype_reason": loaded.compute_dtype_reason})
    encode = lambda table: encode_table(table, loaded.tokenizer, cfg.task, cfg.head, cfg.model.max_length)  # noqa: E731
    train_encoded, dev_encoded = encode(mix.table), encode(splits.dev)
    labels = np.asarray(splits.dev["label"])
    dev_scorer = DevScorer(loaded, dev_encoded, labels, cfg.trainer.eval_batch_size, eval_token_budget(cfg.trainer),
                           log_metrics=lambda metrics, step: run.log_metrics(metrics, step=step))
    compiling = choose_compile(cfg.trainer, planned_optimizer_steps(cfg.trainer, train_encoded["length"]),
                               on_gpu=torch.cuda.is_available(), quantized_bits=cfg.quant.bits)
    run.log_params({"trainer.compile_chosen": compiling.compile, "trainer.planned_steps": compiling.planned_steps})
    run.set_tags({"relevance.compile_reason": compiling.reason})
    log.info("torch.compile %s (%s)", "on" if compiling.compile else "off", compiling.reason)
    args = training_arguments(cfg.trainer, str(checkpoints.folder), cfg.seed, loaded.compute_dtype)
    trainer = RelevanceTrainer(
        model=loaded.model, args=args, train_dataset=train_encoded,
        data_collator=collator(loaded.tokenizer), processing_class=loaded.tokenizer,
        callbacks=[MlflowMetricsCallback(run), dev_scorer, StepRate(run.log_metrics, compiling.compile)],
        head=loaded.head, class_weights=class_weights(cfg.trainer.class_weights, mix.table["label"]),
        compile_layers=compiling.compile,
    )
    trainer.train(resume_from_checkpoint=str(checkpoints.resume_from) if checkpoints.resume_from else None)
    run.training_finished()  # from here, what the store refuses waits on disk (relevance.tracking.pending)

    scores = {"dev": dev_scorer.final_scores(trainer.state.global_step)}
    if splits.test is not None:  # scored once, after training: reported, never tuned on
        scores["test"] = dev_scorer.score_table(encode(splits.test))
    evaluation = evaluate_run(ThresholdPolicy.from_config(cfg.evaluation), splits.evaluation_tables(), scores,
                              train_languages)
    metrics = evaluation.metrics
    metrics["train_seconds"] = time.perf_counter() - started
    run.log_metrics(metrics, step=trainer.state.global_step)

    _save_model(run, cfg, context, loaded, evaluation, train_languages)
    eval_dir = write_evaluation(evaluation, context.output_dir / "evaluation")
    if splits.fold is not None:  # this fold's dev rows, scored by the model that never trained on them
        write_oof(oof_frame(splits.dev, scores["dev"], splits.fold.fold), eval_dir)
    run.log_artifacts(eval_dir, "evaluation")
    return RunResult(run.run_id, metrics, evaluation.thresholds.global_threshold)


def _save_model(run: TrackedRun, cfg, context, loaded, evaluation: RunEvaluation, train_languages: list[str]) -> None:
    """Adapter (with the classifier head) or full model, tokenizer, thresholds and the
    config needed to rebuild the base: everything `relevance.predict` loads; and the SHA-256 of each of
    those files (`model/digests.json`, itself digested in the tag `relevance.model_digest`), which
    whatever loads the folder back checks first (relevance/model_digests.py)."""
    from relevance.model_digests import MODEL_DIGEST_TAG, write_digests

    model_dir = save_model_folder(context.output_dir / MODEL_ARTIFACT, cfg, loaded, evaluation.thresholds,
                                  evaluation.policy, "dev_f1", evaluation.metrics["dev_f1"], train_languages)
    model_digest = write_digests(model_dir)
    if cfg.tracking.log_adapter:
        run.log_artifacts(model_dir, MODEL_ARTIFACT)
        run.set_tags({"relevance.has_model": "true", MODEL_DIGEST_TAG: model_digest})
