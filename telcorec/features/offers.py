"""Offer features: tiers, value, bundle richness and plan terms, with a contiguous offer_idx."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.features.stats import (
    PRICE_TIERS,
    UNKNOWN,
    VALUE_CATEGORIES,
    FeatureStats,
    bin_label,
    offer_value,
)

DATA_TIERS = (("light", 5.0), ("medium", 20.0), ("heavy", 50.0))  # above the last: unlimited
BUNDLE_TYPES = ("basic", "basic", "standard", "complete")  # by richness 0, 1, 2, 3


def data_tier(gb: Column) -> Column:
    tier = F.lit("unlimited")
    for label, upper in reversed(DATA_TIERS):
        tier = F.when(gb <= upper, F.lit(label)).otherwise(tier)
    return tier


def bundle_richness(medians: tuple[float, ...]) -> Column:
    """How many of data, voice and SMS allowances lie above the catalogue's median (0 .. 3)."""
    if len(medians) != 3:
        return F.lit(0)
    above = [(F.coalesce(F.col(c).cast("double"), F.lit(0.0)) > F.lit(m)).cast("int")
             for c, m in zip((Col.DATA_GB, Col.VOICE_MIN, Col.SMS), medians)]
    return sum(above)


def contract_length(months: Column) -> Column:
    return (F.when(months.isNull(), F.lit(UNKNOWN)).when(months <= 0, F.lit("none"))
            .when(months <= 12, F.lit("up_to_12m")).when(months <= 24, F.lit("up_to_24m"))
            .otherwise(F.lit("over_24m")))


def offer_features(catalogue: DataFrame, stats: FeatureStats, run_date: dt.date) -> DataFrame:
    """Offer features with a contiguous offer_idx (0..M-1 in offer_id order)."""
    # The catalogue's ids (one per offer, never per subscriber) numbered on the driver: one small
    # job, where an RDD sortBy and zipWithIndex ran three and started Python workers for them.
    ids = sorted(row[Col.OFFER_ID] for row in catalogue.select(Col.OFFER_ID).collect())
    index = catalogue.sparkSession.createDataFrame(
        list(enumerate(ids)), f"{Col.OFFER_IDX} long, {Col.OFFER_ID} string")
    richness = bundle_richness(stats.offer_medians)
    out = (catalogue.join(index, on=Col.OFFER_ID, how="inner")
           .withColumns({
               Col.RUN_DATE: F.lit(run_date),
               Col.FAMILY: F.when(F.col(Col.FAMILY), "yes").otherwise("no"),
               Col.PRICE_TIER: bin_label(F.col(Col.PRICE), stats.price_edges, PRICE_TIERS),
               Col.DATA_TIER: data_tier(F.col(Col.DATA_GB)),
               Col.OFFER_VALUE: offer_value(F.col(Col.DATA_GB), F.col(Col.PRICE)),
               Col.BUNDLE_RICHNESS: richness,
               Col.BUNDLE_TYPE: F.element_at(F.array(*[F.lit(b) for b in BUNDLE_TYPES]),
                                             richness + 1),
               Col.CONTRACT_LENGTH: contract_length(F.col(Col.CONTRACT_MONTHS)),
           })
           .withColumn(Col.VALUE_CATEGORY, bin_label(F.col(Col.OFFER_VALUE),
                                                     stats.offer_value_edges, VALUE_CATEGORIES)))
    return schemas.conform(out, schemas.OFFER_FEATURES)
