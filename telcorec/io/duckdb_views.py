"""The warehouse's Delta tables as views of an embedded DuckDB that cannot write anywhere.

Analyst queries should answer in seconds, without a JVM: each table's current snapshot is read
by delta-rs as a pyarrow dataset and DuckDB scans it through Arrow (column selection and
filters pushed down to the Parquet files). Once the views exist the connection is locked:
external access off (no COPY TO, EXPORT, ATTACH, INSTALL/LOAD, no file scans), no spilling to
a temporary directory, and the configuration frozen so that no statement can switch either
back on. The database itself lives in memory: whatever a statement did there, no file changes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import duckdb
import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.io import delta_rs

log = logging.getLogger(__name__)

# Applied after the views are registered, in this order: lock_configuration must come last.
LOCKDOWN = ("SET TimeZone = 'UTC'", "SET temp_directory = ''",
            "SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
            "SET enable_external_access = false", "SET lock_configuration = true")


def _view(con: duckdb.DuckDBPyConnection, name: str, path: Path, schema: T.StructType) -> bool:
    """Register table `name` as a view with the contract's columns in the contract's order;
    an empty one with the contract's schema when the table was never written. True if read."""
    columns = ", ".join(f'"{field}"' for field in schema.fieldNames())
    if delta_rs.is_delta_table(path):
        dataset = delta_rs.arrow_dataset(path)
        con.from_arrow(dataset).project(columns).create_view(name)
        return True
    con.from_arrow(pa.Table.from_batches([], to_arrow_schema(schema))).create_view(name)
    return False


def connect(tables: Mapping[str, tuple[Path, T.StructType]],
            derived: Mapping[str, str]) -> duckdb.DuckDBPyConnection:
    """A locked in-memory connection with one view per table (name -> (path, schema)) and the
    `derived` views (name -> CREATE VIEW statement over those tables)."""
    con = duckdb.connect(":memory:")
    missing = [name for name, (path, schema) in tables.items()
               if not _view(con, name, path, schema)]
    if len(missing) == len(tables):
        log.warning("no tables under %s yet: run ./spark-submit.sh pipeline first",
                    Path(next(iter(tables.values()))[0]).parent if tables else "the warehouse")
    elif missing:
        log.info("not written yet, empty views: %s", ", ".join(missing))
    for statement in derived.values():
        con.execute(statement)
    for setting in LOCKDOWN:
        con.execute(setting)
    return con
