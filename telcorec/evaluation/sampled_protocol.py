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
CANDIDATE_IDX = "candidate_idx"  # a negatives file's candidates of the subscriber
TEST_RANK = "test_rank"
PER_SUBSCRIBER = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False),
    T.StructField(Col.MODEL, T.StringType(), False),
    T.StructField(TEST_RANK, T.LongType(), False),
])


FILE_PROTOCOL = "sampled_file"


def protocol_name(negatives: int, from_file: bool = False) -> str:
    """The `protocol` value in `metrics`: sampled99 for the paper's 99 negatives,
    sampled_file for the candidates of a negatives file."""
    return FILE_PROTOCOL if from_file else f"sampled{negatives}"


def per_subscriber(batch: pd.DataFrame, scorer, seed: int, negatives: int) -> pd.DataFrame:
    """The 0-based rank of the test offer among its candidates, for every row of batch
    (scorer columns + test offer + held offers, + CANDIDATE_IDX when a negatives file gives
    them: then exactly those, else `negatives` sampled ones); HR and NDCG at any k follow."""
    test = batch[TEST_OFFER_IDX].to_numpy(np.int64)
    scores = np.asarray(scorer.score(batch), dtype=np.float64)
    if CANDIDATE_IDX in batch.columns:
        sampled = padded(batch[CANDIDATE_IDX])
    else:
        excluded = [np.append(np.asarray(h if h is not None else [], dtype=np.int64), t)
                    for h, t in zip(batch[HELD_IDX], test)]
        sampled = sample_negatives(seed, batch[Col.SUBSCRIBER_IDX].to_numpy(), excluded,
                                   scores.shape[1], negatives)
    return pd.DataFrame({Col.SUBSCRIBER_ID: batch[Col.SUBSCRIBER_ID].to_numpy(),
                         Col.MODEL: scorer.name,
                         TEST_RANK: rank_of_test(scores, test, sampled).astype(np.int64)})


def padded(lists: pd.Series) -> np.ndarray:
    """Lists of offer indices as one (rows x longest) array, -1 where a list is shorter."""
    arrays = [np.asarray(v, dtype=np.int64) for v in lists]
    out = np.full((len(arrays), max((len(a) for a in arrays), default=0)), -1, dtype=np.int64)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def file_candidates(negatives: DataFrame, offers: DataFrame,
                    rows: DataFrame) -> tuple[DataFrame, dict[str, int]]:
    """The negatives file's (subscriber_id, offer_id) rows as one list of offer indices per
    subscriber (CANDIDATE_IDX), for the evaluation `rows` of those subscribers, and what became
    of every file row: read = accepted + null_key (a value missing, or a malformed line) +
    unknown_item (not in the catalogue) + unknown_user (no held-out offer to rank: not a user
    of the events, or one with no test pair) + duplicate (the same pair again). Test
    subscribers the file has no row for are counted (without_candidates) and left out: the
    protocol then covers the file's users only."""
    users = rows.select(Col.SUBSCRIBER_ID).distinct().withColumn("_user", F.lit(True))
    items = offers.select(Col.OFFER_ID, Col.OFFER_IDX)
    marked = (negatives.join(items, on=Col.OFFER_ID, how="left")
              .join(users, on=Col.SUBSCRIBER_ID, how="left"))
    null_key = F.col(Col.SUBSCRIBER_ID).isNull() | F.col(Col.OFFER_ID).isNull()
    unknown_item = ~null_key & F.col(Col.OFFER_IDX).isNull()
    unknown_user = ~null_key & ~unknown_item & F.col("_user").isNull()
    usable = ~null_key & ~unknown_item & ~unknown_user
    per_pair = (marked.filter(usable).groupBy(Col.SUBSCRIBER_ID, Col.OFFER_IDX)
                .agg(F.count(F.lit(1)).alias("_n")))
    candidates = (per_pair.groupBy(Col.SUBSCRIBER_ID)
                  .agg(F.sort_array(F.collect_list(Col.OFFER_IDX)).alias(CANDIDATE_IDX)))
    total = marked.agg(*[F.sum(c.cast("long")).alias(name) for name, c in (
        ("read", F.lit(True)), ("null_key", null_key), ("unknown_item", unknown_item),
        ("unknown_user", unknown_user))]).first()
    kept = per_pair.agg(F.count(F.lit(1)).alias("pairs"), F.sum("_n").alias("rows")).first()
    counts = {k: int(total[k] or 0) for k in ("read", "null_key", "unknown_item", "unknown_user")}
    counts["duplicate"] = int(kept["rows"] or 0) - int(kept["pairs"])
    counts["accepted"] = int(kept["pairs"])
    counts["without_candidates"] = users.join(candidates, on=Col.SUBSCRIBER_ID,
                                              how="left_anti").count()
    return candidates, counts


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
