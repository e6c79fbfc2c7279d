"""The tracking store, opened safely by processes that start together.

MLflow creates and migrates a SQLite store's schema the first time a process opens it,
and two processes doing so at once race inside alembic ("Online migration expected to
match one row"). `tracking_client` opens a SQLite store once per process under a file
lock beside the database (`mlflow.db.lock`): the first process creates and migrates it,
the others wait, then find it ready. Other stores (a tracking server, PostgreSQL) are
opened as they are: their server or database serialises this itself.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from mlflow.tracking import MlflowClient

from relevance.tracking.store_retry import retrying_client

SQLITE_PREFIX = "sqlite:///"
MIGRATION_LOCK_TIMEOUT_S = 600  # a migration of a large store can take minutes

_opened: set[str] = set()  # SQLite URIs this process has opened (the schema is ready)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative or absolute), else None."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    path = tracking_uri[len(SQLITE_PREFIX):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def prepare_store(tracking_uri: str) -> None:
    """Create and migrate a SQLite store once, under a file lock; nothing for other stores."""
    path = sqlite_path(tracking_uri)
    if path is None or tracking_uri in _opened:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=MIGRATION_LOCK_TIMEOUT_S):
        retrying_client(tracking_uri).search_experiments(max_results=1)  # opening the store migrates it
    _opened.add(tracking_uri)


def tracking_client(tracking_uri: str) -> MlflowClient:
    """An MlflowClient on a store that is ready to use (see the module docstring), waiting out a busy
    store (relevance.tracking.store_retry)."""
    prepare_store(tracking_uri)
    return retrying_client(tracking_uri)
