"""`translated`: copies of training rows machine-translated into languages training lacks.

The competition's dev/test sets hold languages the training set does not (QC: de, it,
pl, ar...). This strategy translates one text field of the rows it builds on (the mix
so far, or the original table when it comes first) from each row's own language into
each target language, keeping the label:

* `target_languages` — null: the evaluation languages missing from training
  (``context.eval_languages - context.train_languages``); or an explicit list;
* `field` — ``query`` (default: the multilingual side) or ``target``;
* `max_rows_per_language` — at most this many rows translated per target language,
  a sample that is the same for the same seed (bounds CPU time); null: all rows;
* model, revision, batch_size, num_beams, max_new_tokens, device — see `Translator`.

Added rows: ``language`` = the target language, ``source`` = ``translated``, ``id`` =
``<original id>~<language>``. A translation that comes back empty is dropped (counter
``empty_translations``). Translations are cached per text (counters ``cache_hits`` /
``cache_misses`` count distinct texts), so a rerun loads no model.
"""

from __future__ import annotations

import logging

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.cache import stable_seed
from relevance.augment.languages import competition_code
from relevance.augment.translator import DEFAULT_MODEL, Translator

log = logging.getLogger(__name__)

FIELDS = ("query", "target")


@register("translated")
class Translated(Strategy):
    def __init__(self, model: str = DEFAULT_MODEL, revision: str | None = None, batch_size: int = 16,
                 num_beams: int = 1, max_new_tokens: int = 64, field: str = "query",
                 target_languages: list[str] | None = None, max_rows_per_language: int | None = None,
                 device: str = "auto"):
        super().__init__(model=model, revision=revision, batch_size=batch_size, num_beams=num_beams,
                         max_new_tokens=max_new_tokens, field=field, target_languages=target_languages,
                         max_rows_per_language=max_rows_per_language, device=device)
        if field not in FIELDS:
            raise ValueError(f"augment.translated.field={field!r}: use one of {FIELDS}")
        if max_rows_per_language is not None and max_rows_per_language < 1:
            raise ValueError("augment.translated.max_rows_per_language must be positive or null")
        self.field = field
        self.target_languages = None if target_languages is None else [competition_code(c) for c in target_languages]
        self.max_rows_per_language = max_rows_per_language
        self.translator_settings = dict(model=model, revision=revision, batch_size=batch_size, num_beams=num_beams,
                                        max_new_tokens=max_new_tokens, device=device)
        self.translator: Translator | None = None

    def languages_for(self, context: AugmentContext) -> list[str]:
        if self.target_languages is not None:
            return list(dict.fromkeys(self.target_languages))
        trained = {competition_code(c) for c in context.train_languages}
        return sorted({competition_code(c) for c in context.eval_languages} - trained)

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = mix if len(mix) else context.original
        targets = self.languages_for(context)
        self.count("target_languages", len(targets))
        self.translator = Translator(**self.translator_settings, cache_dir=context.cache_dir,
                                     setting="augment.translated.model")
        columns = {name: [] for name in base.column_names}
        row_languages = [competition_code(lang) for lang in base["language"]]
        records = base.to_list()
        values = [record[self.field] for record in records]
        for target in targets:
            chosen = [i for i, lang in enumerate(row_languages) if lang != target]
            if self.max_rows_per_language and len(chosen) > self.max_rows_per_language:
                rng = np.random.default_rng(stable_seed(context.seed, "translated", target))
                chosen = sorted(rng.choice(chosen, size=self.max_rows_per_language, replace=False).tolist())
            translations: dict[int, str] = {}
            for source in sorted({row_languages[i] for i in chosen}):
                rows = [i for i in chosen if row_languages[i] == source]
                out = self.translator.translate([values[i] for i in rows], source, target)
                translations.update(zip(rows, out))
            for i in chosen:
                text = translations[i].strip()
                if not text:
                    self.count("empty_translations")
                    continue
                row = dict(records[i])
                row.update({self.field: text, "language": target, "source": self.name, "id": f"{row['id']}~{target}"})
                for name in columns:
                    columns[name].append(row[name])
        for key, value in self.translator.counters.items():
            self.counters[key] = value
        log.info("translated %s into %s: %d rows", self.field, targets, len(columns["id"]))
        return Dataset.from_dict(columns, features=base.features)
