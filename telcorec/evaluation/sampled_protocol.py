"""The sampled-candidates protocol (`protocol = sampled{N}`, the NCF paper's `sampled99`),
computed on executors for any `Scorer`: LightFM variants, ensembles, NCF and the baselines.

Each subscriber's held-out (test) offer is ranked among `negatives` (N, 99 in the paper) offers
they do not hold, sampled uniformly without replacement; HR@k is 1 when it ranks within the
top k, NDCG@k is 1 / log2(rank + 2) then (rank 0-based), 0 otherwise, both averaged over
subscribers. Ties are broken by the lower offer index, as `telcorec.scoring.top_k` does for
published offers. When a subscriber has fewer than N offers left to sample (a catalogue under
N + 1 offers) all of them are used, and the protocol becomes the full ranking.

The sample is a pure function of (seed, subscriber, offer): each offer gets a splitmix64 key
and the N smallest keys among the offers not held are taken, so it does not depend on
partitioning, batch size or which model is scored: every model meets the same candidates.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col, Split
from telcorec.evaluation.metrics import exact_mean
from telcorec.io.metrics_store import ALL_SEGMENTS
from telcorec.models.sampled_ranking import rank_of_test, sample_negatives

TEST_OFFER_IDX = "test_offer_idx"
HELD_IDX = "held_idx"
TEST_RANK = "test_rank"
PER_SUBSCRIBER = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False),
    T.StructField(Col.MODEL, T.StringType(), False),
    T.StructField(TEST_RANK, T.LongType(), False),
])


def protocol_name(negatives: int) -> str:
    """The `protocol` value in `metrics`: sampled99 for the paper's 99 negatives."""
    return f"sampled{negatives}"


def per_subscriber(batch: pd.DataFrame, scorer, seed: int, negatives: int) -> pd.DataFrame:
    """The 0-based rank of the test offer among its sampled candidates, for every row of batch
    (scorer columns + test offer + held offers); HR and NDCG at any k follow from it."""
    test = batch[TEST_OFFER_IDX].to_numpy(np.int64)
    excluded = [np.append(np.asarray(h if h is not None else [], dtype=np.int64), t)
                for h, t in zip(batch[HELD_IDX], test)]
    scores = np.asarray(scorer.score(batch), dtype=np.float64)
    sampled = sample_negatives(seed, batch[Col.SUBSCRIBER_IDX].to_numpy(), excluded,
                               scores.shape[1], negatives)
    return pd.DataFrame({Col.SUBSCRIBER_ID: batch[Col.SUBSCRIBER_ID].to_numpy(),
                         Col.MODEL: scorer.name,
                         TEST_RANK: rank_of_test(scores, test, sampled).astype(np.int64)})


def evaluation_rows(interactions: DataFrame) -> DataFrame:
    """One row per (subscriber, test offer): subscriber_id, subscriber_idx, the test offer, the
    offers never sampled as its negatives (held_idx: those held in training and the
    subscriber's other test offers, which are positives too on a multi-offer test split) and
    the history a history-aware model sees (history_idx: the training offers only)."""
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    test = interactions.filter(F.col(Col.SPLIT) == Split.TEST)
    empty = F.array().cast("array<int>")
    trained = train.groupBy(Col.SUBSCRIBER_ID).agg(
        F.collect_list(Col.OFFER_IDX).alias(Col.HISTORY_IDX))
    tested = test.groupBy(Col.SUBSCRIBER_ID).agg(F.collect_list(Col.OFFER_IDX).alias("_tests"))
    return (test.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX,
                        F.col(Col.OFFER_IDX).alias(TEST_OFFER_IDX))
            .join(trained, on=Col.SUBSCRIBER_ID, how="left")
            .join(tested, on=Col.SUBSCRIBER_ID, how="inner")
            .withColumn(Col.HISTORY_IDX, F.coalesce(Col.HISTORY_IDX, empty))
            .withColumn(HELD_IDX, F.array_union(Col.HISTORY_IDX, "_tests"))
            .drop("_tests"))


def _at_k(rank: Column, k: int) -> list[Column]:
    """Mean HR@k and NDCG@k from the 0-based rank, as `hit_and_ndcg` computes them."""
    hit = rank < k
    return [exact_mean(hit.cast("double")).alias(f"hr@{k}"),
            exact_mean(F.when(hit, 1.0 / F.log2(rank + 2.0)).otherwise(0.0)).alias(f"ndcg@{k}")]


def sampled_metrics(batch: DataFrame, scorers: list, segments: DataFrame, seed: int,
                    negatives: int, ks: tuple[int, ...]) -> dict[str, list[tuple]]:
    """Per scorer name: (metric, k, segment, value) for hr and ndcg at each k, overall and per
    segment.

    All scorers are evaluated in one pass on the executors (the sample is shared: it depends on
    the subscriber only), then one aggregation gives every model's figures; the driver receives
    models x segments rows.
    """
    broadcast = batch.sparkSession.sparkContext.broadcast(list(scorers))

    def evaluate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local = broadcast.value
        for part in batches:
            for scorer in local:
                yield per_subscriber(part, scorer, seed, negatives)

    per_sub = (batch.mapInPandas(evaluate, PER_SUBSCRIBER)
               .join(segments, on=Col.SUBSCRIBER_ID, how="left")
               .withColumn(Col.SEGMENT, F.coalesce(F.col(Col.SEGMENT), F.lit("unknown"))))
    aggs = [agg for k in ks for agg in _at_k(F.col(TEST_RANK), k)]
    overall = per_sub.groupBy(Col.MODEL).agg(*aggs).withColumn(Col.SEGMENT, F.lit(ALL_SEGMENTS))
    by_segment = per_sub.groupBy(Col.MODEL, Col.SEGMENT).agg(*aggs)
    out: dict[str, list] = {scorer.name: [] for scorer in scorers}
    for row in overall.unionByName(by_segment).collect():  # models x segments rows
        out[row[Col.MODEL]] += [(metric, k, row[Col.SEGMENT], float(row[f"{metric}@{k}"]))
                                for k in ks for metric in ("hr", "ndcg")]
    return out
