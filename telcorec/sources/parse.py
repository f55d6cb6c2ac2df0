"""Explicit parsing of source values onto the input contract: a value parses or is flagged.

CSV values are read as strings (never inferred, never PERMISSIVE-mode silent NULLs) and parsed
here column by column with Spark's `try_*` functions; a non-empty value that does not parse
sets the row's `_parse_error` to the names of the contract columns that failed, so ingest
quarantines the row as `unparsable_value` with its raw values. Empty strings are missing
values (NULL), which ingest judges with its own rules (null_key, missing_attribute). A row the
CSV reader could not split into the header's columns is flagged `malformed_row`, one whose
bytes did not decode in the configured encoding `invalid_encoding` (its values hold U+FFFD:
the row is never accepted).
Error messages name columns and types, never values.

Schema drift (`check_columns`, the one place that judges a source's columns against the
mapping, before any row is read): a missing, renamed or case-changed mapped column, or a typed
(Parquet/Delta) column whose type cannot hold the contract's, fails naming the column, the
expected name and type and what was found; a column the mapping does not use fails too unless
`ingest.extra_columns: ignore`; columns in another order are read by name and logged.
"""
from __future__ import annotations

import logging
import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import CsvConfig, TableSourceConfig
from telcorec.core.exceptions import ConfigError, SchemaError

log = logging.getLogger(__name__)
CORRUPT = "_corrupt_record"
UNDECODABLE = "_undecodable"  # the CSV reader's flag: the line did not decode (files.read_csv)
READER_COLUMNS = (CORRUPT, UNDECODABLE)
INVALID_ENCODING = "invalid_encoding"
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


def shown(names) -> list[str]:
    """Column names safe to print: a CSV read without its header row has data values (phone
    numbers) as column names, which must not reach logs or exception text."""
    plain = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,63}")
    return sorted(n if plain.fullmatch(n) and not re.search(r"\d{5,}", n)
                  else "<a column whose name looks like data>" for n in names)


def _holds(source: T.DataType, target: T.DataType) -> bool:
    """Can a typed source column of type `source` become the contract's `target` value by
    value? Strings never can (a Parquet/Delta column that arrives as text where the contract
    has a number, date or flag is a changed export, not dirty rows)."""
    if source == target or isinstance(target, T.StringType):
        return not isinstance(source, (T.StructType, T.ArrayType, T.MapType, T.BinaryType))
    if isinstance(source, _NUMERIC):
        return isinstance(target, (*_NUMERIC, T.BooleanType))
    temporal = (T.DateType, T.TimestampType, T.TimestampNTZType)
    return isinstance(source, temporal) and isinstance(target, temporal)


def require_mapped(df: DataFrame, columns: dict[str, str], key: str,
                   where: str = "the source") -> None:
    """Raise SchemaError for the first source column of `columns` ({config name: source
    column}, under config key `key`) that `df` lacks, listing the columns it has."""
    for name, src in columns.items():
        if src not in df.columns:
            present = sorted(c for c in df.columns if c not in READER_COLUMNS)
            raise SchemaError(f"{key}.{name}: {where} has no column '{src}'; "
                              f"columns present: {present}")


def check_columns(present: T.StructType, name: str, columns: dict[str, str], key: str, *,
                  required: tuple[str, ...], typed: bool, extra_columns: str | None,
                  recoded: tuple[str, ...] = ()) -> None:
    """Judge the source's columns against `columns` ({contract column: source column}) from
    metadata alone. Raises SchemaError naming the column; logs a reorder. `extra_columns`:
    "fail" | "ignore" | None (not checked: an adapter for a fixed public file reads what it
    needs of it)."""
    contract = {f.name: f.dataType for f in schemas.full(name).fields}
    types = {f.name: f.dataType for f in present.fields if f.name not in READER_COLUMNS}
    by_lower = {}
    for c in types:
        by_lower.setdefault(c.lower(), []).append(c)
    unused = [c for c in types if c not in set(columns.values())]
    for target, expected in contract.items():
        src = columns.get(target)
        want = expected.simpleString()
        if src is None:
            if target in required:
                raise SchemaError(f"{key}: no source column is mapped onto '{target}' "
                                  f"(expected {want}); add it under {key}.columns")
            continue
        if src not in types:
            near = [c for c in by_lower.get(src.lower(), []) if c != src]
            if near:
                raise SchemaError(
                    f"{key}: column '{src}' (contract '{target}', expected {want}) is missing; "
                    f"the source has {shown(near)}, which differs only in letter case. Rename "
                    f"it to '{src}' in the source, or map it under {key}.columns.{target}")
            raise SchemaError(
                f"{key}: column '{src}' (contract '{target}', expected {want}) is missing: "
                f"renamed or dropped upstream? Columns the mapping does not use: "
                f"{shown(unused)}. Restore it, or map the new name under {key}.columns.{target}")
        found = types[src]
        if typed and target not in recoded and not _holds(found, expected):
            raise SchemaError(
                f"{key}: column '{src}' (contract '{target}') is {found.simpleString()}, "
                f"expected {want}: the source's type changed. Write it as {want} (or a type "
                f"convertible to it) again, or read the file as CSV to parse it row by row")
    if unused and extra_columns == "fail":
        raise SchemaError(
            f"{key}: the source has column(s) {shown(unused)} that no contract column is mapped "
            f"from (a new column, or a renamed one?). Map them under {key}.columns, or set "
            "ingest.extra_columns: ignore to read sources wider than the contract")
    if unused and extra_columns == "ignore":
        log.warning("%s: ignoring source column(s) %s (ingest.extra_columns: ignore)", key,
                    shown(unused))
    order = [c for c in types if c in set(columns.values())]
    expected_order = [c for c in columns.values() if c in types]
    if order != expected_order:
        log.info("%s: the source's columns are in another order than the mapping lists them; "
                 "they are read by name, so nothing changes", key)


def recode(value: Column, mapping: dict[str, str]) -> Column:
    """Replace source values by contract values (e.g. event type codes); others unchanged."""
    if not mapping:
        return value
    lookup = F.create_map(*[F.lit(x) for pair in mapping.items() for x in pair])
    return F.coalesce(F.element_at(lookup, text(value)), value)


def map_table(df: DataFrame, name: str, source: TableSourceConfig, csv: CsvConfig,
              key: str, required: tuple[str, ...] | None = None, *, typed: bool = False,
              extra_columns: str | None = None) -> DataFrame:
    """The source table as the contract table `name` (schemas.full(name)) plus the parse
    columns ingest reads. `key` names the config section in messages (inputs.operator.cdr);
    `required` overrides which contract columns must be mapped (default schemas.REQUIRED);
    `typed`: the source has its own column types (Parquet, Delta); `extra_columns`: the
    ingest.extra_columns policy for unmapped source columns (None: not checked)."""
    contract = schemas.full(name)
    required = schemas.REQUIRED[name] if required is None else required
    known = set(contract.fieldNames())
    for column in source.columns:
        if column not in known:
            raise ConfigError(f"config key '{key}.columns.{column}': '{name}' has no contract "
                              f"column '{column}'; allowed: {sorted(known)}")
    check_columns(df.schema, name, dict(source.columns), key, required=required, typed=typed,
                  extra_columns=extra_columns, recoded=tuple(source.values))
    present = {f.name: f.dataType for f in df.schema.fields}
    values, failures = [], []
    for field in contract.fields:
        src = source.columns.get(field.name)
        if src is None:
            values.append(F.lit(None).cast(field.dataType).alias(field.name))
            continue
        raw = recode(F.col(f"`{src}`"), source.values.get(field.name, {}))
        src_type = T.StringType() if source.values.get(field.name) else present[src]
        value, failed = convert(raw, src_type, field.dataType, csv,
                                f"{key} column '{src}' (for {field.name})")
        values.append(value.cast(field.dataType).alias(field.name))
        failures.append(F.when(failed, F.lit(field.name)))
    return with_parse_columns(df, values, failures, sorted(set(source.columns.values())))


def with_parse_columns(df: DataFrame, values: list[Column], failures: list[Column],
                       raw_columns: list[str]) -> DataFrame:
    """Select `values` plus _parse_error (failed column names, malformed_row or
    invalid_encoding) and, only for rows that failed, _raw_record: the source values as JSON,
    kept for the rejects table."""
    failed = F.concat_ws(",", *failures) if failures else F.lit("")
    error = F.when(F.length(failed) > 0, failed)
    if CORRUPT in df.columns:
        error = F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_row")).otherwise(error)
    if UNDECODABLE in df.columns:
        error = F.when(F.col(UNDECODABLE), F.lit(INVALID_ENCODING)).otherwise(error)
    raw = F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in raw_columns],
                   *([F.col(CORRUPT).alias("line")] if CORRUPT in df.columns else []),
                   error.alias("_unparsable"))
    return df.select(*values, error.alias(Col.PARSE_ERROR),
                     F.when(error.isNotNull(), F.to_json(raw)).alias(Col.RAW_RECORD))


def empty_parse_columns(df: DataFrame) -> DataFrame:
    """A source built in code (already typed): no parse failures."""
    return df.withColumns({Col.PARSE_ERROR: F.lit(None).cast("string"),
                           Col.RAW_RECORD: F.lit(None).cast("string")})
