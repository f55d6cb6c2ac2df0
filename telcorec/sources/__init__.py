"""Input adapters: the configured source (`inputs.source`) as the four input contract tables,
and the operator's `responses` to published offers (`read_responses`).

Every adapter returns, for each of subscribers, catalogue, subscriptions and cdr, a DataFrame
with the contract columns and the optional ones (`schemas.full(name)`, NULL where the source
lacks them) plus `_parse_error` / `_raw_record` for values that did not parse. Ingest then
judges every row the same way whatever its source. Config alone selects the adapter:

- generated, tables: Delta tables in the contract at `inputs.path` (the generator writes there)
- operator: your CSV / Parquet / Delta tables with a YAML column mapping (inputs.operator)
- ibm_telco: IBM's Telco Customer Churn CSV (subscribers, services as offers, churn label)
- copenhagen: the Copenhagen Networks Study calls and SMS as CDR rows
- interactions: generic user,item[,timestamp,weight] events with optional attribute tables
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from telcorec.core import schemas
from telcorec.core.config import Config, CsvConfig, TableSourceConfig
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import Writer
from telcorec.sources import copenhagen, ibm_telco, interactions
from telcorec.sources.files import read_delta, read_source, require_path, resolve
from telcorec.sources.parse import empty_parse_columns, map_table
from telcorec.sources.preflight import CsvSource, EmptyInput

log = logging.getLogger(__name__)
TABLES = tuple(schemas.INPUTS)


def contract_tables(spark: SparkSession, wh: Warehouse, writer: Writer,
                    extra_columns: str) -> dict[str, DataFrame]:
    """Delta tables already in the input contract (inputs.source generated or tables): every
    contract column must be there with its type (or one convertible value by value); optional
    columns may be. Drift fails in parse.check_columns, naming the column."""
    out = {}
    for name in TABLES:
        df = read_delta(spark, str(wh.input_table(name)), writer)
        contract = schemas.INPUTS[name].fieldNames()
        optional = [c for c in schemas.OPTIONAL[name].fieldNames() if c in df.columns]
        mapping = {c: c for c in [*contract, *optional]}
        out[name] = map_table(df, name, TableSourceConfig(columns=mapping), CsvConfig(),
                              f"inputs table '{name}'", required=tuple(contract), typed=True,
                              extra_columns=extra_columns)
    return out


def operator_tables(spark: SparkSession, cfg: Config, writer: Writer) -> dict[str, DataFrame]:
    """The operator's own tables (CSV, Parquet or Delta) through the YAML column mapping."""
    op = cfg.inputs.operator
    out = {}
    for name in TABLES:
        source: TableSourceConfig = getattr(op, name)
        key = f"inputs.operator.{name}"
        path = require_path(resolve(op.path, source.path), f"{key}.path")
        src = CsvSource(path, key, op.csv, "inputs.operator.csv", tuple(source.columns.values()))
        out[name] = map_table(read_source(spark, op.format, src, writer), name,
                              source, op.csv, key, typed=op.format != "csv",
                              extra_columns=cfg.ingest.extra_columns)
    return out


def read_inputs(spark: SparkSession, cfg: Config, run_date: dt.date, wh: Warehouse,
                writer: Writer) -> dict[str, DataFrame]:
    """The four input tables of the configured source (lazy; nothing is read yet but headers
    and table schemas, so a missing or mistyped column fails here, before any write)."""
    source = cfg.inputs.source
    if source in ("generated", "tables"):
        return contract_tables(spark, wh, writer, cfg.ingest.extra_columns)
    if source == "operator":
        return operator_tables(spark, cfg, writer)
    if source == "ibm_telco":
        return ibm_telco.tables(spark, cfg.inputs.ibm_telco, run_date)
    if source == "copenhagen":
        return copenhagen.tables(spark, cfg.inputs.copenhagen, run_date)
    return interactions.tables(spark, cfg.inputs.interactions, run_date, writer)


def no_responses(spark: SparkSession) -> DataFrame:
    """The responses of a source that has none: every offer went unanswered."""
    return empty_parse_columns(spark.createDataFrame([], schemas.full("responses")))


def read_responses(spark: SparkSession, cfg: Config, wh: Warehouse, writer: Writer) -> DataFrame:
    """The `responses` table of the configured source in the contract (lazy), or no rows when
    the source has none: a Delta table `responses` at inputs.path (generated, tables), the file
    inputs.operator.responses.path (operator; absent = none); the public-data adapters have no
    responses. A present file is mapped and checked like the other inputs."""
    source = cfg.inputs.source
    if source in ("generated", "tables"):
        path = wh.input_table("responses")
        if not writer.exists(spark, path):
            return no_responses(spark)
        df = read_delta(spark, str(path), writer)
        contract = schemas.FEEDBACK["responses"].fieldNames()
        return map_table(df, "responses", TableSourceConfig(columns={c: c for c in contract}),
                         CsvConfig(), "inputs table 'responses'", typed=True,
                         extra_columns=cfg.ingest.extra_columns)
    if source != "operator":
        return no_responses(spark)
    op = cfg.inputs.operator
    path = resolve(op.path, op.responses.path)
    if not Path(path).exists():
        return no_responses(spark)
    key = "inputs.operator.responses"
    try:
        raw = read_source(spark, op.format, CsvSource(path, key, op.csv, "inputs.operator.csv",
                                                      tuple(op.responses.columns.values())),
                          writer)
    except EmptyInput as exc:  # a day without answers may well be exported as an empty file
        log.warning("%s; reading it as no responses", exc)
        return no_responses(spark)
    return map_table(raw, "responses",
                     op.responses, op.csv, "inputs.operator.responses", typed=op.format != "csv",
                     extra_columns=cfg.ingest.extra_columns)
