"""Generated demo data lives under the cache only, one folder per generator setting: no command writes
into a folder the user named, and one run's generated rows never overwrite another's."""

from __future__ import annotations

import os
from pathlib import Path

from relevance.config import validate_config
from tests.conftest import compose_train, run_cli, tiny_run_args


def test_a_user_folder_given_to_the_demo_preset_is_refused_and_left_untouched(tmp_path):
    mine = tmp_path / "my_data"
    mine.mkdir()
    precious = mine / "qc_train.jsonl"
    precious.write_bytes(b'{"my": "own file"}\n')
    precious.chmod(0o600)
    before = (precious.read_bytes(), os.stat(precious).st_mode, sorted(os.listdir(mine)))
    result = run_cli("train", tiny_run_args(tmp_path, tmp_path / "cache", f"data.dir={mine}"), cwd=tmp_path,
                     check=False)
    assert result.returncode != 0
    assert f"data.dir={mine} with data=demo: the demo data is generated under the cache" in result.stderr
    assert f"use data=competition data.dir={mine}" in result.stderr
    assert (precious.read_bytes(), os.stat(precious).st_mode, sorted(os.listdir(mine))) == before
    assert not (tmp_path / "cache" / "models").exists(), "the model was loaded before the error"


def test_each_generator_setting_has_its_own_folder_under_the_cache(tmp_path):
    default = compose_train([f"paths.cache_dir={tmp_path}"])
    demo = compose_train([f"paths.cache_dir={tmp_path}", "experiment=demo"])
    validate_config(default)
    validate_config(demo)
    assert Path(default.data.dir).parent == Path(demo.data.dir).parent == tmp_path / "demo"
    assert default.data.dir != demo.data.dir  # 480 vs 1,440 training rows: never the same files
    inside = compose_train([f"paths.cache_dir={tmp_path}", f"data.dir={tmp_path}/demo/elsewhere"])
    validate_config(inside)  # a folder under the cache is the project's own
