"""Copenhagen Networks Study calls and SMS as CDR rows (Sapiezynski et al., Scientific Data 6,
315 (2019), doi:10.1038/s41597-019-0325-x; CC BY 4.0).

calls.csv is `timestamp,from,to,duration` and sms.csv `timestamp,from,to`; timestamps are seconds
from the study's start, anchored here at `inputs.copenhagen.start` (default: 28 days before the
run date, so the four weeks end before it). Each call or SMS is an event of its originator
(`from`). Durations: -1 is a missed call (duration 0, missed = true), 0 a zero-length call
(missed = false); both are kept and counted, never rejected; any other negative duration is
rejected by ingest as negative_duration. The event id is the row itself (kind, timestamp, from,
to, duration), so an identical repeated row is a duplicate_event. Every participant becomes a
subscriber of segment `inputs.copenhagen.segment` (payment type unknown: the data has none),
signed up at the study start. There is no catalogue and no plan history.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col, EventType
from telcorec.core.config import CopenhagenConfig, CsvConfig
from telcorec.core.exceptions import SchemaError
from telcorec.sources.files import read_csv, require_path, resolve
from telcorec.sources.parse import parse_text, text, with_parse_columns
from telcorec.sources.preflight import CsvSource

STUDY_DAYS = 28
MISSED_DURATION = -1


def study_start(cfg: CopenhagenConfig, run_date: dt.date) -> dt.datetime:
    if cfg.start:
        return dt.datetime.fromisoformat(cfg.start)
    return dt.datetime.combine(run_date - dt.timedelta(days=STUDY_DAYS), dt.time())


def _events(raw: DataFrame, kind: str, start: dt.datetime) -> DataFrame:
    needed = ["timestamp", "from", "to"] + (["duration"] if kind == EventType.VOICE else [])
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise SchemaError(f"the Copenhagen {kind} file lacks columns {missing} (expected "
                          f"{','.join(needed)})")
    parsed = {c: parse_text(text(F.col(f"`{c}`")), T.LongType(), CsvConfig()) for c in needed}
    failures = [F.when(text(F.col(f"`{c}`")).isNotNull() & v.isNull(), F.lit(c))
                for c, v in parsed.items()]
    origin = F.unix_timestamp(F.lit(start.isoformat(sep=" ")))
    duration = parsed.get("duration", F.lit(None).cast("long"))
    missed = duration == MISSED_DURATION
    event_id = F.concat_ws(":", F.lit(kind), *[text(F.col(f"`{c}`")) for c in needed])
    values = [
        event_id.alias(Col.EVENT_ID),
        parsed["from"].cast("string").alias(Col.SUBSCRIBER_ID),
        F.lit(kind).alias(Col.EVENT_TYPE),
        F.timestamp_seconds(origin + parsed["timestamp"]).alias(Col.EVENT_TS),
        F.when(missed, F.lit(0.0)).otherwise(duration.cast("double")).alias(Col.DURATION_S),
        F.lit(None).cast("double").alias(Col.DATA_MB),
        (missed if kind == EventType.VOICE else F.lit(None).cast("boolean")).alias(Col.MISSED),
        F.lit(None).cast("boolean").alias(Col.ROAMING),
        F.lit(None).cast("boolean").alias(Col.INTERNATIONAL),
        parsed["to"].cast("string").alias("_to"),
    ]
    return with_parse_columns(raw, values, failures, needed)


def subscribers(cdr: DataFrame, start: dt.datetime, segment: str) -> DataFrame:
    """Every participant seen as caller or callee in a parsed row."""
    ok = cdr.filter(F.col(Col.PARSE_ERROR).isNull())
    ids = (ok.select(F.col(Col.SUBSCRIBER_ID).alias("id"))
           .union(ok.select(F.col("_to").alias("id"))).distinct())
    out = ids.select(F.col("id").alias(Col.SUBSCRIBER_ID), F.lit(segment).alias(Col.SEGMENT),
                     F.lit(start.date()).alias(Col.SIGNUP_DATE),
                     F.lit("unknown").alias(Col.PAYMENT_TYPE),
                     F.lit(None).cast("string").alias(Col.PARSE_ERROR),
                     F.lit(None).cast("string").alias(Col.RAW_RECORD))
    return _conform(out, "subscribers")


def _conform(df: DataFrame, name: str) -> DataFrame:
    fields = [*schemas.full(name).fields, T.StructField(Col.PARSE_ERROR, T.StringType()),
              T.StructField(Col.RAW_RECORD, T.StringType())]
    return df.select(*[(F.col(f.name) if f.name in df.columns else F.lit(None))
                       .cast(f.dataType).alias(f.name) for f in fields])


def _read(spark: SparkSession, cfg: CopenhagenConfig, part: str,
          columns: tuple[str, ...]) -> DataFrame:
    key = f"inputs.copenhagen.{part}"
    path = require_path(resolve("", getattr(cfg, part)), key)
    return read_csv(spark, CsvSource(path, key, CsvConfig(encoding=cfg.encoding),
                                     "inputs.copenhagen", columns, key, fixed_delimiter=True))


def tables(spark: SparkSession, cfg: CopenhagenConfig, run_date: dt.date) -> dict[str, DataFrame]:
    start = study_start(cfg, run_date)
    calls = _read(spark, cfg, "calls", ("timestamp", "from", "to", "duration"))
    sms = _read(spark, cfg, "sms", ("timestamp", "from", "to"))
    cdr = _events(calls, EventType.VOICE, start).unionByName(_events(sms, EventType.SMS, start))
    return {"subscribers": subscribers(cdr, start, cfg.segment),
            "catalogue": _conform(spark.createDataFrame([], schemas.CATALOGUE), "catalogue"),
            "subscriptions": _conform(spark.createDataFrame([], schemas.SUBSCRIPTIONS),
                                      "subscriptions"),
            "cdr": _conform(cdr, "cdr")}
