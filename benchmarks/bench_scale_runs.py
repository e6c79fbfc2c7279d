"""Competition scale, after the model: what a run logs, `predict`, `compare` over a sweep and the comparison
notebook, timed on QC files of the competition's size (the second half of issue 17; the data stages are
benchmarks/bench_scale.py), each stage in its own process, with its peak memory.

    .venv/bin/python benchmarks/bench_scale_runs.py               # 300k training rows (idle machine)
    .venv/bin/python benchmarks/bench_scale_runs.py --rows 3000   # the small mode (tests/test_bench_scale_runs.py)

Input (deterministic, `--seed`; in a temporary folder): bench_scale.py's `write_input` QC files: `train_QC.txt`
(`--rows`), `dev_QC.txt` (rows/10), `test_QC.txt` (rows/3, no labels, as the official test file); and a
labelled test table of rows/3 rows (drawn like dev, another seed) for what a run reports on test.
Preparation, untimed: one run of the tiny random model (`model=tiny_random trainer=smoke`, demo data), trained
with `relevance.train` into a SQLite store in the temporary folder.

Stages, each in its own process (untimed preparation first, in that process):

    predict           `python -m relevance.predict run=<tiny run> input=test_QC.txt output=...` (rows/3 rows):
                      the whole command, model compute included; `startup_s`: the same command on a 50-row
                      file (imports, store, model load: the time before the first row is scored, roughly), and
                      `scoring_rows_per_s` the rows over the difference. Checked: one output line per row
    compare           `python -m relevance.compare sweep=<parent>` over a sweep of 20 child runs (5 mixes x 4
                      seeds), each with dev predictions (rows/10) and test predictions (rows/10 rows) whose
                      scores are drawn correlated with the labels; the children carry the tiny run's params and
                      tags, their metrics come from `evaluate_run` on those scores (as training's), their
                      predictions are logged as training logs them (evaluation/<role>_predictions.jsonl).
                      Checked: report.md exists and report.json names the 20 runs
    notebook          notebooks/compare_runs.ipynb executed on that sweep as `make notebook` does
                      (RELEVANCE_COMPARE_ARGS, `relevance.runtime.execute_notebook`). Checked: no error output,
                      the HTML names the 20 runs
    mlflow_logging    what a run logs at this size, through the project's `TrackedRun` into a fresh SQLite
                      store: the resolved config as params, the data params, the training (rows), dev (rows/10)
                      and labelled test (rows/3) tables as MLflow datasets with their profiles (`log_dataset`,
                      as `_log_data` does), and the evaluation folder (predictions of dev and test, plots,
                      metrics.json) as artifacts. Checked: the run's inputs and artifacts read back
    scoring_overhead  the part of scoring dev + test after the model (`evaluate_run`: thresholds, metrics per
                      language; `write_evaluation`: predictions files, plots) on dev (rows/10) and labelled test
                      (rows/3) rows with synthetic scores

RSS: for stages that run a command (predict, compare), the command's process tree, sampled every 20 ms from
its start (the RSS at start is its first sample); for notebook, the stage's process and its kernel together;
for the rest, the stage's process (bench_scale.PeakRss). Targets of issue 17: ≤ 2 min, ≤ 4 GiB on 2 cores.
Writes everything to benchmarks/results/scale-runs-<time>.json (or `--json-out`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import MAX_RSS_MIB, MAX_SECONDS, PeakRss, file_sizes, generated_rows, write_input  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGES = ("predict", "compare", "notebook", "mlflow_logging", "scoring_overhead")
SWEEP_MIXES = ("original", "original+easy_neg", "original+hard_neg", "original+balance",
               "original+easy_neg+hard_neg+balance")
SWEEP_SEEDS = 4  # 5 mixes x 4 seeds = 20 child runs
STARTUP_ROWS = 50
SKILL = 1.5  # synthetic scores: logit = SKILL * (±1 by label) + normal noise (+ a little per mix)
HEADER = ["stage", "rows", "seconds", "rows/s", "RSS at start MiB", "peak RSS MiB", "≤ 2 min", "≤ 4 GiB"]


def sizes(rows: int) -> dict[str, int]:
    """Rows per table: training, dev, test (predict's input, the logged test), and the sweep's test rows."""
    base = file_sizes(rows)
    return {**base, "sweep_test": base["dev"]}


def cli_env() -> dict[str, str]:
    """The environment a user's command gets: no inherited MLflow or relevance settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RELEVANCE_"))}
    env["HYDRA_FULL_ERROR"] = "1"
    return env


def run_command(module: str, args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", f"relevance.{module}", *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"relevance.{module} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


# -- measuring ---------------------------------------------------------------------------------------

class TreeRss(PeakRss):
    """The largest resident set size of a process tree, summed over its processes, sampled every 20 ms:
    `pid`'s tree (a command this process started), or this process and its children (a notebook's kernel)."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.02):
        import psutil

        super().__init__(interval_s)
        self.process = psutil.Process(pid or os.getpid())

    def rss(self) -> int:
        import psutil

        try:
            processes = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:  # the command has ended: nothing resident
            return 0
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # ended between the listing and the reading
                pass
        return total


def timed_command(module: str, args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, TreeRss, str]:
    """Run `python -m relevance.<module> args` and sample its process tree: (seconds, rss, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"relevance.{module}", *args], cwd=cwd,
                               env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeRss(process.pid) as rss:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"relevance.{module} failed ({process.returncode}):\n{stderr[-4000:]}")
    return seconds, rss, stdout


def mib(value: float) -> float:
    return value / 2**20


# -- input and preparation ---------------------------------------------------------------------------

def write_labelled_test(path: Path, n_rows: int, seed: int) -> None:
    """A labelled table of `n_rows` QC rows, drawn like dev with another seed: the test rows a run reports on."""
    rows = generated_rows("qc", "dev", n_rows, seed + 1000)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


def prepare(tmp: Path, args) -> dict:
    """The input files and the tiny trained run (untimed): what every stage gets."""
    data_dir, root = tmp / "cikm2025", tmp / "runs"
    n = sizes(args.rows)
    write_input(data_dir, ["qc"], args.rows, args.seed)
    write_labelled_test(data_dir / "test_labelled_QC.txt", n["test"], args.seed)
    write_labelled_test(data_dir / "sweep_test_QC.txt", n["sweep_test"], args.seed + 1)
    root.mkdir(parents=True)
    run_command("train", ["model=tiny_random", "trainer=smoke", "task=qc", "trainer.epochs=1", f"paths.root={root}",
                          f"paths.cache_dir={args.cache_dir}"], cwd=root)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return {"data_dir": str(data_dir), "root": str(root), "run_id": run.info.run_id, "tmp": str(tmp)}


def compose(data_dir: Path, root: Path, cache_dir: Path):
    """The tiny model's QC training config on the generated files, as `relevance.train` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from relevance.config import register_configs, validate_config

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=[
            "task=qc", "data=cikm2025", f"data.dir={data_dir}", "model=tiny_random", "trainer=smoke",
            f"paths.root={root}", f"paths.cache_dir={cache_dir}", f"paths.output_dir={root / 'output'}"])
    validate_config(cfg)
    return cfg


def read_table(cfg, path: Path):
    from relevance.data.reader import read_jsonl

    return read_jsonl(path, cfg.task, languages=cfg.data.languages, null_target=cfg.data.null_target).dataset


def synthetic_scores(labels, seed: int, skill: float = SKILL):
    """Scores in (0, 1) that rank positives higher, as a trained model's would, but drawn."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    logits = skill * (2 * labels - 1) + rng.normal(0.0, 1.5, len(labels))
    return 1.0 / (1.0 + np.exp(-logits))


def evaluate(cfg, tables: dict, scores: dict):
    from relevance.data.splits import languages
    from relevance.evaluation.roles import evaluate_run
    from relevance.evaluation.threshold import ThresholdPolicy

    return evaluate_run(ThresholdPolicy.from_config(cfg.evaluation), tables, scores, languages(tables["dev"]))


def write_predictions(evaluation, folder: Path) -> Path:
    """evaluation/<role>_predictions.jsonl as `write_evaluation` writes them (without its plots)."""
    folder.mkdir(parents=True, exist_ok=True)
    for role in evaluation.roles:
        frame = role.table.to_pandas()
        frame["score"] = role.scores
        frame["prediction"] = (role.scores >= evaluation.thresholds.for_languages(role.table["language"])).astype(int)
        frame.to_json(folder / f"{role.role}_predictions.jsonl", orient="records", lines=True, force_ascii=False)
    return folder


def build_sweep(prep: dict, args, store: Path) -> tuple[str, list[str]]:
    """A sweep parent and 20 FINISHED children in a fresh store (`store`), as `compare` reads a sweep: the
    children carry the tiny run's params and tags, metrics from `evaluate_run` and prediction artifacts of
    synthetic scores on the same dev and test rows. (parent run id, child run ids)"""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from relevance.tracking.tags import SWEEP_ID_TAG, SWEEP_TAG

    data_dir, cfg = Path(prep["data_dir"]), compose(Path(prep["data_dir"]), store, args.cache_dir)
    tables = {"dev": read_table(cfg, data_dir / "dev_QC.txt"), "test": read_table(cfg, data_dir / "sweep_test_QC.txt")}
    source = MlflowClient(f"sqlite:///{prep['root']}/mlflow.db").get_run(prep["run_id"])
    params = {k: v for k, v in source.data.params.items() if k != "seed"}
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    experiment = client.create_experiment("relevance-qc", artifact_location=str(store / "mlartifacts"))
    parent = client.create_run(experiment, run_name="bench-scale-runs-sweep",
                               tags={SWEEP_TAG: "true", SWEEP_ID_TAG: "bench-scale-runs"})
    children = []
    for m, mix in enumerate(SWEEP_MIXES):
        for seed in range(SWEEP_SEEDS):
            name = f"augment=[{mix.replace('+', ',')}],seed={seed}"
            scores = {role: synthetic_scores(table["label"], 100 * m + seed + (7 if role == "test" else 0),
                                             SKILL + 0.05 * m) for role, table in tables.items()}
            evaluation = evaluate(cfg, tables, scores)
            run = client.create_run(experiment, run_name=name, tags={
                **tags, "augment": mix, "mlflow.parentRunId": parent.info.run_id})
            run_id = run.info.run_id
            batch = [Param(k, v) for k, v in {**params, "seed": str(seed)}.items()]
            for start in range(0, len(batch), 100):
                client.log_batch(run_id, params=batch[start:start + 100])
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in evaluation.metrics.items()])
            folder = write_predictions(evaluation, Path(prep["tmp"]) / "sweep-predictions" / run_id)
            client.log_artifacts(run_id, str(folder), "evaluation")
            client.set_terminated(run_id, "FINISHED")
            children.append(run_id)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return parent.info.run_id, children


# -- stages ------------------------------------------------------------------------------------------

def stage_predict(prep: dict, args) -> dict:
    root, data_dir, out = Path(prep["root"]), Path(prep["data_dir"]), Path(prep["tmp"]) / "predict"
    out.mkdir(exist_ok=True)
    test = data_dir / "test_QC.txt"
    head = out / "startup.txt"
    head.write_text("".join(test.read_text(encoding="utf-8").splitlines(keepends=True)[:STARTUP_ROWS]))
    common = [f"run={prep['run_id']}", f"paths.root={root}", f"paths.cache_dir={args.cache_dir}"]
    startup_s, _, _ = timed_command("predict", [*common, f"input={head}", f"output={out / 'startup.jsonl'}"], root)
    output = out / "predictions.jsonl"
    seconds, rss, _ = timed_command("predict", [*common, f"input={test}", f"output={output}"], root)
    rows = sum(1 for _ in test.open(encoding="utf-8"))
    written = sum(1 for _ in output.open(encoding="utf-8"))
    startup_written = sum(1 for _ in (out / "startup.jsonl").open(encoding="utf-8"))
    return {"rows": rows, "seconds": seconds, "rss_before_mib": mib(rss.before), "peak_rss_mib": mib(rss.peak),
            "predictions_written": written, "startup_s": startup_s, "startup_rows": STARTUP_ROWS,
            "startup_predictions_written": startup_written,
            "scoring_rows_per_s": rows / (seconds - startup_s) if seconds > startup_s else None}


def stage_compare(prep: dict, args) -> dict:
    store = Path(prep["tmp"]) / "sweep"
    store.mkdir(exist_ok=True)
    parent, children = build_sweep(prep, args, store)
    (store / "sweep.json").write_text(json.dumps({"parent": parent, "children": children}))
    out = Path(prep["tmp"]) / "compare"
    seconds, rss, _ = timed_command("compare", [f"sweep={parent}", f"tracking.tracking_uri=sqlite:///{store}/mlflow.db",
                                                f"paths.root={store}", f"out={out}"], store)
    report = json.loads((out / "report.json").read_text())
    n = sizes(args.rows)
    return {"rows": len(children) * (n["dev"] + n["sweep_test"]), "seconds": seconds,
            "rss_before_mib": mib(rss.before), "peak_rss_mib": mib(rss.peak), "runs": len(children),
            "report_exists": (out / "report.md").is_file(),
            "report_runs": sorted(r["run_id"] for r in report["runs"]), "child_run_ids": sorted(children),
            "report_role": report["report_role"]}


def stage_notebook(prep: dict, args) -> dict:
    import nbformat

    from relevance.runtime import execute_notebook

    store = Path(prep["tmp"]) / "sweep"
    sweep = json.loads((store / "sweep.json").read_text())  # built by the compare stage
    os.environ["RELEVANCE_COMPARE_ARGS"] = shlex.join([
        f"sweep={sweep['parent']}", f"tracking.tracking_uri=sqlite:///{store}/mlflow.db", f"paths.root={store}",
        f"out={Path(prep['tmp']) / 'notebook-plots'}"])
    notebook = nbformat.read(REPO / "notebooks" / "compare_runs.ipynb", as_version=4)
    with TreeRss() as rss:
        started = time.perf_counter()
        execute_notebook(notebook, str(REPO / "notebooks"))
        seconds = time.perf_counter() - started
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    n = sizes(args.rows)
    return {"rows": len(sweep["children"]) * (n["dev"] + n["sweep_test"]), "seconds": seconds,
            "rss_before_mib": mib(rss.before), "peak_rss_mib": mib(rss.peak),
            "errors": sum(o.output_type == "error" for o in outputs),
            "runs_named": sum(run_id in html for run_id in sweep["children"]),
            "images": sum("image/png" in o.get("data", {}) for o in outputs)}


def stage_mlflow_logging(prep: dict, args) -> dict:
    from mlflow.tracking import MlflowClient

    from relevance.evaluation.roles import write_evaluation
    from relevance.tracking.mlflow_run import TrackedRun, config_params, group_tags

    data_dir, store = Path(prep["data_dir"]), Path(prep["tmp"]) / "logging"
    cfg = compose(data_dir, store, args.cache_dir)
    tables = {"train": read_table(cfg, data_dir / "train_QC.txt"), "dev": read_table(cfg, data_dir / "dev_QC.txt"),
              "test": read_table(cfg, data_dir / "test_labelled_QC.txt")}
    evaluation = evaluate(cfg, {"dev": tables["dev"], "test": tables["test"]},
                          {role: synthetic_scores(tables[role]["label"], i) for i, role in enumerate(("dev", "test"))})
    eval_dir = write_evaluation(evaluation, store / "output" / "evaluation")
    frames = {role: table.to_pandas() for role, table in tables.items()}
    contexts = {"train": ("train-mix", "training"), "dev": ("dev", "eval"), "test": ("test", "test")}
    tags = group_tags(cfg)  # the run's identity (code and data digests): computed before logging starts
    with PeakRss() as rss:
        started = time.perf_counter()
        with TrackedRun(cfg.tracking, "bench-scale-runs", tags, output_dir=store / "output") as run:
            run.log_params(config_params(cfg))
            run.log_params({"data.train_rows": len(tables["train"]), "data.dev_rows": len(tables["dev"]),
                            "data.test_rows": len(tables["test"]), "data.mix_rows": len(tables["train"])})
            run.log_metrics(evaluation.metrics)
            for role, frame in frames.items():
                suffix, context = contexts[role]
                run.log_dataset(frame, f"{cfg.task.key}-{suffix}", str(data_dir / f"{role}_QC.txt"), context)
            run.log_artifacts(eval_dir, "evaluation")
            run_id = run.run_id
        seconds = time.perf_counter() - started
    client = MlflowClient(str(cfg.tracking.tracking_uri))
    logged = client.get_run(run_id)
    artifacts = [a.path for a in client.list_artifacts(run_id, "evaluation")]
    return {"rows": sum(len(t) for t in tables.values()), "seconds": seconds, "rss_before_mib": mib(rss.before),
            "peak_rss_mib": mib(rss.peak), "status": logged.info.status,
            "params": len(logged.data.params), "datasets": len(logged.inputs.dataset_inputs),
            "dataset_profiles": [json.loads(d.dataset.profile) for d in logged.inputs.dataset_inputs],
            "artifacts": sorted(Path(a).name for a in artifacts)}


def stage_scoring_overhead(prep: dict, args) -> dict:
    from relevance.evaluation.roles import write_evaluation

    data_dir, work = Path(prep["data_dir"]), Path(prep["tmp"]) / "scoring"
    cfg = compose(data_dir, work, args.cache_dir)
    tables = {"dev": read_table(cfg, data_dir / "dev_QC.txt"),
              "test": read_table(cfg, data_dir / "test_labelled_QC.txt")}
    scores = {role: synthetic_scores(table["label"], i) for i, (role, table) in enumerate(tables.items())}
    with PeakRss() as rss:
        started = time.perf_counter()
        evaluation = evaluate(cfg, tables, scores)
        eval_dir = write_evaluation(evaluation, work / "evaluation")
        seconds = time.perf_counter() - started
    lines = {role: sum(1 for _ in (eval_dir / f"{role}_predictions.jsonl").open()) for role in tables}
    return {"rows": sum(len(t) for t in tables.values()), "seconds": seconds, "rss_before_mib": mib(rss.before),
            "peak_rss_mib": mib(rss.peak), "prediction_lines": lines, "metrics": len(evaluation.metrics)}


STAGE_FUNCTIONS = {"predict": stage_predict, "compare": stage_compare, "notebook": stage_notebook,
                   "mlflow_logging": stage_mlflow_logging, "scoring_overhead": stage_scoring_overhead}


def run_in_own_process(stage: str, prep_json: Path, args) -> dict:
    out = prep_json.parent / f"stage-{stage}.json"
    command = [sys.executable, __file__, "--stage", stage, "--prep", str(prep_json), "--stage-json", str(out),
               "--rows", str(args.rows), "--seed", str(args.seed), "--cache-dir", str(args.cache_dir)]
    done = subprocess.run(command, cwd=REPO, text=True, env=cli_env())
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed (exit {done.returncode})")
    return json.loads(out.read_text())


# -- report ------------------------------------------------------------------------------------------

def table_rows(results: list[dict]) -> list[list[str]]:
    return [[r["stage"], f"{r['rows']:,}", f"{r['seconds']:.2f}",
             f"{r['rows'] / r['seconds']:,.0f}" if r["seconds"] > 0 else "-", f"{r['rss_before_mib']:.0f}",
             f"{r['peak_rss_mib']:.0f}", "yes" if r["seconds"] <= MAX_SECONDS else "NO",
             "yes" if r["peak_rss_mib"] <= MAX_RSS_MIB else "NO"] for r in results]


def report(results: list[dict], args) -> str:
    from relevance.text_tables import markdown_table

    n = sizes(args.rows)
    lines = [markdown_table(HEADER, table_rows(results)), ""]
    for r in results:
        if r["stage"] == "predict":
            rate = r["scoring_rows_per_s"]
            lines.append(f"- predict: {r['rows']:,} test rows, {r['predictions_written']:,} predictions written; "
                         f"startup (the command on {r['startup_rows']} rows) {r['startup_s']:.1f} s, scoring "
                         + (f"~{rate:,.0f} rows/s after it (tiny random model)" if rate else "not separable"))
        elif r["stage"] in ("compare", "notebook"):
            lines.append(f"- {r['stage']}: {r['runs'] if 'runs' in r else r['runs_named']} runs x "
                         f"({n['dev']:,} dev + {n['sweep_test']:,} test) prediction rows")
        elif r["stage"] == "mlflow_logging":
            lines.append(f"- mlflow_logging: {r['params']} params, {r['datasets']} datasets with profiles, "
                         f"{len(r['artifacts'])} evaluation artifacts ({n['train']:,} / {n['dev']:,} / "
                         f"{n['test']:,} rows)")
    lines.append(f"- input: QC {n['train']:,} / {n['dev']:,} / {n['test']:,} rows (train/dev/test); a process per "
                 f"stage; {os.cpu_count()} CPUs visible.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="training rows (dev: a tenth, test: a third)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache", help="where the tiny model is cached")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, help="where to write the results (default benchmarks/results/)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--prep", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        parser.error(f"--stages {args.stages!r}: unknown {unknown or 'an empty list'}; "
                     f"the stages: {', '.join(STAGES)}")
    if "notebook" in stages and "compare" not in stages:
        parser.error("--stages: notebook runs on the sweep the compare stage builds: add compare")
    if args.rows < 100:
        parser.error(f"--rows {args.rows}: at least 100")
    args.stages = [s for s in STAGES if s in stages]
    args.cache_dir = args.cache_dir.absolute()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage:  # one stage, in the process the parent started for it
        from relevance.runtime import quiet_third_party_logs

        quiet_third_party_logs()
        result = {"stage": args.stage, **STAGE_FUNCTIONS[args.stage](json.loads(args.prep.read_text()), args)}
        args.stage_json.write_text(json.dumps(result, default=str))
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-runs-") as tmp:
        started = time.perf_counter()
        prep = prepare(Path(tmp), args)
        prep_json = Path(tmp) / "prep.json"
        prep_json.write_text(json.dumps(prep))
        print(f"prepared the input and the tiny run in {time.perf_counter() - started:.1f} s", flush=True)
        results = []
        for number, stage in enumerate(args.stages, start=1):
            print(f"[{number}/{len(args.stages)}] {stage}", flush=True)
            results.append(run_in_own_process(stage, prep_json, args))
    text = report(results, args)
    print(text)
    out = args.json_out or REPO / "benchmarks" / "results" / f"scale-runs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "sizes": sizes(args.rows),
                               "stages": results, "table": text}, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
