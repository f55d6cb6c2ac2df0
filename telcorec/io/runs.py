"""Run identity and the `runs` table: what every attempt did and how it ended.

`run_id` is deterministic (run date + effective config), so a rerun reproduces its offer rows
exactly; each attempt (a pipeline, or one job run alone: score, train, ...) also gets a random
`attempt_id`. The table is append-only: an attempt writes a `running` row when it starts (with
its job, host and process id) and a final row (`succeeded`, `failed` or `rejected`) when it
ends. While it runs it beats (telcorec/io/heartbeat.py); an attempt whose beat stopped without a
final row is `abandoned`: `./spark-submit.sh runs` shows it so at once, and the next attempt
that starts appends its `abandoned` row. A killed attempt is never shown `succeeded`.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import gc
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core import schemas
from telcorec.core.columns import Col, RunStatus
from telcorec.core.config import Config
from telcorec.core.exceptions import GateRejected, TelcorecError
from telcorec.io import delta_rs, heartbeat, metrics_store

log = logging.getLogger(__name__)

_ACTIVE: contextvars.ContextVar["RunLog | None"] = contextvars.ContextVar("attempt", default=None)


def run_id(cfg: Config, run_date: dt.date) -> str:
    """Same run date and config -> same id, so a rerun reproduces its rows exactly."""
    return f"{run_date:%Y%m%d}-{cfg.fingerprint()[:8]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def heartbeats_dir(runs_table: Path) -> Path:
    """The attempts' heartbeat files, beside the `runs` table under the warehouse root."""
    return Path(runs_table).parent / heartbeat.DIRECTORY


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=to_arrow_schema(schemas.RUNS))


@dataclass
class RunLog:
    path: Path
    cfg: Config
    run_date: dt.date
    job: str | None = None
    progress: Callable[[], list[str]] = list  # the stages done so far, for the heartbeat
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: dt.datetime = field(default_factory=_now)
    host: str = field(default_factory=heartbeat.this_host)
    pid: int = field(default_factory=os.getpid)
    beating: heartbeat.Heartbeat | None = None

    def _row(self, status: str, **extra) -> dict:
        return {Col.RUN_DATE: self.run_date, Col.RUN_ID: run_id(self.cfg, self.run_date),
                Col.ATTEMPT_ID: self.attempt_id, Col.STATUS: status,
                Col.STARTED_AT: self.started_at, Col.ENDED_AT: None,
                Col.CONFIG_HASH: self.cfg.fingerprint(), Col.MODEL_VERSION: None,
                Col.COUNTS: None, Col.METRICS_JSON: None, Col.MESSAGE: None,
                Col.JOB: self.job, Col.HOST: self.host, Col.PID: self.pid, **extra}

    def start(self) -> None:
        """Record the attempts found dead, then beat, then write this one's `running` row (a
        listing that sees the row also sees the beat)."""
        beats = heartbeats_dir(self.path)
        record_abandoned(self.path, self.cfg.runs.heartbeat_timeout_seconds, by=self.attempt_id)
        self.beating = heartbeat.Heartbeat(beats, self.attempt_id, self.cfg.runs.heartbeat_seconds,
                                           self.progress, self.host, self.pid)
        self.beating.start()
        try:
            _append(self.path, [self._row(RunStatus.RUNNING)])
        except Exception:
            self.beating.stop()
            raise

    def finish(self, status: str, *, counts: dict | None = None, metrics: dict | None = None,
               model_version: str | None = None, message: str | None = None) -> None:
        row = self._row(status, **{
            Col.ENDED_AT: _now(), Col.MODEL_VERSION: model_version,
            Col.COUNTS: json.dumps(counts, default=str) if counts is not None else None,
            Col.METRICS_JSON: json.dumps(metrics) if metrics is not None else None,
            Col.MESSAGE: message})
        try:
            _append(self.path, [row])
        finally:
            if self.beating is not None:
                self.beating.stop()
        log.info("run %s attempt %s: %s", run_id(self.cfg, self.run_date), self.attempt_id, status)


def lineage(cfg: Config, run_date: dt.date) -> dict[str, str | None]:
    """Which run (and attempt, inside a recorded one) is producing an artifact now: what a
    model's manifest records, so offers can name the run that trained their model."""
    active = _ACTIVE.get()
    return {"run_id": run_id(cfg, run_date),
            "attempt_id": active.attempt_id if active is not None else None,
            "job": active.job if active is not None else None}


def recorded(runs_table: Path, metrics_table: Path, cfg: Config, run_date: dt.date,
             work: Callable[[dict[str, object]], None], *, job: str | None = None
             ) -> dict[str, object]:
    """Run `work` as one recorded attempt of `job`: a `running` row first, then `succeeded`
    (with the stages' counts, this run's metrics and the published model), `rejected` (the
    quality gate refused) or `failed`. `work` fills the dict it is given with each stage's
    result as the stage finishes, so a failed attempt still records how far it got. A killed
    process leaves only the `running` row and a heartbeat that stops: `abandoned`."""
    results: dict[str, object] = {}
    record = RunLog(runs_table, cfg, run_date, job, progress=lambda: list(results))
    record.start()
    token = _ACTIVE.set(record)
    try:
        work(results)
    except GateRejected as exc:
        record.finish(RunStatus.REJECTED, counts=stage_counts(results), message=str(exc),
                      metrics=metrics_store.overall_metrics(metrics_table, run_date))
        raise
    except BaseException as exc:
        # our own errors carry no row values; anything else is reported by type only, because
        # library messages can quote the data (delta-rs "Preview of invalid data")
        message = str(exc) if isinstance(exc, TelcorecError) else type(exc).__name__
        record.finish(RunStatus.FAILED, counts=stage_counts(results), message=message)
        raise
    finally:
        _ACTIVE.reset(token)
    published = results.get("score")
    # metrics only with a publish: the gate compares against the last *published* run's
    record.finish(RunStatus.SUCCEEDED, counts=stage_counts(results),
                  metrics=(metrics_store.overall_metrics(metrics_table, run_date)
                           if published else None),
                  model_version=published["model_version"] if published else None)
    return results


def stage_counts(results: dict[str, object]) -> dict[str, object]:
    """What the `counts` column keeps of each stage's result (evaluation is in `metrics`)."""
    out: dict[str, object] = {}
    for stage, value in results.items():
        if stage == "ingest":
            out[stage] = {c.table: {"read": c.read, "accepted": c.accepted,
                                    "rejected": c.rejected_by_reason} for c in value}
        elif stage != "evaluate":
            out[stage] = value
    return out


def read_rows(path: Path) -> list[dict]:
    """Every row of `runs` (rows per attempt, never per subscriber), with NULL for the columns
    a table written before them lacks."""
    if not delta_rs.is_delta_table(path):
        return []
    names = schemas.RUNS.fieldNames()
    present = [n for n in names if n in delta_rs.column_names(path)]
    rows = [{n: r.get(n) for n in names}
            for r in delta_rs.read_small(path, columns=present).to_pylist()]
    # the read leaves delta-rs objects in reference cycles; collected at interpreter exit they
    # abort the process ("terminate called without an active exception", rc 134: 1 exit of the
    # runs job in 4 measured, none in 40 with this collection)
    gc.collect()
    return rows


def _append(path: Path, rows: list[dict]) -> None:
    """Append rows to `runs`. A table written before the job / host / pid columns gains them
    with this append (schema merge; its older rows read NULL): an append, never a rewrite, so
    no row another attempt appends meanwhile can be lost."""
    if delta_rs.is_delta_table(path):
        have = set(delta_rs.column_names(path))
        if not set(schemas.RUNS.fieldNames()) <= have:
            delta_rs.append_merging_schema(_table(rows), path)
            gc.collect()  # as in read_rows: a merge leaves the same cycles
            log.info("runs table %s: columns %s added", path,
                     sorted(set(schemas.RUNS.fieldNames()) - have))
            return
    delta_rs.write_small(_table(rows), path, predicate=None)


def last_published_metrics(path: Path) -> dict[str, float] | None:
    """Metrics of the newest succeeded attempt (the table is small: rows per run, not per user)."""
    if not delta_rs.is_delta_table(path):
        return None
    runs = delta_rs.read_small(
        path, columns=[Col.STATUS, Col.ENDED_AT, Col.METRICS_JSON]).to_pylist()
    done = [r for r in runs if r[Col.STATUS] == RunStatus.SUCCEEDED and r[Col.METRICS_JSON]]
    if not done:
        return None
    return json.loads(max(done, key=lambda r: r[Col.ENDED_AT])[Col.METRICS_JSON])


# ---- attempts: the rows of `runs` folded per attempt, with the heartbeats --------------------

def _utc(ts: dt.datetime | None) -> dt.datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts


@dataclass(frozen=True)
class Attempt:
    run_date: dt.date
    run_id: str
    attempt_id: str
    job: str | None
    status: str
    started_at: dt.datetime          # UTC
    ended_at: dt.datetime | None     # abandoned: its last heartbeat
    host: str | None
    pid: int | None
    counts: dict | None
    message: str | None
    recorded: bool                   # its status is a row of `runs` (else judged from the beat)
    row: dict                        # its `running` row (the first row when there is none)

    def seconds(self, now: dt.datetime) -> float:
        return ((self.ended_at or now) - self.started_at).total_seconds()


def _ending(rows: list[dict]) -> dict | None:
    """The attempt's final row: the latest ended (an attempt taken for dead that ends after all
    records its own end after the `abandoned` row)."""
    finals = [r for r in rows if r[Col.STATUS] in RunStatus.FINAL]
    if not finals:
        return None
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return max(finals, key=lambda r: (_utc(r[Col.ENDED_AT]) or epoch,
                                      r[Col.STATUS] != RunStatus.ABANDONED))


def attempts(rows: list[dict], beats: dict[str, heartbeat.Beat], now: dt.datetime,
             timeout: float, host: str,
             alive: Callable[[int, str | None], bool] = heartbeat.process_alive) -> list[Attempt]:
    """Every attempt in `rows` (rows of `runs`), newest first, with its status: its final row's,
    else `abandoned` when its heartbeat says it is dead, else `running`."""
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r[Col.ATTEMPT_ID], []).append(r)
    out = []
    for attempt_id, mine in grouped.items():
        first = next((r for r in mine if r[Col.STATUS] == RunStatus.RUNNING), mine[0])
        started = _utc(first[Col.STARTED_AT])
        end, beat = _ending(mine), beats.get(attempt_id)
        if end is not None:
            status, ended, message = end[Col.STATUS], _utc(end[Col.ENDED_AT]), end[Col.MESSAGE]
            counts = json.loads(end[Col.COUNTS]) if end[Col.COUNTS] else None
        else:
            reason = heartbeat.dead_reason(beat, started.timestamp(), now.timestamp(), timeout,
                                           host, alive)
            status = RunStatus.RUNNING if reason is None else RunStatus.ABANDONED
            ended = (None if reason is None or beat is None
                     else dt.datetime.fromtimestamp(beat.beat_at, dt.timezone.utc))
            done = list(beat.done) if beat is not None else []
            counts = {"done": done} if done else None
            message = reason and (f"abandoned: {reason}"
                                  + (f"; stages done: {', '.join(done)}" if done else ""))
        out.append(Attempt(first[Col.RUN_DATE], first[Col.RUN_ID], attempt_id, first[Col.JOB],
                           status, started, ended, first[Col.HOST], first[Col.PID], counts,
                           message, end is not None, first))
    return sorted(out, key=lambda a: a.started_at, reverse=True)


def current_attempts(path: Path, timeout: float, now: dt.datetime | None = None
                     ) -> list[Attempt]:
    """The attempts of the `runs` table at `path` as they stand now, newest first."""
    # beats before rows: an attempt that ends between the two reads then shows its final row,
    # never a missing beat beside a lone `running` row
    beats = heartbeat.read_all(heartbeats_dir(path))
    rows = read_rows(path)
    return attempts(rows, beats, now or dt.datetime.now(dt.timezone.utc), timeout,
                    heartbeat.this_host())


def record_abandoned(path: Path, timeout: float, by: str | None = None) -> list[str]:
    """Append an `abandoned` row for every attempt found dead without a final row (one commit),
    remove the beats of ended attempts; the ids recorded. `by`: the attempt that noticed."""
    found = current_attempts(path, timeout)
    dead = [a for a in found if a.status == RunStatus.ABANDONED and not a.recorded]
    beats = heartbeats_dir(path)
    if dead:
        noticed = f" (recorded by attempt {by})" if by else ""
        _append(path, [{
            **a.row, Col.STATUS: RunStatus.ABANDONED, Col.ENDED_AT: a.ended_at,
            Col.MODEL_VERSION: None, Col.METRICS_JSON: None,
            Col.COUNTS: json.dumps(a.counts) if a.counts else None,
            Col.MESSAGE: f"{a.message}{noticed}"} for a in dead])
        for a in dead:
            log.warning("attempt %s (%s, run %s, started %s) %s",
                        a.attempt_id, a.job or "job unknown", a.run_id,
                        f"{a.started_at:%Y-%m-%d %H:%M:%S} UTC", a.message)
    for a in found:
        if a.recorded or a.status == RunStatus.ABANDONED:
            heartbeat.remove(beats, a.attempt_id)
    return [a.attempt_id for a in dead]


# ---- the listing of `./spark-submit.sh runs` -------------------------------------------------

def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def counts_summary(counts: dict | None) -> str:
    """An attempt's counts in a few words: its stages, offers published, input rows rejected."""
    if not counts:
        return ""
    if set(counts) == {"done"}:  # an abandoned attempt: the stages its heartbeat reported
        return "done: " + ", ".join(counts["done"])
    stages = list(counts)
    parts = [", ".join(stages) if len(stages) <= 3 else f"{stages[0]}..{stages[-1]} ({len(stages)})"]
    score = counts.get("score")
    if isinstance(score, dict) and isinstance(score.get("offers"), int):
        parts.append(f"offers {score['offers']:,}")
    ingest = counts.get("ingest")
    if isinstance(ingest, dict):
        rejected = sum(sum(t.get("rejected", {}).values()) for t in ingest.values()
                       if isinstance(t, dict))
        parts.append(f"rejected {rejected:,}")
    return "; ".join(parts)


def listing(found: list[Attempt], now: dt.datetime) -> str:
    """The attempts as a table, newest first; why an attempt failed, was rejected or abandoned
    on the line below it."""
    header = ("run date", "run id", "attempt", "job", "status", "started (UTC)", "duration",
              "counts")
    lines = [(str(a.run_date), a.run_id, a.attempt_id, a.job or "-", a.status,
              f"{a.started_at:%Y-%m-%d %H:%M:%S}", duration(a.seconds(now)),
              counts_summary(a.counts)) for a in found]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for a, row in zip([None, *found], [header, *lines]):
        out.append("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1])
        if a is not None and a.message and a.status != RunStatus.SUCCEEDED:
            where = f" [host {a.host}, pid {a.pid}]" if a.host else ""
            out.append(f"    {a.message}{where}")
    return "\n".join(line.rstrip() for line in out)
