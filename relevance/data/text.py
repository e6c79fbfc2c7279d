"""Text identity shared by splits and augmentation: two strings that differ only in case or
spacing are the same query (or target). And what counts as no text at all."""

from __future__ import annotations

import unicodedata

# Characters that show nothing: control (Cc) and format (Cf: zero-width space, BOM, word joiner, ...)
INVISIBLE_CATEGORIES = ("Cc", "Cf")


def normalise_text(text: str) -> str:
    """Case-folded, runs of whitespace collapsed: the identity of a query or a target."""
    return " ".join(str(text).casefold().split())


def has_visible_text(text: str) -> bool:
    """Whether `text` shows anything: a character that is neither whitespace (any Unicode space) nor a
    control or format character. `"\\u200b"` or `"\\u0000"` is as empty as `"  "` to a reader and a model."""
    for ch in text:  # nearly always returns at the first character
        if not ch.isspace() and unicodedata.category(ch) not in INVISIBLE_CATEGORIES:
            return True
    return False
