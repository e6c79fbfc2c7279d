"""Fold runs read back from MLflow: the members of a fold ensemble and their pooled out-of-fold scores.

A reference is a list of run ids (`run=[id1,id2]`), or one id: a sweep parent stands for its
finished children (`python -m relevance.train -m experiment=folds`), any other run for itself.
Every member must be a fold run (`data.folds` set, its `evaluation/oof_predictions.jsonl` logged)
of the same split and the same training: every config key equal but `data.fold` (backbone, mix, lr,
LoRA shape, seed, number of folds, data, `data.seed`, subsample: `config_differences`), the same data
digest, each fold once, and all K folds present unless the caller allows a partial ensemble.
Used by `relevance.predict` (ensembles) and the `noise_filter` strategy; all checks happen here,
from params, tags and artifact listings, before any model loads. Errors name the config key the
reference came from (`key`).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from relevance.evaluation.oof import OOF_ARTIFACT, OutOfFoldError, pool_oof, read_oof
from relevance.tracking.runs import sweep_runs
from relevance.tracking.tags import DATA_DIGEST_TAG, SWEEP_TAG

HAS_MODEL_TAG = "relevance.has_model"
# what must be equal for fold runs to split one pool the same way
SPLIT_PARAMS = ("data.folds", "data.seed", "data.train_file", "data.dev_file", "data.test_file", "data.test_fraction",
                "data.max_train_rows")


class FoldRunsError(ValueError):
    """A reference that is not a set of fold runs of one split; the message names the config key."""


@dataclass
class FoldRuns:
    runs: list[Run]  # ordered by fold
    folds: int  # K, the folds of the split
    key: str  # the config key they came from

    @property
    def run_ids(self) -> list[str]:
        return [r.info.run_id for r in self.runs]

    @property
    def fold_numbers(self) -> list[int]:
        return [int(r.data.params["data.fold"]) for r in self.runs]

    def describe(self) -> str:
        """`folds 0,1,2 of 5 (runs ab12…, …)`."""
        return (f"folds {','.join(map(str, self.fold_numbers))} of {self.folds} "
                f"(runs {', '.join(self.run_ids)})")


def reference_ids(reference, key: str) -> list[str]:
    """The run ids of a config value: one id, or a list of them."""
    if isinstance(reference, str):
        ids = [reference]
    elif isinstance(reference, Sequence) or hasattr(reference, "__iter__"):
        ids = [str(item) for item in reference]
    else:
        raise FoldRunsError(f"{key}={reference!r}: give a run id, a list of run ids or a sweep parent's id")
    ids = [i.strip() for i in ids]
    if not ids or any(not i for i in ids):
        raise FoldRunsError(f"{key}={reference!r}: give a run id, a list of run ids ([id1,id2]) or a sweep "
                            "parent's id, none of them empty")
    if "latest" in ids and len(ids) > 1:
        raise FoldRunsError(f"{key}: 'latest' names one run; list run ids to average several")
    if len(set(ids)) != len(ids):
        raise FoldRunsError(f"{key}={reference!r} names a run twice")
    return ids


def get_run(client: MlflowClient, run_id: str, key: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise FoldRunsError(f"{key}: no run {run_id!r} in {client.tracking_uri} (check the id, and "
                            "MLFLOW_TRACKING_URI / tracking.tracking_uri)") from None


def is_sweep_parent(run: Run) -> bool:
    return run.data.tags.get(SWEEP_TAG) == "true"


def expand(client: MlflowClient, reference, key: str) -> list[Run]:
    """The runs a reference stands for: the listed runs, or a sweep parent's finished children."""
    ids = reference_ids(reference, key)
    runs = [get_run(client, run_id, key) for run_id in ids]
    if len(runs) == 1 and is_sweep_parent(runs[0]):
        parent = runs[0]
        children = [r for r in sweep_runs(client, parent).runs if r.info.status == "FINISHED"]
        if not children:
            raise FoldRunsError(f"{key}={parent.info.run_id}: the sweep parent has no finished run (train the folds "
                                "first: python -m relevance.train -m experiment=folds)")
        return children
    parents = [r.info.run_id for r in runs if is_sweep_parent(r)]
    if parents:
        raise FoldRunsError(f"{key}: {', '.join(parents)} is a sweep parent; name it alone to use its children")
    return runs


# config groups whose keys are not what a run computes (where things are stored)
STORAGE_GROUPS = ("paths", "tracking")


def config_params(run: Run) -> dict[str, str]:
    """The run's logged params that are config keys (not the data counts and paths a run logs beside
    them), minus storage and `data.fold`: what fold runs of one ensemble must share."""
    from relevance.config import TrainConfig

    groups = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    schema = OmegaConf.structured(TrainConfig)
    kept = {}
    for name, value in run.data.params.items():
        group, _, rest = name.partition(".")
        if group not in groups or group in STORAGE_GROUPS or name == "data.fold":
            continue
        node = schema.get(group)
        if rest and isinstance(node, DictConfig) and group != "augment" and rest.split(".")[0] not in node:
            continue  # logged beside the config (data.train_rows, quant.compute_dtype_resolved ...)
        kept[name] = value
    return kept


def config_differences(first: Run, other: Run) -> list[str]:
    """`key=a vs b` for every config key (but `data.fold`) the two runs set differently."""
    mine, theirs = config_params(first), config_params(other)
    return [f"{k}={mine.get(k)} vs {theirs.get(k)}" for k in sorted(set(mine) | set(theirs))
            if mine.get(k) != theirs.get(k)]


def fold_runs(client: MlflowClient, reference, key: str, need_model: bool = False,
              allow_partial: bool = False, allow_key: str = "allow_partial_folds") -> FoldRuns:
    """The fold runs a reference stands for, checked to be folds of one split (see the module docstring);
    all K of them unless `allow_partial` (the config key `allow_key` says so)."""
    runs = expand(client, reference, key)
    for run in runs:
        rid = run.info.run_id
        if run.info.status != "FINISHED":
            raise FoldRunsError(f"{key}: run {rid} is {run.info.status}, not FINISHED")
        if _param_int(run, "data.folds") is None:
            raise FoldRunsError(f"{key}: run {rid} is not a fold run (its data.folds is null): its dev rows are no "
                                "out-of-fold scores; train folds with data.folds=K data.fold=i (experiment=folds)")
        if need_model and run.data.tags.get(HAS_MODEL_TAG) != "true":
            raise FoldRunsError(f"{key}: run {rid} logged no model (tracking.log_adapter=false?)")
        if not _has_artifact(client, rid, OOF_ARTIFACT):
            raise FoldRunsError(f"{key}: run {rid} has no {OOF_ARTIFACT} (trained before out-of-fold scores were "
                                "logged? train it again)")
    first = runs[0]
    for run in runs[1:]:
        for name in SPLIT_PARAMS:
            if run.data.params.get(name) != first.data.params.get(name):
                raise FoldRunsError(f"{key}: runs {first.info.run_id} and {run.info.run_id} split different pools "
                                    f"({name}={first.data.params.get(name)} vs {run.data.params.get(name)}): an "
                                    "ensemble's folds come from one split")
        if run.data.tags.get(DATA_DIGEST_TAG) != first.data.tags.get(DATA_DIGEST_TAG):
            raise FoldRunsError(f"{key}: runs {first.info.run_id} and {run.info.run_id} read different data "
                                f"({DATA_DIGEST_TAG} differs)")
        if run.data.tags.get("task") != first.data.tags.get("task"):
            raise FoldRunsError(f"{key}: runs {first.info.run_id} and {run.info.run_id} are of different tasks "
                                f"({first.data.tags.get('task')} vs {run.data.tags.get('task')})")
        differences = config_differences(first, run)
        if differences:
            raise FoldRunsError(f"{key}: runs {first.info.run_id} and {run.info.run_id} were trained differently "
                                f"({'; '.join(differences[:5])}{' ...' if len(differences) > 5 else ''}): the "
                                "members of one ensemble differ only by data.fold")
    by_fold: dict[int, str] = {}
    for run in runs:
        fold = _param_int(run, "data.fold")
        if fold in by_fold:
            raise FoldRunsError(f"{key}: runs {by_fold[fold]} and {run.info.run_id} are both fold {fold}: each fold "
                                "once (several seeds of one fold would each need their own ensemble)")
        by_fold[fold] = run.info.run_id
    ordered = sorted(runs, key=lambda r: _param_int(r, "data.fold"))
    folds = _param_int(first, "data.folds")
    missing = sorted(set(range(folds)) - set(by_fold))
    if missing and not allow_partial:
        raise FoldRunsError(f"{key}: folds {','.join(map(str, sorted(by_fold)))} of {folds} (missing "
                            f"{','.join(map(str, missing))}): an ensemble averages all {folds} folds, and every "
                            f"pool row needs its out-of-fold score; train the missing folds (data.fold="
                            f"{','.join(map(str, missing))}), or set {allow_key}=true to use these")
    return FoldRuns(ordered, folds, key)


def pooled_oof(client: MlflowClient, members: FoldRuns, work_dir: str | Path) -> pd.DataFrame:
    """The members' out-of-fold rows as one table (`id, language, label, probability, fold, run_id`);
    the artifacts are downloaded under `work_dir` (the caller's temporary folder)."""
    work_dir = Path(work_dir)
    frames = {}
    for run_id in members.run_ids:
        target = work_dir / run_id
        target.mkdir(parents=True, exist_ok=True)
        frames[run_id] = read_oof(Path(client.download_artifacts(run_id, OOF_ARTIFACT, str(target))))
    try:
        return pool_oof(frames)
    except OutOfFoldError as error:
        raise FoldRunsError(f"{members.key}: {error}") from None


def _param_int(run: Run, name: str) -> int | None:
    value = run.data.params.get(name)
    return None if value in (None, "None", "null", "") else int(value)


def _has_artifact(client: MlflowClient, run_id: str, path: str) -> bool:
    folder, _, _ = path.rpartition("/")
    return any(item.path == path for item in client.list_artifacts(run_id, folder or None))
