"""Usage and behaviour features from ONE aggregation of the CDR (one pass, one grain).

`cdr_aggregate` is the only place that reads CDR rows: a single `groupBy(subscriber_id)` whose
aggregates are conditional sums per 30-day billing month (data MB, voice seconds, SMS, events),
per hour of day (calls), and counts of missed, zero-length, roaming and international events.
Everything else (monthly means and spread, trend, peak hour, shares) is computed row by row from
that one row per subscriber, so the billions of usage records are read and shuffled once
(partial aggregation leaves about one row per subscriber and partition to shuffle).

Months count back from the run date: month 0 holds the 30 days before it, month 1 the 30 before
those, and so on. A month counts as observed for a subscriber when it holds any of their events.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col, EventType
from telcorec.core.config import FeaturesConfig

MONTH_DAYS = 30
HOURS = 24
GROWING, DECLINING, STABLE, UNKNOWN = "growing", "declining", "stable", "unknown"


def months_in_window(window_days: int) -> int:
    """Whole 30-day months the accepted CDR can cover (ingest rejects older events)."""
    return max(1, window_days // MONTH_DAYS)


def _count(condition: Column) -> Column:
    return F.count(F.when(condition, F.lit(1)))


def cdr_aggregate(cdr: DataFrame, run_date: dt.date, months: int) -> DataFrame:
    """One row per subscriber with every CDR aggregate the features need (the one pass)."""
    # Month, hour and event kind derived once per row, before the aggregation, whose 55
    # conditional aggregates would otherwise each evaluate them again (measured over 93.7M rows
    # on local[2], warm: 19.0-19.1 s against 19.4-20.9 s).
    kinds = F.when(F.col(Col.EVENT_TYPE) == EventType.VOICE, F.lit(1))
    kinds = kinds.when(F.col(Col.EVENT_TYPE) == EventType.SMS, F.lit(2))
    kinds = kinds.when(F.col(Col.EVENT_TYPE) == EventType.DATA, F.lit(3))
    days_back = F.datediff(F.lit(run_date), F.to_date(Col.EVENT_TS)) - 1
    rows = cdr.select(Col.SUBSCRIBER_ID, Col.DATA_MB, Col.DURATION_S, Col.MISSED, Col.ROAMING,
                      Col.INTERNATIONAL,
                      F.floor(days_back / MONTH_DAYS).cast("int").alias("_month"),
                      F.hour(Col.EVENT_TS).alias("_hour"), kinds.alias("_kind"))
    month, hour, kind = F.col("_month"), F.col("_hour"), F.col("_kind")
    voice, sms, data = (kind == 1), (kind == 2), (kind == 3)
    missed = F.coalesce(F.col(Col.MISSED), F.lit(False))
    aggs = []
    for m in range(months):
        in_month = month == m
        aggs += [F.sum(F.when(data & in_month, F.col(Col.DATA_MB))).alias(f"data_mb_{m}"),
                 F.sum(F.when(voice & in_month, F.col(Col.DURATION_S))).alias(f"voice_s_{m}"),
                 _count(sms & in_month).alias(f"sms_{m}"),
                 _count(in_month).alias(f"events_{m}")]
    aggs += [_count(voice & (hour == h)).alias(f"calls_h{h}") for h in range(HOURS)]
    aggs += [_count(voice & missed).alias("calls_missed"),
             _count(voice & F.col(Col.MISSED).isNotNull()).alias("calls_missed_known"),
             _count(voice & ~missed & (F.col(Col.DURATION_S) == 0)).alias("calls_zero"),
             _count(F.col(Col.ROAMING)).alias("roaming"),
             F.count(Col.ROAMING).alias("roaming_known"),
             _count(F.col(Col.INTERNATIONAL)).alias("international"),
             F.count(Col.INTERNATIONAL).alias("international_known")]
    return rows.groupBy(Col.SUBSCRIBER_ID).agg(*aggs)


def _mean_std(values: list[Column]) -> tuple[Column, Column]:
    """Mean and sample standard deviation of the non-NULL values (std NULL below 2 values)."""
    present = F.filter(F.array(*values), lambda x: x.isNotNull())
    n = F.size(present)
    mean = F.aggregate(present, F.lit(0.0), lambda acc, x: acc + x) / n
    squares = F.aggregate(present, F.lit(0.0), lambda acc, x: acc + (x - mean) * (x - mean))
    std = F.when(n >= 2, F.sqrt(squares / (n - 1)))
    return F.when(n > 0, mean), std


def _monthly(prefix: str, scale: float, months: int) -> list[Column]:
    """Per observed month, the usage in display units (a month without events is NULL)."""
    return [F.when(F.col(f"events_{m}") > 0,
                   F.coalesce(F.col(f"{prefix}_{m}").cast("double"), F.lit(0.0)) / scale)
            for m in range(months)]


def data_trend(recent: Column, prior: Column, known: Column, band: float) -> tuple[Column, Column]:
    """(label, relative change) of recent vs prior data: growing > +band, declining < -band."""
    change = F.when(prior > 0, (recent - prior) / prior)
    label = (F.when(~known, F.lit(UNKNOWN))
             .when(prior == 0, F.when(recent > 0, F.lit(GROWING)).otherwise(F.lit(STABLE)))
             .when(change > band, F.lit(GROWING)).when(change < -band, F.lit(DECLINING))
             .otherwise(F.lit(STABLE)))
    return label, F.when(known, change)


def _share(part: str, whole: Column) -> Column:
    return F.when(whole > 0, F.col(part) / whole)


def usage_profile(agg: DataFrame, months: int, cfg: FeaturesConfig) -> DataFrame:
    """Per-subscriber usage and behaviour features, row by row from `cdr_aggregate`."""
    data_mean, data_std = _mean_std(_monthly("data_mb", 1024.0, months))
    voice_mean, voice_std = _mean_std(_monthly("voice_s", 60.0, months))
    sms_mean, sms_std = _mean_std(_monthly("sms", 1.0, months))
    k = cfg.trend_months
    half = lambda lo: sum(F.coalesce(F.col(f"data_mb_{m}"), F.lit(0.0)) for m in range(lo, lo + k))
    if months >= 2 * k:
        prior_events = sum(F.col(f"events_{m}") for m in range(k, 2 * k))
        trend, change = data_trend(half(0), half(k), prior_events > 0, cfg.trend_band)
    else:  # the CDR window cannot hold two halves of trend_months
        trend, change = F.lit(UNKNOWN), F.lit(None).cast("double")
    hours = [F.col(f"calls_h{h}") for h in range(HOURS)]
    calls = sum(hours)
    start, end = cfg.business_hours
    peak = F.array_position(F.array(*hours), F.array_max(F.array(*hours))) - 1
    return agg.select(
        Col.SUBSCRIBER_ID,
        data_mean.alias(Col.DATA_GB_MONTH), data_std.alias(Col.DATA_GB_MONTH_STD),
        voice_mean.alias(Col.VOICE_MIN_MONTH), voice_std.alias(Col.VOICE_MIN_MONTH_STD),
        sms_mean.alias(Col.SMS_MONTH), sms_std.alias(Col.SMS_MONTH_STD),
        trend.alias(Col.DATA_TREND), change.alias(Col.DATA_TREND_PCT),
        F.when(calls > 0, peak.cast("int")).alias(Col.PEAK_CALL_HOUR),
        F.when(calls > 0, sum(hours[start:end]) / calls).alias(Col.BUSINESS_HOURS_RATIO),
        _share("calls_missed", F.col("calls_missed_known")).alias(Col.MISSED_CALL_SHARE),
        F.when(calls > 0, F.col("calls_zero") / calls).alias(Col.ZERO_LENGTH_SHARE),
        _share("roaming", F.col("roaming_known")).alias(Col.ROAMING_SHARE),
        _share("international", F.col("international_known")).alias(Col.INTERNATIONAL_SHARE))


def stability(cv: Column, stable_cv: float) -> Column:
    """stable when the coefficient of variation std / (mean + 1) is below the threshold."""
    return (F.when(cv.isNull(), F.lit(UNKNOWN)).when(cv < stable_cv, F.lit("stable"))
            .otherwise(F.lit("variable")))
