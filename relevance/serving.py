"""A registered version as an MLflow Model: `mlflow.pyfunc.load_model` and `mlflow models serve` score
competition rows with `relevance.predict`'s own scoring path.

`relevance.register` writes the package (`write_package`) and logs it as an MLflow Model whose
`python_function` flavor names this module as its loader (`loader_module="relevance.serving"`, the
package as its data). The package holds, per member run (one, or each fold of a fold ensemble), a copy of
the run's model folder as training logged it, checked against its digests at registration: the adapter
with the head, the tokenizer, `threshold.json`, and `run_config.yaml`, which names the base model (source,
id, revision), the prompt template (`task`), the input-side strategies (`augment`) and the compute dtype.
An ensemble adds the thresholds tuned on its folds' pooled out-of-fold scores (`ensemble/threshold.json`).

Why a loader module and not a pickled `PythonModel` or a models-from-code file: both would run what the
store holds (a pickle, a Python file) when the model loads. A run in the store is data (docs/security.md):
here MLflow imports this installed module, which reads the package as data and repeats predict's checks
before any of it loads (every folder against its digests, the stored config against what it may not ask
for, never remote code). `RelevancePyfunc` is an ordinary `mlflow.pyfunc.PythonModel`; `_load_pyfunc`
builds it from the package.

Scoring is `relevance.predict`'s: the request rows are written as a competition file, read and validated
by `predict.read_input` (a bad row is an `MlflowException` INVALID_PARAMETER_VALUE naming the row and the
field, which the scoring server answers with HTTP 400), scored by `predict.score_table` /
`predict.predict_table` and written by `predict.write_and_report`; the answer is the rows `predict` writes
(the input fields, `prediction`, `score`).

Load-time settings (`mlflow.pyfunc.load_model(uri, model_config={...})`): `cache_dir` (where base models
are cached; default `$RELEVANCE_CACHE`, else `$RELEVANCE_ROOT/.cache`, else `./.cache`, as `conf/paths`),
`compute_dtype` (as predict's `compute_dtype=`), `batch_size` (as predict's `batch_size=`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

PACKAGE_FILE = "relevance_package.json"
PACKAGE_FORMAT = 1
ENSEMBLE_DIR = "ensemble"  # an ensemble's thresholds (threshold.json), tuned on the folds' pooled out-of-fold scores
LOADER_MODULE = "relevance.serving"
REQUEST_FILE = "request.jsonl"
NULL_TARGET = "empty"  # predict's default: a row whose target is null is scored with an empty target
MODEL_CONFIG_KEYS = ("cache_dir", "compute_dtype", "batch_size")


class PackageError(ValueError):
    """A package that is not one `relevance.register` wrote, or that changed since."""


@dataclass
class PackageMember:
    """One run of a package: its model folder's copy and what its run recorded about it."""

    run_id: str
    folder: str  # relative to the package
    model_digest: str  # the run's tag relevance.model_digest (the SHA-256 of the folder's digests.json)
    compute_dtype_resolved: str | None = None  # the run's param quant.compute_dtype_resolved, for older folders


# -- writing (relevance.register) ------------------------------------------------------------------

def write_package(package_dir: Path, members: list[tuple[PackageMember, Path]], ensemble_thresholds=None,
                  ensemble_policy=None, ensemble_oof_f1: float | None = None) -> Path:
    """Copy each member's verified model folder into `package_dir` and describe them in `PACKAGE_FILE`;
    a fold ensemble (several members) also gets its thresholds (`ENSEMBLE_DIR/threshold.json`)."""
    from relevance.evaluation.threshold import save_threshold

    package_dir = Path(package_dir)
    package_dir.mkdir(parents=True, exist_ok=False)
    described = []
    for member, model_dir in members:
        shutil.copytree(model_dir, package_dir / member.folder)
        described.append(member.__dict__)
    if len(members) > 1:
        if ensemble_thresholds is None:
            raise ValueError("an ensemble package needs the thresholds tuned on its pooled out-of-fold scores")
        save_threshold(package_dir / ENSEMBLE_DIR, ensemble_thresholds, "oof_f1", ensemble_oof_f1, ensemble_policy)
    (package_dir / PACKAGE_FILE).write_text(json.dumps({"format": PACKAGE_FORMAT, "members": described}, indent=1))
    return package_dir


# -- reading and scoring --------------------------------------------------------------------------

def read_package(package_dir: Path) -> list[PackageMember]:
    """The members `PACKAGE_FILE` lists, read as data."""
    path = Path(package_dir) / PACKAGE_FILE
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        members = [PackageMember(**{k: m.get(k) for k in PackageMember.__dataclass_fields__})
                   for m in content["members"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PackageError(f"{path}: not a package written by relevance.register ({error})") from None
    if content.get("format") != PACKAGE_FORMAT or not members:
        raise PackageError(f"{path}: format {content.get('format')!r} with {len(members)} member(s); this code "
                           f"reads format {PACKAGE_FORMAT} with at least one member: register the run again")
    for member in members:
        folder = (Path(package_dir) / str(member.folder)).resolve()
        if not member.run_id or not member.model_digest or Path(package_dir).resolve() not in folder.parents:
            raise PackageError(f"{path}: member {member.__dict__} does not name a run, its model digest and a "
                               "folder inside the package")
    return members


def default_cache_dir() -> str:
    """Where base models are cached, as conf/paths/default.yaml says: $RELEVANCE_CACHE, else
    $RELEVANCE_ROOT/.cache, else ./.cache."""
    root = os.environ.get("RELEVANCE_ROOT", os.getcwd())
    return os.environ.get("RELEVANCE_CACHE", os.path.join(root, ".cache"))


class RelevancePyfunc(mlflow.pyfunc.PythonModel):
    """Scores competition rows as `relevance.predict` does: one run, or a fold ensemble (mean probability,
    thresholds tuned on the folds' pooled out-of-fold scores). `context.artifacts["package"]`: the folder
    `write_package` wrote; `context.model_config`: see `MODEL_CONFIG_KEYS`."""

    def load_context(self, context) -> None:
        from relevance.artifacts import load_model_folder, read_run_config
        from relevance.evaluation.threshold import load_thresholds
        from relevance.model_digests import verify_model_folder
        from relevance.predict import (check_compute_dtype_override, expect_trained_head, scoring_compute_dtype,
                                       trained_compute_dtype)

        config = dict(context.model_config or {})
        unknown = sorted(set(config) - set(MODEL_CONFIG_KEYS))
        if unknown:
            raise MlflowException.invalid_parameter_value(
                f"model_config: unknown key(s) {', '.join(unknown)}; known: {', '.join(MODEL_CONFIG_KEYS)}")
        check_compute_dtype_override(config.get("compute_dtype"))
        package_dir = Path(context.artifacts["package"])
        cache_dir = str(config.get("cache_dir") or default_cache_dir())
        self.batch_size = config.get("batch_size")
        members = read_package(package_dir)
        # every member's folder and config is checked before any model loads (relevance.predict's checks)
        folders = []
        for member in members:
            folder = package_dir / member.folder
            verify_model_folder(folder, member.run_id, member.model_digest)
            run_cfg = read_run_config(folder, cache_dir, member.run_id)
            trained = trained_compute_dtype(run_cfg, {"quant.compute_dtype_resolved": member.compute_dtype_resolved}
                                            if member.compute_dtype_resolved else {})
            folders.append((member, folder, scoring_compute_dtype(member.run_id, trained,
                                                                  config.get("compute_dtype"))))
            expect_trained_head(run_cfg)  # as predict: the head the adapter restores is not reported missing
        self.ensemble_thresholds = load_thresholds(package_dir / ENSEMBLE_DIR) if len(members) > 1 else None
        self.trained = [load_model_folder(folder, cache_dir, compute_dtype=dtype, trust_remote_code=False,
                                          run=member.run_id) for member, folder, dtype in folders]
        self.run_ids = [member.run_id for member in members]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """The rows `relevance.predict` writes for `model_input` (a DataFrame of competition rows, or a
        list of row dicts): the input fields, `prediction` and `score`."""
        from relevance.predict import predict_table, score_table, write_and_report

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(list(model_input))
        with tempfile.TemporaryDirectory(prefix="relevance-serving-") as work:
            input_path, output_path = Path(work) / REQUEST_FILE, Path(work) / "scored.jsonl"
            # JSON as pandas writes it: numpy numbers become plain ones, a missing value null
            input_path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n"
                                          for row in json.loads(frame.to_json(orient="records", force_ascii=False))))
            table = read_request(self.trained[0].cfg, input_path)
            if self.ensemble_thresholds is None:
                predict_table(self.trained[0], table, input_path, output_path, self.batch_size)
            else:
                scores = np.mean([score_table(trained, table, self.batch_size) for trained in self.trained], axis=0)
                languages = sorted({lang for trained in self.trained for lang in trained.train_languages})
                write_and_report(table, input_path, output_path, scores, self.ensemble_thresholds, languages)
            rows = [json.loads(line) for line in output_path.read_text(encoding="utf-8").splitlines()]
        return pd.DataFrame(rows)


def read_request(run_cfg, input_path: Path):
    """`predict.read_input` on the request's rows; a bad row is an MlflowException INVALID_PARAMETER_VALUE
    (HTTP 400 from the scoring server) naming the row (0-based, as in `dataframe_records`) and the field."""
    from relevance.data.schema import DataError
    from relevance.predict import read_input

    try:
        return read_input(run_cfg, input_path, NULL_TARGET)
    except DataError as error:
        where = f"row {error.line - 1} (dataframe_records[{error.line - 1}])" if error.line > 0 else "the request"
        raise MlflowException.invalid_parameter_value(
            f"{where}: field '{error.field}': {error.detail}") from None


class _Context:
    """What `PythonModel.load_context` reads: the package folder and the load-time settings."""

    def __init__(self, artifacts: dict[str, str], model_config: dict | None):
        self.artifacts, self.model_config = artifacts, model_config or {}


class _LoadedPyfunc:
    """The object MLflow's pyfunc wrapper calls: `predict(data, params=None)`."""

    def __init__(self, model: RelevancePyfunc):
        self.python_model = model

    def predict(self, data, params=None):
        return self.python_model.predict(None, data, params)


def _load_pyfunc(data_path: str, model_config: dict | None = None) -> _LoadedPyfunc:
    """MLflow's entry point for `loader_module="relevance.serving"`: the package at `data_path`, checked
    and loaded (see the module docstring)."""
    model = RelevancePyfunc()
    model.load_context(_Context({"package": data_path}, model_config))
    return _LoadedPyfunc(model)
