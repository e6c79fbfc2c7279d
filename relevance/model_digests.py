"""A model folder's file digests: recorded when training logs it, checked before anything loads it.

Training writes `digests.json` into the model folder (the SHA-256 of every other file in it, by its
path in the folder) and tags the run with the SHA-256 of that file (`relevance.model_digest`).
`verify_model_folder` checks a downloaded folder against both before any of its files is read as a
model: a file changed, missing, or not recorded by training is an error naming the file.

What this guards: a model folder altered after training (a corrupted download, a file replaced in the
artifact store by someone who cannot also change the run's tags). What it does not: someone who can
rewrite both the artifacts and the run's tags (any user with write access to the run on the tracking
server) can record new digests; `relevance.stored_config` is what keeps such a run from running code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

DIGESTS_FILE = "digests.json"
MODEL_DIGEST_TAG = "relevance.model_digest"  # the SHA-256 of the model folder's digests.json
ALGORITHM = "sha256"


class ModelDigestError(ValueError):
    """A model folder does not match the digests its run recorded, or has none to check against."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(model_dir: Path) -> dict[str, Path]:
    """Every file under `model_dir` but the digests file itself, by its POSIX path in the folder."""
    model_dir = Path(model_dir)
    return {path.relative_to(model_dir).as_posix(): path for path in sorted(model_dir.rglob("*"))
            if (path.is_file() or path.is_symlink()) and path.relative_to(model_dir).as_posix() != DIGESTS_FILE}


def write_digests(model_dir: Path) -> str:
    """Write `digests.json` (every file's SHA-256) into `model_dir`; return that file's SHA-256 (the
    run's `relevance.model_digest` tag)."""
    files = {name: file_sha256(path) for name, path in folder_files(model_dir).items()}
    text = json.dumps({"algorithm": ALGORITHM, "files": files}, indent=1, sort_keys=True) + "\n"
    (Path(model_dir) / DIGESTS_FILE).write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_model_folder(model_dir: Path, run_id: str, recorded_digest: str | None, *,
                        allow_unverified: bool = False, override: str | None = None) -> None:
    """Check every file of a downloaded model folder against the digests its run recorded.

    `recorded_digest`: the run's `relevance.model_digest` tag (None: the run has none). A run logged
    before digests existed (neither the file nor the tag) is refused unless `allow_unverified`;
    `override` names the setting that allows it (e.g. `allow_unverified=true`), None when the caller
    has none. A mismatch is always an error."""
    model_dir = Path(model_dir)
    manifest = model_dir / DIGESTS_FILE
    if not manifest.is_file() or recorded_digest is None:
        missing = (f"no {DIGESTS_FILE} in its model folder" if not manifest.is_file()
                   else f"no tag {MODEL_DIGEST_TAG}")
        if allow_unverified:
            log.warning("run %s: %s; loading its model folder unverified (%s)", run_id, missing, override)
            print(f"WARNING: run {run_id}: its model folder is not verified ({missing}); loaded because of "
                  f"{override}", flush=True)
            return
        advice = (f"pass {override} to load it anyway, once you know where it came from" if override else
                  "start from a run logged since (training records the digests), or train that run again")
        raise ModelDigestError(
            f"run {run_id}: its model folder cannot be verified ({missing}: it was logged before training "
            f"recorded model digests, or the digests were removed): {advice}")
    text = manifest.read_bytes()
    if hashlib.sha256(text).hexdigest() != recorded_digest:
        raise ModelDigestError(f"run {run_id}: model/{DIGESTS_FILE} is not the one training recorded (its SHA-256 "
                               f"differs from the run's tag {MODEL_DIGEST_TAG}): the model folder was changed "
                               "after training; refusing to load it")
    try:
        recorded = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError):
        raise ModelDigestError(f"run {run_id}: model/{DIGESTS_FILE} is not a digest list") from None
    present = folder_files(model_dir)
    problems = []
    for name, path in present.items():
        if name not in recorded:
            problems.append(f"model/{name} was not recorded by training (an added file)")
        elif path.is_symlink() or file_sha256(path) != recorded[name]:
            problems.append(f"model/{name} differs from the digest training recorded")
    problems += [f"model/{name} is missing" for name in sorted(set(recorded) - set(present))]
    if problems:
        raise ModelDigestError(f"run {run_id}: its model folder is not the one training logged: "
                               + "; ".join(problems) + ". Refusing to load it")
