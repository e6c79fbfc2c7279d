"""`python -m relevance.compare [key=value ...]`: the keys are in conf/compare.yaml."""

from __future__ import annotations

from pathlib import Path

import hydra
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from relevance.compare.comparison import Comparison, build_comparison
from relevance.compare.config import power_settings, register_compare_schema, validate_compare_config
from relevance.compare.report import ARTIFACT_DIR, log_to_parents, terminal_report, write_report
from relevance.compare.selection import runs_of_mixes, select_runs
from relevance.config import ConfigError
from relevance.runtime import quiet_third_party_logs
from relevance.tracking.runs import RunSelectionError

register_compare_schema()


@hydra.main(config_path="../../conf", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    quiet_third_party_logs()
    try:
        validate_compare_config(cfg)
        compare(cfg)
    except (ConfigError, RunSelectionError) as exc:
        raise SystemExit(f"relevance.compare: {exc}") from None


def comparison_from_config(cfg: DictConfig) -> tuple[MlflowClient, Comparison, list[str]]:
    """The runs `cfg` selects (a sweep, or experiments), compared; with the client and the parent run ids."""
    client = MlflowClient(cfg.tracking.tracking_uri)
    runs, title, parents = select_runs(client, cfg.sweep, list(cfg.experiments))
    if cfg.mixes:
        runs, title = runs_of_mixes(runs, list(cfg.mixes)), f"{title}, mixes {', '.join(cfg.mixes)}"
    comparison = build_comparison(client, runs, title, baseline=cfg.baseline, n_resamples=cfg.n_resamples,
                                  seed=cfg.seed, parent_run_ids=parents, alpha=cfg.alpha, power=power_settings(cfg))
    return client, comparison, parents


def compare(cfg: DictConfig) -> Path:
    """Select → compare → write the report folder (→ attach it to the parent runs); prints the report."""
    client, comparison, parents = comparison_from_config(cfg)
    out_dir = Path(cfg.out)
    report = write_report(comparison, out_dir)
    where = ""
    if cfg.log and parents:
        log_to_parents(client, comparison, out_dir)
        where = f"; attached to parent run(s) {', '.join(parents)} under {ARTIFACT_DIR}/"
    print(terminal_report(comparison))
    print(f"\nreport: {report}{where}")
    print(runs_links(client, parents, list(cfg.experiments)), flush=True)
    return report


def runs_links(client: MlflowClient, parents: list[str], experiments: list[str]) -> str:
    """The runs compared, in the MLflow UI: each sweep parent's runs table, or each experiment's
    (relevance.tracking.links), with how to open them."""
    from relevance.tracking.links import experiment_runs_link, sweep_runs_link, ui_base_url
    from relevance.tracking.runs import ui_hint

    base = ui_base_url(client.tracking_uri)
    if parents:
        links = [sweep_runs_link(client, client.get_run(p).info.experiment_id, p, base) for p in parents]
    else:
        links = [experiment_runs_link(client, client.get_experiment_by_name(name).experiment_id, base)
                 for name in experiments]
    return "\n".join([f"runs:   {link}" for link in links] + [ui_hint(client.tracking_uri)])


if __name__ == "__main__":
    main()
