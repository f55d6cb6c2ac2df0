"""Interactions shaped like MovieLens-1M, for timing only: 6,040 users x 3,706 items, ~1M pairs.

The shape is what the cost of a fit depends on: how many pairs, how they spread over users (a
long tail: ML-1M's users rate 20 to 2,314 movies, 165 on average) and over items (a few very
popular ones). Users draw a count from a clipped log-normal and that many distinct items from a
power-law popularity. There is no structure to learn: quality checks use the latent-factor
generator in telcorec/synthetic/ instead.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col

USERS, ITEMS, PAIRS = 6_040, 3_706, 1_000_209
MIN_PER_USER, MAX_PER_USER = 20, 2_314


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--users, --items, --pairs: the shape of the generated set (default MovieLens-1M's)."""
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--pairs", type=int, default=PAIRS)


def per_user_counts(rng: np.random.Generator, users: int, pairs: int, items: int) -> np.ndarray:
    """Clipped log-normal counts (sigma as ML-1M's spread) scaled to sum to about `pairs`."""
    raw = rng.lognormal(mean=0.0, sigma=1.0, size=users)
    counts = np.clip(np.round(raw * pairs / raw.sum()), MIN_PER_USER, min(MAX_PER_USER, items))
    return counts.astype(np.int64)


def interactions(users: int = USERS, items: int = ITEMS, pairs: int = PAIRS,
                 seed: int = 7) -> pd.DataFrame:
    """Training rows as telcorec.models.lightfm.training.training_rows gives a task: subscriber
    id, offer index, weight (a 1-5 rating), shard 0 and the subscriber categoricals (one value:
    public rating data carries no subscriber attributes)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    popularity /= popularity.sum()
    counts = per_user_counts(rng, users, pairs, items)
    # Gumbel top-k: each user's distinct items drawn with probability ~ popularity
    log_p = np.log(popularity)
    chosen = [np.argpartition(-(log_p - np.log(-np.log(rng.random(items)))), n - 1)[:n]
              for n in counts]
    frame = pd.DataFrame({
        Col.SUBSCRIBER_ID: np.repeat([f"u{u:05d}" for u in range(users)], counts),
        Col.OFFER_IDX: np.concatenate(chosen).astype(np.int32),
        Col.WEIGHT: rng.integers(1, 6, size=int(counts.sum())).astype(np.float32),
        Col.SHARD: np.int32(0)})
    for column in SUBSCRIBER_CATEGORICALS:
        frame[column] = "unknown"
    return frame
