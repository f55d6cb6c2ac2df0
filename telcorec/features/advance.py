"""The daily move of the window state, summed with numpy in Spark's Python tasks.

A daily run adds a few days of usage_daily rows to yesterday's state S(R-1) (window.py says which
days and why). Spark's aggregate of those rows costs ~116 conditional sums a row in generic
row-at-a-time code: measured at 100k subscribers (~0.8M rows), 4-5 s of a daily run whose
budget is a few seconds, against ~0.1 s for the same sums over numpy columns. So the state and
the day rows are grouped by a hash bucket of the subscriber (a Python worker holds one bucket
at a time: its memory is set by `buckets`, not by the number of subscribers) and each bucket is
summed in numpy with int64 arithmetic, exact like the Spark sums of the full recompute
(`window.state_and_totals`), which tests check it against.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import (
    BEHAVIOUR_COUNTS,
    HOUR_CALLS,
    MONTH_DAYS,
    MONTHLY_SUMS,
    Col,
    window_sums,
)
from telcorec.features.window import SlidingWindow, total

# What a usage_daily row is to the move (its `_role` column):
MOVED = 0      # a settled day of S(R-1) whose month changes or that leaves the window
SETTLING = 1   # the day that settles at R: added to the state
UNSETTLED = 2  # a late day, aggregated again this run: added to the totals only
ROLE, BUCKET = "_role", "_bucket"
SUBSCRIBERS_PER_BUCKET = 100_000  # ~100 MB of int64 sums in one task's Python worker


def buckets_for(subscribers: int, partitions: int) -> int:
    """Enough buckets that one holds about SUBSCRIBERS_PER_BUCKET subscribers at most, and four
    per shuffle partition: the exchange hashes bucket numbers onto partitions, and as many
    buckets as partitions left half of them empty (measured: 4 of 8 tasks did the work)."""
    return max(4 * partitions, math.ceil(subscribers / SUBSCRIBERS_PER_BUCKET))


def _month_index(days_back: np.ndarray, window: SlidingWindow) -> np.ndarray:
    """The 30-day month a day falls in, counted back from the run date; -1 outside the window."""
    inside = (days_back >= 0) & (days_back < window.days)
    return np.where(inside, days_back // MONTH_DAYS, -1)


def advance_bucket(previous: pa.Table, days: pa.Table, run_date: dt.date,
                   window: SlidingWindow) -> pa.Table:
    """One bucket's S(run_date) and totals from its S(run_date - 1) rows and its usage_daily
    rows (with `_role`): `state_and_totals`' columns, 0 where it has NULL (a subscriber without
    a settled row: `state_of` and `totals_of` drop those rows either way)."""
    names = window_sums(window.months)
    sides = [side for side in (previous, days) if side.num_rows]  # an empty side has no columns
    ids = pa.concat_arrays([side[Col.SUBSCRIBER_ID].combine_chunks().cast(pa.string())
                            for side in sides] or [pa.array([], pa.string())])
    encoded = pc.dictionary_encode(ids)
    n = len(encoded.dictionary)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    at_previous, at_days = codes[:previous.num_rows], codes[previous.num_rows:]
    state = {name: np.zeros(n, np.int64) for name in names}
    totals = {name: np.zeros(n, np.int64) for name in names}
    for name in names if previous.num_rows else ():  # one row a subscriber: placed, not summed
        state[name][at_previous] = previous[name].to_numpy(zero_copy_only=False)
    if days.num_rows:
        _add_days(days, at_days, state, totals, run_date, window)
    columns = {Col.SUBSCRIBER_ID: encoded.dictionary}
    columns.update({name: state[name] for name in names})
    columns.update({total(name): state[name] + totals[name] for name in names})
    return pa.table(columns)


def _add_days(days: pa.Table, at: np.ndarray, state: dict[str, np.ndarray],
              totals: dict[str, np.ndarray], run_date: dt.date, window: SlidingWindow) -> None:
    """Each usage_daily row's part at R added and a moved day's part at R - 1 taken away:
    settled rows into `state`, unsettled ones into `totals` (the state's share of them is 0)."""
    role = days[ROLE].to_numpy(zero_copy_only=False)
    day = days[Col.DAY].to_numpy(zero_copy_only=False).astype("datetime64[D]")
    back = (np.datetime64(run_date, "D") - day).astype(np.int64) - 1  # days back from R - 1
    month_now, month_before = _month_index(back, window), _month_index(back - 1, window)
    settled, moved = role != UNSETTLED, role == MOVED
    at_settled, at_unsettled = at[settled], at[~settled]

    def add(name: str, values: np.ndarray, now: np.ndarray, before: np.ndarray) -> None:
        signed = np.where(now, values, 0) - np.where(before & moved, values, 0)
        np.add.at(state[name], at_settled, signed[settled])
        np.add.at(totals[name], at_unsettled, signed[~settled])

    values = {name: days[name].to_numpy(zero_copy_only=False).astype(np.int64)
              for name in (*MONTHLY_SUMS, *HOUR_CALLS, *BEHAVIOUR_COUNTS)}
    for m in range(window.months):
        for name in MONTHLY_SUMS:
            add(f"{name}_{m}", values[name], month_now == m, month_before == m)
    for name in (*HOUR_CALLS, *BEHAVIOUR_COUNTS):
        add(name, values[name], month_now >= 0, month_before >= 0)
    add(Col.EVENTS_WINDOW, values["events"], month_now >= 0, month_before >= 0)


def advanced_schema(window: SlidingWindow) -> T.StructType:
    names = window_sums(window.months)
    return T.StructType([T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False)]
                        + [T.StructField(n, T.LongType(), False)
                           for n in (*names, *[total(n) for n in names])])


def advance(previous: DataFrame, moved: DataFrame, settling: DataFrame, unsettled: DataFrame,
            run_date: dt.date, window: SlidingWindow, buckets: int) -> DataFrame:
    """S(run_date) and the totals per subscriber (`state_and_totals`' columns) from
    S(run_date - 1) and the usage_daily rows of `window.moved_days(run_date)` as S(run_date - 1)
    holds them, of the settling day and of the unsettled days: one numpy call per bucket."""
    bucket = F.pmod(F.xxhash64(Col.SUBSCRIBER_ID), F.lit(buckets)).alias(BUCKET)
    # aliased: a new attribute on each side, or the cogroup drops the column from one side
    # when both descend from the same rows (as in the tests)
    subscriber = F.col(Col.SUBSCRIBER_ID).alias(Col.SUBSCRIBER_ID)
    names = window_sums(window.months)
    sums = (*MONTHLY_SUMS, *HOUR_CALLS, *BEHAVIOUR_COUNTS)
    days = [rows.select(bucket, subscriber, Col.DAY, F.lit(role).alias(ROLE), *sums)
            for rows, role in ((moved, MOVED), (settling, SETTLING), (unsettled, UNSETTLED))]
    day_rows = days[0].unionByName(days[1]).unionByName(days[2])
    state_rows = previous.select(bucket, subscriber, *names)

    def move(state: pa.Table, rows: pa.Table) -> pa.Table:
        return advance_bucket(state, rows, run_date, window)

    return (state_rows.groupBy(BUCKET).cogroup(day_rows.groupBy(BUCKET))
            .applyInArrow(move, advanced_schema(window)))

