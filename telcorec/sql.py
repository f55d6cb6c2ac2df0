"""`./spark-submit.sh sql`: read-only SQL over the warehouse's Delta tables, one view per table.

Two engines answer the same views (every table of `schemas.TABLES`, empty when not written yet,
and `latest_offers`):
- `duckdb` (default): delta-rs reads each table's current snapshot as Arrow and an embedded
  DuckDB queries it (telcorec/io/duckdb_views.py). No JVM starts: a query answers in seconds.
- `spark`: Spark SQL over the same tables, for tables only a cluster can read.

Read-only by construction, not by filtering words: DuckDB's own parser classifies the statement
and anything but a query is refused; the DuckDB connection is in memory and locked so that even
a statement that got through could not write a file; the Spark engine runs a query only as the
subquery of a SELECT, which its parser accepts for queries alone. Results go to stdout (or
--output) alone; every log line goes to stderr.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import itertools
import json
import logging
import math
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Iterable, Sequence, TextIO

import duckdb

from telcorec.core.exceptions import TelcorecError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from telcorec.io.warehouse import Warehouse
    from telcorec.io.writer import Writer

log = logging.getLogger(__name__)

DEFAULT_CONF = "conf/local.yaml"
FORMATS = ("table", "csv", "json")
TABLE_LIMIT = 100   # rows the table format prints unless --limit says otherwise

# Only offers of succeeded runs, and for each subscriber only the newest such run date: what a
# campaign tool should read. A run that failed or was rejected never shows here, nor offers a
# killed `score` committed whose run_id a later attempt of another stage job (features, train,
# ...) then completed: only the jobs that publish vouch for offers (job is NULL on rows written
# before attempts named their job). The same text defines the view in Spark SQL and in DuckDB.
LATEST_OFFERS = """
CREATE OR REPLACE TEMPORARY VIEW latest_offers AS
WITH ok AS (SELECT DISTINCT run_date, run_id FROM runs WHERE status = 'succeeded'
            AND (job IS NULL OR job IN ('pipeline', 'score', 'simulate'))),
published AS (SELECT o.* FROM offers o JOIN ok ON o.run_date = ok.run_date AND o.run_id = ok.run_id),
newest AS (SELECT subscriber_id, max(run_date) AS run_date FROM published GROUP BY subscriber_id)
SELECT p.* FROM published p JOIN newest n
  ON p.subscriber_id = n.subscriber_id AND p.run_date = n.run_date
"""
DERIVED = {"latest_offers": LATEST_OFFERS}

READ_ONLY = ("sql is read-only: it runs one query (SELECT, WITH, VALUES, FROM ..., SHOW, DESCRIBE, "
             "SUMMARIZE, EXPLAIN) and refuses anything that would change a table or write a file")


class QueryError(TelcorecError):
    """A statement sql will not run (not a query) or that failed: exit 2 with the message."""


# ------------------------------------------------------------------------------------------
# What may run
# ------------------------------------------------------------------------------------------
# The words a query can start with; only used to word the message about a statement that
# DuckDB's parser cannot read (another dialect's DDL, say), never to let one run.
QUERY_WORDS = frozenset({"SELECT", "WITH", "VALUES", "FROM", "TABLE", "SHOW", "DESCRIBE", "DESC",
                         "SUMMARIZE", "EXPLAIN", "PIVOT", "UNPIVOT"})
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(\w+)", re.S)


def _first_word(text: str) -> str | None:
    match = _FIRST_WORD.match(text)
    return match.group(1).upper() if match else None


def _statements(text: str) -> list:
    try:
        return duckdb.extract_statements(text)
    except duckdb.Error as exc:
        word = _first_word(text)
        if word is not None and word not in QUERY_WORDS:
            raise QueryError(f"refused a {word} statement: {READ_ONLY}") from None
        raise QueryError(f"the query does not parse: {exc} (the default engine speaks DuckDB's "
                         "SQL; --engine spark runs Spark SQL)") from None


def _is_query(statement: Any, text: str) -> bool:
    if statement.type == duckdb.StatementType.SELECT:
        return True
    if statement.type != duckdb.StatementType.EXPLAIN:
        return False
    # EXPLAIN ANALYZE runs what it explains: the explained statement must be a query too
    inner = re.sub(r"^\s*EXPLAIN\s+(ANALY[SZ]E\s+)?", "", text, count=1, flags=re.I)
    return inner != text and all(s.type == duckdb.StatementType.SELECT
                                 for s in _statements(inner))


def duckdb_statement(text: str) -> str:
    """The one query in `text` (DuckDB's parser decides), or QueryError."""
    statements = _statements(text)
    if len(statements) != 1:
        raise QueryError(f"give exactly one statement, got {len(statements)}; {READ_ONLY}")
    if not _is_query(statements[0], text):
        raise QueryError(f"refused a {statements[0].type.name} statement: {READ_ONLY}")
    return text.strip().rstrip(";")


def spark_statement(text: str) -> str:
    """The text Spark runs for `text`: SHOW / DESCRIBE / EXPLAIN as given (none of them changes
    anything), any other statement only as the subquery of a SELECT, so that Spark's parser
    refuses whatever is not a query. DuckDB's parser refuses a non-query it recognises first,
    with a clearer message; a text in a Spark-only dialect goes on to Spark's parser."""
    try:
        duckdb_statement(text)
    except QueryError as exc:
        if "does not parse" not in str(exc):
            raise
    body = text.strip().rstrip(";").rstrip()
    if _first_word(body) in ("SHOW", "DESCRIBE", "DESC", "EXPLAIN"):
        return body
    return f"SELECT * FROM (\n{body}\n) AS query"


# ------------------------------------------------------------------------------------------
# The two engines: (column names, rows) of a query
# ------------------------------------------------------------------------------------------
def _tables(wh: "Warehouse") -> dict:
    from telcorec.core import schemas
    return {name: (wh.table(name), schema) for name, schema in schemas.TABLES.items()}


def duckdb_query(wh: "Warehouse", text: str, limit: int | None = None
                 ) -> tuple[list[str], Iterable[tuple]]:
    from telcorec.io import duckdb_views
    statement = duckdb_statement(text)
    con = duckdb_views.connect(_tables(wh), DERIVED)
    try:
        relation = con.sql(statement)
        if limit is not None:
            relation = relation.limit(limit)
        return list(relation.columns), relation.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"{exc}") from None
    finally:
        # closed here, not at interpreter exit: torn down then, DuckDB's threads scanning
        # Arrow datasets can abort the process (SIGABRT) after the result was printed
        con.close()


def register_views(spark: "SparkSession", wh: "Warehouse", writer: "Writer") -> list[str]:
    """Each table (current snapshot) as a temporary view of the same name; a table not written
    yet as an empty view with its contract schema."""
    written = []
    for name, (path, schema) in _tables(wh).items():
        if writer.exists(spark, path):
            writer.read(spark, path, schema).createOrReplaceTempView(name)
            written.append(name)
        else:
            spark.createDataFrame([], schema).createOrReplaceTempView(name)
    if not written:
        log.warning("no tables under %s yet: run ./spark-submit.sh pipeline first", wh.root)
    for statement in DERIVED.values():
        spark.sql(statement)
    return written


def query(spark: "SparkSession", wh: "Warehouse", writer: "Writer", text: str) -> "DataFrame":
    """Spark SQL over the warehouse's views; only a query runs (spark_statement)."""
    statement = spark_statement(text)
    register_views(spark, wh, writer)
    from pyspark.errors import ParseException, PySparkException
    try:
        return spark.sql(statement)
    except PySparkException as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        hint = f" ({READ_ONLY})" if isinstance(exc, ParseException) else ""
        raise QueryError(f"{first}{hint}") from None


def spark_query(spark: "SparkSession", wh: "Warehouse", writer: "Writer", text: str,
                limit: int | None = None) -> tuple[list[str], Iterable[tuple]]:
    df = query(spark, wh, writer, text)
    if limit is not None:
        df = df.limit(limit)
    return list(df.columns), (tuple(row) for row in df.toLocalIterator())


# ------------------------------------------------------------------------------------------
# Output: table, csv or json (one object per line)
# ------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-ready value: Spark Rows become dicts, Decimals floats, dates ISO text."""
    if hasattr(value, "asDict"):
        return _plain(value.asDict(recursive=True))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None   # JSON has no NaN or infinity
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _text(value: Any, null: str) -> str:
    """A cell as text: nested values as JSON, NULL as `null`."""
    if value is None:
        return null
    if isinstance(value, (dict, list, tuple)) or hasattr(value, "asDict"):
        return json.dumps(_plain(value), ensure_ascii=False)
    return str(value)


def write_table(columns: Sequence[str], rows: Sequence[tuple], out: TextIO) -> None:
    """Aligned columns under a header; a cell with several lines takes several lines."""
    cells = [[_text(v, "NULL").splitlines() or [""] for v in row] for row in rows]
    widths = [max([len(name)] + [len(line) for row in cells for line in row[i]])
              for i, name in enumerate(columns)]
    out.write(" | ".join(n.ljust(w) for n, w in zip(columns, widths)).rstrip() + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for row in cells:
        for j in range(max(len(c) for c in row)):
            line = " | ".join((c[j] if j < len(c) else "").ljust(w) for c, w in zip(row, widths))
            out.write(line.rstrip() + "\n")


def write_rows(columns: Sequence[str], rows: Iterable[tuple], out: TextIO, fmt: str) -> int:
    """Write the rows in `fmt`; returns how many."""
    if fmt == "table":
        rows = list(rows)
        write_table(columns, rows, out)
        return len(rows)
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for n, row in enumerate(rows, start=1):
            writer.writerow([_text(v, "") for v in row])
        return n
    for n, row in enumerate(rows, start=1):
        out.write(json.dumps(dict(zip(columns, (_plain(v) for v in row))),
                             ensure_ascii=False) + "\n")
    return n


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./spark-submit.sh sql",
        description="Run one read-only SQL query over the warehouse's tables (a view per table, "
                    "and latest_offers) and print the result on stdout; logs go to stderr. "
                    "Anything but a query (SELECT, WITH, VALUES, FROM ..., SHOW, DESCRIBE, "
                    "SUMMARIZE, EXPLAIN) is refused with exit code 2.")
    p.add_argument("query", help='the SQL text, quoted, e.g. "SELECT run_date, count(*) AS n '
                                 'FROM offers GROUP BY run_date"')
    p.add_argument("--conf", default=DEFAULT_CONF,
                   help=f"YAML config whose warehouse is queried (default {DEFAULT_CONF})")
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="duckdb (default): delta-rs + embedded DuckDB, no JVM, DuckDB's SQL "
                        "dialect; spark: Spark SQL through spark-submit, for tables on a cluster")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default): aligned columns; csv: a header line and RFC 4180 rows; "
                        "json: one JSON object per row and line (JSON Lines)")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write the result to FILE instead of stdout")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help=f"at most N rows (0: all). Default: {TABLE_LIMIT} for table, "
                        "all for csv and json")
    return p


def _run(args: argparse.Namespace, limit: int | None) -> tuple[list[str], Iterable[tuple]]:
    from telcorec.core import config
    from telcorec.io.warehouse import Warehouse
    cfg = config.load(args.conf)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    if args.engine == "duckdb":
        return duckdb_query(wh, args.query, limit)
    spark_statement(args.query)   # refused before a JVM starts
    from pyspark.sql import SparkSession

    from telcorec.io.writer import choose
    active = SparkSession.getActiveSession()
    spark = active or SparkSession.builder.appName("telcorec-sql").getOrCreate()
    try:
        columns, rows = spark_query(spark, wh, choose(spark, cfg.storage.writer),
                                    args.query, limit)
        return columns, list(rows)
    finally:
        if active is None:
            spark.stop()


def main(argv: Sequence[str]) -> int:
    """The sql command: 0 on success, 2 on a refused or failed query (message on stderr)."""
    args = parser().parse_args(list(argv))
    if args.limit is not None and args.limit < 0:
        print("error: --limit must be 0 (all rows) or more", file=sys.stderr)
        return 2
    limit = args.limit if args.limit is not None else (TABLE_LIMIT if args.format == "table"
                                                       else 0)
    try:
        columns, rows = _run(args, None if limit == 0 else limit + 1)
    except TelcorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = list(rows)
    cut = limit and len(rows) > limit
    # submitted with spark-submit, the launcher names a file for the result: spark-submit
    # mixes the driver's log lines into its own stdout (telcorec/launch/cli.py run_submitted)
    target = args.output or os.environ.get("TELCOREC_RESULT_FILE")
    out = open(target, "w", newline="", encoding="utf-8") if target else sys.stdout
    try:
        n = write_rows(columns, itertools.islice(rows, limit or None), out, args.format)
    finally:
        if target:
            out.close()
    log.info("%d row%s%s", n, "" if n == 1 else "s",
             f" (more not shown: --limit {limit} cuts them; --limit 0 shows all)" if cut else "")
    return 0
