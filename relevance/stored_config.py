"""A run's stored config and model folder are data: what they may not ask for, checked before anything loads.

`relevance.predict`, fold ensembles and `model.init_adapter` rebuild or reuse a model from what a run
logged (`model/run_config.yaml`, the model folder). Whoever can write to the tracking store can write
those files, so they are read as data and never decide what code runs on the machine that reads them:

- `load_stored_config`: the YAML is read as plain data; a value holding an interpolation (`${...}`,
  e.g. `${oc.env:HOME}`) is refused, naming the key (training stores its config resolved: such a value
  was not written by training), so nothing is resolved from stored text.
- `check_stored_run`: class paths only from the project's presets (`relevance.modeling.class_allowlist`),
  packages imported for their GGUF weights only if a preset names them, attention implementations
  only transformers' own; and remote code (the stored `model.trust_remote_code`, Python files in the
  model folder, an `auto_map` in one of its JSON files) only when the person loading it says so on
  their own command line (`predict trust_remote_code=true`). Every refusal is listed at once, naming the
  setting and how to allow it deliberately, before any file of the run is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_yaml_loader
from omegaconf.errors import OmegaConfBaseException

from relevance.modeling.class_allowlist import CLASS_KEYS, allowed_attention, allowed_gguf_packages, class_path_problem

INTERPOLATION = "${"
CODE_SUFFIXES = (".py", ".pyc", ".so")  # files a model folder would run (transformers' remote code, compiled modules)


class StoredConfigError(ValueError):
    """A stored run asks for something a reader of the store does not take from it."""


# -- reading --------------------------------------------------------------------------------------

def load_stored_config(path: Path, source: str) -> DictConfig:
    """The YAML at `path` (what `source` names, e.g. `run 4f0c… model/run_config.yaml`) as a config
    whose values are plain data: a value with an interpolation is refused, naming its key."""
    try:  # OmegaConf's own loader: YAML's safe loader (no tags that build objects), floats read as OmegaConf reads them
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=get_yaml_loader())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise StoredConfigError(f"{source}: not plain YAML data ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise StoredConfigError(f"{source}: not a mapping of config keys")
    found = list(_interpolations(data))
    if found:
        raise StoredConfigError(
            f"{source}: " + "; ".join(f"{key}={value!r} holds an interpolation" for key, value in found)
            + ". A stored config is data: nothing in it is resolved (training stores its config resolved, so "
            "this value was not written by training). If you wrote it, write the value itself instead")
    try:
        return OmegaConf.create(data)
    except OmegaConfBaseException as error:
        raise StoredConfigError(f"{source}: not a config ({str(error).splitlines()[0]})") from None


def _interpolations(node, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _interpolations(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _interpolations(value, f"{prefix}[{index}]")
    elif isinstance(node, str) and INTERPOLATION in node:
        yield prefix, node


# -- checking ---------------------------------------------------------------------------------------

def remote_code_in_folder(model_dir: Path) -> list[str]:
    """The model folder's own code: Python files, and `auto_map` entries of its JSON files (which point
    transformers at code in the folder)."""
    found = []
    model_dir = Path(model_dir)
    for path in sorted(model_dir.rglob("*")):
        name = path.relative_to(model_dir).as_posix()
        if path.suffix in CODE_SUFFIXES:
            found.append(f"the file model/{name}")
        elif path.suffix == ".json" and path.is_file():
            try:
                content = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(content, dict) and content.get("auto_map"):
                found.append(f"model/{name}'s auto_map ({json.dumps(content['auto_map'])[:200]})")
    return found


def check_stored_run(cfg: DictConfig, model_dir: Path | None, run: str, *, trust_remote_code: bool,
                     override: str = "trust_remote_code=true") -> list[str]:
    """Refuse (StoredConfigError, every problem at once) what the stored `cfg` and the model folder may not
    ask for. Returns the remote code `trust_remote_code` (the loader's own decision, never the store's)
    lets run, described for the person who decided it (empty when the run asks for none)."""
    problems, remote = [], []
    model = cfg.get("model") or {}
    for key in CLASS_KEYS:
        if key in model:
            problem = class_path_problem(key, model[key])
            if problem:
                problems.append(problem)
    attention = model.get("attn_implementation")
    if attention is not None and attention not in allowed_attention():
        problems.append(f"model.attn_implementation={attention!r} is not one of transformers' built-in "
                        f"implementations ({', '.join(sorted(allowed_attention()))}): another value names "
                        "a hub repository of kernels to run; add a preset naming it to conf/model/ to allow it")
    packages = allowed_gguf_packages()
    for prefix, key in (("model", "id"), ("translator", "model")):
        node = cfg.get(prefix) or {}
        if node.get("source") == "gguf_package" and node.get(key) not in packages:
            problems.append(f"{prefix}.{key}={node.get(key)!r} (source gguf_package) is not a package the presets "
                            f"load weights from ({', '.join(sorted(packages))}): it would be imported; add a preset "
                            f"naming it to conf/{prefix}/ to allow it")
    if model.get("trust_remote_code") is True:
        remote.append(f"model.trust_remote_code=true: the Python code of the backbone "
                      f"{model.get('source')}:{model.get('id')}"
                      + (f"@{model.get('revision')}" if model.get("revision") else "")
                      + " (its auto_map), and of the model folder")
    elif model.get("trust_remote_code") not in (None, False):
        problems.append(f"model.trust_remote_code={model.get('trust_remote_code')!r} is not a boolean")
    if model_dir is not None:
        remote += remote_code_in_folder(model_dir)
    if remote and not trust_remote_code:
        problems += [f"{item}: remote code runs only when the person loading the run says so: pass {override} "
                     "after reading that code" for item in remote]
    if problems:
        raise StoredConfigError(f"{run} asks for what is never taken from the store:\n  - " + "\n  - ".join(problems)
                                + "\nNothing of the run was imported or loaded.")
    return remote


def trust_notice(run: str, cfg: DictConfig, remote: list[str]) -> str:
    """What `trust_remote_code=true` lets run, for the person who passed it."""
    model = cfg.get("model") or {}
    backbone = f"{model.get('source')}:{model.get('id')}" + (f"@{model.get('revision')}" if model.get("revision") else "")
    lines = [f"trust_remote_code=true (your command line): {run} loads with trust_remote_code=True, so the Python "
             f"code its backbone ({backbone}) or its model folder names runs on this machine"]
    lines += [f"  - {item}" for item in remote] or ["  - the run's stored config and model folder ask for none"]
    return "\n".join(lines)
