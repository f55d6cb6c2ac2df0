"""Helpers for tests/stages/test_concurrency_and_faults.py: task faults injected into the real delta-rs
writer's Spark tasks, and content digests of Delta tables.

A fault fires only in a task's first attempt (TaskContext.attemptNumber() == 0), after the task
has streamed all its rows into its Parquet file but before it closes it, so every failed attempt
leaves a partial file behind: the case where a retried task could double its rows.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

from deltalake import DeltaTable
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.io import task_files

MODES = ("one", "all", "exit")  # fail partition 0 | fail every partition | kill partition 1's worker


def _faulty(write, mode: str, markers: str):
    """Wrap one write task function so that its first attempt fails as `mode` says."""

    def attempt(batches):
        context = TaskContext.get()
        first = context.attemptNumber() == 0
        chosen = {"one": context.partitionId() == 0, "all": True,
                  "exit": context.partitionId() == 1}[mode]

        def rows_then_fault():
            yield from batches
            if first and chosen:
                # one marker per injected fault, so the test can count them
                Path(markers, f"{context.stageId()}-{context.partitionId()}-{uuid.uuid4().hex}"
                     ).touch()
                if mode == "exit":
                    os._exit(1)  # the Python worker dies as an OOM kill would take it
                raise RuntimeError(f"injected fault in partition {context.partitionId()}")

        yield from write(rows_then_fault())

    return attempt


@contextlib.contextmanager
def write_faults(mode: str, markers: str | Path) -> Iterator[None]:
    """Inside the block, every write through telcorec.io.writer runs its tasks with `mode` faults
    and leaves one file in `markers` per fault injected."""
    if mode not in MODES:
        raise ValueError(f"fault mode {mode!r}: use one of {MODES}")
    Path(markers).mkdir(parents=True, exist_ok=True)
    build = task_files._write_task_files

    def faulty_task_files(*args, **kwargs):
        return _faulty(build(*args, **kwargs), mode, str(markers))

    task_files._write_task_files = faulty_task_files
    try:
        yield
    finally:
        task_files._write_task_files = build


def injected_faults(markers: str | Path) -> int:
    return len(list(Path(markers).iterdir())) if Path(markers).is_dir() else 0


def offer_row(run_date, subscriber_id: str | None, offer: str = "O1", **named) -> tuple:
    """One offers row (rank 1 unless `named` says otherwise) in the schema's column order;
    columns neither given nor looked at get a fixed value of their type, so new columns of the
    offers schema need no change here."""
    fixed = {T.StringType: "x", T.IntegerType: 1, T.LongType: 1, T.DoubleType: 0.5,
             T.BooleanType: False, T.DateType: run_date, T.ArrayType: ["x"]}
    named = {Col.RUN_DATE: run_date, Col.SUBSCRIBER_ID: subscriber_id, Col.OFFER_ID: offer,
             Col.RANK: 1, **named}
    return tuple(named[f.name] if f.name in named else fixed[type(f.dataType)]
                 for f in schemas.OFFERS.fields)


def offers_rows(spark: SparkSession, run_date, n: int, parts: int, offer: str = "O1") -> DataFrame:
    """`n` valid offers rows (one per subscriber, rank 1) of `run_date` in `parts` partitions."""
    rows = [offer_row(run_date, f"S{i:05d}", offer) for i in range(n)]
    return spark.createDataFrame(rows, schemas.OFFERS).repartition(parts)


def table_digest(path: str | Path, run_date=None, exclude: tuple[str, ...] = ()) -> dict:
    """Rows and SHA-256 of a Delta table's current content, independent of file and row order.

    Each row becomes canonical JSON (keys sorted; floats by repr, so any last-bit difference
    shows); the sorted lines are hashed.
    """
    filters = [(Col.RUN_DATE, "=", run_date.isoformat())] if run_date is not None else None
    rows = DeltaTable(str(path)).to_pyarrow_table(partitions=filters).to_pylist()
    lines = sorted(json.dumps({k: v for k, v in row.items() if k not in exclude},
                              sort_keys=True, default=str) for row in rows)
    return {"rows": len(lines), "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def committed_and_orphan_files(path: str | Path) -> tuple[set[str], set[str]]:
    """The Parquet files the table's current version references, and the files on disk that no
    version ever referenced (orphans of writes that never committed)."""
    table = DeltaTable(str(path))
    ever = {f for v in range(table.version() + 1)
            for f in DeltaTable(str(path), version=v).files()}
    on_disk = {str(p.relative_to(path)) for p in Path(path).rglob("*.parquet")}
    return set(table.files()), on_disk - ever


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid`: a job's JVM, its Python driver and workers (the PySpark
    daemon makes a process group of its own, so a group kill alone would miss it)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids
