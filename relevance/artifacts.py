"""A run's model folder: written once by training, read back by `relevance.predict`.

The folder (logged to MLflow as the artifact `model/`) holds the adapter with the
classifier head (or the full model), the tokenizer, `threshold.json` (the global threshold and the
per-language ones, when the run tuned them), the resolved
run config and the training languages: everything needed to rebuild the model
exactly as training's final scoring saw it (`load_model_folder`). Another run can start from it
(`model.init_adapter=<run id>`: `check_init_adapter`, `fetch_init_adapter`).

A folder fetched back from the store is data, never code (docs/security.md): checked against the digests
training recorded (`fetch_model_folder`, relevance/model_digests.py), its config read without resolving
anything and checked for what it may not ask for (relevance/stored_config.py) before any of it loads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, ListConfig, OmegaConf

from relevance.evaluation.threshold import ThresholdPolicy, Thresholds, load_thresholds, save_threshold

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
RUN_CONFIG_FILE = "run_config.yaml"
DATA_SUMMARY_FILE = "data_summary.json"  # training languages, for unseen-language metrics at predict time


@dataclass
class TrainedModel:
    """A logged run's model, ready to score: its config, the rebuilt model, the tuned thresholds."""

    cfg: DictConfig
    loaded: object  # relevance.modeling.loader.LoadedModel
    thresholds: Thresholds
    train_languages: list[str]


def save_model_folder(model_dir: Path, cfg: DictConfig, loaded, thresholds: Thresholds, policy: ThresholdPolicy,
                      metric: str, value: float, train_languages: list[str]) -> Path:
    """Write everything `load_model_folder` needs into `model_dir`.

    `run_config.yaml` is the run's resolved config with `quant.compute_dtype` set to the dtype
    training computed in (`loaded.compute_dtype`: `auto` as resolved on the training machine, the
    run's param `quant.compute_dtype_resolved`), so predict scores as training scored wherever it
    runs; what was asked for stays in the run's `config/` artifact and param `quant.compute_dtype`."""
    loaded.model.save_pretrained(model_dir)
    loaded.tokenizer.save_pretrained(model_dir)
    save_threshold(model_dir, thresholds, metric, value, policy)
    run_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if loaded.compute_dtype is not None:
        run_cfg.quant.compute_dtype = str(loaded.compute_dtype).removeprefix("torch.")
    (model_dir / RUN_CONFIG_FILE).write_text(OmegaConf.to_yaml(run_cfg))
    (model_dir / DATA_SUMMARY_FILE).write_text(json.dumps({"train_languages": train_languages}))
    write_portable_description(model_dir, run_cfg, loaded, thresholds)
    return model_dir


def write_portable_description(model_dir: Path, run_cfg: DictConfig, loaded, thresholds: Thresholds) -> None:
    """What makes the folder usable away from this clone (docs/portable-model.md): the base named portably
    (`base_model.json`, and the adapter's `base_model_name_or_path`, instead of a path into this machine's
    cache: relevance/modeling/base_reference.py) and the model card (`model_card.json`, `README.md`:
    relevance/model_card.py). Written before training digests the folder."""
    from relevance.model_card import card_facts, write_model_card
    from relevance.modeling.base_reference import base_record, write_base_record
    from relevance.modeling.quantization import weights_dtype

    record = base_record(run_cfg.model, loaded.source, run_cfg.paths.cache_dir)
    write_base_record(model_dir, record)
    threshold_file = json.loads((model_dir / "threshold.json").read_text())
    compute = loaded.compute_dtype
    facts = card_facts(run_cfg, loaded.tokenizer, loaded.head, thresholds, threshold_file, record,
                       compute_dtype=str(compute).removeprefix("torch.") if compute is not None else "float32",
                       weights_dtype=str(weights_dtype(run_cfg.quant, run_cfg.peft, compute)).removeprefix("torch."))
    write_model_card(model_dir, facts)


def read_run_config(model_dir: Path, cache_dir: str, run: str | None = None) -> DictConfig:
    """The run's resolved config, read as data (`relevance.stored_config.load_stored_config`: an
    interpolation is refused, nothing is resolved), with this machine's cache folder (models,
    augmentation caches). `run` names the run in errors."""
    from relevance.stored_config import load_stored_config

    where = f"run {run}: {MODEL_ARTIFACT}/{RUN_CONFIG_FILE}" if run else str(Path(model_dir) / RUN_CONFIG_FILE)
    cfg = load_stored_config(Path(model_dir) / RUN_CONFIG_FILE, where)
    if not isinstance(cfg.get("paths"), DictConfig):
        cfg.paths = {}
    cfg.paths.cache_dir = cache_dir
    return cfg


def load_model_folder(model_dir: Path, cache_dir: str, *, compute_dtype: str, trust_remote_code: bool = False,
                      run: str | None = None) -> TrainedModel:
    """Rebuild a trained run's model from its folder, as training scored it, computing in
    `compute_dtype` (the dtype it trained in: `relevance.predict.scoring_compute_dtype`).

    The stored config is checked first (`relevance.stored_config.check_stored_run`: class paths of the
    presets only, no remote code unless `trust_remote_code`), and `trust_remote_code` is the caller's
    decision (the command line of the person loading it), whatever the stored config says."""
    from relevance.modeling.loader import load_for_inference
    from relevance.stored_config import check_stored_run

    model_dir = Path(model_dir)
    cfg = read_run_config(model_dir, cache_dir, run)
    check_stored_run(cfg, model_dir, f"run {run}" if run else str(model_dir), trust_remote_code=trust_remote_code)
    cfg.model.trust_remote_code = bool(trust_remote_code)
    loaded = load_for_inference(cfg, model_dir, compute_dtype=compute_dtype)
    train_languages = json.loads((model_dir / DATA_SUMMARY_FILE).read_text())["train_languages"]
    loaded.train_languages = train_languages
    return TrainedModel(cfg, loaded, load_thresholds(model_dir), train_languages)


def download_model_folder(client: MlflowClient, run_id: str, work_dir: Path) -> Path:
    """The run's logged `model/` folder, downloaded under `work_dir` (a full disk there: DiskFullError naming it,
    not MLflow's "Failed to download artifacts")."""
    from relevance.files import disk_full_in, free_bytes, full_disk_error

    try:
        return Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(work_dir)))
    except Exception as error:
        # MLflow keeps a failed file's cause to its debug log: a download folder without room for it is the cause
        if disk_full_in(error) is None:
            try:
                needed = sum(item.file_size or 0 for item in client.list_artifacts(run_id, MODEL_ARTIFACT))
            except Exception:  # noqa: BLE001 - the download's own error is the one to report then
                raise error from None
            if (free_bytes(work_dir) or 0) >= needed:
                raise
        raise full_disk_error(error, {"the download folder (TMPDIR for predict)": work_dir},
                              f"downloading run {run_id}'s {MODEL_ARTIFACT}/") from error


def fetch_model_folder(client: MlflowClient, run_id: str, work_dir: Path, *, allow_unverified: bool = False,
                       override: str | None = None) -> Path:
    """The run's `model/` folder, downloaded under `work_dir` and checked against the digests the run
    recorded (`relevance.model_digests.verify_model_folder`: a file changed, added or missing is an error
    naming it). A run logged before digests is refused unless `allow_unverified` (`override`: the setting
    that allows it, for the message)."""
    from relevance.model_digests import MODEL_DIGEST_TAG, verify_model_folder

    model_dir = download_model_folder(client, run_id, work_dir)
    recorded = client.get_run(run_id).data.tags.get(MODEL_DIGEST_TAG)
    verify_model_folder(model_dir, run_id, recorded, allow_unverified=allow_unverified, override=override)
    return model_dir


# -- starting a run from another run's adapter (model.init_adapter) ---------------------------------

INIT_ADAPTER_KEY = "model.init_adapter"
ADAPTER_CONFIG_FILE = "adapter_config.json"
BACKBONE_KEYS = ("source", "id", "revision", "gguf_file", "tiny")  # model.*: which weights LoRA sits on


class InitAdapterError(ValueError):
    """`model.init_adapter` names a run whose adapter this run cannot start from."""


def check_init_adapter(cfg: DictConfig, work_dir: Path | None = None) -> DictConfig:
    """Check, from its run config alone (no model loads, no adapter weights download), that the run
    `model.init_adapter` names exists, logged a LoRA adapter, and fits this run: the same backbone,
    head and LoRA shape (rank, target modules). Returns that run's config."""
    import tempfile

    from relevance.tracking.store import tracking_client

    run_id = str(cfg.model.init_adapter)
    client = tracking_client(cfg.tracking.tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise InitAdapterError(f"{INIT_ADAPTER_KEY}={run_id}: no such run in {cfg.tracking.tracking_uri} (check "
                               "the id and tracking.tracking_uri / MLFLOW_TRACKING_URI)") from None
    logged = {item.path for item in client.list_artifacts(run_id, MODEL_ARTIFACT)}
    for name in (RUN_CONFIG_FILE, ADAPTER_CONFIG_FILE):
        if f"{MODEL_ARTIFACT}/{name}" not in logged:
            what = "a LoRA adapter (it was trained with peft=none?)" if name == ADAPTER_CONFIG_FILE else "a model"
            raise InitAdapterError(f"{INIT_ADAPTER_KEY}={run_id}: that run logged no {what} "
                                   f"({MODEL_ARTIFACT}/{name} is missing)")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        from relevance.stored_config import load_stored_config

        path = client.download_artifacts(run_id, f"{MODEL_ARTIFACT}/{RUN_CONFIG_FILE}", tmp)
        source = load_stored_config(Path(path), f"{INIT_ADAPTER_KEY}={run_id}: {MODEL_ARTIFACT}/{RUN_CONFIG_FILE}")
    problems = list(_init_adapter_mismatches(cfg, source))
    if problems:
        raise InitAdapterError(f"{INIT_ADAPTER_KEY}={run_id} cannot start this run: " + "; ".join(problems))
    theirs, mine = OmegaConf.select(source, "task.name"), OmegaConf.select(cfg, "task.name")
    if theirs != mine:  # the 1st place's QI-then-QC: allowed, and said
        log.info("%s=%s: cross-task initialisation, from a %s run to this %s run", INIT_ADAPTER_KEY, run_id,
                 theirs, mine)
    return source


def plain(value):
    """A config node as plain Python (lists and dicts compare by value)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


def _init_adapter_mismatches(cfg: DictConfig, source: DictConfig):
    mine = {k: plain(OmegaConf.select(cfg, f"model.{k}")) for k in BACKBONE_KEYS}
    theirs = {k: plain(OmegaConf.select(source, f"model.{k}")) for k in BACKBONE_KEYS}
    if mine != theirs:
        differ = [k for k in BACKBONE_KEYS if mine[k] != theirs[k]]
        yield (f"it fine-tuned another backbone ({', '.join(f'model.{k}={theirs[k]!r}' for k in differ)}; this run: "
               f"{', '.join(f'model.{k}={mine[k]!r}' for k in differ)}): an adapter fits only the weights it was "
               f"trained on (model={source.model.name} here too)")
    for key in ("head.name", "model.classifier_head"):
        if plain(OmegaConf.select(cfg, key)) != plain(OmegaConf.select(source, key)):
            yield (f"its head differs ({key}={OmegaConf.select(source, key)!r}, this run: "
                   f"{OmegaConf.select(cfg, key)!r}): use {key.split('.')[0]}={OmegaConf.select(source, key)} "
                   f"or another run")
    if OmegaConf.select(source, "peft.name") != "lora":
        yield f"it trained with peft={OmegaConf.select(source, 'peft.name')}, not LoRA"
    for key in ("peft.r", "peft.alpha", "peft.target_modules", "peft.layers_to_transform"):
        if plain(OmegaConf.select(cfg, key)) != plain(OmegaConf.select(source, key)):
            yield (f"its LoRA has {key}={plain(OmegaConf.select(source, key))!r}, this run "
                   f"{plain(OmegaConf.select(cfg, key))!r}: set {key} as that run did")


def fetch_init_adapter(cfg: DictConfig, work_dir: Path) -> Path:
    """The model folder of the run `model.init_adapter` names, checked (`check_init_adapter`),
    downloaded under `work_dir` and verified against the digests that run recorded (a run logged
    before digests is refused): what `load_for_training` starts LoRA and the head from."""
    work_dir.mkdir(parents=True, exist_ok=True)
    from relevance.tracking.store import tracking_client

    check_init_adapter(cfg, work_dir)
    client = tracking_client(cfg.tracking.tracking_uri)
    return fetch_model_folder(client, str(cfg.model.init_adapter), work_dir)
