"""The statistics behind `relevance.compare`'s verdicts, on synthetic rows and hand-made points:
query-clustered intervals, bootstrap p-values, Holm over many arms, P(better) over seed pairs and the
per-seed spread, and the power figures (MDE, seeds needed)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from relevance.compare.deltas import RunPredictions, TaskBootstrap, add_deltas, shared_rows
from relevance.compare.sample_size import (MIN_SEEDS, ROW_NOISE_TOO_LARGE, SEED_NOISE_UNKNOWN, Noise, estimate_noise,
                                           minimal_detectable_effect, power_summary, seeds_needed, undetectable_notes)
from relevance.compare.seeds import seed_groups, task_noise
from relevance.compare.significance import (NOT_SIGNIFICANT, SIGNIFICANT, add_holm_verdicts, holm_adjust,
                                            seed_pair_win_share, seed_spread)
from relevance.evaluation.bootstrap import (EvaluationRows, MetricDraws, RunScores, bootstrap_p_value,
                                            percentile_interval, retuned_draws)

# --------------------------------------------------------------------------- clustered resampling


def query_rows(rng, queries: int, rows_per_query: int) -> tuple[np.ndarray, np.ndarray]:
    """(query index, label) per row: each query has its own share of relevant rows."""
    query = np.repeat(np.arange(queries), rows_per_query)
    labels = (rng.random(query.size) < rng.uniform(0.1, 0.9, queries)[query]).astype(np.int64)
    return query, labels


def query_correlated_scores(rng, query, labels) -> np.ndarray:
    """A run that separates some queries' rows well and others' badly: the rows of one query share
    the run's skill on it, so they are not independent draws."""
    skill = rng.normal(0, 0.25, query.max() + 1)[query]
    return np.clip(0.5 + (0.15 + skill) * (2 * labels - 1) + rng.normal(0, 0.1, labels.size), 0, 1)


def clustered_setting(seed=0, dev_queries=60, test_queries=150, per_query=8):
    rng = np.random.default_rng(seed)
    dev_q, dev_y = query_rows(rng, dev_queries, per_query)
    test_q, test_y = query_rows(rng, test_queries, per_query)
    runs = {name: RunScores(query_correlated_scores(rng, dev_q, dev_y), query_correlated_scores(rng, test_q, test_y))
            for name in "ab"}
    rows = EvaluationRows.of(dev_y, ["en"] * dev_y.size, test_y, ["en"] * test_y.size,
                             [f"dev query {q}" for q in dev_q], [f"test query {q}" for q in test_q])
    return rows, runs


def delta_width(draws, metric: str) -> float:
    low, high = percentile_interval(draws["b"].get(metric) - draws["a"].get(metric))
    return high - low


def test_resampling_queries_widens_the_interval_when_a_querys_rows_are_correlated():
    rows, runs = clustered_setting()
    assert rows.clustered and rows.scored_size() == (1200, 150)
    by_query = retuned_draws(rows, runs, n_resamples=400, seed=1)
    by_row = retuned_draws(rows, runs, n_resamples=400, seed=1, cluster=False)
    for metric in ("f1", "roc_auc"):
        assert delta_width(by_query, metric) > 1.3 * delta_width(by_row, metric), metric


def test_one_row_per_query_is_the_row_bootstrap():
    """The null control: with every query a single row, drawing queries is drawing rows."""
    rng = np.random.default_rng(3)
    dev_y, test_y = rng.integers(0, 2, 150), rng.integers(0, 2, 200)
    runs = {"a": RunScores(rng.random(150), rng.random(200))}
    rows = EvaluationRows.of(dev_y, ["en"] * 150, test_y, ["en"] * 200,
                             [f"q{i}" for i in range(150)], [f"t{i}" for i in range(200)])
    by_query = retuned_draws(rows, runs, n_resamples=100, seed=5)
    by_row = retuned_draws(rows, runs, n_resamples=100, seed=5, cluster=False)
    assert np.array_equal(by_query["a"].f1, by_row["a"].f1)
    assert np.array_equal(by_query["a"].roc_auc, by_row["a"].roc_auc, equal_nan=True)


def predictions(ids, queries, labels, scores) -> pd.DataFrame:
    frame = pd.DataFrame({"id": [str(i) for i in ids], "label": labels, "language": "en", "score": scores})
    if queries is not None:
        frame.insert(1, "query", queries)
    return frame


def test_a_query_is_its_case_and_space_folded_text():
    dev = predictions(range(4), ["Red Shoes", " red  shoes", "blue hat", "RED SHOES"], [1, 0, 1, 0],
                      [0.9, 0.2, 0.8, 0.3])
    rows = shared_rows(RunPredictions(dev))
    assert rows.dev_clusters.tolist() == [0, 0, 1, 0] and rows.clustered
    assert not shared_rows(RunPredictions(dev.drop(columns="query"))).clustered


def test_runs_without_a_query_column_are_resampled_by_row_with_a_note():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 80)
    old = RunPredictions(predictions(range(80), None, labels, rng.random(80)),
                         predictions(range(100, 180), None, labels, rng.random(80)))
    frame = pd.DataFrame({"run_id": ["old"], "task": ["QC"], "label": ["old run"]})
    bootstraps, notes = add_deltas(frame, {"old": old}, {"QC": "old"}, n_resamples=20, seed=0)
    assert not bootstraps["QC"].clustered and bootstraps["QC"].queries == bootstraps["QC"].rows == 80
    assert any("no `query` column" in note and "rows one by one" in note for note in notes)


# --------------------------------------------------------------------------- p-values and Holm


def test_bootstrap_p_value_is_two_sided_and_floored():
    assert bootstrap_p_value([-1.0, 1.0, 2.0, 3.0]) == pytest.approx(0.5)  # 2 × min(1/4, 3/4)
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(1 / 1000)  # every draw above 0: the floor
    assert bootstrap_p_value(np.zeros(50)) == 1.0  # identical runs
    assert bootstrap_p_value([np.nan, -1.0, 1.0]) == 1.0
    assert math.isnan(bootstrap_p_value([np.nan]))


def test_holm_keeps_only_the_first_of_three_arms():
    adjusted = holm_adjust([0.04, 0.01, 0.03])
    assert adjusted == pytest.approx([0.06, 0.03, 0.06])  # 3 × 0.01; max(2 × 0.03, 0.03); max(1 × 0.04, 0.06)
    assert [p < 0.05 for p in adjusted] == [False, True, False]
    assert holm_adjust([0.5, np.nan, 0.9]).tolist()[::2] == pytest.approx([1.0, 1.0])  # capped; NaN not counted
    assert np.isnan(holm_adjust([0.5, np.nan])[1])


def test_holm_over_a_tasks_arm_summaries():
    groups = pd.DataFrame({
        "task": ["QC", "QC", "QC", "QC", "QI", "QI"],
        "note": ["baseline", "", "", "", "baseline", ""],
        "p_f1": [np.nan, 0.01, 0.03, 0.04, np.nan, 0.04],
        "p_roc_auc": [np.nan, 0.2, 0.001, np.nan, np.nan, 0.5],
    })
    add_holm_verdicts(groups, alpha=0.05)
    assert groups["verdict_f1"].tolist() == ["", SIGNIFICANT, NOT_SIGNIFICANT, NOT_SIGNIFICANT, "", SIGNIFICANT]
    assert groups["p_adj_f1"].iloc[5] == pytest.approx(0.04)  # QI has one arm: nothing to correct
    assert groups["p_adj_roc_auc"].iloc[1:3].tolist() == pytest.approx([0.2, 0.002])  # two tested arms
    assert groups["verdict_roc_auc"].tolist()[1:4] == [NOT_SIGNIFICANT, SIGNIFICANT, ""]
    add_holm_verdicts(groups, alpha=0.1)  # alpha decides
    assert groups["verdict_f1"].tolist()[1:4] == [SIGNIFICANT] * 3


# --------------------------------------------------------------------------- seed groups on hand-made runs


def hand_made(groups: dict[str, dict[int, tuple[float, np.ndarray]]], task="QC") -> tuple[pd.DataFrame, dict]:
    """Runs of `groups` (label → seed → (point F1 = point ROC-AUC, draws)) as the frame and the
    task's bootstrap that `seed_groups` reads; the first group holds the baseline."""
    records, points, draws = [], {}, {}
    for label, seeds in groups.items():
        for seed, (point, run_draws) in seeds.items():
            run_id = f"{label}-{seed}"
            records.append({"run_id": run_id, "task": task, "seed_group": label, "group_label": label,
                            "augment": label, "seed": str(seed), "test_f1": point, "test_roc_auc": point,
                            "dev_f1": point})
            points[run_id] = {"f1": point, "roc_auc": point}
            draws[run_id] = MetricDraws(np.asarray(run_draws, float), np.asarray(run_draws, float))
    boot = TaskBootstrap("test", points, draws, rows=400, queries=50)
    return pd.DataFrame(records), {task: boot}


def draws_with_p(p: float, n: int = 1000) -> np.ndarray:
    """Draws whose delta against all-zero draws has a two-sided bootstrap p of exactly `p`."""
    below = round(p * n / 2)
    return np.r_[-np.ones(below), np.ones(n - below)]


def test_holm_changes_verdicts_through_the_arm_summaries():
    frame, bootstraps = hand_made({"base": {0: (0.70, np.zeros(1000))},
                                   "a": {0: (0.72, draws_with_p(0.01))},
                                   "b": {0: (0.71, draws_with_p(0.03))},
                                   "c": {0: (0.71, draws_with_p(0.04))}})
    groups = seed_groups(frame, bootstraps, {"QC": "base-0"}, "test").set_index("group")
    assert groups.loc[["a", "b", "c"], "p_f1"].tolist() == pytest.approx([0.01, 0.03, 0.04])
    assert groups.loc[["a", "b", "c"], "p_adj_f1"].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert groups.loc[["a", "b", "c"], "verdict_f1"].tolist() == [SIGNIFICANT, NOT_SIGNIFICANT, NOT_SIGNIFICANT]
    assert groups.loc["base", "verdict_f1"] == ""  # the baseline is not an arm
    relaxed = seed_groups(frame, bootstraps, {"QC": "base-0"}, "test", alpha=0.1).set_index("group")
    assert relaxed.loc[["a", "b", "c"], "verdict_roc_auc"].tolist() == [SIGNIFICANT] * 3


def test_p_better_over_seed_pairs_and_the_seed_spread():
    assert seed_pair_win_share([0.7, 0.8], [0.75, 0.8]) == pytest.approx(1.5 / 4)  # a win, a tie, two losses
    assert seed_pair_win_share([0.9], [0.1, 0.2, 0.3]) == 1.0
    assert math.isnan(seed_pair_win_share([], [0.5]))
    assert seed_spread([0.71, np.nan, 0.75, 0.73]) == (0.71, 0.75)

    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.01, 500)  # noqa: E731
    frame, bootstraps = hand_made({"base": {s: (p, p + noise()) for s, p in enumerate([0.70, 0.72, 0.74])},
                                   "arm": {s: (p, p + noise()) for s, p in enumerate([0.73, 0.75, 0.71])}})
    groups = seed_groups(frame, bootstraps, {"QC": "base-1"}, "test").set_index("group")
    arm = groups.loc["arm"]
    # 0.73 beats 0.70 and 0.72; 0.75 beats all three; 0.71 beats 0.70: 6 of 9 pairs
    assert arm["p_better_seed_pairs_f1"] == pytest.approx(6 / 9)
    assert (arm["seed_min_f1"], arm["seed_max_f1"]) == pytest.approx((0.71, 0.75))
    base = groups.loc["base"]
    assert (base["seed_min_roc_auc"], base["seed_max_roc_auc"]) == pytest.approx((0.70, 0.74))
    assert arm["f1"] == pytest.approx(0.73) and arm["delta_f1"] == pytest.approx(0.01)
    assert (arm["rows"], arm["queries"], arm["paired_runs"]) == (400, 50, 3)
    assert arm["ci_low"] < arm["delta_f1"] < arm["ci_high"]

    noise_estimate = task_noise(frame, bootstraps, {"QC": "base-1"})["QC"]["f1"]
    assert noise_estimate.seed_variance == pytest.approx(0.0004)  # both groups: sd 0.02 over their seeds
    assert noise_estimate.seed_groups == 2
    assert noise_estimate.run_pairs == 3 + 3 * 3  # baseline seed pairs, and each arm run with each baseline run


# --------------------------------------------------------------------------- power

Z_SUM = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)


def test_the_mde_is_the_documented_formula():
    noise = Noise(seed_variance=0.0004, row_variance=0.0001)
    for seeds in (1, 2, 5, 10):
        assert minimal_detectable_effect(noise, seeds) == pytest.approx(Z_SUM * math.sqrt(2 * 0.0004 / seeds + 0.0001))
    assert minimal_detectable_effect(noise, 3, 2) == pytest.approx(Z_SUM * math.sqrt(0.0004 * (1 / 3 + 1 / 2) + 0.0001))
    unknown = Noise(float("nan"), 0.0001)  # no seed variance: row noise only, a lower bound
    assert minimal_detectable_effect(unknown, 3) == pytest.approx(Z_SUM * 0.01)


def test_noise_estimated_from_a_synthetic_pilot_gives_the_formulas_mde():
    rng = np.random.default_rng(7)
    seed_sd, row_sd = 0.02, 0.01
    settings = [rng.normal(rng.uniform(0.6, 0.8), seed_sd, 3) for _ in range(300)]  # 300 settings × 3 seeds
    shared = rng.normal(0.7, 0.05, (40, 2000))  # row difficulty, common to both runs of a pair: cancels
    pairs = [(s + rng.normal(0, row_sd / math.sqrt(2), 2000), s + rng.normal(0, row_sd / math.sqrt(2), 2000))
             for s in shared]
    estimate = estimate_noise(settings, pairs)
    assert estimate.seed_groups == 300 and estimate.run_pairs == 40
    truth = Noise(seed_sd ** 2, row_sd ** 2)
    for seeds in (2, 3, 5, 10):
        assert minimal_detectable_effect(estimate, seeds) == pytest.approx(minimal_detectable_effect(truth, seeds),
                                                                          rel=0.05)
    single = estimate_noise([[0.7]], [], single_draws=rng.normal(0.7, row_sd, 5000))  # one run: unpaired, doubled
    assert single.run_pairs == 0 and not single.seed_variance_known
    assert single.row_variance == pytest.approx(2 * row_sd ** 2, rel=0.1)


def test_seeds_needed_falls_as_the_delta_grows():
    noise = Noise(seed_variance=0.0004, row_variance=0.00001)
    deltas = [0.02, 0.03, 0.05, 0.08, 0.2]
    needed = [seeds_needed(d, noise).seeds for d in deltas]
    assert all(isinstance(n, int) for n in needed)
    assert needed == sorted(needed, reverse=True) and needed[0] > needed[-1] == MIN_SEEDS
    for delta, seeds in zip(deltas, needed):  # the smallest N whose MDE reaches the delta
        assert minimal_detectable_effect(noise, seeds) <= delta
        if seeds > MIN_SEEDS:
            assert minimal_detectable_effect(noise, seeds - 1) > delta
    floor = Z_SUM * math.sqrt(noise.row_variance)
    assert seeds_needed(0.99 * floor, noise).text == ROW_NOISE_TOO_LARGE  # no number of seeds helps
    tight = seeds_needed(1.001 * floor, noise)
    assert tight.seeds is None and tight.text == "more than 100"
    assert seeds_needed(0.05, Noise(float("nan"), 0.00001)).text == SEED_NOISE_UNKNOWN
    summary = power_summary({"f1": noise}, [2, 5], 0.03)
    assert summary["holm"] == "not included"
    assert summary["metrics"]["f1"]["mde_by_seeds"]["5"] == pytest.approx(minimal_detectable_effect(noise, 5))
    assert summary["metrics"]["f1"]["seeds_needed"] == needed[1]


def test_an_arm_below_its_mde_gets_a_note():
    groups = pd.DataFrame({"group": ["base", "small", "large"], "task": "QC", "note": ["baseline", "", ""],
                           "paired_runs": [3, 3, 3], "rows": 600, "queries": 120,
                           "delta_f1": [np.nan, 0.004, 0.2], "mde_f1": [np.nan, 0.03, 0.03],
                           "delta_roc_auc": [np.nan, -0.01, 0.001], "mde_roc_auc": [np.nan, 0.005, 0.02]})
    noise = {"QC": {"f1": Noise(0.0004, 0.0001), "roc_auc": Noise(0.0004, 0.0001)}}
    notes = undetectable_notes(groups, noise)
    assert len(notes) == 2
    assert notes[0].startswith("`small` (QC): ΔF1 +0.0040: the test slice / seeds are too small to detect a delta "
                               "of this size (MDE 0.0300")
    assert "3 + 3 seeds on 600 rows / 120 queries" in notes[0]
    assert notes[1].startswith("`large` (QC): ΔROC-AUC +0.0010")
