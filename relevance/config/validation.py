"""What every entry point calls right after composing: `validate_config` refuses keys no schema
knows (`check_keys_against_schema`), then runs the cross-field checks a schema cannot express and
raises one `ConfigError` listing every problem, each naming its key and what to change.

The checks themselves live by concern in `checks_data`, `checks_model`, `checks_training`,
`checks_run` and `checks_translator`; `_problems` below runs them in a fixed order, so the
message lists problems the same way every time.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from relevance.config.checks_data import (
    demo_data_problems,
    fold_problems,
    query_overlap_problems,
    task_problems,
    test_split_problems,
)
from relevance.config.checks_model import head_problems, init_adapter_problems, quant_peft_problems
from relevance.config.checks_run import evaluation_problems, tracking_problems
from relevance.config.checks_training import augment_problems, trainer_problems
from relevance.config.checks_translator import translator_problems
from relevance.config.schemas import TrainConfig
from relevance.modeling.sources import source_names


class ConfigError(ValueError):
    """A composed config asks for something that cannot work; the message says what to change."""


NULL_TARGET_POLICIES = ("drop", "empty", "error")


def check_keys_against_schema(cfg: DictConfig, schema: type) -> None:
    """Every key of `cfg` is one the schema knows. Hydra lets `+group.key=value` add a key to a
    typed node (`+trainer.lr_rate=1`, what its own error message suggests after a typo); such a
    key is read by nothing, so it fails here, before any work, naming the key."""
    from omegaconf.errors import ConfigKeyError

    try:
        OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(cfg, resolve=False))
    except ConfigKeyError as error:
        key = getattr(error, "full_key", None) or str(error)
        raise ConfigError(f"unknown config key {key}: no code reads it (a typo?); "
                          f"remove it or use a key the schema of that group lists") from None


def validate_config(cfg: DictConfig) -> None:
    """Unknown keys, then cross-field checks that a schema cannot express. Raises ConfigError
    listing every problem."""
    check_keys_against_schema(cfg, TrainConfig)
    problems = list(_problems(cfg))
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _problems(cfg: DictConfig):
    yield from task_problems(cfg)
    if cfg.model.source not in source_names():
        yield f"model.source={cfg.model.source!r}: use one of {source_names()}"
    if cfg.model.source == "tiny_random" and cfg.model.tiny is None:
        yield "model.source=tiny_random needs model.tiny (the tiny model's dimensions)"
    if cfg.model.source == "gguf_package" and not cfg.model.gguf_file:
        yield "model.source=gguf_package needs model.gguf_file (the GGUF file name inside the package)"
    if cfg.data.dev_file is None and cfg.data.folds is None and not 0 < cfg.data.dev_fraction < 1:
        yield f"data.dev_fraction={cfg.data.dev_fraction}: must be between 0 and 1 when data.dev_file is null"
    yield from test_split_problems(cfg.data)
    yield from fold_problems(cfg.data)
    if cfg.model.init_adapter is not None:
        yield from init_adapter_problems(cfg)
    yield from evaluation_problems(cfg.evaluation)
    for key in ("max_train_rows", "max_dev_rows", "max_test_rows"):
        if cfg.data[key] is not None and cfg.data[key] < 1:
            yield f"data.{key}={cfg.data[key]}: must be a positive number of rows, or null for all"
    if cfg.data.null_target not in NULL_TARGET_POLICIES:
        yield f"data.null_target={cfg.data.null_target!r}: use one of {NULL_TARGET_POLICIES}"
    yield from query_overlap_problems(cfg.data)
    yield from demo_data_problems(cfg)
    if cfg.data.generate is None and not cfg.data.dir:
        yield f"data={cfg.data.name} needs data.dir=PATH (the folder holding the JSON-lines files)"
    yield from quant_peft_problems(cfg)
    yield from head_problems(cfg)
    yield from trainer_problems(cfg)
    yield from tracking_problems(cfg.tracking)
    if not cfg.augment:
        yield "augment is empty: choose at least one strategy, e.g. augment=[original]"
    yield from augment_problems(cfg)
    yield from translator_problems(cfg.translator)
