import datetime as dt
import math

import pytest
from pyspark.testing import assertSchemaEqual

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import InteractionsConfig
from telcorec.core.exceptions import DataError
from telcorec.features import interactions

RUN = dt.date(2026, 11, 1)
d = dt.date


def subscriptions(spark, rows):
    """Rows (subscriber, offer, start, end[, usage[, start_ts]]) as the validated table."""
    width = len(schemas.full("subscriptions").fields)
    return spark.createDataFrame([r + (None,) * (width - len(r)) for r in rows],
                                 schemas.full("subscriptions"))


HISTORY = [
    ("S1", "O1", d(2024, 1, 1), d(2025, 1, 1)), ("S1", "O2", d(2025, 1, 1), None),
    ("S2", "O1", d(2023, 1, 1), None),
    ("S3", "O3", d(2022, 1, 1), d(2023, 1, 1)), ("S3", "O3", d(2024, 1, 1), None),
    ("S4", "O1", d(2021, 1, 1), d(2022, 1, 1)), ("S4", "O2", d(2022, 1, 1), d(2023, 1, 1)),
    ("S4", "O3", d(2023, 1, 1), None),
]


def test_pairs_sum_usage_or_days_held(spark):
    subs = subscriptions(spark, HISTORY + [("S5", "O1", d(2026, 10, 1), None, 2.5),
                                           ("S5", "O1", d(2026, 10, 20), None, 1.5)])
    got = {(r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID]): (r[Col.FIRST_DATE], r[Col.EVENT_DATE],
                                                      r[Col.USAGE])
           for r in interactions.pairs(subs, RUN).collect()}
    assert got[("S1", "O1")] == (d(2024, 1, 1), d(2024, 1, 1), 366.0)   # held 2024-01-01 .. 2025
    assert got[("S1", "O2")] == (d(2025, 1, 1), d(2025, 1, 1), 669.0)   # still held at run date
    assert got[("S3", "O3")] == (d(2022, 1, 1), d(2024, 1, 1), 365.0 + 1035.0)
    assert got[("S5", "O1")] == (d(2026, 10, 1), d(2026, 10, 20), 4.0)   # usage given: summed


def test_leave_one_out_holds_out_latest_plan_only_with_two_or_more(spark):
    pairs = interactions.pairs(subscriptions(spark, HISTORY), RUN)
    got = sorted((r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID], r[Col.SPLIT])
                 for r in interactions.split_latest(pairs, seed=42).collect())
    assert got == [("S1", "O1", "train"), ("S1", "O2", "test"), ("S2", "O1", "train"),
                   ("S3", "O3", "train"), ("S4", "O1", "train"), ("S4", "O2", "train"),
                   ("S4", "O3", "test")]


def test_leave_one_out_breaks_ties_by_seed_reproducibly(spark):
    same_day = [(f"S{u}", f"O{o}", d(2025, 1, 1), None) for u in range(40) for o in range(3)]
    pairs = interactions.pairs(subscriptions(spark, same_day), RUN)

    def held_out(seed, frame=pairs):
        split = interactions.split_latest(frame, seed=seed)
        return sorted((r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID]) for r in split.collect()
                      if r[Col.SPLIT] == "test")

    first = held_out(1)
    assert len(first) == 40 and len({o for _, o in first}) == 3  # one each, not always the same
    assert held_out(1, pairs.repartition(3)) == first             # partitioning does not matter
    assert held_out(2) != first


def test_temporal_split_by_first_date(spark):
    rows = HISTORY + [("S2", "O3", d(2026, 9, 1), None), ("S3", "O3", d(2026, 10, 1), None)]
    pairs = interactions.pairs(subscriptions(spark, rows), RUN)
    got = sorted((r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID], r[Col.SPLIT])
                 for r in interactions.split_temporal(pairs, d(2026, 8, 1)).collect())
    # S3 held O3 long before the cutoff: taking it again after is not a new (test) pair
    assert [g for g in got if g[2] == "test"] == [("S2", "O3", "test")]
    assert len(got) == 8


def test_random_split_is_seeded_and_near_the_share(spark):
    rows = [(f"S{u}", f"O{o}", d(2025, 1, 1), None) for u in range(200) for o in range(10)]
    pairs = interactions.pairs(subscriptions(spark, rows), RUN)

    def tests(seed, frame=pairs):
        split = interactions.split_random(frame, 0.2, seed)
        return {(r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID]) for r in split.collect()
                if r[Col.SPLIT] == "test"}

    a = tests(7)
    assert 0.17 < len(a) / 2000 < 0.23
    assert tests(7, pairs.repartition(5)) == a and tests(8) != a


def test_confidence_exact(spark):
    pairs = spark.createDataFrame([("S1", "O1", d(2026, 10, 2), 10.0),
                                   ("S1", "O2", d(2026, 8, 2), 50.0),
                                   ("S2", "O1", d(2026, 11, 1), 200.0)],
                                  [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.EVENT_DATE, Col.USAGE])
    plain = InteractionsConfig(alpha=40.0)
    got = {r[Col.OFFER_ID] + r[Col.SUBSCRIBER_ID]: r[Col.WEIGHT]
           for r in interactions.confidence(pairs, plain, 100.0, RUN).collect()}
    assert got == {"O1S1": 1 + 40 * 0.1, "O2S1": 1 + 40 * 0.5, "O1S2": 1 + 40 * 1.0}
    decayed = InteractionsConfig(alpha=40.0, time_decay=True, decay_days=30.0)
    got = {r[Col.OFFER_ID] + r[Col.SUBSCRIBER_ID]: r[Col.WEIGHT]
           for r in interactions.confidence(pairs, decayed, 100.0, RUN).collect()}
    assert got["O1S1"] == pytest.approx(1 + 40 * 0.1 * math.exp(-30 / 30))
    assert got["O2S1"] == pytest.approx(1 + 40 * 0.5 * math.exp(-91 / 30))
    assert got["O1S2"] == pytest.approx(1 + 40 * 1.0)
    assert interactions.usage_scale(pairs, 0.5) == 50.0


def test_indices_are_contiguous_and_joined(spark):
    feats = spark.createDataFrame([("S2",), ("S1",), ("S3",)], [Col.SUBSCRIBER_ID])
    index = interactions.subscriber_index(feats, RUN)
    assertSchemaEqual(index.schema, schemas.SUBSCRIBER_INDEX)
    assert sorted((r[Col.SUBSCRIBER_ID], r[Col.SUBSCRIBER_IDX]) for r in index.collect()) == [
        ("S1", 0), ("S2", 1), ("S3", 2)]
    offers = spark.createDataFrame([("O1", 0), ("O2", 1)], [Col.OFFER_ID, Col.OFFER_IDX])
    pairs = spark.createDataFrame([("S3", "O2", d(2024, 1, 1), "train", 21.0)],
                                  [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.EVENT_DATE, Col.SPLIT,
                                   Col.WEIGHT])
    out = interactions.interactions(pairs, index, offers, RUN)
    assertSchemaEqual(out.schema, schemas.INTERACTIONS)
    assert [(r[Col.SUBSCRIBER_IDX], r[Col.OFFER_IDX], r[Col.WEIGHT]) for r in out.collect()] == [
        (2, 1, 21.0)]


def test_overlapping_train_and_test_is_refused(spark):
    cols = [Col.SUBSCRIBER_ID, Col.OFFER_ID]
    train = spark.createDataFrame([("S1", "O1"), ("S1", "O2")], cols)
    with pytest.raises(DataError, match="train and test share"):
        interactions.check_no_overlap(train, spark.createDataFrame([("S1", "O2")], cols))
    interactions.check_no_overlap(train, spark.createDataFrame([("S1", "O3")], cols))


def test_leave_one_out_holds_out_the_latest_event_of_the_last_day_by_its_time(spark):
    """A rating set's last day often holds many events: the full timestamp picks the latest,
    whatever the seed; without one, the seeded pick decides among the day's pairs."""
    t = dt.datetime
    rows = [("U1", "A", d(2025, 1, 1), None, 1.0, t(2025, 1, 1, 9, 0, 0)),
            ("U1", "B", d(2025, 1, 2), None, 1.0, t(2025, 1, 2, 8, 0, 0)),
            ("U1", "C", d(2025, 1, 2), None, 1.0, t(2025, 1, 2, 21, 30, 5)),
            ("U1", "D", d(2025, 1, 2), None, 1.0, t(2025, 1, 2, 21, 30, 4))]
    pairs = interactions.pairs(subscriptions(spark, rows), RUN)
    for seed in range(6):
        held = [r[Col.OFFER_ID] for r in interactions.split_latest(pairs, seed=seed).collect()
                if r[Col.SPLIT] == "test"]
        assert held == ["C"]


def test_accepted_offers_are_pairs_of_their_own_confidence(spark):
    responses = spark.createDataFrame([
        ("S1", "O2", d(2026, 10, 20), "accepted"),   # already held: weight raised, dated later
        ("S2", "O3", d(2026, 10, 30), "accepted"),   # not held yet: a new pair, the latest
        ("S3", "O1", d(2026, 10, 30), "declined"),   # a decline is no pair
        ("S4", "O3", d(2026, 10, 1), "accepted"),    # answers to two run dates: one pair
        ("S4", "O3", d(2026, 10, 15), "accepted"),
    ], f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string, {Col.RESPONDED_DATE} date, "
       f"{Col.OUTCOME} string")
    cfg = InteractionsConfig(alpha=40.0, accepted_weight=41.0)
    merged = interactions.with_accepted(interactions.pairs(subscriptions(spark, HISTORY), RUN),
                                        responses)
    weighted = interactions.accepted_confidence(
        interactions.confidence(interactions.split_latest(merged, seed=42), cfg, 1000.0, RUN),
        cfg.accepted_weight)
    got = sorted((r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID], r[Col.EVENT_DATE], r[Col.SPLIT],
                  round(r[Col.WEIGHT], 9)) for r in weighted.collect())

    def held(days):  # 1 + alpha * min(days held / scale, 1)
        return round(1 + 40.0 * min(days / 1000.0, 1.0), 9)
    assert got == [
        ("S1", "O1", d(2024, 1, 1), "train", held(366)),
        ("S1", "O2", d(2026, 10, 20), "test", 41.0),
        ("S2", "O1", d(2023, 1, 1), "train", held(1400)),
        ("S2", "O3", d(2026, 10, 30), "test", 41.0),
        ("S3", "O3", d(2024, 1, 1), "train", held(1400)),
        ("S4", "O1", d(2021, 1, 1), "train", held(365)),
        ("S4", "O2", d(2022, 1, 1), "train", held(365)),
        ("S4", "O3", d(2026, 10, 15), "test", 41.0),
    ]
