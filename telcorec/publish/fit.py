"""Does K fit the catalogue, the business rules and the campaign cap? Checked as soon as the run
date's catalogue is known (the pipeline after its features stage, the score stage at its start),
so a K no run could fill is found in seconds, not by the quality gate after every stage ran.

A K above the catalogue is refused (no subscriber could get K offers). A K that the current
plan, the eligibility rules or the campaign cap leave some subscribers short of is allowed, with
a warning naming the key to change: those subscribers get fewer rows, and the gate's row check
already counts what the rules and the cap allow (telcorec/publish/gate.py).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError
from telcorec.offers import rules

log = logging.getLogger(__name__)
COUNT = "subscribers"


def rule_columns(cfg: Config) -> list[str]:
    """The subscriber columns the eligibility rules read."""
    names = {c for r in cfg.rules.eligibility for c in (*r.when.subscriber, *r.require.subscriber)}
    return sorted(names)


def eligible_offers(cfg: Config, groups: pd.DataFrame, offers: pd.DataFrame) -> np.ndarray:
    """Per row of `groups` (one per combination of the rule columns), the offers the
    eligibility rules leave (the current plan and fatigue come on top, per subscriber)."""
    removed = np.zeros((len(groups), len(offers)), dtype=bool)
    for rule in cfg.rules.eligibility:
        removed |= (rules.condition_mask(rule.when, groups, offers)
                    & ~rules.condition_mask(rule.require, groups, offers))
    return (~removed).sum(axis=1)


def k_problems(cfg: Config, offers: pd.DataFrame,
               groups: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(errors, warnings) of scoring.k against the catalogue `offers` (offer_features rows),
    the rules and the cap, for the subscribers counted in `groups` (rule columns + COUNT)."""
    k, n = cfg.scoring.k, len(offers)
    if k > n:
        return [f"scoring.k is {k} but the run date's catalogue has only {n} offers: no "
                f"subscriber can get {k}; set scoring.k to at most {max(n - 1, 1)} (the current "
                "plan is never offered)"], []
    warnings = []
    if k > n - 1:
        warnings.append(f"scoring.k is {k} and the catalogue has {n} offers: a subscriber with a "
                        f"current plan gets at most {n - 1}; set scoring.k to {n - 1} or fewer")
    subscribers = int(groups[COUNT].sum())
    cap = cfg.rules.campaign_cap
    if cap.enabled and subscribers:
        reach = [cap.max_share * subscribers] if cap.max_share < 1 else []
        reach += [cap.max_subscribers] if cap.max_subscribers > 0 else []
        per_subscriber = min(reach) * n / subscribers
        if per_subscriber < k:
            warnings.append(
                f"the campaign cap lets each of the {n} offers reach at most {int(min(reach)):,} "
                f"of {subscribers:,} subscribers: {per_subscriber:.1f} offers per subscriber on "
                f"average, fewer than scoring.k={k}; lower scoring.k or raise "
                "rules.campaign_cap.max_share (max_subscribers)")
    left = eligible_offers(cfg, groups, offers)
    short = left < k
    if short.any():
        count = int(groups[COUNT].to_numpy()[short].sum())
        warnings.append(
            f"the eligibility rules leave {count:,} of {subscribers:,} subscribers fewer than "
            f"scoring.k={k} offers (fewest: {int(left.min())}): they get fewer rows; lower "
            "scoring.k or review rules.eligibility to fill every list")
    return [], warnings


def check_k(cfg: Config, subscriber_features: DataFrame, offers: pd.DataFrame) -> list[str]:
    """Refuse (ConfigError) a K above the catalogue; log and return the warnings. One small
    aggregation: subscribers per combination of the rule columns."""
    columns = rule_columns(cfg)
    groups = subscriber_features.groupBy(*columns).count().withColumnRenamed("count", COUNT)
    errors, warnings = k_problems(cfg, offers, groups.toPandas())
    if errors:
        raise ConfigError("; ".join(errors))
    for warning in warnings:
        log.warning("scoring.k: %s", warning)
    return warnings
