"""`sql`: read-only by construction on both engines, results alone on stdout, latest_offers alike."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema

from helpers import REPO
from helpers.rows import full_row
from telcorec import sql
from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.io import duckdb_views
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter

D1, D2 = dt.date(2026, 11, 22), dt.date(2026, 11, 23)
T0 = dt.datetime(2026, 11, 23, 1, tzinfo=dt.timezone.utc)


def _write(root: Path, name: str, rows: list[tuple]) -> None:
    schema = to_arrow_schema(schemas.TABLES[name])
    table = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema)
    write_deltalake(str(root / name), table, partition_by=[Col.RUN_DATE])


def offer(day, run, sub, offer_id, rank, **values):
    return full_row(schemas.OFFERS, run_date=day, run_id=run, subscriber_id=sub,
                    offer_id=offer_id, rank=rank, score=1.0 / rank, arm="model",
                    reasons=[f"r{rank}", "cold start"], **values)


def run_row(day, run, status):
    values = dict(run_date=day, run_id=run, attempt_id=f"{run}-a", status=status,
                  started_at=T0, config_hash="h")
    return tuple(values.get(name) for name in schemas.RUNS.fieldNames())


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """offers of two run dates for S1, one for S2; the run of D2 for S2 was rejected."""
    root = tmp_path_factory.mktemp("sqlwh")
    _write(root / "warehouse", "offers", [
        offer(D1, "r1", "S1", "O1", 1), offer(D1, "r1", "S1", "O2", 2),
        offer(D1, "r1", "S2", "O3", 1),
        offer(D2, "r2", "S1", "O4", 1), offer(D2, "r2", "S1", "O5", 2),
        offer(D2, "bad", "S2", "O9", 1)])
    _write(root / "warehouse", "runs", [
        run_row(D1, "r1", "running"), run_row(D1, "r1", "succeeded"),
        run_row(D2, "r2", "succeeded"), run_row(D2, "bad", "rejected")])
    conf = root / "sql.yaml"
    conf.write_text(f"extends: {REPO / 'conf' / 'local.yaml'}\nwarehouse: {root / 'warehouse'}\n")
    return root, str(conf), Warehouse(root / "warehouse", root / "warehouse" / "raw")


def run_sql(capsys, conf, *args):
    rc = sql.main(["--conf", conf, *args])
    out, err = capsys.readouterr()
    return rc, out, err


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_csv_result_is_alone_on_stdout(small, capsys, caplog):
    _, conf, _ = small
    with caplog.at_level("INFO", logger="telcorec"):
        rc, out, err = run_sql(capsys, conf, "--format", "csv",
                               "SELECT count(*) AS n FROM offers")
    assert (rc, out, err) == (0, "n\n6\n", "")
    assert "1 row" in caplog.text


def test_latest_offers_shows_the_newest_succeeded_run_per_subscriber(small, capsys):
    _, conf, _ = small
    rc, out, _ = run_sql(capsys, conf, "--format", "csv", "SELECT subscriber_id, offer_id, "
                         "run_date FROM latest_offers ORDER BY subscriber_id, rank")
    assert rc == 0
    assert out.splitlines() == ["subscriber_id,offer_id,run_date", "S1,O4,2026-11-23",
                                "S1,O5,2026-11-23", "S2,O3,2026-11-22"]


def test_latest_offers_gives_the_same_rows_on_spark(spark, small):
    _, _, wh = small
    text = "SELECT * FROM latest_offers ORDER BY subscriber_id, rank"
    columns, rows = sql.duckdb_query(wh, text)
    spark_columns, spark_rows = sql.spark_query(spark, wh, DeltaRsWriter(), text)
    assert columns == spark_columns == schemas.OFFERS.fieldNames()
    assert [tuple(r) for r in rows] == [tuple(r) for r in spark_rows]


@pytest.mark.parametrize("text", [
    "DROP TABLE offers",
    "CREATE TABLE t AS SELECT * FROM offers",
    "CREATE TABLE t USING parquet LOCATION '{tmp}/loc' AS SELECT 1 AS a",
    "COPY (SELECT 1) TO '{tmp}/x.csv'",
    "EXPORT DATABASE '{tmp}/export'",
    "INSERT INTO offers SELECT * FROM offers",
    "DELETE FROM offers",
    "UPDATE runs SET status = 'succeeded'",
    "ATTACH '{tmp}/other.duckdb'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA threads = 1",
    "CALL dbgen(sf = 0.01)",
    "SELECT 1; DROP TABLE offers",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "",
])
def test_anything_but_a_query_exits_2_and_writes_nothing(small, capsys, text):
    root, conf, wh = small
    before = files_under(root)
    version = DeltaTable(str(wh.table("offers"))).version()
    rc, out, err = run_sql(capsys, conf, text.format(tmp=root))
    assert (rc, out) == (2, "")
    assert err.startswith("error: ") and "sql is read-only" in err
    assert files_under(root) == before
    assert DeltaTable(str(wh.table("offers"))).version() == version


def test_a_locked_connection_cannot_write_even_past_the_check(small, tmp_path):
    _, _, wh = small
    con = duckdb_views.connect(sql._tables(wh), sql.DERIVED)
    for statement in (f"COPY (SELECT 1) TO '{tmp_path}/x.csv'", f"ATTACH '{tmp_path}/a.db'",
                      f"SELECT * FROM read_csv('{wh.table('offers')}/_delta_log/*.json')",
                      "SET enable_external_access = true", "SET temp_directory = '/tmp'"):
        with pytest.raises(duckdb.Error):
            con.execute(statement)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", [
    "DROP TABLE offers",
    "CREATE TABLE t USING parquet LOCATION '{tmp}/loc' AS SELECT 1 AS a",
    "INSERT INTO offers SELECT * FROM offers",
    "CACHE TABLE offers",
    "FROM offers INSERT INTO TABLE offers SELECT *",   # past DuckDB's parser: Spark's refuses it
])
def test_the_spark_engine_refuses_them_too(spark, small, text):
    root, _, wh = small
    before = files_under(root)
    with pytest.raises(sql.QueryError, match="read-only"):
        sql.query(spark, wh, DeltaRsWriter(), text.format(tmp=root))
    assert files_under(root) == before
    assert {t.name for t in spark.catalog.listTables()} >= {"offers", "latest_offers"}


def test_the_spark_engine_runs_its_own_dialect_and_show(spark, small):
    _, _, wh = small
    _, rows = sql.spark_query(spark, wh, DeltaRsWriter(), "SELECT `offer_id`, explode(reasons) AS "
                              "reason FROM offers WHERE subscriber_id = 'S2' AND rank = 1 "
                              "AND run_id = 'r1' ORDER BY reason;")
    assert list(rows) == [("O3", "cold start"), ("O3", "r1")]
    _, shown = sql.spark_query(spark, wh, DeltaRsWriter(), "SHOW TABLES")
    assert "latest_offers" in {r[1] for r in shown}


def test_json_lines_keep_types_and_output_goes_to_the_file(small, capsys, tmp_path):
    _, conf, _ = small
    target = tmp_path / "out.json"
    rc, out, _ = run_sql(capsys, conf, "--format", "json", "--output", str(target),
                         "SELECT run_date, rank, score, reasons FROM offers WHERE "
                         "subscriber_id = 'S1' AND run_date = DATE '2026-11-22' ORDER BY rank")
    assert (rc, out) == (0, "")
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"run_date": "2026-11-22", "rank": 1, "score": 1.0, "reasons": ["r1", "cold start"]},
        {"run_date": "2026-11-22", "rank": 2, "score": 0.5, "reasons": ["r2", "cold start"]}]


def test_table_format_aligns_and_the_limit_says_what_it_cut(small, capsys, caplog):
    _, conf, _ = small
    with caplog.at_level("INFO", logger="telcorec"):
        rc, out, _ = run_sql(capsys, conf, "--limit", "2", "SELECT offer_id, rank, route FROM "
                             "offers ORDER BY offer_id")
    assert rc == 0
    assert out.splitlines() == ["offer_id | rank | route", "---------+------+------",
                                "O1       | 1    | NULL", "O2       | 2    | NULL"]
    assert "--limit 2 cuts them" in caplog.text


def test_a_table_not_written_yet_is_an_empty_view(small, capsys):
    _, conf, _ = small
    rc, out, _ = run_sql(capsys, conf, "--format", "csv", "SELECT trial, value FROM trials")
    assert (rc, out) == (0, "trial,value\n")


def test_a_bad_query_is_exit_2_with_the_engines_message(small, capsys):
    _, conf, _ = small
    rc, out, err = run_sql(capsys, conf, "SELECT no_such_column FROM offers")
    assert (rc, out) == (2, "") and "no_such_column" in err


def test_help_exits_0_on_stdout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sql.main(["--help"])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0 and "--format" in out and "read-only" in out
