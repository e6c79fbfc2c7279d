"""Row lineage: which rows a run trained on, tuned on (dev) and reported on (test).

A row is named by its id and by a content digest of what the model reads of it — the query and the
target, case- and space-folded as `relevance.data.text` defines "the same text" — so that the same row
is recognised in another run's files whatever its id or label there (a relabelled or re-numbered copy is
still the same row). A run logs its lineage as the artifact `data/lineage.json` and a summary per role as
tags (`relevance.lineage.<role>`: rows and a digest of the set); runs that build on other runs
(relevance.tracking.lineage_checks) compare them before any model loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from relevance.data.text import normalise_text

LINEAGE_FILE = "lineage.json"
LINEAGE_ARTIFACT = f"data/{LINEAGE_FILE}"
LINEAGE_TAG_PREFIX = "relevance.lineage."
ROLES = ("train", "dev", "test")


def row_digest(query: str, target: str) -> str:
    """16 hex digits naming a row's content: its folded query and target."""
    text = f"{normalise_text(query)}\x1f{normalise_text(target)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def table_rows(table: Dataset) -> list[tuple[str, str]]:
    """(id, content digest) of every row of a table."""
    return [(str(i), row_digest(q, t)) for i, q, t in zip(table["id"], table["query"], table["target"])]


@dataclass
class RunLineage:
    """A run's rows per role: role → [(id, content digest)]."""

    roles: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, **tables: Dataset | None) -> RunLineage:
        return cls({role: table_rows(table) for role, table in tables.items() if table is not None})

    def digests(self, role: str) -> set[str]:
        return {digest for _, digest in self.roles.get(role, [])}

    def summary_tags(self) -> dict[str, str]:
        """`relevance.lineage.<role>`: `<rows> rows, set <digest of the sorted content digests>`."""
        tags = {}
        for role, rows in self.roles.items():
            content = hashlib.sha256("\n".join(sorted(d for _, d in rows)).encode()).hexdigest()[:16]
            tags[f"{LINEAGE_TAG_PREFIX}{role}"] = f"{len(rows)} rows, set {content}"
        return tags

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LINEAGE_FILE
        path.write_text(json.dumps({role: [list(row) for row in rows] for role, rows in self.roles.items()}))
        return path

    @classmethod
    def read(cls, path: Path) -> RunLineage:
        data = json.loads(Path(path).read_text())
        return cls({role: [(str(i), str(d)) for i, d in rows] for role, rows in data.items()})


def seen_counts(trained_on: set[str], lineage: RunLineage, roles: tuple[str, ...] = ("dev", "test")) -> dict[str, int]:
    """How many of `lineage`'s rows, per role, are among the content digests another run trained on."""
    return {role: sum(digest in trained_on for _, digest in lineage.roles[role]) for role in roles
            if role in lineage.roles}
