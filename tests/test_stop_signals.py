"""relevance.runtime's stop signals in a process of their own (signal handlers are process-wide): a signal
raises RunInterrupted at once, except while the process is already exiting, where it lets that exit's
clean-up finish (the SLURM requeue race: submitit's sys.exit, then SLURM's SIGTERM)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from relevance.runtime import stop_on_signals, stop_requested

    stop_on_signals(["SIGTERM"])
    marker = sys.argv[1]

    class Run:  # a run context whose exit has clean-up to do (as MLflowRun.__exit__ ends the run)
        def __enter__(self):
            return self
        def __exit__(self, exc_type, exc, tb):
            os.kill(os.getpid(), signal.SIGTERM)  # the signal lands during the clean-up
            sum(range(10_000))
            with open(marker, "w") as out:
                out.write(f"clean-up done; stop recorded: {stop_requested()}")
            return False

    with Run():
        if sys.argv[2] == "exit":
            sys.exit(3)  # as submitit's requeue does
        if sys.argv[2] == "error":
            raise ValueError("a failed job")
""")


def run_script(tmp_path, case: str):
    marker = tmp_path / f"{case}.txt"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(marker), case], capture_output=True, text=True)
    return done, marker.read_text() if marker.exists() else None


def test_a_signal_during_an_exit_lets_the_clean_up_finish(tmp_path):
    done, marker = run_script(tmp_path, "exit")
    assert done.returncode == 3, done.stderr  # the exit it interrupted, not the signal's 143
    assert marker == "clean-up done; stop recorded: SIGTERM received"
    assert "SIGTERM received while the process is exiting (SystemExit): the exit goes on" in done.stderr


def test_a_signal_during_normal_work_or_an_error_stops_at_once(tmp_path):
    for case in ("run", "error"):  # the body ends normally / an ordinary failure is being handled
        done, marker = run_script(tmp_path, case)
        assert done.returncode == 128 + 15, (case, done.stderr)
        assert marker is None, case  # raised at once, inside the clean-up
