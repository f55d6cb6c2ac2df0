"""Business rules: which subscriber x offer pairs may be offered at all, and to how many.

Applied in this order, each pair counted once, by the first rule that removes it:
0. `consent`: every offer of a subscriber opted out of marketing (`marketing_opt_out`; always,
   first, so its count is opted-out subscribers x offers whatever the other rules do);
1. `current_plan`: a subscriber's current plan (always);
2. the eligibility rules of `rules.eligibility` (config), in their order: attribute conditions
   evaluated per partition as (subscribers x offers) boolean masks;
3. `fatigue`: offers published to the subscriber at a top rank in the last `rules.fatigue.days`
   days, found by a distributed join over earlier partitions of `offers`, and offers the
   subscriber declined (accepted) in the last `decline_days` (`accept_days`), from `responses`;
4. `campaign_cap`: after ranking, at most N subscribers per offer, those who rank it highest
   first (telcorec/offers/campaign_cap.py). It counts candidate rows, not pairs.

The masks are pure numpy over a pandas batch and its broadcast catalogue, so rules are tested
on literal rows and run on executors; no subscriber x offer pair ever exists as a Spark row.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col, Outcome
from telcorec.core.config import EligibilityRule, FatigueConfig, RuleCondition

CONSENT, CURRENT_PLAN, FATIGUE, CAMPAIGN_CAP = ("consent", "current_plan", "fatigue",
                                              "campaign_cap")
CANDIDATE_PAIRS, ELIGIBLE_PAIRS = "candidate_pairs", "eligible_pairs"
WITHOUT_OFFERS = "subscribers_without_offers"


def condition_mask(cond: RuleCondition, subs: pd.DataFrame, offers: pd.DataFrame) -> np.ndarray:
    """(len(subs) x len(offers)): pairs where every named column holds a listed value."""
    sub = np.ones(len(subs), dtype=bool)
    for column, values in cond.subscriber.items():
        sub &= subs[column].isin(values).to_numpy()  # NULL is in no list
    off = np.ones(len(offers), dtype=bool)
    for column, values in cond.offer.items():
        off &= offers[column].isin(values).to_numpy()
    return sub[:, None] & off[None, :]


def index_mask(offer_lists: pd.Series, n_offers: int) -> np.ndarray:
    """(rows x offers): True at the offer indices each row's array lists (None = none)."""
    lists = [np.asarray(a if a is not None else (), dtype=np.int64) for a in offer_lists]
    lengths = np.fromiter((len(a) for a in lists), dtype=np.int64, count=len(lists))
    mask = np.zeros((len(lists), n_offers), dtype=bool)
    if lengths.sum():
        mask[np.repeat(np.arange(len(lists)), lengths), np.concatenate(lists)] = True
    return mask


def consent_mask(batch: pd.DataFrame, n_offers: int) -> np.ndarray:
    """(rows x offers): every offer of an opted-out subscriber. subscriber_features always
    carries the column (False where the source had no consent data); a batch without it (a
    caller's literal rows) has no opt-outs, the same default."""
    if Col.MARKETING_OPT_OUT not in batch:
        return np.zeros((len(batch), n_offers), dtype=bool)
    opted_out = batch[Col.MARKETING_OPT_OUT].fillna(False).to_numpy(dtype=bool)
    return np.repeat(opted_out[:, None], n_offers, axis=1)


def removal_masks(batch: pd.DataFrame, offers: pd.DataFrame,
                  eligibility: tuple[EligibilityRule, ...]) -> dict[str, np.ndarray]:
    """Every rule's removed pairs (not exclusive), in the order rules apply. `batch` needs the
    subscriber columns the rules name plus exclude_idx (current plan) and fatigue_idx;
    `offers` is the catalogue in offer_idx order."""
    m = len(offers)
    masks = {CONSENT: consent_mask(batch, m), CURRENT_PLAN: index_mask(batch[Col.EXCLUDE_IDX], m)}
    for rule in eligibility:
        masks[rule.name] = (condition_mask(rule.when, batch, offers)
                            & ~condition_mask(rule.require, batch, offers))
    masks[FATIGUE] = index_mask(batch[Col.FATIGUE_IDX], m)
    return masks


def allowed(masks: dict[str, np.ndarray]) -> np.ndarray:
    return ~np.logical_or.reduce(list(masks.values()))


def removed_counts(masks: dict[str, np.ndarray]) -> dict[str, int]:
    """Pairs each rule removed that no earlier rule had removed, so the counts add up:
    candidate_pairs = sum of the rules' counts + eligible_pairs."""
    remaining = np.ones_like(next(iter(masks.values())))
    counts = {CANDIDATE_PAIRS: int(remaining.size)}
    for name, mask in masks.items():
        counts[name] = int((remaining & mask).sum())
        remaining &= ~mask
    counts[ELIGIBLE_PAIRS] = int(remaining.sum())
    counts[WITHOUT_OFFERS] = int((~remaining.any(axis=1)).sum())
    return counts


def room_counts(allowed_pairs: np.ndarray, k: int) -> tuple[int, dict[int, int]]:
    """What the rules leave room for in a batch (subscribers x offers allowed): rows up to K per
    subscriber (summed over subscribers) and subscribers per offer index, from which the
    quality gate bounds the rows a run can publish."""
    per_offer = allowed_pairs.sum(axis=0)
    return (int(np.minimum(allowed_pairs.sum(axis=1), k).sum()),
            {o: int(n) for o, n in enumerate(per_offer) if n})


def with_current_plan(features: DataFrame, offers: DataFrame) -> DataFrame:
    """Adds exclude_idx: the subscriber's current plan as an offer index (empty without one,
    or when the plan left the catalogue)."""
    current = offers.select(F.col(Col.OFFER_ID).alias(Col.CURRENT_OFFER_ID), Col.OFFER_IDX)
    joined = features.join(current, on=Col.CURRENT_OFFER_ID, how="left")
    return joined.withColumn(Col.EXCLUDE_IDX, F.when(F.col(Col.OFFER_IDX).isNull(),
                                                     F.array().cast("array<int>"))
                             .otherwise(F.array(F.col(Col.OFFER_IDX)))).drop(Col.OFFER_IDX)


def answered(responses: DataFrame, run_date: dt.date, cfg: FatigueConfig) -> DataFrame:
    """(subscriber_id, offer_id) the subscriber declined in the cfg.decline_days days, or
    accepted in the cfg.accept_days days, up to the run date. `responses`: the validated
    table's rows ingested up to the run date (so a rerun of a date sees the same answers)."""
    def within(outcome: str, days: int):
        since = F.col(Col.RESPONDED_DATE) >= F.lit(run_date - dt.timedelta(days=days))
        return (F.col(Col.OUTCOME) == outcome) & since & F.lit(days > 0)
    recent = within(Outcome.DECLINED, cfg.decline_days) | within(Outcome.ACCEPTED,
                                                                    cfg.accept_days)
    return responses.where(recent).select(Col.SUBSCRIBER_ID, Col.OFFER_ID)


def fatigue_exclusions(history: DataFrame | None, offers: DataFrame, run_date: dt.date,
                       cfg: FatigueConfig, responses: DataFrame | None = None
                       ) -> DataFrame | None:
    """(subscriber_id, fatigue_idx): offer indices published to each subscriber at rank <=
    cfg.ranks in the cfg.days days before run_date, and those they answered recently
    (`answered`); None when there is nothing to read. The run date itself is outside the
    publishing window, so a rerun of a date sees the same history as its first run."""
    parts = []
    if history is not None and cfg.days:
        start = run_date - dt.timedelta(days=cfg.days)
        parts.append(history.where((F.col(Col.RUN_DATE) >= F.lit(start))
                                   & (F.col(Col.RUN_DATE) < F.lit(run_date))
                                   & (F.col(Col.RANK) <= cfg.ranks))
                     .select(Col.SUBSCRIBER_ID, Col.OFFER_ID))
    if responses is not None:
        parts.append(answered(responses, run_date, cfg))
    if not parts:
        return None
    recent = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    shown = recent.join(offers.select(Col.OFFER_ID, Col.OFFER_IDX), on=Col.OFFER_ID, how="inner")
    # an offer shown on several days (or shown and declined) is one exclusion: a sorted set
    return shown.groupBy(Col.SUBSCRIBER_ID).agg(
        F.array_sort(F.collect_set(F.col(Col.OFFER_IDX).cast("int"))).alias(Col.FATIGUE_IDX))


def with_fatigue(subscribers: DataFrame, fatigue: DataFrame | None) -> DataFrame:
    """Adds fatigue_idx (an empty array for subscribers shown nothing recently)."""
    empty = F.array().cast("array<int>")
    if fatigue is None:
        return subscribers.withColumn(Col.FATIGUE_IDX, empty)
    return (subscribers.join(fatigue, on=Col.SUBSCRIBER_ID, how="left")
            .withColumn(Col.FATIGUE_IDX, F.coalesce(F.col(Col.FATIGUE_IDX), empty)))
