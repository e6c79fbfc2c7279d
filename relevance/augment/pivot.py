"""`pivot`: show the model each query's English translation next to the query.

An input-side strategy (the trick of the competition's 1st place): it adds no rows; its
`transform_inputs` adds a ``pivot`` column = the query translated into English, and
`relevance.modeling.inputs.format_prompt` appends ``task.pivot_prompt`` with it. English
rows get their own query as pivot, which `format_prompt` skips (it equals the query).

It runs on every table the model reads — the training mix, dev, and the files
`relevance.predict` scores — so it works on unlabelled tables too (id, task, language,
query, target). Same translator and cache as `translated` (``<cache_dir>/translations``):
a query translated once is never translated again, by any run.
"""

from __future__ import annotations

from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.languages import competition_code
from relevance.augment.translator import Translator, TranslatorOptions

PIVOT_LANGUAGE = "en"


@register("pivot", options=TranslatorOptions)
class Pivot(Strategy):
    options: TranslatorOptions
    translator: Translator | None = None  # made on the first table

    def transform_inputs(self, table: Dataset, context: AugmentContext) -> Dataset:
        if self.translator is None:
            self.translator = self.options.make_translator(context.cache_dir, setting="augment.pivot.model")
        queries = table["query"]
        languages = [competition_code(lang) for lang in table["language"]]
        pivots = list(queries)
        for language in sorted(set(languages) - {PIVOT_LANGUAGE}):
            rows = [i for i, lang in enumerate(languages) if lang == language]
            translated = self.translator.translate([queries[i] for i in rows], language, PIVOT_LANGUAGE)
            for i, text in zip(rows, translated):
                if text.strip():
                    pivots[i] = text.strip()
                else:
                    self.count("empty_translations")
        self.counters.update(self.translator.counters)
        if "pivot" in table.column_names:
            table = table.remove_columns("pivot")
        return table.add_column("pivot", pivots)
