"""Training tokens/s per GPU, per model: given (`throughput_tokens_per_s=2500`, or per model
`throughput_tokens_per_s={gemma3_12b:2500,qwen25_14b:2100}`: what `benchmarks/gpu_check.py` prints),
or measured by a logged run (`throughput_runs=[<run id>]`): its training rows (`data.mix_rows` x
`trainer.epochs`) over its `train_runtime`, times the tokens per row of its task for its model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf


@dataclass(frozen=True)
class RunSpeed:
    run_id: str
    model: str  # model.name
    task: str  # task.name
    rows_per_s: float


def run_speed(client, run_id: str) -> RunSpeed:
    """How fast a logged run trained, in rows per second (its per-epoch dev scoring included: a
    little slow, so estimates from it are a little high)."""
    run = client.get_run(run_id)
    params, metrics = run.data.params, run.data.metrics
    missing = [key for key in ("data.mix_rows", "trainer.epochs", "model.name", "task.name") if key not in params]
    missing += ["train_runtime"] if "train_runtime" not in metrics else []
    if missing:
        raise ValueError(f"throughput_runs: run {run_id} logged no {', '.join(missing)}: pass a finished training "
                         "run, or throughput_tokens_per_s=<tokens/s>")
    rows = float(params["data.mix_rows"]) * float(params["trainer.epochs"])
    return RunSpeed(run_id, params["model.name"], params["task.name"], rows / float(metrics["train_runtime"]))


def throughputs(given, runs: list[RunSpeed], tokens_per_row: Callable[[str, str], float | None]) -> dict[str, float]:
    """Training tokens/s per model name. `given`: a number (every model) or {model: number}; `runs`
    fill in the models not given, each at its rows/s times `tokens_per_row(model, task)` (None when
    the grid has no job of that model and task)."""
    if isinstance(given, (DictConfig, ListConfig)):
        given = OmegaConf.to_container(given)
    if isinstance(given, dict):
        found = {str(model): float(value) for model, value in given.items()}
    elif given is not None:
        found = {"*": float(given)}
    else:
        found = {}
    for speed in runs:
        per_row = tokens_per_row(speed.model, speed.task)
        if per_row is None:
            raise ValueError(f"throughput_runs: run {speed.run_id} trained model {speed.model} on task {speed.task}, "
                             "which no job of this grid does: its rows/s cannot be turned into tokens/s here")
        found.setdefault(speed.model, speed.rows_per_s * per_row)
    return found


def throughput_for(found: dict[str, float], model: str) -> float:
    if model in found:
        return found[model]
    if "*" in found:
        return found["*"]
    raise ValueError(f"no throughput for model {model}: pass throughput_tokens_per_s=<training tokens/s of one GPU> "
                     f"(or {{{model}:<tokens/s>}}; benchmarks/gpu_check.py measures it), or throughput_runs=[<run id>] "
                     f"of a finished run of that model")
