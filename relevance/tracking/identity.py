"""A run's identity: everything its result depends on, so that a re-run sweep reuses a
FINISHED run only when nothing it was computed from has changed.

    config  `config_hash`: the unresolved config minus where things are stored
    data    `data_digest`: the content of the train/dev files the data config points to
    code    the package version, and the version of each chosen augmentation strategy
            (`Strategy.version`, bumped when a fix changes the rows a strategy makes)

Every training run carries each part as a tag (relevance.tracking.tags) and the four
combined as `relevance.run_identity`, the tag resume looks up (relevance.tracking.resume).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from relevance.augment.base import strategy_versions
from relevance.data.loading import data_file_paths
from relevance.tracking.tags import (CONFIG_HASH_TAG, DATA_DIGEST_TAG, PACKAGE_VERSION_TAG, RUN_IDENTITY_TAG,
                                     STRATEGY_VERSIONS_TAG)

STORAGE_GROUPS = ("paths", "tracking")  # where things are stored, not what is computed


@dataclass(frozen=True)
class RunIdentity:
    config_hash: str
    data_digest: str
    package_version: str
    strategy_versions: dict[str, str]  # in mix order

    @property
    def digest(self) -> str:
        return short_digest(asdict(self))

    def tags(self) -> dict[str, str]:
        return {CONFIG_HASH_TAG: self.config_hash, DATA_DIGEST_TAG: self.data_digest,
                PACKAGE_VERSION_TAG: self.package_version,
                STRATEGY_VERSIONS_TAG: json.dumps(self.strategy_versions), RUN_IDENTITY_TAG: self.digest}

    def describe(self) -> str:
        """Why two runs count as the same, for the resume message."""
        strategies = ", ".join(f"{name} v{v}" for name, v in self.strategy_versions.items()) or "none"
        return (f"identical config {self.config_hash}, data digest {self.data_digest}, "
                f"package {self.package_version}, strategies {strategies}")


def run_identity(cfg: DictConfig) -> RunIdentity:
    return RunIdentity(config_hash(cfg), data_digest(cfg.data), package_version(),
                       strategy_versions(list(cfg.augment)))


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
    """The content of the data a run reads: the train and dev files' SHA-256.

    Generated demo data is digested by its generator settings instead: the generator is
    deterministic, so its rows are a function of those settings and of the code, which the
    package version already stands for; and no file needs writing before the run starts
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


def package_version() -> str:
    try:
        return version("relevance")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
