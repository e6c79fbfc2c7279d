"""Loading a pretrained model or tokenizer offline-first, and naming the weights for cache keys: a local
directory as is; a hub id from the local hub cache first, and from the hub only when it answers (without
network a clear `ModelUnavailableError` naming the setting to point at a local copy); the commit a hub
revision resolves to; the installed version of a weights package. Used by the translators and the
embedder."""

from __future__ import annotations

import functools
import os
import socket
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ModelUnavailableError(RuntimeError):
    """A model named in an augmentation setting cannot be loaded here."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False when offline mode is on)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def _looks_like_path(model_id: str) -> bool:
    """A hub id is `name` or `org/name`; anything else is meant as a directory."""
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or "\\" in model_id


def load_pretrained(load: Callable[[str, dict], Any], model_id: str, revision: str | None, *, what: str,
                    setting: str) -> Any:
    """`load(name_or_path, kwargs)` offline-first; a clear `ModelUnavailableError` naming
    `setting` (e.g. ``translator.model``) when the model cannot be had."""
    advice = (f"Download it where the hub is reachable (e.g. `huggingface-cli download {model_id}` or "
              f"save_pretrained) and pass {setting}=/path/to/local/dir")
    path = Path(model_id).expanduser()
    if path.is_dir():
        try:
            return load(str(path), {})
        except Exception as exc:
            raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded from that directory: {exc}. "
                                        f"Pass {setting}= a directory written by save_pretrained") from exc
    if _looks_like_path(model_id):
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded: no such directory. {advice}")
    try:  # already in the local hub cache?
        return load(model_id, {"revision": revision, "local_files_only": True})
    except Exception as exc:
        cached_error = exc
    if not hub_reachable():
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded (no network access to the hub?). "
                                    f"{advice}") from cached_error
    try:
        return load(model_id, {"revision": revision})
    except Exception as exc:
        raise ModelUnavailableError(f"{what} {model_id!r} could not be loaded from the hub ({exc}). {advice}") from exc


def resolve_device(device: str = "auto") -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def model_identity(model_id: str, revision: str | None) -> str:
    """What goes into cache keys for a model: a local directory by absolute path, a hub id at the commit its
    revision resolves to (`hub_commit`)."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return f"{path.resolve()}@{revision}" if revision else str(path.resolve())
    return f"{model_id}@{hub_commit(model_id, revision)}"


def hub_commit(model_id: str, revision: str | None) -> str:
    """The commit a hub id's `revision` (None: ``main``) names, read from the local hub cache without network:
    a commit hash as is; a branch or tag by the commit the cache recorded for it. A revision the cache has
    not seen stays as written (``main``): its first download then keys the next run by its commit, so a
    moved branch is never served from the old commit's translations."""
    revision = revision or "main"
    if len(revision) == 40 and all(c in string.hexdigits for c in revision):
        return revision.lower()
    from huggingface_hub import constants

    ref = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "refs" / revision
    try:
        return ref.read_text(encoding="utf-8").strip() or revision
    except OSError:
        return revision


@functools.cache
def package_version(package: str) -> str:
    """The installed version of the distribution that provides import package `package` (a GGUF weights
    package: a new release may ship other weights under the same file name)."""
    from importlib import metadata

    for name in [package, *metadata.packages_distributions().get(package, [])]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not-installed"
