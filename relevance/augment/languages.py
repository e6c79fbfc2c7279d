"""Competition language codes ↔ FLORES-200 codes (what NLLB's tokenizer calls languages).

The competition writes Vietnamese as ``vn``; ``vi`` (ISO 639-1) is accepted as an alias.
A FLORES code passed where a competition code is expected is accepted unchanged, so a
config may say ``target_languages: [deu_Latn]`` as well as ``[de]``.
"""

from __future__ import annotations

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
    "vn": "vie_Latn",
}
ALIASES = {"vi": "vn"}
COMPETITION = {flores: code for code, flores in FLORES.items()}


class UnknownLanguageError(ValueError):
    """A language code that is neither a competition code nor a FLORES-200 code we map."""


def competition_code(code: str) -> str:
    """The competition's code for `code` (``vi`` → ``vn``, ``deu_Latn`` → ``de``)."""
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
