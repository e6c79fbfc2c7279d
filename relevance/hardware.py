"""What this machine can do, for choosing a compute dtype (modeling) or an embedding dtype (augment),
and for refusing to score a run in a dtype other than the one it was trained in (`relevance.predict`).

Test hook: `RELEVANCE_ASSUME_NO_BF16=1` in the environment makes this process see a machine without
bf16 (no native CPU units, no CUDA bf16), whatever it has: tests play a scoring machine that lacks
what the training machine had. Leave it unset otherwise.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

# CPU instructions that multiply bf16 matrices natively (Intel AMX tiles, AVX512-BF16 dot
# products); without them PyTorch emulates bf16 matmuls through fp32, and bf16 is slower.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
ASSUME_NO_BF16_ENV = "RELEVANCE_ASSUME_NO_BF16"  # the test hook (module docstring)


def assume_no_bf16() -> bool:
    """The test hook is set: report no bf16 support anywhere."""
    return os.environ.get(ASSUME_NO_BF16_ENV, "") not in ("", "0")


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux); elsewhere, PyTorch's own cpuinfo probe."""
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    probes = {"amx_bf16": torch.cpu._is_amx_tile_supported, "avx512_bf16": torch.cpu._is_avx512_bf16_supported}
    return frozenset(flag for flag, supported in probes.items() if supported())


def cpu_bf16_units(flags: set[str] | frozenset[str] | None = None) -> list[str]:
    """The native bf16 matrix units this CPU has (`flags` overrides its flags, for tests)."""
    if flags is None and assume_no_bf16():
        return []
    return sorted(set(CPU_BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def cuda_bf16_supported() -> bool:
    """A CUDA GPU is there and PyTorch computes bf16 on it."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not assume_no_bf16()


def missing_bf16(flags: set[str] | frozenset[str] | None = None) -> str | None:
    """Why this machine has no bf16 compute where a model would run (the CUDA GPU when there is
    one, else the CPU), or None when it has it: what `quant.compute_dtype=auto` picks bf16 on."""
    if flags is None and assume_no_bf16():
        return f"{ASSUME_NO_BF16_ENV} is set (the test hook that hides bf16)"
    if torch.cuda.is_available():
        return None if cuda_bf16_supported() else f"CUDA GPU {torch.cuda.get_device_name()} has no bf16 support"
    if cpu_bf16_units(flags):
        return None
    return f"CPU has no native bf16 matrix units (none of {', '.join(CPU_BF16_FLAGS)})"
