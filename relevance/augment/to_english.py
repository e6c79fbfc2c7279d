"""`to_english`: every query the model reads, in English (EAR-MP's translate-everything, the
1st place's query → English with MADLAD-400).

An input-side strategy, like `pivot`: it adds no rows; its `transform_inputs` rewrites the
query of every table the model reads — the training mix, dev, test, and the files
`relevance.predict` scores — with the same translator (the `translator=` group), checks
and cache, so training and scoring see queries translated the same way:

* `how: replace` — the query becomes its English translation;
* `how: join` — the query becomes `join_template` over ``{query}`` and ``{english}``
  (default ``{query} ({english})``: both, the original first).

English rows are left as they are. A translation that fails its checks leaves the query
unchanged and is counted as ``rejected_<the row's language>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset

from relevance.augment.base import AugmentContext, register
from relevance.data.columns import column_values
from relevance.augment.pivot import english_of_queries
from relevance.augment.translating import TranslatingStrategy

HOW = ("replace", "join")


@dataclass
class ToEnglishOptions:
    how: str = "replace"  # replace: the query becomes its English translation | join: both, as join_template says
    join_template: str = "{query} ({english})"  # how=join: the query and its translation

    def __post_init__(self):
        if self.how not in HOW:
            raise ValueError(f"how={self.how!r}: use one of {HOW}")
        if "{english}" not in self.join_template or "{query}" not in self.join_template:
            raise ValueError(f"join_template={self.join_template!r}: needs both {{query}} and {{english}}")


@register("to_english", options=ToEnglishOptions)
class ToEnglish(TranslatingStrategy):
    options: ToEnglishOptions

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        (queries,) = column_values(table, "query")
        english = english_of_queries(self, table, context)
        rewritten = [self.rewrite(query, text) for query, text in zip(queries, english)]
        self.count("queries_rewritten", sum(new != old for new, old in zip(rewritten, queries)))
        return table.remove_columns("query").add_column("query", rewritten).select_columns(table.column_names)

    def rewrite(self, query: str, english: str | None) -> str:
        if english is None or english == query:  # failed its checks, or an English row
            return query
        if self.options.how == "replace":
            return english
        return self.options.join_template.replace("{query}", query).replace("{english}", english)
