"""MovieLens-style ratings (userId,movieId,rating,timestamp) from latent user and item factors.

For benchmarks on pure interaction data (benchmarks/bench_vs_raw_lightfm.py) where no public
rating file is at hand. The shape follows the classic 100k set: about 1k users x 1.7k items,
every user with 20 or more ratings (a long tail of heavy raters), item popularity heavy-tailed,
whole-star ratings, and most of a user's ratings given in a first session of a few hours with the
rest spread over the following months. Which items a user rates and how they rate them both come
from the same hidden factors (taste) plus an item popularity bias, so a model that learns users
from what they rated can beat popularity, as on real rating data. No user attributes exist: a user
is only what they rated.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ("userId", "movieId", "rating", "timestamp")
FACTORS = 8
MIN_RATINGS = 20
FIRST_EPOCH_S = 874_724_710  # 1997-09-20, where the 100k set begins
SPAN_DAYS = 215
FIRST_SESSION_SHARE = 0.7


def ratings(users: int = 943, items: int = 1682, seed: int = 0,
            median_extra: float = 45.0) -> pd.DataFrame:
    """One row per (user, item) rated, in user then time order; ids count from 1."""
    if users < 1 or items < 2 * MIN_RATINGS:
        raise ValueError(f"ratings: need users >= 1 and items >= {2 * MIN_RATINGS} "
                         f"(got {users} users, {items} items)")
    rng = np.random.default_rng(seed)
    user_f = rng.normal(0.0, 1.0, (users, FACTORS)) / np.sqrt(FACTORS)
    item_f = rng.normal(0.0, 1.0, (items, FACTORS))
    popularity = rng.normal(0.0, 1.2, items)
    affinity = user_f @ item_f.T  # (users x items), about unit variance
    counts = np.minimum(MIN_RATINGS + np.floor(rng.lognormal(np.log(median_extra), 1.0, users)),
                        items // 2).astype(np.int64)
    # which items a user rates: Gumbel top-n of popularity + 1.5 taste (sampling without
    # replacement proportionally to exp(.))
    noisy = popularity[None, :] + 1.5 * affinity + rng.gumbel(size=(users, items))
    order = np.argsort(-noisy, axis=1)
    user = np.repeat(np.arange(users), counts)
    pos = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    item = order[user, pos]
    score = 2.6 + 0.9 * affinity[user, item] + 0.25 * popularity[item] + rng.normal(0, 0.8,
                                                                                  len(user))
    stars = np.clip(np.rint(score), 1, 5).astype(np.int64)
    start = FIRST_EPOCH_S + rng.uniform(0, SPAN_DAYS * 86_400 * 0.8, users).astype(np.int64)
    first_session = rng.random(len(user)) < FIRST_SESSION_SHARE
    later = rng.exponential(30 * 86_400, len(user))
    offset = np.where(first_session, rng.uniform(0, 4 * 3600, len(user)), later).astype(np.int64)
    stamp = np.minimum(start[user] + offset, FIRST_EPOCH_S + SPAN_DAYS * 86_400)
    out = pd.DataFrame({"userId": user + 1, "movieId": item + 1, "rating": stars,
                        "timestamp": stamp})
    return out.sort_values(["userId", "timestamp", "movieId"], kind="stable",
                           ignore_index=True)[list(COLUMNS)]


def write_ratings(path: str | Path, **kwargs) -> Path:
    """`ratings(**kwargs)` as a CSV with MovieLens' header; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ratings(**kwargs).to_csv(path, index=False)
    return path
