"""`query_noise`: typo'd copies of positive queries (shoppers misspell; a typo keeps the label)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import stable_seed


def add_typos(text: str, rng: random.Random, edits: int) -> str:
    """`edits` random typos, each dropping, doubling or swapping letters."""
    chars = list(text)
    for _ in range(edits):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 2:
            break
        i = rng.choice(letters)
        kind = rng.choice(("drop", "double", "swap"))
        if kind == "drop":
            del chars[i]
        elif kind == "double":
            chars.insert(i, chars[i])
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


@dataclass
class QueryNoiseOptions:
    share: float = 0.3  # share of the positive rows that get a noisy copy, in (0, 1]
    edits: int = 1  # typos per copy, at least 1

    def __post_init__(self):
        if not 0 < self.share <= 1 or self.edits < 1:
            raise ValueError("share must be in (0, 1] and edits at least 1")


@register("query_noise", options=QueryNoiseOptions)
class QueryNoise(Strategy):
    options: QueryNoiseOptions

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)  # the mix so far; the original rows when first
        rng = random.Random(stable_seed(context.seed, self.name))  # same seed, same rows
        rows = []
        for row in base.to_list():
            if row["label"] != 1 or rng.random() >= self.options.share:
                continue
            noisy = add_typos(row["query"], rng, self.options.edits)
            if noisy == row["query"]:  # e.g. two identical letters swapped
                self.count("unchanged")
                continue
            rows.append({**row, "query": noisy, "id": f"{row['id']}~noise", "source": self.name})
        self.count("positives_seen", sum(base["label"]))
        return Dataset.from_list(rows, features=base.features) if rows else base.select([])
