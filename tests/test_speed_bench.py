"""benchmarks/bench_training.py on the tiny model: variants run in their own processes
through the project's loader, Trainer and scorer, and the table and JSON come out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, cli_env


@pytest.mark.integration  # a benchmark on a tiny size: make test-integration
def test_training_benchmark_runs_on_the_tiny_model(shared_cache, tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/bench_training.py", "--model", "tiny_random",
                           "--variants", "naive,new", "--steps", "1", "--warmup-steps", "1", "--train-rows", "64",
                           "--dev-rows", "32", "--cache-dir", str(shared_cache), "--results-dir", str(tmp_path)],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result_file,) = tmp_path.glob("training-*.json")
    report = json.loads(result_file.read_text())
    naive, new = report["results"]
    assert naive["attn_implementation"] == "eager" and naive["compute_dtype"] == "torch.float32"
    assert new["attn_implementation"] == "sdpa" and new["batching"] == "tokens"
    assert naive["training"]["padded_tokens"] > naive["training"]["tokens"]  # every row padded to max_length
    assert new["training"]["rows"] > 0 and new["scoring"]["rows"] == 32
    assert naive["training"]["rows_per_s_vs_naive"] == 1.0
    assert 0 < new["training"]["share_of_bf16_peak"] and report["matmul_peak_flop_per_s"]["bfloat16"] > 0
    assert "| new defaults" in done.stdout


@pytest.mark.integration  # a benchmark on a tiny size: make test-integration
def test_translation_benchmark_runs_on_tiny_translators_and_the_rerun_is_cached(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/bench_translation.py", "--rows", "16",
                           "--cache-dir", str(tmp_path)],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| tiny_")]
    assert [row.split(" | ")[0] for row in rows] == ["| tiny_seq2seq", "| tiny_causal"]
    assert all(row.split(" | ")[2] == "16" and row.endswith("| yes |") for row in rows)  # re-run ≤ 5 %


@pytest.mark.integration  # a benchmark on a tiny size: make test-integration
def test_yes_no_head_benchmark_times_both_paths_and_they_agree(shared_cache, tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/bench_yes_no_head.py", "--model", "tiny_random", "--rows", "8",
                           "--repeats", "1", "--cache-dir", str(shared_cache), "--results-dir", str(tmp_path)],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result_file,) = tmp_path.glob("yes_no_head-*.json")
    result = json.loads(result_file.read_text())
    assert result["rows"] == 8
    assert result["head_seconds_per_step"] > 0 and result["lm_logits_to_keep_seconds_per_step"] > 0
    assert result["max_abs_logit_difference"] < 1e-2  # the same logits, both in the compute dtype
    assert "| yes_no head: two output rows |" in done.stdout
