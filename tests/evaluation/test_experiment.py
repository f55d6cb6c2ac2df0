"""A/B statistics against scipy and a hand-derived example; the counts per arm and segment on
literal rows; the stage writes `experiment_results` and a rerun of a date replaces it."""
import datetime as dt

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual
from scipy import stats

from helpers.rows import full_row
from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.core.config import ExperimentConfig
from telcorec.evaluation import experiment as ex
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import experiment as stage

RUN = dt.date(2026, 11, 8)
DAY1, DAY2 = dt.date(2026, 11, 6), dt.date(2026, 11, 7)


def test_two_proportion_p_value_is_scipys_chi_square_of_the_2x2_table():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n1, n0 = rng.integers(20, 5000, size=2)
        x1, x0 = rng.integers(1, n1), rng.integers(1, n0)
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        want = stats.chi2_contingency(table, correction=False).pvalue
        assert ex.two_proportion_p(int(x1), int(n1), int(x0), int(n0)) == pytest.approx(
            want, rel=1e-9, abs=1e-300)


def test_sample_ratio_p_value_is_scipys_goodness_of_fit():
    shares = {"a": 0.5, "b": 0.3, "control": 0.2}
    rng = np.random.default_rng(3)
    for _ in range(20):
        counts = dict(zip(shares, (int(c) for c in rng.integers(50, 900, size=3))))
        total = sum(counts.values())
        want = stats.chisquare(list(counts.values()),
                               [total * shares[a] for a in counts]).pvalue
        assert ex.sample_ratio_p(counts, shares) == pytest.approx(want, rel=1e-9)


def test_intervals_and_mde_of_a_hand_derived_example():
    # p1 = 120/1000, p0 = 80/1000, z = 1.959964, z_0.8 = 0.841621
    # abs: se = sqrt(.12*.88/1000 + .08*.92/1000) = 0.0133866 -> .04 -+ .0262372
    assert ex.absolute_uplift(120, 1000, 80, 1000, 0.95) == pytest.approx(
        (0.04, 0.0137628, 0.0662372), abs=1e-6)
    # rel: se = sqrt(.88/120 + .92/80) = 0.1372346; exp(ln 1.5 -+ z se) - 1
    assert ex.relative_uplift(120, 1000, 80, 1000, 0.95) == pytest.approx(
        (0.5, 0.1462437, 0.9629334), abs=1e-6)
    # mde = (1.959964 + 0.841621) * sqrt(.08 * .92 * (2 / 1000)) = 0.0339905
    assert ex.minimum_detectable_effect(1000, 1000, 0.08, 0.95, 0.8) == pytest.approx(
        0.0339905, abs=1e-6)
    assert ex.relative_uplift(5, 100, 0, 100, 0.95) is None  # no acceptance in control


def test_result_rows_put_uplift_on_the_treated_arm_only():
    cfg = ExperimentConfig(arms={"model": 0.9, "control": 0.1})
    counts = [ex.ArmCounts("model", "all", 1000, 900, 300, 108, 540.0),
              ex.ArmCounts("control", "all", 110, 100, 30, 6, 12.0)]
    rows = {r[Col.ARM]: r for r in ex.result_rows(counts, cfg, RUN, DAY1)}
    model, control = rows["model"], rows["control"]
    assert model[Col.CONVERSION] == pytest.approx(0.12)
    assert model[Col.UPLIFT_ABS] == pytest.approx(0.06)
    assert model[Col.P_VALUE] == pytest.approx(
        stats.chi2_contingency([[108, 792], [6, 94]], correction=False).pvalue)
    assert model[Col.SRM_P_VALUE] == pytest.approx(1.0) and model[Col.SRM_OK]
    assert model[Col.REVENUE_PER_SUBSCRIBER] == pytest.approx(0.6)
    assert control[Col.UPLIFT_ABS] is None and control[Col.P_VALUE] is None
    assert control[Col.OBSERVED_SHARE] == pytest.approx(0.1)


def offer(day, sid, oid, rank, arm):
    return full_row(schemas.OFFERS, **{Col.RUN_DATE: day, Col.SUBSCRIBER_ID: sid,
                                       Col.OFFER_ID: oid, Col.RANK: rank, Col.ARM: arm,
                                       Col.REASONS: []})


def answer(day, sid, oid, offered, outcome):
    return (day, sid, oid, offered, "sms", offered, outcome)


@pytest.fixture
def warehouse(spark, tmp_path):
    """Two days of offers to 4 subscribers (arms by the configured hash) and their answers."""
    cfg = config.load("conf/base.yaml").with_overrides(warehouse=str(tmp_path / "wh"))
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    arms = {r[Col.SUBSCRIBER_ID]: r[Col.ARM] for r in ex_arms(spark, cfg)}
    for day in (DAY1, DAY2, RUN):
        feats = [full_row(schemas.SUBSCRIBER_FEATURES, **{
            Col.RUN_DATE: day, Col.SUBSCRIBER_ID: s, Col.SEGMENT: seg,
            Col.CURRENT_OFFER_ID: "O1"}) for s, seg in SUBS.items()]
        write(spark, wh, "subscriber_features", feats, day)
        prices = [full_row(schemas.OFFER_FEATURES, **{Col.RUN_DATE: day, Col.OFFER_ID: o,
                                                      Col.OFFER_IDX: i, Col.PRICE: p})
                  for i, (o, p) in enumerate({"O1": 10.0, "O2": 25.0, "O3": 40.0}.items())]
        write(spark, wh, "offer_features", prices, day)
    for day in (DAY1, DAY2):
        write(spark, wh, "offers", [offer(day, s, o, r, arms[s]) for s in SUBS
                                    for r, o in ((1, "O2"), (2, "O3"))], day)
    write(spark, wh, "responses", [answer(DAY2, "S1", "O2", DAY1, "accepted"),
                                   answer(DAY2, "S2", "O3", DAY1, "declined"),
                                   answer(RUN, "S3", "O3", DAY2, "accepted"),
                                   answer(RUN, "S3", "O2", DAY2, "declined")], None)
    return cfg, wh, arms


SUBS = {"S1": "youth", "S2": "youth", "S3": "family", "S4": "family"}


def ex_arms(spark, cfg):
    from telcorec.offers.experiments import with_arm
    ids = spark.createDataFrame([(s,) for s in SUBS], f"{Col.SUBSCRIBER_ID} string")
    return with_arm(ids, cfg.experiment).collect()


def write(spark, wh, name, rows, day):
    schema = schemas.TABLES[name]
    df = spark.createDataFrame(rows, schema)
    for d in sorted({r[0] for r in rows}) if day is None else [day]:
        DeltaRsWriter().replace_partition(df.where(df[Col.RUN_DATE] == d), wh.table(name), schema,
                                          d)


def test_per_subscriber_counts_on_literal_rows(spark, warehouse):
    cfg, wh, arms = warehouse
    counts = {(c.arm, c.segment): c for c in stage_counts(spark, cfg, wh)}
    # S1 accepted O2 (25 - 10 = 15 a month), S2 declined, S3 accepted O3 (40 - 10), S4 silent
    expected = {}
    for sid, seg in SUBS.items():
        accepted = sid in ("S1", "S3")
        for key in ((arms[sid], seg), (arms[sid], "all")):
            c = expected.setdefault(key, [0, 0, 0, 0, 0.0])
            c[0] += 1
            c[1] += 1
            c[2] += sid != "S4"
            c[3] += accepted
            c[4] += {"S1": 15.0, "S3": 30.0}.get(sid, 0.0)
    assert {k: [c.subscribers, c.offered, c.responders, c.accepted, c.revenue]
            for k, c in counts.items()} == expected


def stage_counts(spark, cfg, wh):
    read = lambda name, start, end: DeltaRsWriter().read(spark, wh.table(name),
                                                         schemas.TABLES[name]).where(
        (f"{Col.RUN_DATE} >= DATE'{start}' AND {Col.RUN_DATE} < DATE'{end}'"))
    from telcorec.offers.experiments import with_arm
    population = with_arm(read("subscriber_features", RUN, RUN + dt.timedelta(days=1))
                          .select(Col.SUBSCRIBER_ID, Col.SEGMENT), cfg.experiment)
    responses = read("responses", DAY1, RUN + dt.timedelta(days=1))
    revenue = ex.price_uplift(responses, read("subscriber_features", DAY1, RUN),
                              read("offer_features", DAY1, RUN))
    return ex.arm_counts(ex.per_subscriber(population, read("offers", DAY1, RUN), responses,
                                           revenue))


def test_the_stage_writes_results_and_a_rerun_replaces_them(spark, warehouse):
    cfg, wh, _ = warehouse
    first = stage.run(spark, cfg, RUN)
    table = DeltaRsWriter().read(spark, wh.table("experiment_results"), schemas.EXPERIMENT_RESULTS)
    written = table.collect()
    assert {(r[Col.ARM], r[Col.SEGMENT]) for r in written} == {
        (a, s) for (a, s) in [(r.arm, r.segment) for r in stage_counts(spark, cfg, wh)]}
    assert {r[Col.RUN_DATE] for r in written} == {RUN}
    assert stage.run(spark, cfg, RUN) == first
    assertDataFrameEqual(DeltaRsWriter().read(spark, wh.table("experiment_results"),
                                              schemas.EXPERIMENT_RESULTS), written)
