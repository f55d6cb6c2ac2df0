"""Cluster mode for real: the pipeline on a standalone master and worker on 127.0.0.1.

Everything goes through the launcher, as an operator would run it: `./spark-submit.sh cluster up`,
then `./spark-submit.sh pipeline --master spark://127.0.0.1:PORT` (telcorec/ shipped as
--py-files, .venv packed with venv-pack and shipped as --archives), a local run of the same
config for comparison, and a worker killed with SIGKILL while `score` runs. The cluster is
stopped with `cluster down` at the end, and no process may be left behind.

Slow (about 20 minutes on 2 cores) and marked `cluster`: `./spark-submit.sh test --all` runs it.
The first submission starts from an empty artifact cache (the test deletes dist/telcorec-*.zip
and dist/telcorec-env-*.tar.gz), so its figure includes packing the environment.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from helpers import REPO
from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.launch import daemons

pytestmark = pytest.mark.cluster

CLUSTER_DIR = REPO / "work" / "cluster"
DIST = REPO / "dist"
RUN_DATE = "2026-11-23"
SUBSCRIBERS = 300
JOB_TIMEOUT = 1800        # seconds for one submission; the pipeline takes ~5-7 min here
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def launcher(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "spark-submit.sh"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def get_json(url: str) -> dict | list | None:
    try:
        with _NO_PROXY.open(url, timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):  # not up yet ("Spark is starting up"), or gone
        return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_run(preferred: int, length: int) -> int:
    """First port p from `preferred` (then a few others) with p .. p+length-1 all free."""
    for start in [preferred, *range(18080, 19000, 10)]:
        if all(port_free(p) for p in range(start, start + length)):
            return start
    raise RuntimeError("no free run of ports for the master's and workers' web UIs")


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_in_cluster_dir() -> list[int]:
    """Live processes whose working directory is inside work/cluster/ (daemons, executors and
    their Python workers all run there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if (cwd == str(CLUSTER_DIR) or cwd.startswith(f"{CLUSTER_DIR}/")) and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def recorded_pids() -> dict[str, int]:
    """The daemons spark-daemon.sh recorded (master, worker-N) and their PIDs."""
    spark_home = Path(importlib.util.find_spec("pyspark").origin).parent
    layout = daemons.Layout(CLUSTER_DIR, spark_home)
    return {daemon.name: pid for daemon, pid in daemons.recorded(layout).items()}


def read_delta(path: Path, run_date: str | None = RUN_DATE) -> pd.DataFrame:
    df = DeltaTable(str(path)).to_pandas()
    if run_date is not None:
        df = df[df[Col.RUN_DATE].astype(str) == run_date]
    return df.reset_index(drop=True)


def sorted_offers(path: Path) -> pd.DataFrame:
    df = read_delta(path)[[Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK, Col.SCORE]]
    return df.sort_values([Col.SUBSCRIBER_ID, Col.RANK]).reset_index(drop=True)


def assert_same_offers(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK]
    assert len(actual) == len(expected)
    pd.testing.assert_frame_equal(actual[keys], expected[keys])
    np.testing.assert_allclose(actual[Col.SCORE], expected[Col.SCORE], rtol=0, atol=1e-6)


@dataclass
class Cluster:
    master: str
    webui: int

    def page(self) -> dict:
        page = get_json(f"http://127.0.0.1:{self.webui}/json/")
        assert page is not None, f"the master's JSON page on port {self.webui} does not answer"
        return page

    def app_ids(self) -> set[str]:
        page = self.page()
        return {a["id"] for a in page.get("activeapps", []) + page.get("completedapps", [])}


@dataclass
class Submission:
    returncode: int
    stdout: str
    stderr: str
    app_id: str | None
    registered_seconds: float | None  # launch -> the master lists the application
    total_seconds: float


def submit(cluster: Cluster | None, args: list[str], during=None) -> Submission:
    """Run the launcher with `args`; on a cluster, note when the master lists the new
    application. `during(cluster, app_id, proc)` runs once the application is registered."""
    before = cluster.app_ids() if cluster else set()
    started = time.monotonic()
    proc = subprocess.Popen(["bash", str(REPO / "spark-submit.sh"), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read stdout/stderr in the background so that a chatty job never blocks on a full pipe.
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read()))
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    app_id = registered = None
    try:
        while cluster is not None and app_id is None and proc.poll() is None:
            new = cluster.app_ids() - before
            if new:
                app_id, registered = sorted(new)[0], time.monotonic() - started
            else:
                time.sleep(0.5)
        if during is not None and app_id is not None:
            during(cluster, app_id, proc)
        proc.wait(timeout=max(1.0, JOB_TIMEOUT - (time.monotonic() - started)))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        for r in readers:
            r.join()
    return Submission(proc.returncode, out.get("stdout", ""), out.get("stderr", ""), app_id,
                      registered, time.monotonic() - started)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(pytestconfig):
    """Figures printed as they come (past pytest's capture) and once more at the end."""
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    figures: dict[str, object] = {}

    def show(text: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[cluster figures] {text}", flush=True)

    def write(key: str, value: object, text: str) -> None:
        figures[key] = value
        if text:
            show(text)

    yield write
    show(json.dumps(figures, sort_keys=True))


@pytest.fixture(scope="module")
def cluster():
    # The usual ports when they are free; others when another cluster or UI holds them.
    port = 7077 if port_free(7077) else free_port()
    webui = free_run(8080, 3)   # master, worker-1 and the worker added by the kill test
    up = launcher("cluster", "up", "--port", str(port), "--webui-port", str(webui),
                  "--workers", "1", "--cores", "2", "--memory", "4g", timeout=240)
    assert up.returncode == 0, f"cluster up failed:\n{up.stdout}\n{up.stderr}"
    pids = recorded_pids()
    try:
        yield Cluster(master=f"spark://127.0.0.1:{port}", webui=webui)
    finally:
        pids.update(recorded_pids())
        down = launcher("cluster", "down", timeout=240)
        left = processes_in_cluster_dir()
        alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
        assert down.returncode == 0, f"cluster down failed:\n{down.stderr}"
        assert not alive, f"daemons still running after cluster down: {alive}"
        assert not left, f"processes left in work/cluster/ after cluster down: {left}"
        assert not recorded_pids()


@pytest.fixture(scope="module")
def confs(tmp_path_factory):
    """The loopback config with a temporary warehouse: one for the cluster, one for local."""
    root = tmp_path_factory.mktemp("cluster")
    paths = {}
    for name in ("cluster", "local"):
        path = root / f"{name}.yaml"
        path.write_text(f"extends: {REPO / 'conf' / 'cluster-loopback.yaml'}\n"
                        f"warehouse: {root / ('wh-' + name)}\n")
        paths[name] = path
    return paths


def warehouse(conf: Path) -> Path:
    return Path(config.load(conf).warehouse)


@pytest.fixture(scope="module")
def cluster_run(cluster, confs, report):
    # A cold artifact cache, so that the first submission's figure includes building them.
    for stale in [*DIST.glob("telcorec-*.zip"), *DIST.glob("telcorec-env-*.tar.gz")]:
        stale.unlink()
    run = submit(cluster, ["pipeline", "--master", cluster.master, "--conf", str(confs["cluster"]),
                           "--subscribers", str(SUBSCRIBERS), "--run-date", RUN_DATE])
    assert run.returncode == 0, f"pipeline on the cluster failed:\n{tail(run.stderr)}"
    assert "packing .venv" in run.stderr, "the first submission should have packed .venv"
    report("first_submission_registered_s", round(run.registered_seconds, 1),
           f"first submission (zip + venv-pack + start): app registered after "
           f"{run.registered_seconds:.1f} s; whole pipeline on the cluster {run.total_seconds:.1f} s")
    report("cluster_pipeline_s", round(run.total_seconds, 1), "")
    return run


@pytest.fixture(scope="module")
def local_run(confs, report):
    run = submit(None, ["pipeline", "--conf", str(confs["local"]),
                        "--subscribers", str(SUBSCRIBERS), "--run-date", RUN_DATE])
    assert run.returncode == 0, f"local pipeline failed:\n{tail(run.stderr)}"
    report("local_pipeline_s", round(run.total_seconds, 1),
           f"the same pipeline in local[2]: {run.total_seconds:.1f} s")
    return run


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------
def test_cluster_up_lists_the_worker(cluster):
    page = cluster.page()
    assert page["status"] == "ALIVE"
    assert page["url"] == cluster.master
    workers = [w for w in page["workers"] if w["state"] == "ALIVE"]
    assert [(w["host"], w["cores"], w["memory"]) for w in workers] == [("127.0.0.1", 2, 4096)]
    status = launcher("cluster", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert cluster.master in status.stdout and "1 ALIVE" in status.stdout
    assert launcher("cluster", "up", "--port", "1", "--webui-port", "2").returncode != 0  # refused


def test_pipeline_ran_on_the_cluster_with_shipped_code_and_env(cluster, cluster_run):
    app = next(a for a in cluster.page()["completedapps"] if a["id"] == cluster_run.app_id)
    assert app["name"] == "telcorec-pipeline" and app["state"] == "FINISHED"
    worker_page = get_json(f"http://127.0.0.1:{cluster.webui + 1}/json/")
    executors = [e for e in worker_page["finishedexecutors"] + worker_page["executors"]
                 if e["appid"] == cluster_run.app_id]
    assert executors, "the worker ran no executor for the pipeline"
    app_dir = CLUSTER_DIR / "worker-1" / cluster_run.app_id
    for executor in executors:
        shipped = app_dir / str(executor["id"])
        assert (shipped / "environment" / "bin" / "python").exists()   # --archives, unpacked
        assert list(shipped.glob("telcorec-*.zip"))                      # --py-files
        log = (shipped / "stderr").read_text(errors="replace")
        assert "Unpacking an archive" in log and "telcorec-env-" in log


def test_cluster_offers_satisfy_the_contract(confs, cluster_run):
    wh = warehouse(confs["cluster"])
    k = config.load(confs["cluster"]).scoring.k
    offers = read_delta(wh / "offers")
    features = read_delta(wh / "subscriber_features")
    assert len(features) == SUBSCRIBERS
    per_sub = offers.groupby(Col.SUBSCRIBER_ID).agg(
        n=(Col.RANK, "size"), ranks=(Col.RANK, lambda r: tuple(sorted(r))),
        distinct=(Col.OFFER_ID, "nunique"))
    assert set(per_sub.index) == set(features[Col.SUBSCRIBER_ID])
    assert (per_sub["n"] == k).all() and (per_sub["distinct"] == k).all()
    assert (per_sub["ranks"] == tuple(range(1, k + 1))).all()
    current = features[[Col.SUBSCRIBER_ID, Col.CURRENT_OFFER_ID]].rename(
        columns={Col.CURRENT_OFFER_ID: Col.OFFER_ID})
    assert offers.merge(current, on=[Col.SUBSCRIBER_ID, Col.OFFER_ID], how="inner").empty
    assert np.isfinite(offers[Col.SCORE]).all()


def test_cluster_offers_equal_local_offers(confs, cluster_run, local_run, report):
    cluster_offers = sorted_offers(warehouse(confs["cluster"]) / "offers")
    local_offers = sorted_offers(warehouse(confs["local"]) / "offers")
    same = (cluster_offers[[Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK]]
            .eq(local_offers[[Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK]]).all(axis=1).mean())
    diff = float(np.abs(cluster_offers[Col.SCORE] - local_offers[Col.SCORE]).max())
    report("offers_identical_share", float(same),
           f"cluster vs local offers: {same:.1%} of rows identical, max |score diff| {diff:.2e}")
    assert_same_offers(cluster_offers, local_offers)


def test_worker_killed_during_scoring(cluster, confs, cluster_run, report):
    """Second submission: `score` alone against the pipeline's warehouse, with the worker
    killed (SIGKILL) while the scoring stage has tasks running and a new worker started.

    Either Spark re-runs the lost tasks on the new worker and the job completes with the same
    offers (one more table version), or it fails and `offers` keeps its previous version."""
    offers_path = warehouse(confs["cluster"]) / "offers"
    version_before = DeltaTable(str(offers_path)).version()
    offers_before = sorted_offers(offers_path)
    archive = next(DIST.glob("telcorec-env-*.tar.gz"))
    archive_stat = archive.stat()
    ui_port = free_port()
    events: dict[str, object] = {}

    def executor_losses(app_id: str) -> list[str]:
        executors = get_json(f"http://127.0.0.1:{ui_port}/api/v1/applications/{app_id}"
                             "/allexecutors") or []
        return [f"executor {e['id']}: {e.get('removeReason', '?')}" for e in executors
                if e["id"] != "driver" and not e.get("isActive", True)]

    def kill_worker_while_scoring(cluster: Cluster, app_id: str, proc: subprocess.Popen) -> None:
        # With the delta-rs writer the offers are computed (features -> scores -> rules ->
        # top K) inside the stage that writes their Parquet files: `collect at task_files.py`.
        # In the score job that is the only write, so it is the stage to kill the worker in.
        stages_url = f"http://127.0.0.1:{ui_port}/api/v1/applications/{app_id}/stages?status=active"
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            stages = get_json(stages_url) or []
            scoring = [s for s in stages if "task_files.py" in s.get("name", "")
                       and s.get("numActiveTasks", 0) > 0]
            if scoring:
                worker_pid = recorded_pids()["worker-1"]
                os.kill(worker_pid, signal.SIGKILL)
                events["killed"] = f"worker-1 (PID {worker_pid}) during stage " \
                                   f"{scoring[0]['stageId']} '{scoring[0]['name']}' with " \
                                   f"{scoring[0]['numActiveTasks']} task(s) running"
                break
            time.sleep(0.2)
        else:
            pytest.fail("the offers' write stage was never seen running: did the writer move? "
                        "(the test looks for an active stage whose call site is in task_files.py)")
        # The driver's own record of the loss, read while the application is still up.
        while time.monotonic() < deadline and proc.poll() is None and "lost" not in events:
            losses = executor_losses(app_id)
            if losses:
                events["lost"] = losses
            else:
                time.sleep(0.5)
        added = launcher("cluster", "add-worker", timeout=240)
        assert added.returncode == 0, f"cluster add-worker failed:\n{added.stderr}"
        events["added"] = True

    run = submit(cluster, ["score", "--master", cluster.master, "--conf", str(confs["cluster"]),
                           "--run-date", RUN_DATE, "--spark-conf", f"spark.ui.port={ui_port}"],
                 during=kill_worker_while_scoring)

    # Second submission: nothing rebuilt.
    assert "reusing dist/telcorec-env-" in run.stderr and "packing .venv" not in run.stderr
    assert (archive.stat().st_mtime_ns, archive.stat().st_ino) == (archive_stat.st_mtime_ns,
                                                                   archive_stat.st_ino)
    report("second_submission_registered_s", round(run.registered_seconds, 1),
           f"second submission (cached zip and env): app registered after "
           f"{run.registered_seconds:.1f} s (first: {cluster_run.registered_seconds:.1f} s)")
    assert "killed" in events, "the worker was not killed"

    version_after = DeltaTable(str(offers_path)).version()
    lost = events.get("lost", [])
    if run.returncode == 0:
        outcome = "completed: Spark re-ran the lost tasks on the new worker"
        assert version_after == version_before + 1
    else:
        outcome = f"failed cleanly (exit {run.returncode}); offers kept version {version_before}"
        assert version_after == version_before, "a failed run must not commit to offers"
    report("worker_kill_outcome", outcome,
           f"worker kill: {events['killed']}; {outcome}; the driver recorded "
           f"{'; '.join(lost) or 'no executor loss'}")
    assert lost, "the driver never recorded the executor loss: the kill came too late"
    assert_same_offers(sorted_offers(offers_path), offers_before)
