"""Call detail records for a chunk of subscribers: voice calls, SMS and data sessions.

Per subscriber and day the expected usage is the hidden monthly need / 30, times a per-month
factor (lognormal; sigma 0.2, or 0.5 for volatile subscribers) and a per-day factor; counts are
Poisson, hours follow the segment's daily profile (business in office hours, youth evenings).
Every draw is keyed by (seed, subscriber, day, event type, slot) so the rows do not depend on
how subscribers are chunked or partitioned. Dates are absolute day numbers since 1970-01-01.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from telcorec.core.columns import Col
from telcorec.synthetic import rand
from telcorec.synthetic.population import GenCol
from telcorec.synthetic.rand import Salt

VOICE, SMS, DATA, UNKNOWN_TYPE = 0, 1, 2, 3
N_TYPES = 3
MEAN_CALL_MIN = 3.0
CALL_SIGMA, MISSED_CALL_SHARE = 0.9, 0.06
DAY_SIGMA, DATA_DAY_SIGMA = 0.3, 0.4
MAX_SESSIONS = 3
WEEKEND_VOICE = (1.0, 1.0, 0.6, 0.3, 1.0)  # per segment, in population.SEGMENTS order
_HOUR_BANDS = (  # per segment: (first hour, last hour, weight), later bands win
    ((0, 23, 1.0), (0, 1, 1.5), (2, 7, 0.15), (16, 17, 2.0), (18, 23, 3.5)),          # youth
    ((0, 23, 1.0), (0, 6, 0.1), (7, 8, 1.5), (17, 21, 2.5), (22, 23, 0.8)),           # family
    ((0, 23, 0.1), (7, 8, 1.5), (9, 17, 2.5), (18, 21, 1.8), (22, 23, 0.6)),          # professional
    ((0, 23, 0.05), (7, 8, 1.5), (9, 17, 4.0), (18, 19, 1.0), (20, 23, 0.3)),         # business
    ((0, 23, 0.05), (7, 8, 1.0), (9, 12, 3.0), (13, 18, 2.0), (19, 21, 1.0), (22, 23, 0.2)),
)


def _hour_profiles() -> np.ndarray:
    weights = np.zeros((len(_HOUR_BANDS), 24))
    for seg, bands in enumerate(_HOUR_BANDS):
        for first, last, weight in bands:
            weights[seg, first:last + 1] = weight
    return weights / weights.sum(axis=1, keepdims=True)


HOUR_PROFILES = _hour_profiles()


def epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _daily_counts(pop: pd.DataFrame, seed: int, day_abs: np.ndarray, first_day: np.ndarray,
                  usage_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per (subscriber, day): event counts by type (n x days x 3) and data volume in MB.

    `usage_scale` multiplies the expected number of events of every type (the day's data volume
    is kept and spread over fewer sessions; a day left with none has no data rows).
    """
    n = pop[GenCol.NUMBER].to_numpy()[:, None]
    seg = pop[GenCol.SEGMENT_CODE].to_numpy()
    month = np.datetime64("1970-01-01", "D") + day_abs
    month_abs = month.astype("datetime64[M]").astype(np.int64)
    volatility = pop[GenCol.VOLATILITY].to_numpy()[:, None]
    k_month = rand.key(seed, n, month_abs[None, :])
    monthly = rand.lognormal_factor(rand.normal(k_month, Salt.MONTH), volatility)
    k_day = rand.key(seed, n, day_abs[None, :])
    active = day_abs[None, :] >= first_day[:, None]
    weekend = ((day_abs + 3) % 7 >= 5)[None, :]
    voice_rate = (pop[Col.VOICE_NEED_MIN].to_numpy()[:, None] / 30.0 / MEAN_CALL_MIN
                  * np.where(weekend, np.array(WEEKEND_VOICE)[seg][:, None], 1.0))
    sms_rate = pop[Col.SMS_NEED].to_numpy()[:, None] / 30.0
    counts = np.zeros(active.shape + (N_TYPES,), dtype=np.int64)
    for etype, rate, salt in ((VOICE, voice_rate, Salt.VOICE_DAY), (SMS, sms_rate, Salt.SMS_DAY)):
        lam = (rate * monthly * rand.lognormal_factor(rand.normal(k_day, salt), DAY_SIGMA)
               * usage_scale)
        counts[..., etype] = rand.poisson(lam * active, rand.uniform(k_day, Salt.COUNT, etype))
    sessions = 1 + np.floor(rand.uniform(k_day, Salt.SESSIONS) * MAX_SESSIONS).astype(np.int64)
    counts[..., DATA] = sessions * active
    if usage_scale != 1.0:  # thinned by a Poisson draw; the default path stays bit-identical
        counts[..., DATA] = rand.poisson(counts[..., DATA] * usage_scale,
                                         rand.uniform(k_day, Salt.COUNT, DATA))
    mb = (pop[Col.DATA_NEED_GB].to_numpy()[:, None] * 1024.0 / 30.0 * monthly
          * rand.lognormal_factor(rand.normal(k_day, Salt.DATA_DAY), DATA_DAY_SIGMA))
    return counts, mb


def _expand(counts: np.ndarray) -> dict[str, np.ndarray]:
    """One entry per event: row (subscriber position), day position, type, slot, event number."""
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    starts = np.cumsum(flat) - flat
    per_sub = counts.reshape(counts.shape[0], -1).sum(axis=1)
    sub_start = np.cumsum(per_sub) - per_sub
    n_days = counts.shape[1]
    row = cell // (n_days * N_TYPES)
    return {"row": row, "day": (cell // N_TYPES) % n_days, "type": cell % N_TYPES,
            "slot": np.arange(cell.size) - starts[cell], "cell": cell,
            "event_no": np.arange(cell.size) - sub_start[row]}


def _values(ev: dict, pop: pd.DataFrame, k_ev: np.ndarray, mb_cell: np.ndarray,
            day_abs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps (wall clock), call durations and data volumes of the events."""
    seg = pop[GenCol.SEGMENT_CODE].to_numpy()[ev["row"]]
    hour = rand.categorical(rand.uniform(k_ev, Salt.HOUR), HOUR_PROFILES, seg)
    second = np.floor(rand.uniform(k_ev, Salt.SECOND) * 3600).astype(np.int64)
    ts = day_abs[ev["day"]] * 86400 + hour * 3600 + second
    is_voice, is_data = ev["type"] == VOICE, ev["type"] == DATA
    mu = np.log(MEAN_CALL_MIN * 60) - 0.5 * CALL_SIGMA ** 2
    call = np.maximum(1.0, np.rint(np.exp(mu + CALL_SIGMA * rand.normal(k_ev, Salt.DURATION))))
    missed = rand.uniform(k_ev, Salt.MISSED) < MISSED_CALL_SHARE
    duration = np.where(is_voice, np.where(missed, 0.0, call), np.nan)
    weight = np.where(is_data, -np.log(rand.uniform(k_ev, Salt.SESSION_SHARE)), 0.0)
    cell_weight = np.bincount(ev["cell"], weights=weight, minlength=mb_cell.size)
    share = np.divide(weight, cell_weight[ev["cell"]], out=np.zeros_like(weight), where=is_data)
    data_mb = np.where(is_data, np.round(mb_cell[ev["cell"]] * share, 3), np.nan)
    return ts, duration, data_mb


def cdr_chunk(pop: pd.DataFrame, seed: int, run_date: dt.date, days: int,
              usage_scale: float = 1.0, snapshot: dt.date | None = None,
              kept_days: int | None = None) -> pd.DataFrame:
    """Clean CDR rows of the subscribers in `pop` for the `days` days before `run_date`; with a
    `snapshot` (the day signups count back from), from `days` days before it to `run_date`
    but at most the last `kept_days` (what the source keeps), so that a later run date gives
    the same rows for every day it shares, plus the days since.

    Columns: GenCol.OWNER_NUMBER and GenCol.ID_NUMBER (both the subscriber's id digits; they
    differ only in bad rows), GenCol.EVENT_NO (numbers the subscriber's events), EVENT_CODE,
    EPOCH_S (wall-clock seconds since 1970-01-01), Col.DURATION_S and Col.DATA_MB (NaN where
    not applicable) and GenCol.KEY (the event's random key, for bad-row selection).
    """
    run_abs, dated_from = epoch_day(run_date), epoch_day(snapshot or run_date)
    start = dated_from - days if kept_days is None else max(dated_from - days, run_abs - kept_days)
    day_abs = np.arange(start, run_abs, dtype=np.int64)
    first_day = dated_from - pop[GenCol.TENURE_DAYS].to_numpy()  # the signup day
    counts, mb = _daily_counts(pop, seed, day_abs, first_day, usage_scale)
    ev = _expand(counts)
    number = pop[GenCol.NUMBER].to_numpy()[ev["row"]]
    k_ev = rand.key(seed, number, day_abs[ev["day"]], ev["type"], ev["slot"])
    mb_cell = np.repeat(mb.ravel(), N_TYPES)  # one volume per (subscriber, day), per type cell
    ts, duration, data_mb = _values(ev, pop, k_ev, mb_cell, day_abs)
    return pd.DataFrame({
        GenCol.OWNER_NUMBER: number + 1, GenCol.ID_NUMBER: number + 1,
        GenCol.EVENT_NO: ev["event_no"],
        GenCol.EVENT_CODE: ev["type"].astype(np.int32), GenCol.EPOCH_S: ts,
        Col.DURATION_S: duration, Col.DATA_MB: data_mb, GenCol.KEY: k_ev,
    })
