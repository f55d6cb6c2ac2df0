"""Deliberately broken EXTRA rows, so the validation stage has something to quarantine.

The clean population is never altered: bad rows are added copies or variants of clean rows.
CDR rows are picked independently with probability `rate` (keyed by the event), subscribers by
an evenly spaced deterministic pattern over subscriber numbers (so about rate * N of them,
alternating between the two kinds), and the catalogue gets one offer with a negative price.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from telcorec.core.columns import Col
from telcorec.synthetic import rand
from telcorec.synthetic.cdr import UNKNOWN_TYPE, VOICE, epoch_day
from telcorec.synthetic.population import GenCol
from telcorec.synthetic.rand import Salt

(NEGATIVE_DURATION, DURATION_OVER_DAY, UNKNOWN_SUBSCRIBER, NULL_SUBSCRIBER, UNKNOWN_EVENT_TYPE,
 FUTURE_TIMESTAMP, DUPLICATE_EVENT) = range(7)
CDR_KINDS = 7
UNKNOWN_SUBSCRIBER_BASE = 900_000_000  # subscriber ids S9........ exist in no subscriber table
NULL_SEGMENT_BASE = 800_000_000  # ids of the extra subscribers whose segment is missing
BAD_EVENT_OFFSET = 1_000_000_000  # event numbers of modified copies, above any real one
BAD_OFFER_ID = "OFR9999"
DAY_S = 86_400


def bad_cdr(clean: pd.DataFrame, rate: float, run_date: dt.date) -> pd.DataFrame:
    """Broken copies of about `rate` of the clean CDR rows (same columns as `cdr_chunk`)."""
    key = clean[GenCol.KEY].to_numpy()
    picked = np.flatnonzero(rand.uniform(key, Salt.BAD_SELECT) < rate)
    bad = clean.iloc[picked].reset_index(drop=True)
    key = key[picked]
    kind = np.floor(rand.uniform(key, Salt.BAD_KIND) * CDR_KINDS).astype(np.int64)
    u = rand.uniform(key, Salt.BAD_VALUE)
    as_call = (kind == NEGATIVE_DURATION) | (kind == DURATION_OVER_DAY)
    bad[GenCol.EVENT_CODE] = np.where(as_call, VOICE, bad[GenCol.EVENT_CODE])
    bad[GenCol.EVENT_CODE] = np.where(kind == UNKNOWN_EVENT_TYPE, UNKNOWN_TYPE,
                                      bad[GenCol.EVENT_CODE]).astype(np.int32)
    duration = np.where(kind == NEGATIVE_DURATION, -1.0 - np.floor(u * 600),
                        DAY_S + 1.0 + np.floor(u * DAY_S))
    bad[Col.DURATION_S] = np.where(as_call, duration, bad[Col.DURATION_S])
    bad[Col.DATA_MB] = np.where(as_call, np.nan, bad[Col.DATA_MB])
    future = (epoch_day(run_date) + 1) * DAY_S + np.floor(u * 29 * DAY_S).astype(np.int64)
    bad[GenCol.EPOCH_S] = np.where(kind == FUTURE_TIMESTAMP, future, bad[GenCol.EPOCH_S])
    number = bad[GenCol.ID_NUMBER].to_numpy()
    subscriber = np.where(kind == UNKNOWN_SUBSCRIBER, UNKNOWN_SUBSCRIBER_BASE + number, number)
    bad[GenCol.ID_NUMBER] = pd.array(subscriber, dtype="Int64")
    bad.loc[kind == NULL_SUBSCRIBER, GenCol.ID_NUMBER] = pd.NA
    bad[GenCol.EVENT_NO] += np.where(kind == DUPLICATE_EVENT, 0, BAD_EVENT_OFFSET)
    return bad


def subscriber_pattern(numbers: np.ndarray, rate: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(picked, kind): subscriber n is picked when floor(n*rate + phase) steps up at n, which
    picks rate*N of 0..N-1 (rounded, evenly spaced) whatever the chunking; kinds alternate."""
    phase = float(rand.uniform(rand.key(seed), Salt.BAD_PHASE))
    n = np.asarray(numbers, dtype=np.float64)
    step = np.floor((n + 1) * rate + phase)
    return step > np.floor(n * rate + phase), step.astype(np.int64) % 2


def bad_subscribers(rows: pd.DataFrame, numbers: np.ndarray, rate: float,
                    seed: int) -> pd.DataFrame:
    """Extra subscriber rows: an exact duplicate of a subscriber, or a new one with no segment."""
    picked, kind = subscriber_pattern(numbers, rate, seed)
    bad = rows.loc[picked].reset_index(drop=True)
    null_segment = kind[picked] == 1
    bad.loc[null_segment, Col.SEGMENT] = None
    number = bad[GenCol.ID_NUMBER].to_numpy()
    bad[GenCol.ID_NUMBER] = np.where(null_segment, NULL_SEGMENT_BASE + number, number)
    return bad


def bad_offer(catalogue: pd.DataFrame) -> pd.DataFrame:
    """One extra offer, a copy of the first, with a negative price."""
    bad = catalogue.iloc[[0]].copy()
    bad[Col.OFFER_ID] = BAD_OFFER_ID
    bad[Col.PRICE] = -bad[Col.PRICE]
    return bad
