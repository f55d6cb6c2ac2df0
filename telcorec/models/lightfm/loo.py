"""Leave-one-out training rows at a bounded cost.

A history-aware model is fitted on one row per training pair whose history is the subscriber's
other offers (telcorec/models/lightfm/history.py says why). Taken whole, a subscriber with n
offers adds n rows of n - 1 history tokens: n^2 tokens. LightFM computes a row's representation
from all its tokens at every sample it visits, so an epoch costs sum(n^2) token updates. On
operator data (a handful of plans and add-ons) that is nothing; on a public rating set it blows
up: MovieLens-1M's 1M pairs would carry 410M history tokens (5 GB of matrix, and each epoch
hundreds of times the work of a plain fit).

So each row keeps at most `cap` of the other offers, chosen at random (a seeded window over the
subscriber's offers in a shuffled order), and each kept token weighs weight * sqrt(m) / h for h
tokens kept of m others: h tokens at weight / sqrt(m) scaled by m / h, the inverse of their
chance of being kept, so that the row's history representation is an unbiased estimate of the
whole history's (scoring sees every offer at weight / sqrt(m)). A history of at most `cap`
others is kept whole and weighs exactly what history.history_block gives it.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# 16 tokens: the telco catalogues' histories (a few plans and add-ons) are never cut, and a
# rating set's row costs about what its feature tokens cost
HISTORY_CAP = 16


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
