"""Process-wide settings every entry point wants before heavy imports run."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import warnings
from contextlib import contextmanager


def quiet_third_party_logs() -> None:
    """Keep the console about the run: third-party notices go to the log at WARNING, and the ones
    that never apply here are dropped at their source, one logger and one message at a time
    (`drop_messages`; docs/tour.md lists them)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("transformers", "datasets", "mlflow", "alembic", "peft", "bitsandbytes", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # bitsandbytes >= 0.49 on a CPU with AVX512-BF16 tries a kernel from the Hugging Face Hub (`kernels`
    # package) and, failing, advises `pip install kernels`; its built-in CPU kernel is the one we test and use.
    drop_messages(BNB_CPU_OPS_LOGGER, "bnb-hub-kernel", lambda message: message.startswith(BNB_HUB_KERNEL_MESSAGE))
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
    warnings.filterwarnings("ignore", message=".*dataset source can be interpreted in multiple ways.*")
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")


BNB_CPU_OPS_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_HUB_KERNEL_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"
TRANSFORMERS_LOAD_LOGGER = "transformers.modeling_utils"
_LOAD_REPORT_ROW = re.compile(
    r"^(?P<key>\S+)\s*\|\s*(?P<status>MISSING|UNEXPECTED|MISMATCH|CONVERSION|OWNED|SKIPPED)\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _DropMessages(logging.Filter):
    """Drops the records of one logger whose message `predicate` accepts; lets every other one through."""

    def __init__(self, key: str, predicate):
        super().__init__()
        self.key, self.predicate = key, predicate

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self.predicate(record.getMessage())
        except Exception:  # noqa: BLE001 - a filter that fails must never hide the message
            return True


def drop_messages(logger_name: str, key: str, predicate) -> None:
    """Drop `logger_name`'s messages that `predicate(message)` accepts (one filter per `key`: calling
    again replaces it). Narrow on purpose: one logger, one kind of message; nothing global."""
    logger = logging.getLogger(logger_name)
    for existing in [f for f in logger.filters if isinstance(f, _DropMessages) and f.key == key]:
        logger.removeFilter(existing)
    logger.addFilter(_DropMessages(key, predicate))


def load_report_rows(message: str) -> list[tuple[str, str]] | None:
    """(key, status) of each row of transformers' `LOAD REPORT` table; None for any other message."""
    text = _ANSI.sub("", message)
    if "LOAD REPORT" not in text:
        return None
    return [(m["key"], m["status"]) for line in text.splitlines() if (m := _LOAD_REPORT_ROW.match(line.strip()))]


def only_missing_in(message: str, modules: list[str]) -> bool:
    """A load report whose every row is a MISSING weight of one of `modules` (e.g. the head `score`)."""
    rows = load_report_rows(message)
    return bool(rows) and all(status == "MISSING" and any(key == m or key.startswith(f"{m}.") for m in modules)
                              for key, status in rows)


def expect_new_head(modules: list[str]) -> None:
    """The backbone loads without its classifier head (`modules`, e.g. `score`): transformers' load report
    listing exactly those weights as MISSING says nothing we do not know, and is dropped. Training fits the
    head (the caller says so in one line); predict restores the trained head from the run's adapter right
    after. Any other row (another missing weight, an unexpected or mismatched one) keeps the whole report."""
    drop_messages(TRANSFORMERS_LOAD_LOGGER, "expected-new-head", lambda message: only_missing_in(message, modules))


def exit_on_sigterm() -> None:
    """Turn SIGTERM (sent by `timeout`, SLURM and Kubernetes) into a normal exit, so `finally`
    blocks and context managers clean up (temp files, MLflow run status) as on Ctrl-C."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


# --------------------------------------------------------------------------- stop signals of training jobs

class RunInterrupted(SystemExit):
    """A stop signal (SIGTERM from `timeout`, SLURM, Kubernetes; SLURM's pre-timeout signal)
    ended the job: exit status 128 + the signal's number. A SystemExit, so `except Exception`
    (a sweep's failure policy, Hydra's job wrapper) lets it through and the job stops."""

    def __init__(self, signum: int, where: str = ""):
        super().__init__(128 + signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.where = where

    @property
    def reason(self) -> str:
        return f"{self.signal_name} received" + (f" {self.where}" if self.where else "")

    def at(self, where: str) -> "RunInterrupted":
        """The same stop, saying where it took effect ("at step 12: checkpoint saved")."""
        return RunInterrupted(self.signum, where)

    def __str__(self) -> str:
        return self.reason


_received: RunInterrupted | None = None  # the first stop signal this process received
_deferring = False  # inside a training loop that stops at its next step boundary


def stop_on_signals(names) -> None:
    """Turn each named signal (e.g. ["SIGTERM", "SIGUSR1"]) into RunInterrupted, raised at
    once, or, inside `stop_at_step_boundary()`, at the training loop's next step boundary
    (after a checkpoint: relevance.training.checkpoints). A second signal stops at once. A signal
    that arrives while the process is already exiting (a SystemExit or KeyboardInterrupt being
    handled: submitit's requeue, an earlier stop) is recorded and lets that exit finish its clean-up.
    Only the main thread may set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in names:
        signal.signal(signal.Signals[str(name)], _on_stop_signal)


def _on_stop_signal(signum, frame) -> None:
    global _received
    first = _received is None
    _received = RunInterrupted(signum)
    if _deferring and first:
        logging.getLogger(__name__).warning(
            "%s received: stopping after the current training step, once a checkpoint is saved "
            "(send it again to stop at once)", _received.signal_name)
        return
    exiting = sys.exc_info()[0]
    if exiting is not None and issubclass(exiting, (SystemExit, KeyboardInterrupt)):
        # the process is already on its way out (submitit's requeue calls sys.exit, and SLURM's SIGTERM for that
        # requeue follows it; a first stop signal; Ctrl-C): raising here would abort the exit's own clean-up,
        # e.g. ending the MLflow run KILLED half-way through its commit, and the requeued job would find it RUNNING
        logging.getLogger(__name__).warning("%s received while the process is exiting (%s): the exit goes on",
                                            _received.signal_name, exiting.__name__)
        return
    raise _received


def stop_requested() -> RunInterrupted | None:
    """The stop signal this process received, if any (checked at step boundaries)."""
    return _received


@contextmanager
def stop_at_step_boundary():
    """Within this block a stop signal only records itself: the training loop checks
    `stop_requested()` after each step, saves a checkpoint and raises. A stop received when
    no step boundary is left (the loop's end) is raised when the block ends."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _received is not None:
        raise _received


# --------------------------------------------------------------------------- notebooks

def execute_notebook(notebook, cwd: str, timeout: int = 1800) -> None:
    """Run a notebook (nbformat) top to bottom in a python3 kernel, from folder `cwd`. The kernel talks over
    IPC sockets in a temp folder, not loopback TCP: nothing else on the machine can connect to it, and
    ipykernel has no cause to warn that the kernel "is running over TCP without encryption"."""
    import tempfile

    import nbclient
    from jupyter_client import KernelManager

    with tempfile.TemporaryDirectory(prefix="relevance-kernel-") as sockets:
        manager = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
        try:
            nbclient.NotebookClient(notebook, km=manager, timeout=timeout,
                                    resources={"metadata": {"path": cwd}}).execute()
        finally:
            if manager.has_kernel:
                manager.shutdown_kernel(now=False)
