"""`pivot`: show the model each query's English translation next to the query.

An input-side strategy (the trick of the competition's 1st place): it adds no rows; its
`transform_inputs` adds a ``pivot`` column = the query translated into English, and
`relevance.modeling.inputs.format_prompt` appends ``task.pivot_prompt`` with it. English
rows get their own query as pivot, which `format_prompt` skips (it equals the query).

It runs on every table the model reads — the training mix, dev, and the files
`relevance.predict` scores — so it works on unlabelled tables too (id, task, language,
query, target). Same translator (the `translator=` group), checks and cache as
`translated` (``<cache_dir>/translations``): a query translated once is never translated
again, by any run. A translation that fails a check is not shown (the pivot is the query
itself) and is counted as ``rejected_<the row's language>``.
"""

from __future__ import annotations

from datasets import Dataset

from relevance.augment.base import AugmentContext, NoOptions, register
from relevance.data.columns import column_values
from relevance.augment.languages import competition_code
from relevance.augment.translating import TranslatingStrategy

PIVOT_LANGUAGE = "en"


def english_of_queries(strategy: TranslatingStrategy, table: Dataset, context: AugmentContext) -> list[str | None]:
    """Each row's query in English: the query itself for English rows, None where the
    translation failed its checks. Shared by `pivot` and `to_english`."""
    queries, codes = column_values(table, "query", "language")
    languages = [competition_code(lang) for lang in codes]
    english: list[str | None] = list(queries)
    for language in sorted(set(languages) - {PIVOT_LANGUAGE}):
        rows = [i for i, lang in enumerate(languages) if lang == language]
        translated = strategy.checked_translations([queries[i] for i in rows], language, PIVOT_LANGUAGE, context,
                                                   language=language)
        for i, text in zip(rows, translated):
            english[i] = text
    return english


@register("pivot", options=NoOptions)
class Pivot(TranslatingStrategy):
    version = "2"  # 2: translations are checked; the translator is the `translator=` group

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        english = english_of_queries(self, table, context)
        (queries,) = column_values(table, "query")
        pivots = [text if text is not None else query for text, query in zip(english, queries)]
        if "pivot" in table.column_names:
            table = table.remove_columns("pivot")
        return table.add_column("pivot", pivots)
