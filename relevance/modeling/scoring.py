"""P(relevant) for every row of an encoded table: one loop shared by training's
final evaluation and `relevance.predict`, so both give identical scores."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from relevance.modeling.batching import scoring_batches
from relevance.modeling.inputs import collator


def score_rows(model, head, tokenizer, encoded: Dataset, batch_size: int,
               max_tokens: int | None = None) -> np.ndarray:
    """Rows are scored longest first (less padding), in batches of `batch_size` rows or,
    given `max_tokens`, of at most that many padded tokens; returned in table order.
    A row's score depends (in the last bits) on the batch it is padded with: score with
    the same batching to reproduce scores exactly."""
    collate = collator(tokenizer)
    device = next(model.parameters()).device
    scores = np.empty(len(encoded), dtype=np.float64)
    input_ids = encoded["input_ids"]
    model.eval()
    with torch.inference_mode():
        for index in tqdm(scoring_batches(encoded["length"], batch_size, max_tokens), desc="scoring", unit="batch"):
            features = [{"input_ids": input_ids[i], "attention_mask": [1] * len(input_ids[i])} for i in index]
            batch = {k: v.to(device) for k, v in collate(features).items()}
            logits = head.pair_logits(model, batch).float()
            scores[index] = torch.softmax(logits, dim=-1)[:, 1].cpu().numpy()
    return scores
