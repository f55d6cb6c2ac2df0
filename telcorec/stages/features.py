"""The features stage: read the validated tables, bring the CDR's sliding window to the run date
(one new day and the late days, or a full recompute), fit the feature statistics (or reuse the
saved ones) and write `subscriber_features` and `offer_features` (the transforms live in
telcorec/features; how a daily run works: README "Daily runs")."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import operator
import time
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError
from telcorec.features import fit_stats
from telcorec.features.advance import advance, buckets_for
from telcorec.features.churn import fit_churn_model, has_label, with_churn
from telcorec.features.daily import daily_usage
from telcorec.features.offers import offer_features
from telcorec.features.stats import FeatureStats, newest_saved
from telcorec.features.subscriber import current_plans, subscriber_base
from telcorec.features.usage import usage_profile
from telcorec.features.window import (
    DAY,
    SlidingWindow,
    state_and_totals,
    state_of,
    total,
    totals_of,
)
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: Config, run_date: dt.date, *,
        full: bool = False) -> dict[str, object]:
    """`full`: recompute the window from the run date's whole CDR partition even when the
    previous day's state would let this run read only the new and late days."""
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer, read = ctx.wh, ctx.writer, ctx.read
    catalogue, subscribers = read("catalogue"), read("subscribers")
    started = last = time.monotonic()
    seconds: dict[str, float] = {}  # per phase, in the result: where a run's time went

    def phase(name: str, done: str) -> None:  # minutes at CDR scale: say where the time goes
        nonlocal last
        now = time.monotonic()
        seconds[name] = round(now - last, 2)
        last = now
        log.info("features: %s (%.1f s)", done, now - started)

    window = SlidingWindow(cfg.ingest.cdr_window_days, cfg.features.late_days)
    usage = usage_totals(ctx, window, full)
    profile = usage_profile(usage.totals, window.months, cfg.features).cache()
    seconds["usage_daily"] = usage.daily_seconds  # the CDR days aggregated into usage_daily
    phase("window_state", f"CDR window ({usage.mode}): state of {usage.state_rows:,} "
          f"subscribers written, {window.months} months")
    seconds["window_state"] = round(seconds["window_state"] - usage.daily_seconds, 2)
    stats_path = wh.feature_stats(run_date)
    if cfg.features.fit_stats:
        stats = fit_stats(profile, catalogue, cfg.features)
        phase("statistics", "quantile edges and scales fitted")
    else:
        stats = FeatureStats.load(newest_saved(stats_path.parent, run_date.isoformat()))
    plans = current_plans(read("subscriptions"), run_date)
    base = subscriber_base(subscribers, profile, plans, catalogue, stats, cfg.features, run_date)
    if cfg.features.churn_model == "rule":
        stats = dataclasses.replace(stats, churn=None)
    elif cfg.features.fit_stats and has_label(subscribers):
        stats = dataclasses.replace(stats, churn=fit_churn_model(base, cfg.features, cfg.seed))
        phase("churn", "churn classifier fitted")
    stats.save(stats_path)
    subs = schemas.conform(with_churn(base, stats.churn, cfg.features),
                           schemas.SUBSCRIBER_FEATURES)
    n_subs = writer.replace_partition(subs, wh.table("subscriber_features"),
                                      schemas.SUBSCRIBER_FEATURES, run_date)
    phase("subscriber_features", f"subscriber_features written: {n_subs:,} rows")
    n_offers = writer.replace_partition(offer_features(catalogue, stats, run_date),
                                        wh.table("offer_features"), schemas.OFFER_FEATURES,
                                        run_date)
    phase("offer_features", f"offer_features written: {n_offers:,} rows")
    profile.unpersist()
    usage.cached.unpersist()
    result: dict[str, object] = {"subscriber_features": n_subs, "offer_features": n_offers,
                                 "feature_stats_version": stats.version,
                                 "usage_window": usage.mode, "seconds": seconds}
    if stats.churn is not None:
        result["churn_holdout_auc"] = round(stats.churn.holdout_auc or float("nan"), 4)
    return result


def run_range(spark: SparkSession, cfg: Config, first: dt.date, last: dt.date, *,
              full: bool = False) -> dict[str, object]:
    """Backfill: every run date from `first` to `last` in order. The first one recomputes the
    window unless the day before it has a state; each later one moves it by one day. `full`
    recomputes every date."""
    if last < first:
        raise ConfigError(f"--from {first} is after --to {last}; give an earlier --from")
    results = {}
    day = first
    while day <= last:
        results[day.isoformat()] = run(spark, cfg, day, full=full)
        day += DAY
    return results


class Usage(NamedTuple):
    totals: DataFrame  # the window's sums per subscriber with usage (usage_profile's input)
    mode: str          # "incremental", or "full: <why>"
    state_rows: int    # subscribers in the window state written (-1: the spark writer)
    cached: DataFrame  # what `totals` reads from: unpersist when the stage is done
    daily_seconds: float  # spent aggregating the CDR days into usage_daily


def usage_totals(ctx: StageContext, window: SlidingWindow, full: bool) -> Usage:
    """The window's sums per subscriber at the run date, and how they were obtained."""
    reason = "forced (--full)" if full else None
    if reason is None:
        previous = _previous_state(ctx, window)
        if isinstance(previous, str):
            reason = previous
        else:
            outcome = _incremental(ctx, window, previous)
            if not isinstance(outcome, str):
                return outcome
            reason = outcome
    log.warning("features: full recompute of the CDR window for %s: %s", ctx.run_date, reason)
    return _full(ctx, window, f"full: {reason}")


class Previous(NamedTuple):
    state: DataFrame    # S(run_date - 1)
    full_from: dt.date  # the run date of the full recompute it descends from
    rows: int           # its subscribers


def _previous_state(ctx: StageContext, window: SlidingWindow) -> Previous | str:
    """S(run_date - 1), or why this run cannot continue from it."""
    before = ctx.run_date - DAY
    path = ctx.wh.table(window.state_table)
    rows = ctx.writer.partition_rows(ctx.spark, path, before)
    if rows == 0:
        return (f"no window state for {before} in {window.state_table} (a first run, a missed "
                "day, or ingest.cdr_window_days / features.late_days changed since)")
    state = ctx.writer.read(ctx.spark, path, schemas.usage_window(window.months), [before])
    full_from = state.select(Col.FULL_FROM).first()[0]  # one value per partition: one row read
    for source in sorted({window.daily_source(d, full_from)
                          for d in window.moved_days(ctx.run_date)}):
        if ctx.writer.partition_rows(ctx.spark, ctx.wh.table("usage_daily"), source) == 0:
            return (f"usage_daily has no partition run_date={source}, which holds days the "
                    f"window state of {before} must move")
    return Previous(state.drop(Col.FULL_FROM), full_from, rows)


def _incremental(ctx: StageContext, window: SlidingWindow, previous: Previous) -> Usage | str:
    """Aggregate the day that settles now and the late days, move the state by one day; or say
    why the CDR partition holds rows the state does not account for."""
    settling_day = window.last_settled(ctx.run_date)
    # a pushed-down filter: row groups of older days are skipped, not read
    first = F.to_timestamp(F.lit(settling_day.isoformat()))
    daily, daily_seconds = _write_daily(ctx, ctx.read("cdr").filter(F.col(Col.EVENT_TS) >= first))
    moved = _read_days(ctx, {d: window.daily_source(d, previous.full_from)
                             for d in window.moved_days(ctx.run_date)})
    settling = daily.filter(F.col(Col.DAY) == settling_day)
    unsettled = daily.filter(F.col(Col.DAY) > settling_day)
    partitions = int(ctx.spark.conf.get("spark.sql.shuffle.partitions"))
    grouped = advance(previous.state, moved, settling, unsettled, ctx.run_date, window,
                      buckets_for(previous.rows, partitions)).cache()
    in_partition = ctx.writer.partition_rows(ctx.spark, ctx.wh.table("cdr"), ctx.run_date)
    # the window's events, settled and late days: one sum, which also fills the cache the
    # state and the features read
    counted = grouped.agg(F.sum(total(Col.EVENTS_WINDOW))).first()[0] or 0
    if counted != in_partition:
        grouped.unpersist()
        return (f"the cdr partition run_date={ctx.run_date} holds {in_partition:,} rows but "
                f"the window state and the {window.late_days} late days account for "
                f"{counted:,}: CDR older than features.late_days="
                f"{window.late_days} days changed (raise features.late_days if they often "
                "arrive this late)")
    rows = _write_state(ctx, window, state_of(grouped, window), previous.full_from)
    return Usage(totals_of(grouped, window), "incremental", rows, grouped, daily_seconds)


def _full(ctx: StageContext, window: SlidingWindow, mode: str) -> Usage:
    """The window from the run date's whole CDR partition (read once), the state started anew."""
    daily, daily_seconds = _write_daily(ctx, ctx.read("cdr"))
    grouped = state_and_totals(daily, ctx.run_date, window).cache()
    rows = _write_state(ctx, window, state_of(grouped, window), ctx.run_date)
    return Usage(totals_of(grouped, window), mode, rows, grouped, daily_seconds)


def _read_daily(ctx: StageContext, run_date: dt.date) -> DataFrame:
    return ctx.writer.read(ctx.spark, ctx.wh.table("usage_daily"), schemas.USAGE_DAILY, [run_date])


def _read_days(ctx: StageContext, sources: dict[dt.date, dt.date]) -> DataFrame:
    """The usage_daily rows of each day from its source partition, in one scan (day and run
    date are filters on sorted and partition columns: the other row groups are skipped)."""
    daily = ctx.writer.read(ctx.spark, ctx.wh.table("usage_daily"), schemas.USAGE_DAILY,
                            sorted(set(sources.values())))
    wanted = functools.reduce(operator.or_, [
        (F.col(Col.DAY) == day) & (F.col(Col.RUN_DATE) == source)
        for day, source in sources.items()])
    return daily.filter(F.col(Col.DAY).isin(list(sources)) & wanted)


def _write_daily(ctx: StageContext, cdr: DataFrame) -> tuple[DataFrame, float]:
    """Aggregate the CDR rows per subscriber and day into this run's usage_daily partition (the
    one pass over them) and read it back: later runs read single days of it, and rows sorted
    by day let them skip the row groups of the others. Also the seconds it took."""
    started = time.monotonic()
    daily = (daily_usage(cdr).withColumn(Col.RUN_DATE, F.lit(ctx.run_date))
             .sortWithinPartitions(Col.DAY))
    ctx.writer.replace_partition(daily, ctx.wh.table("usage_daily"), schemas.USAGE_DAILY,
                                 ctx.run_date)
    return _read_daily(ctx, ctx.run_date), round(time.monotonic() - started, 2)


def _write_state(ctx: StageContext, window: SlidingWindow, state: DataFrame,
                 full_from: dt.date) -> int:
    """Write S(run_date); return its rows."""
    rows = state.select(F.lit(ctx.run_date).alias(Col.RUN_DATE),
                        F.lit(full_from).alias(Col.FULL_FROM), *state.columns)
    return ctx.writer.replace_partition(rows, ctx.wh.table(window.state_table),
                                        schemas.usage_window(window.months), ctx.run_date)
