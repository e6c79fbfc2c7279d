"""Token-budget batches: the sampler's invariants, scoring batches, and training with them
through the real Trainer (schedule length, loss weighting under gradient accumulation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset

from relevance.modeling.batching import TokenBudgetBatchSampler, eval_token_budget, scoring_batches
from relevance.modeling.inputs import collator, encode_table
from relevance.modeling.loader import load_for_training
from relevance.training.trainer import RelevanceTrainer, training_arguments
from tests.conftest import compose_train

LENGTHS = np.random.default_rng(0).integers(5, 60, size=300)


def test_every_row_once_per_epoch_within_the_budget():
    sampler = TokenBudgetBatchSampler(LENGTHS, max_tokens=200, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)  # known before the epoch: the schedule's length
        assert sorted(i for batch in batches for i in batch) == list(range(len(LENGTHS)))
        assert all(len(b) * max(LENGTHS[b]) <= 200 for b in batches)
        assert len({len(b) for b in batches}) > 1  # rows per batch vary with the lengths


def test_only_a_row_longer_than_the_budget_exceeds_it_alone():
    lengths = np.array([10, 90, 12, 11, 200, 9])
    batches = list(TokenBudgetBatchSampler(lengths, max_tokens=100, seed=0))
    over = [b for b in batches if len(b) * max(lengths[b]) > 100]
    assert over == [[4]]
    assert sorted(i for b in batches for i in b) == list(range(6))


def test_deterministic_by_seed_and_epoch_and_batches_come_shuffled():
    def epoch_batches(seed, epoch):
        sampler = TokenBudgetBatchSampler(LENGTHS, max_tokens=200, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_batches(1, 0) == epoch_batches(1, 0)
    assert epoch_batches(1, 0) != epoch_batches(2, 0)
    assert epoch_batches(1, 0) != epoch_batches(1, 1)
    # batch sizes are the same every epoch (they depend on the lengths only) but their order is not
    assert sorted(map(len, epoch_batches(1, 0))) == sorted(map(len, epoch_batches(1, 1)))
    longest_per_batch = [max(LENGTHS[b]) for b in epoch_batches(1, 0)]
    assert longest_per_batch != sorted(longest_per_batch, reverse=True)
    assert longest_per_batch != sorted(longest_per_batch)


def test_scoring_batches_go_longest_first_by_rows_or_by_tokens():
    by_rows = scoring_batches(LENGTHS, batch_size=32)
    assert [len(b) for b in by_rows[:-1]] == [32] * (len(by_rows) - 1)
    order = np.concatenate(by_rows)
    assert sorted(order) == list(range(len(LENGTHS))) and np.all(np.diff(LENGTHS[order]) <= 0)
    by_tokens = scoring_batches(LENGTHS, batch_size=32, max_tokens=300)
    assert np.array_equal(np.concatenate(by_tokens), order)
    assert all(len(b) * LENGTHS[b[0]] <= 300 for b in by_tokens)
    unshuffled = TokenBudgetBatchSampler(LENGTHS, max_tokens=300, shuffle=False)
    assert [list(b) for b in by_tokens] == list(unshuffled)  # an unshuffled sampler packs as scoring does


def test_eval_budget_follows_the_training_one_unless_set():
    rows = compose_train(["trainer=cpu", "trainer.batching=rows"]).trainer
    assert eval_token_budget(rows) is None
    tokens = compose_train(["trainer=cpu", "trainer.batching=tokens", "trainer.max_tokens_per_batch=300",
                            "trainer.eval_max_tokens_per_batch=null"]).trainer
    assert eval_token_budget(tokens) == 300


def tiny_training(cache, tmp_path, *overrides):
    cfg = compose_train(["model=tiny_random", "trainer=smoke", f"paths.cache_dir={cache}", f"paths.root={tmp_path}",
                         "peft.dropout=0.0", *overrides])
    loaded = load_for_training(cfg)
    rng = np.random.default_rng(0)
    words = ["red", "shoes", "phone", "case", "lamp", "garden", "table", "kids", "toy", "cable"]
    rows = [{"query": " ".join(rng.choice(words, size=int(rng.integers(1, 12)))), "target": "home,garden",
             "label": int(rng.integers(0, 2))} for _ in range(40)]
    encoded = encode_table(Dataset.from_list(rows), loaded.tokenizer, cfg.task, cfg.head, cfg.model.max_length)
    args = training_arguments(cfg.trainer, str(tmp_path / "out"), cfg.seed, loaded.compute_dtype)
    trainer = RelevanceTrainer(model=loaded.model, args=args, train_dataset=encoded,
                               data_collator=collator(loaded.tokenizer), processing_class=loaded.tokenizer,
                               head=loaded.head)
    return cfg, loaded, encoded, trainer


def test_schedule_knows_the_optimizer_steps_of_token_budget_epochs(shared_cache, tmp_path):
    cfg, _, encoded, trainer = tiny_training(shared_cache, tmp_path, "trainer.batching=tokens",
                                             "trainer.max_tokens_per_batch=120", "trainer.grad_accum=2",
                                             "trainer.epochs=2", "trainer.lr_scheduler=linear")
    batches = len(trainer.get_train_dataloader())
    assert batches == len(TokenBudgetBatchSampler(encoded["length"], 120))
    assert batches > math.ceil(len(encoded) / cfg.trainer.batch_size)  # the budget, not batch_size, sets the rows
    trainer.train()
    assert trainer.state.max_steps == trainer.state.global_step == 2 * math.ceil(batches / 2)
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # the schedule ran to its end


def test_accumulated_batches_of_different_sizes_weigh_every_row_alike(shared_cache, tmp_path):
    """Batches of 3 rows and 1 row accumulated into one optimizer step give the gradient of
    one batch of the 4 rows (a per-batch mean / accumulation steps would weigh the lone row 3x)."""
    _, loaded, encoded, trainer = tiny_training(shared_cache, tmp_path, "quant.compute_dtype=float32",
                                                "trainer.grad_accum=2")
    collate = collator(loaded.tokenizer)
    model = loaded.model
    rows = [encoded[i] for i in range(4)]
    trainable = [p for p in model.parameters() if p.requires_grad]

    def gradient(batches):
        model.zero_grad()
        step, rows_in_step = trainer.get_batch_samples(iter([collate(b) for b in batches]), len(batches), "cpu")
        for inputs in step:
            trainer.training_step(model, inputs, rows_in_step)
        return torch.cat([p.grad.flatten() for p in trainable])

    one_batch, accumulated = gradient([rows]), gradient([rows[:3], rows[3:]])
    assert torch.allclose(one_batch, accumulated, atol=1e-6, rtol=1e-4)
    model.zero_grad()
    for batch in ([rows[:3], rows[3:]]):  # the per-batch mean weighting, for contrast
        inputs = trainer._prepare_inputs(collate(batch))
        (trainer.compute_loss(model, inputs) / 2).backward()
    per_batch_mean = torch.cat([p.grad.flatten() for p in trainable])
    assert not torch.allclose(one_batch, per_batch_mean, atol=1e-6, rtol=1e-4)
