"""`make controls` end to end on the tiny model: the controls sweep's three arms, then
`relevance.compare.controls` printing one verdict line per control and an exit status that says whether
the machinery called both right (the tiny model's verdicts themselves are not what is tested here: the real
run on the QC rows is experiments/controls.md)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import SHARED_QC, run_cli
from tests.requirements import require_path
from tests.sweep_fixtures import run_sweep

LINE = re.compile(r"^control (positive_label_noise|null_reorder): roc_auc delta [+-]\d\.\d{4} "
                  r"\[[+-]\d\.\d{4}, [+-]\d\.\d{4}\] p_adj \d\.\d{4} -> (significant|not significant)$")


@pytest.mark.integration  # 6 tiny jobs: make test-integration
def test_the_controls_sweep_and_its_verdict_lines(tmp_path, shared_cache):
    require_path(SHARED_QC, "the real QC rows")
    sweep = run_sweep(tmp_path, shared_cache, "experiment=controls", "model=tiny_random", "trainer=smoke",
                      f"data.dir={SHARED_QC}", "data.max_train_rows=240", "data.max_dev_rows=120",
                      "data.max_test_rows=120", "trainer.epochs=1", "seed=1,2")
    assert sorted(c.data.tags["augment"] for c in sweep.children) == sorted(
        ["original", "original+label_noise", "original+reorder"] * 2)
    result = run_cli("compare.controls", [f"paths.root={tmp_path}", "n_resamples=200", f"out={tmp_path}/cmp"],
                     cwd=tmp_path, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("control ")]
    assert [LINE.match(line).group(1) for line in lines] == ["positive_label_noise", "null_reorder"], result.stdout
    verdicts = [LINE.match(line).group(2) for line in lines]
    as_expected = verdicts == ["significant", "not significant"]
    assert result.returncode == (0 if as_expected else 1)
    assert result.stdout.rstrip().splitlines()[-1].startswith(
        "controls: as expected" if as_expected else "controls: NOT as expected")
    report = json.loads(next((tmp_path / "cmp").glob("report.json")).read_text())
    arms = {a["mix"]: a for a in report["tasks"]["QC"]["arms"]}
    assert arms["original+label_noise"]["metrics"]["roc_auc"]["verdict"] == verdicts[0]
