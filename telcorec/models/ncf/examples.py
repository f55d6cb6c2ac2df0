"""NCF training examples built in Spark: positives, a validation hold-out, sampled negatives.

Positives are the `train` split of `interactions`. Each positive gets `negatives` sampled
offers the subscriber does not hold in training. A negative is a pure function of
(seed, epoch, subscriber, positive offer, draw number) through a 64-bit hash (`draw_keys`), so
it does not depend on how the data is partitioned: the j-th draw picks uniformly the r-th offer
of the subscriber's non-held offers, r = hash mod (offers - held), mapped onto offer indices by
a binary search in the sorted held list (`draw_batch`). With `resample_negatives` every epoch uses its own epoch number
in the hash; otherwise all epochs use epoch 0 (one fixed pool).

Validation: for up to `validation_subscribers` subscribers with at least two training offers
(chosen by hash, so the same ones on every run), the latest training offer is held out of
training and used to pick the best epoch; the test split is never looked at during training.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core.columns import Col, Split
from telcorec.models.sampled_ranking import GOLDEN, mix64

LABEL = "label"
HELD = "held"
DRAW = "draw"
_SHUFFLE = "_shuffle"
_VALIDATION_SALT = 7001


def train_pairs(interactions: DataFrame) -> DataFrame:
    return (interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
            .select(Col.SUBSCRIBER_IDX, Col.OFFER_IDX, Col.EVENT_DATE))


def held_offers(pairs: DataFrame) -> DataFrame:
    """subscriber_idx -> sorted array of the offers they hold (the negatives' exclusions)."""
    return (pairs.groupBy(Col.SUBSCRIBER_IDX)
            .agg(F.array_sort(F.collect_set(Col.OFFER_IDX)).alias(HELD)))


def validation_split(pairs: DataFrame, subscribers: int, seed: int) -> tuple[DataFrame, DataFrame]:
    """(training positives, validation pairs): the latest training offer of up to `subscribers`
    hash-chosen subscribers with >= 2 training offers moves to validation."""
    newest_first = (Window.partitionBy(Col.SUBSCRIBER_IDX)
                    .orderBy(F.col(Col.EVENT_DATE).desc(), F.col(Col.OFFER_IDX).desc()))
    whole = Window.partitionBy(Col.SUBSCRIBER_IDX).rowsBetween(
        Window.unboundedPreceding, Window.unboundedFollowing)
    is_latest = F.row_number().over(newest_first) == 1
    has_two = F.count(F.lit(1)).over(whole) >= 2
    pick = F.xxhash64(F.lit(seed), F.lit(_VALIDATION_SALT), F.col(Col.SUBSCRIBER_IDX))
    candidates = pairs.withColumn("_eligible", is_latest & has_two).filter("_eligible")
    validation = (candidates.orderBy(pick, Col.SUBSCRIBER_IDX).limit(subscribers)
                  .select(Col.SUBSCRIBER_IDX, Col.OFFER_IDX))
    keys = [Col.SUBSCRIBER_IDX, Col.OFFER_IDX]
    train = pairs.select(*keys).join(validation, on=keys, how="left_anti")
    return train, validation


_NEGATIVE_SCHEMA = (f"{Col.SUBSCRIBER_IDX} long, _positive int, {DRAW} int, "
                    f"{Col.OFFER_IDX} int")


def draw_keys(seed: int, epoch: int, subscribers: np.ndarray, positives: np.ndarray,
              draws: np.ndarray) -> np.ndarray:
    """A uint64 key per draw, a function of (seed, epoch, subscriber, positive, draw) only."""
    key = mix64(np.full(len(subscribers), (seed * 1_000_003 + epoch) & 0xFFFFFFFF, np.uint64))
    with np.errstate(over="ignore"):
        for part in (subscribers, positives, draws):
            key = mix64(key ^ (np.asarray(part).astype(np.int64).astype(np.uint64) + GOLDEN))
    return key


def draw_batch(batch: pd.DataFrame, n_offers: int, negatives: int, seed: int,
               epoch: int) -> pd.DataFrame:
    """The negatives of a batch of subscribers (one row each: their positives and sorted held
    offers), vectorised: the r-th free offer of a sorted held list h is r + #{j: h[j] - j <= r}
    (h[j] - j free offers lie below h[j]), one binary search per draw."""
    pos_lists = [np.asarray(v, dtype=np.int64) for v in batch["_positives"]]
    held_lists = [np.asarray(v, dtype=np.int64) for v in batch[HELD]]
    n_pos = np.fromiter((len(v) for v in pos_lists), np.int64, len(pos_lists))
    n_held = np.fromiter((len(v) for v in held_lists), np.int64, len(held_lists))
    row = np.repeat(np.repeat(np.arange(len(batch)), n_pos), negatives)
    positive = np.repeat(np.concatenate(pos_lists) if n_pos.sum() else np.empty(0, np.int64),
                         negatives)
    draw = np.tile(np.arange(negatives), int(n_pos.sum()))
    free = n_offers - n_held[row]
    ok = free > 0  # a subscriber holding every offer has no negative to draw
    row, positive, draw, free = row[ok], positive[ok], draw[ok], free[ok]
    subscriber = batch[Col.SUBSCRIBER_IDX].to_numpy(np.int64)[row]
    r = (draw_keys(seed, epoch, subscriber, positive, draw) % free.astype(np.uint64)).astype(
        np.int64)
    held = np.concatenate(held_lists) if n_held.sum() else np.empty(0, np.int64)
    starts = np.cumsum(n_held) - n_held
    below = held - (np.arange(len(held)) - np.repeat(starts, n_held))  # free offers below
    width = n_offers + 1
    keyed = np.repeat(np.arange(len(batch)), n_held) * width + below
    count = np.searchsorted(keyed, row * width + r, side="right") - starts[row]
    return pd.DataFrame({Col.SUBSCRIBER_IDX: subscriber, "_positive": positive.astype(np.int32),
                         DRAW: draw.astype(np.int32), Col.OFFER_IDX: (r + count).astype(np.int32)})


def sample_negatives(positives: DataFrame, held: DataFrame, n_offers: int, negatives: int,
                     seed: int, epoch: int) -> DataFrame:
    """`negatives` rows (subscriber_idx, offer_idx, draw) per positive, never a held offer.

    Drawn per subscriber in numpy (draw_batch): the cost grows with the draws, not with draws
    x held offers (a SQL walk along each held list cost 537 s at 1M MovieLens-like pairs)."""
    grouped = (positives.groupBy(Col.SUBSCRIBER_IDX)
               .agg(F.collect_list(Col.OFFER_IDX).alias("_positives"))
               .join(held, on=Col.SUBSCRIBER_IDX, how="inner"))

    def draw(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield draw_batch(batch, n_offers, negatives, seed, epoch)

    return grouped.mapInPandas(draw, _NEGATIVE_SCHEMA)


def epoch_examples(positives: DataFrame, held: DataFrame, user_codes: DataFrame | None,
                   n_offers: int, negatives: int, seed: int, epoch: int,
                   files: int) -> DataFrame:
    """Labelled examples of one epoch in `files` partitions, rows in a seeded random order.

    `user_codes` (subscriber_idx + one int column per subscriber categorical) is joined on
    so the loader streams the features with the examples.
    """
    negative_rows = (sample_negatives(positives, held, n_offers, negatives, seed, epoch)
                     .select(Col.SUBSCRIBER_IDX, Col.OFFER_IDX, F.lit(0.0).alias(LABEL),
                             F.col("_positive"), F.col(DRAW)))
    positive_rows = positives.select(Col.SUBSCRIBER_IDX, Col.OFFER_IDX, F.lit(1.0).alias(LABEL),
                                     F.col(Col.OFFER_IDX).alias("_positive"),
                                     F.lit(-1).alias(DRAW))
    rows = positive_rows.unionByName(negative_rows)
    if user_codes is not None:
        rows = rows.join(user_codes, on=Col.SUBSCRIBER_IDX, how="left").fillna(0)
    order = F.xxhash64(F.lit(seed), F.lit(epoch), F.col(Col.SUBSCRIBER_IDX), F.col("_positive"),
                       F.col(DRAW))
    code_cols = [c for c in (user_codes.columns if user_codes is not None else [])
                 if c != Col.SUBSCRIBER_IDX]
    return (rows.withColumn(_SHUFFLE, order)
            .repartition(files, _SHUFFLE)
            .sortWithinPartitions(_SHUFFLE)
            .select(F.col(Col.SUBSCRIBER_IDX).cast("int").alias(Col.SUBSCRIBER_IDX),
                    F.col(Col.OFFER_IDX).cast("int").alias(Col.OFFER_IDX),
                    F.col(LABEL).cast("float").alias(LABEL), *code_cols))
