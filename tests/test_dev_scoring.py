"""Dev is scored once per evaluation, through the loop `predict` uses."""

from __future__ import annotations

import numpy as np

from relevance.evaluation.dev_scoring import DevScorer, log_loss
from relevance.modeling.batching import eval_token_budget
from relevance.modeling.scoring import score_rows
from tests.test_batching import tiny_training


def test_each_epoch_scores_dev_once_and_the_final_evaluation_reuses_it(shared_cache, tmp_path):
    cfg, loaded, encoded, trainer = tiny_training(shared_cache, tmp_path, "trainer.epochs=2")
    labels = np.asarray(encoded["labels"])
    logged = []
    scorer = DevScorer(loaded, encoded, labels, cfg.trainer.eval_batch_size, eval_token_budget(cfg.trainer),
                       log_metrics=lambda metrics, step: logged.append((step, metrics)))
    trainer.add_callback(scorer)
    trainer.train()

    assert scorer.passes == 2  # one per epoch
    assert [step for step, _ in logged] == [scorer.scored_at_step // 2, scorer.scored_at_step]
    assert {"epoch_dev_f1", "epoch_dev_roc_auc", "epoch_dev_loss"} <= set(logged[-1][1])
    final = scorer.final_scores(trainer.state.global_step)
    assert scorer.passes == 2  # reused: no step came after the last epoch's scoring
    # the same numbers predict's loop gives for the trained model, bit for bit
    again = score_rows(loaded.model, loaded.head, loaded.tokenizer, encoded, cfg.trainer.eval_batch_size,
                       eval_token_budget(cfg.trainer))
    assert np.array_equal(final, again)
    assert logged[-1][1]["epoch_dev_loss"] == log_loss(labels, final)


def test_a_step_after_the_last_scoring_scores_again(shared_cache, tmp_path):
    cfg, loaded, encoded, _ = tiny_training(shared_cache, tmp_path)
    scorer = DevScorer(loaded, encoded, np.asarray(encoded["labels"]), 8, None, log_metrics=lambda *_: None)
    scorer.score(step=3)
    scorer.final_scores(step=5)
    assert (scorer.passes, scorer.scored_at_step) == (2, 5)
