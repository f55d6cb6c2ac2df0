"""Explicit parsing of source values onto the input contract: a value parses or is flagged.

CSV values are read as strings (never inferred, never PERMISSIVE-mode silent NULLs) and parsed
here column by column with Spark's `try_*` functions; a non-empty value that does not parse
sets the row's `_parse_error` to the names of the contract columns that failed, so ingest
quarantines the row as `unparsable_value` with its raw values. Empty strings are missing
values (NULL), which ingest judges with its own rules (null_key, missing_attribute). A row the
CSV reader could not split into the header's columns is flagged `malformed_row`.
Error messages name columns and types, never values.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec import schemas
from telcorec.columns import Col
from telcorec.config import CsvConfig, TableSourceConfig
from telcorec.exceptions import ConfigError, SchemaError

CORRUPT = "_corrupt_record"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
_NUMERIC = (T.IntegerType, T.LongType, T.DoubleType, T.FloatType, T.ShortType, T.DecimalType)


def text(value: Column) -> Column:
    """The trimmed string, NULL when empty."""
    trimmed = F.trim(value.cast("string"))
    return F.when(F.length(trimmed) > 0, trimmed)


def parse_text(s: Column, target: T.DataType, csv: CsvConfig) -> Column:
    """Parse a trimmed string into `target`; NULL when it does not parse."""
    if isinstance(target, T.StringType):
        return s
    if isinstance(target, T.BooleanType):
        low = F.lower(s)
        return F.when(low.isin(*TRUE_WORDS), F.lit(True)).when(low.isin(*FALSE_WORDS), F.lit(False))
    if isinstance(target, T.DateType):
        return F.to_date(F.try_to_timestamp(s, F.lit(csv.date_format)))
    if isinstance(target, T.TimestampType):
        return F.try_to_timestamp(s, F.lit(csv.timestamp_format))
    return s.try_cast(target)


def convert(source: Column, source_type: T.DataType, target: T.DataType, csv: CsvConfig,
            where: str) -> tuple[Column, Column]:
    """(value, failed): the source column in the contract's type, and whether a present value
    failed to convert. Types that can never convert fail fast, naming `where`."""
    if source_type == target:
        return source, F.lit(False)
    if isinstance(source_type, T.StringType):
        s = text(source)
        value = parse_text(s, target, csv)
        return value, s.isNotNull() & value.isNull()
    numeric_in = isinstance(source_type, _NUMERIC)
    temporal_in = isinstance(source_type, (T.DateType, T.TimestampType, T.TimestampNTZType))
    if isinstance(target, T.BooleanType) and numeric_in:
        value = source != 0
    elif ((isinstance(target, _NUMERIC) and numeric_in) or isinstance(target, T.StringType)
          or (isinstance(target, (T.DateType, T.TimestampType)) and temporal_in)):
        value = source.try_cast(target)
    else:
        raise SchemaError(f"{where} is {source_type.simpleString()}, which cannot become the "
                          f"contract's {target.simpleString()}; map another column or convert it")
    return value, source.isNotNull() & value.isNull()


def recode(value: Column, mapping: dict[str, str]) -> Column:
    """Replace source values by contract values (e.g. event type codes); others unchanged."""
    if not mapping:
        return value
    lookup = F.create_map(*[F.lit(x) for pair in mapping.items() for x in pair])
    return F.coalesce(F.element_at(lookup, text(value)), value)


def map_table(df: DataFrame, name: str, source: TableSourceConfig, csv: CsvConfig,
              key: str, required: tuple[str, ...] | None = None) -> DataFrame:
    """The source table as the contract table `name` (schemas.full(name)) plus the parse
    columns ingest reads. `key` names the config section in messages (inputs.operator.cdr);
    `required` overrides which contract columns must be mapped (default schemas.REQUIRED)."""
    contract = schemas.full(name)
    required = schemas.REQUIRED[name] if required is None else required
    known = set(contract.fieldNames())
    for column in source.columns:
        if column not in known:
            raise ConfigError(f"config key '{key}.columns.{column}': '{name}' has no contract "
                              f"column '{column}'; allowed: {sorted(known)}")
    present = {f.name: f.dataType for f in df.schema.fields}
    values, failures = [], []
    for field in contract.fields:
        src = source.columns.get(field.name)
        if src is None:
            if field.name in required:
                raise SchemaError(f"{key}: no source column is mapped onto '{field.name}' "
                                  f"(expected {field.dataType.simpleString()}); add it under "
                                  f"{key}.columns")
            values.append(F.lit(None).cast(field.dataType).alias(field.name))
            continue
        if src not in present:
            raise SchemaError(f"{key}.columns.{field.name}: the source has no column '{src}' "
                              f"(expected {field.dataType.simpleString()}); columns present: "
                              f"{sorted(c for c in present if c != CORRUPT)}")
        raw = recode(F.col(f"`{src}`"), source.values.get(field.name, {}))
        src_type = T.StringType() if source.values.get(field.name) else present[src]
        value, failed = convert(raw, src_type, field.dataType, csv,
                                f"{key} column '{src}' (for {field.name})")
        values.append(value.cast(field.dataType).alias(field.name))
        failures.append(F.when(failed, F.lit(field.name)))
    return with_parse_columns(df, values, failures, sorted(set(source.columns.values())))


def with_parse_columns(df: DataFrame, values: list[Column], failures: list[Column],
                       raw_columns: list[str]) -> DataFrame:
    """Select `values` plus _parse_error (failed column names or malformed_row) and, only for
    rows that failed, _raw_record: the source values as JSON, kept for the rejects table."""
    failed = F.concat_ws(",", *failures) if failures else F.lit("")
    error = F.when(F.length(failed) > 0, failed)
    if CORRUPT in df.columns:
        error = F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_row")).otherwise(error)
    raw = F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in raw_columns],
                   *([F.col(CORRUPT).alias("line")] if CORRUPT in df.columns else []),
                   error.alias("_unparsable"))
    return df.select(*values, error.alias(Col.PARSE_ERROR),
                     F.when(error.isNotNull(), F.to_json(raw)).alias(Col.RAW_RECORD))


def empty_parse_columns(df: DataFrame) -> DataFrame:
    """A source built in code (already typed): no parse failures."""
    return df.withColumns({Col.PARSE_ERROR: F.lit(None).cast("string"),
                           Col.RAW_RECORD: F.lit(None).cast("string")})
