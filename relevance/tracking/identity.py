"""A run's identity: everything its result depends on, so that a re-run sweep reuses a
FINISHED run (and a re-run continues a KILLED run's checkpoints) only when nothing it was
computed from has changed.

    config    `config_hash`: the unresolved config minus where things are stored
    data      `data_digest`: the content of the train/dev/test files the data config points to
    code      `code_digest`: the package's source as it runs (every file under `relevance/`), plus the
              source file of any chosen strategy registered from outside the package; and each chosen
              strategy's `version`. Docs (README, docs/, experiments/) are not code: editing them
              changes nothing.
    numerics  `numerics`: the compute dtype this machine resolves `quant.compute_dtype` to, the
              backbone's source digest (which weights), and the versions of torch, transformers,
              peft and bitsandbytes

Every training run carries each part as a tag (relevance.tracking.tags) and all of them
combined as `relevance.run_identity`, the tag resume looks up (relevance.tracking.resume).
When a job finds no run of its identity but a finished run of its config, it says which
part changed (`changed_parts`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from relevance.augment.base import STRATEGIES, strategy_versions
from relevance.data.loading import data_file_paths
from relevance.tracking.tags import (CODE_DIGEST_TAG, CONFIG_HASH_TAG, DATA_DIGEST_TAG, NUMERICS_TAG,
                                     RUN_IDENTITY_TAG, STRATEGY_VERSIONS_TAG)

STORAGE_GROUPS = ("paths", "tracking")  # where things are stored, not what is computed
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # relevance/, as imported (a copy elsewhere is that copy)
NUMERIC_PACKAGES = ("torch", "transformers", "peft", "bitsandbytes")


@dataclass(frozen=True)
class RunIdentity:
    config_hash: str
    data_digest: str
    code_digest: str
    strategy_versions: dict[str, str]  # in mix order
    numerics: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return short_digest(asdict(self))

    def tags(self) -> dict[str, str]:
        return {CONFIG_HASH_TAG: self.config_hash, DATA_DIGEST_TAG: self.data_digest,
                CODE_DIGEST_TAG: self.code_digest, STRATEGY_VERSIONS_TAG: json.dumps(self.strategy_versions),
                NUMERICS_TAG: json.dumps(self.numerics, sort_keys=True), RUN_IDENTITY_TAG: self.digest}

    def describe(self) -> str:
        """Why two runs count as the same, for the resume message."""
        strategies = ", ".join(f"{name} v{v}" for name, v in self.strategy_versions.items()) or "none"
        numerics = ", ".join(f"{k} {v}" for k, v in sorted(self.numerics.items()))
        return (f"identical config {self.config_hash}, data digest {self.data_digest}, code {self.code_digest}, "
                f"strategies {strategies}, numerics {numerics}")


def run_identity(cfg: DictConfig) -> RunIdentity:
    return RunIdentity(config_hash(cfg), data_digest(cfg.data), code_digest(list(cfg.augment)),
                       strategy_versions(list(cfg.augment)), numerics(cfg))


def changed_parts(old_tags: dict[str, str], new: RunIdentity) -> list[str]:
    """What differs between a logged run's identity tags and `new`, e.g. `code 1a2b… → 3c4d…`,
    `numerics: torch 2.12.0 → 2.13.0`; older runs' missing tags count as changed."""
    new_tags = new.tags()
    changes = []
    for name, tag in (("config", CONFIG_HASH_TAG), ("data", DATA_DIGEST_TAG), ("code", CODE_DIGEST_TAG),
                      ("strategy versions", STRATEGY_VERSIONS_TAG)):
        if old_tags.get(tag) != new_tags[tag]:
            changes.append(f"{name} {old_tags.get(tag, '(not recorded)')} → {new_tags[tag]}")
    try:
        old_numerics = json.loads(old_tags.get(NUMERICS_TAG) or "{}")
    except json.JSONDecodeError:
        old_numerics = {}
    differ = [f"{key} {old_numerics.get(key, '(not recorded)')} → {value}" for key, value in sorted(new.numerics.items())
              if old_numerics.get(key) != value]
    if differ:
        changes.append("numerics: " + ", ".join(differ))
    return changes


def short_digest(value: Any) -> str:
    """16 hex digits of the SHA-256 of `value` as canonical JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_hash(cfg: DictConfig, ignore: tuple[str, ...] = STORAGE_GROUPS) -> str:
    """What a run computes, as configured: the config minus where things are stored. Taken
    unresolved, so values that only interpolate storage paths (the demo data folder under
    the cache) don't change it, while a literal data.dir does."""
    unresolved = OmegaConf.to_container(cfg, resolve=False)
    return short_digest({k: v for k, v in unresolved.items() if k not in ignore})


def data_digest(data_cfg: DictConfig) -> str:
    """The content of the data a run reads: the train, dev and test files' SHA-256.

    Generated demo data is digested by its generator settings instead: the generator is
    deterministic, so its rows are a function of those settings and of the code, which the
    code digest already stands for; and no file needs writing before the run starts
    (`load_splits` writes them). A file that cannot be read counts as "missing" rather than
    failing here: the run then fails reading it, as a FAILED run with the error.
    """
    if data_cfg.generate is not None:
        return short_digest({"generated": OmegaConf.to_container(data_cfg.generate, resolve=True)})
    return short_digest({role: file_sha256(path) for role, path in data_file_paths(data_cfg).items()})


def file_sha256(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return "missing"


@functools.cache
def package_source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (16 hex digits) of every file under the package folder, by relative path and content;
    byte-code caches left out. Computed once per process: the code a process runs does not change."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix not in (".pyc", ".pyo")):
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_digest(strategy_names: list[str]) -> str:
    """The package's source digest, combined with the source of each chosen strategy whose module lies
    outside the package (a strategy a user registered from a module of their own)."""
    outside = {}
    for name in strategy_names:
        cls = STRATEGIES.get(name)
        source = inspect.getsourcefile(cls) if cls is not None else None
        if source and PACKAGE_DIR not in Path(source).resolve().parents:
            outside[name] = file_sha256(Path(source))
    if not outside:
        return package_source_digest()
    return short_digest({"package": package_source_digest(), "strategies": outside})


def numerics(cfg: DictConfig) -> dict[str, str]:
    """What decides the numbers besides config, data and code: the compute dtype resolved on this
    machine, the backbone's weights (its source digest), and the numeric libraries' versions."""
    from relevance.modeling.quantization import choose_compute_dtype
    from relevance.modeling.sources import source_digest

    dtype, _ = choose_compute_dtype(cfg.quant.compute_dtype)
    # only a packaged GGUF made of chunks is assembled under the cache (a config composed outside a Hydra
    # app may not resolve it; the file found in its package then needs none)
    cache_dir = Path(OmegaConf.select(cfg, "paths.cache_dir", default=None, throw_on_resolution_failure=False)
                     or ".cache")
    values = {"compute_dtype": str(dtype).removeprefix("torch."), "backbone": source_digest(cfg.model, cache_dir)}
    values.update({package: installed_version(package) for package in NUMERIC_PACKAGES})
    return values


def installed_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"
