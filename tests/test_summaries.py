"""Every entry point ends on a summary a person can act on (docs/tour.md): `train` (a run; a sweep's end)
names the run, its dev and test metrics beside predicting every row relevant, its links into the MLflow UI
and the next command, and that command works as printed; `predict` names the run it scored with;
`compare` links the runs it compared. The experiments carry what makes those links open on the runs table
(relevance/tracking/links.py). Third-party notices that do not apply are gone, at their source only."""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from relevance.runtime import BNB_CPU_OPS_LOGGER, BNB_HUB_KERNEL_MESSAGE, expect_new_head, quiet_third_party_logs
from tests.conftest import cli_env, run_cli, tiny_run_args
from tests.sweep_fixtures import smoke_sweep  # noqa: F401

UI = "http://127.0.0.1:5000"  # `make ui`'s address: where a local store's links point


def metric_line(role: str, m: dict) -> str:
    return (f"  {role:<5} F1 {m[f'{role}_f1']:.4f}  ROC-AUC {m[f'{role}_roc_auc']:.4f}  (every row relevant: "
            f"F1 {m[f'{role}_f1_all_relevant']:.4f}; lift {m[f'{role}_f1'] - m[f'{role}_f1_all_relevant']:+.4f})")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("project")
    result = run_cli("train", tiny_run_args(root, shared_cache, "trainer.epochs=1"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qc")
    (run,) = client.search_runs([experiment.experiment_id])
    return root, client, experiment, run, result


def test_train_ends_on_the_run_its_metrics_links_and_next_command(trained):
    root, client, experiment, run, result = trained
    run_id, exp_id, m = run.info.run_id, experiment.experiment_id, run.data.metrics
    summary = result.stdout[result.stdout.index(f"run '{run.info.run_name}'"):].splitlines()
    assert summary[0] == (f"run '{run.info.run_name}' ({run_id}) FINISHED in experiment relevance-qc, a smoke run "
                          "(random tiny model: `run=latest` passes it over)")
    assert summary[1:3] == [metric_line("dev", m), metric_line("test", m)]
    assert summary[3] == f"  run:   {UI}/#/experiments/{exp_id}/runs/{run_id}"
    assert summary[4] == f"  runs:  {UI}/#/experiments/{exp_id}/runs?viewStateShareKey=relevance-runs"
    assert "make ui" in summary[5]
    assert summary[6].startswith(f"  next:  python -m relevance.predict run={run_id} input=")


def test_the_printed_next_command_works_and_names_the_run(trained, shared_cache):
    root, client, _, run, result = trained
    command = next(line for line in result.stdout.splitlines() if line.startswith("  next:  "))
    argv = shlex.split(command.removeprefix("  next:  "))
    assert argv[:3] == ["python", "-m", "relevance.predict"]
    predicted = subprocess.run([sys.executable, *argv[1:], f"paths.root={root}", f"paths.cache_dir={shared_cache}"],
                               cwd=root, env=cli_env(), capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr[-4000:]
    output = root / f"outputs/predictions/{run.info.run_id[:8]}.jsonl"
    assert output.is_file()
    out = predicted.stdout
    assert (f"scored with run '{run.info.run_name}' ({run.info.run_id}), task QC, finished "
            f"{run_time(run.info.end_time)}; its metrics when trained:") in out
    assert metric_line("test", run.data.metrics) in out
    # no third-party notice that does not apply; the head restored from the adapter is not reported MISSING
    assert "LOAD REPORT" not in predicted.stderr + out and "pip install kernels" not in predicted.stderr + out


def run_time(millis: int) -> str:
    from relevance.tracking.runs import format_time
    return format_time(millis)


def test_training_explains_the_new_head_in_one_line_of_ours(trained):
    *_, result = trained
    everything = result.stdout + result.stderr
    assert "LOAD REPORT" not in everything and "MISSING" not in everything
    assert "pip install kernels" not in everything
    assert "classifier head `score`: new (random weights), trained in full with the LoRA adapter" in everything


def test_experiments_open_on_the_runs_with_the_key_metric_columns(trained):
    _, client, experiment, _, _ = trained
    tags = client.get_experiment(experiment.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags["mlflow.sharedViewState.relevance-runs"])
    assert {"metrics.`test_f1`", "metrics.`test_roc_auc`", "metrics.`test_f1_all_relevant`"} <= set(
        view["selectedColumns"])


def test_a_sweep_ends_on_its_best_run_its_runs_table_and_next_commands(smoke_sweep):  # noqa: F811
    parent, client = smoke_sweep.parent, smoke_sweep.client
    exp_id, parent_id = parent.info.experiment_id, parent.info.run_id
    best = client.get_run(parent.data.tags["best_run_id"])
    out = smoke_sweep.result.stdout
    summary = out[out.index(f"sweep '{parent.info.run_name}' ({parent_id}) FINISHED: 2 finished"):].splitlines()
    assert summary[1] == f"  best on dev F1: '{best.info.run_name}' ({best.info.run_id})"
    assert summary[2:4] == ["  " + metric_line("dev", best.data.metrics), "  " + metric_line("test", best.data.metrics)]
    assert summary[4] == f"  runs:  {UI}/#/experiments/{exp_id}/runs?viewStateShareKey=sweep-{parent_id}"
    assert summary[5] == f"  next:  python -m relevance.compare sweep={parent_id}"
    assert summary[6].startswith(f"         python -m relevance.predict run={best.info.run_id} input=")
    view = json.loads(client.get_experiment(exp_id).tags[f"mlflow.sharedViewState.sweep-{parent_id}"])
    assert view["searchFilter"] == f"tags.`mlflow.parentRunId` = '{parent_id}'"
    assert view["orderByKey"] == "metrics.`dev_f1`" and view["orderByAsc"] is False


def test_compare_links_the_runs_it_compared(smoke_sweep, tmp_path):  # noqa: F811
    parent = smoke_sweep.parent
    result = run_cli("compare", [f"sweep={parent.info.run_id}", "n_resamples=50", "log=false", f"out={tmp_path}/c"],
                     cwd=smoke_sweep.root)
    link = f"{UI}/#/experiments/{parent.info.experiment_id}/runs?viewStateShareKey=sweep-{parent.info.run_id}"
    assert re.search(rf"^runs:   {re.escape(link)}$", result.stdout, re.MULTILINE), result.stdout[-2000:]


# --------------------------------------------------------------------------- third-party notices, silenced narrowly

LOAD_REPORT = ("\x1b[1mLlamaForSequenceClassification LOAD REPORT\x1b[0m from: /cache/models/tiny\n"
               "Key          | Status  | \n-------------+---------+-\n{rows}\n\nNotes:\n- MISSING:\tthose params were "
               "newly initialized because missing from the checkpoint.")


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def emitted(logger_name: str, message: str) -> bool:
    """Whether a WARNING `message` on `logger_name` reaches the logger's handlers (its filters passed)."""
    logger, collect = logging.getLogger(logger_name), Collect()
    logger.addHandler(collect)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(collect)
    return message in collect.messages


def test_the_head_report_is_dropped_only_when_it_lists_the_head_alone():
    expect_new_head(["score"])
    logger = "transformers.modeling_utils"
    assert not emitted(logger, LOAD_REPORT.format(rows="score.weight | \x1b[31mMISSING\x1b[0m | "))
    for rows in ("score.weight | MISSING | \nmodel.norm.weight | MISSING | ",  # the backbone lost a weight
                 "score.weight | UNEXPECTED | ",
                 "lm_head.weight | MISSING | "):
        assert emitted(logger, LOAD_REPORT.format(rows=rows)), rows
    assert emitted(logger, "some other transformers warning")
    assert emitted("transformers.other_module", LOAD_REPORT.format(rows="score.weight | MISSING | "))


def test_the_hub_kernel_advice_is_dropped_and_nothing_else():
    quiet_third_party_logs()
    advice = f"{BNB_HUB_KERNEL_MESSAGE}: No module named 'kernels'. Please make sure you already `pip install kernels`"
    assert not emitted(BNB_CPU_OPS_LOGGER, advice)
    assert emitted(BNB_CPU_OPS_LOGGER, "another bitsandbytes warning")
    assert emitted("bitsandbytes.other", advice)


NOTEBOOK_RUN = """
import sys, nbformat, nbclient
from relevance.runtime import execute_notebook
nb = nbformat.v4.new_notebook()
nb.cells.append(nbformat.v4.new_code_cell("import os; print(os.getcwd())"))
if sys.argv[1] == "ours":
    execute_notebook(nb, sys.argv[2], 120)
else:
    nbclient.NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
print("cell printed:", nb.cells[0].outputs[0]["text"].strip())
"""


def test_notebooks_run_without_the_kernel_transport_warning(tmp_path):
    """`make notebook` runs the kernel over IPC sockets (relevance.runtime.execute_notebook): no
    "TCP without encryption" warning, which nbclient's default loopback TCP kernel prints."""
    def run_notebook(how: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", NOTEBOOK_RUN, how, str(tmp_path)], cwd=tmp_path, env=cli_env(),
                              capture_output=True, text=True)

    ours, default = run_notebook("ours"), run_notebook("default")
    assert ours.returncode == 0 and default.returncode == 0, ours.stderr + default.stderr
    assert f"cell printed: {tmp_path}" in ours.stdout
    assert "TCP without encryption" in default.stderr  # the warning this removes
    assert "TCP without encryption" not in ours.stderr and "WARNING" not in ours.stderr, ours.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no socket files left where it ran
