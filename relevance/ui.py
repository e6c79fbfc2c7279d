"""The MLflow UI over the project's store: `python -m relevance.ui [key=value ...]` (what `make ui`
runs; keys in conf/ui.yaml: host, port, workers, and the shared tracking/paths groups).

Serves the store `relevance.train` logs to (`tracking.tracking_uri`: $MLFLOW_TRACKING_URI, else
sqlite:///<paths.root>/mlflow.db) on 127.0.0.1 only by default, prints the URL and the server's
pid, and stops on Ctrl-C or SIGTERM. A busy port is replaced by a free one (`port=0`: any free
port). The server runs in its own process group (session), so stopping it also stops the worker
processes it spawned (uvicorn / huey): `MlflowServer.stop()` signals the whole group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from relevance.config import PathsConfig, TrackingConfig, check_keys_against_schema
from relevance.runtime import exit_on_sigterm

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class MlflowServer:
    process: subprocess.Popen
    port: int
    log_path: Path
    host: str = HOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the server's process group, SIGKILL if it lingers; waits until the port is closed."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (_group_alive(self.process.pid) or port_open(self.port, self.host)):
                self.process.poll()
                time.sleep(0.2)
            if not _group_alive(self.process.pid):
                break
        self.process.wait(timeout=timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg: look at the group's live members
    for pid_dir in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if not pid_dir.name.isdigit():
            continue
        try:
            fields = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return not Path("/proc").exists()


def start_server(backend_store_uri: str, port: int | None = None, workers: int = 1, log_path: Path | None = None,
                 timeout: float = 120.0, host: str = HOST) -> MlflowServer:
    """`mlflow server` in a new session, returned once /health answers."""
    port = port or free_port(host)
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"mlflow-server-{port}.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli) if mlflow_cli.exists() else "mlflow", "server", "--backend-store-uri", backend_store_uri,
               "--host", host, "--port", str(port), "--workers", str(workers)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = MlflowServer(process, port, log_path, host)
    try:
        _wait_until_healthy(server, timeout)
    except BaseException:  # it failed, or Ctrl-C / SIGTERM came while waiting: leave no server behind
        server.stop()
        raise
    return server


def _wait_until_healthy(server: MlflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server did not answer on {server.url} within {timeout:.0f}s:\n{server.log_tail()}")


@dataclass
class UiConfig:
    host: str = HOST  # loopback only unless you mean to share the store
    port: int = 5000  # a busy port is replaced by a free one; 0: any free port
    workers: int = 1
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def register_ui_schema() -> None:
    ConfigStore.instance().store(name="ui_schema", node=UiConfig)


register_ui_schema()


def runs_links(tracking_uri: str, base_url: str) -> list[str]:
    """`runs of <experiment>: <link>` for each of the project's experiments (tagged as such, or named
    `relevance-*` by an older version), newest sweep first: each link opens the runs table with the key
    metric columns (relevance.tracking.links). Never stops the UI: a store it cannot read gets a note."""
    from relevance.tracking.links import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, experiment_runs_link, sweep_runs_link
    from relevance.tracking.store import tracking_client
    from relevance.tracking.tags import SWEEP_TAG

    try:
        client = tracking_client(tracking_uri)
        lines = []
        for experiment in client.search_experiments():
            tags = experiment.tags or {}
            if tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND and not experiment.name.startswith("relevance-"):
                continue
            link = experiment_runs_link(client, experiment.experiment_id, base_url)
            lines.append(f"runs of {experiment.name}: {link}")
            sweeps = client.search_runs([experiment.experiment_id], f"tags.`{SWEEP_TAG}` = 'true'",
                                        order_by=["attributes.start_time DESC"], max_results=1)
            if sweeps:
                link = sweep_runs_link(client, experiment.experiment_id, sweeps[0].info.run_id, base_url)
                lines.append(f"  its newest sweep, '{sweeps[0].info.run_name}': {link}")
        return lines or [f"no runs yet in {tracking_uri}: train one (make demo), then open the link it prints"]
    except Exception as exc:  # noqa: BLE001 - the UI still serves; only the links are missing
        return [f"(could not list the experiments' runs links: {exc})"]


@hydra.main(config_path="../conf", config_name="ui", version_base="1.3")
def main(cfg: DictConfig) -> None:
    check_keys_against_schema(cfg, UiConfig)
    exit_on_sigterm()  # `kill` stops the server's process group too, like Ctrl-C
    uri = cfg.tracking.tracking_uri
    port = free_port(cfg.host) if cfg.port and port_open(cfg.port, cfg.host) else cfg.port
    server = start_server(uri, port, cfg.workers, host=cfg.host)
    print(f"MLflow UI for {uri}: {server.url}  (server pid {server.process.pid}, log {server.log_path}; "
          "Ctrl-C stops it)", flush=True)
    try:
        for line in runs_links(uri, server.url):  # inside: a stop while listing still stops the server
            print(line, flush=True)
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
