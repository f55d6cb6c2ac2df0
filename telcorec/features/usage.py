"""Usage and behaviour features, row by row from the window's sums (one row per subscriber).

The sums come from the CDR aggregated once per subscriber and day (daily.py) and kept in a
sliding window (window.py): integer sums per 30-day billing month (data kB, voice ms, SMS,
events), per hour of day (calls), and counts of missed, zero-length, roaming and international
events. Everything here (monthly means and spread, trend, peak hour, shares) is computed row by
row from them.

Months count back from the run date: month 0 holds the 30 days before it, month 1 the 30 before
those, and so on. A month counts as observed for a subscriber when it holds any of their events.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import HOURS, Col
from telcorec.core.config import FeaturesConfig

KB_PER_GB = 1024 * 1024
MS_PER_MIN = 60_000
GROWING, DECLINING, STABLE, UNKNOWN = "growing", "declining", "stable", "unknown"
KINDS = {"data": ("data_kb", KB_PER_GB), "voice": ("voice_ms", MS_PER_MIN), "sms": ("sms", 1.0)}


def _count_and_mean(values: list[Column]) -> tuple[Column, Column]:
    """How many values are not NULL, and their mean (summed left to right; NULL when none)."""
    zero = F.lit(0.0)
    n = sum((x.isNotNull().cast("int") for x in values), F.lit(0))
    return n, sum((F.coalesce(x, zero) for x in values), zero) / n


def _std(values: list[Column], n: Column, mean: Column) -> Column:
    """Sample standard deviation of the non-NULL values around `mean` (NULL below 2 values)."""
    zero = F.lit(0.0)
    squares = sum((F.when(x.isNotNull(), (x - mean) * (x - mean)).otherwise(zero)
                   for x in values), zero)
    return F.when(n >= 2, F.sqrt(squares / (n - 1)))


def _monthly(prefix: str, scale: float, months: int) -> list[Column]:
    """Per observed month, the usage in display units (a month without events is NULL)."""
    return [F.when(F.col(f"events_{m}") > 0, F.col(f"{prefix}_{m}").cast("double") / scale)
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
    """Per-subscriber usage and behaviour features, row by row from the window's totals
    (`window.totals_of`).

    The monthly means come first, in a projection of their own, and the spreads read them as
    columns: written as one expression, each spread repeated its mean's whole sum in every
    term, and Spark's generated code for that took ~5 us a row (17 s for 3.2M rows), most of
    the features' row-by-row cost. Plain arithmetic over the month columns, not an array and
    higher-order functions, which Spark interprets row by row."""
    monthly = {kind: _monthly(prefix, scale, months) for kind, (prefix, scale) in KINDS.items()}
    agg = agg.select("*", *[expr.alias(f"_{what}_{kind}") for kind, values in monthly.items()
                            for what, expr in zip(("n", "mean"), _count_and_mean(values))])
    means, stds = {}, {}
    for kind, values in monthly.items():
        n, mean = F.col(f"_n_{kind}"), F.col(f"_mean_{kind}")
        means[kind], stds[kind] = F.when(n > 0, mean), _std(values, n, mean)
    data_mean, data_std = means["data"], stds["data"]
    voice_mean, voice_std = means["voice"], stds["voice"]
    sms_mean, sms_std = means["sms"], stds["sms"]
    k = cfg.trend_months
    half = lambda lo: sum(F.col(f"data_kb_{m}") for m in range(lo, lo + k))
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
