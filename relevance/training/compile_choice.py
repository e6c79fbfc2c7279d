"""Whether a run trains a compiled model (`trainer.torch_compile`: true | false | auto).

Compiling costs a fixed price up front (the first steps trace and generate kernels) and then makes
every step cheaper, so it pays on long runs only. `auto` decides from the run's own size: the
optimizer steps it will train, counted from its batches before training starts. On CPU it compiles
when there are at least `trainer.compile_min_steps` of them and the base is not quantized. It stays
eager on a GPU (compiling was measured on CPU only) and over bitsandbytes weights: compiled layers
around 4-bit weights ran 2.6x slower than eager ones (benchmarks/README.md, 2026-12-02). What is
compiled, and why scoring stays eager: relevance.training.compiled_layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from relevance.modeling.batching import TokenBudgetBatchSampler


@dataclass(frozen=True)
class CompileChoice:
    compile: bool
    reason: str  # one sentence, logged as the run's tag relevance.compile_reason
    planned_steps: int


def planned_optimizer_steps(trainer_cfg, train_lengths) -> int:
    """The optimizer steps `trainer_cfg` trains on rows of these token lengths (the Trainer's own count:
    batches per epoch, grouped by `grad_accum`, times epochs; or `max_steps` when set)."""
    if trainer_cfg.max_steps and trainer_cfg.max_steps > 0:
        return int(trainer_cfg.max_steps)
    if trainer_cfg.batching == "tokens":  # the training loader's own sampler counts its batches
        batches = len(TokenBudgetBatchSampler(train_lengths, trainer_cfg.max_tokens_per_batch))
    else:
        batches = math.ceil(len(train_lengths) / trainer_cfg.batch_size)
    steps_per_epoch = max(1, batches // trainer_cfg.grad_accum)
    return math.ceil(steps_per_epoch * trainer_cfg.epochs)


def choose_compile(trainer_cfg, planned_steps: int, on_gpu: bool, quantized_bits: int | None = None) -> CompileChoice:
    """What `trainer.torch_compile` means for this run, and why (`quantized_bits`: the base's `quant.bits`)."""
    setting = trainer_cfg.torch_compile
    if setting is True or setting is False:
        return CompileChoice(bool(setting), f"trainer.torch_compile={str(setting).lower()}", planned_steps)
    if on_gpu:
        return CompileChoice(False, "auto: eager on a GPU (compiling is measured on CPU only)", planned_steps)
    if quantized_bits:
        return CompileChoice(False, f"auto: eager over a {quantized_bits}-bit base (compiled layers around "
                                    "bitsandbytes weights were slower than eager ones)", planned_steps)
    least = trainer_cfg.compile_min_steps
    if planned_steps < least:
        return CompileChoice(False, f"auto: {planned_steps} optimizer steps < trainer.compile_min_steps={least}: "
                                    "compiling would cost more than it saves", planned_steps)
    return CompileChoice(True, f"auto: {planned_steps} optimizer steps >= trainer.compile_min_steps={least}: "
                               "compiling pays", planned_steps)
