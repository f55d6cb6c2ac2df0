"""Stage 3, interactions: subscriber x offer pairs with contiguous indices and a train/test split.

The split holds out each subscriber's latest plan (the one they moved to last) when they have at
least two distinct plans; everything earlier is training data. Subscribers with one plan train
only; subscribers with none are cold start and appear in the index but not here.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from telcorec import schemas, storage
from telcorec.columns import Col, Split
from telcorec.config import Config
from telcorec.exceptions import DataError
from telcorec.warehouse import Warehouse


def subscriber_index(features: DataFrame, run_date: dt.date) -> DataFrame:
    """Contiguous 0..N-1 indices in subscriber_id order, built distributed (zipWithIndex)."""
    ids = features.select(Col.SUBSCRIBER_ID).rdd.map(lambda r: r[0]).sortBy(lambda x: x)
    index = ids.zipWithIndex().toDF([Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX])
    return schemas.conform(index.withColumn(Col.RUN_DATE, F.lit(run_date)),
                           schemas.SUBSCRIBER_INDEX)


def pairs(subscriptions: DataFrame) -> DataFrame:
    """One row per (subscriber, offer): a plan held twice counts once, dated by its last start."""
    return (subscriptions.groupBy(Col.SUBSCRIBER_ID, Col.OFFER_ID)
            .agg(F.max(Col.START_DATE).alias(Col.EVENT_DATE)))


def split_latest(pairs_df: DataFrame) -> DataFrame:
    """Mark each subscriber's latest pair `test` when they have >= 2 pairs, the rest `train`."""
    newest_first = (Window.partitionBy(Col.SUBSCRIBER_ID)
                    .orderBy(F.col(Col.EVENT_DATE).desc(), F.col(Col.OFFER_ID).desc()))
    whole = Window.partitionBy(Col.SUBSCRIBER_ID).rowsBetween(
        Window.unboundedPreceding, Window.unboundedFollowing)
    is_test = (F.row_number().over(newest_first) == 1) & (F.count(F.lit(1)).over(whole) >= 2)
    return pairs_df.withColumn(Col.SPLIT, F.when(is_test, Split.TEST).otherwise(Split.TRAIN))


def interactions(pairs_split: DataFrame, index: DataFrame, offers: DataFrame,
                 run_date: dt.date) -> DataFrame:
    out = (pairs_split
           .join(index.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX), on=Col.SUBSCRIBER_ID,
                 how="inner")
           .join(offers.select(Col.OFFER_ID, Col.OFFER_IDX), on=Col.OFFER_ID, how="inner")
           .withColumn(Col.WEIGHT, F.lit(1.0))
           .withColumn(Col.RUN_DATE, F.lit(run_date)))
    return schemas.conform(out, schemas.INTERACTIONS)


def check_no_overlap(train: DataFrame, test: DataFrame) -> None:
    """Refuse to evaluate on pairs the model was trained on."""
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID]
    overlap = train.select(*keys).join(test.select(*keys), on=keys, how="inner").limit(5)
    found = overlap.count()
    if found:
        raise DataError(f"train and test share {found}+ (subscriber, offer) pairs; evaluating "
                        "on training data would overstate every metric. Check the split.")


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    features = storage.read_table(spark, wh.table("subscriber_features"),
                                  schemas.SUBSCRIBER_FEATURES, run_date, writer)
    offers = storage.read_table(spark, wh.table("offer_features"), schemas.OFFER_FEATURES,
                                run_date, writer)
    subscriptions = storage.read_table(spark, wh.table("subscriptions"),
                                       schemas.validated(schemas.SUBSCRIPTIONS), run_date, writer)
    index = subscriber_index(features, run_date)
    n_index = storage.replace_partition(index, wh.table("subscriber_index"),
                                        schemas.SUBSCRIBER_INDEX, run_date, writer)
    index = storage.read_table(spark, wh.table("subscriber_index"), schemas.SUBSCRIBER_INDEX,
                               run_date, writer)
    table = interactions(split_latest(pairs(subscriptions)), index, offers, run_date)
    n_pairs = storage.replace_partition(table, wh.table("interactions"), schemas.INTERACTIONS,
                                        run_date, writer)
    written = storage.read_table(spark, wh.table("interactions"), schemas.INTERACTIONS,
                                 run_date, writer)
    check_no_overlap(written.filter(F.col(Col.SPLIT) == Split.TRAIN),
                     written.filter(F.col(Col.SPLIT) == Split.TEST))
    return {"subscriber_index": n_index, "interactions": n_pairs}
