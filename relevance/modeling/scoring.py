"""P(relevant) for every row of an encoded table: one loop shared by training's
final evaluation and `relevance.predict`, so both give identical scores."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from relevance.modeling.inputs import collator


def score_rows(model, head, tokenizer, encoded: Dataset, batch_size: int) -> np.ndarray:
    """Rows are scored in length order (less padding) and returned in table order."""
    lengths = np.asarray(encoded["length"])
    order = np.argsort(-lengths, kind="stable")
    collate = collator(tokenizer)
    device = next(model.parameters()).device
    scores = np.empty(len(encoded), dtype=np.float64)
    input_ids = encoded["input_ids"]
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="scoring", unit="batch"):
            index = order[start:start + batch_size]
            features = [{"input_ids": input_ids[i], "attention_mask": [1] * len(input_ids[i])} for i in index]
            batch = {k: v.to(device) for k, v in collate(features).items()}
            logits = head.pair_logits(model, batch).float()
            scores[index] = torch.softmax(logits, dim=-1)[:, 1].cpu().numpy()
    return scores
