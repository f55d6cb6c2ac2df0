"""Stage 1, ingest: validate the four input tables; every row is accepted or quarantined.

Each rule is a named boolean Column; a row's reject reason is the first rule it breaks, in the
order listed. Accepted rows go to the validated tables of this run date, the others to `rejects`
with the reason and the row as JSON. For every table read = accepted + rejected, which the
stage reports and checks.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from telcorec import schemas, storage
from telcorec.columns import Col, EventType
from telcorec.config import Config
from telcorec.exceptions import DataError
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)
MAX_DURATION_S = 24 * 3600


@dataclass(frozen=True)
class TableCounts:
    table: str
    read: int
    accepted: int
    rejected_by_reason: dict[str, int]

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def _first_failing(rules: list[tuple[str, Column]]) -> Column:
    reason = F.lit(None).cast("string")
    for name, broken in reversed(rules):
        reason = F.when(broken, F.lit(name)).otherwise(reason)
    return reason


def _duplicate(key: str, order: list[str]) -> Column:
    """True for every copy of a key but the first (ordered by `order`, then the whole row)."""
    window = Window.partitionBy(key).orderBy(*[F.col(c).asc_nulls_last() for c in order],
                                             F.xxhash64(F.to_json(F.struct("*"))))
    return F.row_number().over(window) > 1


def tag_subscribers(df: DataFrame) -> DataFrame:
    missing = (F.col(Col.SEGMENT).isNull() | F.col(Col.PAYMENT_TYPE).isNull()
               | F.col(Col.SIGNUP_DATE).isNull())
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.SUBSCRIBER_ID).isNull()),
        ("missing_attribute", missing),
        ("duplicate_id", _duplicate(Col.SUBSCRIBER_ID, [Col.SIGNUP_DATE])),
    ]))


def tag_catalogue(df: DataFrame) -> DataFrame:
    missing = (F.col(Col.PRICE).isNull() | F.col(Col.DATA_GB).isNull()
               | F.col(Col.PLAN_TYPE).isNull() | F.col(Col.PAYMENT_TYPE).isNull())
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.OFFER_ID).isNull()),
        ("missing_attribute", missing),
        ("negative_price", F.col(Col.PRICE) < 0),
        ("duplicate_id", _duplicate(Col.OFFER_ID, [Col.PRICE])),
    ]))


def _known(df: DataFrame, keys: DataFrame, key: str, flag: str) -> DataFrame:
    known = keys.select(F.col(key), F.lit(True).alias(flag))
    return df.join(known, on=key, how="left")


def tag_subscriptions(df: DataFrame, subscriber_ids: DataFrame, offer_ids: DataFrame,
                      run_date: dt.date) -> DataFrame:
    df = _known(_known(df, subscriber_ids, Col.SUBSCRIBER_ID, "_known_sub"),
                offer_ids, Col.OFFER_ID, "_known_offer")
    bad_dates = ((F.col(Col.START_DATE) > F.lit(run_date))
                 | (F.col(Col.END_DATE) < F.col(Col.START_DATE)))
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.SUBSCRIBER_ID).isNull() | F.col(Col.OFFER_ID).isNull()
         | F.col(Col.START_DATE).isNull()),
        ("unknown_subscriber", F.col("_known_sub").isNull()),
        ("unknown_offer", F.col("_known_offer").isNull()),
        ("invalid_dates", bad_dates),
    ])).drop("_known_sub", "_known_offer")


def tag_cdr(df: DataFrame, subscriber_ids: DataFrame, run_date: dt.date,
            window_days: int) -> DataFrame:
    df = _known(df, subscriber_ids, Col.SUBSCRIBER_ID, "_known_sub")
    run_start = F.lit(dt.datetime.combine(run_date, dt.time()))
    window_start = F.lit(dt.datetime.combine(run_date - dt.timedelta(days=window_days), dt.time()))
    is_voice = F.col(Col.EVENT_TYPE) == EventType.VOICE
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.EVENT_ID).isNull() | F.col(Col.SUBSCRIBER_ID).isNull()
         | F.col(Col.EVENT_TS).isNull()),
        ("unknown_event_type", ~F.col(Col.EVENT_TYPE).isin(*EventType.ALL)
         | F.col(Col.EVENT_TYPE).isNull()),
        ("negative_duration", is_voice & (F.col(Col.DURATION_S) < 0)),
        ("absurd_duration", is_voice & (F.col(Col.DURATION_S) > MAX_DURATION_S)),
        ("negative_volume", F.col(Col.DATA_MB) < 0),
        ("future_timestamp", F.col(Col.EVENT_TS) >= run_start),
        ("outside_window", F.col(Col.EVENT_TS) < window_start),
        ("unknown_subscriber", F.col("_known_sub").isNull()),
        ("duplicate_event", _duplicate(Col.EVENT_ID, [Col.EVENT_TS])),
    ])).drop("_known_sub")


def accepted_rows(tagged: DataFrame, schema, run_date: dt.date) -> DataFrame:
    return (tagged.filter(F.col(Col.REASON).isNull())
            .withColumn(Col.RUN_DATE, F.lit(run_date))
            .select(Col.RUN_DATE, *schema.fieldNames()))


def rejected_rows(tagged: DataFrame, table: str, schema, run_date: dt.date) -> DataFrame:
    record = F.to_json(F.struct(*[F.col(c) for c in schema.fieldNames()]))
    return (tagged.filter(F.col(Col.REASON).isNotNull())
            .select(F.lit(run_date).alias(Col.RUN_DATE), F.lit(table).alias(Col.SOURCE_TABLE),
                    F.col(Col.REASON), record.alias(Col.RECORD)))


def count_tagged(tagged: DataFrame, table: str) -> TableCounts:
    """One small aggregation: rows per reason (NULL = accepted)."""
    by_reason = {r[Col.REASON]: r["count"] for r in tagged.groupBy(Col.REASON).count().collect()}
    accepted = by_reason.pop(None, 0)
    return TableCounts(table, accepted + sum(by_reason.values()), accepted, by_reason)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> list[TableCounts]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    raw = {}
    for name, schema in schemas.INPUTS.items():
        df = storage.read_table(spark, wh.input_table(name), schema)
        schemas.require_columns(df, schema, name)
        raw[name] = df
    writer = storage.choose_writer(spark, cfg.storage.writer)
    results, tagged_all = [], []

    def settle(name: str, tagged: DataFrame) -> DataFrame:
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
        tagged_all.append(tagged)
        counts = count_tagged(tagged, name)
        share = counts.rejected / counts.read if counts.read else 0.0
        if share > cfg.ingest.max_reject_share:
            raise DataError(
                f"{counts.rejected} of {counts.read} rows of '{name}' ({share:.1%}) were rejected, "
                f"above ingest.max_reject_share={cfg.ingest.max_reject_share}: "
                f"{counts.rejected_by_reason}. Fix the source or raise the limit.")
        results.append(counts)
        log.info("ingest %s: read %d, accepted %d, rejected %d %s", name, counts.read,
                 counts.accepted, counts.rejected, counts.rejected_by_reason)
        return tagged

    subs = settle("subscribers", tag_subscribers(raw["subscribers"]))
    cat = settle("catalogue", tag_catalogue(raw["catalogue"]))
    sub_ids = subs.filter(F.col(Col.REASON).isNull()).select(Col.SUBSCRIBER_ID)
    offer_ids = cat.filter(F.col(Col.REASON).isNull()).select(Col.OFFER_ID)
    hist = settle("subscriptions", tag_subscriptions(raw["subscriptions"], sub_ids, offer_ids,
                                                     run_date))
    cdr = settle("cdr", tag_cdr(raw["cdr"], sub_ids, run_date, cfg.ingest.cdr_window_days))

    rejects = None
    for name, tagged in (("subscribers", subs), ("catalogue", cat), ("subscriptions", hist),
                         ("cdr", cdr)):
        schema = schemas.INPUTS[name]
        storage.replace_partition(accepted_rows(tagged, schema, run_date), wh.table(name),
                                  schemas.validated(schema), run_date, writer)
        part = rejected_rows(tagged, name, schema, run_date)
        rejects = part if rejects is None else rejects.unionByName(part)
    storage.replace_partition(rejects, wh.table("rejects"), schemas.REJECTS, run_date, writer)
    for tagged in tagged_all:
        tagged.unpersist()
    return results
