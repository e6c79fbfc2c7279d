"""Cross-field checks of how a run trains: the trainer group (`trainer.*`: batching, class weights
against the augmentation mix, optimiser numbers, checkpoints, torch.compile) and the augmentation
mix (`augment.*`: registered strategies and their typed options). Each function yields one message
per problem, naming the key; `relevance.config.validation` collects them.
"""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig


def trainer_problems(cfg: DictConfig):
    if cfg.trainer.batching not in ("rows", "tokens"):
        yield f"trainer.batching={cfg.trainer.batching!r}: use rows or tokens"
    elif cfg.trainer.batching == "tokens" and not (cfg.trainer.max_tokens_per_batch or 0) >= 1:
        yield "trainer.batching=tokens needs trainer.max_tokens_per_batch (padded tokens per batch, e.g. 512)"
    weights = cfg.trainer.class_weights
    if weights is not None and weights != "balanced":
        if not isinstance(weights, (list, ListConfig)) or len(weights) != 2:
            yield (f"trainer.class_weights={weights!r}: use null, balanced, "
                   "or [weight_of_label_0, weight_of_label_1]")
            weights = None
    if weights is not None:
        from relevance.training.losses import class_weight_problems

        yield from class_weight_problems(weights, list(cfg.augment.keys()))
    for key in ("batch_size", "eval_batch_size", "grad_accum"):
        if cfg.trainer[key] < 1:
            yield f"trainer.{key}={cfg.trainer[key]}: must be at least 1"
    if not cfg.trainer.lr > 0:
        yield f"trainer.lr={cfg.trainer.lr}: the learning rate must be positive"
    if cfg.trainer.weight_decay < 0:
        yield f"trainer.weight_decay={cfg.trainer.weight_decay}: must be 0 or more"
    if cfg.trainer.logging_steps < 1:
        yield f"trainer.logging_steps={cfg.trainer.logging_steps}: must be at least 1"
    if not 0 <= cfg.trainer.warmup_ratio < 1:
        yield f"trainer.warmup_ratio={cfg.trainer.warmup_ratio}: must be in [0, 1)"
    if cfg.trainer.epochs <= 0 and cfg.trainer.max_steps <= 0:
        yield "trainer.epochs or trainer.max_steps must be positive"
    every = cfg.trainer.checkpoint_every_steps
    if every is not None and every < 1:
        yield f"trainer.checkpoint_every_steps={every}: must be at least 1, or null for each epoch's end"
    if cfg.trainer.checkpoints_kept < 1:
        yield f"trainer.checkpoints_kept={cfg.trainer.checkpoints_kept}: must be at least 1"
    if cfg.trainer.torch_compile not in (True, False, "auto"):
        yield f"trainer.torch_compile={cfg.trainer.torch_compile!r}: use true, false or auto"
    if cfg.trainer.compile_min_steps < 1:
        yield f"trainer.compile_min_steps={cfg.trainer.compile_min_steps}: must be at least 1"


def augment_problems(cfg: DictConfig):
    from relevance.augment.base import StrategyOptionsError, known_strategies, strategy_options

    known = known_strategies()
    for name in cfg.augment:
        if name not in known:
            yield (f"augment has {name!r}, which no module registers: add @register({name!r}) in "
                   f"relevance/augment/<module>.py (known: {', '.join(known)})")
            continue
        moved = [key for key in ("model", "revision", "batch_size", "num_beams", "max_new_tokens", "device")
                 if name in ("translated", "pivot", "to_english") and key in (cfg.augment[name] or {})]
        if moved:
            yield (f"augment.{name}.{moved[0]}: the translator's settings moved to the translator group: "
                   f"use translator.{moved[0]}=... (or translator=<one of conf/translator/>)")
            continue
        try:
            strategy_options(name, cfg.augment[name])  # also what compose lets through: +augment.<name>.<new key>
        except StrategyOptionsError as error:
            yield str(error)
