"""Calls to the tracking store that wait, a bounded and logged while, when another process holds it.

A SQLite store is one file: while another process holds its lock (a `sqlite3` shell in a transaction,
a long query, a backup) every write and most reads fail after SQLite's own wait (MLflow sets 20 s) with
"database is locked". `retrying(client)` wraps an MlflowClient so that each call that fails so is tried
again `tracking.store_retries` times, waiting `tracking.store_retry_seconds`, then twice that, and so on,
each wait logged ("store busy (database is locked): retry 2/5 in 4 s"). When the retries are spent, the
call raises `StoreBusyError`, which says what holds the store and which keys wait longer.

A store whose own disk is full ("database or disk is full") is not retried: `StoreFullError` names the
store and says to free space. Any other error passes through unchanged.

The policy is the process's (`configure(cfg.tracking)`, done by each training job and each TrackedRun);
until configured, the defaults of `TrackingConfig` apply.
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from relevance.files import DiskFullError

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_MARKERS = ("database is locked", "database table is locked")
FULL_MARKERS = ("database or disk is full", "no space left on device")
DB_ERROR_LOGGER = "mlflow.store.db.utils"  # logs each failed SQL call at ERROR, with its traceback


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5  # tracking.store_retries: tries after the first
    first_wait_seconds: float = 2.0  # tracking.store_retry_seconds: doubled after each try

    def waits(self) -> list[float]:
        return [self.first_wait_seconds * 2 ** attempt for attempt in range(self.retries)]


_policy = RetryPolicy()


def policy_from(tracking_cfg) -> RetryPolicy:
    """The policy `tracking.store_retries` / `tracking.store_retry_seconds` ask for, checked."""
    retries = tracking_cfg.get("store_retries", RetryPolicy.retries)
    wait = tracking_cfg.get("store_retry_seconds", RetryPolicy.first_wait_seconds)
    retries = RetryPolicy.retries if retries is None else retries
    wait = RetryPolicy.first_wait_seconds if wait is None else wait
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"tracking.store_retries={retries!r}: a whole number ≥ 0 (0: never retry a busy store)")
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
        raise ValueError(f"tracking.store_retry_seconds={wait!r}: seconds between 0 and 3600 (the first wait, "
                         "doubled after each retry)")
    return RetryPolicy(int(retries), float(wait))


def configure(tracking_cfg) -> RetryPolicy:
    """Make the policy of `tracking_cfg` this process's; returns it."""
    global _policy
    _policy = policy_from(tracking_cfg)
    return _policy


def current_policy() -> RetryPolicy:
    return _policy


class StoreBusyError(RuntimeError):
    """The store stayed locked by another process through every retry."""


class StoreFullError(DiskFullError):
    """The tracking store's own disk is full (an OSError with errno ENOSPC, like DiskFullError)."""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def store_fault(exc: BaseException) -> str | None:
    """'busy' when `exc` is the store being locked by another process, 'full' when the store's disk is
    full, else None. Only database errors count: a full artifact disk is not the store's (see
    relevance.files.disk_full_in)."""
    for link in _chain(exc):
        name = type(link).__module__ + "." + type(link).__name__
        if not ("sqlite3" in name or "sqlalchemy" in name or "psycopg" in name or "mlflow" in name):
            continue
        text = str(link).lower()
        if any(marker in text for marker in BUSY_MARKERS):
            return "busy"
        if "sqlite3" in name or "sqlalchemy" in name:
            if any(marker in text for marker in FULL_MARKERS):
                return "full"
    return None


class _QuietBusyErrors(logging.Filter):
    """MLflow logs every failed SQL call with its traceback; a busy store's are this module's to report."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().lower()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1]).lower()
        return not any(marker in text for marker in (*BUSY_MARKERS, *FULL_MARKERS))


logging.getLogger(DB_ERROR_LOGGER).addFilter(_QuietBusyErrors())


def call_with_retries(call: Callable[[], T], what: str, store: str, policy: RetryPolicy | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, tried again per `policy` while the store is busy (see the module docstring)."""
    policy = policy or _policy
    waits = policy.waits()
    started = time.monotonic()
    for attempt in range(len(waits) + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - sorted below; anything else is re-raised as it is
            fault = store_fault(exc)
            if fault == "full":
                raise StoreFullError(errno.ENOSPC, f"the tracking store's disk is full ({store}: {_sql_error(exc)}) "
                                                  f"during {what}: free space on that disk (or point "
                                                  "tracking.tracking_uri elsewhere) and run again", store) from exc
            if fault != "busy":
                raise
            if attempt == len(waits):
                raise StoreBusyError(
                    f"the tracking store {store} stayed busy ({_sql_error(exc)}) during {what} for "
                    f"{time.monotonic() - started:.0f} s, through {len(waits)} retries: another process holds it "
                    "(a sqlite3 shell in a transaction, a long query, a backup). Free it, or wait longer with "
                    "tracking.store_retries / tracking.store_retry_seconds") from exc
            log.warning("store busy (%s): retry %d/%d in %g s (%s)", _sql_error(exc), attempt + 1, len(waits),
                        waits[attempt], what)
            sleep(waits[attempt])
    raise AssertionError("unreachable")


def _sql_error(exc: BaseException) -> str:
    """The database's own words ("database is locked"), without SQLAlchemy's SQL text."""
    for link in _chain(exc):
        if type(link).__module__.startswith(("sqlite3", "psycopg")):
            return str(link)
    return str(exc).split("\n", 1)[0][:200]


class RetryingClient:
    """An MlflowClient whose public methods wait out a busy store (`call_with_retries`). Attributes
    pass through; `unwrapped` is the client itself (for a heartbeat that must never block long)."""

    def __init__(self, client, policy: RetryPolicy | None = None):
        self.unwrapped = client
        self._policy = policy

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.unwrapped, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args, **kwargs):
            return call_with_retries(lambda: attribute(*args, **kwargs), name, str(self.unwrapped.tracking_uri),
                                     self._policy)

        return call


def retrying(client, policy: RetryPolicy | None = None) -> RetryingClient:
    """`client` with retries (the process's policy unless `policy`); a RetryingClient stays as it is."""
    return client if isinstance(client, RetryingClient) else RetryingClient(client, policy)


def retrying_client(tracking_uri: str, policy: RetryPolicy | None = None) -> RetryingClient:
    """A RetryingClient on `tracking_uri`, opened with retries too (MLflow reads a SQLite store's tables when
    a process first opens it)."""
    from mlflow.tracking import MlflowClient

    return RetryingClient(call_with_retries(lambda: MlflowClient(tracking_uri), "opening the store",
                                            str(tracking_uri), policy), policy)
