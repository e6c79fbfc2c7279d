"""Checks every machine translation must pass before a strategy uses it.

The seed paper's synthetic rows "lacked linguistic consistency"; here each translation is
checked, and a failure is dropped (`translated`) or left untranslated (`pivot`, `to_english`
keep the query), counted per language and sampled for a person to read:

* **language**: `langid` (a PyPI identifier that ships its own model), restricted to the
  competition's 13 languages, must put the target language among its top
  `language_top_k` guesses;
* **length ratio**: characters of the translation / characters of the source within
  [`min_length_ratio`, `max_length_ratio`] (a runaway generation, a truncated one);
* **not a copy**: a translation equal to its source, case and spaces aside, is no translation;
  nor is one (nearly: 90 % similar) equal to a few-shot example of the prompt (a small LLM
  echoes them: Gemma-3 270M turned "coque iphone 13" into "schwarze Damenkleid", the example's
  "schwarzes Damenkleid"), unless the source is that example's own source (``example_echo``).

`TranslationChecker.counters()` gives ``rejected_<lang>`` and ``accepted_<lang>`` (logged by the
run as ``augment_<strategy>_rejected_<lang>``) and ``rejected_<reason>``; `report()` the sample of
accepted and rejected pairs per language (the run's ``augment/<strategy>/translation_checks.json``).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict

from relevance.augment.languages import FLORES, competition_code, iso_code
from relevance.augment.translator_config import TranslationChecksConfig

REASONS = ("empty", "copy", "example_echo", "length_ratio", "language")


@functools.cache
def language_identifier():
    """langid's identifier over the competition languages (its model loads once per process)."""
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    identifier.set_languages(sorted(iso_code(code) for code in FLORES))
    return identifier


def identify(text: str, top_k: int = 1) -> list[str]:
    """The competition codes langid finds most likely for `text`, best first."""
    return [competition_code(lang) for lang, _ in language_identifier().rank(text)[:top_k]]


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def _near(text: str, phrase: str, threshold: float = 0.9) -> bool:
    """The same phrase, give or take an ending (``schwarze Damenkleid`` for ``schwarzes Damenkleid``)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, _normalised(text), _normalised(phrase)).ratio() >= threshold


class TranslationChecker:
    """Checks translations against `checks` and keeps the counts and samples (see the module docstring)."""

    def __init__(self, checks: TranslationChecksConfig | None = None):
        self.checks = checks or TranslationChecksConfig()
        self.accepted: Counter = Counter()
        self.rejected: Counter = Counter()
        self.reasons: Counter = Counter()
        self.samples: dict[str, dict[str, list]] = defaultdict(lambda: {"accepted": [], "rejected": []})

    def problem(self, source_text: str, translation: str, target: str,
                examples: dict[str, str] | None = None) -> str | None:
        """Why `translation` fails (one of REASONS), or None when it passes. `examples`: the prompt's
        few-shot pairs for this language pair, target phrase → source phrase (causal LMs)."""
        checks = self.checks
        text = translation.strip()
        if not text:
            return "empty"
        if checks.reject_copies and _normalised(text) == _normalised(source_text):
            return "copy"
        if checks.reject_copies and any(_near(text, phrase) and _normalised(example_source) != _normalised(source_text)
                                        for phrase, example_source in (examples or {}).items()):
            return "example_echo"
        ratio = len(text) / max(1, len(source_text.strip()))
        if not checks.min_length_ratio <= ratio <= checks.max_length_ratio:
            return "length_ratio"
        if checks.language and competition_code(target) not in identify(text, checks.language_top_k):
            return "language"
        return None

    def check(self, source_text: str, translation: str, source: str, target: str, language: str,
              examples: dict[str, str] | None = None) -> bool:
        """Whether the translation passes; counted and sampled under `language` (the row's, as logged)."""
        reason = self.problem(source_text, translation, target, examples)
        outcome = "rejected" if reason else "accepted"
        (self.rejected if reason else self.accepted)[language] += 1
        if reason:
            self.reasons[reason] += 1
        sample = self.samples[language][outcome]
        if len(sample) < self.checks.sample_size:
            pair = {"source_language": competition_code(source), "target_language": competition_code(target),
                    "source": source_text, "translation": translation}
            if reason:
                pair["reason"] = reason
                if reason == "language":
                    pair["identified_as"] = identify(translation.strip(), 3)
            sample.append(pair)
        return reason is None

    def counters(self) -> dict[str, int]:
        out = {f"rejected_{lang}": n for lang, n in sorted(self.rejected.items())}
        out.update({f"accepted_{lang}": n for lang, n in sorted(self.accepted.items())})
        out.update({f"rejected_{reason}": n for reason, n in sorted(self.reasons.items())})
        return out

    def report(self) -> dict:
        languages = sorted(set(self.accepted) | set(self.rejected))
        return {
            "checks": {k: getattr(self.checks, k) for k in self.checks.__dataclass_fields__},
            "per_language": {lang: {"accepted": self.accepted[lang], "rejected": self.rejected[lang],
                                    "sample": self.samples[lang]} for lang in languages},
            "rejected_by_reason": dict(sorted(self.reasons.items())),
        }
