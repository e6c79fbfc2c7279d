"""Competition language codes ↔ the codes translators use, one map for every backend.

One code per language, the reader's (`relevance.data.language_codes`): Vietnamese is ``vi``
(ISO 639-1, as in ``data.languages``), and its other spelling ``vn`` is accepted as an alias
everywhere a code is read, so rows, translations and caches never call one language by two codes.
A FLORES code passed where a competition code is expected is accepted unchanged, so a
config may say ``target_languages: [deu_Latn]`` as well as ``[de]``.

`language_fields` gives every spelling a translator config may put in a template:
``{flores}`` (NLLB: ``deu_Latn``), ``{iso}`` (M2M100 ``__de__``, MADLAD-400 ``<2de>``),
``{name}`` (an LLM prompt: ``German``) and ``{code}`` (the competition's ``de``).
"""

from __future__ import annotations

from relevance.data.language_codes import LANGUAGE_ALIASES

FLORES = {
    "ar": "arb_Arab",
    "de": "deu_Latn",
    "en": "eng_Latn",
    "es": "spa_Latn",
    "fr": "fra_Latn",
    "id": "ind_Latn",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "pl": "pol_Latn",
    "pt": "por_Latn",
    "th": "tha_Thai",
    "vi": "vie_Latn",
}
ALIASES = dict(LANGUAGE_ALIASES)  # vn -> vi
ISO: dict[str, str] = {}  # ISO 639-1 where the competition's code differs (none: the codes are ISO 639-1)
NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "pl": "Polish", "pt": "Portuguese", "th": "Thai",
    "vi": "Vietnamese",
}
COMPETITION = {flores: code for code, flores in FLORES.items()}


class UnknownLanguageError(ValueError):
    """A language code that is neither a competition code nor a FLORES-200 code we map."""


def competition_code(code: str) -> str:
    """The competition's code for `code` (``vn`` → ``vi``, ``deu_Latn`` → ``de``)."""
    if not isinstance(code, str):
        raise UnknownLanguageError(f"language code must be a string, got {code!r}")
    clean = code.strip()
    if clean in COMPETITION:
        return COMPETITION[clean]
    clean = clean.lower()
    clean = ALIASES.get(clean, clean)
    if clean not in FLORES:
        known = ", ".join(sorted(FLORES)) + " (and " + ", ".join(f"{a} for {c}" for a, c in ALIASES.items()) + ")"
        raise UnknownLanguageError(
            f"unknown language code {code!r}: the translation map knows {known}; "
            "add it to relevance/augment/languages.py:FLORES with its FLORES-200 code"
        )
    return clean


def to_flores(code: str) -> str:
    """FLORES-200 code of a competition language code, e.g. ``de`` → ``deu_Latn``."""
    return FLORES[competition_code(code)]


def iso_code(code: str) -> str:
    """ISO 639-1 code of a competition language code (``vn`` → ``vi``, ``de`` → ``de``): the same code,
    unless a language's competition code ever differs (`ISO`)."""
    clean = competition_code(code)
    return ISO.get(clean, clean)


def language_fields(code: str) -> dict[str, str]:
    """The spellings of one language that translator templates may use (see the module docstring)."""
    clean = competition_code(code)
    return {"code": clean, "iso": iso_code(clean), "flores": FLORES[clean], "name": NAMES[clean]}
