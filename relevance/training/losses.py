"""Class weights for the cross-entropy loss."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

REBALANCING_STRATEGIES = ("balance",)  # augment strategies that already correct the label imbalance


def class_weight_problems(setting, strategies: Iterable[str]) -> list[str]:
    """What is wrong with `trainer.class_weights` for a run of these augment strategies, one message each
    (for the config validation): explicit weights that are not positive numbers (a zero or negative weight
    unlearns a class), or any weights with `balance`, which already evens the labels out of the mix (the
    imbalance would be corrected twice)."""
    if setting is None:
        return []
    problems = []
    if setting != "balanced" and not all(_positive(weight) for weight in setting):
        problems.append(f"trainer.class_weights={_shown(setting)}: each weight must be a positive number "
                        "(e.g. [1, 3]), or use balanced or null")
    rebalancing = [name for name in strategies if name in REBALANCING_STRATEGIES]
    if rebalancing:
        problems.append(f"trainer.class_weights={_shown(setting)} with augment {', '.join(rebalancing)}: the "
                        "mix is balanced already and the weights would correct the imbalance twice; set "
                        f"trainer.class_weights=null or remove {', '.join(rebalancing)} from augment")
    return problems


def class_weights(setting, labels: Sequence[int]) -> torch.Tensor | None:
    """None, `balanced` (inverse class frequency, as scikit-learn's), or explicit [w0, w1] (positive)."""
    if setting is None:
        return None
    if setting == "balanced":
        counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=2).float()
        if (counts == 0).any():
            raise ValueError("trainer.class_weights=balanced needs both labels in the training data")
        return counts.sum() / (2.0 * counts)
    problems = class_weight_problems(setting, ())
    if problems:
        raise ValueError(problems[0])
    return torch.tensor([float(w) for w in setting])


def _positive(weight) -> bool:
    try:
        value = float(weight)
    except (TypeError, ValueError):
        return False
    return not isinstance(weight, bool) and math.isfinite(value) and value > 0


def _shown(setting) -> str:
    """The setting as typed on the command line (`[1, 3]`, not `ListConfig([1, 3])`)."""
    return setting if isinstance(setting, str) else f"[{', '.join(str(w) for w in setting)}]"
