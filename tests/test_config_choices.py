"""Unknown config-group options are named with the options that exist; plugin groups are Hydra's."""

from __future__ import annotations

import pytest

from relevance.config_choices import unknown_choices


@pytest.mark.parametrize("args, bad", [
    (["augment=[original,bogus]"], "augment has no option 'bogus'"),
    (["-m", "augment=[original],[original,bogs]"], "augment has no option 'bogs'"),
    (["model=tiny_random,gema"], "model has no option 'gema'"),
    (["task=qb"], "task has no option 'qb'"),
])
def test_an_unknown_option_is_named_with_the_known_ones(args, bad):
    (problem,) = unknown_choices(args)
    assert bad in problem and "known:" in problem


@pytest.mark.parametrize("args", [
    ["augment=[original,easy_neg]", "model=tiny_random", "trainer.lr=1e-3", "+augment.easy_neg.x=1"],
    ["hydra/launcher=joblib", "hydra/sweeper=optuna"],  # plugin options, not files in conf/
    ["experiment=paper_ablation_cpu", "model=glob(*)"],
])
def test_known_options_and_plugin_groups_pass(args):
    assert unknown_choices(args) == []


def test_a_users_search_path_adds_options(tmp_path):
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "qb.yaml").write_text("name: QB\n")
    assert unknown_choices(["task=qb", f"hydra.searchpath=[file://{tmp_path}]"]) == []
