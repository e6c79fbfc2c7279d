"""The shared tracking server of `make server`: `mlflow server`, with a login when it listens beyond loopback.

    python -m relevance.server --backend-store-uri URI --artifacts-destination DIR --host H --port P
        [--workers N] [--auth auto|basic|none] [--auth-dir DIR] [--auth-db URI]
        [--default-permission READ|NO_PERMISSIONS|...] [-- more mlflow server options]

`--auth auto` (the default) turns on MLflow's basic authentication (`mlflow server --app-name basic-auth`:
users, passwords, per-experiment permissions) unless `--host` is a loopback address; `basic` always,
`none` never (a server that listens beyond loopback without a login says so, loudly). With a login:

- the users live in `--auth-db` (default: `sqlite:///<auth-dir>/basic_auth.db`; a PostgreSQL URI works, in
  a database of its own), and every user that is not granted more gets `--default-permission` on every
  experiment (MLflow's default, READ; NO_PERMISSIONS keeps experiments private to whom they are granted);
- the first start against an empty user store creates the admin user `admin` with the password in
  `MLFLOW_AUTH_ADMIN_PASSWORD` (MLflow's own variable; MLflow refuses to start without it). The password
  is never written to a file by this command;
- the web UI's CSRF secret, which every worker must share, is `MLFLOW_FLASK_SERVER_SECRET_KEY`, or else
  a random key kept in `<auth-dir>/flask_secret_key` (mode 0600), the same across restarts.

Your own `MLFLOW_AUTH_CONFIG_PATH` (a basic_auth.ini) replaces the generated one. Clients authenticate
with `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` or `~/.mlflow/credentials` (docs/security.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

AUTH_MODES = ("auto", "basic", "none")
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
AUTH_CONFIG_FILE = "basic_auth.ini"
SECRET_KEY_FILE = "flask_secret_key"
ADMIN_USERNAME = "admin"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: only this machine can connect."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def without_password(uri: str) -> str:
    """`uri` fit for a log: a password in it replaced by `***`."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def wants_auth(mode: str, host: str) -> bool:
    if mode not in AUTH_MODES:
        raise SystemExit(f"server: --auth={mode!r}: use one of {', '.join(AUTH_MODES)} (SERVER_AUTH=...)")
    return mode == "basic" or (mode == "auto" and not is_loopback(host))


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by its owner only, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def auth_config_text(database_uri: str, default_permission: str) -> str:
    """A basic_auth.ini for MLflow: no admin password in it (MLflow reads MLFLOW_AUTH_ADMIN_PASSWORD)."""
    return (f"[mlflow]\ndefault_permission = {default_permission}\ndatabase_uri = {database_uri}\n"
            f"admin_username = {ADMIN_USERNAME}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")


def secret_key(auth_dir: Path) -> str:
    """The UI's CSRF secret: the one kept in `auth_dir`, made once."""
    path = auth_dir / SECRET_KEY_FILE
    if not path.is_file():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()


def check_auth_installed() -> None:
    """MLflow's basic-auth app needs Flask-WTF (MLflow's `auth` extra), which plain `mlflow` lacks."""
    import importlib.util

    if importlib.util.find_spec("flask_wtf") is None:
        raise SystemExit("server: a login (MLflow basic-auth) needs Flask-WTF, MLflow's `auth` extra: "
                         "make install (pyproject: mlflow[auth]), or pip install 'mlflow[auth]'")


def auth_environment(args, environ: dict[str, str]) -> dict[str, str]:
    """The variables `mlflow server --app-name basic-auth` reads, set as `args` say."""
    auth_dir = Path(args.auth_dir).resolve()
    env = dict(environ)
    if not env.get("MLFLOW_AUTH_CONFIG_PATH"):
        database_uri = args.auth_db or f"sqlite:///{auth_dir / 'basic_auth.db'}"
        config = auth_dir / AUTH_CONFIG_FILE
        write_private(config, auth_config_text(database_uri, args.default_permission))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
    if not env.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secret_key(auth_dir)
    return env


def mlflow_command(args, auth: bool) -> list[str]:
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow) if mlflow.exists() else (shutil.which("mlflow") or "mlflow"), "server",
               "--backend-store-uri", args.backend_store_uri, "--artifacts-destination", args.artifacts_destination,
               "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if auth:
        command += ["--app-name", "basic-auth"]
    extra = list(args.mlflow_options)
    return command + (extra[1:] if extra[:1] == ["--"] else extra)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m relevance.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend-store-uri", required=True)
    p.add_argument("--artifacts-destination", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--auth", default="auto", help="auto (a login unless --host is loopback) | basic | none")
    p.add_argument("--auth-dir", default="mlartifacts/server-auth",
                   help="the generated basic_auth.ini, the UI's secret key, the SQLite user store by default")
    p.add_argument("--auth-db", default="", help="the user store (default: sqlite:///<auth-dir>/basic_auth.db)")
    p.add_argument("--default-permission", default="READ", choices=PERMISSIONS,
                   help="what a logged-in user may do on an experiment nobody granted them (MLflow's default: READ)")
    p.add_argument("mlflow_options", nargs=argparse.REMAINDER, help="after --: more `mlflow server` options")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    auth = wants_auth(args.auth, args.host)
    env = dict(os.environ)
    if auth:
        check_auth_installed()
        env = auth_environment(args, env)
        users = without_password(args.auth_db) if args.auth_db else Path(args.auth_dir) / "basic_auth.db"
        print(f"server: login required (MLflow basic-auth; users in {users}, "
              f"default permission {args.default_permission}); the first start creates the admin user "
              f"'{ADMIN_USERNAME}' with $MLFLOW_AUTH_ADMIN_PASSWORD. Clients: MLFLOW_TRACKING_USERNAME and "
              "MLFLOW_TRACKING_PASSWORD, or ~/.mlflow/credentials (docs/security.md)", file=sys.stderr, flush=True)
    elif not is_loopback(args.host):
        print(f"server: WARNING: listening on {args.host} WITHOUT a login (SERVER_AUTH=none): anyone who can reach "
              "it can read, change and delete every run, and make whoever scores a run load what they put there. "
              "Drop SERVER_AUTH=none to require a login", file=sys.stderr, flush=True)
    command = mlflow_command(args, auth)
    os.execve(command[0], command, env)  # the server replaces this process: signals reach it directly


if __name__ == "__main__":
    main()
