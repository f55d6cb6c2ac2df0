"""Stage 2, features: subscriber and offer features with one definition for training and scoring.

Reading order: `daily` (the one aggregation of the CDR, per subscriber and day), `window` (those
days summed over the sliding window, kept per subscriber), `advance` (the daily move of that
state, summed with numpy in Spark's Python tasks), `usage` (the usage and
behaviour features derived from the window's sums row by row), `subscriber` (lifecycle, value,
plan fit, attributes), `churn` (classifier or rule), `offers`, and `stats` (the fitted numbers, saved as JSON beside the tables and reused).
`run` reads the validated tables and writes `subscriber_features` and `offer_features`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from pyspark.sql import DataFrame

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import FeaturesConfig
from telcorec.features.churn import with_churn
from telcorec.features.offers import data_tier, offer_features
from telcorec.features.stats import (
    INTENSITY_LABELS,
    PRICE_TIERS,
    UNKNOWN,
    ChurnModel,
    FeatureStats,
    bin_label,
    fit_usage_and_offer_stats,
    fit_value_edges,
)
from telcorec.features.subscriber import (
    VALUE_WEIGHTS,
    current_plans,
    household,
    subscriber_base,
    tenure_stage,
    weighted_score,
)
from telcorec.features.usage import usage_profile
from telcorec.features.window import months_in_window

__all__ = ["ChurnModel", "FeatureStats", "INTENSITY_LABELS", "PRICE_TIERS", "UNKNOWN",
           "bin_label", "current_plans", "data_tier", "fit_stats", "household",
           "months_in_window", "offer_features", "subscriber_features", "tenure_stage",
           "usage_profile"]
log = logging.getLogger(__name__)


def fit_stats(profile: DataFrame, catalogue: DataFrame, cfg: FeaturesConfig) -> FeatureStats:
    """Every fitted statistic except the churn model: two small jobs over small tables."""
    stats = FeatureStats(**fit_usage_and_offer_stats(profile, catalogue, cfg.intensity_bins))
    scored = profile.select(weighted_score(stats, VALUE_WEIGHTS).alias(Col.VALUE_SCORE))
    return dataclasses.replace(stats, value_edges=fit_value_edges(scored))


def subscriber_features(subscribers: DataFrame, profile: DataFrame, plans: DataFrame,
                        catalogue: DataFrame, stats: FeatureStats, cfg: FeaturesConfig,
                        run_date: dt.date) -> DataFrame:
    """The `subscriber_features` table from its inputs and the fitted statistics."""
    base = subscriber_base(subscribers, profile, plans, catalogue, stats, cfg, run_date)
    return schemas.conform(with_churn(base, stats.churn, cfg), schemas.SUBSCRIBER_FEATURES)


