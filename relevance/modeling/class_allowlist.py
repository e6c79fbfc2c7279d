"""The model classes and attention implementations a config may name: those of the project's model presets.

A model class is imported from its dotted path (`model.classifier_class`, `model.causal_lm_class`).
Only the paths the presets in `conf/model/*.yaml` name (or the schema's defaults, for a preset that
names none: transformers' Auto classes) are ever imported, so a config read back from the tracking
store cannot make a process import a module of its choosing (`subprocess.Popen`, `os.system`). A new
class is allowed by adding a preset that names it, on the machine that loads it.

`model.attn_implementation` is held to transformers' built-in implementations plus the presets' values:
transformers also takes a hub repository there (`kernels-community/...`) and runs its kernels.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import yaml

from relevance.config_choices import CONF_DIR
from relevance.modeling.model_config import ModelConfig

CLASS_KEYS = ("classifier_class", "causal_lm_class")
BUILT_IN_ATTENTION = frozenset({"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"})


class DisallowedClassError(ValueError):
    """A config names a model class the project's presets do not."""


def _schema_default(key: str):
    return next(f.default for f in dataclasses.fields(ModelConfig) if f.name == key)


@functools.cache
def model_presets(conf_dir: Path = CONF_DIR) -> dict[str, dict]:
    """conf/model/<name>.yaml, as plain data (no interpolation, no tags), by file name."""
    return {path.stem: yaml.safe_load(path.read_text()) or {} for path in sorted((conf_dir / "model").glob("*.yaml"))}


def allowed_model_classes(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """Every class path the model presets name, and the schema's defaults where a preset names none."""
    return frozenset(str(preset.get(key) or _schema_default(key))
                     for preset in model_presets(conf_dir).values() for key in CLASS_KEYS)


def allowed_attention(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    presets = {preset.get("attn_implementation") for preset in model_presets(conf_dir).values()}
    return BUILT_IN_ATTENTION | {str(value) for value in presets if value}


def allowed_gguf_packages(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """The Python packages the presets load GGUF weights from (`source: gguf_package`): such a package may
    be imported to assemble its file, so a stored config names no other."""
    names = {preset.get("id") for preset in model_presets(conf_dir).values() if preset.get("source") == "gguf_package"}
    for path in sorted((conf_dir / "translator").glob("*.yaml")):
        preset = yaml.safe_load(path.read_text()) or {}
        if preset.get("source") == "gguf_package":
            names.add(preset.get("model"))
    return frozenset(str(name) for name in names if name)


def class_path_problem(key: str, class_path) -> str | None:
    """Why `model.<key>=class_path` may not be imported, or None when it may."""
    allowed = allowed_model_classes()
    if isinstance(class_path, str) and class_path in allowed:
        return None
    return (f"model.{key}={class_path!r} is not a model class of this project's presets (conf/model/*.yaml name "
            f"{', '.join(sorted(allowed))}): to use it, add a preset naming it to conf/model/ on this machine")


def model_class(model_cfg, key: str):
    """The class `model.<key>` names, imported only when the presets name it."""
    problem = class_path_problem(key, model_cfg[key])
    if problem:
        raise DisallowedClassError(problem)
    from hydra.utils import get_class

    return get_class(model_cfg[key])
