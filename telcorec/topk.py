"""Exact row-wise top k: the k largest values of each row in (-value, column) order.

np.argsort of whole rows costs O(m log m) per row and np.argpartition alone leaves ties at the
boundary to chance. Here one partition finds each row's k-th largest value; every value above
it and, of the values equal to it, those in the lowest columns make the k; only those k are
sorted (stable, so equal values keep column order). Used for the top offers of a score matrix
(scoring.top_k) and the top pairs of a reason (reasons.Explainer.top_pairs).
"""
from __future__ import annotations

import numpy as np


def top_k_columns(key: np.ndarray, k: int) -> np.ndarray:
    """(rows x min(k, columns)) column indices of each row's largest values, best first, equal
    values by the lower column. `key` must hold no NaN (map it to a number first)."""
    n, m = key.shape
    k = min(k, m)
    if k == m:
        return np.argsort(-key, axis=1, kind="stable")
    kth = np.partition(key, m - k, axis=1)[:, m - k, None]
    above = key > kth
    tied = key == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
    idx = np.nonzero(chosen)[1].reshape(n, k)  # exactly k per row, in column order
    order = np.argsort(-np.take_along_axis(key, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)
