"""Cross-field checks of the rows a run reads: the task (`task.*`: prompt slots, relatedness and
never-negative rules, what demo data can make) and the data group (`data.*`: test split, k-fold,
query overlap policy, where generated demo data may be written). Each function yields one message
per problem, naming the key; `relevance.config.validation` collects them.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def task_problems(cfg: DictConfig):
    task = cfg.task
    for key in ("name", "key", "target_field"):
        if not str(task[key]).strip():
            yield f"task.{key} is empty: set it in conf/task/<your task>.yaml"
    for slot in ("{query}", "{target}"):
        if slot not in task.prompt:
            yield f"task.prompt has no {slot}: the template must show both the query and the target"
    never = task.negatives.never_negative
    if never is not None:
        from relevance.augment.negatives import NEVER_NEGATIVE

        if never not in NEVER_NEGATIVE:
            yield (f"task.negatives.never_negative={never!r}: use one of {sorted(NEVER_NEGATIVE)} or null "
                   "(or register one with @never_negative in relevance/augment/negatives.py)")
    if cfg.data.generate is not None:
        from relevance.data.demo import TARGET_KINDS

        if task.demo_targets not in TARGET_KINDS:
            yield (f"data=demo makes {' or '.join(TARGET_KINDS)}, and task {task.name} sets "
                   f"task.demo_targets={task.demo_targets}: use data=competition data.dir=PATH for this task")


def test_split_problems(data: DictConfig):
    if data.test_file and data.test_fraction is not None:
        yield (f"data.test_file={data.test_file} and data.test_fraction={data.test_fraction}: the test rows come "
               "from one of them; add data.test_fraction=null to use the file")
    if data.test_fraction is not None and not 0 < data.test_fraction < 1:
        yield f"data.test_fraction={data.test_fraction}: the share of dev carved as test, between 0 and 1 (or null)"


def query_overlap_problems(data: DictConfig):
    from relevance.data.overlap import QUERY_OVERLAP_POLICIES

    if data.query_overlap not in QUERY_OVERLAP_POLICIES:
        yield (f"data.query_overlap={data.query_overlap!r}: use one of {QUERY_OVERLAP_POLICIES} (what to do with dev "
               "and test rows whose query also occurs among the training rows; drop is the default)")


def fold_problems(data: DictConfig):
    folds, fold = data.folds, data.fold
    if folds is None:
        if fold is not None:
            yield f"data.fold={fold} needs data.folds (how many folds), e.g. data.folds=5 data.fold={fold}"
        return
    if folds < 2:
        yield f"data.folds={folds}: k-fold needs at least 2 folds (or null for none)"
    if fold is None or not 0 <= fold < max(folds, 1):
        yield (f"data.fold={fold}: with data.folds={folds} choose the dev fold, 0 to {folds - 1} "
               f"(a sweep over all of them: experiment=folds)")
    if data.max_dev_rows is not None:
        yield (f"data.max_dev_rows={data.max_dev_rows} with data.folds={folds}: dev is a fold of the training pool, "
               "so every pool row gets one out-of-fold score; cap the pool with data.max_train_rows instead")
    if data.dev_file is None and data.test_fraction is not None and not data.test_file:
        yield (f"data.folds={folds} with data.dev_file=null and data.test_fraction={data.test_fraction}: the test "
               "rows are carved from the dev file, and with folds every fold has its own dev; keep a dev file "
               "(data.dev_file=...) or give the test rows a file (data.test_file=...), or data.test_fraction=null")


def demo_data_problems(cfg: DictConfig):
    """Generated demo data is written under the cache only: a data.dir naming the user's own folder would
    have the generator write (and overwrite) files there and train on generated rows."""
    if cfg.data.generate is None:
        return
    raw = OmegaConf.to_container(cfg.data, resolve=False).get("dir")
    if not raw or str(raw).startswith("${paths.cache_dir}"):  # the preset's own folder, under the cache
        return
    from pathlib import Path

    folder, cache = Path(str(cfg.data.dir)).expanduser().resolve(), Path(str(cfg.paths.cache_dir)).resolve()
    if folder != cache and cache not in folder.parents:
        yield (f"data.dir={cfg.data.dir} with data={cfg.data.name}: the demo data is generated under the cache "
               f"({cache}), never in a folder of yours; to train on the files in {cfg.data.dir}, use "
               f"data=competition data.dir={cfg.data.dir}")
