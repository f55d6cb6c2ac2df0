"""The CDR summed per subscriber and calendar day: the grain the daily runs keep (`usage_daily`).

`daily_usage` is the one place that reads CDR rows. Every sum is an integer (`long`): events are
counted, data volume is summed in kilobytes and voice in milliseconds (each event rounded once,
here), so that the sliding window (window.py) can add a day and remove it again exactly, and a
window built day by day equals the window summed in one go, whatever the order of the additions.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import BEHAVIOUR_COUNTS, DAILY_SUMS, HOUR_CALLS, Col, EventType

KB_PER_MB = 1024
MS_PER_S = 1000


def _count(condition: Column) -> Column:
    return F.count(F.when(condition, F.lit(1)))


def _integral(value: str, factor: int) -> Column:
    return F.round(F.col(value) * factor).cast("long")


def daily_usage(cdr: DataFrame) -> DataFrame:
    """One row per subscriber and day with every CDR aggregate the features need (Col.DAY and
    the DAILY_SUMS columns, none NULL)."""
    # Hour and event kind derived once per row, before the aggregation, whose conditional
    # aggregates would otherwise each evaluate them again.
    kinds = F.when(F.col(Col.EVENT_TYPE) == EventType.VOICE, F.lit(1))
    kinds = kinds.when(F.col(Col.EVENT_TYPE) == EventType.SMS, F.lit(2))
    kinds = kinds.when(F.col(Col.EVENT_TYPE) == EventType.DATA, F.lit(3))
    rows = cdr.select(Col.SUBSCRIBER_ID, F.to_date(Col.EVENT_TS).alias(Col.DAY),
                      _integral(Col.DATA_MB, KB_PER_MB).alias("_kb"),
                      _integral(Col.DURATION_S, MS_PER_S).alias("_ms"),
                      Col.DURATION_S, Col.MISSED, Col.ROAMING, Col.INTERNATIONAL,
                      F.hour(Col.EVENT_TS).alias("_hour"), kinds.alias("_kind"))
    hour, kind = F.col("_hour"), F.col("_kind")
    voice, sms, data = (kind == 1), (kind == 2), (kind == 3)
    missed = F.coalesce(F.col(Col.MISSED), F.lit(False))
    sums = {"data_kb": F.sum(F.when(data, F.col("_kb"))),
            "voice_ms": F.sum(F.when(voice, F.col("_ms"))),
            "sms": _count(sms), "events": F.count(F.lit(1))}
    sums.update({name: _count(voice & (hour == h)) for h, name in enumerate(HOUR_CALLS)})
    behaviour = [_count(voice & missed), _count(voice & F.col(Col.MISSED).isNotNull()),
                 _count(voice & ~missed & (F.col(Col.DURATION_S) == 0)),
                 _count(F.col(Col.ROAMING)), F.count(Col.ROAMING),
                 _count(F.col(Col.INTERNATIONAL)), F.count(Col.INTERNATIONAL)]
    sums.update(zip(BEHAVIOUR_COUNTS, behaviour))
    # a day whose data events carry no volume sums to 0 kB, as the features have always read it
    aggs = [F.coalesce(sums[name], F.lit(0)).cast("long").alias(name) for name in DAILY_SUMS]
    return rows.groupBy(Col.SUBSCRIBER_ID, Col.DAY).agg(*aggs)
