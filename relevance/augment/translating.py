"""What the translating strategies (`translated`, `pivot`, `to_english`) share: the run's
translator (the `translator=` config group, through the context) and the checks every
translation passes (`relevance.augment.checks`), with their counters and sample artifact."""

from __future__ import annotations

from relevance.augment.base import AugmentContext, Strategy
from relevance.augment.checks import TranslationChecker
from relevance.augment.languages import competition_code
from relevance.augment.translator import Translator, make_translator, translator_config

CHECKS_ARTIFACT = "translation_checks.json"


class TranslatingStrategy(Strategy):
    translator: Translator | None = None  # made on first use, from the context's translator config
    checker: TranslationChecker | None = None

    def translator_for(self, context: AugmentContext) -> Translator:
        if self.translator is None:
            config = translator_config(context.translator)
            self.translator = make_translator(config, cache_dir=context.cache_dir, models_dir=context.models_dir)
            self.checker = TranslationChecker(config.checks)
        return self.translator

    def checked_translations(self, texts: list[str], source: str, target: str, context: AugmentContext,
                             language: str | None = None) -> list[str | None]:
        """Translations of `texts`, None where one fails the checks (counted under `language`: the
        language of the rows it would make; default: the target)."""
        translator = self.translator_for(context)
        outputs = translator.translate(texts, source, target)
        counted_as = competition_code(language or target)
        examples = translator.example_pairs(source, target)
        results = [out.strip() if self.checker.check(text, out, source, target, counted_as, examples) else None
                   for text, out in zip(texts, outputs, strict=True)]
        self.sync_counters()
        return results

    def sync_counters(self) -> None:
        if self.translator is not None:
            self.counters.update(self.translator.counters)
            self.counters.update(self.checker.counters())
            self.artifacts[CHECKS_ARTIFACT] = self.checker.report()
