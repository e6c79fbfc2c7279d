"""`column_values`: whole columns read at once, with a table's selections applied."""

from __future__ import annotations

from datasets import Dataset

from relevance.data.columns import column_values


def test_whole_columns_in_row_order_with_selections_applied():
    table = Dataset.from_dict({"id": ["a", "b", "c", "d"], "label": [1, 0, 1, 0], "query": ["w", "x", "y", "z"]})
    assert column_values(table, "query", "label") == [["w", "x", "y", "z"], [1, 0, 1, 0]]
    chosen = table.select([3, 0, 2])  # an indices mapping, as the mix's and the splits' tables have
    assert column_values(chosen, "id", "label") == [["d", "a", "c"], [0, 1, 1]]
    kept = table.filter(lambda row: row["label"] == 1)
    assert column_values(kept, "query") == [["w", "y"]]
    assert column_values(table.select([]), "id", "query") == [[], []]
