"""Subscribers, their hidden needs and their plan history, as pure functions of subscriber numbers.

Every attribute of subscriber n is drawn from `rand` keyed by (seed, n), so any chunk of numbers
can be generated anywhere (driver, executor, any partitioning) with the same result. Dates are
kept as integer day offsets (relative to signup or run date); Spark turns them into dates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from telcorec.core.columns import Col
from telcorec.synthetic import rand
from telcorec.synthetic.rand import Salt
from telcorec.synthetic.utility import TASTE_FAMILIES, true_utility


class GenCol:
    """Generator-internal columns (never written to a table)."""

    NUMBER = "subscriber_number"
    SEGMENT_CODE = "segment_code"
    DEVICE_CODE = "device_code"
    TENURE_DAYS = "tenure_days"
    IS_NEW = "is_new"
    TERM_MONTHS = "term_months"
    VOLATILITY = "volatility"
    OFFER_POS = "offer_pos"
    START_OFFSET = "start_offset"
    END_OFFSET = "end_offset"
    ID_NUMBER = "id_number"  # the digits of subscriber_id (number + 1 for real subscribers)
    OWNER_NUMBER = "owner_number"  # the digits of the subscriber_id an event id is built on
    SIGNUP_OFFSET = "signup_offset"
    EVENT_NO = "event_no"
    EVENT_CODE = "event_code"
    EPOCH_S = "epoch_s"
    KEY = "key"


SEGMENTS = ("youth", "family", "professional", "business", "senior")
SEGMENT_PROBS = (0.20, 0.25, 0.25, 0.15, 0.15)
REGIONS = ("Capital", "North", "South", "East", "West", "Central", "Coast", "Highlands")
REGION_PROBS = (0.25, 0.12, 0.14, 0.10, 0.10, 0.12, 0.10, 0.07)
DEVICE_TIERS = ("basic", "mid", "flagship")
# Per segment (rows in SEGMENTS order): device tier, household size 1..5, needs, price.
DEVICE_PROBS = ((.3, .5, .2), (.3, .5, .2), (.1, .4, .5), (.1, .5, .4), (.6, .35, .05))
HOUSEHOLD_PROBS = ((.6, .35, .05, 0, 0), (0, 0, .45, .35, .2), (.5, .42, .08, 0, 0),
                   (.45, .45, .1, 0, 0), (.45, .55, 0, 0, 0))
PREPAID_SHARE = (0.5, 0.15, 0.15, 0.0, 0.4)
DATA_MEDIAN_GB = (20.0, 15.0, 10.0, 8.0, 2.0)
DEVICE_DATA_FACTOR = (0.5, 1.0, 1.5)
VOICE_MEDIAN_MIN = (150.0, 400.0, 600.0, 1200.0, 300.0)
SMS_MEDIAN = (150.0, 60.0, 40.0, 30.0, 20.0)
PRICE_SENSITIVITY = (1.2, 0.8, 0.5, 0.3, 1.0)
PREPAID_PRICE_FACTOR = 1.3
NEED_SIGMA, SMS_SIGMA, PRICE_SIGMA = 0.6, 0.8, 0.15
NEW_MAX_DAYS, TENURE_MEDIAN_DAYS, TENURE_SIGMA, MAX_TENURE_DAYS = 30, 600.0, 1.0, 3650
SHORT_TERM_SHARE = 0.4  # postpaid contracts of 12 months; the rest run 24
MONTH_SIGMA, VOLATILE_SIGMA, VOLATILE_SHARE = 0.2, 0.5, 0.25  # month-to-month usage swings
# 1 to 8 plans over the years (upgrades, promotions, contract renewals on a new plan), no more
# than one per MIN_PLAN_DAYS of tenure: a taste shows in a history of two or more (one plan
# cannot reveal it), and the longer the history, the surer
HISTORY_PROBS = (0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.1, 0.05)
MIN_PLAN_DAYS = 90
CHOICE_TEMPERATURE = 0.7
# Hidden tastes (utility.taste_axes): TASTE_SHARE of subscribers like one hidden offer family
# beyond what their needs explain, evenly over the families, for life (keyed by subscriber alone);
# everyone has one, as everyone ends up with some favourite brand
TASTE_SHARE = 1.0
CURRENT_PLAN_MIN_AGE_DAYS = 30


def _pick(labels: tuple, codes: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=object)[codes]


def _attributes(n: np.ndarray, seed: int, cold_start_share: float) -> pd.DataFrame:
    k = rand.key(seed, n)
    seg = rand.categorical(rand.uniform(k, Salt.SEGMENT), SEGMENT_PROBS)
    device = rand.categorical(rand.uniform(k, Salt.DEVICE), DEVICE_PROBS, seg)
    household = 1 + rand.categorical(rand.uniform(k, Salt.HOUSEHOLD), HOUSEHOLD_PROBS, seg)
    prepaid = rand.uniform(k, Salt.PAYMENT) < np.array(PREPAID_SHARE)[seg]
    is_new = rand.uniform(k, Salt.NEW) < cold_start_share
    long_tenure = NEW_MAX_DAYS + np.minimum(
        MAX_TENURE_DAYS - NEW_MAX_DAYS,
        np.floor(TENURE_MEDIAN_DAYS * np.exp(TENURE_SIGMA * rand.normal(k, Salt.TENURE))))
    new_tenure = 1 + np.floor(rand.uniform(k, Salt.TENURE) * (NEW_MAX_DAYS - 1))
    term = np.where(rand.uniform(k, Salt.TERM) < SHORT_TERM_SHARE, 12, 24)
    volatile = rand.uniform(k, Salt.VOLATILITY) < VOLATILE_SHARE
    return pd.DataFrame({
        GenCol.NUMBER: n.astype(np.int64), GenCol.SEGMENT_CODE: seg, GenCol.DEVICE_CODE: device,
        Col.SEGMENT: _pick(SEGMENTS, seg),
        Col.REGION: _pick(REGIONS, rand.categorical(rand.uniform(k, Salt.REGION), REGION_PROBS)),
        Col.DEVICE_TIER: _pick(DEVICE_TIERS, device),
        Col.PAYMENT_TYPE: np.where(prepaid, "prepaid", "postpaid").astype(object),
        Col.HOUSEHOLD_SIZE: household.astype(np.int32),
        GenCol.IS_NEW: is_new,
        GenCol.TENURE_DAYS: np.where(is_new, new_tenure, long_tenure).astype(np.int64),
        GenCol.TERM_MONTHS: pd.array(np.where(prepaid, pd.NA, term), dtype="Int32"),
        GenCol.VOLATILITY: np.where(volatile, VOLATILE_SIGMA, MONTH_SIGMA),
    })


def population(numbers: np.ndarray, seed: int, cold_start_share: float) -> pd.DataFrame:
    """Attributes and hidden needs (SUBSCRIBER_TRUTH columns) of subscribers `numbers`."""
    n = np.asarray(numbers, dtype=np.int64)
    pop = _attributes(n, seed, cold_start_share)
    k = rand.key(seed, n)
    seg = pop[GenCol.SEGMENT_CODE].to_numpy()
    device = pop[GenCol.DEVICE_CODE].to_numpy()
    data_median = np.array(DATA_MEDIAN_GB)[seg] * np.array(DEVICE_DATA_FACTOR)[device]
    pop[Col.DATA_NEED_GB] = data_median * np.exp(NEED_SIGMA * rand.normal(k, Salt.DATA_NEED))
    pop[Col.VOICE_NEED_MIN] = np.array(VOICE_MEDIAN_MIN)[seg] * np.exp(
        NEED_SIGMA * rand.normal(k, Salt.VOICE_NEED))
    pop[Col.SMS_NEED] = np.array(SMS_MEDIAN)[seg] * np.exp(
        SMS_SIGMA * rand.normal(k, Salt.SMS_NEED))
    prepaid_factor = np.where(pop[Col.PAYMENT_TYPE] == "prepaid", PREPAID_PRICE_FACTOR, 1.0)
    pop[Col.PRICE_SENSITIVITY] = (np.array(PRICE_SENSITIVITY)[seg] * prepaid_factor
                                  * np.exp(PRICE_SIGMA * rand.normal(k, Salt.PRICE_SENS)))
    taste = rand.uniform(k, Salt.TASTE)
    pop[Col.PERSONA] = np.where(taste < TASTE_SHARE,
                                np.floor(taste / TASTE_SHARE * TASTE_FAMILIES), -1).astype(np.int32)
    return pop


def _plan_starts(tenure: np.ndarray, h: np.ndarray, j: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Start day (since signup) of plan j of h: plan 0 at signup, later ones in disjoint strata
    of [1, tenure - 30], so starts strictly increase and the current plan is >= 30 days old."""
    span = tenure - CURRENT_PLAN_MIN_AGE_DAYS
    parts = np.maximum(h - 1, 1)
    lo = 1 + ((j - 1) * span) // parts
    hi = 1 + (j * span) // parts
    return np.where(j == 0, 0, lo + np.floor(u * (hi - lo)).astype(np.int64))


def history(pop: pd.DataFrame, catalogue: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Plan history: the top-h offers by utility + Gumbel noise, the best one the latest.

    One row per (subscriber, plan) with the offer's catalogue position, start offset and end
    offset in days relative to run date (end = next plan's start; missing for the current plan).
    New subscribers have none.
    """
    n = pop[GenCol.NUMBER].to_numpy()
    tenure = pop[GenCol.TENURE_DAYS].to_numpy()
    h = 1 + rand.categorical(rand.uniform(rand.key(seed, n), Salt.HISTORY_LEN), HISTORY_PROBS)
    h = np.where(pop[GenCol.IS_NEW].to_numpy(), 0,
                 np.minimum(h, 1 + np.maximum(tenure - CURRENT_PLAN_MIN_AGE_DAYS, 0)
                            // MIN_PLAN_DAYS))
    offers = np.arange(len(catalogue))
    noisy = true_utility(pop, catalogue) + CHOICE_TEMPERATURE * rand.gumbel(
        rand.key(seed, n[:, None], offers[None, :]), Salt.CHOICE)
    ranked = np.argsort(-noisy, axis=1, kind="stable")[:, :len(HISTORY_PROBS)]
    row = np.repeat(np.arange(len(n)), h)
    j = np.arange(row.size) - np.repeat(np.cumsum(h) - h, h)  # time order, 0 = first plan
    hr, tr = h[row], tenure[row]
    start = _plan_starts(tr, hr, j, rand.uniform(rand.key(seed, n[row], j), Salt.START)) - tr
    is_current = j == hr - 1
    end = pd.array(np.where(is_current, pd.NA, np.roll(start, -1)), dtype="Int32")
    return pd.DataFrame({
        GenCol.NUMBER: n[row], GenCol.OFFER_POS: ranked[row, hr - 1 - j],
        GenCol.START_OFFSET: start.astype(np.int32), GenCol.END_OFFSET: end,
    })


def first_choice(pop: pd.DataFrame, catalogue: pd.DataFrame, seed: int) -> np.ndarray:
    """Catalogue position of the plan a NEW subscriber takes next (-1 for everyone else).

    The same logit choice as `history` (utility + Gumbel noise at the same temperature), on a
    stream of its own, so it is ground truth for cold-start evaluation that no input table
    reveals."""
    n = pop[GenCol.NUMBER].to_numpy()
    offers = np.arange(len(catalogue))
    noisy = true_utility(pop, catalogue) + CHOICE_TEMPERATURE * rand.gumbel(
        rand.key(seed, n[:, None], offers[None, :]), Salt.FIRST_CHOICE)
    return np.where(pop[GenCol.IS_NEW].to_numpy(), noisy.argmax(axis=1), -1)
