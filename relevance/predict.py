"""`python -m relevance.predict run=<run id|latest> input=<file> output=<file>`

Loads a logged run (adapter + threshold), scores a competition-format file and
writes the submission format: the input fields + `prediction` + `score`. When
the input has labels it also prints the metrics, overall and per language.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import hydra
import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from relevance.artifacts import TrainedModel, download_model_folder, load_model_folder
from relevance.config import register_configs
from relevance.files import atomic_open
from relevance.runtime import quiet_third_party_logs

register_configs()
log = logging.getLogger(__name__)


class RunNotFoundError(LookupError):
    pass


def find_run(client: MlflowClient, run: str, task: str | None) -> str:
    """A run id as given, or for `latest` the newest finished run that logged a model."""
    if run != "latest":
        return client.get_run(run).info.run_id
    experiments = [e.experiment_id for e in client.search_experiments()
                   if task is None or e.name.endswith(f"-{task.lower()}")]
    runs = client.search_runs(experiments, "attributes.status = 'FINISHED' and tags.`relevance.has_model` = 'true'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    if not runs:
        raise RunNotFoundError(f"no finished run with a logged model in {client.tracking_uri}"
                               + (f" for task {task}" if task else ""))
    return runs[0].info.run_id


def predict_file(trained: TrainedModel, input_path: Path, output_path: Path, batch_size: int,
                 null_target: str) -> dict | None:
    from relevance.data.reader import read_jsonl
    from relevance.evaluation import evaluation_report
    from relevance.modeling.inputs import encode_table
    from relevance.modeling.scoring import score_rows

    if null_target == "drop":
        raise ValueError("null_target=drop would leave rows without a prediction: use empty or error")
    run_cfg, loaded, threshold = trained.cfg, trained.loaded, trained.threshold
    table = read_jsonl(input_path, run_cfg.task, require_label=False, null_target=null_target).dataset
    table = apply_input_strategies(run_cfg, table, trained.train_languages)
    encoded = encode_table(table, loaded.tokenizer, run_cfg.task, run_cfg.head, run_cfg.model.max_length)
    scores = score_rows(loaded.model, loaded.head, loaded.tokenizer, encoded, batch_size)
    predictions = (scores >= threshold).astype(int)
    write_submission(input_path, output_path, scores, predictions)
    if "label" not in table.column_names:
        return None
    return evaluation_report(np.asarray(table["label"]), scores, table["language"], threshold,
                             trained.train_languages)


def apply_input_strategies(run_cfg: DictConfig, table, train_languages: list[str]):
    """Rewrite inputs as the run's input-side strategies did in training (e.g. the English pivot)."""
    from relevance.augment import mix
    from relevance.data.splits import languages

    strategies = mix.input_strategies(run_cfg.augment)
    if not strategies:
        return table
    context = mix.augment_context(run_cfg, table.select([]), train_languages, languages(table))
    return mix.apply_input_strategies(strategies, table, context)


def write_submission(input_path: Path, output_path: Path, scores: np.ndarray, predictions: np.ndarray) -> None:
    """Input objects in input order + prediction + score, written atomically: a crash
    never leaves a half-written file or clobbers an earlier output."""
    with atomic_open(output_path) as out, open(input_path, encoding="utf-8") as src:
        rows = (json.loads(line) for line in src if line.strip())
        for row, score, prediction in zip(rows, scores, predictions, strict=True):
            row["prediction"] = int(prediction)
            row["score"] = round(float(score), 6)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def format_report(report: dict) -> str:
    lines = [f"{'language':<10} {'rows':>6} {'F1':>7} {'precision':>9} {'recall':>7} {'ROC-AUC':>8}"]

    def line(name: str, m: dict) -> str:
        return (f"{name:<10} {int(m['support']):>6} {m['f1']:>7.4f} {m['precision']:>9.4f} "
                f"{m['recall']:>7.4f} {m['roc_auc']:>8.4f}")

    lines.append(line("overall", report["overall"]))
    for language, metrics in report["per_language"].items():
        lines.append(line(language, metrics))
    if report.get("unseen"):
        lines.append(line("unseen", report["unseen"]) + f"  ({','.join(report['unseen_languages'])})")
    return "\n".join(lines)


@hydra.main(config_path="../conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    quiet_third_party_logs()
    client = MlflowClient(cfg.tracking.tracking_uri)
    run_id = find_run(client, cfg.run, cfg.task)
    with tempfile.TemporaryDirectory() as work_dir:
        trained = load_model_folder(download_model_folder(client, run_id, Path(work_dir)), cfg.paths.cache_dir)
        output = Path(cfg.output)
        report = predict_file(trained, Path(cfg.input), output, cfg.batch_size, cfg.null_target)
    print(f"run {run_id}: wrote {output} (threshold {trained.threshold:.4f})")
    if report is not None:
        print(format_report(report))


if __name__ == "__main__":
    main()
