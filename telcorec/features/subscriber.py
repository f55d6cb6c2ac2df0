"""Subscriber features: lifecycle, value, plan fit and attributes, joined onto the usage profile.

Pure `DataFrame -> DataFrame` functions; the fitted numbers come in through `FeatureStats`.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import FeaturesConfig
from telcorec.features.stats import (
    INTENSITY_LABELS,
    UNKNOWN,
    VALUE_TIERS,
    FeatureStats,
    bin_label,
    normalised,
)
from telcorec.features.usage import stability

USAGE_WEIGHTS = (0.5, 0.3, 0.2)  # composite usage score: data, voice, SMS
VALUE_WEIGHTS = (0.4, 0.3, 0.3)  # value score: data, voice, SMS
CONSTRAINED, FIT, WASTEFUL = "constrained", "fit", "wasteful"


def tenure_stage(months: Column) -> Column:
    return (F.when(months.isNull(), F.lit(UNKNOWN))
            .when(months <= 3, F.lit("new")).when(months <= 12, F.lit("growing"))
            .when(months <= 36, F.lit("mature")).otherwise(F.lit("veteran")))


def household(size: Column) -> Column:
    return (F.when(size.isNull(), F.lit(UNKNOWN)).when(size <= 1, F.lit("single"))
            .when(size == 2, F.lit("couple")).otherwise(F.lit("family")))


def renewal_window(days_to_end: Column, window_days: int) -> Column:
    """yes when the contract ends within `window_days` (or has ended: out of contract)."""
    return (F.when(days_to_end.isNull(), F.lit(UNKNOWN))
            .when(days_to_end <= window_days, F.lit("yes")).otherwise(F.lit("no")))


def yes_no(flag: Column) -> Column:
    return F.when(flag.isNull(), F.lit(UNKNOWN)).when(flag, F.lit("yes")).otherwise(F.lit("no"))


def weighted_score(stats: FeatureStats, weights: tuple[float, float, float]) -> Column:
    """Weighted sum of monthly data, voice and SMS, each normalised by its fitted p95 scale."""
    if len(stats.usage_scales) != 3:
        return F.lit(None).cast("double")
    parts = zip((Col.DATA_GB_MONTH, Col.VOICE_MIN_MONTH, Col.SMS_MONTH), stats.usage_scales,
                weights)
    return sum(F.lit(w) * normalised(F.col(c), s) for c, s, w in parts)


def plan_fit(ratio: Column, cfg: FeaturesConfig) -> Column:
    """constrained above constrained_ratio, wasteful below wasteful_ratio, else fit."""
    return (F.when(ratio.isNull(), F.lit(UNKNOWN))
            .when(ratio > cfg.constrained_ratio, F.lit(CONSTRAINED))
            .when(ratio < cfg.wasteful_ratio, F.lit(WASTEFUL)).otherwise(F.lit(FIT)))


def use_ratio(usage: Column, allowance: Column) -> Column:
    """usage / allowance of the current plan (NULL without a plan or an allowance)."""
    return F.when(allowance > 0, usage / allowance)


def current_plans(subscriptions: DataFrame, run_date: dt.date) -> DataFrame:
    """Per subscriber: the latest plan (newest start date) and how many offers are active."""
    latest = F.max_by(Col.OFFER_ID, F.struct(Col.START_DATE, Col.OFFER_ID))
    active = ((F.col(Col.START_DATE) <= F.lit(run_date))
              & (F.col(Col.END_DATE).isNull() | (F.col(Col.END_DATE) > F.lit(run_date))))
    return (subscriptions.groupBy(Col.SUBSCRIBER_ID)
            .agg(latest.alias(Col.CURRENT_OFFER_ID),
                 F.count(F.when(active, F.lit(1))).cast("int").alias(Col.ACTIVE_OFFERS)))


def _plan_allowances(catalogue: DataFrame) -> DataFrame:
    return catalogue.select(F.col(Col.OFFER_ID).alias(Col.CURRENT_OFFER_ID),
                            F.col(Col.DATA_GB).alias("_plan_data_gb"),
                            F.col(Col.VOICE_MIN).alias("_plan_voice_min"))


def subscriber_base(subscribers: DataFrame, profile: DataFrame, plans: DataFrame,
                    catalogue: DataFrame, stats: FeatureStats, cfg: FeaturesConfig,
                    run_date: dt.date) -> DataFrame:
    """Every subscriber feature except churn risk (which may be fitted on these)."""
    tenure = F.floor(F.months_between(F.lit(run_date), F.col(Col.SIGNUP_DATE))).cast("int")
    cv = F.col(Col.DATA_GB_MONTH_STD) / (F.col(Col.DATA_GB_MONTH) + 1.0)
    data_ratio = use_ratio(F.col(Col.DATA_GB_MONTH), F.col("_plan_data_gb"))
    voice_ratio = use_ratio(F.col(Col.VOICE_MIN_MONTH), F.col("_plan_voice_min"))
    intensity = lambda c, edges: bin_label(F.col(c), edges, INTENSITY_LABELS)
    return (subscribers.join(profile, on=Col.SUBSCRIBER_ID, how="left")
            .join(plans, on=Col.SUBSCRIBER_ID, how="left")
            .join(F.broadcast(_plan_allowances(catalogue)), on=Col.CURRENT_OFFER_ID, how="left")
            .withColumns({
                Col.RUN_DATE: F.lit(run_date),
                Col.TENURE_MONTHS: tenure,
                Col.TENURE_DAYS: F.datediff(F.lit(run_date), F.col(Col.SIGNUP_DATE)),
                Col.HOUSEHOLD: household(F.col(Col.HOUSEHOLD_SIZE)),
                Col.DATA_CV: cv,
                Col.DATA_INTENSITY: intensity(Col.DATA_GB_MONTH, stats.data_edges),
                Col.CALL_INTENSITY: intensity(Col.VOICE_MIN_MONTH, stats.voice_edges),
                Col.SMS_INTENSITY: intensity(Col.SMS_MONTH, stats.sms_edges),
                Col.HAS_HISTORY: F.col(Col.CURRENT_OFFER_ID).isNotNull(),
                Col.ACTIVE_OFFERS: F.coalesce(F.col(Col.ACTIVE_OFFERS), F.lit(0)),
                Col.DATA_TREND: F.coalesce(F.col(Col.DATA_TREND), F.lit(UNKNOWN)),
                Col.USAGE_SCORE: weighted_score(stats, USAGE_WEIGHTS),
                Col.VALUE_SCORE: weighted_score(stats, VALUE_WEIGHTS),
                Col.DAYS_TO_CONTRACT_END: F.datediff(F.col(Col.CONTRACT_END), F.lit(run_date)),
                Col.AUTOPAY: yes_no(F.col(Col.AUTOPAY)),
                # no consent on record (source without consent data, blank value) = not opted out
                Col.MARKETING_OPT_OUT: F.coalesce(F.col(Col.MARKETING_OPT_OUT), F.lit(False)),
                Col.DATA_USE_RATIO: data_ratio,
                Col.DATA_PLAN_EFFICIENCY: F.least(data_ratio, F.lit(1.0)),
                Col.VOICE_USE_RATIO: voice_ratio,
                Col.VOICE_PLAN_EFFICIENCY: F.least(voice_ratio, F.lit(1.0)),
            })
            .withColumns({
                Col.TENURE_STAGE: tenure_stage(F.col(Col.TENURE_MONTHS)),
                Col.USAGE_STABILITY: stability(F.col(Col.DATA_CV), cfg.stable_cv),
                Col.RENEWAL_WINDOW: renewal_window(F.col(Col.DAYS_TO_CONTRACT_END),
                                                   cfg.renewal_days),
                Col.VALUE_TIER: bin_label(F.col(Col.VALUE_SCORE), stats.value_edges, VALUE_TIERS),
                Col.DATA_PLAN_FIT: plan_fit(F.col(Col.DATA_USE_RATIO), cfg),
                Col.VOICE_PLAN_FIT: plan_fit(F.col(Col.VOICE_USE_RATIO), cfg),
            }))
