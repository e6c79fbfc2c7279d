"""`translated` (the `into_missing` mode): copies of training rows machine-translated into
languages training lacks.

The competition's dev/test sets hold languages the training set does not (QC: de, it,
pl, ar...). This strategy translates one text field of the rows it builds on (the mix
so far, or the original table when it comes first) from each row's own language into
each target language, keeping the label:

* `target_languages` — null: the evaluation languages missing from training
  (``context.eval_languages - context.train_languages``); or an explicit list;
* `field` — ``query`` (default: the multilingual side) or ``target``;
* `max_rows_per_language` — at most this many rows translated per target language,
  a sample that is the same for the same seed (bounds CPU time); null: all rows;
* the translator itself (NLLB, M2M100, MADLAD-400, an instruction LLM...) is the run's
  `translator=` config group, shared with `pivot` and `to_english`.

Added rows: ``language`` = the target language, ``source`` = ``translated``, ``id`` =
``<original id>~<language>``. Each translation must pass the checks of
`relevance.augment.checks` (language, length ratio, not a copy; ``translator.checks``):
a failure is dropped and counted (``rejected_<language>`` → the run's metric
``augment_translated_rejected_<language>``), and a sample of accepted and rejected pairs
is logged as ``augment/translated/translation_checks.json``. Translations are cached per
text (counters ``cache_hits`` / ``cache_misses`` count distinct texts), so a rerun loads
no model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, base_rows, register
from relevance.augment.cache import stable_seed
from relevance.augment.languages import competition_code
from relevance.augment.translating import TranslatingStrategy

log = logging.getLogger(__name__)

FIELDS = ("query", "target")


@dataclass
class TranslatedOptions:
    field: str = "query"  # which text to translate: query (the multilingual side) or target
    target_languages: list[str] | None = None  # null: dev/test languages missing from training
    max_rows_per_language: int | None = None  # cap on rows translated per target language (seeded sample)

    def __post_init__(self):
        if self.field not in FIELDS:
            raise ValueError(f"field={self.field!r}: use one of {FIELDS}")
        if self.max_rows_per_language is not None and self.max_rows_per_language < 1:
            raise ValueError(f"max_rows_per_language={self.max_rows_per_language}: must be positive or null")
        if self.target_languages is not None:  # competition codes, checked now
            self.target_languages = list(dict.fromkeys(competition_code(c) for c in self.target_languages))


@register("translated", options=TranslatedOptions)
class Translated(TranslatingStrategy):
    # 2: translations are checked (language, length ratio, not a copy); the translator group.
    # 3: Vietnamese rows are labelled `vi`, the reader's code (they were `vn`)
    version = "3"
    options: TranslatedOptions

    def languages_for(self, context: AugmentContext) -> list[str]:
        if self.options.target_languages is not None:
            return list(self.options.target_languages)
        trained = {competition_code(c) for c in context.train_languages}
        return sorted({competition_code(c) for c in context.eval_languages} - trained)

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        targets = self.languages_for(context)
        self.count("target_languages", len(targets))
        field, max_rows = self.options.field, self.options.max_rows_per_language
        columns = {name: [] for name in base.column_names}
        row_languages = [competition_code(lang) for lang in base["language"]]
        records = base.to_list()
        values = [record[field] for record in records]
        for target in targets:
            chosen = [i for i, lang in enumerate(row_languages) if lang != target]
            if max_rows and len(chosen) > max_rows:
                rng = np.random.default_rng(stable_seed(context.seed, "translated", target))
                chosen = sorted(rng.choice(chosen, size=max_rows, replace=False).tolist())
            translations: dict[int, str | None] = {}
            for source in sorted({row_languages[i] for i in chosen}):
                rows = [i for i in chosen if row_languages[i] == source]
                out = self.checked_translations([values[i] for i in rows], source, target, context)
                translations.update(zip(rows, out))
            for i in chosen:
                text = translations[i]
                if text is None:  # failed a check: counted as rejected_<target>
                    continue
                row = dict(records[i])
                row.update({field: text, "language": target, "source": self.name, "id": f"{row['id']}~{target}"})
                for name in columns:
                    columns[name].append(row[name])
        self.sync_counters()
        log.info("translated %s into %s: %d rows", field, targets, len(columns["id"]))
        return Dataset.from_dict(columns, features=base.features)
