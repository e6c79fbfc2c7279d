"""A run's model folder: written once by training, read back by `relevance.predict`.

The folder (logged to MLflow as the artifact `model/`) holds the adapter with the
classifier head (or the full model), the tokenizer, `threshold.json` (the global threshold and the
per-language ones, when the run tuned them), the resolved
run config and the training languages: everything needed to rebuild the model
exactly as training's final scoring saw it (`load_model_folder`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from relevance.evaluation.threshold import ThresholdPolicy, Thresholds, load_thresholds, save_threshold

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
    """Write everything `load_model_folder` needs into `model_dir`."""
    loaded.model.save_pretrained(model_dir)
    loaded.tokenizer.save_pretrained(model_dir)
    save_threshold(model_dir, thresholds, metric, value, policy)
    (model_dir / RUN_CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (model_dir / DATA_SUMMARY_FILE).write_text(json.dumps({"train_languages": train_languages}))
    return model_dir


def read_run_config(model_dir: Path, cache_dir: str) -> DictConfig:
    """The run's resolved config, with this machine's cache folder (models, augmentation caches)."""
    cfg = OmegaConf.load(Path(model_dir) / RUN_CONFIG_FILE)
    cfg.paths.cache_dir = cache_dir
    return cfg


def load_model_folder(model_dir: Path, cache_dir: str) -> TrainedModel:
    """Rebuild a trained run's model from its folder, as training scored it."""
    from relevance.modeling.loader import load_for_inference

    model_dir = Path(model_dir)
    cfg = read_run_config(model_dir, cache_dir)
    loaded = load_for_inference(cfg, model_dir)
    train_languages = json.loads((model_dir / DATA_SUMMARY_FILE).read_text())["train_languages"]
    loaded.train_languages = train_languages
    return TrainedModel(cfg, loaded, load_thresholds(model_dir), train_languages)


def download_model_folder(client: MlflowClient, run_id: str, work_dir: Path) -> Path:
    """The run's logged `model/` folder, downloaded under `work_dir`."""
    return Path(client.download_artifacts(run_id, MODEL_ARTIFACT, str(work_dir)))
