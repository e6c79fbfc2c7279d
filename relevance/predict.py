"""`python -m relevance.predict run=<run id|latest> input=<file> output=<file>`

Loads a logged run (adapter + thresholds), scores a competition-format file and
writes the submission format: the input fields + `prediction` + `score`. A row is
relevant when its score reaches its language's threshold (runs tuned with
`evaluation.threshold=per_language`), else the global one. When the input has
labels it also prints the metrics, overall and per language.
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

from relevance.artifacts import TrainedModel, download_model_folder, load_model_folder, read_run_config
from relevance.config import PredictConfig, check_keys_against_schema, register_configs
from relevance.config_choices import exit_on_unknown_choices
from relevance.files import atomic_open
from relevance.runtime import exit_on_sigterm, quiet_third_party_logs

register_configs()
log = logging.getLogger(__name__)


PREDICT_TASK_ADVICE = "score it with a run trained on that task: run=latest task={file_task}, or run=<its run id>"


class RunNotFoundError(LookupError):
    pass


def find_run(client: MlflowClient, run: str, task_name: str | None) -> str:
    """A run id as given, or for `latest` the newest finished run that logged a model
    (of the task named `task_name`, when given)."""
    if run != "latest":
        return client.get_run(run).info.run_id
    experiments = [e.experiment_id for e in client.search_experiments()]
    query = "attributes.status = 'FINISHED' and tags.`relevance.has_model` = 'true'"
    if task_name:
        query += f" and tags.task = '{task_name}'"
    runs = client.search_runs(experiments, query, order_by=["attributes.start_time DESC"],
                              max_results=1) if experiments else []
    if not runs:
        raise RunNotFoundError(f"no finished run with a logged model in {client.tracking_uri}"
                               + (f" for task {task_name}" if task_name else "")
                               + ": train one first (python -m relevance.train ...) or pass run=<run id>")
    return runs[0].info.run_id


def check_paths(input_path: Path, output_path: Path, null_target: str) -> None:
    """Refuse what would lose the user's data, before anything is loaded."""
    if not input_path.is_file():
        raise FileNotFoundError(f"input={input_path}: no such file")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(f"output={output_path} is the input file: predict never overwrites its input; "
                         "choose another output path")
    if null_target == "drop":
        raise ValueError("null_target=drop would leave rows without a prediction: use null_target=empty or error")


def check_task(run_id: str, run_cfg: DictConfig, task_cfg: DictConfig | None) -> None:
    if task_cfg is not None and str(task_cfg.name).upper() != str(run_cfg.task.name).upper():
        raise ValueError(f"run {run_id} was trained for task {run_cfg.task.name}, but task={task_cfg.key} asks for "
                         f"{task_cfg.name}: drop task= to use this run, or pass run=latest task={task_cfg.key}")


def read_input(run_cfg: DictConfig, input_path: Path, null_target: str):
    """The input rows, validated as training validates its files (task, fields, languages, ids)."""
    from relevance.data.reader import read_jsonl

    return read_jsonl(input_path, run_cfg.task, require_label=False, null_target=null_target,
                      languages=run_cfg.data.languages, task_advice=PREDICT_TASK_ADVICE).dataset


def predict_table(trained: TrainedModel, table, input_path: Path, output_path: Path,
                  batch_size: int | None = None) -> dict | None:
    """Score the validated rows of `input_path`, write the submission, and return the metrics when
    the rows are labelled. Rows are batched as the run's final scoring batched them (its
    `eval_batch_size` or token budget), so the scores are the ones the threshold was tuned on:
    in bf16 a row's score moves in the last bits with the padding of its batch. `batch_size`
    overrides the run's rows per batch (runs batched by rows only)."""
    from relevance.evaluation import evaluation_report
    from relevance.modeling.batching import eval_token_budget
    from relevance.modeling.inputs import encode_table
    from relevance.modeling.scoring import score_rows

    run_cfg, loaded = trained.cfg, trained.loaded
    table = apply_input_strategies(run_cfg, table, trained.train_languages)
    encoded = encode_table(table, loaded.tokenizer, run_cfg.task, run_cfg.head, run_cfg.model.max_length)
    scores = score_rows(loaded.model, loaded.head, loaded.tokenizer, encoded,
                        batch_size or run_cfg.trainer.eval_batch_size, eval_token_budget(run_cfg.trainer))
    row_thresholds = trained.thresholds.for_languages(table["language"])
    write_submission(input_path, output_path, scores, (scores >= row_thresholds).astype(int))
    if "label" not in table.column_names:
        return None
    return evaluation_report(np.asarray(table["label"]), scores, table["language"], row_thresholds,
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
    with atomic_open(output_path) as out, open(input_path, encoding="utf-8-sig") as src:  # a BOM, as the reader
        rows = (json.loads(line) for line in src if line.strip())
        for row, score, prediction in zip(rows, scores, predictions, strict=True):
            row["prediction"] = int(prediction)
            row["score"] = round(float(score), 6)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def describe_thresholds(thresholds) -> str:
    """`threshold 0.4375`, plus the languages with their own (`; per language: en 0.4100, fr 0.5200`)."""
    text = f"threshold {thresholds.global_threshold:.4f}"
    if thresholds.per_language:
        text += "; per language: " + ", ".join(f"{lang} {value:.4f}"
                                               for lang, value in sorted(thresholds.per_language.items()))
    return text


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
    exit_on_sigterm()  # `timeout`, SLURM, Kubernetes: clean up as on Ctrl-C
    check_keys_against_schema(cfg, PredictConfig)
    input_path, output = Path(cfg.input), Path(cfg.output)
    check_paths(input_path, output, cfg.null_target)
    client = MlflowClient(cfg.tracking.tracking_uri)
    run_id = find_run(client, cfg.run, cfg.task.name if cfg.task else None)
    with tempfile.TemporaryDirectory() as work_dir:
        model_dir = download_model_folder(client, run_id, Path(work_dir))
        run_cfg = read_run_config(model_dir, cfg.paths.cache_dir)
        check_task(run_id, run_cfg, cfg.task)
        table = read_input(run_cfg, input_path, cfg.null_target)  # bad input fails before the model loads
        trained = load_model_folder(model_dir, cfg.paths.cache_dir)
        report = predict_table(trained, table, input_path, output, cfg.batch_size)
    print(f"run {run_id}: wrote {output} ({describe_thresholds(trained.thresholds)})")
    if report is not None:
        print(format_report(report))


if __name__ == "__main__":
    exit_on_unknown_choices()
    main()
