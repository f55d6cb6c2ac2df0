"""Offline evaluation: rank held-out plans for every model and baseline (the evaluate stage writes `metrics`).

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

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core.columns import OFFER_CATEGORICALS, Cohort, Col, Split
from telcorec.core.config import Config, EvaluationConfig
from telcorec.evaluation import sampled_protocol
from telcorec.evaluation.metrics import COHORT, HELD_IDX, exact_mean
from telcorec.features.interactions import check_no_overlap
from telcorec.io.metrics_store import ALL_SEGMENTS
from telcorec.io.writer import Writer
from telcorec.models.encoding import Vocabulary
from telcorec.models.scoring import PopularityScorer, Scorer
from telcorec.models.shards import with_shard
from telcorec.sources.negatives import read_negatives
from telcorec.sources.pseudonymise import hasher, resolve_secret
from telcorec.synthetic.utility import true_utility

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
    # the training offers are both excluded from the ranking and the history a history-aware
    # model sees: the held-out offer is in neither (no leakage)
    subs = (test.select(Col.SUBSCRIBER_ID).distinct()
            .join(excluded, on=Col.SUBSCRIBER_ID, how="left")
            .withColumn(Col.HISTORY_IDX, F.col(Col.EXCLUDE_IDX)))
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
            .withColumn(Col.HISTORY_IDX, F.col(Col.EXCLUDE_IDX))
            .withColumn(COHORT, F.lit(Cohort.WARM)))
    if truth is None:
        return warm
    cold = (truth.where(F.col(Col.NEXT_OFFER_ID).isNotNull())
            .join(offers.select(F.col(Col.OFFER_ID).alias(Col.NEXT_OFFER_ID), Col.OFFER_IDX),
                  on=Col.NEXT_OFFER_ID, how="inner")
            .select(Col.SUBSCRIBER_ID, F.array(Col.OFFER_IDX).alias(HELD_IDX),
                    empty.alias(Col.EXCLUDE_IDX), empty.alias(Col.HISTORY_IDX),
                    F.lit(Cohort.COLD_START).alias(COHORT)))
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
                       cfg: Config, candidates: DataFrame | None = None,
                       ) -> dict[str, list[tuple[str, int, str, float]]]:
    """Every scorer on the sampled-candidates protocol: each held-out plan ranked among
    `evaluation.sampled_negatives` sampled plans the subscriber does not hold (the same sample
    for every model), or among exactly the `candidates` of a negatives file
    (sampled_protocol.file_candidates; subscribers without any are left out), on the
    executors; per model, (metric, k, segment, value) rows."""
    rows = sampled_protocol.evaluation_rows(interactions)  # has subscriber_idx
    if candidates is not None:
        rows = rows.join(candidates, on=Col.SUBSCRIBER_ID, how="inner")
    batch = with_shard(rows.join(features.drop(Col.SUBSCRIBER_IDX), on=Col.SUBSCRIBER_ID,
                                 how="inner"), cfg.train)
    segments = features.select(Col.SUBSCRIBER_ID, Col.SEGMENT)
    return sampled_protocol.sampled_metrics(batch, scorers, segments, cfg.seed,
                                            cfg.evaluation.sampled_negatives,
                                            sampled_ks(cfg.evaluation))


def uses_negatives_file(cfg: Config) -> bool:
    """A negatives file replaces the sampled candidates (inputs.interactions.negatives)."""
    return cfg.inputs.source == "interactions" and bool(cfg.inputs.interactions.negatives.path)


def negatives_file_candidates(spark: SparkSession, cfg: Config, writer: Writer,
                              interactions: DataFrame, offer_df: DataFrame,
                              ) -> tuple[DataFrame | None, dict[str, int]]:
    """The candidates of inputs.interactions.negatives (None when no file is configured) and
    what became of its rows (sampled_protocol.file_candidates), also logged: a warning when a
    row was not used or a test subscriber got no candidates."""
    if not uses_negatives_file(cfg):
        return None, {}
    negatives = read_negatives(spark, cfg.inputs.interactions, writer)
    secret = resolve_secret(cfg) if cfg.pseudonymisation.enabled else None
    if secret is not None:  # the warehouse holds the users' pseudonyms, not the file's ids
        negatives = negatives.withColumn(Col.SUBSCRIBER_ID,
                                         hasher(secret)(F.col(Col.SUBSCRIBER_ID)))
    candidates, counts = sampled_protocol.file_candidates(
        negatives, offer_df, sampled_protocol.evaluation_rows(interactions))
    unused = counts["read"] - counts["accepted"]
    (log.warning if unused or counts["without_candidates"] else log.info)(
        "negatives file %s: %s; rows not used name no known user with a held-out item "
        "(unknown_user), no catalogue item (unknown_item), lack a value (null_key) or repeat "
        "a pair (duplicate); test subscribers without candidates are left out of %s",
        cfg.inputs.interactions.negatives.path, counts, sampled_protocol.FILE_PROTOCOL)
    return candidates.cache(), counts
