"""Run identity and the `runs` table: what every attempt did and how it ended.

`run_id` is deterministic (run date + effective config), so a rerun reproduces its offer rows
exactly; each attempt also gets a random `attempt_id`. The table is append-only: an attempt
writes a `running` row when it starts and a final row (`succeeded`, `failed` or `rejected`) when it
ends, so an attempt that was killed stays visibly `running`, never `succeeded`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core import schemas
from telcorec.core.columns import Col, RunStatus
from telcorec.core.config import Config
from telcorec.core.exceptions import GateRejected, TelcorecError
from telcorec.io import metrics_store, storage

log = logging.getLogger(__name__)


def run_id(cfg: Config, run_date: dt.date) -> str:
    """Same run date and config -> same id, so a rerun reproduces its rows exactly."""
    return f"{run_date:%Y%m%d}-{cfg.fingerprint()[:8]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class RunLog:
    path: Path
    cfg: Config
    run_date: dt.date
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: dt.datetime = field(default_factory=_now)

    def _row(self, status: str, **extra) -> pa.Table:
        row = {Col.RUN_DATE: self.run_date, Col.RUN_ID: run_id(self.cfg, self.run_date),
               Col.ATTEMPT_ID: self.attempt_id, Col.STATUS: status,
               Col.STARTED_AT: self.started_at, Col.ENDED_AT: None,
               Col.CONFIG_HASH: self.cfg.fingerprint(), Col.MODEL_VERSION: None, Col.COUNTS: None,
               Col.METRICS_JSON: None, Col.MESSAGE: None, **extra}
        return pa.Table.from_pylist([row], schema=to_arrow_schema(schemas.RUNS))

    def start(self) -> None:
        storage.write_small(self._row(RunStatus.RUNNING), self.path, predicate=None)

    def finish(self, status: str, *, counts: dict | None = None, metrics: dict | None = None,
               model_version: str | None = None, message: str | None = None) -> None:
        row = self._row(status, **{
            Col.ENDED_AT: _now(), Col.MODEL_VERSION: model_version,
            Col.COUNTS: json.dumps(counts, default=str) if counts is not None else None,
            Col.METRICS_JSON: json.dumps(metrics) if metrics is not None else None,
            Col.MESSAGE: message})
        storage.write_small(row, self.path, predicate=None)
        log.info("run %s attempt %s: %s", run_id(self.cfg, self.run_date), self.attempt_id, status)


def recorded(runs_table: Path, metrics_table: Path, cfg: Config, run_date: dt.date,
             work: Callable[[dict[str, object]], None]) -> dict[str, object]:
    """Run `work` as one recorded attempt: a `running` row first, then `succeeded` (with the
    stages' counts, this run's metrics and the published model), `rejected` (the quality gate
    refused) or `failed`. `work` fills the dict it is given with each stage's result as the
    stage finishes, so a failed attempt still records how far it got. A killed process leaves
    only the `running` row, never `succeeded`."""
    record = RunLog(runs_table, cfg, run_date)
    record.start()
    results: dict[str, object] = {}
    try:
        work(results)
    except GateRejected as exc:
        record.finish(RunStatus.REJECTED, counts=stage_counts(results), message=str(exc),
                      metrics=metrics_store.overall_metrics(metrics_table, run_date))
        raise
    except Exception as exc:
        # our own errors carry no row values; anything else is reported by type only, because
        # library messages can quote the data (delta-rs "Preview of invalid data")
        message = str(exc) if isinstance(exc, TelcorecError) else type(exc).__name__
        record.finish(RunStatus.FAILED, counts=stage_counts(results), message=message)
        raise
    published = results.get("score")
    record.finish(RunStatus.SUCCEEDED, counts=stage_counts(results),
                  metrics=metrics_store.overall_metrics(metrics_table, run_date),
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


def last_published_metrics(path: Path) -> dict[str, float] | None:
    """Metrics of the newest succeeded attempt (the table is small: rows per run, not per user)."""
    if not storage.is_delta_table(path):
        return None
    runs = DeltaTable(str(path)).to_pyarrow_table(
        columns=[Col.STATUS, Col.ENDED_AT, Col.METRICS_JSON]).to_pylist()
    done = [r for r in runs if r[Col.STATUS] == RunStatus.SUCCEEDED and r[Col.METRICS_JSON]]
    if not done:
        return None
    return json.loads(max(done, key=lambda r: r[Col.ENDED_AT])[Col.METRICS_JSON])
