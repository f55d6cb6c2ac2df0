"""The interactions stage: read the features, subscriptions and accepted responses, write
`subscriber_index` and the `interactions` pairs with their confidence and train/test split (telcorec/features/interactions.py);
refuses a split whose train and test share a pair."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col, Split
from telcorec.core.config import Config
from telcorec.features.interactions import (
    accepted_confidence,
    check_no_overlap,
    confidence,
    interactions,
    pairs,
    split_pairs,
    subscriber_index,
    usage_scale,
    with_accepted,
)
from telcorec.stages.context import StageContext


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer, read = ctx.wh, ctx.writer, ctx.read
    features, offers = read("subscriber_features"), read("offer_features")
    index = subscriber_index(features, run_date)
    n_index = writer.replace_partition(index, wh.table("subscriber_index"),
                                       schemas.SUBSCRIBER_INDEX, run_date)
    index = read("subscriber_index")
    held = pairs(read("subscriptions"), run_date)
    scale = usage_scale(held, cfg.interactions.usage_quantile)  # of usage, not of answers
    answered = with_accepted(held, ctx.history("responses", None, run_date + dt.timedelta(days=1)))
    weighted = accepted_confidence(
        confidence(split_pairs(answered, cfg.interactions, cfg.seed, run_date),
                   cfg.interactions, scale, run_date), cfg.interactions.accepted_weight)
    table = interactions(weighted, index, offers, run_date)
    n_pairs = writer.replace_partition(table, wh.table("interactions"), schemas.INTERACTIONS,
                                       run_date)
    written = read("interactions")
    check_no_overlap(written.filter(F.col(Col.SPLIT) == Split.TRAIN),
                     written.filter(F.col(Col.SPLIT) == Split.TEST))
    return {"subscriber_index": n_index, "interactions": n_pairs}
