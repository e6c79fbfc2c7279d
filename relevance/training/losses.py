"""Class weights for the cross-entropy loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def class_weights(setting, labels: Sequence[int]) -> torch.Tensor | None:
    """None, `balanced` (inverse class frequency, as scikit-learn's), or explicit [w0, w1]."""
    if setting is None:
        return None
    if setting == "balanced":
        counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=2).float()
        if (counts == 0).any():
            raise ValueError("trainer.class_weights=balanced needs both labels in the training data")
        return counts.sum() / (2.0 * counts)
    return torch.tensor([float(w) for w in setting])
