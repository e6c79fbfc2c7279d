"""OmegaConf resolvers the configs use beyond Hydra's own (`now`, `hydra`).

`${short_id:}` is a short random id, so that run and sweep folders are unique per run,
not per second (conf/train.yaml: `outputs/runs/<time>_<id>`): two runs started in the
same second, on one machine or many, never share a folder. Like `now`, it is cached in
the config that resolves it, and Hydra copies that cache into each job's config (also
the ones it sends to joblib workers), so every job of a sweep resolves the same sweep
folder, and a job resolves its own folder once.
"""

from __future__ import annotations

import uuid

from omegaconf import OmegaConf

SHORT_ID_HEX_DIGITS = 6  # 16.7 million values: unique among the runs of one second


def short_id() -> str:
    return uuid.uuid4().hex[:SHORT_ID_HEX_DIGITS]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("short_id"):
        OmegaConf.register_new_resolver("short_id", short_id, use_cache=True)
    if not OmegaConf.has_resolver("demo_folder"):  # conf/data/demo.yaml: one folder per generator setting
        from relevance.data.demo import demo_folder_name

        OmegaConf.register_new_resolver("demo_folder", demo_folder_name)
