"""Queries on both sides (`data.query_overlap`): dev and test rows whose query, case- and
space-folded, occurs among the training rows are dropped (the default), kept or refused, and
counted on `Splits.query_overlap`, with folds and without, whatever caps the training rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datasets import Dataset
from mlflow.tracking import MlflowClient

from relevance.config import ConfigError, validate_config
from relevance.data.demo import write_demo_data
from relevance.data.loading import load_splits
from relevance.data.overlap import handle_query_overlap, line_of_id, training_queries
from relevance.data.schema import DataError
from relevance.data.text import normalise_text
from tests.conftest import SHARED_QC, compose_train, run_cli, task_config, tiny_run_args
from tests.requirements import require_path

# --------------------------------------------------------------------------- the overlap of two tables


def table(rows: list[tuple[str, str, int]]) -> Dataset:
    """(id, query, label) rows as an internal table."""
    return Dataset.from_dict({"id": [r[0] for r in rows], "task": ["QC"] * len(rows), "language": ["en"] * len(rows),
                              "query": [r[1] for r in rows], "target": ["a,b"] * len(rows),
                              "label": [r[2] for r in rows], "source": ["original"] * len(rows)})


TRAIN = table([("t1", "red shoes", 1), ("t2", "red shoes", 0), ("t3", "Blue Hat", 1)])
DEV = table([("d1", "green scarf", 1), ("d2", "RED  shoes ", 0), ("d3", "blue hat", 1), ("d4", "red shoe", 0)])


def test_rows_whose_folded_query_is_a_training_query_are_counted_and_dropped(tmp_path):
    kept, overlap = handle_query_overlap(DEV, "dev", tmp_path / "dev.jsonl", training_queries(TRAIN), "drop",
                                         tmp_path / "train.jsonl")
    assert kept["id"] == ["d1", "d4"]  # "red shoe" is another query
    assert (overlap.role, overlap.rows, overlap.queries, overlap.dropped) == ("dev", 2, 2, 2)
    assert (overlap.first_id, overlap.first_query) == ("d2", "RED  shoes ")


def test_keep_counts_without_removing():
    kept, overlap = handle_query_overlap(DEV, "dev", Path("dev.jsonl"), training_queries(TRAIN), "keep",
                                         Path("train.jsonl"))
    assert kept["id"] == DEV["id"] and (overlap.rows, overlap.queries, overlap.dropped) == (2, 2, 0)


def test_error_names_the_file_line_id_query_count_and_the_way_out(tmp_path):
    dev_file = tmp_path / "dev.jsonl"
    dev_file.write_text("".join(json.dumps({"id": i, "origin_query": q}) + "\n"
                                for i, q, _ in [("d1", "green scarf", 1), ("d2", "RED  shoes ", 0)]))
    with pytest.raises(DataError) as caught:
        handle_query_overlap(DEV, "dev", dev_file, training_queries(TRAIN), "error", tmp_path / "train.jsonl")
    message = str(caught.value)
    assert message.startswith(f"{dev_file}:2: field 'origin_query': query 'RED  shoes ' (id d2)")
    for part in (str(tmp_path / "train.jsonl"), "2 dev rows (2 queries)", "data.query_overlap=drop",
                 "data.query_overlap=keep"):
        assert part in message
    assert line_of_id(dev_file, "nowhere") == 0


def test_no_overlap_leaves_the_table_as_it_was():
    other = table([("d9", "green scarf", 1)])
    kept, overlap = handle_query_overlap(other, "test", Path("t"), training_queries(TRAIN), "error", Path("x"))
    assert kept is other and (overlap.rows, overlap.dropped) == (0, 0)


def test_a_selection_of_rows_is_checked_and_dropped_in_its_own_order():
    """The dev table may be a selection (a split, a cap): its rows, in its order, are the ones checked."""
    reordered = DEV.select([3, 2, 1, 0])
    kept, overlap = handle_query_overlap(reordered, "dev", Path("dev.jsonl"), training_queries(TRAIN.select([2, 0])),
                                         "drop", Path("train.jsonl"))
    assert kept["id"] == ["d4", "d1"] and kept["query"] == ["red shoe", "green scarf"]
    assert (overlap.rows, overlap.queries, overlap.dropped, overlap.first_id) == (2, 2, 2, "d3")
    assert training_queries(TRAIN.select([2])) == {"blue hat"}


def test_drop_counts_match_a_plain_loop_over_many_rows():
    """Thousands of rows, queries repeated in other case and spacing: the rows kept, their order and
    the counts are what a row-by-row loop over the two tables finds."""
    rng = random.Random(3)
    train_queries = [f"query {n}" for n in range(0, 3000, 3)]
    variants = (lambda q: q, str.upper, lambda q: f"  {q.title()} ", lambda q: q.replace(" ", "\t "))
    train = table([(f"t{n}", rng.choice(variants)(q), n % 2) for n, q in enumerate(train_queries)])
    dev = table([(f"d{n}", rng.choice(variants)(f"query {rng.randrange(3000)}"), n % 2) for n in range(4000)])
    seen = {normalise_text(q) for q in list(train["query"])}
    shared = [(i, q) for i, q in zip(list(dev["id"]), list(dev["query"])) if normalise_text(q) in seen]
    kept, overlap = handle_query_overlap(dev, "dev", Path("dev.jsonl"), training_queries(train), "drop",
                                         Path("train.jsonl"))
    assert training_queries(train) == seen
    assert kept["id"] == [i for i in dev["id"] if i not in {s for s, _ in shared}]
    assert (overlap.rows, overlap.dropped) == (len(shared), len(shared)) and 0 < len(shared) < len(dev)
    assert overlap.queries == len({normalise_text(q) for _, q in shared})
    assert (overlap.first_id, overlap.first_query) == shared[0]


def test_the_setting_is_checked_naming_the_key():
    with pytest.raises(ConfigError, match=r"data.query_overlap='dorp': use one of \('drop', 'keep', 'error'\)"):
        validate_config(compose_train(["data.query_overlap=dorp"]))


# --------------------------------------------------------------------------- files, splits and folds

SHARED_ROWS = 5  # dev rows added with a training query, in other case and spacing


def overlap_data(folder: Path) -> tuple[Path, set[str], set[str]]:
    """Competition files (demo rows: no query on both sides) plus dev rows whose query is a training
    query in upper case with doubled spaces, of both labels. Returns the folder, the added ids and
    their normalised queries."""
    write_demo_data(folder, task_config("qc"), seed=1, train_rows=96, dev_rows=48)
    (folder / "qc_train.jsonl").rename(folder / "train.jsonl")
    (folder / "qc_dev.jsonl").rename(folder / "dev.jsonl")
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    english = [row for row in train if row["language"] == "en"]
    added = []
    for n, row in enumerate(english[:SHARED_ROWS]):
        added.append({**row, "id": f"shared-{n}", "origin_query": "  " + row["origin_query"].upper().replace(" ", "  "),
                      "label": n % 2})
    with (folder / "dev.jsonl").open("a") as dev:
        dev.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in added)
    return folder, {row["id"] for row in added}, {normalise_text(row["origin_query"]) for row in added}


def splits_of(folder: Path, *overrides: str):
    cfg = compose_train(["data=competition", f"data.dir={folder}", "paths.root=/tmp", "paths.cache_dir=/tmp/c",
                         *overrides])
    validate_config(cfg)
    return load_splits(cfg.data, cfg.task)


def test_drop_is_the_default_and_counts_what_it_removed(tmp_path):
    folder, added, _ = overlap_data(tmp_path)
    dev_rows = len((folder / "dev.jsonl").read_text().splitlines())
    splits = splits_of(folder)
    assert splits.query_overlap_policy == "drop"
    assert added.isdisjoint(splits.dev["id"]) and len(splits.dev) == dev_rows - SHARED_ROWS
    assert training_queries(splits.train).isdisjoint(training_queries(splits.dev))
    assert splits.query_overlap_params() == {"data.query_overlap_dev_rows": SHARED_ROWS,
                                             "data.query_overlap_dev_queries": SHARED_ROWS,
                                             "data.query_overlap_dropped_dev": SHARED_ROWS}
    assert splits.query_overlap_metrics()["data_query_overlap_dropped_dev"] == SHARED_ROWS
    kept = splits_of(folder, "data.query_overlap=keep")
    assert added <= set(kept.dev["id"]) and len(kept.dev) == dev_rows
    assert kept.query_overlap_params()["data.query_overlap_dropped_dev"] == 0
    assert kept.query_overlap_params()["data.query_overlap_dev_rows"] == SHARED_ROWS


def test_the_overlap_is_against_the_whole_training_file_not_its_cap(tmp_path):
    """A training query the cap leaves out still marks its dev rows: the split is what matters, and
    runs with different caps score the same dev rows."""
    folder, added, queries = overlap_data(tmp_path)
    capped = splits_of(folder, "data.max_train_rows=12")
    assert not queries <= training_queries(capped.train), "the cap must leave out a shared query for this test"
    assert added.isdisjoint(capped.dev["id"]) and capped.query_overlap["dev"].dropped == SHARED_ROWS
    assert capped.dev["id"] == splits_of(folder).dev["id"]


def test_test_rows_carved_from_dev_or_read_from_a_file_are_checked_too(tmp_path):
    folder, added, _ = overlap_data(tmp_path)
    carved = splits_of(folder, "data.test_fraction=0.5", "data.query_overlap=keep")
    found = {role: carved.query_overlap[role].rows for role in ("dev", "test")}
    assert sum(found.values()) == SHARED_ROWS and set(carved.query_overlap) == {"dev", "test"}
    dropped = splits_of(folder, "data.test_fraction=0.5")
    assert added.isdisjoint(dropped.dev["id"]) and added.isdisjoint(dropped.test["id"])
    # drop and keep put every other row on the same side
    assert set(dropped.test["id"]) == set(carved.test["id"]) - added
    (folder / "test.jsonl").write_text((folder / "dev.jsonl").read_text())
    with_file = splits_of(folder, "data.test_file=test.jsonl")
    assert with_file.query_overlap["test"].dropped == SHARED_ROWS and added.isdisjoint(with_file.test["id"])


def test_with_folds_the_test_rows_are_checked_against_the_whole_pool(tmp_path):
    folder, added, queries = overlap_data(tmp_path)
    (folder / "dev.jsonl").rename(folder / "test.jsonl")
    splits = splits_of(folder, "data.folds=2", "data.fold=0", "data.dev_file=null", "data.test_file=test.jsonl",
                       "data.max_train_rows=12")
    assert not queries <= training_queries(splits.train) | training_queries(splits.dev)  # the cap left some out
    assert splits.query_overlap["test"].dropped == SHARED_ROWS and added.isdisjoint(splits.test["id"])
    assert splits.query_overlap["dev"].rows == 0  # the folds group by query


def test_a_test_file_made_only_of_training_queries_is_refused_clearly(tmp_path):
    folder, _, _ = overlap_data(tmp_path)
    (folder / "test.jsonl").write_text((folder / "dev.jsonl").read_text())  # in the pool, as the dev file
    with pytest.raises(DataError, match=r"test.jsonl:0: field 'origin_query': every one of the \d+ test rows .* "
                                        r"leaves no test rows; .* data.query_overlap=keep"):
        splits_of(folder, "data.folds=2", "data.fold=0", "data.test_file=test.jsonl", "data.test_fraction=null")


def test_dropping_may_leave_one_label_and_that_is_an_error(tmp_path):
    folder, _, _ = overlap_data(tmp_path)
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    # dev: one unseen positive query, and negatives all of whose queries are training queries
    dev = [{**rows[0], "id": "new", "origin_query": "zzz unseen query", "label": 1},
           *({**row, "id": f"neg-{n}", "label": 0} for n, row in enumerate(rows[:4]))]
    (folder / "dev.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dev))
    with pytest.raises(DataError, match="every one of the 1 dev rows has label 1"):
        splits_of(folder)
    assert len(splits_of(folder, "data.query_overlap=keep").dev) == 5


def test_the_real_qc_dev_file_shares_95_queries_127_rows_with_train():
    """Counted by hand (a plain loop over both files, `normalise_text`): 127 of dev.jsonl's 5,740 rows
    carry one of 95 queries of train.jsonl; exact string matches alone find 94 rows."""
    require_path(SHARED_QC / "dev.jsonl", "the real QC dev rows")
    kept = splits_of(SHARED_QC, "data.query_overlap=keep")
    overlap = kept.query_overlap["dev"]
    assert (overlap.rows, overlap.queries, overlap.dropped, len(kept.dev)) == (127, 95, 0, 5740)
    dropped = splits_of(SHARED_QC)
    assert len(dropped.dev) == 5740 - 127
    assert training_queries(dropped.train).isdisjoint(training_queries(dropped.dev))
    with pytest.raises(DataError, match=r"dev.jsonl:43: field 'origin_query': query 'Centa' \(id 100043\)"):
        splits_of(SHARED_QC, "data.query_overlap=error")


# --------------------------------------------------------------------------- the real CLI


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory):
    return overlap_data(tmp_path_factory.mktemp("overlap-data"))


def train_on(root: Path, cache: Path, folder: Path, *extra: str):
    """A tiny run on `folder`: its dev rows' ids as logged, its params, and the command's output."""
    result = run_cli("train", tiny_run_args(root, cache, "data=competition", f"data.dir={folder}", "trainer.epochs=1",
                                            *extra), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    logged = Path(client.download_artifacts(run.info.run_id, "evaluation/dev_predictions.jsonl", str(root)))
    ids = {str(json.loads(line)["id"]) for line in logged.read_text().splitlines()}
    return ids, run.data.params, result.stdout + result.stderr


def test_a_run_drops_the_shared_queries_from_dev_and_says_so(cli_data, shared_cache, tmp_path):
    folder, added, _ = cli_data
    dev_rows = len((folder / "dev.jsonl").read_text().splitlines())
    ids, params, output = train_on(tmp_path, shared_cache, folder)
    assert params["data.query_overlap"] == "drop" and int(params["data.dev_rows"]) == dev_rows - SHARED_ROWS
    assert added.isdisjoint(ids) and len(ids) == dev_rows - SHARED_ROWS
    assert f"dropped {SHARED_ROWS} dev rows ({SHARED_ROWS} queries" in output
    assert "data.query_overlap=keep scores them anyway" in output
    assert params["data.query_overlap_dropped_dev"] == str(SHARED_ROWS)
    assert params["data.query_overlap_dev_rows"] == str(SHARED_ROWS)


def test_a_run_keeps_them_when_asked(cli_data, shared_cache, tmp_path):
    folder, added, _ = cli_data
    ids, params, output = train_on(tmp_path, shared_cache, folder, "data.query_overlap=keep")
    assert params["data.query_overlap"] == "keep" and added <= ids
    assert int(params["data.dev_rows"]) == len((folder / "dev.jsonl").read_text().splitlines())
    assert "dropped" not in output


def test_a_run_refuses_them_before_any_model_loads(cli_data, tmp_path):
    folder, added, _ = cli_data
    result = run_cli("train", tiny_run_args(tmp_path, tmp_path / "cache", "data=competition", f"data.dir={folder}",
                                            "data.query_overlap=error"), cwd=tmp_path, check=False)
    assert result.returncode != 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert run.info.status == "FAILED" and "model_load_seconds" not in run.data.metrics  # no model loaded
    dev_lines = (folder / "dev.jsonl").read_text().splitlines()
    first = next(n for n, line in enumerate(dev_lines, 1) if json.loads(line)["id"] in added)
    query = json.loads(dev_lines[first - 1])["origin_query"].strip()
    assert f"{folder / 'dev.jsonl'}:{first}: field 'origin_query': query {query!r} (id shared-0)" in result.stderr
    assert f"{SHARED_ROWS} dev rows ({SHARED_ROWS} queries)" in result.stderr
    assert "data.query_overlap=drop" in result.stderr
