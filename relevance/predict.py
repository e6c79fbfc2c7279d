"""`python -m relevance.predict run=<run id|latest> input=<file> output=<file>`

Loads a logged run (adapter + thresholds), scores a competition-format file and
writes the submission format: the input fields + `prediction` + `score`. A row is
relevant when its score reaches its language's threshold (runs tuned with
`evaluation.threshold=per_language`), else the global one. When the input has
labels it also prints the metrics, overall and per language.

A fold ensemble (`run=[id1,id2,...]`, or `run=<sweep parent id>` for its finished children): the
score is the mean of the fold runs' probabilities, and the threshold (global, or per language as
the folds' `evaluation.threshold` says) is tuned once on their pooled out-of-fold scores. Every
check (the runs, their folds, the input) happens before the first model loads; the models load
one at a time.

Scores are computed in the dtype the run trained in (its threshold was tuned on those scores),
recorded in its model folder (`quant.compute_dtype` of `run_config.yaml`; older runs: the param
`quant.compute_dtype_resolved`). A machine that lacks it (bf16 on a CPU without AMX/AVX512-BF16
or a GPU without bf16) refuses before any model loads; `compute_dtype=float32` scores anyway, warning
that the scores may differ from the logged ones.

A logged run is data, never code (docs/security.md): its model folder is checked against the digests
training recorded (`allow_unverified=true` loads a run logged before digests), its stored config is read
without resolving anything, and a run naming a class outside the presets or asking for remote code is
refused before any of its files is imported. Remote code runs only with `trust_remote_code=true` on this
command line, which prints what it trusts.
"""

from __future__ import annotations

import gc
import json
import logging
import tempfile
from pathlib import Path

import hydra
import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, ListConfig, OmegaConf

from relevance.artifacts import TrainedModel, fetch_model_folder, load_model_folder, read_run_config
from relevance.config import PredictConfig, check_keys_against_schema, register_configs
from relevance.config_choices import exit_on_unknown_choices
from relevance.files import atomic_open
from relevance.modeling.heads import head_class
from relevance.runtime import exit_on_sigterm, expect_new_head, quiet_third_party_logs
from relevance.tracking.runs import scored_with

register_configs()
log = logging.getLogger(__name__)


PREDICT_TASK_ADVICE = "score it with a run trained on that task: run=latest task={file_task}, or run=<its run id>"
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")  # the `compute_dtype` override; null: as the run trained


class RunNotFoundError(LookupError):
    pass


def find_run(client: MlflowClient, run: str, task_name: str | None) -> str:
    """A run id as given, or for `latest` the run `latest_run` means (of the task `task_name`, when given)."""
    if run != "latest":
        return client.get_run(run).info.run_id
    return latest_run(client, task_name).run.info.run_id


def latest_run(client: MlflowClient, task_name: str | None):
    """`run=latest`: the FINISHED run with a model that ended last and is not a smoke or test run, of the
    task when given; refused when it could mean runs of different tasks (relevance.tracking.runs.latest_model_run,
    docs/tour.md)."""
    from relevance.tracking.runs import LatestRunError, latest_model_run

    try:
        return latest_model_run(client, task_name)
    except LatestRunError as exc:
        raise RunNotFoundError(str(exc)) from None


def expect_trained_head(run_cfg: DictConfig) -> None:
    """The backbone loads without the classifier head, which the run's adapter restores right after: drop
    transformers' report of the head as MISSING (relevance.runtime.expect_new_head)."""
    new_modules = head_class(str(OmegaConf.select(run_cfg, "head.name"))).new_modules(run_cfg.model)
    if new_modules:
        expect_new_head(new_modules)


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


class ComputeDtypeError(RuntimeError):
    """This machine cannot score in the dtype the run was trained (and its threshold tuned) in."""


def check_compute_dtype_override(override: str | None) -> None:
    if override is not None and override not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype={override}: use one of {', '.join(COMPUTE_DTYPES)}, or null to score "
                         "in the dtype the run trained in")


def trained_compute_dtype(run_cfg: DictConfig, logged_params: dict[str, str]) -> str | None:
    """The dtype the run trained and tuned its threshold in: its model folder's `quant.compute_dtype`,
    or, for runs whose folder still says `auto`, the param `quant.compute_dtype_resolved`; None when
    the run recorded neither."""
    saved = OmegaConf.select(run_cfg, "quant.compute_dtype", default="auto")
    if saved != "auto":
        return str(saved)
    return logged_params.get("quant.compute_dtype_resolved")


def scoring_compute_dtype(run_id: str, trained: str | None, override: str | None) -> str:
    """The dtype to score run `run_id` in: `override` (`compute_dtype=...`) when given, else the one it
    trained in (`trained`), checked against this machine's hardware before any model loads."""
    from relevance.hardware import missing_bf16
    from relevance.modeling.quantization import choose_compute_dtype

    if override is not None:
        if override != trained:
            log.warning("run %s was trained, and its threshold tuned, in %s; scoring in %s (compute_dtype=%s): "
                        "scores, and predictions near the threshold, may differ from the logged ones",
                        run_id, trained or "an unrecorded dtype", override, override)
        return override
    if trained is None:
        resolved = str(choose_compute_dtype("auto")[0]).removeprefix("torch.")
        log.warning("run %s recorded no compute dtype (it predates quant.compute_dtype_resolved): scoring in %s, "
                    "this machine's choice; pass compute_dtype=float32 or bfloat16 to choose", run_id, resolved)
        return resolved
    missing = missing_bf16() if trained == "bfloat16" else None
    if missing:
        raise ComputeDtypeError(
            f"run {run_id} was trained, and its threshold tuned, in bfloat16, but this machine lacks bf16 "
            f"({missing}): scoring in float32 would compare other scores with that threshold. Score it where bf16 "
            "is native (a GPU with bf16, or a CPU with AMX or AVX512-BF16), or pass compute_dtype=float32 to score "
            "in float32 anyway (scores may differ from the logged ones), or compute_dtype=bfloat16 to compute in "
            "bf16 here without native support (slow)")
    return trained


def run_compute_dtype(client: MlflowClient, run_id: str, run_cfg: DictConfig, override: str | None) -> str:
    """`scoring_compute_dtype` for a logged run (its params are read only for runs that need them)."""
    trained = trained_compute_dtype(run_cfg, {})
    if trained is None:
        trained = trained_compute_dtype(run_cfg, client.get_run(run_id).data.params)
    return scoring_compute_dtype(run_id, trained, override)


def open_run(client: MlflowClient, run_id: str, work_dir: Path, cfg: DictConfig) -> tuple[Path, DictConfig]:
    """The run's model folder (downloaded, verified against its digests) and its config (read as data,
    checked for what it may not ask for), before any of its files is imported. With `trust_remote_code=true`,
    prints what that trusts."""
    from relevance.stored_config import check_stored_run, trust_notice

    model_dir = fetch_model_folder(client, run_id, work_dir, allow_unverified=cfg.allow_unverified,
                                   override="allow_unverified=true")
    run_cfg = read_run_config(model_dir, cfg.paths.cache_dir, run_id)
    remote = check_stored_run(run_cfg, model_dir, f"run {run_id}", trust_remote_code=cfg.trust_remote_code)
    if cfg.trust_remote_code:
        print(trust_notice(f"run {run_id}", run_cfg, remote), flush=True)
    return model_dir, run_cfg


def read_input(run_cfg: DictConfig, input_path: Path, null_target: str):
    """The input rows, validated as training validates its files (task, fields, languages, ids)."""
    from relevance.data.reader import read_jsonl

    return read_jsonl(input_path, run_cfg.task, require_label=False, null_target=null_target,
                      languages=run_cfg.data.languages, task_advice=PREDICT_TASK_ADVICE).dataset


def predict_table(trained: TrainedModel, table, input_path: Path, output_path: Path,
                  batch_size: int | None = None) -> dict | None:
    """Score the validated rows of `input_path`, write the submission, and return the metrics when
    the rows are labelled (see `score_table`)."""
    scores = score_table(trained, table, batch_size)
    return write_and_report(table, input_path, output_path, scores, trained.thresholds, trained.train_languages)


def score_table(trained: TrainedModel, table, batch_size: int | None = None) -> np.ndarray:
    """P(relevant) of each row. Rows are batched as the run's final scoring batched them (its
    `eval_batch_size` or token budget), so the scores are the ones the threshold was tuned on:
    in bf16 a row's score moves in the last bits with the padding of its batch. `batch_size`
    overrides the run's rows per batch (runs batched by rows only)."""
    from relevance.modeling.batching import eval_token_budget
    from relevance.modeling.inputs import encode_table
    from relevance.modeling.scoring import score_rows

    run_cfg, loaded = trained.cfg, trained.loaded
    table = apply_input_strategies(run_cfg, table, trained.train_languages)
    encoded = encode_table(table, loaded.tokenizer, run_cfg.task, run_cfg.head, run_cfg.model.max_length)
    return score_rows(loaded.model, loaded.head, loaded.tokenizer, encoded,
                      batch_size or run_cfg.trainer.eval_batch_size, eval_token_budget(run_cfg.trainer))


def write_and_report(table, input_path: Path, output_path: Path, scores: np.ndarray, thresholds,
                     train_languages: list[str]) -> dict | None:
    """Write the submission at these thresholds; the metrics when the rows are labelled."""
    from relevance.evaluation import evaluation_report

    row_thresholds = thresholds.for_languages(table["language"])
    write_submission(input_path, output_path, scores, (scores >= row_thresholds).astype(int))
    if "label" not in table.column_names:
        return None
    return evaluation_report(np.asarray(table["label"]), scores, table["language"], row_thresholds,
                             train_languages)


# -- fold ensembles ----------------------------------------------------------------------------

def ensemble_members(client: MlflowClient, run, allow_partial: bool = False):
    """The fold runs `run` stands for when it is an ensemble (a list of ids, or a sweep parent's
    id), checked (relevance.tracking.folds: trained alike, all K folds unless `allow_partial`); None for
    one run (an id, or `latest`)."""
    from relevance.tracking.folds import fold_runs, get_run, is_sweep_parent

    if isinstance(run, (ListConfig, list, tuple)):
        return fold_runs(client, [str(r) for r in run], "run", need_model=True, allow_partial=allow_partial)
    if str(run) != "latest" and is_sweep_parent(get_run(client, str(run), "run")):
        return fold_runs(client, str(run), "run", need_model=True, allow_partial=allow_partial)
    return None


def ensemble_policy(members, run_cfgs: list[DictConfig]):
    """The threshold policy the folds were tuned with, the same for all of them."""
    from relevance.evaluation.threshold import ThresholdPolicy

    policies = {run_id: ThresholdPolicy.from_config(OmegaConf.select(rc, "evaluation"))
                for run_id, rc in zip(members.run_ids, run_cfgs)}
    if len(set(policies.values())) > 1:
        raise ValueError("run: the folds tuned their thresholds differently ("
                         + ", ".join(f"{rid}: evaluation.threshold={p.mode}, min_rows_per_language="
                                     f"{p.min_rows_per_language}" for rid, p in policies.items())
                         + "): an ensemble's one threshold follows one policy; train the folds alike")
    return next(iter(policies.values()))


def predict_ensemble(client: MlflowClient, members, cfg: DictConfig, input_path: Path, output: Path):
    """Mean of the members' probabilities, at thresholds tuned on their pooled out-of-fold scores.
    Returns (thresholds, pooled out-of-fold rows, report or None)."""
    from relevance.evaluation.threshold import tune_thresholds
    from relevance.tracking.folds import pooled_oof

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        opened = [open_run(client, run_id, work / run_id, cfg) for run_id in members.run_ids]
        model_dirs, run_cfgs = [model_dir for model_dir, _ in opened], [run_cfg for _, run_cfg in opened]
        for run_id, run_cfg in zip(members.run_ids, run_cfgs):
            check_task(run_id, run_cfg, cfg.task)
        dtypes = [run_compute_dtype(client, run_id, run_cfg, cfg.compute_dtype)
                  for run_id, run_cfg in zip(members.run_ids, run_cfgs)]
        policy = ensemble_policy(members, run_cfgs)
        oof = pooled_oof(client, members, work / "oof")
        thresholds = tune_thresholds(oof["label"].to_numpy(), oof["probability"].to_numpy(),
                                     oof["language"].to_numpy(), policy)
        table = read_input(run_cfgs[0], input_path, cfg.null_target)  # bad input fails before a model loads
        member_scores, train_languages = [], set()
        for run_id, model_dir, dtype, run_cfg in zip(members.run_ids, model_dirs, dtypes, run_cfgs):  # one at a time
            expect_trained_head(run_cfg)
            trained = load_model_folder(model_dir, cfg.paths.cache_dir, compute_dtype=dtype,
                                        trust_remote_code=cfg.trust_remote_code, run=run_id)
            member_scores.append(score_table(trained, table, cfg.batch_size))
            train_languages |= set(trained.train_languages)
            del trained
            gc.collect()
        scores = np.mean(member_scores, axis=0)
        report = write_and_report(table, input_path, output, scores, thresholds, sorted(train_languages))
    return thresholds, oof, report


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
    with atomic_open(output_path) as out, open(input_path, encoding="utf-8-sig", newline="\n") as src:  # a BOM; lines end at \n only, as the reader
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
    check_compute_dtype_override(cfg.compute_dtype)
    input_path, output = Path(cfg.input), Path(cfg.output)
    check_paths(input_path, output, cfg.null_target)
    client = MlflowClient(cfg.tracking.tracking_uri)
    from relevance.tracking.registry import resolve_run_reference

    run = resolve_run_reference(client, cfg.run)  # models:/<name>@<alias>, models:/<name>/<version>: its run
    members = ensemble_members(client, run, allow_partial=cfg.allow_partial_folds)
    if members is not None:
        thresholds, oof, report = predict_ensemble(client, members, cfg, input_path, output)
        print(f"ensemble of {len(members.runs)} fold runs, {members.describe()}: wrote {output} "
              f"(mean probability; {describe_thresholds(thresholds)}, tuned on {len(oof)} pooled out-of-fold rows)")
        if report is not None:
            print(format_report(report))
        return
    task_name = cfg.task.name if cfg.task else None
    if str(run) == "latest":
        latest = latest_run(client, task_name)
        print(latest.describe(), flush=True)
        run_id = latest.run.info.run_id
    else:
        run_id = find_run(client, str(run), task_name)
    with tempfile.TemporaryDirectory() as work_dir:
        model_dir, run_cfg = open_run(client, run_id, Path(work_dir), cfg)
        check_task(run_id, run_cfg, cfg.task)
        compute_dtype = run_compute_dtype(client, run_id, run_cfg, cfg.compute_dtype)
        table = read_input(run_cfg, input_path, cfg.null_target)  # bad input fails before the model loads
        expect_trained_head(run_cfg)
        trained = load_model_folder(model_dir, cfg.paths.cache_dir, compute_dtype=compute_dtype,
                                    trust_remote_code=cfg.trust_remote_code, run=run_id)
        report = predict_table(trained, table, input_path, output, cfg.batch_size)
    print(f"run {run_id}: wrote {output} ({describe_thresholds(trained.thresholds)})")
    if report is not None:
        print(format_report(report))
    print(scored_with(client.get_run(run_id)), flush=True)


if __name__ == "__main__":
    exit_on_unknown_choices()
    main()
