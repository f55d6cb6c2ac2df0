"""Counter-based random numbers: every draw is a pure function of its keys.

`key(seed, 17, 3)` folds `splitmix64` over the counters that identify a draw (subscriber 17,
offer 3, ...); `uniform(key, Salt.X)` mixes in the purpose. So the value for subscriber 17 and
offer 3 is the same whichever Spark partition, Arrow batch or chunk computes it, and draws for
different purposes are independent. Everything is vectorised: keys broadcast like numpy operands.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1
_POISSON_EXACT_MAX = 60.0  # above this mean, the normal approximation is used


class Salt:
    """One stream per purpose; change none of these or every generated table changes."""

    SEGMENT, REGION, DEVICE, PAYMENT, HOUSEHOLD, TENURE, NEW, TERM, VOLATILITY = range(1, 10)
    DATA_NEED, VOICE_NEED, SMS_NEED, PRICE_SENS, TASTE = range(20, 25)
    HISTORY_LEN, CHOICE, START, FIRST_CHOICE = range(40, 44)
    MONTH, VOICE_DAY, SMS_DAY, COUNT, SESSIONS, DATA_DAY = range(60, 66)
    HOUR, SECOND, DURATION, MISSED, SESSION_SHARE = range(70, 75)
    BAD_SELECT, BAD_KIND, BAD_VALUE, BAD_PHASE = range(90, 94)
    CATALOGUE = 100
    CONSENT = 110
    RESPONSE = 120  # the simulated answers to offers (telcorec/synthetic/responses.py)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def key(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """A 64-bit key for (seed, *keys); keys are non-negative integers and broadcast together.

    Hash the identifying counters once, then draw as many purposes from the key as needed.
    """
    h = _splitmix64(np.asarray(seed & _MASK64, dtype=np.uint64))
    for part in keys:
        h = _splitmix64(h ^ _splitmix64(np.asarray(part).astype(np.uint64)))
    return h


def _bits(k: np.ndarray, salt: int, sub: int) -> np.ndarray:
    return _splitmix64(k ^ _splitmix64(np.asarray((salt << 8) | sub, dtype=np.uint64)))


def uniform(k: np.ndarray, salt: int, sub: int = 0) -> np.ndarray:
    """Uniform floats in the open interval (0, 1), one per key, for purpose `salt`."""
    bits = _bits(k, salt, sub) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def normal(k: np.ndarray, salt: int) -> np.ndarray:
    """Standard normal draws (Box-Muller on two independent uniforms)."""
    u1, u2 = uniform(k, salt, 1), uniform(k, salt, 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def gumbel(k: np.ndarray, salt: int) -> np.ndarray:
    """Standard Gumbel draws: adding them to utilities and taking the argmax is a logit choice."""
    return -np.log(-np.log(uniform(k, salt)))


def lognormal_factor(z: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """exp(sigma * z) rescaled to mean 1, so a rate multiplied by it keeps its expectation."""
    return np.exp(sigma * z - 0.5 * np.square(sigma))


def poisson(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson counts with means `lam` by inverting the CDF at the uniforms `u` (int64)."""
    lam = np.asarray(lam, dtype=np.float64)
    u = np.broadcast_to(u, lam.shape)
    out = np.zeros(lam.shape, dtype=np.int64)
    big = lam > _POISSON_EXACT_MAX
    approx = np.rint(lam[big] + np.sqrt(lam[big]) * ndtri(u[big]))
    out[big] = np.maximum(approx, 0).astype(np.int64)
    idx = np.flatnonzero(~big)
    lam_s, u_s = lam.ravel()[idx], u.ravel()[idx]
    p = np.exp(-lam_s)
    cdf = p.copy()
    k = np.zeros(idx.size, dtype=np.int64)
    active = np.flatnonzero(u_s > cdf)
    while active.size:
        k[active] += 1
        p[active] *= lam_s[active] / k[active]
        cdf[active] += p[active]
        active = active[u_s[active] > cdf[active]]
    out.ravel()[idx] = k
    return out


def categorical(u: np.ndarray, probs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Category index drawn with uniforms `u` from `probs` (1-D), or from the row `rows` of a
    probability table (2-D, one distribution per row; e.g. one per segment)."""
    table = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    cum = np.cumsum(table, axis=1) / table.sum(axis=1, keepdims=True)
    cum[:, -1] = 1.0
    rows = np.zeros(np.shape(u), dtype=np.int64) if rows is None else np.asarray(rows)
    # Row r's cumulative probabilities live in (r, r + 1]: one sorted array serves every row.
    shifted = (cum + np.arange(len(table))[:, None]).ravel()
    return np.searchsorted(shifted, rows + u, side="right") - rows * table.shape[1]
