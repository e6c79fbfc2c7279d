"""A task is its YAML: a third task (query ↔ brand) added as one file in a config folder of the
user's own trains and predicts through the real CLI, with no change to the code."""

from __future__ import annotations

import json
import random
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.conftest import run_cli, tiny_run_args

BRAND_TASK = """\
name: QB
key: qb
target_field: brand
prompt: "Search query: {query}\\nBrand: {target}\\nIs this the brand the shopper wants?"
"""

BRANDS = {"nike": "Nike", "adidas": "Adidas", "apple": "Apple", "samsung": "Samsung", "lego": "LEGO",
          "sony": "Sony", "xiaomi": "Xiaomi", "puma": "Puma"}
PRODUCTS = ("shoes", "jacket", "phone case", "headphones", "charger", "watch", "bag", "cap")
LANGUAGES = ("en", "es", "fr")


def brand_rows(split: str, n: int) -> list[dict]:
    rng = random.Random(split)
    names = sorted(BRANDS)
    rows = []
    for i in range(1, n + 1):
        query_brand = rng.choice(names)
        positive = rng.random() < 0.6
        brand = BRANDS[query_brand] if positive else BRANDS[rng.choice([b for b in names if b != query_brand])]
        query = f"{query_brand} {rng.choice(PRODUCTS)} {split}{i}"  # one query string per row: no query on both sides
        rows.append({"id": i, "task": "QB", "language": rng.choice(LANGUAGES), "origin_query": query,
                     "brand": brand, "label": int(positive)})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_third_task_is_one_yaml(tmp_path, shared_cache):
    user_conf = tmp_path / "my_conf"
    (user_conf / "task").mkdir(parents=True)
    (user_conf / "task" / "qb.yaml").write_text(BRAND_TASK)
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", brand_rows("train", 96))
    dev = write_jsonl(data / "dev.jsonl", brand_rows("dev", 48))

    run_cli("train", tiny_run_args(tmp_path, shared_cache, f"hydra.searchpath=[file://{user_conf}]", "task=qb",
                                   "data=competition", f"data.dir={data}", "augment=[original,easy_neg]"),
            cwd=tmp_path)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qb")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["task"] == "QB"
    assert run.data.params["data.train_rows"] == "96"
    assert run.data.metrics["augment_easy_neg_rows"] > 0  # negatives mined with the default relatedness rule
    assert "dev_f1" in run.data.metrics

    output = tmp_path / "predictions.jsonl"
    result = run_cli("predict", [f"run={run.info.run_id}", f"input={dev}", f"output={output}",
                                 f"paths.root={tmp_path}", f"paths.cache_dir={shared_cache}"], cwd=tmp_path)
    predicted = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(predicted) == 48 and all("brand" in row and "score" in row for row in predicted)
    assert "overall" in result.stdout
