"""What this machine's CPU can do, for choosing a compute dtype (modeling) or an embedding dtype (augment)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

# CPU instructions that multiply bf16 matrices natively (Intel AMX tiles, AVX512-BF16 dot
# products); without them PyTorch emulates bf16 matmuls through fp32, and bf16 is slower.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


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
    return sorted(set(CPU_BF16_FLAGS) & (cpu_flags() if flags is None else flags))
