import datetime as dt

import pytest
from pyspark.testing import assertSchemaEqual

from telcorec import interactions, schemas
from telcorec.columns import Col
from telcorec.exceptions import DataError

RUN = dt.date(2026, 11, 1)
d = dt.date


def test_split_holds_out_latest_plan_only_with_two_or_more(spark):
    subs = spark.createDataFrame([
        ("S1", "O1", d(2024, 1, 1), d(2025, 1, 1)), ("S1", "O2", d(2025, 1, 1), None),
        ("S2", "O1", d(2023, 1, 1), None),
        ("S3", "O3", d(2022, 1, 1), d(2023, 1, 1)), ("S3", "O3", d(2024, 1, 1), None),
        ("S4", "O1", d(2021, 1, 1), d(2022, 1, 1)), ("S4", "O2", d(2022, 1, 1), d(2023, 1, 1)),
        ("S4", "O3", d(2023, 1, 1), None),
    ], schemas.SUBSCRIPTIONS)
    got = sorted((r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID], r[Col.SPLIT])
                 for r in interactions.split_latest(interactions.pairs(subs)).collect())
    assert got == [("S1", "O1", "train"), ("S1", "O2", "test"), ("S2", "O1", "train"),
                   ("S3", "O3", "train"), ("S4", "O1", "train"), ("S4", "O2", "train"),
                   ("S4", "O3", "test")]


def test_indices_are_contiguous_and_joined(spark):
    feats = spark.createDataFrame([("S2",), ("S1",), ("S3",)], [Col.SUBSCRIBER_ID])
    index = interactions.subscriber_index(feats, RUN)
    assertSchemaEqual(index.schema, schemas.SUBSCRIBER_INDEX)
    assert sorted((r[Col.SUBSCRIBER_ID], r[Col.SUBSCRIBER_IDX]) for r in index.collect()) == [
        ("S1", 0), ("S2", 1), ("S3", 2)]
    offers = spark.createDataFrame([("O1", 0), ("O2", 1)], [Col.OFFER_ID, Col.OFFER_IDX])
    pairs = spark.createDataFrame([("S3", "O2", d(2024, 1, 1), "train")],
                                  [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.EVENT_DATE, Col.SPLIT])
    out = interactions.interactions(pairs, index, offers, RUN)
    assertSchemaEqual(out.schema, schemas.INTERACTIONS)
    assert [(r[Col.SUBSCRIBER_IDX], r[Col.OFFER_IDX], r[Col.WEIGHT]) for r in out.collect()] == [
        (2, 1, 1.0)]


def test_overlapping_train_and_test_is_refused(spark):
    cols = [Col.SUBSCRIBER_ID, Col.OFFER_ID]
    train = spark.createDataFrame([("S1", "O1"), ("S1", "O2")], cols)
    with pytest.raises(DataError, match="train and test share"):
        interactions.check_no_overlap(train, spark.createDataFrame([("S1", "O2")], cols))
    interactions.check_no_overlap(train, spark.createDataFrame([("S1", "O3")], cols))
