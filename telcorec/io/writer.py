"""The Delta writer: chosen once per session (`choose`) and passed down as an object.

Two writers honour one table contract (STACK.md):
- `SparkDeltaWriter`: Spark's own Delta source, used when the session has Delta's SQL extension
  (a cluster started with `--packages io.delta:delta-spark_2.13:4.0.1`, Databricks);
- `DeltaRsWriter`: used in local mode, tests and CI, where Maven (and so Delta's jars) is out of
  reach. Its tasks write their own Parquet files and the driver commits them in one Delta
  transaction (telcorec/io/task_files.py, telcorec/io/delta_rs.py).
Both read what either wrote. `storage.writer` in the config names one, or `auto`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Protocol, Sequence

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from telcorec.core.columns import Col
from telcorec.core.exceptions import PublishError
from telcorec.io import delta_rs, task_files
from telcorec.io.task_files import Produce


class TableContract(Protocol):
    """An output table's row contract (telcorec/publish/contract.py has the offers one)."""

    def enforce(self, df: DataFrame, table: str) -> None:
        """Raise when a row of `df` breaks the contract."""


class Staged(Protocol):
    """A partition computed and counted but not yet visible: `commit` publishes it, `discard`
    leaves the table as it was."""
    counts: Any   # the Produce's counts, merged over every task
    rows: int

    def describe(self) -> str: ...

    def commit(self) -> int: ...

    def discard(self) -> None: ...


class Writer(Protocol):
    """What the stages do with Delta tables; each call is one atomic commit or one read."""
    passes_over_input: int  # how often staging and committing a partition read their input

    def read(self, spark: SparkSession, path: str | Path, schema: T.StructType,
             run_dates: Sequence[dt.date] | None = None) -> DataFrame:
        """The current snapshot in `schema` (only the partitions of `run_dates`, when given)."""

    def read_as_written(self, spark: SparkSession, path: str) -> DataFrame | None:
        """The current snapshot with the types it was written with; None: no table there."""

    def exists(self, spark: SparkSession, path: str | Path) -> bool:
        """A Delta table is there (a first run of a warehouse has none yet)."""

    def partition_rows(self, spark: SparkSession, path: str | Path, run_date: dt.date) -> int:
        """Rows of one run date's partition; 0 when the table or the partition is missing."""

    def replace_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                          run_date: dt.date, contract: TableContract | None = None) -> int:
        """The `run_date` partition replaced by `df` in one commit; its rows (-1: not counted)."""

    def replace_table(self, df: DataFrame, path: str | Path, schema: T.StructType) -> int:
        """The whole table replaced by `df` in one commit; its rows (-1: not counted)."""

    def stage_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                        run_date: dt.date, produce: Produce) -> Staged:
        """The `run_date` partition made by `produce` from `df` and counted, not committed."""


def choose(spark: SparkSession, configured: str) -> Writer:
    """The writer `storage.writer` names; for `auto`, Spark's when the session has Delta's
    SQL extension, else delta-rs."""
    if configured == "auto":
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
        with_delta = "DeltaSparkSessionExtension" in extensions
        return SparkDeltaWriter() if with_delta else DeltaRsWriter()
    return _BY_NAME[configured]()


def table_path(path: str | Path) -> str:
    return str(Path(path).resolve()) if "://" not in str(path) else str(path)


def _checked(df: DataFrame, path: str | Path, schema: T.StructType,
             contract: TableContract | None) -> tuple[DataFrame, str]:
    """`df` in the table's columns, refused (before anything is written) when it breaks
    `contract` (one Spark job: pass a persisted `df` when it is expensive to compute)."""
    where = table_path(path)
    df = df.select(*schema.fieldNames())
    if contract is not None:
        contract.enforce(df, Path(where).name)
    return df, where


class DeltaRsWriter:
    """Tasks write Parquet files into the table directory, the driver commits them (delta-rs)."""
    passes_over_input = 1

    def read(self, spark: SparkSession, path: str | Path, schema: T.StructType,
             run_dates: Sequence[dt.date] | None = None) -> DataFrame:
        """A Delta table's current snapshot (the partitions of `run_dates` only, when given)
        as a Spark DataFrame of `schema`, in one scan."""
        where = str(Path(path).resolve())
        partitioned = Col.RUN_DATE in schema.fieldNames()
        dates = ([d.isoformat() for d in run_dates]
                 if partitioned and run_dates is not None else None)
        found = delta_rs.file_uris(where, dates)
        if found is None:
            raise PublishError(f"no Delta table at {where}; run the stage that writes it "
                               "first (./spark-submit.sh pipeline runs them all)")
        if not found[1]:
            return spark.createDataFrame([], schema)
        reader = spark.read.schema(schema)
        if partitioned:
            # Delta keeps partition values in the path (run_date=YYYY-MM-DD/...), as Hive
            # does; basePath lets Spark read them back into the run_date column of the schema.
            reader = reader.option("basePath", where)
        return reader.parquet(*found[1]).select(*schema.fieldNames())

    def read_as_written(self, spark: SparkSession, path: str) -> DataFrame | None:
        """The table with the types it was written with; None when there is none."""
        found = delta_rs.file_uris(path)
        if found is None:
            return None
        schema = from_arrow_schema(found[0])
        if not found[1]:
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).parquet(*found[1])

    def exists(self, spark: SparkSession, path: str | Path) -> bool:
        return delta_rs.is_delta_table(path)

    def partition_rows(self, spark: SparkSession, path: str | Path, run_date: dt.date) -> int:
        """Rows in one run date's partition from the Delta log's per-file record counts (no
        data file is read); 0 when the table or the partition does not exist."""
        return delta_rs.partition_records(table_path(path), run_date.isoformat())

    def replace_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                          run_date: dt.date, contract: TableContract | None = None) -> int:
        """Atomically replace the `run_date` partition of a Delta table with `df`; return its
        rows. Other run dates are untouched; a rerun for the same date gives the same table
        content. Rows of `df` that carry another run date, or that break `contract`, are
        refused before anything is committed."""
        df, where = _checked(df, path, schema, contract)
        return task_files.stage(df, where, schema, Col.RUN_DATE, run_date.isoformat(),
                                None).commit()

    def replace_table(self, df: DataFrame, path: str | Path, schema: T.StructType) -> int:
        """Atomically replace the whole content of an unpartitioned table owned by one job."""
        df, where = _checked(df, path, schema, None)
        return task_files.stage(df, where, schema, None, None, None).commit()

    def stage_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                        run_date: dt.date, produce: Produce) -> task_files.StagedFiles:
        """Write the `run_date` partition's files from `df` without committing them: each task
        turns every batch into the table's rows plus counts (merged into `counts`), so rows
        can be computed, checked and written in one pass."""
        return task_files.stage(df, table_path(path), schema, Col.RUN_DATE,
                                run_date.isoformat(), produce)


class SparkDeltaWriter:
    """Spark's own Delta source (a session with Delta's jars and SQL extension)."""
    passes_over_input = 2  # staging counts without writing; the commit computes the rows again

    def _load(self, spark: SparkSession, path: str | Path) -> DataFrame | None:
        try:
            return spark.read.format("delta").load(table_path(path))
        except AnalysisException:  # no table there yet
            return None

    def read(self, spark: SparkSession, path: str | Path, schema: T.StructType,
             run_dates: Sequence[dt.date] | None = None) -> DataFrame:
        df = spark.read.format("delta").load(str(Path(path).resolve()))
        if run_dates is not None:
            df = df.filter(df[Col.RUN_DATE].isin(list(run_dates)))
        return df.select(*schema.fieldNames())

    def read_as_written(self, spark: SparkSession, path: str) -> DataFrame | None:
        return spark.read.format("delta").load(path)

    def exists(self, spark: SparkSession, path: str | Path) -> bool:
        return self._load(spark, path) is not None

    def partition_rows(self, spark: SparkSession, path: str | Path, run_date: dt.date) -> int:
        df = self._load(spark, path)
        return 0 if df is None else df.filter(df[Col.RUN_DATE] == run_date).count()

    def replace_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                          run_date: dt.date, contract: TableContract | None = None) -> int:
        """Delta's replaceWhere of one run date in one commit; -1: the rows are not counted."""
        df, where = _checked(df, path, schema, contract)
        self._replace_where(df, where, run_date)
        return -1

    @staticmethod
    def _replace_where(df: DataFrame, where: str, run_date: dt.date) -> None:
        (df.write.format("delta").mode("overwrite").partitionBy(Col.RUN_DATE)
         .option("replaceWhere", f"{Col.RUN_DATE} = DATE'{run_date.isoformat()}'")
         .save(where))

    def replace_table(self, df: DataFrame, path: str | Path, schema: T.StructType) -> int:
        df, where = _checked(df, path, schema, None)
        df.write.format("delta").mode("overwrite").save(where)
        return -1

    def stage_partition(self, df: DataFrame, path: str | Path, schema: T.StructType,
                        run_date: dt.date, produce: Produce) -> "CountedPartition":
        """Spark's Delta writer cannot commit files written elsewhere: this pass only counts;
        `commit` computes the same rows again and writes them (pass a persisted `df`)."""
        counts, rows = task_files.counted(df, produce)
        return CountedPartition(df, table_path(path), schema, run_date, produce, counts, rows)


@dataclasses.dataclass(frozen=True)
class CountedPartition:
    """The Spark writer's staged partition: counted, written only by `commit`."""
    df: DataFrame
    where: str
    schema: T.StructType
    run_date: dt.date
    produce: Produce
    counts: Any
    rows: int

    def describe(self) -> str:
        return f"counted: {self.rows:,} rows, written by Spark's Delta source on commit"

    def commit(self) -> int:
        SparkDeltaWriter._replace_where(task_files.produced(self.df, self.produce, self.schema),
                                        self.where, self.run_date)
        return self.rows

    def discard(self) -> None:
        """Nothing was written."""


_BY_NAME = {"spark": SparkDeltaWriter, "delta-rs": DeltaRsWriter}  # storage.writer's values
