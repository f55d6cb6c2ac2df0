import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertSchemaEqual

from telcorec import features
from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import FeaturesConfig
from telcorec.features import subscriber, usage
from telcorec.features.daily import daily_usage
from telcorec.features.window import SlidingWindow, state_and_totals, totals_of

RUN = dt.date(2026, 11, 1)
MONTHS = 6
CFG = FeaturesConfig()


def at(days_back: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(RUN - dt.timedelta(days=days_back), dt.time(hour, minute))


def cdr_rows():
    # event_id, subscriber, type, ts, duration_s, data_mb, missed, roaming, international
    return [
        ("E1", "S1", "data", at(1), None, 1024.0, None, None, None),     # month 0: 1 GB
        ("E2", "S1", "data", at(31), None, 3072.0, None, None, None),    # month 1: 3 GB
        ("E3", "S1", "voice", at(2), 120.0, None, None, None, None),     # month 0: 2 min
        ("E4", "S1", "sms", at(2), None, None, None, None, None),
        ("E5", "S1", "sms", at(40), None, None, None, None, None),
        ("E6", "S2", "voice", at(5), 600.0, None, None, None, None),     # 10:00, 10 min
        ("E7", "S2", "voice", at(6, 10, 30), 0.0, None, True, None, None),   # missed
        ("E8", "S2", "voice", at(7, 20), 0.0, None, False, None, None),      # zero-length
        ("E9", "S2", "voice", at(8, 10, 15), 30.0, None, None, True, False),  # roaming
        ("E10", "S3", "data", at(10), None, 2048.0, None, None, None),   # month 0
        ("E11", "S3", "data", at(100), None, 1024.0, None, None, None),  # month 3
    ]


def window_of(cdr, months=MONTHS):
    """The window's sums at RUN in one go, as a full recompute builds them."""
    window = SlidingWindow(months * 30, CFG.late_days)
    return totals_of(state_and_totals(daily_usage(cdr), RUN, window), window)


def profile_of(spark, rows=None):
    cdr = spark.createDataFrame(rows or cdr_rows(), schemas.full("cdr"))
    return usage.usage_profile(window_of(cdr), MONTHS, CFG)


def test_usage_profile_exact_on_literal_rows(spark):
    got = {r[Col.SUBSCRIBER_ID]: r.asDict() for r in profile_of(spark).collect()}
    s1, s2, s3 = got["S1"], got["S2"], got["S3"]
    # S1: months 0 and 1 observed; data 1 and 3 GB, voice 2 and 0 min, SMS 1 and 1
    assert s1[Col.DATA_GB_MONTH] == pytest.approx(2.0)
    assert s1[Col.DATA_GB_MONTH_STD] == pytest.approx(2 ** 0.5)
    assert (s1[Col.VOICE_MIN_MONTH], s1[Col.VOICE_MIN_MONTH_STD]) == pytest.approx((1.0, 2 ** 0.5))
    assert (s1[Col.SMS_MONTH], s1[Col.SMS_MONTH_STD]) == pytest.approx((1.0, 0.0))
    assert (s1[Col.DATA_TREND], s1[Col.DATA_TREND_PCT]) == ("unknown", None)  # nothing before
    assert s1[Col.PEAK_CALL_HOUR] == 10 and s1[Col.BUSINESS_HOURS_RATIO] == 1.0
    assert s1[Col.MISSED_CALL_SHARE] is None and s1[Col.ZERO_LENGTH_SHARE] == 0.0
    # S2: one month; 4 calls at 10, 10, 20, 10 h; one missed of two known; one zero-length
    assert (s2[Col.DATA_GB_MONTH], s2[Col.DATA_GB_MONTH_STD]) == (0.0, None)
    assert s2[Col.VOICE_MIN_MONTH] == pytest.approx(630 / 60)
    assert (s2[Col.PEAK_CALL_HOUR], s2[Col.BUSINESS_HOURS_RATIO]) == (10, 0.75)
    assert (s2[Col.MISSED_CALL_SHARE], s2[Col.ZERO_LENGTH_SHARE]) == (0.5, 0.25)
    assert (s2[Col.ROAMING_SHARE], s2[Col.INTERNATIONAL_SHARE]) == (1.0, 0.0)
    # S3: 2 GB in the last three months against 1 GB in the three before: +100%
    assert (s3[Col.DATA_TREND], s3[Col.DATA_TREND_PCT]) == ("growing", 1.0)
    assert s3[Col.PEAK_CALL_HOUR] is None and s3[Col.ROAMING_SHARE] is None


def test_trend_unknown_when_the_window_cannot_hold_two_halves(spark):
    cdr = spark.createDataFrame(cdr_rows(), schemas.full("cdr"))
    three = usage.usage_profile(window_of(cdr, 3), 3, CFG)
    assert {r[Col.DATA_TREND] for r in three.collect()} == {"unknown"}


@pytest.mark.parametrize("recent, prior, known, label, change", [
    (111.0, 100.0, True, "growing", 0.11), (110.0, 100.0, True, "stable", 0.10),
    (90.0, 100.0, True, "stable", -0.10), (89.0, 100.0, True, "declining", -0.11),
    (5.0, 0.0, True, "growing", None), (0.0, 0.0, True, "stable", None),
    (50.0, 100.0, False, "unknown", None)])
def test_data_trend_bands(spark, recent, prior, known, label, change):
    df = spark.createDataFrame([(recent, prior, known)], "r double, p double, k boolean")
    got = df.select(*usage.data_trend(F.col("r"), F.col("p"), F.col("k"), 0.10)).first()
    assert got[0] == label
    assert got[1] == (None if change is None else pytest.approx(change))


@pytest.mark.parametrize("cv, label", [(None, "unknown"), (0.0, "stable"), (0.2999, "stable"),
                                       (0.3, "variable"), (2.0, "variable")])
def test_usage_stability_threshold(spark, cv, label):
    df = spark.createDataFrame([(cv,)], "cv double")
    assert df.select(usage.stability(F.col("cv"), 0.3)).first()[0] == label


def full_inputs(spark):
    subs = spark.createDataFrame([
        ("S1", "youth", "north", dt.date(2026, 9, 1), "mid", "prepaid", None, 1,
         None, None, None, None, None),
        ("S2", "family", "south", dt.date(2020, 1, 1), "flagship", "postpaid",
         dt.date(2026, 12, 15), 4, True, 0.95, 30.0, None, True),
    ], schemas.full("subscribers"))
    plans = spark.createDataFrame([
        ("S2", "O1", dt.date(2021, 1, 1), dt.date(2022, 1, 1), None, None),
        ("S2", "O2", dt.date(2022, 1, 1), None, None, None)], schemas.full("subscriptions"))
    catalogue = spark.createDataFrame([
        ("O1", "a", 5.0, 1.0, 100.0, 50, 0, "residential", "prepaid", "4G", False),
        ("O2", "b", 25.0, 4.0, 10.0, 200, 12, "premium", "postpaid", "5G", True),
    ], schemas.full("catalogue"))
    return subs, plans, catalogue


STATS = features.FeatureStats(
    data_edges=(0.5, 1.0, 1.5, 2.0), voice_edges=(1.0, 2.0, 5.0, 20.0),
    sms_edges=(0.1, 0.5, 0.9, 2.0), price_edges=(10.0, 20.0, 30.0),
    usage_scales=(4.0, 20.0, 4.0), value_edges=(0.1, 0.2, 0.3))


def test_subscriber_features_end_to_end_on_literal_rows(spark):
    subs, plans, catalogue = full_inputs(spark)
    out = features.subscriber_features(subs, profile_of(spark),
                                       features.current_plans(plans, RUN), catalogue, STATS,
                                       CFG, RUN)
    assertSchemaEqual(out.schema, schemas.SUBSCRIBER_FEATURES)
    rows = {r[Col.SUBSCRIBER_ID]: r.asDict() for r in out.collect()}
    s1, s2 = rows["S1"], rows["S2"]
    assert (s1[Col.TENURE_MONTHS], s1[Col.TENURE_STAGE], s1[Col.HOUSEHOLD]) == (2, "new", "single")
    assert (s1[Col.DATA_INTENSITY], s1[Col.CALL_INTENSITY]) == ("high", "very_low")
    assert s1[Col.DATA_CV] == pytest.approx(2 ** 0.5 / 3.0)
    assert s1[Col.USAGE_STABILITY] == "variable"
    assert (s1[Col.CURRENT_OFFER_ID], s1[Col.HAS_HISTORY], s1[Col.ACTIVE_OFFERS]) == (
        None, False, 0)
    # usage score 0.5*2/4 + 0.3*1/20 + 0.2*1/4; value score 0.4*2/4 + 0.3*1/20 + 0.3*1/4
    assert s1[Col.USAGE_SCORE] == pytest.approx(0.315)
    assert (s1[Col.VALUE_SCORE], s1[Col.VALUE_TIER]) == (pytest.approx(0.29), "gold")
    assert (s1[Col.RENEWAL_WINDOW], s1[Col.AUTOPAY], s1[Col.DATA_PLAN_FIT]) == (
        "unknown", "unknown", "unknown")
    # rule churn score: tenure <= 12 months (0.25)
    assert (s1[Col.CHURN_PROBABILITY], s1[Col.CHURN_BAND], s1[Col.CHURN_SOURCE]) == (
        0.25, "low", "rule")
    assert (s2[Col.TENURE_STAGE], s2[Col.HOUSEHOLD], s2[Col.CALL_INTENSITY]) == (
        "veteran", "family", "high")
    assert (s2[Col.USAGE_STABILITY], s2[Col.DATA_INTENSITY]) == ("unknown", "very_low")
    assert (s2[Col.CURRENT_OFFER_ID], s2[Col.HAS_HISTORY], s2[Col.ACTIVE_OFFERS]) == (
        "O2", True, 1)
    assert (s2[Col.DAYS_TO_CONTRACT_END], s2[Col.RENEWAL_WINDOW]) == (44, "yes")
    assert (s2[Col.AUTOPAY], s2[Col.ON_TIME_PAYMENT_SHARE]) == ("yes", 0.95)
    # consent: no value on record is not opted out; an opt-out is carried as is
    assert (s1[Col.MARKETING_OPT_OUT], s2[Col.MARKETING_OPT_OUT]) == (False, True)
    assert s2[Col.VALUE_SCORE] == pytest.approx(0.3 * 10.5 / 20) and s2[Col.VALUE_TIER] == "silver"
    # current plan O2: 4 GB, 10 min; used 0 GB and 10.5 min a month
    assert (s2[Col.DATA_USE_RATIO], s2[Col.DATA_PLAN_FIT], s2[Col.DATA_PLAN_EFFICIENCY]) == (
        0.0, "wasteful", 0.0)
    assert (s2[Col.VOICE_USE_RATIO], s2[Col.VOICE_PLAN_FIT], s2[Col.VOICE_PLAN_EFFICIENCY]) == (
        pytest.approx(1.05), "constrained", 1.0)
    # rule: renewal window (0.25) + missed share 0.5 > 0.2 (0.15)
    assert (s2[Col.CHURN_PROBABILITY], s2[Col.CHURN_BAND]) == (pytest.approx(0.4), "medium")


@pytest.mark.parametrize("ratio, label", [(None, "unknown"), (0.0, "wasteful"),
                                          (0.2999, "wasteful"), (0.3, "fit"), (0.9, "fit"),
                                          (0.9001, "constrained"), (3.0, "constrained")])
def test_plan_fit_thresholds(spark, ratio, label):
    df = spark.createDataFrame([(ratio,)], "r double")
    assert df.select(subscriber.plan_fit(F.col("r"), CFG)).first()[0] == label


@pytest.mark.parametrize("days, label", [(None, "unknown"), (-5, "yes"), (0, "yes"),
                                         (90, "yes"), (91, "no")])
def test_renewal_window(spark, days, label):
    df = spark.createDataFrame([(days,)], "d int")
    assert df.select(subscriber.renewal_window(F.col("d"), 90)).first()[0] == label


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


def test_offer_features_exact(spark):
    cat = spark.createDataFrame([
        ("O2", "b", 25.0, 50.0, 600.0, 200, 12, "premium", "postpaid", "5G", True),
        ("O1", "a", 5.0, 1.0, 100.0, 50, 0, "residential", "prepaid", "4G", False),
        ("O3", "c", 9.0, 10.0, 3000.0, 5000, 24, "business", "postpaid", "5G", False),
    ], schemas.CATALOGUE)
    stats = features.FeatureStats((), (), (), (10.0, 20.0, 30.0), offer_value_edges=(0.5, 1.0),
                                  offer_medians=(10.0, 600.0, 200.0))
    out = features.offer_features(cat, stats, RUN)
    assertSchemaEqual(out.schema, schemas.OFFER_FEATURES)
    got = sorted((r[Col.OFFER_ID], r[Col.OFFER_IDX], r[Col.PRICE_TIER], r[Col.DATA_TIER],
                  r[Col.FAMILY], round(r[Col.OFFER_VALUE], 4), r[Col.VALUE_CATEGORY],
                  r[Col.BUNDLE_RICHNESS], r[Col.BUNDLE_TYPE], r[Col.CONTRACT_LENGTH])
                 for r in out.collect())
    assert got == [
        ("O1", 0, "budget", "light", "no", round(1 / 6, 4), "low", 0, "basic", "none"),
        ("O2", 1, "premium", "heavy", "yes", round(50 / 26, 4), "high", 1, "basic", "up_to_12m"),
        ("O3", 2, "budget", "medium", "no", 1.0, "medium", 2, "standard", "up_to_24m")]


def test_fit_stats_quantiles_on_known_values(spark):
    profile = spark.createDataFrame(
        [(f"S{i}", float(i), float(10 * i), float(100 * i)) for i in range(1, 101)],
        [Col.SUBSCRIBER_ID, Col.DATA_GB_MONTH, Col.VOICE_MIN_MONTH, Col.SMS_MONTH])
    cat = spark.createDataFrame([(f"O{i}", "n", float(p), float(d), 100.0, 50, 0, "r", "p",
                                  "4G", False) for i, (p, d) in
                                 enumerate([(10, 1), (20, 5), (30, 20), (40, 50)])],
                                schemas.CATALOGUE)
    stats = features.fit_stats(profile, cat, CFG)
    assert stats.data_edges == (20.0, 40.0, 60.0, 80.0)
    assert stats.voice_edges == (200.0, 400.0, 600.0, 800.0)
    assert stats.usage_scales == (95.0, 950.0, 9500.0)
    assert stats.price_edges == (10.0, 20.0, 30.0)
    assert stats.offer_medians == (5.0, 100.0, 50.0)
    # value score of subscriber i: 0.4 min(i/95, 1) + 0.3 min(i/95, 1) + 0.3 min(i/95, 1)
    assert stats.value_edges == pytest.approx((25 / 95, 50 / 95, 75 / 95))


def test_feature_stats_round_trip(tmp_path):
    churn = features.ChurnModel(("tenure_months",), (-0.1,), 0.5, 100, 0.8)
    stats = features.FeatureStats((1.0, 2.0), (3.0,), (4.0,), (5.0,), usage_scales=(1.0, 2.0, 3.0),
                                  churn=churn)
    stats.save(tmp_path / "s.json")
    loaded = features.FeatureStats.load(tmp_path / "s.json")
    assert loaded == stats and loaded.version == stats.version


def test_fitted_quantiles_do_not_depend_on_partitioning_or_order(spark):
    """A rerun with other shuffle partitions or cores must fit the same bin edges. Spark's
    approxQuantile alone does not: its sketch answers differently when the same values arrive
    split or ordered otherwise (checked here on these values, so the test keeps its teeth)."""
    from telcorec.features.stats import QUANTILE_ERROR, quantiles

    values = [(float((i * 7919) % 100_003) / 7.0,) for i in range(120_000)]
    base = spark.createDataFrame(values, ["x"])
    layouts = {"1 partition": base.coalesce(1), "7 partitions": base.repartition(7),
               "reversed, 3 partitions": base.orderBy(F.desc("x")).repartition(3, "x")}
    probs = [0.2, 0.4, 0.6, 0.8, 0.95]
    raw = {name: tuple(df.approxQuantile("x", probs, QUANTILE_ERROR))
           for name, df in layouts.items()}
    fitted = {name: quantiles(df, ["x"], probs)["x"] for name, df in layouts.items()}
    print("approxQuantile by layout:", raw)
    assert len(set(raw.values())) > 1, "these values no longer expose approxQuantile's order"
    assert all(f == fitted["1 partition"] for f in fitted.values()), fitted
    exact = sorted(v for (v,) in values)
    for p in probs:  # within the sketch's rank error of the exact quantile
        rank = exact.index(fitted["1 partition"][p])
        assert abs(rank / len(exact) - p) <= 2 * QUANTILE_ERROR


def test_quantiles_fitted_together_equal_each_column_fitted_alone(spark):
    """fit_stats fits every column of two tables in one job: each column's sketch must still see
    only its own values (NULLs and NaNs left out), as it would alone."""
    from telcorec.features.stats import fitted_quantiles, quantiles

    rows = [(float((i * 7919) % 100_003) / 7.0 if i % 5 else None, (i * 104_729) % 65_537,
             float("nan") if i % 11 == 0 else float(i % 977))
            for i in range(60_000)]
    wide = spark.createDataFrame(rows, "a double, b long, c double").repartition(3)
    small = spark.createDataFrame([(float(i % 13),) for i in range(40)], "p double")
    probs, other = [0.2, 0.5, 0.95], [0.25, 0.75]
    together = fitted_quantiles([(wide, ["a", "b", "c"], probs), (small, ["p"], other)])
    alone = ({c: quantiles(wide.select(c), [c], probs)[c] for c in ("a", "b", "c")},
             {"p": quantiles(small, ["p"], other)["p"]})
    assert together == list(alone)
    assert all(len(q) == len(probs) for q in together[0].values())
