"""`python -m relevance.compare.controls [compare keys]`: compare a controls sweep (`experiment=controls`,
`make controls`) and say, one line per control, whether the machinery called it right.

A control is an arm whose effect is known before the run: the **positive** control (`label_noise`: every
training label shuffled) must hurt, so `compare` must call it significant; the **null** control (`reorder`:
the same rows in another order) must not matter, so `compare` must not. The verdicts are `compare`'s own
(Holm-adjusted over the arms, seeds then queries resampled: relevance.compare), read from its
`report.json`; the lines are

    control <name>: <metric> delta <d> [<lo>, <hi>] p_adj <p> -> significant | not significant

then `controls: as expected` or `controls: NOT as expected (...)`, with a non-zero exit in that case.
The metric is test ROC-AUC: at the CPU sizes F1 sits at the predict-everything-relevant line for every
arm (experiments/paper_ablation_cpu.md), so a threshold metric would hide what the ranking shows.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from relevance.compare.__main__ import compare
from relevance.compare.config import register_compare_schema, validate_compare_config
from relevance.config import ConfigError
from relevance.runtime import quiet_third_party_logs
from relevance.tracking.runs import RunSelectionError

register_compare_schema()

METRIC = "roc_auc"


@dataclass(frozen=True)
class Control:
    name: str
    strategy: str  # the arm whose mix holds this strategy
    expected: str  # the verdict the machinery must reach


CONTROLS = (Control("positive_label_noise", "label_noise", "significant"),
            Control("null_reorder", "reorder", "not significant"))


def control_lines(report: dict, metric: str = METRIC) -> tuple[list[str], list[str]]:
    """(one line per control found, the controls whose verdict is not the expected one or that are missing)."""
    lines, wrong = [], []
    for control in CONTROLS:
        found = [(task, arm) for task, entry in sorted(report["tasks"].items()) for arm in entry["arms"]
                 if control.strategy in str(arm["mix"]).split("+")]
        if not found:
            wrong.append(f"{control.name}: no arm with {control.strategy} in its mix")
        for task, arm in found:
            m = arm["metrics"][metric]
            name = control.name if len(report["tasks"]) == 1 else f"{control.name}[{task}]"
            if m["delta"] is None or m["p_adj"] is None:
                wrong.append(f"{name}: no paired delta ({arm.get('note')})")
                continue
            lines.append(f"control {name}: {metric} delta {m['delta']:+.4f} [{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] "
                         f"p_adj {m['p_adj']:.4f} -> {m['verdict']}")
            if m["verdict"] != control.expected:
                wrong.append(f"{name} is {m['verdict']}, a {control.name.split('_')[0]} control must be "
                             f"{control.expected}")
    return lines, wrong


@hydra.main(config_path="../../conf", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    quiet_third_party_logs()
    try:
        validate_compare_config(cfg)
        report_md = compare(cfg)
    except (ConfigError, RunSelectionError) as exc:
        raise SystemExit(f"relevance.compare.controls: {exc}") from None
    report = json.loads((Path(report_md).parent / "report.json").read_text())
    lines, wrong = control_lines(report)
    print("\n" + "\n".join(lines))
    if wrong:
        print("controls: NOT as expected (" + "; ".join(wrong) + ")")
        sys.exit(1)
    print("controls: as expected")


if __name__ == "__main__":
    main()
