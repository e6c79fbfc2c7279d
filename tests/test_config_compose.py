"""Every config in conf/ composes against the schemas; bad combinations fail with
a message saying what to change, before any model loads."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from relevance.config import ConfigError, validate_config
from tests.conftest import CONF_DIR, augment_strategy_of, compose_train

GROUPS = ["task", "data", "model", "quant", "peft", "head", "translator", "trainer", "evaluation", "tracking",
          "paths"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def valid_overrides(group: str, option: str) -> list[str]:
    """The other choices a given option needs to be a valid run."""
    extra = {("data", "competition"): ["data.dir=/data"], ("data", "cikm2025"): ["data.dir=/data"],
             ("peft", "none"): ["quant=none"]}
    return [f"{group}={option}", *extra.get((group, option), [])]


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group, option):
    cfg = compose_train(valid_overrides(group, option))
    validate_config(cfg)
    if "name" in cfg[group]:
        assert str(cfg[group].name).lower() == option


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_validates(experiment):
    cfg = compose_train([f"experiment={experiment}"])
    validate_config(cfg)


STRATEGY_NEEDS = {"noise_filter": ["augment.noise_filter.oof_from=a_run_id"]}  # options without a default


@pytest.mark.parametrize("strategy", options("augment"))
def test_every_augment_strategy_composes(strategy):
    cfg = compose_train([f"augment=[original,{strategy}]" if strategy != "original" else "augment=[original]",
                         *STRATEGY_NEEDS.get(strategy, [])])
    validate_config(cfg)
    assert augment_strategy_of(strategy) in cfg.augment  # the strategy itself, or the one a preset configures


def test_defaults_are_the_cpu_qlora_setup():
    cfg = compose_train()
    assert (cfg.model.name, cfg.quant.name, cfg.peft.name, cfg.head.name) == ("gemma3_270m", "nf4", "lora", "classifier")
    assert cfg.quant.compute_dtype == "auto" and cfg.quant.double_quant is True
    assert list(cfg.augment) == ["original"]
    # LoRA targets come from the model's YAML, not from code
    assert list(cfg.peft.target_modules) == list(cfg.model.lora_target_modules)


def test_gpu_presets_keep_lora_out_of_the_vision_tower():
    cfg = compose_train(["model=gemma3_12b"])
    assert isinstance(cfg.peft.target_modules, str) and "language_model" in cfg.peft.target_modules
    assert compose_train(["model=qwen25_14b"]).model.id == "Qwen/Qwen2.5-14B-Instruct"


def test_augment_mix_is_multi_select_in_order():
    # three strategies, in an order none of the presets uses: the mix is the list, in the order given
    for order in (["balance", "original", "easy_neg"], ["easy_neg", "balance", "original"]):
        cfg = compose_train([f"augment=[{','.join(order)}]"])
        assert list(cfg.augment) == order
        assert cfg.augment.balance.target_positive_ratio == 0.5  # each one's options composed under its name


def test_four_bit_without_lora_fails_with_what_to_change():
    cfg = compose_train(["quant=nf4", "peft=none"])
    with pytest.raises(ConfigError, match="quant=nf4 needs peft=lora"):
        validate_config(cfg)


@pytest.mark.parametrize("overrides,message", [
    (["head=yes_no", "head.padding_side=right"], "padding_side=left"),
    (["trainer.class_weights=[1.0]"], "class_weights"),
    (["trainer.class_weights=[1.0,0]"], r"trainer.class_weights=\[1.0, 0\]: each weight must be a positive number"),
    (["trainer.class_weights=balanced", "augment=[original,balance]"], "would correct the imbalance twice"),
    (["data=competition"], "data.dir"),
    (["data.null_target=ignore"], "null_target"),
    (["peft.r=0"], "peft.r"),
    (["peft.layers_to_transform=[]"], "no layer would get LoRA"),
    (["peft.layers_to_transform=[1,-1]"], "count from 0"),
    (["peft.layers_to_transform=[1,1]"], "listed twice"),
    (["peft=none", "quant=none", "peft.layers_to_transform=[1]"], "needs peft=lora"),
    (["peft.layers_to_transform=[top]"], "layers_to_transform"),
    (["model=tiny_gemma3", "peft.layers_to_transform=[0]"], "put the layers in the pattern"),
    (["trainer.warmup_ratio=1.5"], "warmup_ratio"),
])
def test_invalid_combinations_name_the_setting(overrides, message):
    with pytest.raises((ConfigError, ConfigCompositionException), match=message):
        validate_config(compose_train(overrides))


def test_unknown_key_fails_at_compose_time():
    with pytest.raises(ConfigCompositionException) as info:
        compose_train(["model.lora_rank=8"])
    assert isinstance(info.value.__cause__, ConfigKeyError) or "lora_rank" in str(info.value.__cause__)


def test_wrong_type_fails_at_compose_time():
    with pytest.raises(ConfigCompositionException) as info:
        compose_train(["trainer.batch_size=many"])
    assert isinstance(info.value.__cause__, ValidationError)


def test_an_augment_option_without_a_registered_strategy_fails_validation():
    cfg = compose_train(["+augment.no_such_strategy={}"])
    with pytest.raises(ConfigError, match="no_such_strategy"):
        validate_config(cfg)


@pytest.mark.parametrize("override,strategy,cause", [
    ("augment.hard_neg.min_similarity=abc", "hard_neg", "'abc' of type 'str' could not be converted to Float"),
    ("augment.easy_neg.per_qery=2", "easy_neg", "Key 'per_qery' not in 'EasyNegOptions'"),  # a typo
    ("augment.balance.from=easy", "balance", "Key 'from' not in 'BalanceOptions'"),  # its name before negatives_from
])
def test_strategy_options_are_typed_at_compose_time(override, strategy, cause):
    with pytest.raises(ConfigCompositionException) as info:
        compose_train([f"augment=[original,{strategy}]", override])
    assert f"augment.{strategy}." in str(info.value)  # Hydra's message names the strategy's key
    assert cause in str(info.value.__cause__) and f"full_key: {override.split('=')[0]}" in str(info.value.__cause__)


@pytest.mark.parametrize("overrides,message", [
    (["+augment.easy_neg.bogus=1"], r"augment\.easy_neg: Key 'bogus' not in 'EasyNegOptions'; its settings: per_query"),
    (["augment.easy_neg.per_query=0"], r"augment\.easy_neg: per_query=0: must be at least 1"),
    (["augment.balance.negatives_from=nearest"], r"augment\.balance: negatives_from='nearest': use one of"),
])
def test_what_compose_lets_through_fails_validation_naming_the_strategy(overrides, message):
    """`+key=value` bypasses a typed node at compose time, and values in range are the options' own rule:
    validate_config (right after composing, before any model loads) catches both."""
    strategies = sorted({o.split(".")[1] for o in overrides})
    cfg = compose_train([f"augment=[original,{','.join(strategies)}]", *overrides])
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_relatedness_for_negatives_is_a_task_setting():
    assert compose_train(["task=qc"]).task.negatives.related_by == "top_level_category"
    assert compose_train(["task=qi"]).task.negatives.related_by == "title_tokens"
    with pytest.raises(ConfigCompositionException):
        compose_train(["task.negatives.related_to=title_tokens"])
