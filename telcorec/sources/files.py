"""Reading source files as they are: CSV as strings, Parquet and Delta with their own types."""
from __future__ import annotations

import codecs
import re
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.exceptions import ConfigError, SchemaError
from telcorec.io.writer import Writer
from telcorec.sources.parse import CORRUPT, UNDECODABLE
from telcorec.sources.preflight import CsvSource, inspect_csv, require_bytes

REPLACEMENT = "\ufffd"


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


def _decoder(encoding: str):
    """A vectorised decode of raw line bytes in `encoding`, undecodable bytes as U+FFFD."""
    @F.pandas_udf(T.StringType())
    def decode(lines: pd.Series) -> pd.Series:
        return lines.map(lambda b: None if b is None else bytes(b).decode(encoding, "replace"))
    return decode


def decoded_lines(spark: SparkSession, path: str, encoding: str) -> DataFrame:
    """The lines of `path` decoded in `encoding` (column `value`) and UNDECODABLE: whether the
    line holds bytes that are not valid in it. Spark's text source splits lines on the byte
    0x0A without decoding (each line keeps its bytes as they are); decoding here with
    replacement turns every undecodable byte sequence into U+FFFD, so "the decoded line holds
    U+FFFD" is exactly "the line did not decode". A U+FFFD already in the source is flagged as
    well: it marks a value an earlier tool failed to decode, whose original is lost, and such
    a key must not be accepted either. UTF-8 is decoded by Spark itself (make_valid_utf8, in
    the JVM); other encodings by Python's codec on the executors."""
    raw = F.col("value")
    if codecs.lookup(encoding).name == "utf-8":
        text = F.make_valid_utf8(raw)
    else:
        text = _decoder(encoding)(raw.cast("binary"))
    text = F.regexp_replace(text, "^\ufeff", "")  # a byte order mark opens a file, not a value
    return spark.read.text(path).select(text.alias("value"),
                                        (F.instr(text, REPLACEMENT) > 0).alias(UNDECODABLE))


def read_csv(spark: SparkSession, src: CsvSource) -> DataFrame:
    """Every column as a string, parsed line by line with `from_csv`. The source is inspected
    first (preflight.inspect_csv: empty, header-only, undecodable header, wrong delimiter stop
    the run naming the file). A line with more or fewer fields than the header is neither
    padded nor cut (Spark's PERMISSIVE mode would do that silently): its columns stay as parsed
    and `_corrupt_record` holds the line, which is then quarantined as malformed_row; a line
    with bytes that do not decode in the configured encoding has UNDECODABLE set and is
    quarantined as invalid_encoding. Blank lines are skipped (as Spark's CSV reader does); a
    quoted field holding a line break is not supported."""
    csv, path = src.csv, src.path
    names = inspect_csv(src)
    if CORRUPT in names or UNDECODABLE in names:
        raise SchemaError(f"{path}: a column is named {CORRUPT} or {UNDECODABLE}, which the "
                          "reader reserves; rename it in the export")
    lines = decoded_lines(spark, path, csv.encoding)
    lines = lines.filter(F.length(F.trim(F.col("value"))) > 0)
    if csv.header:
        header = lines.limit(1).first()
        lines = lines.filter(F.col("value") != F.lit(header[0] if header else ""))
    ddl = ", ".join("`" + n.replace("`", "``") + "` STRING" for n in names)
    record = F.from_csv(F.col("value"), ddl, {"sep": csv.delimiter, "mode": "PERMISSIVE"})
    malformed = _field_count(F.col("value"), csv.delimiter) != len(names)
    return lines.select(record.alias("_r"), F.when(malformed, F.col("value")).alias(CORRUPT),
                        UNDECODABLE) \
        .select(*[F.col("_r").getField(n).alias(n) for n in names], CORRUPT, UNDECODABLE)


def read_delta(spark: SparkSession, path: str, writer: Writer) -> DataFrame:
    """A Delta table with the types it was written with (not forced into the contract)."""
    df = writer.read_as_written(spark, path)
    if df is None:
        raise SchemaError(f"no Delta table at {path}; write your input there or check "
                          "inputs.path")
    return df


def read_source(spark: SparkSession, fmt: str, src: CsvSource, writer: Writer) -> DataFrame:
    """The source at src.path in `fmt`; `src` also names the config keys for messages (its
    csv settings apply to CSV only)."""
    if fmt == "csv":
        return read_csv(spark, src)
    if fmt == "parquet":
        require_bytes(src.path, src.key)
        return spark.read.parquet(src.path)
    return read_delta(spark, src.path, writer)
