"""Stage 2, features: subscriber and offer features with one definition for training and scoring.

Reading order: `usage` (the one aggregation of the CDR and the usage/behaviour features derived
from it row by row), `subscriber` (lifecycle, value, plan fit, attributes), `churn` (classifier or
rule), `offers`, and `stats` (the fitted numbers, saved as JSON beside the tables and reused).
`run` reads the validated tables and writes `subscriber_features` and `offer_features`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from pyspark.sql import DataFrame, SparkSession

from telcorec import schemas, storage
from telcorec.columns import Col
from telcorec.config import Config, FeaturesConfig
from telcorec.features.churn import fit_churn_model, has_label, with_churn
from telcorec.features.offers import data_tier, offer_features
from telcorec.features.stats import (INTENSITY_LABELS, PRICE_TIERS, UNKNOWN, ChurnModel,
                                     FeatureStats, bin_label, fit_offer_stats, fit_usage_stats,
                                     fit_value_edges, newest_saved)
from telcorec.features.subscriber import (VALUE_WEIGHTS, current_plans, household,
                                          subscriber_base, tenure_stage, weighted_score)
from telcorec.features.usage import cdr_aggregate, months_in_window, usage_profile
from telcorec.warehouse import Warehouse

__all__ = ["ChurnModel", "FeatureStats", "INTENSITY_LABELS", "PRICE_TIERS", "UNKNOWN",
           "bin_label", "cdr_aggregate", "current_plans", "data_tier", "fit_stats", "household",
           "months_in_window", "offer_features", "run", "subscriber_features", "tenure_stage",
           "usage_profile"]
log = logging.getLogger(__name__)


def fit_stats(profile: DataFrame, catalogue: DataFrame, cfg: FeaturesConfig) -> FeatureStats:
    """Every fitted statistic except the churn model: three small jobs over small tables."""
    stats = FeatureStats(**fit_usage_stats(profile, cfg.intensity_bins),
                         **fit_offer_stats(catalogue))
    scored = profile.select(weighted_score(stats, VALUE_WEIGHTS).alias(Col.VALUE_SCORE))
    return dataclasses.replace(stats, value_edges=fit_value_edges(scored))


def subscriber_features(subscribers: DataFrame, profile: DataFrame, plans: DataFrame,
                        catalogue: DataFrame, stats: FeatureStats, cfg: FeaturesConfig,
                        run_date: dt.date) -> DataFrame:
    """The `subscriber_features` table from its inputs and the fitted statistics."""
    base = subscriber_base(subscribers, profile, plans, catalogue, stats, cfg, run_date)
    return schemas.conform(with_churn(base, stats.churn, cfg), schemas.SUBSCRIBER_FEATURES)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, object]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    read = storage.run_date_reader(spark, wh, run_date, writer)
    catalogue, subscribers = read("catalogue"), read("subscribers")
    started = time.monotonic()

    def phase(done: str) -> None:  # minutes at CDR scale: say where the time goes
        log.info("features: %s (%.1f s)", done, time.monotonic() - started)

    months = months_in_window(cfg.ingest.cdr_window_days)
    profile = usage_profile(cdr_aggregate(read("cdr"), run_date, months), months,
                            cfg.features).cache()  # one row per subscriber; the CDR is read once
    phase(f"CDR aggregated: {profile.count():,} subscribers with usage over {months} months")
    stats_path = wh.feature_stats(run_date)
    if cfg.features.fit_stats:
        stats = fit_stats(profile, catalogue, cfg.features)
        phase("quantile edges and scales fitted")
    else:
        stats = FeatureStats.load(newest_saved(stats_path.parent, run_date.isoformat()))
    plans = current_plans(read("subscriptions"), run_date)
    base = subscriber_base(subscribers, profile, plans, catalogue, stats, cfg.features, run_date)
    if cfg.features.churn_model == "rule":
        stats = dataclasses.replace(stats, churn=None)
    elif cfg.features.fit_stats and has_label(subscribers):
        stats = dataclasses.replace(stats, churn=fit_churn_model(base, cfg.features, cfg.seed))
        phase("churn classifier fitted")
    stats.save(stats_path)
    subs = schemas.conform(with_churn(base, stats.churn, cfg.features),
                           schemas.SUBSCRIBER_FEATURES)
    n_subs = storage.replace_partition(subs, wh.table("subscriber_features"),
                                       schemas.SUBSCRIBER_FEATURES, run_date, writer)
    phase(f"subscriber_features written: {n_subs:,} rows")
    n_offers = storage.replace_partition(offer_features(catalogue, stats, run_date),
                                         wh.table("offer_features"), schemas.OFFER_FEATURES,
                                         run_date, writer)
    profile.unpersist()
    result: dict[str, object] = {"subscriber_features": n_subs, "offer_features": n_offers,
                                 "feature_stats_version": stats.version}
    if stats.churn is not None:
        result["churn_holdout_auc"] = round(stats.churn.holdout_auc or float("nan"), 4)
    return result
