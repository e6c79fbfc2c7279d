"""The shared tracking server with a login (issue 22, docs/security.md): `make server` turns on MLflow's
basic authentication when it listens beyond loopback; on loopback here (SERVER_AUTH=basic), over a real
PostgreSQL (runs and users, each in its own database): a client without credentials is refused, a user
with credentials logs a 2-job sweep through the real CLI (MLFLOW_TRACKING_USERNAME/PASSWORD) and reads it
back with `relevance.compare` (~/.mlflow/credentials), and the docs' recipe for giving a team read, then
write, access to an experiment holds."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shlex
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from relevance.server import auth_environment, is_loopback, mlflow_command, parser, wants_auth, without_password
from tests.conftest import REPO
from tests.requirements import require_module
from tests.servers import postgres, relevance_cli, require, tracking_server
from tests.sweep_fixtures import children_of, parents_of


# --------------------------------------------------------------------------- make server: when a login is on

def make_server_argv(*make_vars: str) -> list[str]:
    """What `make server` would run (make -n), as arguments of relevance.server."""
    make = require("make", "apt-get install -y make")
    printed = subprocess.run([make, "-n", "-s", "-C", str(REPO), "-o", ".venv/.installed", "server", "PY=python",
                              *make_vars], check=True, capture_output=True, text=True).stdout
    argv = shlex.split(printed.replace("\\\n", " "))
    assert argv[:3] == ["python", "-m", "relevance.server"], argv
    return argv[3:]


@pytest.mark.parametrize("make_vars, login", [
    (["SERVER_HOST=0.0.0.0"], True),
    (["SERVER_HOST=10.1.2.3"], True),
    (["SERVER_HOST=mlflow.example.org"], True),
    (["SERVER_HOST=127.0.0.1"], False),
    (["SERVER_HOST=::1"], False),
    (["SERVER_HOST=0.0.0.0", "SERVER_AUTH=none"], False),
    (["SERVER_HOST=127.0.0.1", "SERVER_AUTH=basic"], True),
])
def test_make_server_requires_a_login_beyond_loopback(make_vars, login):
    args = parser().parse_args(make_server_argv(*make_vars, "SERVER_OPTS=--allowed-hosts mlflow.example.org:5001"))
    command = mlflow_command(args, wants_auth(args.auth, args.host))
    assert (command[command.index("--app-name") + 1] == "basic-auth") if login else "--app-name" not in command
    assert command[-2:] == ["--allowed-hosts", "mlflow.example.org:5001"]
    assert is_loopback(args.host) is (args.host in ("127.0.0.1", "::1"))


def test_the_auth_files_are_private_and_hold_no_password(tmp_path):
    args = parser().parse_args(["--backend-store-uri", "sqlite:///x.db", "--artifacts-destination", "a",
                                "--auth-dir", str(tmp_path / "auth"), "--default-permission", "NO_PERMISSIONS"])
    env = auth_environment(args, {"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cret-admin"})
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
    text = config.read_text()
    assert "default_permission = NO_PERMISSIONS" in text and f"sqlite:///{tmp_path / 'auth' / 'basic_auth.db'}" in text
    assert "s3cret-admin" not in text and "admin_password" not in text
    key = tmp_path / "auth" / "flask_secret_key"
    for path in (config, key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == key.read_text() and len(key.read_text()) == 64
    again = auth_environment(args, {})
    assert again["MLFLOW_FLASK_SERVER_SECRET_KEY"] == env["MLFLOW_FLASK_SERVER_SECRET_KEY"]  # kept across restarts
    own = auth_environment(args, {"MLFLOW_AUTH_CONFIG_PATH": "/etc/mlflow/auth.ini"})
    assert own["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/auth.ini"
    assert without_password("postgresql://mlflow:pw@127.0.0.1:5432/auth") == "postgresql://mlflow:***@127.0.0.1:5432/auth"
    assert without_password("sqlite:////srv/auth.db") == "sqlite:////srv/auth.db"


# --------------------------------------------------------------------------- the server, with a login

def rest_status(url: str, user: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=5")
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@contextlib.contextmanager
def signed_in(monkeypatch, user: tuple[str, str]):
    """This process's MLflow clients, as `user` (MLflow's own environment variables)."""
    with monkeypatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])
        yield


def refused(call) -> int:
    with pytest.raises(MlflowException) as error:
        call()
    return error.value.get_http_status_code()


@pytest.mark.integration
def test_a_server_with_a_login_refuses_strangers_and_serves_its_users(tmp_path, shared_cache, monkeypatch):
    require_module("psycopg", "make install (pyproject's cluster extra: psycopg, PostgreSQL's driver)")
    from mlflow.server import get_app_client

    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "stranger"))  # no ~/.mlflow/credentials of whoever runs the tests
    admin = ("admin", secrets.token_urlsafe(12))
    alice, bob = ("alice", secrets.token_urlsafe(12)), ("bob", secrets.token_urlsafe(12))
    with postgres(databases=("mlflow", "mlflow_auth")) as database:
        make_vars = {"SERVER_AUTH": "basic", "SERVER_AUTH_DIR": str(tmp_path / "auth"),
                     "SERVER_AUTH_DB": f"{database}/mlflow_auth", "SERVER_DEFAULT_PERMISSION": "NO_PERMISSIONS"}
        with tracking_server(f"{database}/mlflow", tmp_path / "artifacts", make_vars=make_vars,
                             env={"MLFLOW_AUTH_ADMIN_PASSWORD": admin[1]}) as url:
            # without credentials, or with wrong ones: refused
            assert rest_status(url) == 401 and rest_status(url, ("alice", "guess")) == 401
            assert refused(lambda: MlflowClient(url).search_experiments()) == 401
            assert rest_status(url, admin) == 200
            with signed_in(monkeypatch, admin):  # docs/security.md: creating users
                users = get_app_client("basic-auth", tracking_uri=url)
                users.create_user(*alice)
                users.create_user(*bob)

            # alice logs a sweep through the real CLI, signed in by MLflow's environment variables ...
            env = {"MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": alice[0], "MLFLOW_TRACKING_PASSWORD": alice[1]}
            relevance_cli("train", ["-m", "experiment=smoke_sweep", "tracking=server", f"paths.cache_dir={shared_cache}"],
                          cwd=tmp_path, env=env)
            # ... and reads it back with compare, signed in by her ~/.mlflow/credentials
            home = tmp_path / "alice"
            (home / ".mlflow").mkdir(parents=True)
            (home / ".mlflow" / "credentials").write_text(
                f"[mlflow]\nmlflow_tracking_username = {alice[0]}\nmlflow_tracking_password = {alice[1]}\n")
            result = relevance_cli("compare", ["tracking=server", "n_resamples=200"], cwd=tmp_path,
                                   env={"MLFLOW_TRACKING_URI": url, "HOME": str(home)})
            with signed_in(monkeypatch, alice):
                client = MlflowClient(url)
                [parent] = parents_of(client, [e.experiment_id for e in client.search_experiments()])
                children = children_of(client, parent)
            assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
            out = Path(re.search(r"^report: (\S+)/report.md", result.stdout, re.MULTILINE).group(1))
            compared = json.loads((out / "comparison.json").read_text())
            assert {r["run_id"] for r in compared["runs"]} == {c.info.run_id for c in children}
            experiment = parent.info.experiment_id
            child = children[0].info.run_id

            # docs/security.md: bob sees nothing until a team role gives him READ, then EDIT from alice
            with signed_in(monkeypatch, bob):
                assert refused(lambda: MlflowClient(url).get_run(child)) == 403
            with signed_in(monkeypatch, admin):
                role = users.create_role("default", "qc-readers")
                users.add_role_permission(role.id, "experiment", experiment, "READ")
                users.assign_role(bob[0], role.id)
            with signed_in(monkeypatch, bob):
                assert MlflowClient(url).get_run(child).data.metrics["dev_f1"] >= 0
                assert refused(lambda: MlflowClient(url).create_run(experiment)) == 403
            with signed_in(monkeypatch, alice):  # she created the experiment: she manages it
                users.grant_user_permission(bob[0], "experiment", experiment, "EDIT")
            with signed_in(monkeypatch, bob):
                assert MlflowClient(url).create_run(experiment).info.experiment_id == experiment
            with signed_in(monkeypatch, admin):
                users.revoke_user_permission(bob[0], "experiment", experiment)
                users.update_user_password(bob[0], "a-new-password")
            assert rest_status(url, bob) == 401 and rest_status(url, (bob[0], "a-new-password")) == 200
            with signed_in(monkeypatch, (bob[0], "a-new-password")):
                assert refused(lambda: MlflowClient(url).create_run(experiment)) == 403  # READ again, by the role
