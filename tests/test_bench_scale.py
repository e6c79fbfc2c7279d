"""benchmarks/bench_scale.py in its small mode (`--rows 3000`): the generated files are the official ones
and read as `data=cikm2025` reads them; the table has every stage, and each stage processed the rows it
should have for that size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, cli_env

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_scale  # noqa: E402

ROWS = 3000


def test_generated_files_are_the_official_ones(tmp_path):
    written = bench_scale.write_input(tmp_path, ["qc", "qi"], 200, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{split}_{task}.txt" for task in ("QC", "QI") for split in ("train", "dev", "test"))
    assert written["qi"] == {"train": 200, "dev": 50, "test": 66}
    qi = [json.loads(line) for line in (tmp_path / "train_QI.txt").read_text().splitlines()]
    assert len(qi) == 200 and {"id", "language", "origin_query", "item_title", "label"} <= set(qi[0])
    assert len({r["origin_query"] for r in qi}) < len(qi) / 2  # several titles per query
    assert len({r["item_title"] for r in qi}) == len(qi)
    assert all("label" not in json.loads(line) for line in (tmp_path / "test_QC.txt").read_text().splitlines())
    # deterministic
    again = bench_scale.write_input(tmp_path / "again", ["qc"], 200, seed=0)
    assert again["qc"] == written["qc"]
    assert (tmp_path / "again" / "train_QC.txt").read_bytes() == (tmp_path / "train_QC.txt").read_bytes()


@pytest.mark.integration  # ~1 min on 2 shared cores: MiniLM embeds the hard-negative pool
def test_small_mode_times_every_stage_on_the_rows_it_should(tmp_path, shared_cache):
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_scale.py", "--rows", str(ROWS), "--tasks", "qc", "--tokenizer",
         "tiny_random", "--in-process", "--cache-dir", str(shared_cache), "--json-out", str(out)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(out.read_text())
    stages = {(s["task"], s["stage"]): s for s in data["stages"]}
    assert list(stages) == [("qc", stage) for stage in bench_scale.TASK_STAGES] + [(None, "grid_cost")]

    train, dev, test = ROWS, ROWS // 10, ROWS // 3
    expected = {"raw_parse": train + dev + test, "read": train + dev + test, "splits": train + dev,
                "easy_neg": train, "hard_neg": train, "balance": train, "translated": train, "noise_filter": train,
                "mix": train, "tokenize": train + dev, "digests": train + dev + test}
    assert {stage: stages[("qc", stage)]["rows"] for stage in expected} == expected
    assert stages[(None, "grid_cost")]["rows"] == train + dev and stages[(None, "grid_cost")]["jobs"] == 10
    for stage in ("easy_neg", "hard_neg", "balance"):
        assert stages[("qc", stage)]["rows_added"] > 0
    assert stages[("qc", "mix")]["mix_rows"] > train and stages[("qc", "tokenize")]["tokens"] > train + dev
    assert stages[("qc", "splits")]["folds"] == 5
    # model compute is timed where a model runs, and only there
    model_free = ("raw_parse", "read", "splits", "easy_neg", "noise_filter", "tokenize", "digests")
    assert all(stages[("qc", stage)]["model_seconds"] == 0 for stage in model_free)
    assert stages[("qc", "hard_neg")]["model_seconds"] > 0 and stages[("qc", "translated")]["model_seconds"] > 0
    translated = stages[("qc", "translated")]
    missing = ({r["language"] for r in bench_scale.source_rows("qc", "dev")}
               - {r["language"] for r in bench_scale.source_rows("qc", "train")})  # real QC: de, it, pl, ar...
    assert missing
    assert translated["counters"]["target_languages"] == len(missing)
    assert translated["counters"]["cache_misses"] >= len(missing) * ROWS * 0.8  # most queries are distinct
    assert translated["langid_rows_per_s"] > 0 and translated["translator"] == "tiny_seq2seq"
    assert translated["rows_added"] == len(missing) * train  # checks opened: every translation is a row
    assert translated["langid_seconds_estimate"] == pytest.approx(
        train * len(missing) / translated["langid_rows_per_s"])
    assert sum(v for k, v in translated["counters"].items() if k.startswith(("accepted_", "rejected_"))
               if k[-2:] in missing) == len(missing) * train  # every row translated into every missing language
    noise = stages[("qc", "noise_filter")]
    assert noise["counters"]["oof_runs"] == 5 and noise["counters"]["scored"] == train
    assert noise["rows_dropped"] == noise["counters"]["dropped"] == noise["counters"]["contradicted"]
    assert 0.01 * train < noise["rows_dropped"] < 0.03 * train  # the ~2 % of rows the scores contradict
    for stage in stages.values():
        assert stage["seconds"] > 0 and stage["peak_rss_mib"] >= stage["rss_before_mib"] > 0

    lines = [line for line in result.stdout.splitlines() if line.startswith("| qc |") or line.startswith("| all |")]
    assert [line.split(" | ")[1] for line in lines] == [*bench_scale.TASK_STAGES, "grid_cost"]
    assert ("| task | stage | rows | seconds | model s | rows/s | x raw parse | RSS at start MiB | peak RSS MiB "
            "| ≤ 2 min but model | ≤ 4 GiB |") in result.stdout
    raw = next(line for line in lines if " raw_parse " in line)
    assert raw.split(" | ")[6] == "1.0"  # the baseline is its own unit
    assert "of the cheapest QC job's estimated GPU training time" in result.stdout
    one_job = sum(stages[("qc", stage)]["seconds"] for stage in bench_scale.JOB_STAGES)
    assert data["job_shares"]["qc"]["job_stage_seconds"] == pytest.approx(one_job)
    assert "what one job of a sweep runs (read, splits, mix, tokenize, digests)" in result.stdout


def test_stages_can_be_chosen_and_unknown_ones_are_refused(capsys):
    assert bench_scale.parse_args(["--stages", " translated ,grid_cost"]).stages == "translated,grid_cost"
    assert bench_scale.parse_args([]).stages.split(",") == [*bench_scale.TASK_STAGES, *bench_scale.GLOBAL_STAGES]
    with pytest.raises(SystemExit):
        bench_scale.parse_args(["--stages", "translated,tokenise"])
    assert "--stages 'translated,tokenise': unknown ['tokenise']" in capsys.readouterr().err
