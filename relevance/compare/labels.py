"""What tells runs apart: short labels from their names, the setting a run shares with its twins
on other tasks, and the seed group it shares with the runs that differ from it only by `seed`."""

from __future__ import annotations

import re

import pandas as pd

TASK_SEGMENT = re.compile(r"^task=")
SEED_SEGMENT = re.compile(r"^seed=")  # the model's seed (not data.seed, which changes the rows)
SETTING_TAGS = ("model", "quant", "peft", "head", "trainer", "augment")


def split_overrides(name: str) -> list[str]:
    """`a=1,augment=[x,y],b=2` → ['a=1', 'augment=[x,y]', 'b=2'] (commas inside brackets stay)."""
    parts, depth, current = [], 0, ""
    for char in name or "":
        if char in "[({":
            depth += 1
        elif char in "])}":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def distinguishing_labels(names: list[str]) -> list[str]:
    """Each run name without the overrides every run shares and without `task=`
    (the task is its own column): what makes the run different."""
    segments = [split_overrides(n) for n in names]
    common = set.intersection(*(set(s) for s in segments)) if segments else set()
    labels = []
    for name, parts in zip(names, segments):
        kept = [p for p in parts if p not in common and not TASK_SEGMENT.match(p)]
        labels.append(",".join(kept) if kept else (name or "?"))
    return labels


def without_segments(name: str, *patterns: re.Pattern) -> str:
    """A run name without the overrides matching any of `patterns`."""
    return ",".join(p for p in split_overrides(name) if not any(pattern.match(p) for pattern in patterns))


def setting_key(row: pd.Series, ignore: tuple[re.Pattern, ...] = (TASK_SEGMENT,)) -> str:
    """What a run is apart from its task, to pair it with its twins on the other tasks: the group
    tags and the run name without `task=` and without the task in a default name (`model-qc-mix`)."""
    name = without_segments(row["run_name"], *ignore)
    name = re.sub(f"-{re.escape(str(row['task']))}-", "-", name, flags=re.IGNORECASE)
    tags = "|".join(str(row.get(t)) for t in SETTING_TAGS)
    return f"{tags}|{name}"


def seed_group_key(row: pd.Series) -> str:
    """What a run is apart from its `seed`: runs with the same key differ only by the model's seed."""
    return f"{row['task']}|{setting_key(row, ignore=(TASK_SEGMENT, SEED_SEGMENT))}"


def label_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs with `label` (unique within a task), `setting`, `seed_group` and `group_label` columns."""
    frame = frame.copy()
    frame["task"] = frame["task"].fillna("?")
    frame["label"] = distinguishing_labels(list(frame["run_name"].fillna("")))
    duplicated = frame.duplicated(["task", "label"], keep=False)
    frame.loc[duplicated, "label"] = frame.loc[duplicated, "label"] + " #" + frame.loc[duplicated, "run_id"].str[:6]
    frame["setting"] = frame.apply(setting_key, axis=1)
    frame["seed_group"] = frame.apply(seed_group_key, axis=1)
    names = [without_segments(name, SEED_SEGMENT) for name in frame["run_name"].fillna("")]
    frame["group_label"] = [label if name else "(every seed)"
                            for label, name in zip(distinguishing_labels(names), names)]
    return frame
