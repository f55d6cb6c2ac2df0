"""The sliding window of the usage features, kept per subscriber and moved one day per run.

At run date R the features read the CDR of the window's days R - window_days .. R - 1, in 30-day
months counted back from R (month 0: R-30 .. R-1). A day's CDR may still change for
`late_days` days after it (late arrivals from mediation); older days are *settled*.

The window state S(R) (`usage_window`) holds, per subscriber, the sums of the settled days only
(R - window_days .. R - 1 - late_days), each in the month it falls in at R. Moving from S(R-1)
to S(R) touches a few days, never the whole window:
- the day R - 1 - late_days settles: it is added (from this run's aggregation);
- a settled day whose month changes (it crosses from month m to m + 1) or that leaves the
  window is removed at its place for R - 1 and added at its place for R (nothing, if it left):
  one day per month boundary plus the day leaving, about one day per month of the window.
The features then add the unsettled days R - late_days .. R - 1, aggregated again this run,
to the state (the totals). The daily move sums S(R-1) and those few days per subscriber in
numpy tasks (advance.py); the full recompute groups every settled and unsettled day once in
Spark, for both S(R) and the totals (`state_and_totals`). Every sum is an integer (daily.py), so
a state moved N times equals the state built in one go, whichever engine summed it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import (
    BEHAVIOUR_COUNTS,
    HOUR_CALLS,
    MONTH_DAYS,
    MONTHLY_SUMS,
    Col,
    window_sums,
)
from telcorec.core.exceptions import ConfigError

DAY = dt.timedelta(days=1)


def months_in_window(window_days: int) -> int:
    """Whole 30-day months the accepted CDR can cover (ingest rejects older events)."""
    return max(1, window_days // MONTH_DAYS)


@dataclass(frozen=True)
class SlidingWindow:
    days: int       # ingest.cdr_window_days
    late_days: int  # features.late_days

    def __post_init__(self) -> None:
        if self.days <= self.late_days + 1:
            raise ConfigError(
                f"ingest.cdr_window_days={self.days} must be larger than features.late_days + 1 "
                f"= {self.late_days + 1}: the window would hold no settled day; lower "
                "features.late_days or widen the window")

    @property
    def months(self) -> int:
        return months_in_window(self.days)

    @property
    def state_table(self) -> str:
        """The state's table: one per window shape, so that a changed window or late_days finds
        no state to continue from (and recomputes) instead of a state of another shape."""
        return f"usage_window_{self.days}d_{self.late_days}late"

    def last_settled(self, run_date: dt.date) -> dt.date:
        return run_date - (self.late_days + 1) * DAY

    def moved_days(self, run_date: dt.date) -> list[dt.date]:
        """Settled days of S(run_date - 1) whose place differs at run_date: each crosses a month
        boundary or leaves the window (days back from R-1: 30 m + 29, or window_days - 1)."""
        back = {MONTH_DAYS * m + MONTH_DAYS - 1 for m in range(self.months)} | {self.days - 1}
        return sorted(run_date - (2 + b) * DAY for b in back)

    def daily_source(self, day: dt.date, full_from: dt.date) -> dt.date:
        """The usage_daily partition (run date) that holds the settled version of `day` in a
        state descending from the full recompute of `full_from`: that recompute's own, or the
        run that settled the day after it."""
        return full_from if day <= self.last_settled(full_from) else day + (self.late_days + 1) * DAY


def contributions(daily: DataFrame, run_date: dt.date, window: SlidingWindow) -> DataFrame:
    """Each usage_daily row as its part of the window sums at `run_date`: its sums in the
    columns of the month it falls in, and in the whole-window sums; 0 outside the window."""
    days_back = F.datediff(F.lit(run_date), F.col(Col.DAY)) - 1
    inside = (days_back >= 0) & (days_back < window.days)
    month = F.when(inside, F.floor(days_back / MONTH_DAYS)).otherwise(F.lit(-1))

    def part(name: str, where: F.Column) -> F.Column:
        return F.when(where, F.col(name)).otherwise(F.lit(0)).cast("long")

    cols = [part(name, month == m).alias(f"{name}_{m}")
            for m in range(window.months) for name in MONTHLY_SUMS]
    cols += [part(name, inside).alias(name) for name in (*HOUR_CALLS, *BEHAVIOUR_COUNTS)]
    cols.append(part("events", inside).alias(Col.EVENTS_WINDOW))
    return daily.select(Col.SUBSCRIBER_ID, Col.DAY, *cols)


def total(name: str) -> str:
    """The column of a window sum's total (settled and unsettled days) in `state_and_totals`."""
    return f"_total_{name}"


def state_and_totals(daily: DataFrame, run_date: dt.date, window: SlidingWindow) -> DataFrame:
    """The full recompute, in one shuffle of the usage_daily rows: per subscriber, the sums of
    the settled days (S(run_date), NULL for a subscriber without a settled row) and the window's
    totals (settled and unsettled days). `state_of` and `totals_of` take them apart; one
    grouping instead of the state's and then the totals' (the totals would otherwise shuffle
    the state's rows a second time)."""
    names = window_sums(window.months)
    rows = contributions(daily, run_date, window).withColumn(
        "_settled", F.col(Col.DAY) <= window.last_settled(run_date))
    settled_sums = [F.sum(F.when(F.col("_settled"), F.col(name))).cast("long").alias(name)
                    for name in names]
    return (rows.groupBy(Col.SUBSCRIBER_ID)
            .agg(*settled_sums, *[F.sum(name).cast("long").alias(total(name))
                                  for name in names]))


def state_of(grouped: DataFrame, window: SlidingWindow) -> DataFrame:
    """S(run_date) from `state_and_totals`: subscribers with a settled CDR row in the window."""
    return (grouped.filter(F.col(Col.EVENTS_WINDOW) > 0)
            .select(Col.SUBSCRIBER_ID, *window_sums(window.months)))


def totals_of(grouped: DataFrame, window: SlidingWindow) -> DataFrame:
    """The window's sums from `state_and_totals`: subscribers with a CDR row in the window."""
    return (grouped.filter(F.col(total(Col.EVENTS_WINDOW)) > 0)
            .select(Col.SUBSCRIBER_ID, *[F.col(total(name)).alias(name)
                                         for name in window_sums(window.months)]))
