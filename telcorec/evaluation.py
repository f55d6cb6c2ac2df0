"""Stage 6, evaluate: rank held-out plans for every model and baseline; write `metrics`.

Protocol `full`: for every subscriber with a held-out (test) plan, all offers are ranked except
the ones they hold in training (`warm` cohort). On generated data, new subscribers with no
history are ranked too, against the plan the generator's hidden process has them take first
(`cold_start` cohort). The metrics of telcorec.offline_metrics are reported overall ("all"), per
segment and per cohort, for each trained model and ensemble, popularity, random and (generated
data only) the oracle. Rankings use the same keys as production scoring.

Protocol `sampled{N}` (`evaluation.sampled_negatives`, 0 = off): each warm subscriber's
held-out plan ranked among N sampled plans they do not hold, HR and NDCG as published work
reports them (telcorec.sampled_protocol), for the same models and baselines but the oracle.
Last, the HTML run report of everything in `metrics` for this run (telcorec.report).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec import report, runs, sampled_protocol, schemas, storage
from telcorec.cold_start import ContentScorer
from telcorec.columns import OFFER_CATEGORICALS, Cohort, Col, Split
from telcorec.config import Config, EvaluationConfig
from telcorec.encoding import Vocabulary
from telcorec.interactions import check_no_overlap
from telcorec.metrics_store import ALL_SEGMENTS, metrics_table, write_metrics
from telcorec.offline_metrics import (COHORT, HELD_IDX, exact_mean, per_subscriber,
                                      summarise)
from telcorec.scoring import (PopularityScorer, Scorer, load_scorer, model_names, served,
                              with_subscriber_index)
from telcorec.synthetic.utility import true_utility
from telcorec.training import with_shard
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)
SUMMARY_METRICS = ("precision", "recall", "ndcg", "auc", "coverage")


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
    aggs = [agg for k in ks for agg in (
        exact_mean(F.col(f"h{k}") / k).alias(f"precision@{k}"),
        exact_mean(F.col(f"h{k}") / F.col("n_true")).alias(f"recall@{k}"))]
    overall = per_sub.agg(*aggs).withColumn(Col.SEGMENT, F.lit(ALL_SEGMENTS))
    by_segment = per_sub.groupBy(Col.SEGMENT).agg(*aggs)
    out = []
    for row in overall.unionByName(by_segment).collect():  # one row per segment
        for key, value in row.asDict().items():
            if key != Col.SEGMENT:
                metric, k = key.split("@")
                out.append((metric, int(k), row[Col.SEGMENT], float(value)))
    return out


@dataclass
class RandomScorer:
    """A seeded random ranking: the floor every model must clear."""
    offer_ids: list[str]
    seed: int
    name: str = "random"

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        ids = pd.util.hash_array(batch[Col.SUBSCRIBER_ID].to_numpy(dtype=object))
        offers = np.arange(len(self.offer_ids), dtype=np.uint64)
        mixed = pd.util.hash_array((ids[:, None] ^ (offers[None, :] * np.uint64(0x9E3779B97F4A7C15))
                                    ^ np.uint64(self.seed)).ravel())
        return (mixed % np.uint64(1 << 32)).astype(np.float64).reshape(len(batch), -1)


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


def cohorts(interactions: DataFrame, truth: DataFrame | None, offers: DataFrame) -> DataFrame:
    """Subscribers to evaluate, with held-out offer indices, exclusions and cohort."""
    subs, held_out = evaluation_frame(interactions)
    held = (held_out.join(offers.select(Col.OFFER_ID, Col.OFFER_IDX), on=Col.OFFER_ID, how="inner")
            .groupBy(Col.SUBSCRIBER_ID).agg(F.collect_list(Col.OFFER_IDX).alias(HELD_IDX)))
    empty = F.array().cast("array<int>")
    warm = (subs.join(held, on=Col.SUBSCRIBER_ID, how="inner")
            .withColumn(Col.EXCLUDE_IDX, F.coalesce(Col.EXCLUDE_IDX, empty))
            .withColumn(COHORT, F.lit(Cohort.WARM)))
    if truth is None:
        return warm
    cold = (truth.where(F.col(Col.NEXT_OFFER_ID).isNotNull())
            .join(offers.select(F.col(Col.OFFER_ID).alias(Col.NEXT_OFFER_ID), Col.OFFER_IDX),
                  on=Col.NEXT_OFFER_ID, how="inner")
            .select(Col.SUBSCRIBER_ID, F.array(Col.OFFER_IDX).alias(HELD_IDX),
                    empty.alias(Col.EXCLUDE_IDX), F.lit(Cohort.COLD_START).alias(COHORT)))
    return warm.unionByName(cold)


def offer_vectors(offers: pd.DataFrame) -> np.ndarray:
    """Unit-length one-hot vectors of the offers' categorical features, in offer_idx order."""
    vocab = Vocabulary(OFFER_CATEGORICALS, tuple(sorted(
        f"{c}={v}" for c in OFFER_CATEGORICALS for v in offers[c].astype(str).unique())))
    dense = vocab.encode(offers.sort_values(Col.OFFER_IDX)).toarray()
    return dense / np.linalg.norm(dense, axis=1, keepdims=True)


def sampled_ks(cfg: EvaluationConfig) -> tuple[int, ...]:
    """HR/NDCG cut-offs of the sampled protocol: evaluation.ks and 10 (what published work
    reports), those below the N + 1 candidates (at k = N + 1 every model would score 1)."""
    return tuple(k for k in sorted({*cfg.ks, 10}) if k <= cfg.sampled_negatives)


def sampled_candidates(interactions: DataFrame, features: DataFrame, scorers: list[Scorer],
                       cfg: Config) -> dict[str, list[tuple[str, int, str, float]]]:
    """Every scorer on the sampled-candidates protocol: each held-out plan ranked among
    `evaluation.sampled_negatives` sampled plans the subscriber does not hold (the same sample
    for every model), on the executors; per model, (metric, k, segment, value) rows."""
    batch = with_shard(sampled_protocol.evaluation_rows(interactions)  # has subscriber_idx
                       .join(features.drop(Col.SUBSCRIBER_IDX), on=Col.SUBSCRIBER_ID,
                             how="inner"), cfg.train)
    segments = features.select(Col.SUBSCRIBER_ID, Col.SEGMENT)
    return sampled_protocol.sampled_metrics(batch, scorers, segments, cfg.seed,
                                            cfg.evaluation.sampled_negatives,
                                            sampled_ks(cfg.evaluation))


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, object]:
    """Metrics of every model and baseline to `metrics`; the run report. Returns per model
    {"metric@k": value} (all subscribers) and "report": the report's path."""
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    read = storage.run_date_reader(spark, wh, run_date, writer)
    features = with_subscriber_index(read("subscriber_features"), read("subscriber_index"))
    interactions = read("interactions")
    offer_df = read("offer_features")
    # the catalogue (tens to hundreds of rows) in offer_idx order, every scorer's column order
    offers = offer_df.toPandas().sort_values(Col.OFFER_IDX, ignore_index=True)
    truth_path = wh.truth_table()
    truth = (storage.read_table(spark, truth_path, schemas.SUBSCRIBER_TRUTH)
             if storage.is_delta_table(truth_path) else None)
    population = (with_shard(cohorts(interactions, truth, offer_df)
                             .join(features, on=Col.SUBSCRIBER_ID, how="inner"), cfg.train)
                  .cache())
    # measured as served: with the cold-start routing by tenure
    models = [served(load_scorer(wh, cfg, run_date, name), cfg, offers)
              for name in model_names(cfg)]
    offer_ids = models[0].offer_ids
    popular = popularity(interactions, len(offer_ids), offer_ids)
    ranked = [*models, popular, RandomScorer(offer_ids, cfg.seed)]
    if cfg.cold_start.enabled:  # the content rules alone, what new subscribers get
        ranked.append(ContentScorer.from_offers(offers, cfg.cold_start))
    scorers: list[tuple[Scorer, DataFrame]] = [(s, population) for s in ranked]
    if truth is not None:
        catalogue = read("catalogue").toPandas()
        catalogue = catalogue.set_index(Col.OFFER_ID).loc[offer_ids].reset_index()
        truth_cols = [c for c in schemas.SUBSCRIBER_TRUTH.fieldNames() if c not in population.columns]
        scorers.append((OracleScorer(offer_ids, catalogue), population.join(
            truth.select(Col.SUBSCRIBER_ID, *truth_cols), on=Col.SUBSCRIBER_ID, how="inner")))
    share = (popular.counts + 1) / (popular.counts.sum() + len(offer_ids))
    vectors, ks = offer_vectors(offers), cfg.evaluation.ks
    groups = {"all": "all", "segment": Col.SEGMENT, "cohort": COHORT}
    rid, tables, summary = runs.run_id(cfg, run_date), [], {}
    for scorer, batch in scorers:
        rows = summarise(per_subscriber(batch, scorer, ks, vectors, share), ks, len(offer_ids),
                         groups)
        tables.append(metrics_table(rows, scorer.name, rid, run_date, "full"))
        summary[scorer.name] = {f"{m}@{k}" if k else m: v for m, k, g, v in rows
                                if g == ALL_SEGMENTS and m in SUMMARY_METRICS}
        summary[scorer.name].update({f"cold_start {m}@{k}": v for m, k, g, v in rows
                                     if g == Cohort.COLD_START and m == "precision" and k == 5})
        log.info("evaluate %s: %s", scorer.name, summary[scorer.name])
    write_metrics(wh.table("metrics"), tables, run_date, "full")
    population.unpersist()
    if cfg.evaluation.sampled_negatives:
        protocol = sampled_protocol.protocol_name(cfg.evaluation.sampled_negatives)
        by_model = sampled_candidates(interactions, features, ranked, cfg)
        write_metrics(wh.table("metrics"), [metrics_table(rows, name, rid, run_date, protocol)
                                            for name, rows in by_model.items()],
                      run_date, protocol)
        for name, rows in by_model.items():
            summary[name].update({f"{protocol} {m}@{k}": v for m, k, g, v in rows
                                  if g == ALL_SEGMENTS and k == 10})
    # the NCF stage has written its rows by now (it runs before this one): the report is whole
    summary["report"] = str(report.write(wh, cfg, run_date))
    return summary
