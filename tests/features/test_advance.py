"""The numpy move of the window state, on literal rows (no Spark): the days that cross a month,
leave the window, settle or are still late land where window.py says, exactly.

tests/features/test_incremental.py checks the same function through Spark against the state
summed at once by `window.state_and_totals`, over 1, 2 and 31 days."""
import datetime as dt

import pyarrow as pa

from telcorec.core.columns import DAILY_SUMS, Col, window_sums
from telcorec.features.advance import MOVED, ROLE, SETTLING, UNSETTLED, advance_bucket, buckets_for
from telcorec.features.window import SlidingWindow, total

R = dt.date(2026, 6, 1)
DAY = dt.timedelta(days=1)
WINDOW = SlidingWindow(90, 1)  # three 30-day months; R - 2 settles at R, R - 1 is late
NAMES = window_sums(WINDOW.months)
CROSSING, LEAVING, STAYING = R - 31 * DAY, R - 91 * DAY, R - 10 * DAY


def state(rows: dict[str, dict[str, int]]) -> pa.Table:
    columns = {Col.SUBSCRIBER_ID: list(rows)}
    columns.update({n: [sums.get(n, 0) for sums in rows.values()] for n in NAMES})
    return pa.table(columns)


def days(rows: list[tuple[str, dt.date, int, dict[str, int]]]) -> pa.Table:
    columns = {Col.SUBSCRIBER_ID: [r[0] for r in rows], Col.DAY: [r[1] for r in rows],
               ROLE: pa.array([r[2] for r in rows], pa.int32())}
    columns.update({n: pa.array([r[3].get(n, 0) for r in rows], pa.int64())
                    for n in DAILY_SUMS})
    return pa.table(columns)


def by_subscriber(table: pa.Table) -> dict[str, dict[str, int]]:
    rows = table.to_pylist()
    return {r.pop(Col.SUBSCRIBER_ID): {k: v for k, v in r.items() if v} for r in rows}


# S(R - 1) of A: CROSSING (month 0 at R - 1, month 1 at R), LEAVING (month 2, then outside)
# and STAYING (month 0 both days)
CROSSING_SUMS = {"data_kb": 10, "events": 1, "calls_h3": 1}
LEAVING_SUMS = {"data_kb": 20, "events": 2, "calls_h5": 2, "roaming": 1}
PREVIOUS = {"A": {"data_kb_0": 15, "events_0": 2, "data_kb_2": 20, "events_2": 2,
                  "calls_h3": 1, "calls_h5": 2, "roaming": 1, "events_window": 4}}


def test_crossing_leaving_settling_and_late_days_land_in_their_months():
    rows = days([("A", CROSSING, MOVED, CROSSING_SUMS), ("A", LEAVING, MOVED, LEAVING_SUMS),
                 ("A", R - 2 * DAY, SETTLING, {"data_kb": 7, "events": 1, "calls_h0": 1}),
                 ("B", R - 2 * DAY, SETTLING, {"sms": 3, "events": 3}),
                 ("A", R - DAY, UNSETTLED, {"data_kb": 1, "events": 1}),
                 ("C", R - DAY, UNSETTLED, {"voice_ms": 4000, "events": 2, "calls_h9": 2})])
    got = by_subscriber(advance_bucket(state(PREVIOUS), rows, R, WINDOW))
    a_state = {"data_kb_0": 12, "events_0": 2, "data_kb_1": 10, "events_1": 1, "calls_h3": 1,
               "calls_h0": 1, "events_window": 3}
    a_totals = {**a_state, "data_kb_0": 13, "events_0": 3, "events_window": 4}
    assert got["A"] == {**a_state, **{total(k): v for k, v in a_totals.items()}}
    b = {"sms_0": 3, "events_0": 3, "events_window": 3}
    assert got["B"] == {**b, **{total(k): v for k, v in b.items()}}
    # C has only a late day: no settled row (the state drops it), totals hold the day
    c = {"voice_ms_0": 4000, "events_0": 2, "calls_h9": 2, "events_window": 2}
    assert got["C"] == {total(k): v for k, v in c.items()}


def test_a_subscriber_whose_days_all_left_keeps_a_zero_state():
    previous = {"D": {"data_kb_2": 20, "events_2": 2, "calls_h5": 2, "roaming": 1,
                      "events_window": 2}}
    got = by_subscriber(advance_bucket(state(previous),
                                       days([("D", LEAVING, MOVED, LEAVING_SUMS)]), R, WINDOW))
    assert got == {"D": {}}  # events_window 0: `state_of` and `totals_of` drop the row


def test_an_empty_side_has_no_columns_and_is_handled():
    """Spark hands a cogroup side without rows to the function as a table without columns."""
    empty = pa.table({})
    only_state = by_subscriber(advance_bucket(state(PREVIOUS), empty, R, WINDOW))
    assert only_state["A"] == {**PREVIOUS["A"], **{total(k): v for k, v in PREVIOUS["A"].items()}}
    only_days = advance_bucket(empty, days([("B", R - 2 * DAY, SETTLING, {"events": 1})]), R,
                               WINDOW)
    assert by_subscriber(only_days)["B"][total("events_window")] == 1
    assert advance_bucket(empty, empty, R, WINDOW).num_rows == 0


def test_buckets_bound_a_task_and_spread_over_the_partitions():
    assert buckets_for(100_000, 8) == 32
    assert buckets_for(10_000_000, 8) == 100
