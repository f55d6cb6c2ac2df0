"""Generic interactions (user, item[, timestamp, weight]) with optional user and item attribute
tables, in CSV or Parquet, as the four input contract tables, so public recommendation
benchmarks run through the same pipeline.

- subscriptions: one row per event: subscriber_id = user, offer_id = item, start_date = the
  event's date (the day before the run date when there is no timestamp) and start_ts its full
  timestamp, usage = weight (1 per event when there is no weight column). The interactions stage sums usage per pair.
- subscribers: every user seen in an event or in the user table; attributes mapped onto the
  subscriber contract columns (inputs.interactions.users.columns); segment "all" and payment
  type "n/a" where not mapped, signup at the user's first event.
- catalogue: every item seen in an event or in the item table; attributes mapped onto the
  catalogue columns; price, allowances and contract 0, plan type "item" where not mapped.
- cdr: none.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import InteractionsSourceConfig
from telcorec.core.exceptions import ConfigError, SchemaError
from telcorec.io.writer import Writer
from telcorec.sources.files import read_source, require_path, resolve
from telcorec.sources.parse import (
    map_table,
    parse_text,
    require_mapped,
    text,
    with_parse_columns,
)
from telcorec.sources.preflight import CsvSource

EVENT_KEYS = ("user", "item", "timestamp", "weight")
KEY = "inputs.interactions"
ITEM_DEFAULTS = {Col.PRICE: 0.0, Col.DATA_GB: 0.0, Col.VOICE_MIN: 0.0, Col.SMS: 0,
                 Col.CONTRACT_MONTHS: 0, Col.PLAN_TYPE: "item", Col.PAYMENT_TYPE: "n/a",
                 Col.FAMILY: False}


def _timestamp(s: Column, cfg: InteractionsSourceConfig) -> Column:
    if cfg.timestamp_unit == "format":
        return parse_text(s, T.TimestampType(), cfg.csv)
    seconds = s.try_cast("double")
    if cfg.timestamp_unit == "milliseconds":
        seconds = seconds / 1000.0
    return F.timestamp_seconds(seconds)


def events(raw: DataFrame, cfg: InteractionsSourceConfig, run_date: dt.date) -> DataFrame:
    """Event rows as subscriptions (plus the parse columns)."""
    cols = cfg.events.columns
    for key in cols:
        if key not in EVENT_KEYS:
            raise ConfigError(f"config key '{KEY}.events.columns.{key}': allowed {EVENT_KEYS}")
    for key in ("user", "item"):
        if key not in cols:
            raise SchemaError(f"{KEY}.events.columns: map '{key}' onto a source column")
    require_mapped(raw, cols, f"{KEY}.events.columns")
    src = {k: text(F.col(f"`{v}`")) for k, v in cols.items()}
    ts = _timestamp(src["timestamp"], cfg) if "timestamp" in src else None
    weight = src["weight"].try_cast("double") if "weight" in src else None
    failures = [F.when(src[k].isNotNull() & v.isNull(), F.lit(cols[k]))
                for k, v in (("timestamp", ts), ("weight", weight)) if v is not None]
    values = [src["user"].alias(Col.SUBSCRIBER_ID), src["item"].alias(Col.OFFER_ID),
              (F.to_date(ts) if ts is not None else F.lit(run_date - dt.timedelta(days=1)))
              .alias(Col.START_DATE),
              F.lit(None).cast("date").alias(Col.END_DATE),
              (weight if weight is not None else F.lit(1.0)).alias(Col.USAGE),
              # the full time orders the events of one day (a rating set's last day often
              # holds many): leave_one_out holds out the latest, not a random one of that day
              (ts if ts is not None else F.lit(None).cast("timestamp")).alias(Col.START_TS)]
    return with_parse_columns(raw, values, failures, sorted(set(cols.values())))


def _attributes(spark: SparkSession, cfg: InteractionsSourceConfig, part: str, name: str,
                key_col: str, writer: Writer) -> DataFrame | None:
    source = getattr(cfg, part)
    if not source.path:
        return None
    path = require_path(resolve(cfg.path, source.path), f"{KEY}.{part}.path")
    raw = read_source(spark, cfg.format, CsvSource(path, f"{KEY}.{part}", cfg.csv, f"{KEY}.csv",
                                                   tuple(source.columns.values())), writer)
    return map_table(raw, name, source, cfg.csv, f"{KEY}.{part}", required=(key_col,))


def _entities(ids: DataFrame, attrs: DataFrame | None, key_col: str, name: str,
              defaults: dict[str, Column]) -> DataFrame:
    """Every id from the events or the attribute table, with its attributes and defaults."""
    keys = ids.select(key_col)
    if attrs is not None:
        keys = keys.union(attrs.select(key_col).filter(F.col(key_col).isNotNull()))
    ids = keys.distinct().join(ids, on=key_col, how="left")
    if attrs is not None:
        ids = ids.join(attrs, on=key_col, how="left")
    out = ids.withColumns({c: F.coalesce(F.col(c), v) if c in ids.columns else v
                           for c, v in defaults.items()})
    fields = [*schemas.full(name).fields, T.StructField(Col.PARSE_ERROR, T.StringType()),
              T.StructField(Col.RAW_RECORD, T.StringType())]
    return out.select(*[(F.col(f.name) if f.name in out.columns else F.lit(None))
                        .cast(f.dataType).alias(f.name) for f in fields])


def tables(spark: SparkSession, cfg: InteractionsSourceConfig, run_date: dt.date,
           writer: Writer) -> dict[str, DataFrame]:
    path = require_path(resolve(cfg.path, cfg.events.path), f"{KEY}.events.path")
    src = CsvSource(path, f"{KEY}.events", cfg.csv, f"{KEY}.csv",
                    tuple(cfg.events.columns.values()))
    subs = events(read_source(spark, cfg.format, src, writer), cfg, run_date)
    ok = subs.filter(F.col(Col.PARSE_ERROR).isNull() & F.col(Col.SUBSCRIBER_ID).isNotNull())
    first = (ok.groupBy(Col.SUBSCRIBER_ID).agg(F.min(Col.START_DATE).alias("_first")))
    users = _entities(first, _attributes(spark, cfg, "users", "subscribers", Col.SUBSCRIBER_ID,
                                         writer), Col.SUBSCRIBER_ID, "subscribers",
                      {Col.SEGMENT: F.lit("all"), Col.PAYMENT_TYPE: F.lit("n/a"),
                       Col.SIGNUP_DATE: F.coalesce(F.col("_first"), F.lit(run_date))})
    items = _entities(ok.filter(F.col(Col.OFFER_ID).isNotNull()).select(Col.OFFER_ID).distinct(),
                      _attributes(spark, cfg, "items", "catalogue", Col.OFFER_ID, writer),
                      Col.OFFER_ID, "catalogue",
                      {c: F.lit(v) for c, v in ITEM_DEFAULTS.items()})
    cdr = spark.createDataFrame([], T.StructType([
        *schemas.full("cdr").fields, T.StructField(Col.PARSE_ERROR, T.StringType()),
        T.StructField(Col.RAW_RECORD, T.StringType())]))
    return {"subscribers": users, "catalogue": items, "subscriptions": subs, "cdr": cdr}
