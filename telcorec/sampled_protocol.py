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

from telcorec.columns import Col, Split
from telcorec.metrics_store import ALL_SEGMENTS
from telcorec.offline_metrics import exact_mean

TEST_OFFER_IDX = "test_offer_idx"
HELD_IDX = "held_idx"
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
TEST_RANK = "test_rank"
PER_SUBSCRIBER = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False),
    T.StructField(Col.MODEL, T.StringType(), False),
    T.StructField(TEST_RANK, T.LongType(), False),
])


def protocol_name(negatives: int) -> str:
    """The `protocol` value in `metrics`: sampled99 for the paper's 99 negatives."""
    return f"sampled{negatives}"


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def offer_keys(seed: int, subscribers: np.ndarray, n_offers: int) -> np.ndarray:
    """(n x n_offers) uint64 pseudo-random keys, a function of (seed, subscriber, offer) only."""
    base = _splitmix64(np.array([seed], dtype=np.uint64))
    subs = _splitmix64(base ^ np.asarray(subscribers, dtype=np.int64).astype(np.uint64))
    return _splitmix64(subs[:, None] ^ np.arange(n_offers, dtype=np.uint64)[None, :])


def sample_negatives(seed: int, subscribers: np.ndarray, excluded: list, n_offers: int,
                     negatives: int) -> np.ndarray:
    """(n x min(negatives, n_offers)) sampled offer indices, -1 where fewer were available.

    `excluded[i]` lists the offers subscriber i must not get (held ones and the test offer).
    """
    keys = offer_keys(seed, subscribers, n_offers)
    for i, offers in enumerate(excluded):
        if offers is not None and len(offers):
            keys[i, np.asarray(offers, dtype=np.int64)] = _MASK
    take = min(negatives, n_offers)
    part = np.argpartition(keys, take - 1, axis=1)[:, :take]
    chosen = np.take_along_axis(keys, part, axis=1)
    return np.where(chosen == _MASK, -1, part)


def rank_of_test(scores: np.ndarray, test: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """0-based rank of each test offer among itself and its sampled negatives (-1 = none)."""
    rows = np.arange(len(test))
    s_test = scores[rows, test][:, None]
    valid = negatives >= 0
    s_neg = np.take_along_axis(scores, np.where(valid, negatives, 0), axis=1)
    ahead = (s_neg > s_test) | ((s_neg == s_test) & (negatives < test[:, None]))
    return (ahead & valid).sum(axis=1)


def hit_and_ndcg(rank: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hit = rank < k
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)


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
    """One row per subscriber with a test offer: subscriber_id, subscriber_idx, the test
    offer and the offers held in training (excluded from the sample)."""
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    test = interactions.filter(F.col(Col.SPLIT) == Split.TEST)
    held = train.groupBy(Col.SUBSCRIBER_ID).agg(F.collect_list(Col.OFFER_IDX).alias(HELD_IDX))
    return (test.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX,
                        F.col(Col.OFFER_IDX).alias(TEST_OFFER_IDX))
            .join(held, on=Col.SUBSCRIBER_ID, how="left"))


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
