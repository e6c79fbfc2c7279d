"""`python -m relevance.train [overrides]`: compose → validate → run → the metric a sweeper optimises."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from relevance.config import register_configs, validate_config
from relevance.runtime import quiet_third_party_logs

register_configs()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    quiet_third_party_logs()
    validate_config(cfg)
    from relevance.pipeline import RunContext, run_training

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    context = RunContext(output_dir=output_dir, overrides=list(hydra_cfg.overrides.task),
                         hydra_dir=output_dir / hydra_cfg.output_subdir if hydra_cfg.output_subdir else None)
    result = run_training(cfg, context)
    return result.metrics["dev_f1"]


if __name__ == "__main__":
    main()
