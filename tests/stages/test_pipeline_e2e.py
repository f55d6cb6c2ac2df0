"""The whole pipeline at a tiny scale, checked against the output contract downstream SQL uses."""
import datetime as dt

import numpy as np
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from telcorec.core import schemas
from telcorec.core.columns import Col, Route
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import evaluate as evaluate_stage
from telcorec.stages import pipeline
from telcorec.stages import score as score_stage

RUN = dt.date(2026, 11, 23)   # conftest.PIPELINE_RUN_DATE


@pytest.fixture(scope="module")
def tiny(tiny_pipeline):
    return tiny_pipeline   # conftest.py: one pipeline run, shared with the README examples


def test_offers_contract(spark, tiny):
    cfg, wh, results = tiny
    offers = DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN])
    assertSchemaEqual(offers.schema, schemas.OFFERS)
    assert DeltaTable(str(wh.table("offers"))).metadata().partition_columns == [Col.RUN_DATE]
    features = DeltaRsWriter().read(spark, wh.table("subscriber_features"),
                                    schemas.SUBSCRIBER_FEATURES, [RUN])
    per_sub = offers.groupBy(Col.SUBSCRIBER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.collect_set(Col.RANK).alias("ranks"),
        F.countDistinct(Col.OFFER_ID).alias("distinct_offers"))
    k = cfg.scoring.k
    opted_out = features.where(F.col(Col.MARKETING_OPT_OUT)).select(Col.SUBSCRIBER_ID)
    n_out = opted_out.count()
    assert features.count() == 600 and 0 < n_out < 60  # generator.opt_out_share 2%
    # every subscriber who consents, cold start included; none who opted out (rule consent)
    assert per_sub.count() == 600 - n_out
    assert per_sub.join(opted_out, on=Col.SUBSCRIBER_ID).count() == 0
    assert per_sub.filter((F.col("n") != k) | (F.col("distinct_offers") != k)
                          | (F.size("ranks") != k)).count() == 0
    assert offers.agg(F.min(Col.RANK), F.max(Col.RANK)).first() == (1, k)
    current = features.select(Col.SUBSCRIBER_ID, F.col(Col.CURRENT_OFFER_ID).alias(Col.OFFER_ID))
    assert offers.join(current, on=[Col.SUBSCRIBER_ID, Col.OFFER_ID], how="inner").count() == 0
    assert results["score"]["offers"] == (600 - n_out) * k


def test_offers_carry_arms_components_reasons_and_follow_the_rules(tiny):
    cfg, wh, results = tiny
    offers = DeltaTable(str(wh.table("offers"))).to_pandas(
        partitions=[(Col.RUN_DATE, "=", RUN.isoformat())])  # 10 rows per consenting subscriber
    features = DeltaTable(str(wh.table("subscriber_features"))).to_pandas(
        partitions=[(Col.RUN_DATE, "=", RUN.isoformat())]).set_index(Col.SUBSCRIBER_ID)
    score = results["score"]
    firsts = offers[offers[Col.RANK] == 1]
    assert score["subscribers_by_arm"] == firsts[Col.ARM].value_counts().sort_index().to_dict()
    assert abs(score["subscribers_by_arm"]["control"] / 600 - 0.1) < 0.04
    control = offers[Col.ARM] == "control"
    assert set(offers.loc[control, Col.MODEL_VERSION]) == {f"popularity-{RUN.isoformat()}"}
    assert set(offers.loc[~control, Col.MODEL_VERSION]) == {score["model_version"]}
    # the rank follows the final score, and the score is the weighted sum of its components
    ordered = offers.sort_values([Col.SUBSCRIBER_ID, Col.RANK])
    assert (ordered.groupby(Col.SUBSCRIBER_ID)[Col.SCORE].diff().dropna() <= 1e-12).all()
    parts = offers[[Col.RELEVANCE, Col.REVENUE, Col.RETENTION, Col.DIVERSITY]].to_numpy()
    weights = np.where(control.to_numpy()[:, None], [1.0, 0, 0, 0],
                       [cfg.rerank.weights.as_tuple()])
    np.testing.assert_allclose((parts * weights).sum(axis=1), offers[Col.SCORE], atol=1e-9)
    # every rule holds on the published rows, and its removals are counted
    subs = features.loc[offers[Col.SUBSCRIBER_ID]]
    catalogue = DeltaTable(str(wh.table("offer_features"))).to_pandas().set_index(Col.OFFER_ID)
    offered = catalogue.loc[offers[Col.OFFER_ID]]
    prepaid = subs[Col.PAYMENT_TYPE].to_numpy() == "prepaid"
    assert (offered[Col.PAYMENT_TYPE].to_numpy()[prepaid] == "prepaid").all()
    business = offered[Col.PLAN_TYPE].to_numpy() == "business"
    assert (subs[Col.SEGMENT].to_numpy()[business] == "business").all()
    family = offered[Col.FAMILY].to_numpy() == "yes"
    assert (subs[Col.HOUSEHOLD].to_numpy()[family] == "family").all()
    removed = score["rules"]
    assert removed["candidate_pairs"] == 600 * 60
    assert sum(v for k, v in removed.items() if k not in (
        "candidate_pairs", "eligible_pairs", "subscribers_without_offers", "campaign_cap")) \
        + removed["eligible_pairs"] == removed["candidate_pairs"]
    assert min(removed[r.name] for r in cfg.rules.eligibility) > 0
    assert offers.groupby(Col.OFFER_ID).size().max() <= 0.5 * 600  # campaign cap
    # reasons: model pairs for the model arm, markers for cold start and control
    # (rows of new subscribers, ranked by the content rules alone, carry no model pairs)
    new = (offers[Col.ROUTE] == Route.NEW).to_numpy()
    model_reasons = offers.loc[~control & ~new, Col.REASONS]
    assert model_reasons.map(lambda r: any(" x " in x for x in r)).all()
    assert offers.loc[~control & new, Col.REASONS].map(
        lambda r: not any(" x " in x for x in r)
        and any(x.startswith("cold_start: new subscriber") for x in r)).all()
    # the route follows tenure: new <= 7 days, warm <= 30, else established
    days = subs[Col.TENURE_DAYS].to_numpy(dtype=float)
    expected = np.where(days <= 7, Route.NEW, np.where(days <= 30, Route.WARM, Route.ESTABLISHED))
    assert (offers[Col.ROUTE].to_numpy() == expected).all() and new.any()
    cold = ~subs[Col.HAS_HISTORY].to_numpy()
    assert cold.any() and offers.loc[cold, Col.REASONS].map(
        lambda r: any(x.startswith("cold_start:") for x in r)).all()
    assert offers.loc[control, Col.REASONS].map(
        lambda r: any(x.startswith("control:") for x in r)).all()


def test_next_days_batch_excludes_the_offers_published_at_rank_1(spark, tiny):
    from telcorec.offers import selection
    from telcorec.publish import passes

    cfg, wh, _ = tiny
    features = DeltaRsWriter().read(spark, wh.table("subscriber_features"),
                                    schemas.SUBSCRIBER_FEATURES, [RUN])
    offer_df = DeltaRsWriter().read(spark, wh.table("offer_features"), schemas.OFFER_FEATURES,
                                    [RUN])
    history = passes.offer_history(spark, wh, DeltaRsWriter())
    tomorrow = selection.subscriber_batch(features, offer_df, history, cfg,
                                          RUN + dt.timedelta(days=1))
    shown = (DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN])
             .where(F.col(Col.RANK) == 1).join(offer_df, on=Col.OFFER_ID, how="inner")
             .select(Col.SUBSCRIBER_ID, F.array(F.col(Col.OFFER_IDX)).alias(Col.FATIGUE_IDX)))
    # subscribers who opted out got no offers, so nothing to tire them of
    assertDataFrameEqual(tomorrow.where(F.size(Col.FATIGUE_IDX) > 0)
                         .select(Col.SUBSCRIBER_ID, Col.FATIGUE_IDX), shown)
    today = selection.subscriber_batch(features, offer_df, history, cfg, RUN)
    assert today.where(F.size(Col.FATIGUE_IDX) > 0).count() == 0  # a rerun sees no fatigue


def test_ingest_counts_add_up(tiny):
    _, _, results = tiny
    for counts in results["ingest"]:
        assert counts.read == counts.accepted + counts.rejected
    cdr = next(c for c in results["ingest"] if c.table == "cdr")
    assert cdr.rejected > 0 and cdr.accepted > 0


def test_metrics_table_has_model_and_baselines(spark, tiny):
    _, wh, _ = tiny
    metrics = DeltaRsWriter().read(spark, wh.table("metrics"), schemas.METRICS, [RUN])
    models = {r[Col.MODEL] for r in metrics.select(Col.MODEL).distinct().collect()}
    assert models == {"lightfm_warp", "content", "popularity", "random", "oracle"}
    overall = metrics.filter((F.col(Col.SEGMENT) == "all") & (F.col(Col.METRIC) == "precision")
                             & (F.col(Col.K) == 5))
    assert overall.count() == 5
    groups = {r[Col.SEGMENT] for r in metrics.select(Col.SEGMENT).distinct().collect()}
    assert {"all", "warm", "cold_start", "youth", "business"} <= groups
    names = {r[Col.METRIC] for r in metrics.select(Col.METRIC).distinct().collect()}
    assert names == {"precision", "recall", "hit_rate", "map", "ndcg", "mrr", "auc", "coverage",
                     "diversity", "novelty", "hr"}  # hr: the sampled protocol's hit ratio


def test_rerun_same_date_is_idempotent(spark, tiny):
    cfg, wh, _ = tiny
    before = DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN]).cache()
    before.count()
    version = DeltaTable(str(wh.table("offers"))).version()
    metric_rows = DeltaRsWriter().read(spark, wh.table("metrics"), schemas.METRICS).count()
    pipeline.run(spark, cfg, RUN)
    after = DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN])
    assert DeltaTable(str(wh.table("offers"))).version() == version + 1
    assertDataFrameEqual(after, before)
    assert DeltaRsWriter().read(spark, wh.table("metrics"), schemas.METRICS).count() == metric_rows
    dupes = after.groupBy(Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.OFFER_ID).count()
    assert dupes.filter(F.col("count") > 1).count() == 0


def results_offers(wh) -> int:
    """The published row count (600 subscribers minus those who opted out, x K = 10)."""
    return len(DeltaTable(str(wh.table("offers"))).to_pyarrow_table(columns=[Col.RANK]))


def test_runs_table_records_each_attempt(spark, tiny):
    _, wh, _ = tiny
    rows = DeltaTable(str(wh.table("runs"))).to_pandas()
    by_attempt = rows.groupby(Col.ATTEMPT_ID)[Col.STATUS].apply(sorted)
    assert all(statuses == ["running", "succeeded"] for statuses in by_attempt)
    done = rows[rows[Col.STATUS] == "succeeded"].iloc[0]
    assert '"lightfm_warp:precision@5"' in done[Col.METRICS_JSON]
    assert f'"offers": {results_offers(wh)}' in done[Col.COUNTS]


def test_latest_offers_view_shows_only_succeeded_runs(spark, tiny):
    _, wh, _ = tiny
    from telcorec import sql
    got = sql.query(spark, wh, DeltaRsWriter(), "SELECT count(*) AS n, count(DISTINCT "
                    "subscriber_id) AS s FROM latest_offers").first()
    n = results_offers(wh)
    assert (got["n"], got["s"]) == (n, n // 10)


def test_gate_refuses_a_broken_model_and_leaves_offers_as_they_were(spark, tiny):
    import numpy as np

    from telcorec.core.exceptions import GateRejected
    from telcorec.io import artifacts

    cfg, wh, _ = tiny
    before = DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN]).cache()
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
        evaluate_stage.run(spark, cfg, RUN)
        with pytest.raises(GateRejected, match="quality gate refused to publish"):
            score_stage.run(spark, cfg, RUN)
        assert DeltaTable(str(wh.table("offers"))).version() == version
        assertDataFrameEqual(
            DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN]), before)
    finally:
        artifacts.save(shard, good, {k: v for k, v in meta.items() if k != "arrays_sha256"})
        evaluate_stage.run(spark, cfg, RUN)


def test_offers_name_the_run_that_trained_their_model_also_when_scored_alone(spark, tiny):
    """Last in this module: it republishes RUN's offers under another run id."""
    import json

    from telcorec.io import artifacts, runs

    cfg, wh, _ = tiny
    trained_by = runs.run_id(cfg, RUN)

    def published():
        return DeltaTable(str(wh.table("offers"))).to_pandas(
            partitions=[(Col.RUN_DATE, "=", RUN.isoformat())])

    offers = published()
    assert set(offers[Col.RUN_ID]) == set(offers[Col.MODEL_RUN_ID]) == {trained_by}
    manifest = json.loads((wh.models(RUN, "lightfm_warp") / artifacts.MANIFEST).read_text())
    pipelines = {r[Col.ATTEMPT_ID] for r in runs.read_rows(wh.table("runs"))
                 if r[Col.JOB] == "pipeline"}
    assert manifest[artifacts.TRAINED_BY]["run_id"] == trained_by
    assert manifest[artifacts.TRAINED_BY]["attempt_id"] in pipelines
    # a config that changes no offer but the run id, scored alone as jobs/score.py does
    alone = cfg.with_overrides(**{"drift.psi_alert": 0.3})
    assert runs.run_id(alone, RUN) != trained_by
    runs.recorded(wh.table("runs"), wh.table("metrics"), alone, RUN,
                  lambda done: done.__setitem__("score", score_stage.run(spark, alone, RUN)),
                  job="score")
    offers = published()
    control = offers[Col.ARM] == "control"
    assert set(offers[Col.RUN_ID]) == {runs.run_id(alone, RUN)}
    assert set(offers.loc[~control, Col.MODEL_RUN_ID]) == {trained_by}
    # the control arm's popularity ranking is made by the scoring run itself
    assert set(offers.loc[control, Col.MODEL_RUN_ID]) == {runs.run_id(alone, RUN)}
