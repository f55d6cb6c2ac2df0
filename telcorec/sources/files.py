"""Reading source files as they are: CSV as strings, Parquet and Delta with their own types."""
from __future__ import annotations

import re
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from telcorec.core.config import CsvConfig
from telcorec.core.exceptions import ConfigError, SchemaError
from telcorec.sources.parse import CORRUPT


def resolve(base: str, path: str) -> str:
    """`path` under `base` unless absolute; relative paths count from where the job starts."""
    target = Path(path) if Path(path).is_absolute() or not base else Path(base) / path
    return str(target.expanduser().resolve())


def require_path(path: str, key: str) -> str:
    if not Path(path).exists():
        raise ConfigError(f"config key '{key}': {path} does not exist")
    return path


def _field_count(line: Column, delimiter: str) -> Column:
    """Fields in a CSV line: delimiters outside double quotes, plus one."""
    plain = F.size(F.split(line, re.escape(delimiter), -1))
    quoted = F.regexp_count(line, F.lit(f'{re.escape(delimiter)}(?=(?:[^"]*"[^"]*")*[^"]*$)')) + 1
    return F.when(F.instr(line, '"') == 0, plain).otherwise(quoted)


def read_csv(spark: SparkSession, path: str, csv: CsvConfig) -> DataFrame:
    """Every column as a string, parsed line by line with `from_csv`. A line with more or fewer
    fields than the header is neither padded nor cut (Spark's PERMISSIVE mode would do that
    silently): its columns stay as parsed and `_corrupt_record` holds the line, which is then
    quarantined as malformed_row. Blank lines are skipped (as Spark's CSV reader does); a
    quoted field holding a line break is not supported."""
    names = spark.read.options(header=str(csv.header).lower(), sep=csv.delimiter).csv(path).columns
    if CORRUPT in names:
        raise SchemaError(f"{path}: a column is named {CORRUPT}, which the reader reserves")
    lines = spark.read.text(path).filter(F.length(F.trim(F.col("value"))) > 0)
    if csv.header:
        header = lines.limit(1).first()
        lines = lines.filter(F.col("value") != F.lit(header[0] if header else ""))
    ddl = ", ".join("`" + n.replace("`", "``") + "` STRING" for n in names)
    record = F.from_csv(F.col("value"), ddl, {"sep": csv.delimiter, "mode": "PERMISSIVE"})
    malformed = _field_count(F.col("value"), csv.delimiter) != len(names)
    return lines.select(record.alias("_r"), F.when(malformed, F.col("value")).alias(CORRUPT)) \
        .select(*[F.col("_r").getField(n).alias(n) for n in names], CORRUPT)


def read_delta(spark: SparkSession, path: str, writer: str) -> DataFrame:
    """A Delta table with the types it was written with (not forced into the contract)."""
    if writer == "spark":
        return spark.read.format("delta").load(path)
    try:
        table = DeltaTable(path)
    except TableNotFoundError as exc:
        raise SchemaError(f"no Delta table at {path}; write your input there or check "
                          "inputs.path") from exc
    schema = from_arrow_schema(table.schema().to_pyarrow())
    uris = table.file_uris()
    if not uris:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*uris)


def read_source(spark: SparkSession, fmt: str, path: str, csv: CsvConfig,
                writer: str) -> DataFrame:
    if fmt == "csv":
        return read_csv(spark, path, csv)
    if fmt == "parquet":
        return spark.read.parquet(path)
    return read_delta(spark, path, writer)
