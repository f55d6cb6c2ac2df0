import datetime as dt

import pytest
from pyspark.testing import assertSchemaEqual
from pyspark.sql import functions as F

from telcorec import features, schemas, storage
from telcorec.columns import Col
from telcorec.config import FeaturesConfig

RUN = dt.date(2026, 11, 1)


def cdr_rows():
    day = lambda n: dt.datetime.combine(RUN - dt.timedelta(days=n), dt.time(10))
    return [
        ("E1", "S1", "data", day(1), None, 1024.0),    # month 0: 1 GB
        ("E2", "S1", "data", day(31), None, 3072.0),   # month 1: 3 GB
        ("E3", "S1", "voice", day(2), 120.0, None),    # month 0: 2 min
        ("E4", "S1", "sms", day(2), None, None),
        ("E5", "S1", "sms", day(40), None, None),
        ("E6", "S2", "voice", day(5), 600.0, None),    # month 0: 10 min, no data
    ]


def test_monthly_usage_and_profile_exact(spark):
    cdr = spark.createDataFrame(cdr_rows(), schemas.CDR)
    monthly = features.monthly_usage(cdr, RUN)
    got = sorted((r[Col.SUBSCRIBER_ID], r["month"], r["data_mb"], r["voice_s"], r["sms"])
                 for r in monthly.collect())
    assert got == [("S1", 0, 1024.0, 120.0, 1), ("S1", 1, 3072.0, None, 1),
                   ("S2", 0, None, 600.0, 0)]
    profile = {r[Col.SUBSCRIBER_ID]: r for r in features.usage_profile(monthly).collect()}
    assert profile["S1"][Col.DATA_GB_MONTH] == pytest.approx(2.0)
    assert profile["S1"][Col.DATA_GB_MONTH_STD] == pytest.approx(1.4142135, rel=1e-6)
    assert profile["S1"][Col.VOICE_MIN_MONTH] == pytest.approx(1.0)
    assert profile["S1"][Col.SMS_MONTH] == pytest.approx(1.0)
    assert profile["S2"][Col.DATA_GB_MONTH] == 0.0
    assert profile["S2"][Col.DATA_GB_MONTH_STD] is None


def test_cdr_is_scanned_once_by_the_feature_plan(spark, tmp_path, capsys):
    path = tmp_path / "cdr"
    cdr = spark.createDataFrame([(RUN,) + r for r in cdr_rows()], schemas.validated(schemas.CDR))
    storage.replace_partition(cdr, path, schemas.validated(schemas.CDR), RUN)
    subs = spark.createDataFrame([("S1", "youth", "north", dt.date(2026, 9, 1), "mid",
                                   "prepaid", None, 1)], schemas.SUBSCRIBERS)
    plans = spark.createDataFrame([], schemas.SUBSCRIPTIONS)
    profile = features.usage_profile(features.monthly_usage(
        storage.read_table(spark, path, schemas.validated(schemas.CDR), RUN), RUN))
    stats = features.FeatureStats((1.0,) * 4, (1.0,) * 4, (1.0,) * 4, (1.0,) * 3)
    out = features.subscriber_features(subs, profile, features.current_plans(plans), stats,
                                       FeaturesConfig(), RUN)
    out.explain(mode="formatted")
    tree = capsys.readouterr().out.split("\n\n")[0]  # the operator tree, before node details
    assert tree.count("Scan parquet") == 1, tree
    assert out.count() == 1


@pytest.mark.parametrize("value, label", [
    (None, "unknown"), (0.5, "very_low"), (1.0, "very_low"), (1.5, "low"), (2.0, "low"),
    (3.5, "high"), (4.0, "high"), (4.01, "very_high"), (100.0, "very_high")])
def test_bin_label(spark, value, label):
    df = spark.createDataFrame([(value,)], "v double")
    edges = (1.0, 2.0, 3.0, 4.0)
    got = df.select(features.bin_label(F.col("v"), edges, features.INTENSITY_LABELS)).first()[0]
    assert got == label


@pytest.mark.parametrize("months, stage", [
    (None, "unknown"), (0, "new"), (3, "new"), (4, "growing"), (12, "growing"), (13, "mature"),
    (36, "mature"), (37, "veteran")])
def test_tenure_stage(spark, months, stage):
    df = spark.createDataFrame([(months,)], "m int")
    assert df.select(features.tenure_stage(F.col("m"))).first()[0] == stage


@pytest.mark.parametrize("gb, tier", [(1.0, "light"), (5.0, "light"), (5.5, "medium"),
                                      (20.0, "medium"), (50.0, "heavy"), (100.0, "unlimited")])
def test_data_tier(spark, gb, tier):
    df = spark.createDataFrame([(gb,)], "g double")
    assert df.select(features.data_tier(F.col("g"))).first()[0] == tier


def test_subscriber_features_end_to_end_on_literal_rows(spark):
    subs = spark.createDataFrame([
        ("S1", "youth", "north", dt.date(2026, 9, 1), "mid", "prepaid", None, 1),
        ("S2", "family", "south", dt.date(2020, 1, 1), "flagship", "postpaid", None, 4),
    ], schemas.SUBSCRIBERS)
    cdr = spark.createDataFrame(cdr_rows(), schemas.CDR)
    plans = spark.createDataFrame([
        ("S2", "O1", dt.date(2021, 1, 1), dt.date(2022, 1, 1)),
        ("S2", "O2", dt.date(2022, 1, 1), None)], schemas.SUBSCRIPTIONS)
    profile = features.usage_profile(features.monthly_usage(cdr, RUN))
    stats = features.FeatureStats((0.5, 1.0, 1.5, 2.0), (1.0, 2.0, 5.0, 20.0),
                                  (0.1, 0.5, 0.9, 2.0), (10.0, 20.0, 30.0))
    out = features.subscriber_features(subs, profile, features.current_plans(plans), stats,
                                       FeaturesConfig(), RUN)
    assertSchemaEqual(out.schema, schemas.SUBSCRIBER_FEATURES)
    rows = {r[Col.SUBSCRIBER_ID]: r.asDict() for r in out.collect()}
    s1, s2 = rows["S1"], rows["S2"]
    assert (s1[Col.TENURE_MONTHS], s1[Col.TENURE_STAGE], s1[Col.HOUSEHOLD]) == (2, "new", "single")
    assert (s1[Col.DATA_INTENSITY], s1[Col.CALL_INTENSITY]) == ("high", "very_low")
    assert s1[Col.DATA_CV] == pytest.approx(1.4142135 / 3.0, rel=1e-6)
    assert s1[Col.USAGE_STABILITY] == "variable"
    assert (s1[Col.CURRENT_OFFER_ID], s1[Col.HAS_HISTORY]) == (None, False)
    assert (s2[Col.TENURE_STAGE], s2[Col.HOUSEHOLD], s2[Col.CALL_INTENSITY]) == (
        "veteran", "family", "high")
    assert (s2[Col.USAGE_STABILITY], s2[Col.DATA_INTENSITY]) == ("unknown", "very_low")
    assert (s2[Col.CURRENT_OFFER_ID], s2[Col.HAS_HISTORY]) == ("O2", True)


def test_offer_features_index_and_tiers(spark):
    cat = spark.createDataFrame([
        ("O2", "b", 25.0, 50.0, 600.0, 200, 12, "premium", "postpaid", "5G", True),
        ("O1", "a", 5.0, 1.0, 100.0, 50, 0, "residential", "prepaid", "4G", False),
    ], schemas.CATALOGUE)
    stats = features.FeatureStats((), (), (), (10.0, 20.0, 30.0))
    out = features.offer_features(cat, stats, RUN)
    got = sorted((r[Col.OFFER_ID], r[Col.OFFER_IDX], r[Col.PRICE_TIER], r[Col.DATA_TIER],
                  r[Col.FAMILY]) for r in out.collect())
    assert got == [("O1", 0, "budget", "light", "no"), ("O2", 1, "premium", "heavy", "yes")]


def test_feature_stats_round_trip(tmp_path):
    stats = features.FeatureStats((1.0, 2.0), (3.0,), (4.0,), (5.0,))
    stats.save(tmp_path / "s.json")
    loaded = features.FeatureStats.load(tmp_path / "s.json")
    assert loaded == stats and loaded.version == stats.version
