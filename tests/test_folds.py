"""Query-grouped k-fold (`data.folds=K data.fold=i`) and fold ensembles, end to end with the tiny model:
fold dev sets are disjoint, cover the training pool and never split a query; the test split is the
one a run without folds has; each fold run logs its out-of-fold scores; `predict` averages the fold
runs' probabilities at one threshold tuned on the pooled out-of-fold scores; and bad references
fail before any model loads, naming the config key."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relevance.augment.base import AugmentContext, StrategyOptionsError
from relevance.augment.mix import build_strategy
from relevance.config import ConfigError, validate_config
from relevance.data.loading import load_splits
from relevance.data.splits import fold_assignment, fold_split, grouped_split, query_group_key
from relevance.evaluation.oof import OOF_ARTIFACT, OOF_COLUMNS, OutOfFoldError, pool_oof
from relevance.evaluation.threshold import ThresholdPolicy, tune_thresholds
from relevance.tracking.fold_reader import TrackedFoldRuns
from relevance.tracking.folds import FoldRunsError, fold_runs, pooled_oof
from tests.conftest import compose_train, run_cli
from tests.sweep_fixtures import run_sweep
from tests.test_data_splits import make_table
from tests.test_test_split import subset_file

FOLDS = 2
SWEEP = ["experiment=folds", "model=tiny_random", "trainer=smoke", "trainer.epochs=1", f"data.folds={FOLDS}",
         "data.fold=0,1"]


def fold_config(cache: Path, *overrides: str):
    return compose_train([f"paths.cache_dir={cache}", "paths.root=/tmp", *overrides])


# --------------------------------------------------------------------------- folds of a table

def test_folds_are_disjoint_covering_and_never_split_a_query():
    table = make_table(queries_per_lang=30)
    assignment = fold_assignment(table, 5, seed=3)
    assert set(assignment.tolist()) == set(range(5))  # every row in exactly one fold
    fold_of_query = defaultdict(set)
    for query, fold in zip(table["query"], assignment):
        fold_of_query[query_group_key(query)].add(int(fold))
    assert all(len(folds) == 1 for folds in fold_of_query.values())  # "EN QUERY 3" goes where "en query 3" goes
    dev_ids = []
    for fold in range(5):
        train, dev = fold_split(table, 5, fold, seed=3)
        assert set(train["id"]).isdisjoint(dev["id"]) and len(train) + len(dev) == len(table)
        assert {query_group_key(q) for q in train["query"]}.isdisjoint(query_group_key(q) for q in dev["query"])
        assert set(dev["label"]) == {0, 1} and len(set(dev["language"])) == 5  # stratified by language x label
        dev_ids += dev["id"]
    assert sorted(dev_ids) == sorted(table["id"])  # the dev sets cover the table, each row once
    assert (fold_assignment(table, 5, seed=3) == assignment).all()
    assert (fold_assignment(table, 5, seed=4) != assignment).any()
    # the grouped dev split is the first fold of the same splitter: runs without folds keep their rows
    _, dev = grouped_split(table, 0.2, seed=3)
    assert sorted(dev["id"]) == sorted(np.asarray(table["id"])[assignment == 0].tolist())


def test_fold_settings_are_checked():
    table = make_table(queries_per_lang=2)
    with pytest.raises(ValueError, match="at least 2"):
        fold_assignment(table, 1, seed=0)
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 3\)"):
        fold_split(table, 3, 3, seed=0)
    with pytest.raises(ValueError, match="cannot split 10 distinct queries into 11 folds"):
        fold_assignment(table, 11, seed=0)


def test_fold_runs_keep_the_test_split_and_fold_the_rest_of_the_pool(tmp_path):
    plain = load_splits(*_data_task(fold_config(tmp_path)))
    folds = [load_splits(*_data_task(fold_config(tmp_path, "data.folds=3", f"data.fold={i}"))) for i in range(3)]
    train_file = [json.loads(line) for line in plain.train_path.read_text().splitlines()]
    dev_file = [json.loads(line) for line in plain.dev_path.read_text().splitlines()]
    test_ids = set(plain.test["id"])
    # the pool: the training file, plus the dev file's rows that are not test; the demo's two files both
    # number their rows from 1, so the dev file's ids carry its name
    pool = {str(r["id"]) for r in train_file} | {f"qc_dev.jsonl:{r['id']}" for r in dev_file
                                                 if str(r["id"]) not in test_ids}
    dev_ids = []
    for i, split in enumerate(folds):
        assert list(split.test["id"]) == list(plain.test["id"])  # the test split is untouched by the folds
        assert (split.fold.folds, split.fold.fold, split.fold.pool_rows) == (3, i, len(pool))
        assert set(split.train["id"]) | set(split.dev["id"]) == pool
        assert set(split.train["id"]).isdisjoint(split.dev["id"])
        queries = lambda table: {query_group_key(q) for q in table["query"]}  # noqa: E731
        assert queries(split.train).isdisjoint(queries(split.dev))
        assert queries(split.dev).isdisjoint(queries(split.test))
        dev_ids += split.dev["id"]
    assert sorted(dev_ids) == sorted(pool)
    capped = load_splits(*_data_task(fold_config(tmp_path, "data.folds=3", "data.fold=0", "data.max_train_rows=300")))
    assert capped.fold.pool_rows == 300 and len(capped.train) + len(capped.dev) == 300


def _data_task(cfg):
    return cfg.data, cfg.task


@pytest.mark.parametrize("overrides,message", [
    (["data.fold=1"], "data.fold=1 needs data.folds"),
    (["data.folds=1", "data.fold=0"], "data.folds=1: k-fold needs at least 2 folds"),
    (["data.folds=3"], "data.fold=None: with data.folds=3 choose the dev fold, 0 to 2"),
    (["data.folds=3", "data.fold=3"], "data.fold=3: with data.folds=3"),
    (["data.folds=3", "data.fold=0", "data.max_dev_rows=50"], "cap the pool with data.max_train_rows"),
    (["data.folds=3", "data.fold=0", "data.dev_file=null"], "data.dev_file=null and data.test_fraction=0.5"),
])
def test_fold_config_mistakes_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate_config(compose_train(overrides))


def test_the_folds_experiment_sweeps_every_fold():
    from tests.test_sweep import sweep_jobs

    jobs = sweep_jobs("folds")
    assert jobs == [[f"data.fold={i}"] for i in range(5)]
    cfg = compose_train(["experiment=folds", *jobs[4]])
    validate_config(cfg)
    assert (cfg.data.folds, cfg.data.fold) == (5, 4)


def test_pooling_refuses_a_row_scored_twice():
    frame = pd.DataFrame({"id": ["1", "2"], "language": ["en", "fr"], "label": [1, 0], "probability": [0.9, 0.2],
                          "fold": [0, 0]})
    assert len(pool_oof({"a": frame, "b": frame.assign(id=["3", "4"])})) == 4
    with pytest.raises(OutOfFoldError, match="row '1' is out-of-fold in runs a, b"):
        pool_oof({"a": frame, "b": frame})


# --------------------------------------------------------------------------- a real fold sweep

@pytest.fixture(scope="module")
def fold_sweep(tmp_path_factory, shared_cache):
    return run_sweep(tmp_path_factory.mktemp("fold-sweep"), shared_cache, *SWEEP)


def download_frame(client, run_id: str, artifact: str, work: Path) -> pd.DataFrame:
    work.mkdir(parents=True, exist_ok=True)
    return pd.read_json(client.download_artifacts(run_id, artifact, str(work)), lines=True, dtype={"id": str})


@pytest.mark.integration  # a 2-fold sweep: make test-integration
def test_each_fold_logs_its_out_of_fold_scores_and_together_they_cover_the_pool(fold_sweep, shared_cache, tmp_path):
    client, children = fold_sweep.client, fold_sweep.children
    assert [c.info.status for c in children] == ["FINISHED"] * FOLDS
    pool = load_splits(*_data_task(fold_config(shared_cache, f"data.folds={FOLDS}", "data.fold=0")))
    pool_labels = dict(zip(list(pool.train["id"]) + list(pool.dev["id"]), list(pool.train["label"]) + list(pool.dev["label"])))
    frames, tests = [], []
    for child in children:
        run_id, fold = child.info.run_id, int(child.data.params["data.fold"])
        assert child.data.params["data.pool_rows"] == str(len(pool_labels))
        oof = download_frame(client, run_id, OOF_ARTIFACT, tmp_path / run_id)
        assert tuple(oof.columns) == OOF_COLUMNS and (oof["fold"] == fold).all()
        dev = download_frame(client, run_id, "evaluation/dev_predictions.jsonl", tmp_path / run_id / "dev")
        assert list(oof["id"]) == list(dev["id"])  # the fold's dev rows, as scored
        np.testing.assert_allclose(oof["probability"], dev["score"], rtol=0, atol=1e-9)
        assert all(pool_labels[i] == label for i, label in zip(oof["id"], oof["label"]))
        frames.append(oof)
        tests.append(list(download_frame(client, run_id, "evaluation/test_predictions.jsonl", tmp_path / run_id / "t")["id"]))
    ids = pd.concat(frames)["id"]
    assert ids.is_unique and set(ids) == set(pool_labels)  # complete: every pool row, once
    assert tests[0] == tests[1]  # one test split for every fold

    members = fold_runs(client, fold_sweep.parent.info.run_id, "run", need_model=True)
    assert members.run_ids == [c.info.run_id for c in sorted(children, key=lambda c: int(c.data.params["data.fold"]))]
    assert len(pooled_oof(client, members, tmp_path / "pooled")) == len(pool_labels)


@pytest.fixture(scope="module")
def ensemble_prediction(fold_sweep, shared_cache, tmp_path_factory):
    """`predict run=<sweep parent>` and each fold's own `predict run=<id>` on the test rows."""
    root, client = fold_sweep.root, fold_sweep.client
    work = tmp_path_factory.mktemp("ensemble")
    first = fold_sweep.children[0].info.run_id
    test_rows = Path(client.download_artifacts(first, "evaluation/test_predictions.jsonl", str(work)))
    input_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), test_rows, work / "input.jsonl")
    common = [f"input={input_file}", f"paths.root={root}", f"paths.cache_dir={shared_cache}"]

    def predict(run: str, name: str):
        output = work / f"{name}.jsonl"
        result = run_cli("predict", [f"run={run}", f"output={output}", *common], cwd=root)
        return [json.loads(line) for line in output.read_text().splitlines()], result.stdout

    ensemble, stdout = predict(fold_sweep.parent.info.run_id, "ensemble")
    members = {c.info.run_id: predict(c.info.run_id, c.info.run_id)[0] for c in fold_sweep.children}
    listed, _ = predict("[" + ",".join(c.info.run_id for c in fold_sweep.children) + "]", "listed")
    return ensemble, stdout, members, listed, common, work


@pytest.mark.integration  # a 2-fold sweep: make test-integration
def test_predict_averages_the_folds_at_the_pooled_out_of_fold_threshold(fold_sweep, ensemble_prediction):
    ensemble, stdout, members, listed, _, work = ensemble_prediction
    member_scores = np.array([[row["score"] for row in rows] for rows in members.values()])
    scores = np.array([row["score"] for row in ensemble])
    np.testing.assert_allclose(scores, member_scores.mean(axis=0), rtol=0, atol=2e-6)  # rounded to 6 decimals
    assert not np.allclose(member_scores[0], member_scores[1])  # two different models

    oof = pooled_oof(fold_sweep.client, fold_runs(fold_sweep.client, fold_sweep.parent.info.run_id, "run"), work / "o")
    expected = tune_thresholds(oof["label"], oof["probability"], oof["language"], ThresholdPolicy())
    assert f"threshold {expected.global_threshold:.4f}" in stdout and f"tuned on {len(oof)} pooled" in stdout
    clear = np.abs(scores - expected.global_threshold) > 1e-5
    predictions = np.array([row["prediction"] for row in ensemble])
    assert clear.sum() > 0.9 * len(scores)
    assert (predictions[clear] == (scores[clear] >= expected.global_threshold)).all()
    assert "ensemble of 2 fold runs, folds 0,1 of 2" in stdout and "overall" in stdout  # labelled: metrics
    assert listed == ensemble  # run=[id0,id1] is the same ensemble as its sweep parent


@pytest.mark.integration  # a 2-fold sweep: make test-integration
def test_bad_ensembles_fail_before_any_model_loads(fold_sweep, ensemble_prediction, tmp_path):
    _, _, _, _, common, _ = ensemble_prediction
    first = fold_sweep.children[0].info.run_id
    for run, message in [(f"[{first},{first}]", "names a run twice"),
                         (f"[{first},deadbeef]", "run: no run 'deadbeef'"),
                         (f"[{first},{fold_sweep.parent.info.run_id}]", "is a sweep parent; name it alone")]:
        own_cache = tmp_path / "empty_cache"
        args = [f"run={run}", f"output={tmp_path / 'out.jsonl'}", *common[:2], f"paths.cache_dir={own_cache}"]
        result = run_cli("predict", args, cwd=fold_sweep.root, check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
        assert not (own_cache / "models").exists(), "a model was loaded before the error"
    with pytest.raises(FoldRunsError, match="run: runs .* are both fold 0"):
        fold_runs(fold_sweep.client, [first, _copy_as_fold(fold_sweep, first)], "run")
    # an ensemble is all K folds, unless asked otherwise
    with pytest.raises(FoldRunsError, match=r"run: folds 0 of 2 \(missing 1\): .*allow_partial_folds=true"):
        fold_runs(fold_sweep.client, [first], "run")
    assert fold_runs(fold_sweep.client, [first], "run", allow_partial=True).fold_numbers == [0]
    # members differ only by data.fold: another lr is another model
    other_lr = _copy_as_fold(fold_sweep, first, {"data.fold": "1", "trainer.lr": "0.5"})
    with pytest.raises(FoldRunsError, match=r"were trained differently \(trainer.lr=.* vs 0.5\)"):
        fold_runs(fold_sweep.client, [first, other_lr], "run")
    same = _copy_as_fold(fold_sweep, first, {"data.fold": "1", "data.train_rows": "1"})  # logged beside the config
    assert fold_runs(fold_sweep.client, [first, same], "run").fold_numbers == [0, 1]


def _copy_as_fold(sweep, run_id: str, changed: dict[str, str] | None = None) -> str:
    """A second run claiming to be a fold (its params with `changed`, tags and out-of-fold file)."""
    source = sweep.client.get_run(run_id)
    own_tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}  # not a child of the sweep
    run = sweep.client.create_run(source.info.experiment_id, tags=own_tags)
    for key, value in {**source.data.params, **(changed or {})}.items():
        sweep.client.log_param(run.info.run_id, key, value)
    local = Path(sweep.client.download_artifacts(run_id, OOF_ARTIFACT, str(sweep.root / "copy")))
    sweep.client.log_artifact(run.info.run_id, str(local), "evaluation")
    sweep.client.set_terminated(run.info.run_id)
    return run.info.run_id


# --------------------------------------------------------------------------- the label-noise filter

@pytest.fixture(scope="module")
def training_rows(shared_cache):
    """The training rows of a run without folds on the same demo data (the training file)."""
    return load_splits(*_data_task(fold_config(shared_cache))).train


def contradicted_ids(oof: pd.DataFrame, table, confidence: float) -> list[str]:
    """Reference: rows whose label the out-of-fold probability contradicts with at least `confidence`."""
    scores = dict(zip(oof["id"], oof["probability"]))
    return [i for i, label in zip(table["id"], table["label"]) if i in scores
            and ((label == 1 and scores[i] <= 1 - confidence) or (label == 0 and scores[i] >= confidence))]


@pytest.fixture(scope="module")
def noise(fold_sweep, training_rows, tmp_path_factory):
    """The pooled out-of-fold rows, and a confidence that flags some training rows but not all."""
    client, parent = fold_sweep.client, fold_sweep.parent.info.run_id
    oof = pooled_oof(client, fold_runs(client, parent, "test"), tmp_path_factory.mktemp("oof"))
    by_id = oof.set_index("id")
    scored = [i for i in training_rows["id"] if i in by_id.index]
    assert len(scored) == len(training_rows)  # the training file's rows are all in the pool, ids unprefixed
    labels, probability = by_id.loc[scored, "label"].to_numpy(), by_id.loc[scored, "probability"].to_numpy()
    strength = np.where(labels == 1, 1 - probability, probability)  # how much the score says "the other label"
    against = np.sort(strength[strength > 0.5])
    assert len(against) >= 2, "the folds contradict no training label: nothing to filter"
    confidence = float(against[len(against) // 2])
    expected = contradicted_ids(oof, training_rows, confidence)
    assert 0 < len(expected) < len(training_rows)
    return oof, confidence, expected


def filter_context(fold_sweep, table, cache: Path) -> AugmentContext:
    return AugmentContext(task="QC", original=table, train_languages=sorted(set(table["language"])),
                          eval_languages=[], seed=42, cache_dir=str(cache), related_by="top_level_category",
                          runs=TrackedFoldRuns(fold_sweep.tracking_uri))


@pytest.mark.integration  # a 2-fold sweep: make test-integration
def test_the_noise_filter_drops_or_relabels_exactly_the_confident_contradictions(fold_sweep, training_rows, noise,
                                                                               tmp_path):
    _, confidence, expected = noise
    context = filter_context(fold_sweep, training_rows, tmp_path)
    settings = {"oof_from": fold_sweep.parent.info.run_id, "confidence": confidence}
    dropper = build_strategy("noise_filter", settings)
    kept = dropper.rewrite_mix(training_rows, context)
    assert set(training_rows["id"]) - set(kept["id"]) == set(expected) and len(kept) == len(training_rows) - len(expected)
    assert dropper.counters == {"oof_runs": FOLDS, "scored": len(training_rows), "unscored": 0,
                                "contradicted": len(expected), "dropped": len(expected)}
    assert [r["id"] for r in dropper.artifacts["rows.json"]["rows"]] == expected

    relabeller = build_strategy("noise_filter", {**settings, "action": "relabel"})
    relabelled = relabeller.rewrite_mix(training_rows, context)
    assert relabelled["id"] == training_rows["id"] and relabeller.counters["relabelled"] == len(expected)
    for before, after in zip(training_rows, relabelled):
        flipped = before["id"] in expected
        assert after["label"] == (1 - before["label"] if flipped else before["label"])
        assert after["source"] == ("noise_filter" if flipped else "original")

    # the same ids with other labels are other data: refused, not silently filtered
    other = training_rows.map(lambda row: {"label": 1 - row["label"]})
    with pytest.raises(ValueError, match="augment.noise_filter.oof_from=.*the folds were trained on other data"):
        build_strategy("noise_filter", settings).rewrite_mix(other, filter_context(fold_sweep, other, tmp_path))


@pytest.mark.parametrize("settings,message", [
    ({}, "oof_from is not set"),
    ({"oof_from": "x", "action": "delete"}, "action='delete'"),
    ({"oof_from": "x", "confidence": 0.4}, r"confidence=0.4: must be in \(0.5, 1\]"),
])
def test_noise_filter_settings_are_checked(settings, message):
    with pytest.raises(StrategyOptionsError, match=message):
        build_strategy("noise_filter", settings)
    with pytest.raises(ConfigError, match="augment.noise_filter"):
        validate_config(compose_train(["augment=[original,noise_filter]",
                                       *[f"augment.noise_filter.{k}={v}" for k, v in settings.items()]]))


@pytest.mark.integration  # a 2-fold sweep: make test-integration
def test_a_training_run_filters_its_rows_and_logs_which(fold_sweep, noise, shared_cache, tmp_path):
    _, confidence, expected = noise
    root, client = fold_sweep.root, fold_sweep.client
    args = ["model=tiny_random", "trainer=smoke", "trainer.epochs=1", "augment=[original,noise_filter]",
            f"augment.noise_filter.oof_from={fold_sweep.parent.info.run_id}",
            f"augment.noise_filter.confidence={confidence!r}", f"paths.root={root}", f"paths.cache_dir={shared_cache}"]
    # These folds' pool holds the dev file's rows: the filter's models trained on this run's dev rows.
    own_cache = tmp_path / "empty_cache"
    seen = run_cli("train", [*args[:-1], f"paths.cache_dir={own_cache}"], cwd=root, check=False)
    assert seen.returncode != 0 and "augment.noise_filter.oof_from: run " in seen.stderr, seen.stderr[-3000:]
    assert re.search(r"trained on \d+ of its \d+ dev rows", seen.stderr) and "evaluation.allow_seen_rows=true" in seen.stderr
    assert not (own_cache / "models").exists(), "the model was loaded before the error"
    args.append("evaluation.allow_seen_rows=true")  # the user who means it
    run_cli("train", args, cwd=root)
    (run,) = client.search_runs([fold_sweep.parent.info.experiment_id], "tags.augment = 'original+noise_filter'")
    metrics = run.data.metrics
    assert metrics["augment_noise_filter_contradicted"] == metrics["augment_noise_filter_dropped"] == len(expected)
    assert metrics["augment_noise_filter_rows"] == -len(expected)
    assert int(run.data.params["data.mix_rows"]) == int(run.data.params["data.train_rows"]) - len(expected)
    listed = json.loads(Path(client.download_artifacts(run.info.run_id, "augment/noise_filter/rows.json",
                                                       str(tmp_path))).read_text())
    assert [r["id"] for r in listed["rows"]] == expected and listed["action"] == "drop"

    own_cache = tmp_path / "empty_cache"
    bad = run_cli("train", [*args[:4], "augment.noise_filter.oof_from=deadbeef", f"paths.root={root}",
                            f"paths.cache_dir={own_cache}"], cwd=root, check=False)
    assert bad.returncode != 0 and "augment.noise_filter.oof_from: no run 'deadbeef'" in bad.stderr
    assert not (own_cache / "models").exists(), "the model was loaded before the error"
