"""`python -m relevance.<module> args...` without paying for its imports each time.

Every CLI run starts by importing torch, transformers, PEFT, MLflow, datasets, scikit-learn and Hydra (about
8 s on 2 cores) and ends by tearing those modules down (about 2 s); the suites start about 200 runs. A warm
interpreter has imported them once (one per test process); each run is a fork of it that does what
`python -m` does: its working folder, `sys.path[0]` and `sys.argv` set, the module executed as `__main__`,
stdout and stderr to files (first what the imports printed), then the interpreter's exit in its order
(threads that are not daemons joined, atexit handlers run, streams flushed) and its exit status (1 and a
traceback on an uncaught error; -N after signal N, as a subprocess reports it). Only the module
teardown is skipped: nothing a run leaves on disk depends on it.

What differs from a fresh process, and how it is kept from mattering: what is read at import time is read in
the warm interpreter, so it always has the run's environment (a run whose environment differs from the one it
started with, a test's PYTHONPATH or MLFLOW_* variable, starts it again with that one) and the modules' files as
they were when it started (a run after one of them was edited, a test editing the package, starts it again); a
fresh `python -m` puts the working folder first on `sys.path`, so a run from a folder that holds a module of
its own under an imported name (a copy of `relevance`) is started as a plain subprocess, which imports that one.
`RELEVANCE_TEST_COLD_CLI=1` starts every run as a plain subprocess instead.

Run as a script, this file is the warm interpreter: requests on stdin, one JSON line each
({"module", "args", "cwd", "env", "stdout", "stderr", "startup"}), each answered with the run's exit status on
the pipe whose descriptor is its argument; its own stdout and stderr (what the imports printed) are files in
the "startup" folder, copied to the start of each run's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# what the CLIs import before they do anything (relevance.train and relevance.predict import the rest)
PRELOAD = ("relevance.train", "relevance.predict")
COLD_ENV = "RELEVANCE_TEST_COLD_CLI"


class WarmCli:
    """The warm interpreter of one test process, started on first use, started again when a run's environment
    is not the one it has (a restart costs what a plain subprocess's imports cost), stopped with the process."""

    def __init__(self) -> None:
        self.env: dict[str, str] | None = None
        self.process: subprocess.Popen | None = None
        self.runs = 0  # runs forked so far
        self.restarts_for_edits = 0  # restarts because a module it had imported was edited

    @staticmethod
    def enabled() -> bool:
        return os.environ.get(COLD_ENV) != "1"

    def run(self, module: str, args: list[str], cwd: Path, env: dict[str, str], out_dir: Path) -> int | None:
        """The exit status of `python -m relevance.<module> args` run from `cwd` with `env`, its output in
        `out_dir`; None when a fork cannot stand in for that run (`cwd` shadows an imported module): start it as
        a plain subprocess."""
        if self.process is None or self.process.poll() is not None or env != self.env:
            self.stop()
            self._start(env)
        request = {"module": module, "args": args, "cwd": str(cwd), "env": env,
                   "stdout": str(out_dir / "stdout"), "stderr": str(out_dir / "stderr")}
        answer = self._ask(request)
        if "edited" in answer:  # its modules are not the files on disk any more: a fresh one imports those
            self.stop()
            self._start(env)
            self.restarts_for_edits += 1
            answer = self._ask(request)
        if "shadowed" in answer:
            return None
        self.runs += 1
        return int(answer["returncode"])

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps({**request, "startup": str(self.startup_dir)}) + "\n")
        self.process.stdin.flush()
        answer = self.answers.readline()
        if not answer:
            raise RuntimeError(f"the warm interpreter ended ({self.process.wait()}) while running "
                               f"relevance.{request['module']}")
        return json.loads(answer)

    def _start(self, env: dict[str, str]) -> None:
        """The warm interpreter with `env`: what it prints while importing goes to `startup_dir` (each run
        prints it first, as a fresh process would), its answers come on a pipe of their own."""
        self.env = dict(env)
        self.startup_dir = Path(tempfile.mkdtemp(prefix="relevance-warm-cli-"))
        read_fd, write_fd = os.pipe()
        with open(self.startup_dir / "stdout", "wb") as out, open(self.startup_dir / "stderr", "wb") as err:
            self.process = subprocess.Popen([sys.executable, __file__, str(write_fd)], env=self.env,
                                            stdin=subprocess.PIPE, stdout=out, stderr=err, text=True,
                                            pass_fds=(write_fd,), cwd=tempfile.gettempdir())
        os.close(write_fd)
        self.answers = os.fdopen(read_fd, "r")
        if self.answers.readline().strip() != "ready":
            self.process.wait()
            raise RuntimeError(f"the warm interpreter did not start ({self.process.returncode}):\n"
                               f"{(self.startup_dir / 'stderr').read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        """End the warm interpreter: its stdin closed, it leaves its loop (no run is in flight between calls)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.stdin.close()
                self.process.wait(timeout=60)  # bound: a stop; the interpreter exits as soon as its stdin closes
            self.answers.close()
            shutil.rmtree(self.startup_dir, ignore_errors=True)
        self.process = None


# --------------------------------------------------------------------------- the warm interpreter itself

def _serve() -> None:
    import importlib

    sys.path.pop(0)  # this file's folder: the runs' modules come from their working folder, as with `python -m`
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD:  # a run executes its module as __main__, as `python -m` does: no other copy of it
        package, _, leaf = name.rpartition(".")
        del sys.modules[name]
        delattr(sys.modules[package], leaf)
    answers = os.fdopen(int(sys.argv[1]), "w")
    sys.stdout.flush()
    sys.stderr.flush()
    answers.write("ready\n")
    answers.flush()
    imported = _imported()
    for line in sys.stdin:
        request = json.loads(line)
        why_not = _why_not_forked(request["cwd"], imported)
        if why_not:
            answers.write(json.dumps(why_not) + "\n")
            answers.flush()
            continue
        pid = os.fork()
        if pid == 0:
            try:
                answers.close()
                _run_in_child(request)  # leaves with os._exit
            finally:  # an error before the run started: never back into this loop, which is the parent's
                os._exit(70)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


def _file_stamp(path: str) -> tuple[int, int] | None:
    """A file's modification time and size; None when it is gone."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _imported() -> dict[str, dict[str, tuple[int, int] | None]]:
    """What this interpreter has imported, taken once when it is ready (its modules never change after that:
    runs import in their forks): each module file's stamp, and each top-level module's file."""
    files = {path: _file_stamp(path) for path in {getattr(module, "__file__", None) for module in sys.modules.values()}
             if path}
    top_level = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
                 if "." not in name and name != "__main__"}
    return {"files": files, "top_level": top_level}


def _why_not_forked(cwd: str, imported: dict) -> dict | None:
    """Why a fork of this interpreter would not run what `python -m` would from `cwd`: an imported module's
    file edited or removed since it was imported, or a module of `cwd`'s own under the name of an imported
    top-level module (`python -m` puts `cwd` first on `sys.path`, so a fresh run would import that one)."""
    import importlib.machinery

    for path, stamp in imported["files"].items():
        if _file_stamp(path) != stamp:
            return {"edited": path}
    for name, path in imported["top_level"].items():
        spec = importlib.machinery.PathFinder.find_spec(name, [cwd])
        if spec is not None and spec.has_location and spec.origin != path:
            return {"shadowed": spec.origin}
    return None


def _run_in_child(request: dict) -> None:
    import atexit
    import runpy
    import threading

    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(target, Path(request["startup"], name).read_bytes())  # what the imports printed, as in any run
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(0, closefd=False)
    os.chdir(request["cwd"])
    sys.path.insert(0, os.getcwd())  # what `python -m` puts first
    sys.argv = ["-m", *request["args"]]  # run_module sets argv[0] to the module's file, as `python -m` does
    try:
        runpy.run_module(f"relevance.{request['module']}", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = _exit_status(stop.code)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught error
        sys.excepthook(*sys.exc_info())
        code = 1
    # the interpreter's exit, in its order: wait for the threads that are not daemons, run the atexit handlers,
    # flush the streams; then leave without tearing down thousands of modules one by one (~2 s, nothing a run
    # can observe once its files are closed)
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _exit_status(code: object) -> int:
    """What the interpreter makes of `sys.exit(code)`: None 0, a number itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    _serve()
