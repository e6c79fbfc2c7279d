"""GPU time of one job from its token counts and a throughput, and the wall time of a sweep whose
jobs share N GPUs, one job per GPU at a time (the Ray and SLURM launchers' way)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True)
class JobTokens:
    """What one job computes: its training tokens (every epoch) and the tokens it scores (dev after each
    epoch and at the end, then test)."""

    trained: float
    scored: float


def job_seconds(tokens: JobTokens, train_tokens_per_s: float, scoring_speedup: float) -> float:
    """Seconds of one GPU: training at `train_tokens_per_s`, scoring `scoring_speedup` times faster
    (a forward pass only)."""
    if train_tokens_per_s <= 0 or scoring_speedup <= 0:
        raise ValueError("throughput_tokens_per_s and scoring_speedup must be positive")
    return tokens.trained / train_tokens_per_s + tokens.scored / (train_tokens_per_s * scoring_speedup)


def wall_seconds(job_seconds_list: list[float], gpus: int) -> float:
    """The sweep's wall time on `gpus` GPUs: the longest job first, each to the GPU free soonest (a
    greedy schedule within 4/3 of the best one; with more GPUs than jobs, the longest job)."""
    if gpus < 1:
        raise ValueError(f"gpus={gpus}: at least one GPU")
    free_at = [0.0] * min(gpus, max(len(job_seconds_list), 1))
    for seconds in sorted(job_seconds_list, reverse=True):
        heapq.heapreplace(free_at, free_at[0] + seconds)
    return max(free_at)
