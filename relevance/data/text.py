"""Text identity shared by splits and augmentation: two strings that differ only in case or
spacing are the same query (or target)."""

from __future__ import annotations


def normalise_text(text: str) -> str:
    """Case-folded, runs of whitespace collapsed: the identity of a query or a target."""
    return " ".join(str(text).casefold().split())
