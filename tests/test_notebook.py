"""notebooks/compare_runs.ipynb runs top to bottom (as `make notebook` runs it) against the smoke sweep, configured
by the same key=value overrides as `python -m relevance.compare`, and shows the comparison tables
and both plots."""

from __future__ import annotations

import shlex

import nbformat

from relevance.runtime import execute_notebook
from tests.conftest import REPO
from tests.sweep_fixtures import smoke_sweep  # noqa: F401


def test_the_comparison_notebook_runs_on_a_sweep(smoke_sweep, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RELEVANCE_COMPARE_ARGS", shlex.join([
        f"sweep={smoke_sweep.parent.info.run_id}", "n_resamples=100", f"out={tmp_path / 'plots'}",
        f"tracking.tracking_uri={smoke_sweep.tracking_uri}"]))
    notebook = nbformat.read(REPO / "notebooks" / "compare_runs.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    execute_notebook(notebook, cwd=str(REPO / "notebooks"))

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for child in smoke_sweep.children:
        assert child.info.run_id in html
    assert "ΔF1 vs baseline [95% CI]" in html and "best run" in html
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # per-language F1 and PR curves for QC
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"per_language_f1_qc.png", "pr_curves_qc.png"}
