"""Daily runs of the feature stage: the window moved day by day equals the full recompute.

Every test builds the four validated tables on literal rows (CDR from a fixed rule per subscriber
and day, below) for each run date, runs the stage, and compares whole `subscriber_features`
partitions: integer and categorical columns equal, floating columns within 1e-9 relative.
"""
import datetime as dt
import logging
import math

import pytest
from pyspark.sql import functions as F

from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.features.advance import advance
from telcorec.features.daily import daily_usage
from telcorec.features.window import (
    SlidingWindow,
    state_and_totals,
    state_of,
    totals_of,
)
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import features as features_stage
from telcorec.stages import generate as generate_stage
from telcorec.stages import ingest as ingest_stage

R0 = dt.date(2026, 6, 1)
DAY = dt.timedelta(days=1)
WINDOW = 180
SUBSCRIBERS = ("S1", "S2", "S3", "S4")


def active(sub: str, day: dt.date) -> bool:
    """S3 joins 10 days after R0; S4 left 150 days before it (its days leave the window)."""
    if sub == "S3":
        return day >= R0 + 10 * DAY
    if sub == "S4":
        return day < R0 - 150 * DAY
    return True


def events_of(sub: str, day: dt.date) -> list[tuple]:
    """A fixed rule: data with fractional MB, calls at varying hours (some missed, zero-length,
    roaming, international, some of those unknown), SMS."""
    n, k = day.toordinal(), int(sub[1:])
    out = []
    stamp = lambda hour, minute: dt.datetime.combine(day, dt.time(hour, minute))
    if (n + k) % 2 == 0:
        out.append(("data", stamp(8, k), None, 100.5 + (n % 7) * 33.25 + k))
    if (n * k) % 3 != 1:
        out.append(("voice", stamp((n + 3 * k) % 24, 30), (n % 5) * 61.5, None))
    if n % 4 == k % 4:
        out.append(("sms", stamp(21, k), None, None))
    rows = []
    for i, (kind, ts, duration, mb) in enumerate(out):
        missed = None if n % 4 == 0 else (n % 11 == 0)
        roaming = n % 13 == 0 if kind != "sms" else None
        international = None if n % 6 == 0 else n % 9 == 0
        rows.append((f"{sub}-{day}-{i}", sub, kind, ts, duration, mb,
                     missed if kind == "voice" else None, roaming, international))
    return rows


def all_events(last: dt.date) -> list[tuple]:
    day, rows = last - (WINDOW + 40) * DAY, []
    while day <= last:
        rows += [r for sub in SUBSCRIBERS if active(sub, day) for r in events_of(sub, day)]
        day += DAY
    return rows


@pytest.mark.parametrize("days", [1, 2, pytest.param(31, marks=pytest.mark.slow)])
def test_a_state_moved_day_by_day_equals_the_state_built_at_once(spark, days):
    """The sums alone (no tables): S(R0) moved `days` times in numpy equals S(R0 + days) summed
    in Spark at once, exactly, and so do the totals with the unsettled days."""
    last = R0 + days * DAY
    cdr = spark.createDataFrame(all_events(last), schemas.full("cdr"))
    daily = daily_usage(cdr).cache()
    window = SlidingWindow(WINDOW, 3)
    at_once = lambda day: state_and_totals(daily, day, window)
    state = state_of(at_once(R0), window)
    for offset in range(1, days + 1):
        day = R0 + offset * DAY
        moved = daily.filter(F.col(Col.DAY).isin(window.moved_days(day)))
        settling = daily.filter(F.col(Col.DAY) == window.last_settled(day))
        unsettled = daily.filter(F.col(Col.DAY).between(window.last_settled(day) + DAY,
                                                        day - DAY))
        grouped = advance(state, moved, settling, unsettled, day, window, buckets=3)
        moved_state = state_of(grouped, window)
        # a handful of rows: collected to cut the lineage that 31 moves would otherwise build
        state = spark.createDataFrame(moved_state.collect(), moved_state.schema)
        totals = totals_of(grouped, window)
    rows = lambda df: sorted(tuple(r) for r in df.collect())
    assert rows(state) == rows(state_of(at_once(last), window))
    assert rows(totals) == rows(totals_of(at_once(last), window))
    daily.unpersist()


def cfg_in(tmp_path, **overrides):
    return config.load("conf/local.yaml").with_overrides(
        warehouse=str(tmp_path / "wh"), **{"features.late_days": 3, **overrides})


def write_inputs(spark, cfg, run_date, late=None):
    """The validated tables of `run_date`: the CDR of the window that has arrived by then (an
    event of day d arrives for run d + 1, or later when `late` maps its id to that run)."""
    late = late or {}
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    first = run_date - WINDOW * DAY
    cdr = [(run_date,) + r for r in all_events(run_date)
           if first <= r[3].date() < run_date and late.get(r[0], r[3].date() + DAY) <= run_date]
    subs = [(run_date, s, "youth", "north", dt.date(2024, 1, 1), "mid", "prepaid", None, 1,
             None, None, None, None, None) for s in SUBSCRIBERS]
    plans = [(run_date, "S2", "O1", dt.date(2025, 1, 1), None, None, None)]
    catalogue = [(run_date, "O1", "a", 5.0, 1.0, 100.0, 50, 0, "residential", "prepaid", "4G",
                  False), (run_date, "O2", "b", 25.0, 4.0, 10.0, 200, 12, "premium", "postpaid",
                           "5G", True)]
    for name, rows in (("cdr", cdr), ("subscribers", subs), ("subscriptions", plans),
                       ("catalogue", catalogue)):
        df = spark.createDataFrame(rows, schemas.accepted(name))
        DeltaRsWriter().replace_partition(df, wh.table(name), schemas.accepted(name), run_date)


def run(spark, cfg, run_date, late=None, full=False):
    write_inputs(spark, cfg, run_date, late)
    return features_stage.run(spark, cfg, run_date, full=full)["usage_window"]


def features_at(spark, cfg, run_date):
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    df = DeltaRsWriter().read(spark, wh.table("subscriber_features"), schemas.SUBSCRIBER_FEATURES,
                              [run_date])
    return {r[Col.SUBSCRIBER_ID]: r.asDict() for r in df.collect()}  # a handful of rows


def assert_same_features(got, want):
    assert sorted(got) == sorted(want)
    for sub, row in want.items():
        for col, value in row.items():
            other = got[sub][col]
            if isinstance(value, float) and other is not None:
                assert math.isclose(other, value, rel_tol=1e-9, abs_tol=0.0), (sub, col)
            else:
                assert other == value, (sub, col, other, value)


def full_recompute(spark, cfg, run_date, late=None):
    """subscriber_features of `run_date` recomputed from its whole CDR partition."""
    assert run(spark, cfg, run_date, late, full=True) == "full: forced (--full)"
    return features_at(spark, cfg, run_date)


@pytest.mark.slow  # several stage runs (each ~5-20 s on 2 shared cores)
def test_one_and_two_incremental_days_equal_the_full_recompute(spark, tmp_path):
    cfg = cfg_in(tmp_path)
    assert run(spark, cfg, R0).startswith("full: no window state for 2026-05-31")
    for day in (R0 + DAY, R0 + 2 * DAY):
        assert run(spark, cfg, day) == "incremental"
        moved = features_at(spark, cfg, day)
        assert_same_features(moved, full_recompute(spark, cfg, day))


@pytest.mark.slow
def test_31_incremental_days_equal_the_full_recompute(spark, tmp_path):
    """Across every month boundary: each settled day moves from one month to the next, S4's
    last days leave the window and S3 enters it."""
    cfg = cfg_in(tmp_path)
    run(spark, cfg, R0)
    last = R0 + 31 * DAY
    for offset in range(1, 32):
        assert run(spark, cfg, R0 + offset * DAY) == "incremental"
    moved = features_at(spark, cfg, last)
    # S4's last CDR left the window (a row without usage), S3's first entered it
    assert moved["S4"][Col.DATA_GB_MONTH] is None and moved["S3"][Col.DATA_GB_MONTH] > 0
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    state_path = wh.table(f"usage_window_{WINDOW}d_3late")
    schema = schemas.usage_window(6)
    state = lambda: {r[Col.SUBSCRIBER_ID]: r.asDict() for r in DeltaRsWriter().read(
        spark, state_path, schema, [last]).drop(Col.FULL_FROM).collect()}
    moved_state = state()
    assert_same_features(moved, full_recompute(spark, cfg, last))
    assert state() == moved_state  # the integer sums themselves, exactly


# the generate, ingest and features stages for two dates (~40 s): the demo's daily path, end to end
def test_the_generated_operator_with_a_snapshot_date_runs_day_by_day(spark, tmp_path):
    """generator.snapshot_date: the demo's own source moves by one day a run date, as a real
    one does, so the second date continues from the first and gives a full recompute's rows
    (without it each date gets its own operator and every run recomputes in full)."""
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(tmp_path / "wh"), "generator.subscribers": 300,
        "generator.snapshot_date": R0.isoformat()})
    modes = []
    for day in (R0, R0 + DAY):
        generate_stage.run(spark, cfg, day)
        ingest_stage.run(spark, cfg, day)
        modes.append(features_stage.run(spark, cfg, day)["usage_window"])
    assert modes[0].startswith("full: no window state") and modes[1] == "incremental", modes
    daily = features_at(spark, cfg, R0 + DAY)
    recomputed = features_stage.run(spark, cfg, R0 + DAY, full=True)["usage_window"]
    assert recomputed == "full: forced (--full)"
    assert len(daily) == 300
    assert_same_features(daily, features_at(spark, cfg, R0 + DAY))


@pytest.mark.slow  # several stage runs (each ~5-20 s on 2 shared cores)
def test_late_cdr_within_late_days_are_picked_up(spark, tmp_path):
    cfg = cfg_in(tmp_path)
    # a call of R0 - 1 that arrives with the CDR of R0 + 2 (3 days late, within late_days = 3)
    late = {f"S1-{R0 - DAY}-1": R0 + 2 * DAY}
    run(spark, cfg, R0, late)
    for day in (R0 + DAY, R0 + 2 * DAY):
        assert run(spark, cfg, day, late) == "incremental"
    before = features_at(spark, cfg, R0 + DAY)
    picked = features_at(spark, cfg, R0 + 2 * DAY)
    assert picked["S1"][Col.VOICE_MIN_MONTH] != before["S1"][Col.VOICE_MIN_MONTH]
    assert_same_features(picked, full_recompute(spark, cfg, R0 + 2 * DAY, late))


@pytest.mark.slow  # several stage runs (each ~5-20 s on 2 shared cores)
def test_cdr_later_than_late_days_force_a_logged_full_recompute(spark, tmp_path, caplog):
    cfg = cfg_in(tmp_path)
    late = {f"S1-{R0 - 10 * DAY}-0": R0 + DAY}  # a call 10 days late
    run(spark, cfg, R0, late)
    with caplog.at_level(logging.WARNING, logger="telcorec.stages.features"):
        mode = run(spark, cfg, R0 + DAY, late)
    assert mode.startswith(f"full: the cdr partition run_date={R0 + DAY} holds")
    assert "CDR older than features.late_days=3 days changed" in caplog.text
    recomputed = features_at(spark, cfg, R0 + DAY)
    assert_same_features(recomputed, full_recompute(spark, cfg, R0 + DAY, late))
    assert run(spark, cfg, R0 + 2 * DAY, late) == "incremental"  # from the recomputed state


@pytest.mark.slow  # several stage runs (each ~5-20 s on 2 shared cores)
def test_a_rerun_of_a_date_is_idempotent(spark, tmp_path):
    cfg = cfg_in(tmp_path)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    run(spark, cfg, R0)
    tables = ("usage_daily", f"usage_window_{WINDOW}d_3late", "subscriber_features")
    counts = lambda: [DeltaRsWriter().partition_rows(spark, wh.table(t), R0 + DAY) for t in tables]
    assert run(spark, cfg, R0 + DAY) == "incremental"
    first, rows = features_at(spark, cfg, R0 + DAY), counts()
    assert run(spark, cfg, R0 + DAY) == "incremental"
    assert features_at(spark, cfg, R0 + DAY) == first and counts() == rows


@pytest.mark.slow
@pytest.mark.parametrize("change", ["missed_day", "late_days"])
def test_a_gap_or_a_changed_window_recomputes_and_says_why(spark, tmp_path, change):
    cfg = cfg_in(tmp_path)
    run(spark, cfg, R0)
    if change == "missed_day":
        day, reason = R0 + 2 * DAY, f"full: no window state for {R0 + DAY}"
    else:
        cfg, day = cfg_in(tmp_path, **{"features.late_days": 2}), R0 + DAY
        reason = f"full: no window state for {R0} in usage_window_{WINDOW}d_2late"
    assert run(spark, cfg, day).startswith(reason)


@pytest.mark.slow  # several stage runs (each ~5-20 s on 2 shared cores)
def test_out_of_order_dates_and_backfill_give_the_same_rows(spark, tmp_path):
    late = {f"S1-{R0 + DAY}-1": R0 + 3 * DAY}  # a late call makes the order matter
    in_order = cfg_in(tmp_path / "in_order")
    days = [R0 + i * DAY for i in range(4)]
    for day in days:
        run(spark, in_order, day, late)
    shuffled = cfg_in(tmp_path / "shuffled")
    for day in days:
        write_inputs(spark, shuffled, day, late)
    modes = [features_stage.run(spark, shuffled, days[3])["usage_window"]]
    backfill = features_stage.run_range(spark, shuffled, days[0], days[2])
    modes += [features_stage.run(spark, shuffled, days[3])["usage_window"]]  # a rerun
    assert modes[0].startswith("full") and modes[1] == "incremental"
    assert [r["usage_window"][:4] for r in backfill.values()] == ["full", "incr", "incr"]
    for day in days:
        assert_same_features(features_at(spark, shuffled, day), features_at(spark, in_order, day))


@pytest.mark.parametrize("full", [pytest.param(True, marks=pytest.mark.slow), False],
                         ids=["full", "incremental"])
def test_the_cdr_is_read_once_per_run(spark, tmp_path, monkeypatch, capsys, full):
    """One read of the run date's CDR partition, one scan in its plan; the incremental read
    carries the first day it needs as a pushed-down filter (older row groups are skipped)."""
    cfg = cfg_in(tmp_path)
    run(spark, cfg, R0)
    write_inputs(spark, cfg, R0 + DAY)
    reads = []
    aggregate = features_stage.daily_usage
    monkeypatch.setattr(features_stage, "daily_usage",
                        lambda cdr: reads.append(cdr) or aggregate(cdr))
    features_stage.run(spark, cfg, R0 + DAY, full=full)
    assert len(reads) == 1
    reads[0].explain(mode="formatted")
    plan = capsys.readouterr().out
    tree = plan.split("\n\n")[0]  # the operator tree, before node details
    assert tree.count("Scan parquet") == 1, tree
    pushed = f"GreaterThanOrEqual({Col.EVENT_TS},{R0 - 3 * DAY} 00:00:00.0)"
    assert (pushed in plan) is not full, plan
