"""Links into the MLflow UI, built in one place: an experiment's runs table, a sweep's runs table, a run.

MLflow 3.x opens an experiment on its GenAI pages (traces) unless the experiment is tagged
`mlflow.experimentKind=custom_model_development`, and shows no metric column in the runs table
until one is ticked by hand. What the installed UI (3.17) offers a project, read from its JS
bundle (mlflow/server/js/build):

* the runs tab has its own route, `#/experiments/<id>/runs`;
* the query string may carry the search facets (`searchFilter`, `orderByKey`, `orderByAsc`,
  `startTime`, `lifecycleFilter`, `datasetsFilter`), but not the visible columns;
* `viewStateShareKey=<key>` loads a *shared view* saved in the experiment's tag
  `mlflow.sharedViewState.<key>` (JSON: search facets + UI state, `selectedColumns` included).
  The UI ignores the shared view when any search facet is in the query string too, so a link
  names only the key, and a sweep's filter lives in its own view.

So every experiment the project creates or logs to carries the kind tag and a view
`relevance-runs` (metric columns `KEY_COLUMNS` visible), and each sweep a view
`sweep-<parent run id>` (the same columns, filtered to the sweep's runs). The links work in the
UI that serves the store: `python -m relevance.ui` (`make ui`, http://127.0.0.1:5000 by default; it
prints the port it took) for a local store, the server itself for an `http(s)://` tracking URI.
"""

from __future__ import annotations

import json
import logging
import urllib.parse

from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the training-runs pages, not the GenAI ones
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # + the view's key: the UI's saved ("shared") views
VIEW_KEY_PARAM = "viewStateShareKey"
EXPERIMENT_VIEW = "relevance-runs"
DEFAULT_UI_URL = "http://127.0.0.1:5000"  # `make ui` (conf/ui.yaml: host, port)
# the metric columns every runs link shows (the UI orders them by name): the competition metric beside predicting
# every row relevant, and the dev F1 runs are chosen on. Few, and in place of the UI's default attribute columns
# (Source, Models, Dataset): the table draws only the columns in view, and these must be in view.
KEY_COLUMNS = ("dev_f1", "test_f1", "test_f1_all_relevant", "test_roc_auc")


def ui_base_url(tracking_uri: str, ui_url: str | None = None) -> str:
    """Where the UI of this store is: `ui_url` when known (the one `relevance.ui` started), a tracking
    server's own address, else what `make ui` serves by default."""
    if ui_url:
        return ui_url.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return DEFAULT_UI_URL


def metric_column(name: str) -> str:
    """The UI's key of a metric column (its `makeCanonicalSortKey("metrics", name)`)."""
    return f"metrics.`{name}`"


def view_state(search_filter: str = "", order_by: str | None = None) -> dict:
    """A shared view: the key metric columns visible, optionally a filter and a sort."""
    state = {"searchFilter": search_filter,
             "selectedColumns": [metric_column(m) for m in KEY_COLUMNS]}
    if order_by:
        state.update(orderByKey=metric_column(order_by), orderByAsc=False)
    return state


def sweep_view_key(parent_run_id: str) -> str:
    return f"sweep-{parent_run_id}"


def sweep_filter(parent_run_id: str) -> str:
    return f"tags.`mlflow.parentRunId` = '{parent_run_id}'"


def mark_experiment(client: MlflowClient, experiment_id: str, tags: dict | None = None) -> None:
    """Tag an experiment as the project's: the training-runs pages, and the `relevance-runs` view."""
    tags = tags if tags is not None else (client.get_experiment(experiment_id).tags or {})
    for key, value in experiment_tags().items():
        if tags.get(key) != value:
            try:
                client.set_experiment_tag(experiment_id, key, value)
            except Exception as exc:  # noqa: BLE001 - a parallel job may write it at the same moment; never fatal
                if (client.get_experiment(experiment_id).tags or {}).get(key) != value:
                    log.warning("could not tag experiment %s with %s (%s): its links open the plain runs table",
                                experiment_id, key, exc)


def experiment_tags() -> dict[str, str]:
    """The tags a new experiment is created with (see `mark_experiment`)."""
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, SHARED_VIEW_TAG + EXPERIMENT_VIEW: json.dumps(view_state())}


def runs_table_url(base_url: str, experiment_id: str, view_key: str | None = EXPERIMENT_VIEW) -> str:
    url = f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return f"{url}?{urllib.parse.urlencode({VIEW_KEY_PARAM: view_key})}" if view_key else url


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def experiment_runs_link(client: MlflowClient, experiment_id: str, base_url: str) -> str:
    """The experiment's runs table with the key metric columns (its view saved first, when the store
    lets us write: a read-only login on a server gets the plain runs table)."""
    try:
        mark_experiment(client, experiment_id)
    except Exception as exc:  # noqa: BLE001 - a link without its view is still a link
        log.warning("could not save the runs view of experiment %s (%s): the link opens the plain runs table",
                    experiment_id, exc)
        return runs_table_url(base_url, experiment_id, None)
    return runs_table_url(base_url, experiment_id)


def sweep_runs_link(client: MlflowClient, experiment_id: str, parent_run_id: str, base_url: str) -> str:
    """The runs table filtered to one sweep parent's children, best dev F1 first, key metrics visible."""
    key = sweep_view_key(parent_run_id)
    try:
        mark_experiment(client, experiment_id)
        client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key,
                                  json.dumps(view_state(sweep_filter(parent_run_id), order_by="dev_f1")))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not save the view of sweep %s (%s): the link opens the plain runs table",
                    parent_run_id, exc)
        return runs_table_url(base_url, experiment_id, None)
    return runs_table_url(base_url, experiment_id, key)
