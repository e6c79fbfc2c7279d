"""The run's configuration: typed schemas registered in Hydra's ConfigStore, and the cross-field
checks every entry point runs right after composing.

`conf/train.yaml` (and `conf/predict.yaml`) start their defaults list with a schema, so an unknown
key or a value of the wrong type fails at compose time; what only makes sense together is checked
by `validate_config`, which raises one `ConfigError` listing every problem, each naming its key.

    schemas            the dataclasses of every group, `TrainConfig`, `PredictConfig`, `register_configs`
    validation         `ConfigError`, `check_keys_against_schema`, `validate_config` (runs the checks below)
    checks_data        task.* and data.*: prompt slots, test split, k-fold, query overlap, demo data folder
    checks_model       quant.* with peft.*, head.*, model.init_adapter
    checks_training    trainer.* and the augmentation mix (augment.*)
    checks_run         evaluation.* and tracking.*
    checks_translator  translator.* (`translator_problems`, also for a translator node under another prefix)

Import from `relevance.config`: the names below are its public ones.
"""

from __future__ import annotations

from relevance.config.checks_translator import translator_problems
from relevance.config.schemas import (
    COMPETITION_LANGUAGES,
    DataConfig,
    DemoDataConfig,
    EvaluationConfig,
    HeadConfig,
    PathsConfig,
    PeftConfig,
    PredictConfig,
    QuantConfig,
    TaskConfig,
    TaskNegativesConfig,
    TrackingConfig,
    TrainConfig,
    TrainerConfig,
    register_configs,
)
from relevance.config.validation import (
    NULL_TARGET_POLICIES,
    ConfigError,
    check_keys_against_schema,
    validate_config,
)

__all__ = [
    "COMPETITION_LANGUAGES",
    "NULL_TARGET_POLICIES",
    "ConfigError",
    "DataConfig",
    "DemoDataConfig",
    "EvaluationConfig",
    "HeadConfig",
    "PathsConfig",
    "PeftConfig",
    "PredictConfig",
    "QuantConfig",
    "TaskConfig",
    "TaskNegativesConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrainerConfig",
    "check_keys_against_schema",
    "register_configs",
    "translator_problems",
    "validate_config",
]
