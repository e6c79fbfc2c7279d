"""Regional compilation for training: each repeated block of the model (its decoder layers) runs a
`torch.compile`d forward while gradients are being computed, and its ordinary forward otherwise.

Why per layer and not the whole model: the layers share their code, so one graph serves all of them
(PyTorch's recipe "regional compilation"); compiling Gemma-3 270M this way took 80 s on 2 cores
(2026-12-02), where compiling it whole took over seven minutes. Batch and sequence sizes are dynamic
from the start (`dynamic=True`), so token-budget batches of every shape reuse the same graphs: four
in all, measured (forward and backward, for the first layer, whose input needs no gradient, and for
the others). With PyTorch's default (static first, dynamic after a new shape) it was eight graphs
and 130 s.

Why only with gradients: dev and test scoring during the run, and `relevance.predict` afterwards,
score under `torch.inference_mode()`, so they always run the eager layers, and a compiled run's
logged metrics are exactly what `predict` reproduces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The modules of the model's largest ModuleList whose members all share one class (its layers)."""
    best: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > len(best):
            if len({type(child) for child in module}) == 1:
                best = list(module)
    return best


def _forward_by_mode(eager: Callable, compiled: Callable) -> Callable:
    def forward(*args, **kwargs):
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
            return compiled(*args, **kwargs)
        return eager(*args, **kwargs)
    return forward


class CompiledLayers:
    """`on()` gives every repeated block a forward that is compiled while training; `off()` restores it."""

    def __init__(self, model: nn.Module):
        self.blocks = repeated_blocks(model)
        if not self.blocks:
            raise ValueError(f"{type(model).__name__} has no repeated blocks (decoder layers) to compile")

    def on(self) -> None:
        """Idempotent: a block whose forward is already switched (an instance attribute) keeps it."""
        for block in self.blocks:
            if "forward" in block.__dict__:
                continue
            eager = block.forward
            block.forward = _forward_by_mode(eager, torch.compile(eager, dynamic=True))

    def off(self) -> None:
        for block in self.blocks:
            block.__dict__.pop("forward", None)
