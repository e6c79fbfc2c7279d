"""The Model Registry: `models:/` URIs resolved to the runs they stand for, and versions created from runs.

A version `relevance.register` creates points to one run (the version's `run_id`): a training run, or a
fold ensemble's sweep parent (which `relevance.predict` expands to its fold runs, as for `run=<parent id>`).
So `run=models:/relevance-qc@champion` (an alias), `run=models:/relevance-qc/3` (a version) or
`run=models:/m-<id>` (a logged model) names the same thing as `run=<that run id>`.
"""

from __future__ import annotations

import re

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

MODELS_PREFIX = "models:/"
MODEL_NAME_PREFIX = "relevance-"  # the default registered model of a task: relevance-qc, relevance-qi
ALIAS_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # MLflow's aliases; `v<number>` and `latest` are reserved
RESERVED_ALIASES = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class RegistryError(LookupError):
    """A `models:/` URI that names nothing in the registry, or a name or alias MLflow refuses."""


def default_model_name(task: str) -> str:
    """`relevance-qc` for a run of task QC (its `task` tag)."""
    return f"{MODEL_NAME_PREFIX}{str(task).strip().lower()}"


def is_model_uri(reference) -> bool:
    return isinstance(reference, str) and reference.startswith(MODELS_PREFIX)


def check_alias(alias: str, key: str = "alias") -> None:
    if not ALIAS_PATTERN.match(alias) or RESERVED_ALIASES.match(alias):
        raise RegistryError(f"{key}={alias!r}: an alias is a letter or _ followed by letters, digits, _ or -, and "
                            "not `latest` or `v<number>` (MLflow reserves them), e.g. alias=champion")


def parse_model_uri(uri: str, key: str = "run") -> tuple[str, str | None, str | None]:
    """(name, alias, version) of `models:/<name>@<alias>` or `models:/<name>/<version>`; (logged model id,
    None, None) for `models:/m-<id>`."""
    body = uri[len(MODELS_PREFIX):].strip("/")
    if "@" in body:
        name, _, alias = body.rpartition("@")
        if name and alias and "/" not in alias:
            return name, alias, None
    elif "/" in body:
        name, _, version = body.rpartition("/")
        if name and version.isdigit():
            return name, None, version
    elif body:
        return body, None, None
    raise RegistryError(f"{key}={uri}: write models:/<name>@<alias> (models:/relevance-qc@champion) or "
                        "models:/<name>/<version> (models:/relevance-qc/3)")


def model_version(client: MlflowClient, uri: str, key: str = "run") -> ModelVersion:
    """The version `uri` names (an alias or a version number), with a message saying what exists when not."""
    name, alias, version = parse_model_uri(uri, key)
    if alias is None and version is None:
        raise RegistryError(f"{key}={uri}: name a version of a registered model: models:/{name}@<alias> or "
                            f"models:/{name}/<version>")
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise RegistryError(f"{key}={uri}: no registered model {name!r} in {client.tracking_uri} (registered: "
                            f"{', '.join(names) or 'none'}); register a run first: python -m relevance.register "
                            "run=<run id|latest>") from None
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, version)
    except MlflowException:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        aliases = ", ".join(f"@{a}: v{v}" for a, v in sorted(registered.aliases.items())) or "no aliases"
        what = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise RegistryError(f"{key}={uri}: {name} has no {what} (versions: {', '.join(map(str, versions)) or 'none'}"
                            f"; {aliases})") from None


def logged_model_run(client: MlflowClient, uri: str, key: str = "run") -> str:
    """The run a logged model (`models:/m-<id>`) was logged from."""
    model_id = uri[len(MODELS_PREFIX):].strip("/")
    try:
        logged = client.get_logged_model(model_id)
    except MlflowException:
        raise RegistryError(f"{key}={uri}: no logged model {model_id!r} in {client.tracking_uri}; name a "
                            "registered version instead: models:/<name>@<alias> or models:/<name>/<version>") from None
    if not logged.source_run_id:
        raise RegistryError(f"{key}={uri}: logged model {model_id} records no source run")
    return logged.source_run_id


def resolve_run_reference(client: MlflowClient, reference, key: str = "run"):
    """`reference` as `run=` takes it: a `models:/` URI becomes the id of the run its version points to
    (a training run, or a fold ensemble's sweep parent); anything else is returned unchanged."""
    if not is_model_uri(reference):
        return reference
    name, alias, version = parse_model_uri(reference, key)
    if alias is None and version is None and name.startswith("m-"):
        return logged_model_run(client, reference, key)
    found = model_version(client, reference, key)
    if not found.run_id:
        raise RegistryError(f"{key}={reference}: version {found.version} of {found.name} points to no run (it was "
                            "not registered by relevance.register): register a run with python -m relevance.register")
    return found.run_id


def create_version(client: MlflowClient, name: str, source: str, run_id: str, model_id: str | None,
                   tags: dict[str, str], description: str, alias: str | None) -> ModelVersion:
    """A new version of `name` (created when missing) pointing to `run_id`, tagged; `alias` moves to it."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Relevance models registered by relevance.register: "
                                                         "python -m relevance.predict run=models:/" + name + "@<alias>")
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, description=description,
                                          model_id=model_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return client.get_model_version(name, version.version)
