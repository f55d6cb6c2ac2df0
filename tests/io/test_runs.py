"""The `runs` record of an attempt: how it ended, for the pipeline and for a job run alone."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from helpers import REPO
from helpers.fault_injection import session_members
from telcorec.core import config, schemas
from telcorec.core.columns import Col, RunStatus
from telcorec.core.exceptions import ConfigError, GateRejected
from telcorec.io import heartbeat, runs

RUN_DATE = dt.date(2026, 11, 23)


def _statuses(path):
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return [(r[Col.ATTEMPT_ID], r[Col.STATUS], r[Col.MESSAGE], r[Col.MODEL_VERSION])
            for r in sorted(rows, key=lambda r: (r[Col.STARTED_AT], r[Col.ENDED_AT] is not None))]


@pytest.mark.parametrize("error, status, message", [
    (None, RunStatus.SUCCEEDED, None),
    (GateRejected("quality gate refused to publish: coverage 1% below 20%"), RunStatus.REJECTED,
     "quality gate refused to publish: coverage 1% below 20%"),
    # a library error may quote row values: only its type is kept
    (ValueError("Preview of invalid data: +4570000001"), RunStatus.FAILED, "ValueError"),
])
def test_an_attempt_is_running_then_ends_once(tmp_path, error, status, message):
    cfg = config.load("conf/local.yaml")

    def work(results):
        results["score"] = {"offers": 10, "model_version": "lightfm_warp-x"}
        if error is not None:
            raise error

    table = tmp_path / "runs"
    if error is None:
        out = runs.recorded(table, tmp_path / "metrics", cfg, RUN_DATE, work)
        assert out["score"]["offers"] == 10
    else:
        with pytest.raises(type(error)):
            runs.recorded(table, tmp_path / "metrics", cfg, RUN_DATE, work)
    rows = _statuses(table)
    assert [r[1] for r in rows] == [RunStatus.RUNNING, status]
    assert rows[0][0] == rows[1][0]  # one attempt id
    assert rows[1][2] == message
    assert rows[1][3] == ("lightfm_warp-x" if error is None else None)
    assert "+4570000001" not in str(rows)


# ---- attempts folded from literal rows and heartbeats -----------------------------------------

NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.timezone.utc)
HOST = "here"


def _at(minutes: float) -> dt.datetime:
    """`minutes` before NOW, as the runs table returns timestamps (UTC)."""
    return NOW - dt.timedelta(minutes=minutes)


def _row(attempt, status, started, ended=None, *, job="score", host=HOST, pid=100, **extra):
    return {Col.RUN_DATE: RUN_DATE, Col.RUN_ID: f"run-{attempt}", Col.ATTEMPT_ID: attempt,
            Col.STATUS: status, Col.STARTED_AT: started, Col.ENDED_AT: ended,
            Col.CONFIG_HASH: "c", Col.MODEL_VERSION: None, Col.COUNTS: None,
            Col.METRICS_JSON: None, Col.MESSAGE: None, Col.JOB: job, Col.HOST: host,
            Col.PID: pid, **extra}


def _beat(attempt, minutes_ago, *, host=HOST, pid=100, done=()):
    return heartbeat.Beat(attempt, host, pid, "1", _at(minutes_ago).timestamp(), tuple(done))


def test_attempts_take_status_from_the_final_row_else_from_the_heartbeat():
    rows = [
        _row("ok", RunStatus.RUNNING, _at(60)),
        _row("ok", RunStatus.SUCCEEDED, _at(60), _at(50),
             **{Col.COUNTS: '{"score": {"offers": 6000}}'}),
        _row("fresh-elsewhere", RunStatus.RUNNING, _at(30), host="other", pid=7),
        _row("stale-elsewhere", RunStatus.RUNNING, _at(40), host="other", pid=7),
        _row("gone-here", RunStatus.RUNNING, _at(20), pid=42),
        _row("starting", RunStatus.RUNNING, _at(0.5)),        # row written, beat not read yet
        _row("no-beat", RunStatus.RUNNING, _at(10)),
        # written before job/host/pid existed, killed long ago: NULLs, no beat
        _row("old", RunStatus.RUNNING, _at(600), job=None, host=None, pid=None),
        # taken for dead, then it ended after all: its own end wins
        _row("late", RunStatus.RUNNING, _at(90)),
        _row("late", RunStatus.ABANDONED, _at(90), _at(85)),
        _row("late", RunStatus.SUCCEEDED, _at(90), _at(80)),
    ]
    beats = {"fresh-elsewhere": _beat("fresh-elsewhere", 0.5, host="other", pid=7),
             "stale-elsewhere": _beat("stale-elsewhere", 3, host="other", pid=7,
                                      done=["ingest", "features"]),
             "gone-here": _beat("gone-here", 0.1, pid=42)}
    alive = {100: True, 42: False}  # this host's processes by pid
    found = runs.attempts(rows, beats, NOW, timeout=120, host=HOST,
                          alive=lambda pid, started: alive[pid])
    got = [(a.attempt_id, a.status, a.recorded, a.ended_at, a.message) for a in found]
    assert got == [
        ("starting", RunStatus.RUNNING, False, None, None),
        ("no-beat", RunStatus.ABANDONED, False, None, "abandoned: no heartbeat file"),
        ("gone-here", RunStatus.ABANDONED, False, _at(0.1), "abandoned: its process is gone"),
        ("fresh-elsewhere", RunStatus.RUNNING, False, None, None),
        ("stale-elsewhere", RunStatus.ABANDONED, False, _at(3),
         "abandoned: last heartbeat 180 s ago (timeout 120 s); stages done: ingest, features"),
        ("ok", RunStatus.SUCCEEDED, True, _at(50), None),
        ("late", RunStatus.SUCCEEDED, True, _at(80), None),
        ("old", RunStatus.ABANDONED, False, None, "abandoned: no heartbeat file"),
    ]
    by_id = {a.attempt_id: a for a in found}
    assert by_id["ok"].counts == {"score": {"offers": 6000}}
    assert by_id["stale-elsewhere"].counts == {"done": ["ingest", "features"]}
    assert by_id["stale-elsewhere"].seconds(NOW) == 37 * 60  # started 40 min ago, beat 3 min ago


def test_a_beat_within_the_timeout_keeps_an_attempt_of_another_host_running_until_it_ages():
    rows = [_row("a", RunStatus.RUNNING, _at(10), host="other")]
    beats = {"a": _beat("a", 1.9, host="other")}
    never = lambda pid, started: pytest.fail("another host's pid is never looked up")  # noqa: E731
    assert runs.attempts(rows, beats, NOW, 120, HOST, never)[0].status == RunStatus.RUNNING
    later = NOW + dt.timedelta(seconds=7)  # the beat is now 121 s old
    assert runs.attempts(rows, beats, later, 120, HOST, never)[0].status == RunStatus.ABANDONED


def test_listing_shows_newest_first_with_durations_counts_and_why():
    rows = [
        _row("a1", RunStatus.RUNNING, _at(125), job="pipeline"),
        _row("a1", RunStatus.SUCCEEDED, _at(125), _at(60), job="pipeline", **{
            Col.COUNTS: '{"generate": {}, "ingest": {"cdr": {"read": 10, "accepted": 7, '
                        '"rejected": {"null_key": 2, "absurd_duration": 1}}}, "features": {}, '
                        '"score": {"offers": 12345}}'}),
        _row("a2", RunStatus.RUNNING, _at(1), pid=42),
        _row("a3", RunStatus.RUNNING, _at(5), job="train"),
        _row("a3", RunStatus.FAILED, _at(5), _at(4.5), job="train",
             **{Col.MESSAGE: "ValueError"}),
    ]
    beats = {"a2": _beat("a2", 0.5, pid=42, done=["ingest"])}  # beat 30 s after its start
    found = runs.attempts(rows, beats, NOW, 120, HOST, lambda pid, started: False)
    assert runs.listing(found, NOW).splitlines() == [
        "run date    run id  attempt  job       status     started (UTC)        duration  counts",
        "2026-11-23  run-a2  a2       score     abandoned  2026-11-23 11:59:00  30s       "
        "done: ingest",
        "    abandoned: its process is gone; stages done: ingest [host here, pid 42]",
        "2026-11-23  run-a3  a3       train     failed     2026-11-23 11:55:00  30s",
        "    ValueError [host here, pid 100]",
        "2026-11-23  run-a1  a1       pipeline  succeeded  2026-11-23 09:55:00  1h05m     "
        "generate..score (4); offers 12,345; rejected 3",
    ]


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (59.6, "1m00s"), (61, "1m01s"),
                                           (3599, "59m59s"), (3600, "1h00m"), (86399, "23h59m")])
def test_durations_read_at_a_glance(seconds, text):
    assert runs.duration(seconds) == text


def test_heartbeat_rewrites_its_file_until_stopped(tmp_path):
    done = ["ingest"]
    beating = heartbeat.Heartbeat(tmp_path, "abc", 0.05, lambda: list(done))
    beating.start()
    first = heartbeat.read_all(tmp_path)["abc"]
    assert (first.host, first.pid, first.done) == (heartbeat.this_host(), os.getpid(), ("ingest",))
    assert first.process_start == heartbeat.process_start(os.getpid()) is not None
    done.append("features")
    deadline = time.monotonic() + 10
    while heartbeat.read_all(tmp_path)["abc"].done != ("ingest", "features"):
        assert time.monotonic() < deadline, "the heartbeat was not rewritten"
        time.sleep(0.02)
    assert heartbeat.read_all(tmp_path)["abc"].beat_at > first.beat_at
    beating.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no beat, no temporary file left


def test_a_process_that_ended_or_whose_pid_was_reused_is_not_alive():
    assert heartbeat.process_alive(os.getpid(), heartbeat.process_start(os.getpid()))
    assert not heartbeat.process_alive(os.getpid(), "another start")  # pid reused
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not heartbeat.process_alive(child.pid, None)


def test_heartbeat_timeout_must_leave_room_for_a_late_beat():
    cfg = config.load("conf/local.yaml")
    assert cfg.with_overrides(**{"runs.heartbeat_seconds": 1.0,
                                 "runs.heartbeat_timeout_seconds": 2.0}).runs.heartbeat_seconds == 1
    with pytest.raises(ConfigError, match="runs.heartbeat_timeout_seconds"):
        cfg.with_overrides(**{"runs.heartbeat_timeout_seconds": 50.0})  # beat every 30 s
    # watching attempts more closely changes no result: the run id stays the same
    faster = cfg.with_overrides(**{"runs.heartbeat_seconds": 1.0,
                                   "runs.heartbeat_timeout_seconds": 3.0})
    assert runs.run_id(faster, RUN_DATE) == runs.run_id(cfg, RUN_DATE)


OLD_RUNS = pa.schema([  # the table as it was written before job, host and pid
    (Col.RUN_DATE, pa.date32()), (Col.RUN_ID, pa.string()), (Col.ATTEMPT_ID, pa.string()),
    (Col.STATUS, pa.string()), (Col.STARTED_AT, pa.timestamp("us", tz="UTC")),
    (Col.ENDED_AT, pa.timestamp("us", tz="UTC")), (Col.CONFIG_HASH, pa.string()),
    (Col.MODEL_VERSION, pa.string()), (Col.COUNTS, pa.string()), (Col.METRICS_JSON, pa.string()),
    (Col.MESSAGE, pa.string())])


def test_an_old_runs_table_gains_the_columns_and_its_lone_running_row_is_recorded_abandoned(tmp_path):
    table = tmp_path / "runs"
    killed_long_ago = {c: None for c in OLD_RUNS.names} | {
        Col.RUN_DATE: RUN_DATE, Col.RUN_ID: "old-run", Col.ATTEMPT_ID: "old-attempt",
        Col.STATUS: RunStatus.RUNNING, Col.STARTED_AT: dt.datetime(2026, 1, 1),
        Col.CONFIG_HASH: "c"}
    write_deltalake(str(table), pa.Table.from_pylist([killed_long_ago], schema=OLD_RUNS),
                    partition_by=[Col.RUN_DATE])
    cfg = config.load("conf/local.yaml")
    runs.recorded(table, tmp_path / "metrics", cfg, RUN_DATE, lambda done: None, job="train")
    assert sorted(DeltaTable(str(table)).schema().to_pyarrow().names) == sorted(
        schemas.RUNS.fieldNames())
    assert DeltaTable(str(table)).version() == 3  # appends only: abandoned, running, succeeded
    rows = sorted(runs.read_rows(table), key=lambda r: (r[Col.STARTED_AT],
                                                        r[Col.STATUS] != RunStatus.RUNNING))
    ours = [r for r in rows if r[Col.ATTEMPT_ID] != "old-attempt"]
    assert [(r[Col.ATTEMPT_ID], r[Col.STATUS], r[Col.JOB], r[Col.HOST], r[Col.PID])
            for r in rows[:2]] == [("old-attempt", RunStatus.RUNNING, None, None, None),
                                   ("old-attempt", RunStatus.ABANDONED, None, None, None)]
    assert rows[1][Col.MESSAGE] == ("abandoned: no heartbeat file (recorded by attempt "
                                    f"{ours[0][Col.ATTEMPT_ID]})")
    assert [(r[Col.STATUS], r[Col.JOB], r[Col.HOST], r[Col.PID]) for r in ours] == [
        (RunStatus.RUNNING, "train", heartbeat.this_host(), os.getpid()),
        (RunStatus.SUCCEEDED, "train", heartbeat.this_host(), os.getpid())]
    assert not any(runs.heartbeats_dir(table).iterdir())  # the ended attempt's beat is gone
    # the next start finds nothing more to record
    assert runs.record_abandoned(table, cfg.runs.heartbeat_timeout_seconds) == []


# ---- a real job killed with SIGKILL -----------------------------------------------------------




def _wait_for_beat(beats: Path, job: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + 300
    while not list(beats.glob("*.json")):
        assert job.poll() is None, f"the job ended before it beat:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no heartbeat within 300 s"
        time.sleep(0.1)
    return next(beats.glob("*.json")).stem


def test_kill_9_of_a_running_job_shows_it_abandoned_and_the_next_start_records_it(tmp_path):
    """The launcher's process becomes the job's JVM (spark-submit execs into it); its Python
    driver is a child of it. kill -9 of that pid, then `./spark-submit.sh runs`."""
    conf, wh, log = tmp_path / "conf.yaml", tmp_path / "wh", tmp_path / "job.log"
    timeout = 30.0
    conf.write_text(f"extends: {REPO / 'conf/local.yaml'}\nwarehouse: {wh}\n"
                    "generator: {subscribers: 200}\n"
                    f"runs: {{heartbeat_seconds: 1, heartbeat_timeout_seconds: {timeout}}}\n")
    launcher = [str(REPO / "spark-submit.sh")]
    with open(log, "w") as err:
        job = subprocess.Popen([*launcher, "generate", "--conf", str(conf), "--run-date",
                                RUN_DATE.isoformat()], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=err, start_new_session=True)
    try:
        attempt = _wait_for_beat(runs.heartbeats_dir(wh / "runs"), job, log)
        os.kill(job.pid, signal.SIGKILL)
        killed = time.monotonic()
        job.wait()
        listed = subprocess.run([*launcher, "runs", "--conf", str(conf)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        seen_after = time.monotonic() - killed
    finally:
        for pid in session_members(job.pid):
            os.kill(pid, signal.SIGKILL)
    assert listed.returncode == 0, listed.stderr[-3000:]
    lines = listed.stdout.splitlines()
    mine = [i for i, line in enumerate(lines) if f"  {attempt}  " in line]
    assert len(mine) == 1, listed.stdout
    fields = lines[mine[0]].split()
    assert fields[:5] == [RUN_DATE.isoformat(), runs.run_id(config.load(conf), RUN_DATE), attempt,
                          "generate", RunStatus.ABANDONED], listed.stdout
    assert lines[mine[0] + 1].strip().startswith("abandoned: its process is gone")
    assert seen_after < timeout
    # the next attempt to start records it in `runs`
    cfg = config.load(conf)
    runs.recorded(wh / "runs", wh / "metrics", cfg, RUN_DATE, lambda done: None, job="next")
    rows = [r for r in runs.read_rows(wh / "runs") if r[Col.ATTEMPT_ID] == attempt]
    assert sorted((r[Col.STATUS], r[Col.JOB]) for r in rows) == [
        (RunStatus.ABANDONED, "generate"), (RunStatus.RUNNING, "generate")]
    assert all(r[Col.HOST] == heartbeat.this_host() and r[Col.PID] for r in rows)
    assert not (runs.heartbeats_dir(wh / "runs") / f"{attempt}.json").exists()


def test_the_runs_job_needs_no_spark_submit_and_no_jvm():
    from telcorec.launch.options import parse_job_command
    from telcorec.launch.submit import build_plan

    request = parse_job_command(["runs", "--last", "3"], REPO / "jobs")
    plan = build_plan(request, REPO, "/venv/python", "0", lambda conf: pytest.fail("no writer"),
                      {})
    assert (plan.argv, plan.env, plan.mode) == (["/venv/python", "jobs/runs.py", "--last", "3"],
                                                {}, "python")
