"""One code per language, whatever spelling a file uses.

The project names Vietnamese `vi` (ISO 639-1, as `data.languages` lists it); some of the
competition's material spells it `vn` (a country code). The reader maps every alias to its
canonical code as it reads a row, so a run, its per-language metrics and thresholds, and the
translating strategies (`relevance.augment.languages`) never count `vi` and `vn` as two
languages, whatever `data.languages` says (null included).
"""

from __future__ import annotations

LANGUAGE_ALIASES = {"vn": "vi"}  # another spelling -> the code the project uses


def canonical_language(code: str) -> str:
    """`code` trimmed, lower-cased and with an alias replaced by its canonical code (`VN` → `vi`)."""
    clean = code.strip().lower()
    return LANGUAGE_ALIASES.get(clean, clean)
