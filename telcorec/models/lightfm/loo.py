"""Leave-one-out training rows at a bounded cost.

A history-aware model is fitted on one row per training pair whose history is the subscriber's
other offers (telcorec/models/lightfm/history.py says why). Taken whole, a subscriber with n
offers adds n rows of n - 1 history tokens: n^2 tokens. LightFM computes a row's representation
from all its tokens at every sample it visits, so an epoch costs sum(n^2) token updates. On
operator data (a handful of plans and add-ons) that is nothing; on a public rating set it blows
up: MovieLens-1M's 1M pairs would carry 410M history tokens (5 GB of matrix, and each epoch
hundreds of times the work of a plain fit).

So when the whole histories would pass a token budget, each row keeps at most `cap` of the
other offers (the largest cap the budget allows, never below MIN_CAP), chosen at random (a
seeded window over the subscriber's offers in a shuffled order), and each kept token weighs
weight * sqrt(m) / h for h tokens kept of m others: h tokens at weight / sqrt(m) scaled by
m / h, the inverse of their chance of being kept, so that the row's history representation is
an unbiased estimate of the whole history's (scoring sees every offer at weight / sqrt(m)). A
history of at most `cap` others is kept whole and weighs exactly what history.history_block
gives it.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# The history tokens one shard's leave-one-out rows may hold (128 MB of float32 values and
# indices). A rating set of about 100k pairs keeps every history whole (the generated
# MovieLens-style file: 14M; cutting it at 16 cost about 9% of precision@10), MovieLens-1M's 410M
# are cut at 16 others a row (16M tokens), and telco histories (a few plans and add-ons) never are.
HISTORY_TOKEN_BUDGET = 16_000_000
MIN_CAP = 16


def history_cap(codes: np.ndarray, budget: int | None = None) -> int:
    """The largest number of other offers a row may keep so that the rows of these pairs
    (`codes`: each pair's subscriber) hold at most `budget` history tokens; every history whole
    when they fit; never below MIN_CAP."""
    budget = HISTORY_TOKEN_BUDGET if budget is None else budget
    sizes = np.unique(codes, return_counts=True)[1] if len(codes) else np.zeros(1, np.int64)
    others = sizes - 1

    def tokens(cap: int) -> int:
        return int((sizes * np.minimum(others, cap)).sum())

    low, high = MIN_CAP, max(int(others.max()), MIN_CAP)
    while low < high:  # the largest cap within the budget (tokens grow with the cap)
        middle = (low + high + 1) // 2
        low, high = (middle, high) if tokens(middle) <= budget else (low, middle - 1)
    return low


def capped_history_block(codes: np.ndarray, items: np.ndarray, n_items: int, weight: float,
                         cap: int, seed: int) -> sp.csr_matrix:
    """Row j: up to `cap` of subscriber codes[j]'s offers other than items[j] (pairs are
    distinct), weighted as the module docstring says."""
    n = len(codes)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), codes))  # each subscriber's pairs in a random order
    sorted_codes, sorted_items = codes[order], items[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if n else \
        np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, n])
    start_of = np.repeat(starts, sizes)            # per sorted position: its subscriber's start
    size_of = np.repeat(sizes, sizes)
    position = np.arange(n) - start_of
    others = size_of - 1
    kept = np.minimum(others, cap)
    # the kept tokens of the row at sorted position p: the next `kept` offers after p, cyclically
    row_sorted = np.repeat(np.arange(n), kept)
    offset = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept) + 1
    column = sorted_items[start_of[row_sorted]
                          + (position[row_sorted] + offset) % size_of[row_sorted]]
    whole = weight / np.sqrt(np.maximum(others, 1))  # as history.history_block, to the bit
    scale = np.where(kept == others, whole, whole * others / np.maximum(kept, 1))
    rows = order[row_sorted]                       # back to the caller's pair order
    matrix = sp.csr_matrix((np.repeat(scale, kept).astype(np.float32), (rows, column)),
                           shape=(n, n_items))
    matrix.sort_indices()
    return matrix


def loo_user_matrix(feature_rows: sp.csr_matrix, codes: np.ndarray, items: np.ndarray,
                    n_items: int, weight: float, cap: int, seed: int) -> sp.csr_matrix:
    """[feature tokens | capped history tokens], one row per pair: the user features of the
    leave-one-out rows."""
    return sp.hstack([feature_rows[codes],
                      capped_history_block(codes, items, n_items, weight, cap, seed)],
                     format="csr")
