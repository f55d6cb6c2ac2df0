"""The loopback cluster's plumbing without Java: Spark's PID files, spark-daemon.sh's command
line, stopping (TERM, then KILL) with a stand-in spark-daemon.sh, option parsing."""
from __future__ import annotations

import os
import sys
import textwrap

import pytest

from telcorec.launch import cluster, daemons
from telcorec.launch.daemons import CLASSES, Daemon, Layout
from telcorec.launch.messages import UsageError

MASTER, WORKER = CLASSES["master"], CLASSES["worker"]

# Starts a Python sleeper whose command line names the daemon's class (as java's does), writes
# its PID where spark-daemon.sh would and returns once the sleeper runs; `stop` sends TERM and removes the file, as
# Spark's script does. IGNORE_TERM=1 makes the sleeper ignore TERM.
FAKE_DAEMON_SH = textwrap.dedent(f"""\
    #!/usr/bin/env bash
    action=$1 class=$2 instance=$3
    pid="$SPARK_PID_DIR/spark-$SPARK_IDENT_STRING-$class-$instance.pid"
    case $action in
      start)
        nohup {sys.executable} -c 'import os, signal, sys, time
    if os.environ.get("IGNORE_TERM"): signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[2], "w").close()
    time.sleep(120)' "$class" "$pid.ready" >/dev/null 2>&1 </dev/null &
        echo $! > "$pid"
        for _ in $(seq 100); do [[ -e $pid.ready ]] && break; sleep 0.1; done ;;
      stop) kill "$(cat "$pid")" && rm -f "$pid" ;;
    esac
    """)


@pytest.fixture
def layout(tmp_path) -> Layout:
    home = tmp_path / "pyspark"
    (home / "sbin").mkdir(parents=True)
    (home / "sbin" / "spark-daemon.sh").write_text(FAKE_DAEMON_SH)
    root = tmp_path / "work" / "cluster"
    root.mkdir(parents=True)
    return Layout(root, home)


def write_pid(layout: Layout, name: str, pid: int) -> None:
    layout.pids.mkdir(parents=True, exist_ok=True)
    (layout.pids / name).write_text(f"{pid}\n")


def test_recorded_reads_sparks_pid_files_workers_first(layout):
    write_pid(layout, f"spark-telcorec-{MASTER}-1.pid", 11)
    write_pid(layout, f"spark-telcorec-{WORKER}-2.pid", 13)
    write_pid(layout, f"spark-telcorec-{WORKER}-1.pid", 12)
    write_pid(layout, f"spark-someone-{WORKER}-3.pid", 14)            # another ident
    write_pid(layout, "spark-telcorec-org.apache.spark.deploy.history.HistoryServer-1.pid", 15)
    write_pid(layout, f"spark-telcorec-{WORKER}-4.pid", 0)
    (layout.pids / f"spark-telcorec-{WORKER}-5.pid").write_text("garbage")
    found = daemons.recorded(layout)
    assert [(d.name, pid) for d, pid in found.items()] == [
        ("worker-1", 12), ("worker-2", 13), ("worker-4", 0), ("master", 11)]
    assert layout.pid_file(Daemon("worker", 2)) == layout.pids / f"spark-telcorec-{WORKER}-2.pid"


def test_spark_daemon_command_and_environment(layout):
    worker = Daemon("worker", 3)
    assert layout.command("start", worker, "spark://127.0.0.1:7077", "--cores", "2") == [
        "bash", str(layout.spark_home / "sbin" / "spark-daemon.sh"), "start", WORKER, "3",
        "spark://127.0.0.1:7077", "--cores", "2"]
    env = layout.env(worker, {"PATH": "/bin", "SPARK_NO_DAEMONIZE": "1"})
    assert env == {"PATH": "/bin", "SPARK_HOME": str(layout.spark_home),
                   "SPARK_PID_DIR": str(layout.root / "pids"),
                   "SPARK_LOG_DIR": str(layout.root / "logs"), "SPARK_IDENT_STRING": "telcorec",
                   "SPARK_WORKER_DIR": str(layout.root / "worker-3")}
    assert "SPARK_WORKER_DIR" not in layout.env(Daemon("master", 1), {})


def test_runs_class_checks_the_command_line():
    assert daemons.runs_class(os.getpid(), "pytest") or daemons.runs_class(os.getpid(), "python")
    assert not daemons.runs_class(os.getpid(), MASTER)
    assert not daemons.runs_class(2 ** 22 + 1, MASTER)   # above pid_max: never a process


@pytest.mark.parametrize("ignore_term", [False, True])
def test_start_then_stop_leaves_no_process(layout, ignore_term):
    env = {**os.environ, "IGNORE_TERM": "1" if ignore_term else ""}
    pids = [daemons.start(layout, Daemon("master", 1), [], env),
            daemons.start(layout, Daemon("worker", 1), [], env)]
    try:
        assert all(daemons.runs_class(pid, cls) for pid, cls in zip(pids, (MASTER, WORKER)))
        assert daemons.processes_under(layout.root) == sorted(pids) or set(
            daemons.processes_under(layout.root)) == set(pids)
        assert (layout.root / "worker-1").is_dir()
        daemons.stop(layout, daemons.recorded(layout), timeout=0.5)
        assert not any(daemons.runs_class(pid, cls) for pid, cls in zip(pids, (MASTER, WORKER)))
        assert daemons.recorded(layout) == {}
    finally:
        for pid in pids:
            if daemons.runs_class(pid, "time.sleep"):
                os.kill(pid, 9)


def test_stop_removes_the_pid_file_of_a_dead_daemon(layout):
    write_pid(layout, f"spark-telcorec-{WORKER}-1.pid", 2 ** 22 + 1)
    daemons.stop(layout, daemons.recorded(layout), timeout=1)
    assert daemons.recorded(layout) == {}


def test_down_without_a_cluster_stops_nothing(layout):
    assert cluster.down(layout, []) == 0
    assert cluster.status(layout) == 1


def test_cluster_options():
    opts = cluster.parse_options("up", ["--workers", "2", "--memory=512m"], cluster.UP_DEFAULTS)
    assert opts == {**cluster.UP_DEFAULTS, "--workers": 2, "--memory": "512m"}
    for bad, message in [(["--workers", "0"], "positive integer"),
                         (["--port=x"], "positive integer"), (["--memory", "4"], "size"),
                         (["--cores"], "needs a value"), (["--nope", "1"], "unknown option")]:
        with pytest.raises(UsageError, match=message):
            cluster.parse_options("up", bad, cluster.UP_DEFAULTS)


def test_settings_round_trip(layout):
    settings = cluster.Settings(port=7077, webui_port=8080, workers=2, cores=2, memory="4g")
    settings.save(layout)
    assert cluster.Settings.load(layout) == settings
    assert settings.url == "spark://127.0.0.1:7077"
