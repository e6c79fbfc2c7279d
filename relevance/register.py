"""`python -m relevance.register run=<run id|latest> [alias=champion] [name=...]`, or `sweep=<parent id|latest>`

Registers a run as a new version of a registered model (`relevance-<task>` by default: `relevance-qc`,
`relevance-qi`), tagged with its dev and test metrics, its identity (`relevance.run_identity`, the config,
data and code digests) and its lineage digests (`relevance.lineage.*`); `alias=` moves that alias to the
new version. The version is an MLflow Model (`python_function` flavor, relevance/serving.py), built here
from the run's model folder checked against its digests: `mlflow.pyfunc.load_model` and `mlflow models
serve` score with it, and `predict run=models:/<name>@<alias>` scores the run it points to.

- `run=<run id>`, `run=latest` (predict's `latest`; with `task=`, that task's), `run=models:/...`;
- `run=<sweep parent id>` of fold runs (`experiment=folds`): the fold ensemble; the version points to the
  parent, which predict expands to its folds; its MLflow Model holds every fold and the thresholds tuned on
  their pooled out-of-fold scores (as `predict run=<parent id>` tunes them);
- `sweep=<parent id|latest>`: the sweep's best run as chosen on dev (the highest `dev_f1` among its finished
  runs with a model, children and reused runs, as the sweep's summary and `compare` choose), never on test.

Nothing is registered from a run that predict would refuse (docs/security.md): a model folder that differs
from its digests, or a run logged before digests; a stored config asking for classes, packages or remote
code the store is not trusted with.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Optional

import hydra
import mlflow
import mlflow.pyfunc
from hydra.core.config_store import ConfigStore
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, ListConfig

from relevance.config import PathsConfig, TaskConfig, TrackingConfig, check_keys_against_schema, register_configs
from relevance.config_choices import exit_on_unknown_choices
from relevance.runtime import exit_on_sigterm, quiet_third_party_logs
from relevance.tracking.registry import (check_alias, create_version, default_model_name,
                                         resolve_run_reference)

log = logging.getLogger(__name__)

HAS_MODEL_TAG = "relevance.has_model"
RUN_TAGS = ("task", "model", "augment", "relevance.run_identity", "relevance.config_hash", "relevance.data_digest",
            "relevance.code_digest", "relevance.model_digest")
LINEAGE_PREFIX = "relevance.lineage."
METRIC_PREFIXES = ("dev_", "test_")
REQUIREMENTS = ("mlflow", "torch", "transformers", "peft", "datasets", "omegaconf", "hydra-core", "bitsandbytes")


@dataclass
class RegisterConfig:
    run: Any = None  # a run id, latest, a fold sweep's parent id (the ensemble) or models:/...; or sweep=
    sweep: Optional[str] = None  # a sweep parent id or latest: register its best run, chosen on dev
    alias: Optional[str] = None  # e.g. champion: moves to the new version
    name: Optional[str] = None  # the registered model; null: relevance-<task>
    task: Optional[TaskConfig] = None  # task=<key>: run=latest / sweep= pick that task's runs
    allow_partial_folds: bool = False  # a fold ensemble holds all K folds; true: the finished ones
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


register_configs()
ConfigStore.instance().store(name="register_schema", node=RegisterConfig)


class RegisterError(ValueError):
    """What to register is not said, or names something that cannot be registered; the message says why."""


@dataclass
class Target:
    """What a version is registered from: the run it points to, and the runs its MLflow Model holds."""

    run: Run  # a training run, or a fold ensemble's sweep parent
    members: list[Run]  # the run itself, or the fold runs
    task: str
    chosen_by: str
    fold_runs: object = None  # relevance.tracking.folds.FoldRuns for an ensemble


# -- choosing the run -----------------------------------------------------------------------------

def check_request(cfg: DictConfig) -> None:
    if (cfg.run is None) == (cfg.sweep is None):
        raise RegisterError("say what to register: run=<run id|latest> (or a fold sweep's parent id, or "
                            "models:/<name>@<alias>), or sweep=<sweep parent id|latest> for its best run on dev"
                            + ("; not both" if cfg.run is not None else ""))
    if isinstance(cfg.run, (ListConfig, list)):
        raise RegisterError(f"run={list(cfg.run)}: a version points to one run; to register a fold ensemble, "
                            "name its sweep parent (run=<parent id>)")
    if cfg.alias is not None:
        check_alias(str(cfg.alias))


def target_of_run(client: MlflowClient, cfg: DictConfig) -> Target:
    """`run=`: one run (an id, latest, a registered version) or a fold ensemble (a sweep parent's id)."""
    from relevance.predict import ensemble_members, find_run

    from relevance.tracking.folds import FoldRunsError, is_sweep_parent

    reference = resolve_run_reference(client, str(cfg.run))
    try:
        folds = ensemble_members(client, reference, allow_partial=cfg.allow_partial_folds)
    except FoldRunsError as error:
        parent = is_sweep_parent(client.get_run(str(reference))) if "no run" not in str(error) else False
        raise RegisterError(str(error) + (f". A sweep whose runs are not folds: register its best run on dev with "
                                          f"sweep={reference}" if parent else "")) from None
    if folds is not None:
        parent = client.get_run(str(reference))
        return Target(parent, folds.runs, str(folds.runs[0].data.tags.get("task")),
                      f"fold ensemble of sweep parent {parent.info.run_id}: {folds.describe()}", folds)
    try:
        run = client.get_run(find_run(client, str(reference), cfg.task.name if cfg.task else None))
    except MlflowException:
        raise RegisterError(f"run={cfg.run}: no such run in {client.tracking_uri} (check the id, and "
                            "MLFLOW_TRACKING_URI / tracking.tracking_uri)") from None
    check_registrable(run, f"run={cfg.run}")
    return Target(run, [run], str(run.data.tags.get("task")), f"run={cfg.run}")


def check_registrable(run: Run, key: str) -> None:
    if run.info.status != "FINISHED":
        raise RegisterError(f"{key}: run {run.info.run_id} is {run.info.status}, not FINISHED")
    if run.data.tags.get(HAS_MODEL_TAG) != "true":
        raise RegisterError(f"{key}: run {run.info.run_id} logged no model (tracking.log_adapter=false?)")


def target_of_sweep(client: MlflowClient, cfg: DictConfig) -> Target:
    """`sweep=`: the sweep's finished run with a model and the highest dev_f1 (of `task=` when given)."""
    from relevance.compare.selection import finished_runs, select_runs

    runs, title, _ = select_runs(client, sweep=str(cfg.sweep))
    candidates = [r for r in runs if r.data.tags.get(HAS_MODEL_TAG) == "true"]
    if cfg.task is not None:
        candidates = [r for r in candidates if str(r.data.tags.get("task")).upper() == str(cfg.task.name).upper()]
    where = f"sweep={cfg.sweep} ({title})" + (f", task {cfg.task.name}" if cfg.task is not None else "")
    if not candidates:
        raise RegisterError(f"{where}: no run with a logged model to register")
    frame, _ = finished_runs(candidates, title)
    tasks = sorted(frame["task"].astype(str).unique())
    if len(tasks) > 1:
        raise RegisterError(f"{where}: its runs are of tasks {', '.join(tasks)}, and a registered model holds one "
                            f"task's: add task=<key> (task={tasks[0].lower()})")
    by_id = {r.info.run_id: r for r in candidates}
    if all(by_id[run_id].data.params.get("data.folds") not in (None, "None", "null", "") for run_id in frame.run_id):
        raise RegisterError(f"{where}: its runs are folds of one split (data.folds is set): one fold is not a model "
                            "to register; register the fold ensemble with run=<its sweep parent id>")
    if "dev_f1" not in frame or frame["dev_f1"].isna().all():
        raise RegisterError(f"{where}: no finished run logged dev_f1, which chooses the best run")
    scored = frame[frame["dev_f1"].notna()]
    best = scored.loc[scored["dev_f1"].idxmax()]
    run = by_id[best["run_id"]]
    return Target(run, [run], tasks[0],
                  f"best dev_f1 ({best['dev_f1']:.4f}) of {len(scored)} finished runs of {title}")


def choose_target(client: MlflowClient, cfg: DictConfig) -> Target:
    return target_of_run(client, cfg) if cfg.run is not None else target_of_sweep(client, cfg)


# -- the version ------------------------------------------------------------------------------------

def version_tags(target: Target, extra: dict[str, str]) -> dict[str, str]:
    """Its dev and test metrics, identity and lineage digests; an ensemble's, per fold run."""
    tags = {"relevance.run_id": target.run.info.run_id, "relevance.chosen_by": target.chosen_by[:4000], **extra}
    if len(target.members) == 1:
        run = target.members[0]
        tags.update({k: v for k, v in run.data.tags.items() if k in RUN_TAGS or k.startswith(LINEAGE_PREFIX)})
        tags.update({k: f"{v:.6g}" for k, v in sorted(run.data.metrics.items()) if k.startswith(METRIC_PREFIXES)})
        return tags
    tags["relevance.ensemble.members"] = ",".join(r.info.run_id for r in target.members)
    keys = {k for r in target.members for k in r.data.tags if k in RUN_TAGS or k.startswith(LINEAGE_PREFIX)}
    for key in sorted(keys):
        values = list(dict.fromkeys(str(r.data.tags.get(key)) for r in target.members))
        tags[key] = (values[0] if len(values) == 1 else "; ".join(values))[:4000]
    for key in ("dev_f1", "dev_roc_auc", "test_f1", "test_roc_auc"):  # each fold's, in fold order
        values = [r.data.metrics.get(key) for r in target.members]
        if all(v is not None for v in values):
            tags[f"folds.{key}"] = ",".join(f"{v:.4f}" for v in values)
    return tags


def requirements() -> list[str]:
    found = []
    for name in REQUIREMENTS:
        try:
            found.append(f"{name}=={package_metadata.version(name)}")
        except package_metadata.PackageNotFoundError:
            continue
    return found


def build_package(client: MlflowClient, target: Target, cfg: DictConfig, work: Path) -> tuple[Path, dict[str, str]]:
    """The MLflow Model's data (relevance.serving.write_package) from each member's verified model folder,
    and the tags it adds (an ensemble's out-of-fold F1)."""
    from sklearn.metrics import f1_score

    from relevance.artifacts import fetch_model_folder, read_run_config
    from relevance.evaluation.threshold import tune_thresholds
    from relevance.predict import check_task, ensemble_policy
    from relevance.serving import PackageMember, write_package
    from relevance.stored_config import check_stored_run
    from relevance.tracking.folds import pooled_oof

    members, run_cfgs = [], []
    for index, run in enumerate(target.members):
        run_id = run.info.run_id
        model_dir = fetch_model_folder(client, run_id, work / run_id)  # digests verified; no unverified runs
        run_cfg = read_run_config(model_dir, cfg.paths.cache_dir, run_id)
        check_stored_run(run_cfg, model_dir, f"run {run_id}", trust_remote_code=False,
                         override="(a registered model never runs remote code; score such a run with "
                                  "python -m relevance.predict trust_remote_code=true)")
        check_task(run_id, run_cfg, cfg.task)
        members.append((PackageMember(run_id, f"run-{index}", run.data.tags["relevance.model_digest"],
                                      run.data.params.get("quant.compute_dtype_resolved")), model_dir))
        run_cfgs.append(run_cfg)
    if target.fold_runs is None:
        return write_package(work / "package", members), {}
    # the thresholds predict tunes for this ensemble (relevance.predict.predict_ensemble)
    policy = ensemble_policy(target.fold_runs, run_cfgs)
    oof = pooled_oof(client, target.fold_runs, work / "oof")
    thresholds = tune_thresholds(oof["label"].to_numpy(), oof["probability"].to_numpy(), oof["language"].to_numpy(),
                                 policy)
    predicted = oof["probability"].to_numpy() >= thresholds.for_languages(oof["language"])
    oof_f1 = float(f1_score(oof["label"].to_numpy(), predicted.astype(int)))
    package = write_package(work / "package", members, thresholds, policy, oof_f1)
    return package, {"oof_f1": f"{oof_f1:.6g}", "oof_rows": str(len(oof))}


def register(client: MlflowClient, target: Target, cfg: DictConfig):
    """Log the target's MLflow Model (linked to its run) and register it as a new version of the model."""
    from relevance.serving import LOADER_MODULE

    name = str(cfg.name or default_model_name(target.task))
    with tempfile.TemporaryDirectory(prefix="relevance-register-") as work_dir:
        package, extra_tags = build_package(client, target, cfg, Path(work_dir))
        mlflow.set_tracking_uri(cfg.tracking.tracking_uri)
        tags = version_tags(target, extra_tags)
        logged = mlflow.initialize_logged_model(name=name, source_run_id=target.run.info.run_id,
                                                experiment_id=target.run.info.experiment_id,
                                                tags={"relevance.run_id": target.run.info.run_id})
        info = mlflow.pyfunc.log_model(name=name, loader_module=LOADER_MODULE, data_path=str(package),
                                       model_id=logged.model_id, pip_requirements=requirements(),
                                       metadata={"relevance.run_id": target.run.info.run_id,
                                                 "relevance.members": [r.info.run_id for r in target.members]})
    return create_version(client, name, info.model_uri, target.run.info.run_id, logged.model_id, tags,
                          target.chosen_by[:4000], cfg.alias)


@hydra.main(config_path="../conf", config_name="register", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from relevance.tracking.store import tracking_client

    quiet_third_party_logs()
    exit_on_sigterm()
    check_keys_against_schema(cfg, RegisterConfig)
    check_request(cfg)
    client = tracking_client(cfg.tracking.tracking_uri)
    target = choose_target(client, cfg)
    version = register(client, target, cfg)
    uri = f"models:/{version.name}/{version.version}"
    print(f"registered {version.name} version {version.version} from run {target.run.info.run_id} "
          f"({target.chosen_by})" + (f"; alias @{cfg.alias} -> version {version.version}" if cfg.alias else ""))
    shown = f"models:/{version.name}@{cfg.alias}" if cfg.alias else uri
    print(f"  predict: python -m relevance.predict run={shown} input=<file> output=<file>\n"
          f"  serve:   mlflow models serve -m {shown} --env-manager local --port 5002")


if __name__ == "__main__":
    exit_on_unknown_choices()
    main()
