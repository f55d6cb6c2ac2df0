"""Stage 2, features: subscriber and offer features with one definition for training and scoring.

All CDR aggregates come from one aggregation of the CDR table per grain (subscriber x 30-day
billing month); per-subscriber statistics are then computed from that small monthly table.
Fitted statistics (quantile edges of usage and price) are computed once per run, saved as JSON
beside the feature tables and passed back in unchanged wherever the same features are needed
again, so training and scoring never disagree on a bin edge.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec import schemas, storage
from telcorec.columns import Col, EventType
from telcorec.config import Config, FeaturesConfig
from telcorec.warehouse import Warehouse

INTENSITY_LABELS = ("very_low", "low", "medium", "high", "very_high")
PRICE_TIERS = ("budget", "standard", "premium", "luxury")
DATA_TIERS = (("light", 5.0), ("medium", 20.0), ("heavy", 50.0))  # above the last: unlimited
UNKNOWN = "unknown"
_QUANTILE_ERROR = 0.001


@dataclass(frozen=True)
class FeatureStats:
    """Fitted statistics of one feature set; `version` names them in model metadata."""
    data_edges: tuple[float, ...]
    voice_edges: tuple[float, ...]
    sms_edges: tuple[float, ...]
    price_edges: tuple[float, ...]

    @property
    def version(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**asdict(self), "version": self.version}, indent=2))

    @classmethod
    def load(cls, path: Path) -> "FeatureStats":
        data = json.loads(path.read_text())
        data.pop("version", None)
        return cls(**{k: tuple(v) for k, v in data.items()})


def monthly_usage(cdr: DataFrame, run_date: dt.date) -> DataFrame:
    """One aggregation of the CDR: usage per subscriber and 30-day month before the run date."""
    days_back = F.datediff(F.lit(run_date), F.to_date(Col.EVENT_TS)) - 1
    is_type = {t: F.col(Col.EVENT_TYPE) == t for t in EventType.ALL}
    return (cdr.withColumn("month", F.floor(days_back / 30).cast("int"))
            .groupBy(Col.SUBSCRIBER_ID, "month")
            .agg(F.sum(F.when(is_type[EventType.DATA], F.col(Col.DATA_MB))).alias("data_mb"),
                 F.sum(F.when(is_type[EventType.VOICE], F.col(Col.DURATION_S))).alias("voice_s"),
                 F.sum(is_type[EventType.SMS].cast("int")).alias("sms")))


def usage_profile(monthly: DataFrame) -> DataFrame:
    """Per-subscriber averages and spread of monthly usage (from the small monthly table)."""
    data_gb = F.coalesce(F.col("data_mb"), F.lit(0.0)) / 1024.0
    voice_min = F.coalesce(F.col("voice_s"), F.lit(0.0)) / 60.0
    return (monthly.groupBy(Col.SUBSCRIBER_ID)
            .agg(F.avg(data_gb).alias(Col.DATA_GB_MONTH),
                 F.stddev_samp(data_gb).alias(Col.DATA_GB_MONTH_STD),
                 F.avg(voice_min).alias(Col.VOICE_MIN_MONTH),
                 F.avg(F.col("sms").cast("double")).alias(Col.SMS_MONTH)))


def _edges(df: DataFrame, column: str, bins: int) -> tuple[float, ...]:
    probabilities = [i / bins for i in range(1, bins)]
    return tuple(float(x) for x in df.approxQuantile(column, probabilities, _QUANTILE_ERROR))


def fit_stats(profile: DataFrame, catalogue: DataFrame, cfg: FeaturesConfig) -> FeatureStats:
    return FeatureStats(
        data_edges=_edges(profile, Col.DATA_GB_MONTH, cfg.intensity_bins),
        voice_edges=_edges(profile, Col.VOICE_MIN_MONTH, cfg.intensity_bins),
        sms_edges=_edges(profile, Col.SMS_MONTH, cfg.intensity_bins),
        price_edges=_edges(catalogue, Col.PRICE, len(PRICE_TIERS)),
    )


def bin_label(value: Column, edges: tuple[float, ...], labels: tuple[str, ...]) -> Column:
    """Label of the bin holding `value`: bin i holds edges[i-1] < value <= edges[i]."""
    index = sum((value > F.lit(edge)).cast("int") for edge in edges)
    label = F.element_at(F.array(*[F.lit(x) for x in labels]), index + 1)
    return F.when(value.isNull(), F.lit(UNKNOWN)).otherwise(label)


def tenure_stage(months: Column) -> Column:
    return (F.when(months.isNull(), F.lit(UNKNOWN))
            .when(months <= 3, F.lit("new")).when(months <= 12, F.lit("growing"))
            .when(months <= 36, F.lit("mature")).otherwise(F.lit("veteran")))


def household(size: Column) -> Column:
    return (F.when(size.isNull(), F.lit(UNKNOWN)).when(size <= 1, F.lit("single"))
            .when(size == 2, F.lit("couple")).otherwise(F.lit("family")))


def current_plans(subscriptions: DataFrame) -> DataFrame:
    """The latest plan per subscriber (the one with the newest start date)."""
    latest = F.max_by(Col.OFFER_ID, F.struct(Col.START_DATE, Col.OFFER_ID))
    return (subscriptions.groupBy(Col.SUBSCRIBER_ID)
            .agg(latest.alias(Col.CURRENT_OFFER_ID)))


def subscriber_features(subscribers: DataFrame, profile: DataFrame, plans: DataFrame,
                        stats: FeatureStats, cfg: FeaturesConfig, run_date: dt.date) -> DataFrame:
    tenure = F.floor(F.months_between(F.lit(run_date), F.col(Col.SIGNUP_DATE))).cast("int")
    cv = F.col(Col.DATA_GB_MONTH_STD) / (F.col(Col.DATA_GB_MONTH) + 1.0)
    stable = (F.when(F.col(Col.DATA_CV).isNull(), F.lit(UNKNOWN))
              .when(F.col(Col.DATA_CV) < cfg.stable_cv, F.lit("stable"))
              .otherwise(F.lit("variable")))
    out = (subscribers.join(profile, on=Col.SUBSCRIBER_ID, how="left")
           .join(plans, on=Col.SUBSCRIBER_ID, how="left")
           .withColumn(Col.RUN_DATE, F.lit(run_date))
           .withColumn(Col.TENURE_MONTHS, tenure)
           .withColumn(Col.TENURE_STAGE, tenure_stage(F.col(Col.TENURE_MONTHS)))
           .withColumn(Col.HOUSEHOLD, household(F.col(Col.HOUSEHOLD_SIZE)))
           .withColumn(Col.DATA_CV, cv)
           .withColumn(Col.USAGE_STABILITY, stable)
           .withColumn(Col.DATA_INTENSITY,
                       bin_label(F.col(Col.DATA_GB_MONTH), stats.data_edges, INTENSITY_LABELS))
           .withColumn(Col.CALL_INTENSITY,
                       bin_label(F.col(Col.VOICE_MIN_MONTH), stats.voice_edges, INTENSITY_LABELS))
           .withColumn(Col.SMS_INTENSITY,
                       bin_label(F.col(Col.SMS_MONTH), stats.sms_edges, INTENSITY_LABELS))
           .withColumn(Col.HAS_HISTORY, F.col(Col.CURRENT_OFFER_ID).isNotNull()))
    return schemas.conform(out, schemas.SUBSCRIBER_FEATURES)


def data_tier(gb: Column) -> Column:
    tier = F.lit("unlimited")
    for label, upper in reversed(DATA_TIERS):
        tier = F.when(gb <= upper, F.lit(label)).otherwise(tier)
    return tier


def offer_features(catalogue: DataFrame, stats: FeatureStats, run_date: dt.date) -> DataFrame:
    """Offer features with a contiguous offer_idx (0..M-1 in offer_id order)."""
    indexed = catalogue.rdd.map(lambda r: r[Col.OFFER_ID]).sortBy(lambda x: x).zipWithIndex()
    index = indexed.toDF([Col.OFFER_ID, Col.OFFER_IDX])
    out = (catalogue.join(index, on=Col.OFFER_ID, how="inner")
           .withColumn(Col.RUN_DATE, F.lit(run_date))
           .withColumn(Col.FAMILY, F.when(F.col(Col.FAMILY), "yes").otherwise("no"))
           .withColumn(Col.PRICE_TIER, bin_label(F.col(Col.PRICE), stats.price_edges, PRICE_TIERS))
           .withColumn(Col.DATA_TIER, data_tier(F.col(Col.DATA_GB))))
    return schemas.conform(out, schemas.OFFER_FEATURES)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)

    def validated(name: str) -> DataFrame:
        schema = schemas.validated(schemas.INPUTS[name])
        return storage.read_table(spark, wh.table(name), schema, run_date, writer)

    catalogue = validated("catalogue")
    profile = usage_profile(monthly_usage(validated("cdr"), run_date)).cache()
    stats = fit_stats(profile, catalogue, cfg.features)
    stats.save(wh.feature_stats(run_date))
    subs = subscriber_features(validated("subscribers"), profile,
                               current_plans(validated("subscriptions")), stats, cfg.features,
                               run_date)
    n_subs = storage.replace_partition(subs, wh.table("subscriber_features"),
                                       schemas.SUBSCRIBER_FEATURES, run_date, writer)
    n_offers = storage.replace_partition(offer_features(catalogue, stats, run_date),
                                         wh.table("offer_features"), schemas.OFFER_FEATURES,
                                         run_date, writer)
    profile.unpersist()
    return {"subscriber_features": n_subs, "offer_features": n_offers,
            "feature_stats_version": stats.version}
