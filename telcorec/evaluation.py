"""Stage 6, evaluate: rank held-out plans for the model and baselines; write `metrics`.

Protocol `full`: for every subscriber with a held-out (test) plan, all offers are ranked except
the ones they hold in training; precision@k = hits in the top k / k and recall@k = hits / held-out
plans, averaged over those subscribers, overall and per segment. The same `recommend` routine as
production scoring produces the rankings, so what is measured is what is published.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec import runs, schemas, storage
from telcorec.columns import Col, Split
from telcorec.config import Config
from telcorec.interactions import check_no_overlap
from telcorec.metrics_store import ALL_SEGMENTS, metrics_table, write_metrics
from telcorec.scoring import PopularityScorer, Scorer, load_lightfm, recommend
from telcorec.synthetic.utility import true_utility
from telcorec.training import shard_of
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class OracleScorer:
    """The generator's true utilities: the ceiling any model can reach on generated data."""
    offer_ids: list[str]
    catalogue: pd.DataFrame  # CATALOGUE columns, rows in offer_idx order
    name: str = "oracle"

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        return true_utility(batch, self.catalogue)


def ranking_metrics(recs: DataFrame, held_out: DataFrame, segments: DataFrame,
                    ks: tuple[int, ...]) -> list[tuple[str, int, str, float]]:
    """(metric, k, segment, value) for precision and recall at each k, overall and by segment.

    `held_out` has one row per (subscriber, held-out offer); a subscriber with no
    recommendations counts as zero hits, never as missing.
    """
    hit = held_out.select(Col.SUBSCRIBER_ID, Col.OFFER_ID, F.lit(1).alias("hit"))
    hits = (recs.join(hit, on=[Col.SUBSCRIBER_ID, Col.OFFER_ID], how="inner")
            .groupBy(Col.SUBSCRIBER_ID)
            .agg(*[F.sum(F.when(F.col(Col.RANK) <= k, 1).otherwise(0)).alias(f"h{k}")
                   for k in ks]))
    per_sub = (held_out.groupBy(Col.SUBSCRIBER_ID).agg(F.count(F.lit(1)).alias("n_true"))
               .join(hits, on=Col.SUBSCRIBER_ID, how="left").fillna(0)
               .join(segments, on=Col.SUBSCRIBER_ID, how="left")
               .withColumn(Col.SEGMENT, F.coalesce(F.col(Col.SEGMENT), F.lit("unknown"))))
    aggs = [agg for k in ks for agg in (F.avg(F.col(f"h{k}") / k).alias(f"precision@{k}"),
                                        F.avg(F.col(f"h{k}") / F.col("n_true")).alias(f"recall@{k}"))]
    overall = per_sub.agg(*aggs).withColumn(Col.SEGMENT, F.lit(ALL_SEGMENTS))
    by_segment = per_sub.groupBy(Col.SEGMENT).agg(*aggs)
    out = []
    for row in overall.unionByName(by_segment).collect():  # one row per segment
        for key, value in row.asDict().items():
            if key != Col.SEGMENT:
                metric, k = key.split("@")
                out.append((metric, int(k), row[Col.SEGMENT], float(value)))
    return out


def evaluation_frame(interactions: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Subscribers with a held-out plan + their training offers to exclude, and the held-out pairs."""
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    test = interactions.filter(F.col(Col.SPLIT) == Split.TEST)
    check_no_overlap(train, test)
    excluded = (train.groupBy(Col.SUBSCRIBER_ID)
                .agg(F.collect_list(Col.OFFER_IDX).alias(Col.EXCLUDE_IDX)))
    subs = (test.select(Col.SUBSCRIBER_ID).distinct()
            .join(excluded, on=Col.SUBSCRIBER_ID, how="left"))
    return subs, test.select(Col.SUBSCRIBER_ID, Col.OFFER_ID)


def popularity(interactions: DataFrame, n_offers: int, offer_ids: list[str]) -> PopularityScorer:
    counts = np.zeros(n_offers)
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    for row in train.groupBy(Col.OFFER_IDX).count().collect():  # one row per offer
        counts[row[Col.OFFER_IDX]] = row["count"]
    return PopularityScorer(offer_ids, counts)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, dict[str, float]]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    read = lambda name, schema: storage.read_table(spark, wh.table(name), schema, run_date, writer)
    features = read("subscriber_features", schemas.SUBSCRIBER_FEATURES)
    interactions = read("interactions", schemas.INTERACTIONS)
    model = load_lightfm(wh, cfg, run_date)
    subs, held_out = evaluation_frame(interactions)
    subs = subs.cache()
    segments = features.select(Col.SUBSCRIBER_ID, Col.SEGMENT)
    batches: list[tuple[Scorer, DataFrame]] = [
        (model, subs.join(features, on=Col.SUBSCRIBER_ID, how="inner")
         .withColumn(Col.SHARD, shard_of(F.col(Col.SUBSCRIBER_ID), cfg.train.shards))),
        (popularity(interactions, len(model.offer_ids), model.offer_ids), subs),
    ]
    truth_path = wh.truth_table()
    if storage.is_delta_table(truth_path):
        truth = storage.read_table(spark, truth_path, schemas.SUBSCRIBER_TRUTH)
        catalogue = read("catalogue", schemas.validated(schemas.CATALOGUE)).toPandas()
        catalogue = catalogue.set_index(Col.OFFER_ID).loc[model.offer_ids].reset_index()
        batches.append((OracleScorer(model.offer_ids, catalogue),
                        subs.join(truth, on=Col.SUBSCRIBER_ID, how="inner")))
    rid, k_max, tables, summary = runs.run_id(cfg, run_date), max(cfg.evaluation.ks), [], {}
    for scorer, batch in batches:
        rows = ranking_metrics(recommend(batch, scorer, k_max), held_out, segments,
                               cfg.evaluation.ks)
        tables.append(metrics_table(rows, scorer.name, rid, run_date, "full"))
        summary[scorer.name] = {f"{m}@{k}": v for m, k, seg, v in rows if seg == ALL_SEGMENTS}
        log.info("evaluate %s: %s", scorer.name, summary[scorer.name])
    write_metrics(wh.table("metrics"), tables, run_date, "full")
    subs.unpersist()
    return summary
