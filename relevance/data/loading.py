"""From the `data` config to the run's tables, one per role: training rows; dev rows (threshold,
selection); test rows, when configured, only for reporting.

`data.seed` fixes every split and subsample, so runs that differ only by the model's `seed`
see the same dev and test rows (their predictions pair row by row in `relevance.compare`).

k folds (`data.folds=K data.fold=i`): the test rows are carved exactly as without folds (the test
file, or `data.test_fraction` of the dev file); the training pool is the training file plus the
dev file's other rows, capped by `data.max_train_rows`; fold i of the pool (grouped by query,
stratified by language × label, `data.seed`) is dev, the other folds train. The K runs of one
pool therefore score every pool row exactly once on their dev side: out-of-fold scores.

Queries on both sides (`data.query_overlap`, relevance/data/overlap.py): splits carved from one
file are grouped by query, separate files are not. Dev and test rows whose normalised query occurs
among the training rows are dropped (`drop`, the default), kept (`keep`) or refused (`error`), and
counted on `Splits.query_overlap`. "The training rows" are all of them before `data.max_train_rows`
subsamples them (the training file, or its training side; with folds, the whole pool, whose rows
all train in some fold): a query the cap happened to leave out is still one the data set trains
on, and runs with different caps keep scoring the same dev and test rows. The test rows are carved
before overlapping rows are dropped, so `drop` and `keep` put every other row on the same side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset, concatenate_datasets
from omegaconf import DictConfig, OmegaConf

from relevance.data.demo import write_demo_data
from relevance.data.overlap import QueryOverlap, handle_query_overlap, report_query_overlap, training_queries
from relevance.data.reader import read_jsonl
from relevance.data.schema import DataError
from relevance.data.splits import fold_split, grouped_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldInfo:
    """Which fold of which pool a run's dev rows are (`data.folds`, `data.fold`)."""

    folds: int
    fold: int
    pool_rows: int  # rows of the training pool the folds split (train + dev of this run)
    pool_paths: tuple[Path, ...]  # the files the pool was read from


@dataclass
class Splits:
    train: Dataset
    dev: Dataset
    train_path: Path
    dev_path: Path  # the training file itself when dev was split from it
    null_targets: int  # rows whose target was null, handled by data.null_target
    test: Dataset | None = None  # reported only: never tunes, stops or selects anything
    test_path: Path | None = None  # the dev file itself when test was carved from dev
    fold: FoldInfo | None = None  # set when dev is one fold of a k-fold split of the training pool
    # dev/test rows whose query occurs among the training rows, by role (data.query_overlap)
    query_overlap: dict[str, QueryOverlap] = field(default_factory=dict)
    query_overlap_policy: str = "keep"

    def query_overlap_params(self) -> dict[str, int]:
        """`data.query_overlap_<role>_rows` / `_queries` (found) and `data.query_overlap_dropped_<role>`
        (removed: the rows found under `drop`, 0 under `keep`), for each evaluation role."""
        return {key: value for o in self.query_overlap.values() for key, value in (
            (f"data.query_overlap_{o.role}_rows", o.rows), (f"data.query_overlap_{o.role}_queries", o.queries),
            (f"data.query_overlap_dropped_{o.role}", o.dropped))}

    def query_overlap_metrics(self) -> dict[str, int]:
        """The same counts as metrics (`data_query_overlap_dev_rows`, ...: charts compare runs by them)."""
        return {key.replace(".", "_"): value for key, value in self.query_overlap_params().items()}

    def evaluation_tables(self) -> dict[str, Dataset]:
        """The rows scored after training, by role: dev, then test when the run has one."""
        return {"dev": self.dev, **({"test": self.test} if self.test is not None else {})}

    def evaluation_languages(self) -> list[str]:
        """Languages of dev and test rows (what strategies such as `translated` target)."""
        return sorted({lang for table in self.evaluation_tables().values() for lang in table["language"]})

    def transform_evaluation_inputs(self, transform: Callable[[Dataset], Dataset]) -> None:
        """Rewrite dev's and test's inputs as training's were (an input-side strategy, e.g. the pivot)."""
        self.dev = transform(self.dev)
        if self.test is not None:
            self.test = transform(self.test)


def load_splits(data_cfg: DictConfig, task_cfg: DictConfig) -> Splits:
    """Read (or, for the demo, generate then read) the task's tables: training, dev and, when
    `data.test_file` or `data.test_fraction` is set, test. Splits and subsamples follow `data.seed`."""
    if data_cfg.generate is not None:
        gen = data_cfg.generate
        write_demo_data(data_cfg.dir, task_cfg, seed=gen.seed, train_rows=gen.train_rows, dev_rows=gen.dev_rows)
    seed = data_cfg.seed
    paths = data_file_paths(data_cfg)
    train_path = paths["train"]
    read = lambda path: read_jsonl(path, task_cfg, null_target=data_cfg.null_target,  # noqa: E731
                                   languages=data_cfg.languages)
    reads = {role: read(path) for role, path in paths.items()}
    null_targets = sum(r.null_targets for r in reads.values())
    if null_targets:
        log.warning("%d rows had a null %s (policy: %s)", null_targets, task_cfg.target_field,
                    data_cfg.null_target)
    if OmegaConf.select(data_cfg, "folds", default=None):  # older run configs have no folds
        return _fold_splits(data_cfg, paths, {role: r.dataset for role, r in reads.items()}, null_targets)
    if "dev" in paths:
        dev_path = paths["dev"]
        train, dev = reads["train"].dataset, reads["dev"].dataset
    else:
        dev_path = train_path
        train, dev = grouped_split(reads["train"].dataset, data_cfg.dev_fraction, seed)
    test, test_path = None, None
    if "test" in paths:
        test, test_path = reads["test"].dataset, paths["test"]
    elif data_cfg.test_fraction is not None:
        dev, test = grouped_split(dev, data_cfg.test_fraction, seed)
        test_path = dev_path
    dev, test, overlap = _handle_query_overlap(data_cfg, train, train_path, dev, dev_path, test, test_path)
    train = stratified_subsample(train, data_cfg.max_train_rows, seed)
    dev = stratified_subsample(dev, data_cfg.max_dev_rows, seed)
    require_both_labels(train, train_path, "training rows", "a classifier cannot learn from one label")
    require_both_labels(dev, dev_path, "dev rows", "F1, ROC-AUC and the tuned threshold would mean nothing")
    if test is not None:
        test = stratified_subsample(test, data_cfg.max_test_rows, seed)
        require_both_labels(test, test_path, "test rows", "test F1 and ROC-AUC would mean nothing")
    return Splits(train, dev, train_path, dev_path, null_targets, test, test_path,
                  query_overlap=overlap, query_overlap_policy=query_overlap_policy(data_cfg))


def _fold_splits(data_cfg: DictConfig, paths: dict[str, Path], tables: dict[str, Dataset],
                 null_targets: int) -> Splits:
    """Fold `data.fold` of `data.folds` of the training pool as dev (see the module docstring)."""
    seed, folds, fold = data_cfg.seed, int(data_cfg.folds), int(data_cfg.fold)
    test, test_path, pool_paths = None, None, [paths["train"]]
    rest = None  # the dev file's rows that are not test: they join the pool
    if "dev" in paths:
        rest = tables["dev"]
        if "test" not in paths and data_cfg.test_fraction is not None:
            rest, test = grouped_split(rest, data_cfg.test_fraction, seed)
            test_path = paths["dev"]
        pool_paths.append(paths["dev"])
    if "test" in paths:
        test, test_path = tables["test"], paths["test"]
    pool = tables["train"]
    if rest is not None and len(rest):
        pool = concatenate_datasets([pool, distinct_ids(rest, set(pool["id"]), f"{paths['dev'].name}:")])
    # every pool row trains in some fold: test is checked against the whole pool, before its cap
    _, test, overlap = _handle_query_overlap(data_cfg, pool, paths["train"], None, None, test, test_path)
    pool = stratified_subsample(pool, data_cfg.max_train_rows, seed)
    try:
        train, dev = fold_split(pool, folds, fold, seed)
    except ValueError as error:
        raise DataError(paths["train"], 0, "query", f"data.folds={folds}: {error} (the training pool has "
                                                    f"{len(pool)} rows); use fewer folds") from None
    # the folds group by query, so none is found here: a guard, counted as without folds
    dev, _, dev_overlap = _handle_query_overlap(data_cfg, train, paths["train"], dev, paths["train"], None, None)
    overlap = {**dev_overlap, **overlap}
    require_both_labels(train, paths["train"], f"training rows of fold {fold}", "a classifier cannot learn from one label")
    require_both_labels(dev, paths["train"], f"dev rows of fold {fold}",
                        "F1, ROC-AUC and the tuned threshold would mean nothing")
    if test is not None:
        test = stratified_subsample(test, data_cfg.max_test_rows, seed)
        require_both_labels(test, test_path, "test rows", "test F1 and ROC-AUC would mean nothing")
    return Splits(train, dev, paths["train"], paths["train"], null_targets, test, test_path,
                  FoldInfo(folds, fold, len(pool), tuple(pool_paths)), query_overlap=overlap,
                  query_overlap_policy=query_overlap_policy(data_cfg))


def query_overlap_policy(data_cfg: DictConfig) -> str:
    """`data.query_overlap`; `keep` for run configs older than the key (what those runs scored)."""
    return str(OmegaConf.select(data_cfg, "query_overlap", default="keep"))


def _handle_query_overlap(data_cfg: DictConfig, training: Dataset, training_path: Path,
                          dev: Dataset | None, dev_path: Path | None, test: Dataset | None, test_path: Path | None,
                          ) -> tuple[Dataset | None, Dataset | None, dict[str, QueryOverlap]]:
    """Dev and test as `data.query_overlap` wants them given `training` (all the training rows,
    before any cap), and what each had in common with it (see the module docstring)."""
    policy = query_overlap_policy(data_cfg)
    seen = training_queries(training)
    overlap: dict[str, QueryOverlap] = {}
    if dev is not None:
        dev, overlap["dev"] = handle_query_overlap(dev, "dev", dev_path, seen, policy, training_path)
    if test is not None:
        test, overlap["test"] = handle_query_overlap(test, "test", test_path, seen, policy, training_path)
    report_query_overlap(list(overlap.values()), policy, training_path)
    return dev, test, overlap


def distinct_ids(table: Dataset, taken: set[str], prefix: str) -> Dataset:
    """`table` with every id prefixed when any of them is in `taken` (the demo's train and dev files
    both number their rows from 1): ids stay unique across the pool, so out-of-fold scores name one row."""
    if taken.isdisjoint(table["id"]):
        return table
    columns = table.to_dict()
    columns["id"] = [prefix + str(row_id) for row_id in columns["id"]]
    return Dataset.from_dict(columns, features=table.features)


def require_both_labels(table: Dataset, path: Path, what: str, why: str) -> None:
    """A split with one label is an error, not a warning: the run would finish and report numbers
    that look like results (dev F1 1.0 with ROC-AUC dropped)."""
    present = set(table["label"])
    if len(present) < 2:
        raise DataError(path, 0, "label", f"every one of the {len(table)} {what} has label {present.pop()}: {why}; "
                                          "use a file with both labels (or a larger data.max_*_rows)")


def stratified_subsample(table: Dataset, max_rows: int | None, seed: int) -> Dataset:
    """At most `max_rows` rows, keeping each (language, label) stratum's share; deterministic by seed.

    Whole queries are not kept together here: subsampling happens after the
    train/dev split, so no query can cross sides because of it.
    """
    if max_rows is None or len(table) <= max_rows:
        return table
    labels = table["label"] if "label" in table.column_names else [0] * len(table)
    strata = np.array([f"{lang}|{lab}" for lang, lab in zip(table["language"], labels)])
    names, sizes = np.unique(strata, return_counts=True)
    # Largest-remainder allocation: exactly max_rows in total, each stratum within one row of its share.
    quotas = sizes * max_rows / len(table)
    counts = np.floor(quotas).astype(int)
    counts[np.argsort(-(quotas - counts), kind="stable")[: max_rows - counts.sum()]] += 1
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for name, count in zip(names, counts):
        members = np.flatnonzero(strata == name)
        keep.extend(rng.choice(members, size=count, replace=False).tolist())
    return table.select(sorted(keep))


def data_file_paths(data_cfg: DictConfig) -> dict[str, Path]:
    """`{"train": path, "dev": path, "test": path}`: the files `load_splits` reads (no "dev" when dev
    is split from the training file, no "test" without `data.test_file`). For the demo data they
    exist only once `load_splits` generated them."""
    data_dir = Path(data_cfg.dir)
    paths = {"train": data_dir / data_cfg.train_file}
    if data_cfg.dev_file:
        paths["dev"] = data_dir / data_cfg.dev_file
    if data_cfg.get("test_file"):  # older run configs have no test_file
        paths["test"] = data_dir / data_cfg.test_file
    return paths
