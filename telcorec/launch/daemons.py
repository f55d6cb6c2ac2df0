"""Spark's standalone daemons on this machine, run with Spark's own sbin/spark-daemon.sh.

The pyspark wheel ships sbin/spark-daemon.sh (not start-master.sh / start-worker.sh). It starts
`bin/spark-class CLASS ARGS` with nohup, writes its PID to
SPARK_PID_DIR/spark-IDENT-CLASS-N.pid and its output to SPARK_LOG_DIR/spark-IDENT-CLASS-N-HOST.out;
`stop` sends TERM to that PID and removes the file. Everything lives under work/cluster/
(pids/, logs/, worker-N/ as SPARK_WORKER_DIR) and the daemons run there, so that whatever they
start (executors, their Python workers) is recognised by its working directory.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from telcorec.launch.messages import LaunchError, log

HOST = "127.0.0.1"
IDENT = "telcorec"   # SPARK_IDENT_STRING: names the PID and log files
CLASSES = {"master": "org.apache.spark.deploy.master.Master",
           "worker": "org.apache.spark.deploy.worker.Worker"}


@dataclass(frozen=True)
class Daemon:
    role: str       # master | worker
    instance: int   # spark-daemon.sh's instance number (1 for the master)

    @property
    def name(self) -> str:
        return "master" if self.role == "master" else f"worker-{self.instance}"

    @property
    def spark_class(self) -> str:
        return CLASSES[self.role]


@dataclass(frozen=True)
class Layout:
    """Where a cluster's files live (root: work/cluster/) and where spark-daemon.sh is."""
    root: Path
    spark_home: Path   # the pyspark package directory: bin/, sbin/, jars/

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def pid_file(self, daemon: Daemon) -> Path:
        return self.pids / f"spark-{IDENT}-{daemon.spark_class}-{daemon.instance}.pid"

    def log_file(self, daemon: Daemon) -> Path | None:
        found = sorted(self.logs.glob(f"spark-{IDENT}-{daemon.spark_class}-{daemon.instance}-*.out"))
        return found[0] if found else None

    def worker_dir(self, daemon: Daemon) -> Path:
        return self.root / daemon.name

    def command(self, action: str, daemon: Daemon, *args: str) -> list[str]:
        return ["bash", str(self.spark_home / "sbin" / "spark-daemon.sh"), action,
                daemon.spark_class, str(daemon.instance), *args]

    def env(self, daemon: Daemon, base: dict[str, str]) -> dict[str, str]:
        env = {**base, "SPARK_HOME": str(self.spark_home), "SPARK_PID_DIR": str(self.pids),
               "SPARK_LOG_DIR": str(self.logs), "SPARK_IDENT_STRING": IDENT}
        env.pop("SPARK_NO_DAEMONIZE", None)
        if daemon.role == "worker":
            env["SPARK_WORKER_DIR"] = str(self.worker_dir(daemon))
        return env


_PID_FILE = re.compile(rf"spark-{IDENT}-(.+)-(\d+)\.pid")


def recorded(layout: Layout) -> dict[Daemon, int]:
    """The daemons whose PID files spark-daemon.sh left, workers first, then the master."""
    roles = {cls: role for role, cls in CLASSES.items()}
    found = {}
    for path in layout.pids.glob("*.pid") if layout.pids.is_dir() else []:
        match = _PID_FILE.fullmatch(path.name)
        if match and match.group(1) in roles and path.read_text().strip().isdigit():
            found[Daemon(roles[match.group(1)], int(match.group(2)))] = int(path.read_text())
    return dict(sorted(found.items(), key=lambda kv: (kv[0].role == "master", kv[0].instance)))


def runs_class(pid: int, spark_class: str) -> bool:
    """True when PID is alive and runs `spark_class` (not a reused PID, nor a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and spark_class in cmdline


def processes_under(root: Path) -> list[int]:
    """Live processes whose working directory is inside root (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and (cwd == str(root) or cwd.startswith(f"{root}/")):
            found.append(int(proc.name))
    return found


def start(layout: Layout, daemon: Daemon, args: list[str], base_env: dict[str, str]) -> int:
    """spark-daemon.sh start; returns the daemon's PID. Run in its own session from
    work/cluster/, so signals to the caller's process group never reach it."""
    layout.pids.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    if daemon.role == "worker":
        layout.worker_dir(daemon).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(layout.command("start", daemon, *args), cwd=layout.root,
                          env=layout.env(daemon, base_env), stdin=subprocess.DEVNULL,
                          stdout=sys.stderr, check=False, start_new_session=True)
    if done.returncode != 0:
        raise LaunchError(f"spark-daemon.sh could not start {daemon.name} (exit "
                          f"{done.returncode}); see its message above and {layout.logs}/")
    pid = recorded(layout).get(daemon)
    if pid is None:
        raise LaunchError(f"{daemon.name} did not start: spark-daemon.sh wrote no PID file")
    log(f"started {daemon.name} (PID {pid})")
    return pid


def stop(layout: Layout, daemons: dict[Daemon, int], timeout: float) -> None:
    """spark-daemon.sh stop (TERM) for every running daemon, then KILL what still runs after
    `timeout` seconds; waits until all are gone. Stale PID files are removed."""
    running = {}
    for daemon, pid in daemons.items():
        if runs_class(pid, daemon.spark_class):
            log(f"stopping {daemon.name} (PID {pid}) ...")
            subprocess.run(layout.command("stop", daemon), cwd=layout.root,
                           env=layout.env(daemon, dict(os.environ)), stdout=subprocess.DEVNULL,
                           check=False)
            running[daemon] = pid
        else:
            log(f"{daemon.name}: PID {pid} is not running")
        layout.pid_file(daemon).unlink(missing_ok=True)
    started, killed = time.monotonic(), False
    while alive := [pid for d, pid in running.items() if runs_class(pid, d.spark_class)]:
        waited = time.monotonic() - started
        if not killed and waited >= timeout:
            log(f"still running after {timeout:g} s: kill -KILL {' '.join(map(str, alive))}")
            for pid in alive:
                os.kill(pid, signal.SIGKILL)
            killed = True
        elif killed and waited >= timeout + 15:
            raise LaunchError(f"PIDs {alive} survived kill -KILL; stop them by hand.")
        time.sleep(0.2)


def master_page(webui_port: int) -> dict | None:
    """The master's JSON page (status, workers, applications), or None when it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(f"http://{HOST}:{webui_port}/json/", timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):  # not up yet ("Spark is starting up"), or gone
        return None


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def log_tail(path: Path | None, lines: int = 15) -> None:
    if path is not None and path.is_file():
        log(f"last lines of {path}:", *path.read_text(errors="replace").splitlines()[-lines:])
