"""The quality gate blocks a real LightFM model trained on shuffled labels and
lets an identical, normally trained model through.

"Shuffled labels": the training rows of `interactions` keep their subscriber side while the
offer columns are permuted across rows by a seeded hash order in Spark, so every subscriber
still holds as many plans and every plan is held as often, but who holds what is noise. The
model is trained, evaluated (the `metrics` table) and scored like any other, as one attempt
recorded in `runs`.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core import config, schemas
from telcorec.core.columns import Col, RunStatus, Split
from telcorec.core.exceptions import GateRejected
from telcorec.io import metrics_store, runs
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import pipeline

RUN = dt.date(2026, 11, 23)
KEY = "precision@5"
pytestmark = pytest.mark.slow  # minutes on 2 shared cores: three trainings at 300 subscribers


@pytest.fixture(scope="module")
def inputs(spark, tmp_path_factory):
    """A tiny warehouse up to the interactions stage, shared by the attempts below."""
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(tmp_path_factory.mktemp("wh-gate")), "generator.subscribers": 300})
    for name in ("generate", "ingest", "features", "interactions"):
        pipeline.STAGES[name](spark, cfg, RUN)
    return cfg, Warehouse.from_config(cfg.warehouse, cfg.inputs.path)


def attempt(spark, cfg, wh: Warehouse) -> dict[str, object]:
    """train -> evaluate -> score (the gate, then publishing) as one recorded attempt."""
    def work(results: dict[str, object]) -> None:
        for name in ("train", "evaluate", "score"):
            results[name] = pipeline.STAGES[name](spark, cfg, RUN)
    return runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, RUN, work)


def shuffle_training_labels(spark, wh: Warehouse, seed: int) -> DataFrame:
    """The training rows with their offer columns permuted across rows; test rows unchanged."""
    table = DeltaRsWriter().read(spark, wh.table("interactions"), schemas.INTERACTIONS, [RUN])
    train = table.where(F.col(Col.SPLIT) == Split.TRAIN)
    row = "_row"
    # one global order per side (a few thousand rows): subscribers in id order, offers in a
    # seeded hash order, matched by position
    subscribers = train.drop(Col.OFFER_ID, Col.OFFER_IDX).withColumn(
        row, F.row_number().over(Window.orderBy(Col.SUBSCRIBER_ID, Col.EVENT_DATE, Col.WEIGHT)))
    offers = train.select(Col.OFFER_ID, Col.OFFER_IDX, Col.SUBSCRIBER_ID).withColumn(
        row, F.row_number().over(Window.orderBy(
            F.xxhash64(Col.SUBSCRIBER_ID, Col.OFFER_IDX, F.lit(seed)), Col.SUBSCRIBER_ID,
            Col.OFFER_IDX))).drop(Col.SUBSCRIBER_ID)
    shuffled = subscribers.join(offers, on=row).select(*schemas.INTERACTIONS.fieldNames())
    return shuffled.unionByName(table.where(F.col(Col.SPLIT) == Split.TEST))


def without_test_pairs(df: DataFrame) -> DataFrame:
    """A shuffled training pair that happens to be a held-out pair is dropped: evaluation
    rightly refuses train/test overlap (evaluation.check_no_overlap)."""
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID]
    test = df.where(F.col(Col.SPLIT) == Split.TEST)
    train = df.where(F.col(Col.SPLIT) == Split.TRAIN).join(test.select(*keys), on=keys,
                                                           how="left_anti")
    return train.select(*schemas.INTERACTIONS.fieldNames()).unionByName(test)


def offers_state(wh: Warehouse) -> tuple[int, str]:
    """The table version and a SHA-256 of the published rows in a fixed order."""
    table = DeltaTable(str(wh.table("offers")))
    rows = table.to_pyarrow_table(columns=[Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.RANK,
                                           Col.OFFER_ID, Col.SCORE, Col.MODEL_VERSION])
    ordered = sorted(map(tuple, rows.to_pandas().astype(str).to_numpy().tolist()))
    return table.version(), hashlib.sha256(repr(ordered).encode()).hexdigest()


def last_status(wh: Warehouse) -> str:
    rows = DeltaTable(str(wh.table("runs"))).to_pyarrow_table().to_pylist()
    ended = [r for r in rows if r[Col.ENDED_AT] is not None]
    return max(ended, key=lambda r: r[Col.ENDED_AT])[Col.STATUS]


def test_gate_blocks_a_model_trained_on_shuffled_labels_and_passes_an_identical_normal_one(
        spark, inputs):
    cfg, wh = inputs
    attempt(spark, cfg, wh)
    normal = metrics_store.overall_metrics(wh.table("metrics"), RUN)
    published = offers_state(wh)
    assert last_status(wh) == RunStatus.SUCCEEDED

    # the permutation keeps every marginal: rows per subscriber and per offer
    interactions = DeltaRsWriter().read(spark, wh.table("interactions"), schemas.INTERACTIONS,
                                        [RUN])
    shuffled = shuffle_training_labels(spark, wh, seed=7).localCheckpoint()
    train = lambda df, col: sorted(df.where(F.col(Col.SPLIT) == Split.TRAIN).groupBy(col)
                                   .count().collect())
    assert train(shuffled, Col.OFFER_ID) == train(interactions, Col.OFFER_ID)
    assert train(shuffled, Col.SUBSCRIBER_ID) == train(interactions, Col.SUBSCRIBER_ID)
    moved = shuffled.join(interactions, on=[Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.SPLIT],
                          how="left_anti").count()
    rows = interactions.where(F.col(Col.SPLIT) == Split.TRAIN).count()
    assert moved > 0.5 * rows
    kept = without_test_pairs(shuffled).localCheckpoint()
    print(f"shuffled labels: {moved} of {rows} training rows hold another offer, "
          f"{shuffled.count() - kept.count()} dropped as held-out pairs")
    DeltaRsWriter().replace_partition(kept, wh.table("interactions"), schemas.INTERACTIONS, RUN)

    with pytest.raises(GateRejected, match="quality gate refused to publish") as refused:
        attempt(spark, cfg, wh)
    noise = metrics_store.overall_metrics(wh.table("metrics"), RUN)
    assert last_status(wh) == RunStatus.REJECTED
    assert offers_state(wh) == published  # same version, same content

    pipeline.STAGES["interactions"](spark, cfg, RUN)  # the labels as they were
    attempt(spark, cfg, wh)
    again = metrics_store.overall_metrics(wh.table("metrics"), RUN)
    version, content = offers_state(wh)
    assert last_status(wh) == RunStatus.SUCCEEDED and version == published[0] + 1

    model, popularity = f"lightfm_warp:{KEY}", f"popularity:{KEY}"
    print(f"{KEY}: normal {normal[model]:.4f}, shuffled labels {noise[model]:.4f}, "
          f"popularity {normal[popularity]:.4f}, normal retrained {again[model]:.4f}; "
          f"same offers after retraining: {content == published[1]}; "
          f"gate: {str(refused.value)}")
    assert noise[model] < normal[model]
    assert again[model] == pytest.approx(normal[model], abs=0.01)
