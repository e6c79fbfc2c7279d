"""benchmarks/gpu_check.py --tiny: the GPU check's whole path (random Gemma-3 built from a
config, nf4 + LoRA through the project's loader and Trainer with gradient checkpointing off
and on, scoring, the naive loop) runs in seconds on any machine, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, cli_env


@pytest.mark.integration  # a benchmark on a tiny size: make test-integration
def test_gpu_check_runs_tiny(shared_cache):
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--tiny", "--steps", "2", "--warmup-steps", "1",
                           "--score-rows", "32", "--cache-dir", str(shared_cache)],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| run")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| project, grad ckpt off", "| project, grad ckpt on", "| naive HF loop (eager, pad to max)"]
    assert all(row.rstrip(" |").endswith("yes") for row in rows)  # finite losses and scores, LoRA moved
