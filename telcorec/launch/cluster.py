"""`./spark-submit.sh cluster up|add-worker|down|status`: a standalone cluster on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from telcorec.launch import daemons
from telcorec.launch.daemons import HOST, Daemon, Layout
from telcorec.launch.messages import LaunchError, UsageError, log

UP_DEFAULTS = {"--workers": 1, "--cores": 2, "--memory": "4g", "--port": 7077,
               "--webui-port": 8080, "--timeout": 90}
DOWN_DEFAULTS = {"--timeout": 30}

USAGE = f"""\
Usage: ./spark-submit.sh cluster up|add-worker|down|status [OPTIONS]

A standalone Spark cluster on this machine, bound to {HOST}: one master and N workers, started
and stopped with Spark's own sbin/spark-daemon.sh from the pyspark wheel. Use it to try
cluster mode, e.g.
  ./spark-submit.sh cluster up
  ./spark-submit.sh pipeline --master spark://{HOST}:7077 --conf conf/cluster-loopback.yaml
  ./spark-submit.sh cluster down

  up      Start the master and the workers, then wait until the master's JSON page lists
          every worker as ALIVE (after --timeout seconds: an error with the end of the logs,
          and what was started is stopped again). Refuses to start while a cluster started
          here is running or a port is taken.
  add-worker
          Start one more worker (same cores and memory) for the running master, e.g. after
          one died, and wait until the master lists it as ALIVE.
  down    Stop the daemons spark-daemon.sh recorded (TERM, then KILL after --timeout
          seconds) and wait until they are gone. Executors exit with their worker.
  status  Print the master URL, the workers the master lists (from its JSON page), running
          applications and the recorded daemons. Exit code 0 when the master answers and
          every recorded daemon runs, 1 otherwise.

Options of up:
  --workers N        workers (default 1)
  --cores C          cores each worker offers (default 2)
  --memory M         memory each worker offers, e.g. 4g or 512m (default 4g)
  --port P           master port (default 7077)
  --webui-port W     master web UI port (default 8080); worker i uses W+i
  --timeout S        seconds to wait for the workers (default 90)
Options of down:
  --timeout S        seconds between TERM and KILL (default 30)

Files, all under work/cluster/: cluster.json (the settings of `up`), pids/ (spark-daemon.sh's
PID files), logs/ (the daemons' logs) and worker-N/ (a worker's SPARK_WORKER_DIR: one directory
per application, holding each executor's stdout and stderr; `down` deletes the unpacked
environments there, `up` the previous cluster's directories). Executors get Spark's default
spark.executor.memory (1g) unless a submission says otherwise, e.g.
--spark-conf spark.executor.memory=2g.
"""


@dataclass(frozen=True)
class Settings:
    port: int
    webui_port: int
    workers: int
    cores: int
    memory: str

    @staticmethod
    def path(layout: Layout) -> Path:
        return layout.root / "cluster.json"

    @classmethod
    def load(cls, layout: Layout) -> Settings | None:
        path = cls.path(layout)
        return cls(**json.loads(path.read_text())) if path.is_file() else None

    def save(self, layout: Layout) -> None:
        self.path(layout).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"


def parse_options(command: str, args: list[str], defaults: dict) -> dict:
    """--name VALUE / --name=VALUE for the names in `defaults`; ints must be positive."""
    values = dict(defaults)
    i = 0
    while i < len(args):
        name, sep, value = args[i].partition("=")
        if name not in defaults:
            raise UsageError(f"unknown option {args[i]!r} for cluster {command} "
                             "(see ./spark-submit.sh cluster --help)")
        if not sep:
            if i + 1 >= len(args):
                raise UsageError(f"{name} needs a value (see ./spark-submit.sh cluster --help)")
            i, value = i + 1, args[i + 1]
        if isinstance(defaults[name], int):
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"{name} needs a positive integer, got {value!r}")
            value = int(value)
        elif not (value[:-1].isdigit() and value[-1:] in "mMgGtT" and int(value[:-1]) > 0):
            raise UsageError(f"{name} needs a size such as 4g or 512m, got {value!r}")
        values[name] = value
        i += 1
    return values


def _worker_args(settings: Settings, instance: int) -> list[str]:
    return [settings.url, "--host", HOST, "--cores", str(settings.cores),
            "--memory", settings.memory, "--webui-port", str(settings.webui_port + instance)]


def _running(layout: Layout) -> dict[Daemon, int]:
    return {d: pid for d, pid in daemons.recorded(layout).items()
            if daemons.runs_class(pid, d.spark_class)}


def _stop_all(layout: Layout, timeout: float) -> bool:
    """Stop every recorded daemon, wait for their executors; False when some process is still
    running in work/cluster/ afterwards."""
    daemons.stop(layout, daemons.recorded(layout), timeout)
    Settings.path(layout).unlink(missing_ok=True)
    deadline = time.monotonic() + 20   # executors exit when their worker goes
    while (left := daemons.processes_under(layout.root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        log("warning: processes still running in work/cluster/ (executors or Python workers "
            f"whose worker is gone): PIDs {' '.join(map(str, left))}. Not started by "
            "`cluster up` itself, so left alone.")
        return False
    unpacked = list(layout.root.glob("worker-*/app-*/*/environment"))
    for path in unpacked:   # each executor unpacked the environment (~2 GB): keep the logs
        shutil.rmtree(path)
    if unpacked:
        log(f"removed {len(unpacked)} unpacked environment(s); executor logs stay in "
            "work/cluster/worker-*/")
    return True


def wait_for_workers(layout: Layout, settings: Settings, count: int, timeout: float) -> None:
    """Until the master lists `count` workers ALIVE; on timeout, or when a daemon exits, show
    the logs, stop what was started and fail."""
    log(f"waiting up to {timeout:g} s for {count} worker(s) to register with the master ...")
    started = time.monotonic()
    while True:
        page = daemons.master_page(settings.webui_port) or {}
        alive = sum(w.get("state") == "ALIVE" for w in page.get("workers", []))
        if alive >= count:
            log(f"{alive} worker(s) ALIVE after {time.monotonic() - started:.0f} s")
            return
        dead = [d.name for d in daemons.recorded(layout) if d not in _running(layout)]
        if dead or time.monotonic() - started >= timeout:
            why = f"{dead[0]} exited" if dead else f"only {alive} of {count} worker(s) ALIVE " \
                                                  f"after {timeout:g} s"
            for daemon in daemons.recorded(layout):
                daemons.log_tail(layout.log_file(daemon))
            _stop_all(layout, 10)
            raise LaunchError(f"cluster up failed: {why} (master page "
                              f"http://{HOST}:{settings.webui_port}/json/).",
                              "What it had started was stopped again; the logs stay in "
                              "work/cluster/logs/.")
        time.sleep(1)


def up(layout: Layout, args: list[str], env: dict[str, str]) -> int:
    opts = parse_options("up", args, UP_DEFAULTS)
    settings = Settings(opts["--port"], opts["--webui-port"], opts["--workers"], opts["--cores"],
                        opts["--memory"])
    if running := _running(layout):
        raise LaunchError("a cluster started from this directory is still running ("
                          + ", ".join(f"{d.name} PID {pid}" for d, pid in running.items()) + ").",
                          "See it with ./spark-submit.sh cluster status; stop it with "
                          "./spark-submit.sh cluster down.")
    ports = [settings.port, settings.webui_port,
             *range(settings.webui_port + 1, settings.webui_port + settings.workers + 1)]
    for port in ports:
        if daemons.port_in_use(port):
            raise LaunchError(f"port {port} on {HOST} is already in use (another Spark master, "
                              "worker or web UI?).", "Choose free ones: ./spark-submit.sh "
                              "cluster up --port P --webui-port W")
    # What a previous cluster left: stale PID files, its executors' directories.
    for stale in [layout.pids, *layout.root.glob("worker-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    settings.save(layout)
    daemons.start(layout, Daemon("master", 1), ["--host", HOST, "--port", str(settings.port),
                                                "--webui-port", str(settings.webui_port)], env)
    for i in range(1, settings.workers + 1):
        daemons.start(layout, Daemon("worker", i), _worker_args(settings, i), env)
    wait_for_workers(layout, settings, settings.workers, opts["--timeout"])
    status(layout)
    log(f"submit with: ./spark-submit.sh pipeline --master {settings.url} "
        "--conf conf/cluster-loopback.yaml")
    return 0


def add_worker(layout: Layout, args: list[str], env: dict[str, str]) -> int:
    parse_options("add-worker", args, {})
    settings = Settings.load(layout)
    if settings is None:
        raise LaunchError("no cluster recorded in work/cluster/: start one with "
                          "./spark-submit.sh cluster up")
    if Daemon("master", 1) not in _running(layout):
        raise LaunchError("the master recorded in work/cluster/ is not running: "
                          "./spark-submit.sh cluster down, then up")
    recorded = daemons.recorded(layout)
    instance = next(i for i in range(1, len(recorded) + 2) if Daemon("worker", i) not in recorded)
    if daemons.port_in_use(settings.webui_port + instance):
        raise LaunchError(f"port {settings.webui_port + instance} (web UI of worker {instance}) "
                          "is already in use")
    worker = Daemon("worker", instance)
    daemons.start(layout, worker, _worker_args(settings, instance), env)
    settings = dataclasses.replace(settings, workers=instance)
    settings.save(layout)
    # The master may still list a dead worker as ALIVE for a moment: wait for the new one's
    # own word that it registered, then for the master's count.
    started = time.monotonic()
    while "Successfully registered with master" not in _read(layout.log_file(worker)):
        if worker not in _running(layout) or time.monotonic() - started >= UP_DEFAULTS["--timeout"]:
            daemons.log_tail(layout.log_file(worker))
            raise LaunchError(f"{worker.name} did not register with the master "
                              f"(log {layout.log_file(worker)})")
        time.sleep(1)
    live = sum(d.role == "worker" for d in _running(layout))
    wait_for_workers(layout, settings, live, UP_DEFAULTS["--timeout"])
    return 0


def _read(path: Path | None) -> str:
    return path.read_text(errors="replace") if path is not None and path.is_file() else ""


def down(layout: Layout, args: list[str]) -> int:
    timeout = parse_options("down", args, DOWN_DEFAULTS)["--timeout"]
    if not daemons.recorded(layout):
        log("no cluster recorded in work/cluster/: nothing to stop")
        Settings.path(layout).unlink(missing_ok=True)
        return 0
    if not _stop_all(layout, timeout):
        return 1
    log("cluster stopped; no process left in work/cluster/")
    return 0


def status(layout: Layout) -> int:
    settings = Settings.load(layout)
    if settings is None:
        print("no cluster started from this directory (no work/cluster/cluster.json)")
        return 1
    ok = True
    print(f"master     {settings.url}   web UI http://{HOST}:{settings.webui_port}")
    page = daemons.master_page(settings.webui_port)
    if page is None:
        print("state      master not answering")
        ok = False
    else:
        workers = page.get("workers", [])
        print(f"state      {page.get('status', '?')}")
        print(f"workers    {sum(w.get('state') == 'ALIVE' for w in workers)} ALIVE "
              f"({settings.workers} started here)")
        for w in workers:
            print(f"  {w.get('id')}  {w.get('host')}:{w.get('port')}  {w.get('state')}  "
                  f"cores {w.get('cores')}  memory {w.get('memory')} MB")
        for key, label in (("activeapps", "running"), ("completedapps", "completed")):
            for a in page.get(key, []):
                print(f"app        {a.get('id')}  {a.get('state')} ({label})  {a.get('name')}")
    print("processes  (spark-daemon.sh PID files in work/cluster/pids/, logs in work/cluster/logs/)")
    running = _running(layout)
    for daemon, pid in daemons.recorded(layout).items():
        ok = ok and daemon in running
        print(f"  {daemon.name:<9} PID {pid:<8} {'running' if daemon in running else 'not running'}")
    return 0 if ok else 1
