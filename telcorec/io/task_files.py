"""What Spark tasks run when a Delta table is written: their own Parquet files (the delta-rs
writer), and the counts a `Produce` makes of every input batch (both writers).

The delta-rs path stays distributed: every Spark task writes its own Parquet file straight into
the table directory and returns only the file's path, size and statistics; the driver then
commits those files in one Delta transaction (telcorec/io/delta_rs.py). No row passes through
the driver, and a run that dies before the commit leaves only unreferenced files (removed by
`vacuum(full=True)`), never a visible half-written table.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core.exceptions import PublishError
from telcorec.io import delta_rs

log = logging.getLogger(__name__)


class Counts(Protocol):
    """What a writing task counts beside the rows it writes (publish's ScoreCounts): the class
    called without arguments gives an empty one, `merge` adds two, and each task sends its sum
    to the driver as one small JSON string."""

    def merge(self, other: Any) -> Any: ...

    def to_json(self) -> str: ...

    @classmethod
    def from_json(cls, text: str) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Produce:
    """What a writing task makes of each input batch: `rows(batch)` gives the rows to write (in
    the table's columns) and their `counts` (a Counts class), merged over every batch and task."""
    rows: Callable[[pa.RecordBatch], tuple[pa.RecordBatch, Any]]
    counts: type


_FILE_RESULT = T.StructType([
    T.StructField("path", T.StringType(), True),    # NULL: the task wrote no row
    T.StructField("size", T.LongType(), False),
    T.StructField("stats", T.StringType(), False),
    T.StructField("rows", T.LongType(), False),
    T.StructField("counts", T.StringType(), False),  # JSON of `produce`'s counts ("" without)
])
_COUNTED = T.StructType([T.StructField("rows", T.LongType(), False),
                         T.StructField("counts", T.StringType(), False)])


def merged(counts: type, sent: Iterable[str]) -> Any:
    """The counts each task sent (JSON), merged into one."""
    return functools.reduce(lambda total, text: total.merge(counts.from_json(text)), sent,
                            counts())


def _file_schema(schema: T.StructType, partition_col: str | None) -> pa.Schema:
    # Delta keeps partition values in the log and the path, not in the data files.
    return to_arrow_schema(T.StructType([f for f in schema.fields if f.name != partition_col]))


def _checked(batch: pa.RecordBatch, required: Sequence[str],
             partition: tuple[str, str] | None) -> None:
    for name in required:
        if batch.column(name).null_count:
            raise PublishError(f"column '{name}' is declared NOT NULL but the data has "
                               "NULLs in it; nothing was committed")
    if partition is not None:
        col, value = partition
        if not pc.all(pc.equal(batch.column(col).cast(pa.string()), value)).as_py():
            raise PublishError(f"the data holds rows whose {col} is not {value}; a run "
                               "may only replace its own partition; nothing was committed")


def _write_task_files(table_path: str, subdir: str, file_schema: pa.Schema,
                      required: Sequence[str], partition: tuple[str, str] | None,
                      produce: Produce | None = None):
    """Build the function each Spark task runs: stream its batches into one Parquet file.

    The task also enforces the table's constraints (NOT NULL columns, the partition being
    written) so that a bad row fails the job before the commit, without a second pass. With
    `produce`, each input batch is first turned into the rows to write plus counts, which the
    task merges and returns beside its file (one small row per task, even one that wrote
    nothing).
    """

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        relative = f"{subdir}part-{uuid.uuid4().hex}.parquet"
        target = Path(table_path) / relative
        writer = None
        rows = 0
        total = produce.counts() if produce is not None else None
        for batch in batches:
            if produce is not None and batch.num_rows:
                batch, counts = produce.rows(batch)
                total = total.merge(counts)
            if batch.num_rows == 0:
                continue
            _checked(batch, required, partition)
            table = pa.Table.from_batches([batch]).select(file_schema.names).cast(file_schema)
            if writer is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(str(target), file_schema)
            writer.write_table(table)
            rows += batch.num_rows
        result = {"path": None, "size": 0, "stats": "", "rows": 0,
                  "counts": total.to_json() if total is not None else ""}
        if writer is not None:
            writer.close()
            result.update(path=relative, size=target.stat().st_size,
                          stats=delta_rs.file_stats(target), rows=rows)
        elif produce is None:
            return  # nothing written, nothing counted
        yield pa.RecordBatch.from_pylist([result], schema=to_arrow_schema(_FILE_RESULT))

    return write


@dataclasses.dataclass
class StagedFiles:
    """Files a write left in a table directory, not yet part of the table (delta-rs writer).

    Readers see none of them until `commit`; `discard` removes them. A run that dies between
    the two leaves orphan files only, which jobs/vacuum.py removes."""
    table_path: str
    schema: T.StructType
    partition_col: str | None
    partition_value: str | None
    read_version: int       # the table version the write started from (before any file)
    files: list[dict]       # one per written file: path, size, stats, rows
    counts: Any             # the `produce` counts merged over every batch and task (or None)
    started: float

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    def describe(self) -> str:
        return f"written: {self.rows:,} rows in {len(self.files)} files, not committed yet"

    def commit(self) -> int:
        """One atomic Delta commit of the staged files; returns the rows committed."""
        delta_rs.commit(self.table_path, to_arrow_schema(self.schema), self.files,
                        self.partition_col, self.partition_value, self.read_version)
        log.info("wrote %s: %d rows in %d files (%.1fs)", self.table_path, self.rows,
                 len(self.files), time.monotonic() - self.started)
        return self.rows

    def discard(self) -> None:
        """Remove the staged files (nothing references them): a refused publish leaves none."""
        for f in self.files:
            (Path(self.table_path) / f["path"]).unlink(missing_ok=True)


def stage(df: DataFrame, table_path: str, schema: T.StructType, partition_col: str | None,
          partition_value: str | None, produce: Produce | None) -> StagedFiles:
    """Write the files of `df` (of one partition when `partition_col` is given) into the table
    directory without committing them."""
    subdir = f"{partition_col}={partition_value}/" if partition_col else ""
    file_schema = _file_schema(schema, partition_col)
    required = [f.name for f in schema.fields if not f.nullable and f.name != partition_col]
    partition = (partition_col, partition_value) if partition_col else None
    started = time.monotonic()
    read_version = delta_rs.table_version(table_path)  # before any file is written
    results = (df.mapInArrow(_write_task_files(table_path, subdir, file_schema, required,
                                               partition, produce),
                             _FILE_RESULT)
               .collect())  # one small row per task, never per subscriber
    files = [{k: r[k] for k in ("path", "size", "stats", "rows")} for r in results
             if r["path"] is not None]
    counts = (merged(produce.counts, (r["counts"] for r in results))
              if produce is not None else None)
    return StagedFiles(table_path, schema, partition_col, partition_value, read_version, files,
                       counts, started)


def counted(df: DataFrame, produce: Produce) -> tuple[Any, int]:
    """(counts, rows) of `produce` over every batch of `df` without writing a row (a pass of
    its own; one small row per task comes back)."""

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total, rows = produce.counts(), 0
        for batch in batches:
            if batch.num_rows:
                out, counts = produce.rows(batch)
                total, rows = total.merge(counts), rows + out.num_rows
        yield pa.RecordBatch.from_pylist([{"rows": rows, "counts": total.to_json()}])

    results = df.mapInArrow(count, _COUNTED).collect()
    return merged(produce.counts, (r["counts"] for r in results)), sum(r["rows"] for r in results)


def produced(df: DataFrame, produce: Produce, schema: T.StructType) -> DataFrame:
    """The rows of `produce` over every batch of `df`, as a DataFrame of `schema`."""

    def rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield produce.rows(batch)[0]

    return df.mapInArrow(rows, schema)
