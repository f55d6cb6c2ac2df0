"""NCF training examples built in Spark: positives, a validation hold-out, sampled negatives.

Positives are the `train` split of `interactions`. Each positive gets `negatives` sampled
offers the subscriber does not hold in training. A negative is a pure function of
(seed, epoch, subscriber, positive offer, draw number) through `xxhash64`, so it does not
depend on how the data is partitioned: the j-th draw picks uniformly the r-th offer of the
subscriber's non-held offers, r = pmod(hash, offers - held), mapped onto offer indices by
walking the sorted held list. With `resample_negatives` every epoch uses its own epoch number
in the hash; otherwise all epochs use epoch 0 (one fixed pool).

Validation: for up to `validation_subscribers` subscribers with at least two training offers
(chosen by hash, so the same ones on every run), the latest training offer is held out of
training and used to pick the best epoch; the test split is never looked at during training.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core.columns import Col, Split

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


def nth_free_offer(held: Column, r: Column) -> Column:
    """The r-th (0-based) offer index not in the sorted array `held`."""
    return F.aggregate(held, r, lambda acc, h: F.when(h <= acc, acc + 1).otherwise(acc))


def sample_negatives(positives: DataFrame, held: DataFrame, n_offers: int, negatives: int,
                     seed: int, epoch: int) -> DataFrame:
    """`negatives` rows (subscriber_idx, offer_idx, draw) per positive, never a held offer."""
    free = F.lit(n_offers) - F.size(HELD)
    draw_hash = F.xxhash64(F.lit(seed), F.lit(epoch), F.col(Col.SUBSCRIBER_IDX),
                           F.col(Col.OFFER_IDX), F.col(DRAW))
    has_free = free > 0  # a subscriber holding every offer has no negative to draw
    return (positives.join(held, on=Col.SUBSCRIBER_IDX, how="inner")
            .filter(has_free)
            .withColumn(DRAW, F.explode(F.sequence(F.lit(0), F.lit(negatives - 1))))
            .withColumn("_r", F.pmod(draw_hash, free))
            .select(Col.SUBSCRIBER_IDX, F.col(Col.OFFER_IDX).alias("_positive"), DRAW,
                    nth_free_offer(F.col(HELD), F.col("_r")).cast("int").alias(Col.OFFER_IDX)))


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
