"""Seeded negative samples and the rank of a held-out offer among them: the measure of the NCF
paper's protocol, shared by NCF's validation while it trains and the evaluation's sampled
protocol (telcorec/evaluation/sampled_protocol.py)."""
from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each uint64 value."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return mix64(x + GOLDEN)

def offer_keys(seed: int, subscribers: np.ndarray, n_offers: int) -> np.ndarray:
    """(n x n_offers) uint64 pseudo-random keys, a function of (seed, subscriber, offer) only."""
    base = _splitmix64(np.array([seed], dtype=np.uint64))
    subs = _splitmix64(base ^ np.asarray(subscribers, dtype=np.int64).astype(np.uint64))
    return _splitmix64(subs[:, None] ^ np.arange(n_offers, dtype=np.uint64)[None, :])

def sample_negatives(seed: int, subscribers: np.ndarray, excluded: list, n_offers: int,
                     negatives: int) -> np.ndarray:
    """(n x min(negatives, n_offers)) sampled offer indices, -1 where fewer were available.

    `excluded[i]` lists the offers subscriber i must not get (held ones and the test offer).
    """
    keys = offer_keys(seed, subscribers, n_offers)
    for i, offers in enumerate(excluded):
        if offers is not None and len(offers):
            keys[i, np.asarray(offers, dtype=np.int64)] = _MASK
    take = min(negatives, n_offers)
    part = np.argpartition(keys, take - 1, axis=1)[:, :take]
    chosen = np.take_along_axis(keys, part, axis=1)
    return np.where(chosen == _MASK, -1, part)

def rank_of_test(scores: np.ndarray, test: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """0-based rank of each test offer among itself and its sampled negatives (-1 = none)."""
    rows = np.arange(len(test))
    s_test = scores[rows, test][:, None]
    valid = negatives >= 0
    s_neg = np.take_along_axis(scores, np.where(valid, negatives, 0), axis=1)
    ahead = (s_neg > s_test) | ((s_neg == s_test) & (negatives < test[:, None]))
    return (ahead & valid).sum(axis=1)

def hit_and_ndcg(rank: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hit = rank < k
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
