"""`python -m relevance.grid_cost`: the jobs `relevance.train -m` would launch, each job's mix rows
estimated from its strategies' options (checked here against the mix the strategies really build),
tokens per row as training tokenises them, GPU-hours and wall time on N GPUs from a throughput that
is given or measured by a logged run. Tiny official-format files, the tiny tokenizer."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from relevance.augment import mix as mixing
from relevance.cost.mix_rows import DataFacts, MixShape, estimate_mix
from relevance.cost.schedule import JobTokens, job_seconds, wall_seconds
from relevance.cost.tokens import prompt_lengths
from relevance.data.loading import load_splits
from relevance.data.splits import languages
from relevance.grid_cost import GridCostOptions, cost_grid, split_arguments
from relevance.modeling.inputs import encode_table, format_prompt
from relevance.modeling.loader import load_tokenizer
from relevance.modeling.sources import resolve_model
from tests.conftest import compose_train, run_cli
from tests.test_competition_files import write_official_files


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    return write_official_files(tmp_path_factory.mktemp("cikm"))


def composed(official, cache, *overrides):
    return compose_train(["model=tiny_random", "data=cikm2025", f"data.dir={official}", f"paths.cache_dir={cache}",
                          "paths.root=/tmp", *overrides])


def test_wall_time_packs_the_jobs_on_n_gpus():
    jobs = [4.0, 3.0, 3.0, 2.0]
    assert wall_seconds(jobs, 1) == 12.0
    assert wall_seconds(jobs, 2) == 6.0  # {4, 2} and {3, 3}
    assert wall_seconds(jobs, 10) == 4.0  # more GPUs than jobs: the longest job
    assert job_seconds(JobTokens(trained=1000.0, scored=300.0), 100.0, 3.0) == pytest.approx(10.0 + 1.0)
    with pytest.raises(ValueError):
        wall_seconds(jobs, 0)


@pytest.mark.parametrize("augment", ["[original]", "[original,easy_neg]", "[original,easy_neg,balance]",
                                     "[original,balance]", "[original,easy_neg,reorder,balance]"])
def test_estimated_rows_are_the_rows_the_strategies_build(official, shared_cache, augment):
    cfg = composed(official, shared_cache, f"augment={augment}")
    splits = load_splits(cfg.data, cfg.task)
    context = mixing.augment_context(cfg, splits.train, languages(splits.train), splits.evaluation_languages())
    built = mixing.build_training_mix(cfg.augment, context)
    estimate = estimate_mix(cfg.augment, DataFacts(MixShape.of(splits.train), languages(splits.train),
                                                   splits.evaluation_languages()))
    assert estimate.shape.rows == len(built.table) and estimate.shape.positives == sum(built.table["label"])
    assert estimate.rows_added == {s.name: s.rows_added for s in built.stats}


def test_query_noise_is_estimated_at_its_share_of_the_positives(official, shared_cache):
    cfg = composed(official, shared_cache, "augment=[original,query_noise]")
    splits = load_splits(cfg.data, cfg.task)
    context = mixing.augment_context(cfg, splits.train, languages(splits.train), splits.evaluation_languages())
    built = mixing.build_training_mix(cfg.augment, context)
    estimate = estimate_mix(cfg.augment, DataFacts(MixShape.of(splits.train), [], []))
    positives, share = sum(splits.train["label"]), 0.3
    spread = 3 * math.sqrt(positives * share * (1 - share))  # a binomial draw per positive row
    assert abs(estimate.rows_added["query_noise"] - built.stats[1].rows_added) <= spread


def test_translated_is_estimated_as_every_translation_it_attempts(official, shared_cache):
    cfg = composed(official, shared_cache, "augment=[original,translated]", "translator=tiny_seq2seq",
                   "augment.translated.max_rows_per_language=12")
    splits = load_splits(cfg.data, cfg.task)
    context = mixing.augment_context(cfg, splits.train, languages(splits.train), splits.evaluation_languages())
    built = mixing.build_training_mix(cfg.augment, context)
    estimate = estimate_mix(cfg.augment, DataFacts(MixShape.of(splits.train), languages(splits.train),
                                                   splits.evaluation_languages()))
    counters = built.stats[1].counters
    attempted = sum(counters.get(f"{kind}_{lang}", 0) for kind in ("accepted", "rejected") for lang in ("de", "it"))
    assert estimate.rows_added["translated"] == attempted == 2 * 12  # de, it: the dev languages training lacks
    assert built.stats[1].rows_added <= estimate.rows_added["translated"]  # an upper bound: failures are dropped
    assert estimate.shape.by_language["de"] == estimate.shape.by_language["it"] == 12


def mean_tokens(cfg, table) -> float:
    """Tokens per row counted here, row by row, as training feeds the model."""
    tokenizer = load_tokenizer(resolve_model(cfg.model, cfg.paths.cache_dir), cfg.model, cfg.head)
    return float(np.mean([len(tokenizer(format_prompt(row, cfg.task), truncation=True,
                                        max_length=cfg.model.max_length)["input_ids"]) for row in table]))


def test_the_paper_grid_is_costed_without_loading_any_translator_or_embedder(official, tmp_path):
    cache = tmp_path / "cache"
    options, overrides = split_arguments(["model=tiny_random", "data=cikm2025", f"data.dir={official}",
                                          f"paths.root={tmp_path}", f"paths.cache_dir={cache}", "gpus=3",
                                          "throughput_tokens_per_s=800", "scoring_speedup=4", "sample_rows=100000"])
    assert overrides[0] == "experiment=paper_ablation_gpu"
    costs, found = cost_grid(options, overrides)
    assert len(costs) == 10  # 5 mixes x 2 tasks; model=tiny_random replaces the swept backbones
    assert {c.task for c in costs} == {"QC", "QI"} and {c.model for c in costs} == {"tiny_random"}
    assert {c.mix for c in costs} == {"original", "original+translated", "original+translated+easy_neg",
                                      "original+translated+hard_neg", "original+translated+balance"}
    for cost in costs:
        cfg = compose_train(cost.overrides)  # the job as train -m would compose it
        splits = load_splits(cfg.data, cfg.task)
        assert cost.tokens_per_row == pytest.approx(mean_tokens(cfg, splits.train))
        assert cost.tokens.trained == pytest.approx(cost.estimate.shape.rows * cost.tokens_per_row * 2)  # trainer=gpu
        dev, test = splits.dev, splits.test
        assert test is None and cost.tokens.scored == pytest.approx(len(dev) * mean_tokens(cfg, dev) * (2 + 1))
        assert cost.seconds == pytest.approx(cost.tokens.trained / 800 + cost.tokens.scored / (800 * 4))
    assert not (cache / "augment").exists()  # no translation, no embedding: estimated from the options
    assert found == {"*": 800.0}


@pytest.mark.parametrize("head, max_length", [("classifier", 96), ("yes_no", 96), ("yes_no", 24)])
def test_tokens_are_counted_as_encode_table_encodes_the_rows(official, shared_cache, head, max_length):
    cfg = composed(official, shared_cache, f"head={head}", f"model.max_length={max_length}")
    tokenizer = load_tokenizer(resolve_model(cfg.model, cfg.paths.cache_dir), cfg.model, cfg.head)
    table = load_splits(cfg.data, cfg.task).train
    encoded = encode_table(table, tokenizer, cfg.task, cfg.head, max_length)
    lengths = prompt_lengths(table.to_list(), tokenizer, cfg.task, cfg.head, max_length)
    assert lengths == list(encoded["length"]) and max(lengths) <= max_length
    if max_length == 24:
        assert max(lengths) == 24  # the long prompts truncated, the answer suffix kept whole


def test_a_grid_costs_each_job_as_if_it_were_costed_alone(official, tmp_path, shared_cache):
    """What the jobs share (data read once, tokens counted once per table and prompt) never changes a job's
    numbers: every job of a grid over both tasks, mixes with and without a prompt change and both heads
    (the yes/no head's answer suffix) equals the same job costed on its own, in a fresh coster."""
    common = ["experiment=paper_ablation_gpu", "model=tiny_random", "data=cikm2025", f"data.dir={official}",
              f"paths.root={tmp_path}", f"paths.cache_dir={shared_cache}"]
    options = GridCostOptions(throughput_tokens_per_s=700.0, sample_rows=40)  # a sample: the seeded rows must match
    costs, _ = cost_grid(options, [*common, "hydra.sweeper.params.augment='[original,easy_neg],[original,pivot]'",
                                   "+hydra.sweeper.params.head='classifier,yes_no'"])
    assert len(costs) == 8 and {c.task for c in costs} == {"QC", "QI"}
    per_row = {(c.task, c.mix, dict(o.split("=", 1) for o in c.overrides)["head"]): c.tokens_per_row for c in costs}
    assert per_row["QC", "original+pivot", "classifier"] > per_row["QC", "original+easy_neg", "classifier"]
    assert per_row["QC", "original+easy_neg", "yes_no"] > per_row["QC", "original+easy_neg", "classifier"]  # suffix
    for cost in costs:
        (alone,), _ = cost_grid(options, cost.overrides)  # the job's own overrides: a grid of one
        assert (alone.model, alone.task, alone.mix, alone.epochs) == (cost.model, cost.task, cost.mix, cost.epochs)
        assert alone.estimate == cost.estimate and alone.train_rows == cost.train_rows
        assert (alone.tokens_per_row, alone.tokens, alone.seconds) == (cost.tokens_per_row, cost.tokens, cost.seconds)


def test_a_logged_run_gives_its_models_throughput(official, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("relevance-qc"))
    params = {"data.mix_rows": 1200, "trainer.epochs": 2, "model.name": "tiny_random", "task.name": "QC"}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.log_metric(run.info.run_id, "train_runtime", 4.0)  # 2400 rows in 4 s: 600 rows/s
    client.set_terminated(run.info.run_id)
    options, overrides = split_arguments(["model=tiny_random", "data=cikm2025", f"data.dir={official}", "task=qc",
                                          f"paths.root={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}",
                                          f"tracking.tracking_uri={uri}", f"throughput_runs=[{run.info.run_id}]"])
    costs, found = cost_grid(options, overrides)
    assert len(costs) == 5 and found == {"tiny_random": pytest.approx(600 * costs[0].tokens_per_row)}
    assert costs[0].seconds == pytest.approx(costs[0].tokens.trained / found["tiny_random"]
                                             + costs[0].tokens.scored / (found["tiny_random"] * 3))


def test_the_command_prints_tokens_gpu_hours_and_wall_time(official, tmp_path, shared_cache):
    args = ["model=tiny_random", "data=cikm2025", f"data.dir={official}", f"paths.cache_dir={shared_cache}",
            "task=qc", "tokens_per_row=50", "throughput_tokens_per_s=100", "gpus=2"]
    out = run_cli("grid_cost", args, cwd=tmp_path).stdout
    assert "grid: 5 jobs (augment)" in out and "translated" in out and "hard_neg" in out
    per_job = re.findall(r"^tiny_random\s+QC\s+(\S+)\s+50\.0\s+2\s+[\d.]+M\s+[\d.]+M\s+([\d.]+)$", out, re.M)
    assert len(per_job) == 5
    total = float(re.search(r"total: ([\d.]+) GPU-hours; wall time on 2 GPUs", out).group(1))
    assert total == pytest.approx(sum(float(hours) for _, hours in per_job), abs=0.1)


@pytest.mark.parametrize("argument, message", [
    ("gpus=0", "gpus=0.*must be positive"),
    ("gpu=2", "gpu"),  # not one of its keys: a train override, refused by Hydra as train would refuse it
    ("throughput_tokens_per_s={gemma3_12b:100}", "no throughput for model tiny_random"),
    ("tokenizer=no_such_model", "no_such_model"),
])
def test_bad_arguments_are_refused_naming_the_key(official, tmp_path, shared_cache, argument, message):
    args = ["model=tiny_random", "data=cikm2025", f"data.dir={official}", f"paths.cache_dir={shared_cache}",
            "task=qc", argument]
    result = run_cli("grid_cost", args, cwd=tmp_path, check=False)
    assert result.returncode != 0 and re.search(message, result.stderr), result.stderr[-1500:]
