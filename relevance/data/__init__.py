"""Reading, validating and splitting the competition's QC/QI data, plus generated demo data."""

from .demo import DEMO_DEV_ONLY_LANGUAGES, DEMO_TRAIN_LANGUAGES, generate_demo_rows, write_demo_data
from .reader import ReadResult, read_jsonl
from .schema import COLUMNS, DataError
from .splits import grouped_split, languages

__all__ = [
    "COLUMNS",
    "DEMO_DEV_ONLY_LANGUAGES",
    "DEMO_TRAIN_LANGUAGES",
    "DataError",
    "ReadResult",
    "generate_demo_rows",
    "grouped_split",
    "languages",
    "read_jsonl",
    "write_demo_data",
]
