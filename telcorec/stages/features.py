"""The features stage: read the validated tables, aggregate the CDR once, fit the feature statistics
(or reuse the saved ones) and write `subscriber_features` and `offer_features`
(the transforms live in telcorec/features)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from pyspark.sql import SparkSession

from telcorec.core import schemas
from telcorec.core.config import Config
from telcorec.features import fit_stats
from telcorec.features.churn import fit_churn_model, has_label, with_churn
from telcorec.features.offers import offer_features
from telcorec.features.stats import FeatureStats, newest_saved
from telcorec.features.subscriber import current_plans, subscriber_base
from telcorec.features.usage import cdr_aggregate, months_in_window, usage_profile
from telcorec.io import storage
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, object]:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer, read = ctx.wh, ctx.writer, ctx.read
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
