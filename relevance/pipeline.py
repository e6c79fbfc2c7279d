"""One run: data → augmentation mix → model → fine-tune → evaluate → log."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from transformers import set_seed

from relevance.artifacts import MODEL_ARTIFACT, save_model_folder
from relevance.augment.mix import MixResult, augment_context, build_training_mix
from relevance.data.loading import Splits, load_splits
from relevance.data.splits import languages
from relevance.evaluation import (binary_metrics, evaluation_report, flatten_for_logging, plot_confusion_matrix,
                                  plot_pr_curve, tune_threshold)
from relevance.evaluation.dev_scoring import DevScorer
from relevance.modeling.batching import eval_token_budget
from relevance.modeling.inputs import collator, encode_table
from relevance.modeling.loader import load_for_training
from relevance.tracking.mlflow_run import TrackedRun, config_params, group_tags, run_name_from_overrides
from relevance.tracking.trainer_callback import MlflowMetricsCallback
from relevance.training.losses import class_weights
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
    with TrackedRun(cfg.tracking, run_name, group_tags(cfg)) as run:
        _log_config(run, cfg, context)
        splits = load_splits(cfg.data, cfg.task, cfg.seed)
        train_languages = languages(splits.train)
        context_for_strategies = augment_context(cfg, splits.train, train_languages, languages(splits.dev))
        mix = build_training_mix(cfg.augment, context_for_strategies)
        splits.dev = mix.transform_inputs(splits.dev, context_for_strategies)  # e.g. the English pivot, dev side
        _log_data(run, cfg, splits, mix, train_languages)
        result = _fine_tune_and_evaluate(run, cfg, context, splits, mix, train_languages)
    return result


def _log_config(run: TrackedRun, cfg: DictConfig, context: RunContext) -> None:
    run.log_params(config_params(cfg))
    resolved = context.output_dir / "resolved_config.yaml"
    resolved.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    run.log_artifact(resolved, "config")
    if context.hydra_dir and context.hydra_dir.is_dir():
        run.log_artifacts(context.hydra_dir, "config/.hydra")


def _log_data(run: TrackedRun, cfg: DictConfig, splits: Splits, mix: MixResult, train_languages: list[str]) -> None:
    unseen = sorted(set(languages(splits.dev)) - set(train_languages))
    run.log_params({
        "data.train_path": str(splits.train_path), "data.dev_path": str(splits.dev_path),
        "data.train_rows": len(splits.train), "data.dev_rows": len(splits.dev), "data.mix_rows": len(mix.table),
        "data.null_targets": splits.null_targets, "data.train_languages": ",".join(train_languages),
        "data.unseen_languages": ",".join(unseen) or "none",
    })
    run.log_metrics({"data_null_targets": splits.null_targets, "data_mix_rows": len(mix.table),
                     "data_mix_positive_rate": float(np.mean(mix.table["label"]))})
    for stats in mix.stats:
        run.log_metrics({f"augment_{stats.name}_rows": stats.rows_added,
                         f"augment_{stats.name}_seconds": stats.seconds,
                         **{f"augment_{stats.name}_{key}": value for key, value in stats.counters.items()}})
    run.log_table(mix.composition(), "data/mix_composition.json")
    run.log_dict({s.name: s.by_language_label for s in mix.stats}, "data/augment_rows_by_language_label.json")
    if cfg.tracking.log_datasets:
        run.log_dataset(mix.table.to_pandas(), f"{cfg.task.key}-train-mix", str(splits.train_path), "training")
        run.log_dataset(splits.dev.to_pandas(), f"{cfg.task.key}-dev", str(splits.dev_path), "eval")


def _fine_tune_and_evaluate(run: TrackedRun, cfg: DictConfig, context: RunContext, splits: Splits,
                            mix: MixResult, train_languages: list[str]) -> RunResult:
    started = time.perf_counter()
    set_seed(cfg.seed)  # heads and LoRA start the same whatever ran before (cache misses, augmentation)
    loaded = load_for_training(cfg)
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
    args = training_arguments(cfg.trainer, str(context.output_dir / "checkpoints"), cfg.seed, loaded.compute_dtype)
    trainer = RelevanceTrainer(
        model=loaded.model, args=args, train_dataset=train_encoded,
        data_collator=collator(loaded.tokenizer), processing_class=loaded.tokenizer,
        callbacks=[MlflowMetricsCallback(run), dev_scorer],
        head=loaded.head, class_weights=class_weights(cfg.trainer.class_weights, mix.table["label"]),
    )
    trainer.train()

    scores = dev_scorer.final_scores(trainer.state.global_step)
    threshold, _ = tune_threshold(labels, scores)
    report = evaluation_report(labels, scores, splits.dev["language"], threshold, train_languages)
    metrics = flatten_for_logging(report, "dev")
    metrics.update({f"dev_{k}_at_0.5": v for k, v in binary_metrics(labels, scores, 0.5).items()
                    if k in ("f1", "precision", "recall") and np.isfinite(v)})
    metrics["train_seconds"] = time.perf_counter() - started
    run.log_metrics(metrics, step=trainer.state.global_step)

    _save_model(run, cfg, context, loaded, threshold, metrics, train_languages)
    _save_evaluation(run, context, splits, scores, threshold, report, labels)
    return RunResult(run.run_id, metrics, threshold)


def _save_model(run: TrackedRun, cfg, context, loaded, threshold: float, metrics: dict,
                train_languages: list[str]) -> None:
    """Adapter (with the classifier head) or full model, tokenizer, threshold and the
    config needed to rebuild the base: everything `relevance.predict` loads."""
    model_dir = save_model_folder(context.output_dir / MODEL_ARTIFACT, cfg, loaded, threshold, "dev_f1",
                                  metrics["dev_f1"], train_languages)
    if cfg.tracking.log_adapter:
        run.log_artifacts(model_dir, MODEL_ARTIFACT)
        run.set_tags({"relevance.has_model": "true"})


def _save_evaluation(run: TrackedRun, context: RunContext, splits: Splits, scores: np.ndarray, threshold: float,
                     report: dict, labels: np.ndarray) -> None:
    eval_dir = context.output_dir / "evaluation"
    eval_dir.mkdir(parents=True, exist_ok=True)
    predictions = splits.dev.to_pandas()
    predictions["score"] = scores
    predictions["prediction"] = (scores >= threshold).astype(int)
    predictions.to_json(eval_dir / "dev_predictions.jsonl", orient="records", lines=True, force_ascii=False)
    (eval_dir / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    plot_confusion_matrix(labels, scores, threshold, eval_dir / "confusion_matrix.png", "dev confusion matrix")
    plot_pr_curve(labels, scores, eval_dir / "pr_curve.png", "dev precision-recall", threshold=threshold)
    run.log_artifacts(eval_dir, "evaluation")
