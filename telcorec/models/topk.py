"""Exact row-wise top k: the k largest values of each row in (-value, column) order.

np.argsort of whole rows costs O(m log m) per row and np.argpartition alone leaves ties at the
boundary to chance. For a small k over floats (the top K offers of a score matrix, the top
pairs of a reason) k passes of np.argmax pick the answer directly: argmax returns the first
column of a row's largest value, which is exactly the tie rule, and each pick is then closed at
-inf (measured on 20,000 x 200 float32 scores, K = 10: 4.5x faster than the partition below).
A row whose picks reach -inf (fewer than k values above -inf, where a closed column and an open
-inf column look alike) and every other key go through the partition: one np.partition finds
each row's k-th largest value; every value above it and, of the values equal to it, those in
the lowest columns make the k; only those k are sorted (stable, so equal values keep order).
Used by scoring.top_k and reasons.Explainer.top_pairs.
"""
from __future__ import annotations

import numpy as np

_ARGMAX_K = 32  # up to this k the argmax passes beat the partition (one pass over a row each)


def top_k_columns(key: np.ndarray, k: int) -> np.ndarray:
    """(rows x min(k, columns)) column indices of each row's largest values, best first, equal
    values by the lower column. `key` must hold no NaN (map it to a number first)."""
    n, m = key.shape
    k = min(k, m)
    if k == m:
        return np.argsort(-key, axis=1, kind="stable")
    if key.dtype.kind != "f" or k > _ARGMAX_K:
        return _by_partition(key, k)
    work = key.copy()
    rows = np.arange(n)
    idx = np.empty((n, k), dtype=np.int64)
    for j in range(k):
        idx[:, j] = np.argmax(work, axis=1)
        picked = work[rows, idx[:, j]]
        work[rows, idx[:, j]] = -np.inf
    reached = np.isneginf(picked)  # the last pick's value: -inf where a row ran out
    if reached.any():
        idx[reached] = _by_partition(key[reached], k)
    return idx


def _by_partition(key: np.ndarray, k: int) -> np.ndarray:
    n, m = key.shape
    kth = np.partition(key, m - k, axis=1)[:, m - k, None]
    above = key > kth
    tied = key == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
    idx = np.nonzero(chosen)[1].reshape(n, k)  # exactly k per row, in column order
    order = np.argsort(-np.take_along_axis(key, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)
