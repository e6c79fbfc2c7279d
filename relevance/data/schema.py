"""Column layout of the internal tables and the error type for bad input files.

The competition files name the target field after the task (``category_path`` for
QC, ``item_title`` for QI): the task's YAML (`task.target_field`) says which field
to read.  Internally every table uses the same neutral names (``query``/``target``)
so that models, augmentation and evaluation code never need to branch on the task.
"""

from __future__ import annotations

from pathlib import Path

#: Internal table columns, in order.  Unlabelled tables omit ``label``.
COLUMNS = ("id", "task", "language", "query", "target", "label", "source")

#: Value of ``source`` for rows read unchanged from a competition file.
ORIGINAL_SOURCE = "original"


class DataError(ValueError):
    """A problem in an input data file, located by file, 1-based line and field.

    ``line`` is 0 for problems that concern the whole file (e.g. it has no rows).
    The message starts with ``path:line: field 'name':`` so it can be clicked in
    most editors and grepped in logs.
    """

    def __init__(self, path: str | Path, line: int, field: str, message: str):
        self.path = str(path)
        self.line = int(line)
        self.field = field
        self.detail = message
        super().__init__(f"{self.path}:{self.line}: field '{field}': {message}")
