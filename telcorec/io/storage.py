"""Delta tables under the warehouse root: the one place that reads and writes them.

Two writers honour one table contract (STACK.md):
- `spark`: Spark's own Delta source, used when the session has Delta's SQL extension (a
  cluster started with `--packages io.delta:delta-spark_2.13:4.0.1`, Databricks);
- `delta-rs`: used in local mode, tests and CI, where Maven (and so Delta's jars) is out of reach.

The delta-rs path stays distributed: every Spark task writes its own Parquet file straight into
the table directory and returns only the file's path, size and statistics; the driver then
commits those files in one Delta transaction. No row passes through the driver, and a run that
dies before the commit leaves only unreferenced files (removed by `vacuum(full=True)`), never a
visible half-written table. deltalake 0.18 has no public call that commits files written
elsewhere, so `_commit` uses the same internal entry points its own `write_deltalake(engine=
"pyarrow")` uses; the version is pinned in setup.py and the tests read every write back.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.writer import AddAction, get_file_stats_from_metadata
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core.columns import Col
from telcorec.core.exceptions import PublishError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class TableContract(Protocol):
    """An output table's row contract (telcorec/publish/contract.py has the offers one)."""

    def enforce(self, df: DataFrame, table: str) -> None:
        """Raise when a row of `df` breaks the contract."""

_FILE_RESULT = T.StructType([
    T.StructField("path", T.StringType(), True),    # NULL: the task wrote no row
    T.StructField("size", T.LongType(), False),
    T.StructField("stats", T.StringType(), False),
    T.StructField("rows", T.LongType(), False),
    T.StructField("summary", T.StringType(), False),  # JSON {name: count} of `produce`
])
_STATS_COLUMNS = 32  # as delta-rs: min/max statistics for the first 32 columns


def is_delta_table(path: str | Path) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def choose_writer(spark: SparkSession, configured: str) -> str:
    """'spark' when asked for or when the session has Delta's extension (auto), else 'delta-rs'."""
    if configured != "auto":
        return configured
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return "spark" if "DeltaSparkSessionExtension" in extensions else "delta-rs"


def _file_schema(schema: T.StructType, partition_col: str | None) -> pa.Schema:
    # Delta keeps partition values in the log and the path, not in the data files.
    return to_arrow_schema(T.StructType([f for f in schema.fields if f.name != partition_col]))


# What a writing task may compute from each input batch besides the rows it writes: the rows (in
# the table's columns) and counts that are summed over every batch and task (`Staged.summary`).
Produce = Callable[[pa.RecordBatch], tuple[pa.RecordBatch, dict[str, int]]]


def _write_task_files(table_path: str, subdir: str, file_schema: pa.Schema,
                      required: Sequence[str], partition: tuple[str, str] | None,
                      produce: Produce | None = None):
    """Build the function each Spark task runs: stream its batches into one Parquet file.

    The task also enforces the table's constraints (NOT NULL columns, the partition being
    written) so that a bad row fails the job before the commit, without a second pass. With
    `produce`, each input batch is first turned into the rows to write plus counts, which the
    task sums and returns beside its file (one small row per task, even one that wrote nothing).
    """

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        relative = f"{subdir}part-{uuid.uuid4().hex}.parquet"
        target = Path(table_path) / relative
        writer = None
        rows = 0
        summary: collections.Counter = collections.Counter()
        for batch in batches:
            if produce is not None and batch.num_rows:
                batch, counts = produce(batch)
                summary.update(counts)
            if batch.num_rows == 0:
                continue
            for name in required:
                if batch.column(name).null_count:
                    raise PublishError(f"column '{name}' is declared NOT NULL but the data has "
                                       "NULLs in it; nothing was committed")
            if partition is not None:
                col, value = partition
                if not pc.all(pc.equal(batch.column(col).cast(pa.string()), value)).as_py():
                    raise PublishError(f"the data holds rows whose {col} is not {value}; a run "
                                       "may only replace its own partition; nothing was committed")
            table = pa.Table.from_batches([batch]).select(file_schema.names).cast(file_schema)
            if writer is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(str(target), file_schema)
            writer.write_table(table)
            rows += batch.num_rows
        result = {"path": None, "size": 0, "stats": "", "rows": 0,
                  "summary": json.dumps({k: int(v) for k, v in summary.items()})}
        if writer is not None:
            writer.close()
            stats = get_file_stats_from_metadata(pq.read_metadata(str(target)),
                                                 num_indexed_cols=_STATS_COLUMNS,
                                                 columns_to_collect_stats=None)
            result.update(path=relative, size=target.stat().st_size,
                          stats=json.dumps(stats, default=str), rows=rows)
        elif produce is None:
            return  # nothing written, nothing counted
        yield pa.RecordBatch.from_pylist([result], schema=to_arrow_schema(_FILE_RESULT))

    return write


def _commit(table_path: str, schema: pa.Schema, actions: list[AddAction],
            partition_col: str | None, partition_value: str | None, read_version: int) -> None:
    """One atomic Delta commit of files already written into the table directory.

    Optimistic concurrency: `read_version` is the table version the write started from (-1: no
    table yet). If another commit touched the same partition (any file, when the table is
    unpartitioned) after it, this commit is refused and the other run's rows stay as they are.
    delta-rs's own conflict check misses the case that matters most: two overwrites of a
    partition that did not exist yet both commit (neither removes a file, so nothing conflicts)
    and the partition then holds both runs' rows (measured in tests/test_concurrency_and_faults).

    The check and the commit run under an exclusive lock on the table, so no writer using this
    module can commit between them. Residual risk: a writer that does not go through this
    module (another engine, or a host that does not share this file system's locks) is not held
    back by the lock; delta-rs then still refuses overlapping removes, but not a blind append.
    """
    from deltalake._internal import write_new_deltalake

    partition_by = [partition_col] if partition_col else []
    filters = [(partition_col, "=", partition_value)] if partition_col else None
    with _commit_lock(table_path):
        if not is_delta_table(table_path):
            write_new_deltalake(table_path, schema, actions, "overwrite", partition_by,
                                None, None, None, None, None)
            return
        table = DeltaTable(table_path)
        _refuse_concurrent_commit(table_path, table.version(), read_version, filters)
        table._table.create_write_transaction(actions, "overwrite", partition_by, schema,
                                              filters, None)


def table_version(table_path: str | Path) -> int:
    """The table's current version, -1 when there is none yet: where a write starts from."""
    return DeltaTable(str(table_path)).version() if is_delta_table(table_path) else -1


@contextlib.contextmanager
def _commit_lock(table_path: str) -> Iterator[None]:
    # flock: released when the file is closed, and by the kernel when the process dies, so a
    # killed run never leaves the table locked. The leading "_" hides the file from Spark and
    # Delta readers, as it does _delta_log.
    Path(table_path).mkdir(parents=True, exist_ok=True)
    with open(Path(table_path) / "_telcorec_commit.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _refuse_concurrent_commit(table_path: str, latest: int, read_version: int,
                              filters: list | None) -> None:
    """Raise if a version after `read_version` changed the files of the partition in `filters`.

    Data files are never reused under another name, so a changed file set is exactly "another
    commit wrote or replaced this partition". Only the versions committed while this write ran
    are read, usually none.
    """
    if latest == read_version:
        return  # the usual case: nobody committed while this write ran
    before = set()
    if read_version >= 0:
        before = set(DeltaTable(table_path, version=read_version).files(filters))
    for version in range(read_version + 1, latest + 1):
        files = set(DeltaTable(table_path, version=version).files(filters))
        if files != before:
            where = f"{filters[0][0]}={filters[0][2]}" if filters else "the whole table"
            raise PublishError(
                f"another run wrote {where} of {table_path} (version {version}) while this one "
                f"was writing (it started from version {read_version}); nothing of this run was "
                "committed (its files are orphans, removed by jobs/vacuum.py); rerun it once "
                "the other run has ended")


def replace_partition(df: DataFrame, path: str | Path, schema: T.StructType,
                      run_date: dt.date, writer: str = "delta-rs",
                      contract: TableContract | None = None) -> int:
    """Atomically replace the `run_date` partition of a Delta table with `df`; return its rows.

    Other run dates are untouched; a rerun for the same date gives the same table content. Rows
    of `df` that carry another run date are refused before anything is written, and so is a
    `df` that breaks `contract` (checked with one Spark job before the write, for both writers:
    pass a persisted `df` when it is expensive to compute).
    """
    table_path = _table_path(path)
    df = df.select(*schema.fieldNames())
    if contract is not None:
        contract.enforce(df, Path(table_path).name)
    if writer == "spark":
        spark_replace_partition(df, table_path, run_date)
        return -1
    return stage_partition(df, table_path, schema, run_date).commit()


def spark_replace_partition(df: DataFrame, path: str | Path, run_date: dt.date) -> None:
    """The `spark` writer's replacement of one run date (Delta's replaceWhere, one commit)."""
    (df.write.format("delta").mode("overwrite").partitionBy(Col.RUN_DATE)
     .option("replaceWhere", f"{Col.RUN_DATE} = DATE'{run_date.isoformat()}'")
     .save(_table_path(path)))


def replace_table(df: DataFrame, path: str | Path, schema: T.StructType,
                  writer: str = "delta-rs") -> int:
    """Atomically replace the whole content of an unpartitioned table owned by one job."""
    table_path = _table_path(path)
    df = df.select(*schema.fieldNames())
    if writer == "spark":
        df.write.format("delta").mode("overwrite").save(table_path)
        return -1
    return _stage(df, table_path, schema, None, None, "", None).commit()


def _table_path(path: str | Path) -> str:
    return str(Path(path).resolve()) if "://" not in str(path) else str(path)


@dataclasses.dataclass
class Staged:
    """Files a write left in a table directory, not yet part of the table (delta-rs writer).

    Readers see none of them until `commit`; `discard` removes them. A run that dies between
    the two leaves orphan files only, which jobs/vacuum.py removes."""
    table_path: str
    schema: T.StructType
    partition_col: str | None
    partition_value: str | None
    read_version: int       # the table version the write started from (before any file)
    files: list[dict]       # one per written file: path, size, stats, rows
    summary: dict[str, int]  # the `produce` counts summed over every batch and task
    started: float

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    def commit(self) -> int:
        """One atomic Delta commit of the staged files; returns the rows committed."""
        now_ms = int(time.time() * 1000)
        values = {self.partition_col: self.partition_value} if self.partition_col else {}
        actions = [AddAction(f["path"], f["size"], values, now_ms, True, f["stats"])
                   for f in self.files]
        _commit(self.table_path, to_arrow_schema(self.schema), actions, self.partition_col,
                self.partition_value, self.read_version)
        log.info("wrote %s: %d rows in %d files (%.1fs)", self.table_path, self.rows,
                 len(self.files), time.monotonic() - self.started)
        return self.rows

    def discard(self) -> None:
        """Remove the staged files (nothing references them): a refused publish leaves none."""
        for f in self.files:
            (Path(self.table_path) / f["path"]).unlink(missing_ok=True)


def stage_partition(df: DataFrame, path: str | Path, schema: T.StructType, run_date: dt.date,
                    produce: Produce | None = None) -> Staged:
    """Write the `run_date` partition's files of a Delta table from `df` without committing
    them. With `produce`, each task turns every batch of `df` into the table's rows plus counts
    (summed into `Staged.summary`), so rows can be computed, checked and written in one pass."""
    subdir = f"{Col.RUN_DATE}={run_date.isoformat()}/"
    if produce is None:
        df = df.select(*schema.fieldNames())
    return _stage(df, _table_path(path), schema, Col.RUN_DATE, run_date.isoformat(), subdir,
                  produce)


def _stage(df: DataFrame, table_path: str, schema: T.StructType, partition_col: str | None,
           partition_value: str | None, subdir: str, produce: Produce | None) -> Staged:
    file_schema = _file_schema(schema, partition_col)
    required = [f.name for f in schema.fields if not f.nullable and f.name != partition_col]
    partition = (partition_col, partition_value) if partition_col else None
    started = time.monotonic()
    read_version = table_version(table_path)  # before any file is written
    results = (df.mapInArrow(_write_task_files(table_path, subdir, file_schema, required,
                                               partition, produce),
                             _FILE_RESULT)
               .collect())  # one small row per task, never per subscriber
    files = [{k: r[k] for k in ("path", "size", "stats", "rows")} for r in results
             if r["path"] is not None]
    return Staged(table_path, schema, partition_col, partition_value, read_version, files,
                  summed(r["summary"] for r in results), started)


def summed(summaries: Iterable[str]) -> dict[str, int]:
    """The per-task counts (JSON objects, one per task) summed key by key."""
    total: collections.Counter = collections.Counter()
    for summary in summaries:
        total.update(json.loads(summary))
    return dict(total)


def read_table(spark: SparkSession, path: str | Path, schema: T.StructType,
               run_date: dt.date | None = None, writer: str = "delta-rs") -> DataFrame:
    """Read a Delta table's current snapshot (optionally one run date) as a Spark DataFrame."""
    return read_partitions(spark, path, schema, None if run_date is None else [run_date],
                           writer)


def read_partitions(spark: SparkSession, path: str | Path, schema: T.StructType,
                    run_dates: Sequence[dt.date] | None, writer: str = "delta-rs") -> DataFrame:
    """Read the partitions of these run dates (every one when None) in one scan."""
    table_path = str(Path(path).resolve())
    partitioned = Col.RUN_DATE in schema.fieldNames()
    if writer == "spark":
        df = spark.read.format("delta").load(table_path)
        if run_dates is not None:
            df = df.filter(df[Col.RUN_DATE].isin(list(run_dates)))
        return df.select(*schema.fieldNames())
    try:
        table = DeltaTable(table_path)
    except TableNotFoundError as exc:
        raise PublishError(f"no Delta table at {table_path}; run the stage that writes it "
                           "first (./spark-submit.sh pipeline runs them all)") from exc
    filters = ([(Col.RUN_DATE, "in", [d.isoformat() for d in run_dates])]
               if partitioned and run_dates is not None else None)
    uris = table.file_uris(partition_filters=filters)
    if not uris:
        return spark.createDataFrame([], schema)
    reader = spark.read.schema(schema)
    if partitioned:
        # Delta keeps partition values in the path (run_date=YYYY-MM-DD/...), as Hive does;
        # basePath lets Spark read them back into the run_date column of the given schema.
        reader = reader.option("basePath", table_path)
    return reader.parquet(*uris).select(*schema.fieldNames())


def partition_rows(spark: SparkSession, path: str | Path, run_date: dt.date,
                   writer: str = "delta-rs") -> int:
    """Rows in one run date's partition, from the Delta log's per-file record counts (no data
    file is read; Delta on Spark answers the count from the same statistics). 0 when the table
    or the partition does not exist."""
    table_path = _table_path(path)
    if writer == "spark":
        try:
            df = spark.read.format("delta").load(table_path)
        except AnalysisException:  # no table there yet
            return 0
        return df.filter(df[Col.RUN_DATE] == run_date).count()
    if not is_delta_table(table_path):
        return 0
    actions = DeltaTable(table_path).get_add_actions(flatten=True).to_pydict()
    day = run_date.isoformat()
    return sum(int(rows) for rows, value in zip(actions["num_records"],
                                               actions[f"partition.{Col.RUN_DATE}"])
               if str(value) == day)


def write_small(rows: pa.Table, path: str | Path, predicate: str | None) -> None:
    """Write a small driver-side result (metrics, run records) in one commit.

    With a `predicate`, rows matching it are replaced (a rerun does not duplicate them); the
    predicate must be built from validated values only (dates via isoformat, names checked
    against the allowed pattern by the caller).
    """
    table_path = str(Path(path).resolve())
    if not is_delta_table(table_path):
        write_deltalake(table_path, rows, mode="append", partition_by=[Col.RUN_DATE],
                        engine="rust")
    elif predicate:
        write_deltalake(table_path, rows, mode="overwrite", predicate=predicate, engine="rust")
    else:
        write_deltalake(table_path, rows, mode="append", engine="rust")
