"""The whole pipeline at a tiny scale, checked against the output contract downstream SQL uses."""
import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from telcorec import config, pipeline, schemas, storage
from telcorec.columns import Col
from telcorec.warehouse import Warehouse

RUN = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("wh")
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(root), "generator.subscribers": 600})
    results = pipeline.run(spark, cfg, RUN)
    return cfg, Warehouse.from_config(cfg.warehouse, cfg.inputs.path), results


def test_offers_contract(spark, tiny):
    cfg, wh, results = tiny
    offers = storage.read_table(spark, wh.table("offers"), schemas.OFFERS, RUN)
    assertSchemaEqual(offers.schema, schemas.OFFERS)
    assert DeltaTable(str(wh.table("offers"))).metadata().partition_columns == [Col.RUN_DATE]
    features = storage.read_table(spark, wh.table("subscriber_features"),
                                  schemas.SUBSCRIBER_FEATURES, RUN)
    per_sub = offers.groupBy(Col.SUBSCRIBER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.collect_set(Col.RANK).alias("ranks"),
        F.countDistinct(Col.OFFER_ID).alias("distinct_offers"))
    k = cfg.scoring.k
    assert per_sub.count() == features.count() == 600  # every subscriber, cold start included
    assert per_sub.filter((F.col("n") != k) | (F.col("distinct_offers") != k)
                          | (F.size("ranks") != k)).count() == 0
    assert offers.agg(F.min(Col.RANK), F.max(Col.RANK)).first() == (1, k)
    current = features.select(Col.SUBSCRIBER_ID, F.col(Col.CURRENT_OFFER_ID).alias(Col.OFFER_ID))
    assert offers.join(current, on=[Col.SUBSCRIBER_ID, Col.OFFER_ID], how="inner").count() == 0
    assert results["score"]["offers"] == 600 * k


def test_ingest_counts_add_up(tiny):
    _, _, results = tiny
    for counts in results["ingest"]:
        assert counts.read == counts.accepted + counts.rejected
    cdr = next(c for c in results["ingest"] if c.table == "cdr")
    assert cdr.rejected > 0 and cdr.accepted > 0


def test_metrics_table_has_model_and_baselines(spark, tiny):
    _, wh, _ = tiny
    metrics = storage.read_table(spark, wh.table("metrics"), schemas.METRICS, RUN)
    models = {r[Col.MODEL] for r in metrics.select(Col.MODEL).distinct().collect()}
    assert models == {"lightfm_warp", "popularity", "random", "oracle"}
    overall = metrics.filter((F.col(Col.SEGMENT) == "all") & (F.col(Col.METRIC) == "precision")
                             & (F.col(Col.K) == 5))
    assert overall.count() == 4
    groups = {r[Col.SEGMENT] for r in metrics.select(Col.SEGMENT).distinct().collect()}
    assert {"all", "warm", "cold_start", "youth", "business"} <= groups
    names = {r[Col.METRIC] for r in metrics.select(Col.METRIC).distinct().collect()}
    assert names == {"precision", "recall", "hit_rate", "map", "ndcg", "mrr", "auc", "coverage",
                     "diversity", "novelty"}


def test_rerun_same_date_is_idempotent(spark, tiny):
    cfg, wh, _ = tiny
    before = storage.read_table(spark, wh.table("offers"), schemas.OFFERS, RUN).cache()
    before.count()
    version = DeltaTable(str(wh.table("offers"))).version()
    metric_rows = storage.read_table(spark, wh.table("metrics"), schemas.METRICS).count()
    pipeline.run(spark, cfg, RUN)
    after = storage.read_table(spark, wh.table("offers"), schemas.OFFERS, RUN)
    assert DeltaTable(str(wh.table("offers"))).version() == version + 1
    assertDataFrameEqual(after, before)
    assert storage.read_table(spark, wh.table("metrics"), schemas.METRICS).count() == metric_rows
    dupes = after.groupBy(Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.OFFER_ID).count()
    assert dupes.filter(F.col("count") > 1).count() == 0


def test_runs_table_records_each_attempt(spark, tiny):
    _, wh, _ = tiny
    rows = DeltaTable(str(wh.table("runs"))).to_pandas()
    by_attempt = rows.groupby(Col.ATTEMPT_ID)[Col.STATUS].apply(sorted)
    assert all(statuses == ["running", "succeeded"] for statuses in by_attempt)
    done = rows[rows[Col.STATUS] == "succeeded"].iloc[0]
    assert '"lightfm_warp:precision@5"' in done[Col.METRICS_JSON]
    assert '"offers": 6000' in done[Col.COUNTS]


def test_latest_offers_view_shows_only_succeeded_runs(spark, tiny):
    _, wh, _ = tiny
    from telcorec import sql
    got = sql.query(spark, wh, "delta-rs", "SELECT count(*) AS n, count(DISTINCT subscriber_id) "
                    "AS s FROM latest_offers").first()
    assert (got["n"], got["s"]) == (6000, 600)


def test_gate_refuses_a_broken_model_and_leaves_offers_as_they_were(spark, tiny):
    import numpy as np

    from telcorec import evaluation, scoring, training
    from telcorec.gate import GateRejected
    from telcorec.models import artifacts

    cfg, wh, _ = tiny
    before = storage.read_table(spark, wh.table("offers"), schemas.OFFERS, RUN).cache()
    before.count()
    version = DeltaTable(str(wh.table("offers"))).version()
    model_dir = wh.models(RUN, "lightfm_warp")
    shard = model_dir / "shard=0000"
    arrays, meta = artifacts.load(shard)
    good = {name: value.copy() for name, value in arrays.items()}
    rng = np.random.default_rng(0)
    broken = {name: rng.normal(size=value.shape).astype(value.dtype) for name, value in arrays.items()}
    try:
        artifacts.save(shard, broken, {k: v for k, v in meta.items() if k != "arrays_sha256"})
        evaluation.run(spark, cfg, RUN)
        with pytest.raises(GateRejected, match="quality gate refused to publish"):
            scoring.run(spark, cfg, RUN)
        assert DeltaTable(str(wh.table("offers"))).version() == version
        assertDataFrameEqual(storage.read_table(spark, wh.table("offers"), schemas.OFFERS, RUN),
                             before)
    finally:
        artifacts.save(shard, good, {k: v for k, v in meta.items() if k != "arrays_sha256"})
        evaluation.run(spark, cfg, RUN)
