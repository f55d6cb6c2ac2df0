"""Interactions: subscriber x offer pairs with contiguous indices, implicit confidence
and a train/test split.

Pairs: one row per (subscriber, offer) with the usage summed over the source rows (the
`usage` column when the source has one, e.g. plays or a weight; else the days the plan was
held), first and last dates. Confidence (Hu, Koren, Volinsky, "Collaborative Filtering for
Implicit Feedback Datasets", ICDM 2008): c = 1 + alpha * r, r = usage / (its
`usage_quantile` quantile, fitted per run) capped at 1, optionally times exp(-days / decay_days)
since the pair's last date; it is the `weight` column. Splits (`interactions.split`), all in
Spark, all deterministic for a seed:
- leave_one_out (default): each subscriber's latest pair is test when they have >= 2 pairs
  (ties between equally recent pairs broken by a seeded hash);
- temporal: pairs first seen on or after run_date - cutoff_days are test;
- random: each pair is test with probability test_share, by a seeded hash of the pair.
Subscribers with no pairs are cold start: in the index, not here. Overlapping train and test
pairs are refused. An offer the subscriber accepted (`responses`, ingested up to the run date)
is a pair too, dated by the answer, with a confidence of at least `accepted_weight`, whether
or not the subscriptions show it yet.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col, Outcome, Split
from telcorec.core.config import InteractionsConfig
from telcorec.core.exceptions import DataError
from telcorec.features.stats import quantiles


def subscriber_index(features: DataFrame, run_date: dt.date) -> DataFrame:
    """Contiguous 0..N-1 indices in subscriber_id order, built distributed (zipWithIndex)."""
    ids = features.select(Col.SUBSCRIBER_ID).rdd.map(lambda r: r[0]).sortBy(lambda x: x)
    index = ids.zipWithIndex().toDF([Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX])
    return schemas.conform(index.withColumn(Col.RUN_DATE, F.lit(run_date)),
                           schemas.SUBSCRIBER_INDEX)


def pairs(subscriptions: DataFrame, run_date: dt.date) -> DataFrame:
    """One row per (subscriber, offer): usage summed, dated by its first and last start."""
    held_until = F.least(F.coalesce(F.col(Col.END_DATE), F.lit(run_date)), F.lit(run_date))
    held_days = F.greatest(F.datediff(held_until, F.col(Col.START_DATE)), F.lit(1))
    usage = F.coalesce(F.col(Col.USAGE), held_days.cast("double"))
    return (subscriptions.groupBy(Col.SUBSCRIBER_ID, Col.OFFER_ID)
            .agg(F.max(Col.START_DATE).alias(Col.EVENT_DATE),
                 F.max(Col.START_TS).alias(Col.LAST_TS),
                 F.min(Col.START_DATE).alias(Col.FIRST_DATE),
                 F.sum(usage).alias(Col.USAGE)))


_ACCEPTED_ON = "_accepted_on"


def with_accepted(pairs_df: DataFrame, responses: DataFrame) -> DataFrame:
    """`pairs` plus the offers accepted in `responses`: a held pair keeps its usage and dates
    (moved to the answer when later), an accepted offer not held yet is a pair of no usage
    dated by the answer. Offers accepted twice (answers to two run dates) are one pair."""
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID]
    accepted = (responses.where(F.col(Col.OUTCOME) == Outcome.ACCEPTED).groupBy(*keys)
                .agg(F.max(Col.RESPONDED_DATE).alias(_ACCEPTED_ON)))
    merged = pairs_df.join(accepted, on=keys, how="full")
    return merged.select(
        *keys, F.greatest(Col.EVENT_DATE, _ACCEPTED_ON).alias(Col.EVENT_DATE),  # NULLs skipped
        F.least(Col.FIRST_DATE, _ACCEPTED_ON).alias(Col.FIRST_DATE), Col.LAST_TS,
        F.coalesce(F.col(Col.USAGE), F.lit(0.0)).alias(Col.USAGE), _ACCEPTED_ON)


def accepted_confidence(weighted: DataFrame, accepted_weight: float) -> DataFrame:
    """An accepted pair's weight is at least `accepted_weight` (from `with_accepted` rows)."""
    boosted = F.when(F.col(_ACCEPTED_ON).isNotNull(),
                     F.greatest(F.col(Col.WEIGHT), F.lit(accepted_weight)))
    return weighted.withColumn(Col.WEIGHT, F.coalesce(boosted, F.col(Col.WEIGHT)))


def usage_scale(pairs_df: DataFrame, quantile: float) -> float:
    """The usage that normalises to 1 (a fitted quantile; one small job)."""
    found = quantiles(pairs_df, [Col.USAGE], [quantile])[Col.USAGE]
    return float(found[quantile]) if found else 1.0


def confidence(pairs_df: DataFrame, cfg: InteractionsConfig, scale: float,
               run_date: dt.date) -> DataFrame:
    """weight = 1 + alpha * min(usage / scale, 1) [* exp(-days since the pair / decay_days)]."""
    r = F.least(F.col(Col.USAGE) / F.lit(scale), F.lit(1.0)) if scale > 0 else F.lit(1.0)
    if cfg.time_decay:
        days = F.greatest(F.datediff(F.lit(run_date), F.col(Col.EVENT_DATE)), F.lit(0))
        r = r * F.exp(-days / F.lit(cfg.decay_days))
    return pairs_df.withColumn(Col.WEIGHT, F.lit(1.0) + F.lit(cfg.alpha) * r)


def _seeded_uniform(seed: int) -> Column:
    """A number in [0, 1) per (subscriber, offer), the same wherever it is computed."""
    h = F.xxhash64(F.lit(seed), F.col(Col.SUBSCRIBER_ID), F.col(Col.OFFER_ID))
    return F.pmod(h, F.lit(1_000_000)) / F.lit(1_000_000.0)


def _labelled(df: DataFrame, is_test: Column) -> DataFrame:
    return df.withColumn(Col.SPLIT, F.when(is_test, Split.TEST).otherwise(Split.TRAIN))


def split_latest(pairs_df: DataFrame, seed: int = 0) -> DataFrame:
    """Mark each subscriber's latest pair `test` when they have >= 2 pairs, the rest `train`:
    latest by date, then by time when the source has it (start_ts), then a seeded pick."""
    newest_first = (Window.partitionBy(Col.SUBSCRIBER_ID)
                    .orderBy(F.col(Col.EVENT_DATE).desc(), F.col(Col.LAST_TS).desc_nulls_last(),
                             _seeded_uniform(seed).desc(),
                             F.col(Col.OFFER_ID).desc()))
    whole = Window.partitionBy(Col.SUBSCRIBER_ID).rowsBetween(
        Window.unboundedPreceding, Window.unboundedFollowing)
    is_test = (F.row_number().over(newest_first) == 1) & (F.count(F.lit(1)).over(whole) >= 2)
    return _labelled(pairs_df, is_test)


def split_temporal(pairs_df: DataFrame, cutoff: dt.date) -> DataFrame:
    """Pairs first seen on or after the cutoff are `test`, earlier ones `train`."""
    return _labelled(pairs_df, F.col(Col.FIRST_DATE) >= F.lit(cutoff))


def split_random(pairs_df: DataFrame, test_share: float, seed: int) -> DataFrame:
    """Each pair is `test` with probability test_share (a seeded hash, not partition-bound)."""
    return _labelled(pairs_df, _seeded_uniform(seed) < F.lit(test_share))


def split_pairs(pairs_df: DataFrame, cfg: InteractionsConfig, seed: int,
                run_date: dt.date) -> DataFrame:
    if cfg.split == "temporal":
        return split_temporal(pairs_df, run_date - dt.timedelta(days=cfg.cutoff_days))
    if cfg.split == "random":
        return split_random(pairs_df, cfg.test_share, seed)
    return split_latest(pairs_df, seed)


def interactions(pairs_split: DataFrame, index: DataFrame, offers: DataFrame,
                 run_date: dt.date) -> DataFrame:
    out = (pairs_split
           .join(index.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX), on=Col.SUBSCRIBER_ID,
                 how="inner")
           .join(offers.select(Col.OFFER_ID, Col.OFFER_IDX), on=Col.OFFER_ID, how="inner")
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


