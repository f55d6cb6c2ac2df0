"""A/B results of the offers: conversion per arm and segment, uplift over control with confidence
intervals, a significance test, the sample-ratio check and the minimum detectable effect.

The unit is the subscriber: `offered` counts subscribers with at least one offer published on a
run date of the window, `accepted` those of them who accepted at least one of those offers, and
conversion = accepted / offered. Statistics (pure functions of counts, checked in
tests/evaluation/test_experiment.py against scipy and a hand-derived example):
- p-value: two-proportion z-test, pooled variance, two-sided (equal to Pearson's chi-square
  test of the 2 x 2 table without continuity correction);
- absolute uplift p1 - p0 with a Wald interval (unpooled variance);
- relative uplift p1 / p0 - 1 with the Katz log interval (undefined without acceptances in
  either arm);
- sample-ratio mismatch: chi-square goodness of fit of the offered subscribers per arm against
  the configured shares (k - 1 degrees of freedom), a mismatch when p < experiment.srm_alpha;
- minimum detectable effect: the absolute uplift a two-sided test at 1 - confidence detects
  with `power`, at the observed sizes and control conversion.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import stats

from telcorec.core.columns import Col, Outcome
from telcorec.core.config import ExperimentConfig

TEST = "two-proportion z-test, pooled, two-sided"
ALL = "all"


def two_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float | None:
    """Two-sided p-value of H0: p1 = p0 (pooled z-test); None when undefined."""
    if not n1 or not n0:
        return None
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0  # both arms converted all or none: no evidence of a difference
    return float(2 * stats.norm.sf(abs(x1 / n1 - x0 / n0) / se))


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def absolute_uplift(x1: int, n1: int, x0: int, n0: int,
                    confidence: float) -> tuple[float, float, float] | None:
    """p1 - p0 and its Wald interval."""
    if not n1 or not n0:
        return None
    p1, p0 = x1 / n1, x0 / n0
    half = _z(confidence) * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return p1 - p0, p1 - p0 - half, p1 - p0 + half


def relative_uplift(x1: int, n1: int, x0: int, n0: int,
                    confidence: float) -> tuple[float, float, float] | None:
    """p1 / p0 - 1 and its Katz interval exp(ln(p1/p0) -+ z se) - 1,
    se = sqrt((1 - p1) / x1 + (1 - p0) / x0)."""
    if not (x1 and x0 and n1 and n0):
        return None
    p1, p0 = x1 / n1, x0 / n0
    half = _z(confidence) * math.sqrt((1 - p1) / x1 + (1 - p0) / x0)
    log_ratio = math.log(p1 / p0)
    return p1 / p0 - 1, math.exp(log_ratio - half) - 1, math.exp(log_ratio + half) - 1


def sample_ratio_p(observed: dict[str, int], shares: dict[str, float]) -> float | None:
    """Chi-square goodness-of-fit p-value of the arm sizes against the configured shares."""
    arms = [a for a in shares if shares[a] > 0]
    total = sum(observed.get(a, 0) for a in arms)
    if len(arms) < 2 or not total:
        return None
    statistic = sum((observed.get(a, 0) - total * shares[a]) ** 2 / (total * shares[a])
                    for a in arms)
    return float(stats.chi2.sf(statistic, len(arms) - 1))


def minimum_detectable_effect(n1: int, n0: int, p0: float, confidence: float,
                              power: float) -> float | None:
    """(z_(1-alpha/2) + z_power) * sqrt(p0 (1 - p0) (1/n1 + 1/n0))."""
    if not n1 or not n0:
        return None
    return (_z(confidence) + float(stats.norm.ppf(power))) * math.sqrt(
        p0 * (1 - p0) * (1 / n1 + 1 / n0))


@dataclass(frozen=True)
class ArmCounts:
    arm: str
    segment: str
    subscribers: int   # of the run date's subscribers, assigned to the arm
    offered: int
    responders: int
    accepted: int
    revenue: float     # summed monthly price uplift of the accepted offers


def result_rows(counts: list[ArmCounts], cfg: ExperimentConfig, run_date: dt.date,
                window_start: dt.date) -> list[dict]:
    """One EXPERIMENT_RESULTS row per arm and segment; uplift, p-value and MDE against the
    control arm of the same segment (NULL on the control rows and without a control arm)."""
    by_segment: dict[str, dict[str, ArmCounts]] = {}
    for c in counts:
        by_segment.setdefault(c.segment, {})[c.arm] = c
    rows = []
    for segment, arms in sorted(by_segment.items()):
        srm_p = sample_ratio_p({a: c.offered for a, c in arms.items()}, cfg.arms)
        offered = sum(c.offered for c in arms.values())
        control = arms.get(cfg.control)
        for arm, c in sorted(arms.items()):
            row = {Col.RUN_DATE: run_date, Col.WINDOW_START: window_start, Col.ARM: arm,
                   Col.SEGMENT: segment, Col.SUBSCRIBERS: c.subscribers, Col.OFFERED: c.offered,
                   Col.RESPONDERS: c.responders, Col.ACCEPTED: c.accepted,
                   Col.CONVERSION: c.accepted / c.offered if c.offered else None,
                   Col.TEST: TEST, Col.EXPECTED_SHARE: cfg.arms.get(arm, 0.0),
                   Col.OBSERVED_SHARE: c.offered / offered if offered else None,
                   Col.SRM_P_VALUE: srm_p,
                   Col.SRM_OK: None if srm_p is None else srm_p >= cfg.srm_alpha,
                   Col.REVENUE_PER_SUBSCRIBER: c.revenue / c.offered if c.offered else None}
            rows.append({**row, **_versus(c, control, cfg)})
    return rows


def _versus(c: ArmCounts, control: ArmCounts | None, cfg: ExperimentConfig) -> dict:
    names = (Col.UPLIFT_ABS, Col.UPLIFT_ABS_LOW, Col.UPLIFT_ABS_HIGH, Col.UPLIFT_REL,
             Col.UPLIFT_REL_LOW, Col.UPLIFT_REL_HIGH, Col.P_VALUE, Col.MDE)
    if control is None or c.arm == control.arm:
        return dict.fromkeys(names)
    args = (c.accepted, c.offered, control.accepted, control.offered)
    absolute = absolute_uplift(*args, cfg.confidence) or (None,) * 3
    relative = relative_uplift(*args, cfg.confidence) or (None,) * 3
    p0 = control.accepted / control.offered if control.offered else 0.0
    return dict(zip(names, (*absolute, *relative, two_proportion_p(*args),
                            minimum_detectable_effect(c.offered, control.offered, p0,
                                                      cfg.confidence, cfg.power))))


# ---- the Spark side: counts per arm and segment (aggregates only) ---------------------------

def per_subscriber(population: DataFrame, offers: DataFrame, responses: DataFrame,
                   revenue: DataFrame) -> DataFrame:
    """(subscriber_id, arm, segment, offered, responded, accepted, revenue) of the run date's
    subscribers. `population`: (subscriber_id, arm, segment); `offers`: the window's published
    rows; `responses`: validated answers to them; `revenue`: (subscriber_id, offer_id,
    offer_run_date, uplift) of accepted offers."""
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.OFFER_RUN_DATE]
    answered = (offers.select(Col.SUBSCRIBER_ID, Col.OFFER_ID,
                              F.col(Col.RUN_DATE).alias(Col.OFFER_RUN_DATE))
                .join(responses.select(*keys, Col.OUTCOME), on=keys, how="inner")
                .join(revenue, on=keys, how="left"))
    accepted = F.col(Col.OUTCOME) == Outcome.ACCEPTED
    per_sub = answered.groupBy(Col.SUBSCRIBER_ID).agg(
        F.lit(True).alias("responded"), F.max(accepted).alias("accepted"),
        F.sum(F.when(accepted, F.col("uplift"))).alias("revenue"))
    offered = offers.select(Col.SUBSCRIBER_ID).distinct().withColumn("offered", F.lit(True))
    return (population.join(offered, on=Col.SUBSCRIBER_ID, how="left")
            .join(per_sub, on=Col.SUBSCRIBER_ID, how="left"))


def price_uplift(responses: DataFrame, features: DataFrame,
                 offer_features: DataFrame) -> DataFrame:
    """(subscriber_id, offer_id, offer_run_date, uplift) of accepted answers: the offer's
    monthly price minus that of the plan the subscriber held on the offer's run date (the
    whole price without one). `features` / `offer_features`: partitions of those run dates."""
    keys = [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.OFFER_RUN_DATE]
    on_offer_date = F.col(Col.RUN_DATE).alias(Col.OFFER_RUN_DATE)
    held = features.select(Col.SUBSCRIBER_ID, on_offer_date, Col.CURRENT_OFFER_ID)
    price = offer_features.select(Col.OFFER_ID, on_offer_date, Col.PRICE)
    held_price = offer_features.select(F.col(Col.OFFER_ID).alias(Col.CURRENT_OFFER_ID),
                                       on_offer_date, F.col(Col.PRICE).alias("_held_price"))
    return (responses.where(F.col(Col.OUTCOME) == Outcome.ACCEPTED).select(*keys)
            .join(held, on=[Col.SUBSCRIBER_ID, Col.OFFER_RUN_DATE], how="left")
            .join(price, on=[Col.OFFER_ID, Col.OFFER_RUN_DATE], how="left")
            .join(held_price, on=[Col.CURRENT_OFFER_ID, Col.OFFER_RUN_DATE], how="left")
            .select(*keys, (F.col(Col.PRICE) - F.coalesce(F.col("_held_price"), F.lit(0.0)))
                    .alias("uplift")))


def arm_counts(per_sub: DataFrame) -> list[ArmCounts]:
    """Counts per arm and segment, and per arm over every segment (`all`): one aggregation, a
    row per arm x segment reaches the driver."""
    def flag(name: str) -> Column:
        return F.count(F.when(F.coalesce(F.col(name), F.lit(False)), 1))
    rows = (per_sub.withColumn(Col.SEGMENT, F.explode(F.array(
                F.coalesce(F.col(Col.SEGMENT), F.lit("unknown")), F.lit(ALL))))
            .groupBy(Col.ARM, Col.SEGMENT)
            .agg(F.count(F.lit(1)).alias("subscribers"), flag("offered").alias("offered"),
                 flag("responded").alias("responders"), flag("accepted").alias("accepted"),
                 F.coalesce(F.sum("revenue"), F.lit(0.0)).alias("revenue"))
            .collect())
    return [ArmCounts(r[Col.ARM], r[Col.SEGMENT], r["subscribers"], r["offered"],
                      r["responders"], r["accepted"], float(r["revenue"])) for r in rows]
