"""Real servers on loopback for the cluster tests: PostgreSQL, the MLflow tracking server of
`make server`, a Ray head node, a one-node SLURM cluster (munged + slurmctld + slurmd).

Each is a context manager that stops what it started, by process id or process group, also when
the test fails, and that skips the test (fails it under CI=true: tests/requirements.py), saying what to
install, when a program is missing.
Everything listens on loopback only: PostgreSQL and MLflow bind 127.0.0.1; Ray and SLURM, which
listen on every interface, run in a private network namespace whose only interface is loopback
(loopback_network). State lives in a fresh temp folder, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from relevance.ui import MlflowServer, _group_alive, _wait_until_healthy, free_port
from tests.conftest import REPO, cli_env
from tests.requirements import missing, require_module, require_program, require_root

LOCALHOST = "127.0.0.1"


# --------------------------------------------------------------------------- helpers

def wait_for(ready: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready within {timeout:.0f}s\n{tail}")


def stop_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL, to the process group of a process started with start_new_session=True."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(process.pid):
            process.poll()
            time.sleep(0.2)
        if not _group_alive(process.pid):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)


def start_daemon(command: list[str], log: Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """A foreground daemon in its own session (so that stopping it stops what it spawned)."""
    with open(log, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, **kwargs)


def short_temp_dir(prefix: str) -> Path:
    """A temp folder with a short path (Unix sockets live there: at most 107 bytes) that other
    users can reach (pytest's tmp_path is root-only when run as root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


require = require_program  # skips, or fails under CI=true (tests/requirements.py)


def relevance_cli(module: str, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                  prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """`python -m relevance.<module> args...` from `cwd` with `env` added to the tests' clean
    environment (`prefix`: e.g. the command entering loopback_network())."""
    result = subprocess.run([*(prefix or []), sys.executable, "-m", f"relevance.{module}", *args], cwd=cwd,
                            env={**cli_env(), **(env or {})}, capture_output=True, text=True)
    assert result.returncode == 0, f"relevance.{module} failed ({result.returncode}):\n{result.stderr[-6000:]}"
    return result


# --------------------------------------------------------------------------- PostgreSQL

def postgres_bindir() -> Path | None:
    for candidate in [shutil.which("pg_ctl"), *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)]:
        if candidate:
            return Path(candidate).resolve().parent
    return None


@contextlib.contextmanager
def postgres(databases: tuple[str, ...] = ("mlflow",)) -> Iterator[str]:
    """A PostgreSQL server on a free loopback port with empty `databases`; its URI without a
    database (`postgresql://mlflow@127.0.0.1:<port>`: user `mlflow`, trust authentication on
    loopback, a test server). PostgreSQL refuses to run as root: as root it runs as the `postgres`
    user Debian's package creates."""
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL (pg_ctl)", "apt-get install -y postgresql")
    run_as = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            missing("the `postgres` user to run PostgreSQL as (running as root)",
                    "apt-get install -y postgresql creates it")
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    work = short_temp_dir("relevance-pg-")
    if run_as:
        os.chown(work, run_as["user"], run_as["group"])
    port = free_port()
    data, log = work / "data", work / "postgres.log"

    def pg(*args: str) -> None:
        subprocess.run([str(bindir / args[0]), *args[1:]], cwd=work, check=True, capture_output=True, **run_as)

    try:
        pg("initdb", "-D", str(data), "-U", "mlflow", "-A", "trust", "-E", "UTF8")
        pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
           "-o", f"-c listen_addresses={LOCALHOST} -p {port} -k {work}")
        for database in databases:
            pg("createdb", "-h", LOCALHOST, "-p", str(port), "-U", "mlflow", database)
        yield f"postgresql://mlflow@{LOCALHOST}:{port}"
    except subprocess.CalledProcessError as exc:
        log_tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace')}\n{log_tail}") from exc
    finally:
        if (data / "postmaster.pid").exists():  # the server this started, by its data folder
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=work,
                           capture_output=True, **run_as)
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- MLflow server

@contextlib.contextmanager
def tracking_server(backend_store_uri: str, artifacts: Path, workers: int = 2, make_vars: dict[str, str] | None = None,
                    env: dict[str, str] | None = None) -> Iterator[str]:
    """`make server` (mlflow server: the given store, artifacts proxied to `artifacts`) on a free
    loopback port; its URL. The Makefile's install step is not re-run (-o): the test's Python is used.
    `make_vars`: more Makefile variables (SERVER_AUTH=basic, ...); `env`: added to the server's environment
    (MLFLOW_AUTH_ADMIN_PASSWORD, ...)."""
    make = require("make", "apt-get install -y make")
    port = free_port()
    log = artifacts.parent / f"mlflow-server-{port}.log"
    command = [make, "-s", "-C", str(REPO), "-o", ".venv/.installed", "server", f"PY={sys.executable}",
               f"SERVER_DB={backend_store_uri}", f"SERVER_ARTIFACTS={artifacts}", f"SERVER_HOST={LOCALHOST}",
               f"SERVER_PORT={port}", f"SERVER_WORKERS={workers}",
               *(f"{key}={value}" for key, value in (make_vars or {}).items())]
    server = MlflowServer(start_daemon(command, log, env={**cli_env(), **(env or {})}), port, log)
    try:
        _wait_until_healthy(server, timeout=180)
        yield server.url
    finally:
        server.stop()


# --------------------------------------------------------------------------- Ray

@contextlib.contextmanager
def loopback_network() -> Iterator[list[str]]:
    """A private network namespace with the loopback interface only; the command prefix that runs
    a program in it. For servers that listen on every interface with no option to narrow it (Ray's
    GCS, raylet and agents): there, every interface is loopback. Needs root (unshare, nsenter);
    elsewhere the prefix is empty and such servers listen as they always do."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    tools = [shutil.which(tool, path=path) for tool in ("unshare", "nsenter", "ip")]
    if os.geteuid() != 0 or not all(tools):
        yield []
        return
    unshare, nsenter, ip = tools
    # a second loopback address: glibc's getaddrinfo(AI_ADDRCONFIG), which slurmd uses to find the
    # wildcard address it listens on, returns no IPv4 address when 127.0.0.1 is the only one
    setup = f"{ip} link set lo up && {ip} addr add 127.0.0.2/32 dev lo && echo up && exec sleep infinity"
    holder = subprocess.Popen([unshare, "--net", "--", "sh", "-c", setup], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        if holder.stdout.readline().strip() != "up":
            raise RuntimeError("could not bring up the loopback interface of a new network namespace")
        yield [nsenter, f"--target={holder.pid}", "--net"]
    finally:
        stop_group(holder)


@dataclass
class RayHead:
    address: str  # host:port of the cluster's GCS, for ray.init(address=...)
    temp_dir: Path

    @property
    def logs(self) -> Path:
        return self.temp_dir / "session_latest" / "logs"


@contextlib.contextmanager
def ray_head(num_cpus: int = 2, prefix: list[str] | None = None) -> Iterator[RayHead]:
    """`ray start --head --block` on loopback with `num_cpus` CPUs, in its own session: stopping
    that session stops the cluster's processes (GCS, raylet, workers) and nothing else.
    `prefix`: loopback_network()'s, to run it (and its drivers) in that namespace."""
    require_module("ray", "make install (pyproject's cluster extra)")
    ray = require(str(Path(sys.executable).with_name("ray")), "make install (pyproject's cluster extra)")
    work = short_temp_dir("ray-")
    port, log = free_port(), work / "ray-head.log"
    head = RayHead(f"{LOCALHOST}:{port}", work / "tmp")
    command = [ray, "start", "--head", "--block", f"--node-ip-address={LOCALHOST}", f"--port={port}",
               f"--num-cpus={num_cpus}", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
               f"--temp-dir={head.temp_dir}"]
    process = start_daemon([*(prefix or []), *command], log, env=cli_env())
    try:
        wait_for(lambda: process.poll() is None and "Ray runtime started" in log.read_text(errors="replace"),
                 "the Ray head", 120, log)
        yield head
    finally:
        stop_group(process, timeout=5)
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- SLURM

SLURM_CONF = """\
ClusterName=relevance-test
SlurmctldHost={hostname}({host})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it may start again (120 s by default)
AuthInfo=socket={work}/munge.socket,cred_expire=5
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
NodeName=localhost NodeHostname={hostname} NodeAddr={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    conf: Path
    env: dict[str, str] = field(default_factory=dict)  # SLURM_CONF for sbatch, squeue, scontrol, ...
    prefix: list[str] = field(default_factory=list)  # loopback_network()'s: the daemons' namespace

    def run(self, *command: str) -> str:
        return subprocess.run([*self.prefix, *command], env=self.env, check=True, capture_output=True, text=True,
                              timeout=60).stdout


@contextlib.contextmanager
def slurm_cluster(cpus: int = 2, prefix: list[str] | None = None) -> Iterator[SlurmCluster]:
    """munged (a fresh key) + slurmctld + slurmd on this machine, configured in a temp folder;
    every job still there at the end is cancelled before the daemons stop. slurmctld and slurmd
    listen on every interface: pass loopback_network()'s prefix (and run the clients with it)."""
    require_root("slurmd runs jobs as their user")
    munged = require("munged", "apt-get install -y munge")
    slurmctld = require("slurmctld", "apt-get install -y slurm-wlm")
    slurmd = require("slurmd", "apt-get install -y slurm-wlm")
    work = short_temp_dir("slurm-")
    for sub in ("state", "spool"):
        (work / sub).mkdir()
    key = work / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = work / "slurm.conf"
    conf.write_text(SLURM_CONF.format(hostname=socket.gethostname(), host=LOCALHOST, ctld_port=free_port(),
                                      slurmd_port=free_port(), user=pwd.getpwuid(os.geteuid()).pw_name,
                                      work=work, cpus=cpus))
    env = {**cli_env(), "SLURM_CONF": str(conf)}
    prefix = prefix or []
    cluster = SlurmCluster(conf, env, prefix)
    daemons: list[subprocess.Popen] = []
    try:
        daemons.append(start_daemon([*prefix, munged, "--foreground", "--force", f"--key-file={key}",
                                     f"--socket={work}/munge.socket", f"--pid-file={work}/munged.pid",
                                     f"--seed-file={work}/munged.seed", f"--log-file={work}/munged.log"],
                                    work / "munged.out", env))
        wait_for(lambda: (work / "munge.socket").exists(), "munged", 30, work / "munged.log")
        daemons.append(start_daemon([*prefix, slurmctld, "-D", "-i", "-f", str(conf)], work / "slurmctld.out", env))
        daemons.append(start_daemon([*prefix, slurmd, "-D", "-N", "localhost", "-f", str(conf)], work / "slurmd.out",
                                    env))
        wait_for(lambda: _node_idle(cluster), "the SLURM node", 60, work / "slurmd.log")
        yield cluster
    finally:
        if daemons[1:]:
            with contextlib.suppress(Exception):
                cluster.run("scancel", "--full", "--partition=debug")
                wait_for(lambda: not cluster.run("squeue", "--noheader").strip(), "cancelled jobs", 30)
        for daemon in reversed(daemons):
            stop_group(daemon)
        shutil.rmtree(work, ignore_errors=True)


def _node_idle(cluster: SlurmCluster) -> bool:
    try:
        return cluster.run("sinfo", "--noheader", "--format=%t").strip() == "idle"
    except subprocess.SubprocessError:
        return False
